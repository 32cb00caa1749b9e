"""Compute version documents (§6.13, clients.md §2)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from novalite.api.common import runtime
from novalite.api.microversion import MAX_VERSION, MIN_VERSION
from novalite.errors import NotFound

router = APIRouter()

UPDATED = "2013-07-23T11:33:21Z"
MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]


def _v20(base: str) -> dict[str, Any]:
    return {
        "id": "v2.0",
        "status": "DEPRECATED",
        "version": "",
        "min_version": "",
        "updated": "2011-01-21T11:33:21Z",
        "links": [{"rel": "self", "href": f"{base}/compute/v2/"}],
    }


def _v21(base: str) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": str(MAX_VERSION),
        "min_version": str(MIN_VERSION),
        "updated": UPDATED,
        "links": [{"rel": "self", "href": f"{base}/compute/v2.1/"}],
    }


@router.get("/compute")
@router.get("/compute/")
def root(request: Request) -> dict[str, Any]:
    base = runtime(request).public_url
    return {"versions": [_v20(base), _v21(base)]}


def _doc(entry: dict[str, Any]) -> dict[str, Any]:
    entry = dict(entry)
    entry["links"] = entry["links"] + [
        {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}
    ]
    entry["media-types"] = MEDIA_TYPES
    return {"version": entry}


@router.get("/compute/v2.1")
@router.get("/compute/v2.1/")
def v21(request: Request) -> dict[str, Any]:
    return _doc(_v21(runtime(request).public_url))


@router.get("/compute/v2")
@router.get("/compute/v2/")
def v20(request: Request) -> dict[str, Any]:
    return _doc(_v20(runtime(request).public_url))


# Included after every other compute router, for every method: an unknown path under /v2*, or a
# known path with a method it does not serve, is Nova's 404 (not 405: Tempest's "delete without
# an id" negative tests expect NotFound); a GET elsewhere under /compute answers 300.
fallback = APIRouter()
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


@fallback.api_route("/compute/{other:path}", methods=METHODS, include_in_schema=False)
def unknown_root(other: str, request: Request) -> JSONResponse:
    base = runtime(request).public_url
    if other.startswith("v2") or request.method not in ("GET", "HEAD"):
        raise NotFound("The resource could not be found.")
    return JSONResponse({"choices": [_v20(base), _v21(base)]}, status_code=300)
