"""Helpers every API router uses: token check, JSON bodies, schema validation, links, paging."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlencode

import jsonschema
from fastapi import Request
from jsonschema import Draft4Validator, FormatChecker

from novalite.api import policy
from novalite.api.microversion import query_refusal, request_version
from novalite.api.policy import WRITE_METHODS
from novalite.context import RequestContext
from novalite.errors import BadRequest, NotFound, Unauthorized, UnsupportedMediaType
from novalite.runtime import Runtime

T = TypeVar("T")
# the polled reads' threads (server lists and show, see compute_api.servers)
READ_WORKERS = 8
READ_POOL = ThreadPoolExecutor(max_workers=READ_WORKERS, thread_name_prefix="api-read")


async def in_thread(fn: Callable[..., T], *args: Any, pool: ThreadPoolExecutor, **kwargs: Any) -> T:
    """``await fn(*args, **kwargs)`` in a thread of ``pool``, with the caller's context variables:
    what ``starlette.concurrency.run_in_threadpool`` does, through asyncio's executor hand-off
    instead of anyio's (capacity limiter, cancel scope, run-variable lookups per call)."""
    ctx = contextvars.copy_context()
    call = functools.partial(ctx.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool, call)


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def context(request: Request) -> RequestContext:
    """FastAPI dependency: validate X-Auth-Token and build the request context."""
    cached = request.scope.get("state", {}).get("context")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    token = request.headers.get("x-auth-token")
    if not token:
        raise Unauthorized("The request you have made requires authentication.")
    data = runtime(request).tokens.validate(token)
    url_project = request.scope.get("state", {}).get("url_project_id")
    ctx = RequestContext(
        user_id=data.user_id,
        project_id=data.project_id,
        roles=data.role_names,
        user_name=data.user_name,
        project_name=data.project_name,
        request_id=request.scope.get("state", {}).get("request_id", ""),
    )
    if url_project and url_project != data.project_id and not ctx.is_admin:
        raise BadRequest(
            f"Malformed request URL: URL's project_id '{url_project}' doesn't match Context's project_id "
            f"'{data.project_id}'"
        )
    # 2.102: the GETs that take no query parameter refuse one (before the policy check, as Nova)
    if request.method == "GET" and request.scope.get("query_string"):
        route = request.scope.get("route")
        refusal = query_refusal(
            "GET",
            getattr(route, "path_format", ""),
            request_version(request),
            request.query_params.multi_items(),
        )
        if refusal is not None:
            raise BadRequest(refusal)
    # secure RBAC from the policy tables (api.policy): for a non-admin token, one dict lookup by
    # the matched route, no I/O; an action's body was read by request_context
    if not ctx.is_admin:
        denied = policy.check(request.method, request.scope, ctx.roles, getattr(request, "_body", None))
        if denied is not None:
            raise denied
    request.scope.setdefault("state", {})["context"] = ctx
    return ctx


async def request_context(request: Request) -> RequestContext:
    """``context`` as an async dependency: the same checks, run on the event loop instead of a
    worker thread (a token is decrypted once, then cached: no I/O). A write to an ``.../action``
    URL has its body read first (the route reads the same cached bytes), so that a refusal names
    the action's rule."""
    if request.method in WRITE_METHODS and request.scope["path"].endswith("/action"):
        await request.body()
    return context(request)


async def json_body(request: Request, *, required: bool = True) -> Any:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise BadRequest(
                "The server could not comply with the request since it is either malformed or "
                "otherwise incorrect."
            )
        return None
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype and ctype not in (
        "application/json",
        "application/openstack-images-v2.1-json-patch",
        "application/json-patch+json",
        "text/plain",
        "",
    ):
        raise UnsupportedMediaType(f"Unsupported Content-Type: {ctype}")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting too
        raise BadRequest("Malformed request body") from None
    # JSON spells NUL only as the escape \u0000 (a raw control character is malformed above; NUL
    # bytes are a UTF-16/32 body), a lone surrogate as an escape \udXXX or its bytes (json.loads
    # decodes with 'surrogatepass'): a scan of the bytes on every body, the walk only on a hit
    if b"\\u0000" in raw or b"\x00" in raw or _MAYBE_SURROGATE.search(raw):
        reject_nul_in(body)
    return body


