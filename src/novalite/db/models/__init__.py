"""Typed SQLAlchemy models, one module per area. Importing this package registers them all.

Add a module here when you add a model file, then run ``python tools/regen_migration.py``.
"""

import importlib

MODEL_MODULES = [
    "identity",
    "compute",
    "catalog",  # flavors, key pairs, quotas
    "image",
    "placement",  # resource providers, inventories, allocations, traits, aggregates, services
    "server_groups",
    "aggregates",  # Nova host aggregates (name, AZ, hosts, metadata)
    "network",
    "volume",
    "consoles",  # console auth tokens
]

for _name in MODEL_MODULES:
    importlib.import_module(f"novalite.db.models.{_name}")
