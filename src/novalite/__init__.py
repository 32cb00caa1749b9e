"""novalite: a compute cloud controller that speaks the OpenStack Compute (Nova) API."""

__version__ = "0.1.0"