NUL_IN_BODY = "Invalid input: the request body contains a NUL character."
SURROGATE_IN_BODY = (
    "Invalid input: the request body contains a string that is not valid Unicode (a lone surrogate)."
)
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def reject_nul_in(value: Any) -> None:
    """400 when a string (or key) of a parsed JSON value holds NUL or a lone surrogate (a string
    with no UTF-8 form): PostgreSQL text cannot store either, and no OpenStack API takes them."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise BadRequest(NUL_IN_BODY)
            if not item.isascii():
                try:
                    item.encode()
                except UnicodeEncodeError:
                    raise BadRequest(SURROGATE_IN_BODY) from None
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


_format_checker = FormatChecker()


def _field_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return "/".join(parts) if parts else ""


# schema (by identity) -> its validator: schemas built once (module constants, cached builders)
# are not re-wrapped on every request. The entry keeps its schema alive, so an id is not reused
# while cached; bounded because some callers build a fresh schema per request.
_VALIDATORS: dict[int, tuple[dict[str, Any], Draft4Validator]] = {}
_VALIDATORS_MAX = 512


def _validator(schema: dict[str, Any]) -> Draft4Validator:
    cached = _VALIDATORS.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    validator = Draft4Validator(schema, format_checker=_format_checker)
    if len(_VALIDATORS) >= _VALIDATORS_MAX:
        _VALIDATORS.clear()
    _VALIDATORS[id(schema)] = (schema, validator)
    return validator


# schema (by identity) -> its fastjsonschema function, or None where it could not be compiled;
# schemas with the same content share one (96 microversions have 12 distinct create schemas)
_FAST: dict[int, tuple[dict[str, Any], Callable[[Any], Any] | None]] = {}
_FAST_BY_CONTENT: dict[str, Callable[[Any], Any] | None] = {}
_FAST_LOCK = threading.Lock()


def _fast_validator(schema: dict[str, Any]) -> Callable[[Any], Any] | None:
    cached = _FAST.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    with _FAST_LOCK:  # one compile per schema even when the first requests arrive together
        key = json.dumps(schema, sort_keys=True, default=repr)
        if key not in _FAST_BY_CONTENT:
            _FAST_BY_CONTENT[key] = _compile_fast(schema)
        compiled = _FAST_BY_CONTENT[key]
        if len(_FAST) >= _VALIDATORS_MAX:
            _FAST.clear()
        _FAST[id(schema)] = (schema, compiled)
    return compiled


def _compile_fast(schema: dict[str, Any]) -> Callable[[Any], Any] | None:
    """The schema as fastjsonschema's generated function (slow to compile: see
    ``warm_fast_validation``): no defaults written into the body, no error details (a rejected
    body goes to jsonschema)."""
    import fastjsonschema

    formats = {name: _format_function(check) for name, (check, _raises) in _format_checker.checkers.items()}
    try:
        return fastjsonschema.compile(
            schema,
            formats=formats,
            use_default=False,  # type: ignore[no-any-return]
            detailed_exceptions=False,
        )
    except Exception:  # a schema it cannot compile: jsonschema alone, as before
        return None


def warm_fast_validation(schemas: Sequence[dict[str, Any]]) -> None:
    """Compile these schemas' fast paths now (at start-up) rather than in the first request
    that needs each: a compile holds the GIL for a long while (bench/README.md, "Costs behind the
    code's choices"), which every request in flight would wait for."""
    for schema in schemas:
        _fast_validator(schema)


def _format_function(check: Callable[[Any], Any]) -> Callable[[Any], bool]:
    return lambda value: bool(check(value))  # a check that raises: the body goes to jsonschema


def _has_float(value: Any) -> bool:
    """A walk with a stack, not recursion: a body nested a thousand deep is a 400, not a 500."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def validate(schema: dict[str, Any], body: Any, *, query: bool = False, fast: bool = False) -> None:
    """Validate ``body``; raise BadRequest with Nova's message shape on the first error.

    ``fast`` (POST /servers, whose schema is built once per microversion): a body that the
    schema compiled by fastjsonschema accepts is accepted at once (several times faster than
    jsonschema: bench/README.md, "Costs behind the code's choices"); any other body, and any body holding a
    float, is judged by jsonschema as always, so every error and its message are jsonschema's.
    fastjsonschema counts 1.0 as an integer where Draft 4 does not, hence the floats; otherwise
    it accepted nothing jsonschema rejects in a differential run of 340,000 mutated bodies
    against every microversion's schema (tests/unit/test_fast_validation.py keeps a smaller one).
    The functions are compiled once per distinct schema; ``warm_fast_validation`` at start-up."""
    if fast and not _has_float(body):
        accept = _fast_validator(schema)
        if accept is not None:
            try:
                accept(body)
                return
            except Exception:  # rejected (or the check itself failed): jsonschema decides and explains
                pass
    validator = _validator(schema)
    errors = sorted(validator.iter_errors(body), key=lambda e: (len(list(e.absolute_path)), str(e.path)))
    if not errors:
        return
    error = errors[0]
    if query:
        raise BadRequest(
            f"Invalid input for query parameters {_field_path(error)}. Value: {error.instance}. "
            f"{error.message}"
        )
    if (
        error.validator == "additionalProperties"
        or error.validator == "required"
        or not list(error.absolute_path)
    ):
        raise BadRequest(
            f"Invalid input for field/attribute {_field_path(error) or 'body'}. Value: {error.instance}. "
            f"{error.message}"
        )
    raise BadRequest(
        f"Invalid input for field/attribute {error.absolute_path[-1]}. Value: {error.instance}. "
        f"{error.message}"
    )


def link_prefixes(request: Request, collection: str) -> tuple[str, str]:
    """The ``self`` and ``bookmark`` hrefs of ``collection`` up to the item id (with the trailing
    slash): build them once per listing, then add each id."""
    base = runtime(request).public_url
    project = request.scope.get("state", {}).get("url_project_id")
    prefix = f"/{project}" if project else ""
    return f"{base}/compute/v2.1{prefix}/{collection}/", f"{base}/compute{prefix}/{collection}/"


def compute_links(request: Request, collection: str, item_id: str) -> list[dict[str, str]]:
    self_prefix, bookmark_prefix = link_prefixes(request, collection)
    return [
        {"rel": "self", "href": f"{self_prefix}{item_id}"},
        {"rel": "bookmark", "href": f"{bookmark_prefix}{item_id}"},
    ]


def parse_limit(request: Request, max_limit: int = 1000) -> tuple[int, str | None]:
    raw = request.query_params.get("limit")
    limit = max_limit
    if raw is not None:
        try:
            limit = int(raw)
        except ValueError:
            raise BadRequest("limit param must be an integer") from None
        if limit < 0:
            raise BadRequest("limit param must be positive")
    marker = request.query_params.get("marker")
    return min(limit, max_limit), marker


def next_link(
    request: Request, collection: str, page: Sequence[Any], key: Any, limit: int, max_limit: int = 1000
) -> list[dict[str, str]] | None:
    if not page or len(page) < min(limit, max_limit):
        return None
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("marker",)]
    params.append(("marker", str(key(page[-1]))))
    if not any(k == "limit" for k, _ in params):
        params.append(("limit", str(limit)))
    base = runtime(request).public_url
    project = request.scope.get("state", {}).get("url_project_id")
    prefix = f"/{project}" if project else ""
    return [{"rel": "next", "href": f"{base}/compute/v2.1{prefix}/{collection}?{urlencode(params)}"}]


def not_found(message: str) -> NotFound:
    return NotFound(message)


def reject_nul(request: Request) -> None:
    """Router dependency: a NUL in the path (404) or the query (400) never reaches the database
    (PostgreSQL refuses NUL in text and would turn the request into a 500)."""
    if "\x00" in request.url.path or "%00" in request.url.path:
        raise NotFound("The resource could not be found.")
    if any("\x00" in k or "\x00" in v for k, v in request.query_params.multi_items()):
        raise BadRequest("Invalid input for query parameters: NUL characters are not allowed.")
