"""Typed SQLAlchemy models, one module per area. Importing this package registers them all."""

from novalite.db.models import identity  # noqa: F401
