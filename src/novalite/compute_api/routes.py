"""The explicit list of compute API routers (matched in this order) and other services' routers."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """Compute API routers under /compute/v2.1."""
    out: list[APIRouter] = []
    return out


def service_routers() -> list[tuple[APIRouter, tuple[str, str, str] | None]]:
    """Other embedded services (image, network, volume, placement) with their catalog entries."""
    out: list[tuple[APIRouter, tuple[str, str, str] | None]] = []
    return out
