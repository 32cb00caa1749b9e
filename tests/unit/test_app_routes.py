"""create_app puts the routers' routes straight into the application (FastAPI would otherwise build
every route a second time for the inclusion): the same routes, in the same order, matched the same way."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, _IncludedRouter

from novalite.app import _flat_routes, _plain, _routers
from novalite.identity.passwords import _verify_scrypt, hash_password, prehash


def _effective(routes: list[Any]) -> list[tuple[str, frozenset[str], Any]]:
    """(path, methods, endpoint) of every route a request can reach, in matching order."""
    out: list[tuple[str, frozenset[str], Any]] = []
    for route in routes:
        if isinstance(route, _IncludedRouter):
            out.extend(
                (c.path_format, frozenset(c.methods or ()), c.endpoint)
                for c in route.effective_route_contexts()
            )
        else:
            out.append((route.path_format, frozenset(getattr(route, "methods", None) or ()), route.endpoint))
    return out


def test_flattened_routes_match_what_include_router_builds() -> None:
    reference = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    flat = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    for router, _entry in _routers():
        reference.include_router(router)
        if _plain(router):
            flat.router.routes.extend(_flat_routes(router))
        else:
            flat.include_router(router)
    assert _effective(flat.router.routes) == _effective(reference.router.routes)
    # nearly everything is a route FastAPI will not rebuild at the first request
    wrapped = [r for r in flat.router.routes if isinstance(r, _IncludedRouter)]
    plain = [r for r in flat.router.routes if isinstance(r, APIRoute)]
    assert len(plain) > 200 and len(wrapped) < 10


def test_a_router_with_its_own_settings_is_included_as_fastapi_does() -> None:
    router = APIRouter(max_body_size=10)
    assert not _plain(router)
    with_handler = APIRouter()
    with_handler.add_event_handler("startup", lambda: None)
    assert not _plain(with_handler)
    outer = APIRouter()
    outer.include_router(APIRouter())
    assert _plain(outer)
    outer.include_router(with_handler)
    assert not _plain(outer)


def test_prehashed_passwords_are_fresh_scrypt_hashes() -> None:
    prehash(["same", "same", "other"])
    first, second, other = hash_password("same"), hash_password("same"), hash_password("other")
    assert first != second  # a salt of its own each
    for stored, password in ((first, "same"), (second, "same"), (other, "other")):
        assert stored.startswith("scrypt$16384$8$1$")
        assert _verify_scrypt(password, stored)
    assert not _verify_scrypt("other", first)
    assert hash_password("same") != first  # nothing pending any more: hashed on the spot
