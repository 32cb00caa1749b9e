"""The ``/{id}/metadata[/{key}]`` handling that Cinder's volumes and snapshots share: a route names
its ``MetadataOwner`` (how to load the row, which column holds its metadata) and calls one of these."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from novalite.api.common import runtime
from novalite.context import RequestContext
from novalite.errors import BadRequest, NotFound
from novalite.volume.api import VolumeRequest, metadata, respond


@dataclass(frozen=True)
class MetadataOwner:
    """``kind``: "Volume" or "Snapshot" (in the 404 message and its kind); ``column``: the row's
    metadata attribute."""

    kind: str
    load: Callable[[Session, RequestContext, str], Any]
    column: str


def _read(row: Any, owner: MetadataOwner) -> dict[str, str]:
    return dict(getattr(row, owner.column) or {})


def key_missing(owner: MetadataOwner, owner_id: str, key: str) -> NotFound:
    return NotFound(
        f"{owner.kind} {owner_id} has no metadata with key {key}.", kind=f"{owner.kind}MetadataNotFound"
    )


def metadata_body(body: Any) -> dict[str, str]:
    """The ``{"metadata": {...}}`` of a set or replace (POST/PUT .../metadata)."""
    if not isinstance(body, dict) or "metadata" not in body:
        raise BadRequest(
            "Missing required element 'metadata' in request body.", kind="MissingRequiredElement"
        )
    return metadata(body["metadata"])


def meta_body(body: Any, key: str) -> str:
    """The value of ``{"meta": {key: value}}`` (PUT .../metadata/{key}): one key, the URI's."""
    if not isinstance(body, dict) or "meta" not in body:
        raise BadRequest("Missing required element 'meta' in request body.", kind="MissingRequiredElement")
    meta = metadata(body["meta"])
    if list(meta) != [key]:
        raise BadRequest("Request body and URI mismatch", kind="InvalidInput")
    return meta[key]


def all_metadata(
    request: Request,
    vr: VolumeRequest,
    owner: MetadataOwner,
    owner_id: str,
    new: dict[str, str] | None,
    replace: bool,
) -> JSONResponse:
    """``{"metadata": ...}`` after merging ``new`` in (or replacing with it); None: only show."""
    with runtime(request).db.session() as s:
        row = owner.load(s, vr.ctx, owner_id)
        if new is not None:
            setattr(row, owner.column, dict(new) if replace else {**_read(row, owner), **new})
        return respond(vr, {"metadata": _read(row, owner)})


def show_key(
    request: Request, vr: VolumeRequest, owner: MetadataOwner, owner_id: str, key: str
) -> JSONResponse:
    with runtime(request).db.reader() as s:
        meta = _read(owner.load(s, vr.ctx, owner_id), owner)
    if key not in meta:
        raise key_missing(owner, owner_id, key)
    return respond(vr, {"meta": {key: meta[key]}})


def set_key(
    request: Request, vr: VolumeRequest, owner: MetadataOwner, owner_id: str, key: str, value: str
) -> JSONResponse:
    with runtime(request).db.session() as s:
        row = owner.load(s, vr.ctx, owner_id)
        setattr(row, owner.column, {**_read(row, owner), key: value})
    return respond(vr, {"meta": {key: value}})


def delete_key(request: Request, vr: VolumeRequest, owner: MetadataOwner, owner_id: str, key: str) -> None:
    with runtime(request).db.session() as s:
        row = owner.load(s, vr.ctx, owner_id)
        meta = _read(row, owner)
        if key not in meta:
            raise key_missing(owner, owner_id, key)
        del meta[key]
        setattr(row, owner.column, meta)
