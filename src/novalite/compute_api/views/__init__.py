"""Request schemas / response views per compute resource (one module each)."""
