"""Availability zone names, defined once.

A compute host in no aggregate with an ``availability_zone`` is in ``DEFAULT_ZONE`` (Nova's
``default_availability_zone``); the control services (conductor, scheduler) are in
``INTERNAL_ZONE`` (Nova's ``internal_service_availability_zone``), which the plain zone list
hides. The embedded block storage and network services have this one default zone too.

Pure constants, so the scheduler and the models can use them; which zones exist and where a
host is are resolved in ``novalite.services.zones``.
"""

from __future__ import annotations

DEFAULT_ZONE = "nova"
INTERNAL_ZONE = "internal"
