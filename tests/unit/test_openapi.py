"""Issue 16: every route is in exactly one service's OpenAPI 3.1 document, whose body schemas are
the schemas the routes validate with; the documents are served without a token."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jsonschema import Draft4Validator

from novalite.api import openapi
from novalite.api.microversion import MAX_VERSION
from novalite.compute_api.schemas import servers
from novalite.identity import schemas as identity_schemas
from tests.conftest import make_settings

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    from novalite.app import build_runtime, create_app
    from novalite.db.base import upgrade

    settings = make_settings(Path(tmp_path_factory.mktemp("openapi")))
    upgrade(settings.effective_database_url)
    return create_app(build_runtime(settings), start_background=False)


def _check_structure(doc: dict[str, Any]) -> None:
    """The parts of the OpenAPI 3.1 schema these documents use, checked by hand (no validator
    library is installed): required fields, path templates and their parameters, operations."""
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["token"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Auth-Token",
    }
    ids = Counter()
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        template = set(re.findall(r"{([^}]+)}", path))
        assert item and set(item) <= METHODS, item.keys()
        for op in item.values():
            ids[op["operationId"]] += 1
            assert op["responses"], op
            in_path = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert in_path == template, (path, in_path)
            for p in op["parameters"]:
                assert p["in"] in {"path", "query", "header", "cookie"} and "schema" in p
                assert p["in"] != "path" or p["required"] is True
            if "requestBody" in op:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                Draft4Validator.check_schema(schema)  # the dialect the document names
    assert all(n == 1 for n in ids.values()), [i for i, n in ids.items() if n > 1]
    json.dumps(doc)


def test_every_route_is_in_exactly_one_document(app: FastAPI) -> None:
    docs = {s: openapi.document(app, s) for s in openapi.SERVICES}
    for doc in docs.values():
        _check_structure(doc)
    ops = openapi.operations(app)
    assert len(ops) > 200
    for op in ops:
        holders = [s for s, doc in docs.items() if op.method.lower() in doc["paths"].get(op.path, {})]
        assert len(holders) == 1, (op, holders)
    documented = sum(len(item) for doc in docs.values() for item in doc["paths"].values())
    assert documented == len(ops)


def test_body_schemas_are_the_validating_schemas(app: FastAPI) -> None:
    identity = openapi.document(app, "identity")["paths"]
    body = identity["/identity/v3/projects"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body is identity_schemas.PROJECT_CREATE
    compute = openapi.document(app, "compute")["paths"]["/compute/v2.1/servers"]["post"]
    assert compute["requestBody"]["content"]["application/json"]["schema"] == servers.create_schema(
        MAX_VERSION
    )
    assert "OpenStack-API-Version" in {p["name"] for p in compute["parameters"]}
    # a body route with no schema of its own still says it takes an object
    network = openapi.document(app, "network")["paths"]["/network/v2.0/networks"]["post"]
    assert network["requestBody"]["content"]["application/json"]["schema"] == {"type": "object"}


def test_documents_are_served_without_a_token(app: FastAPI) -> None:
    client = TestClient(app)
    index = client.get("/openapi").json()["documents"]
    assert set(index) == set(openapi.SERVICES)
    for service, url in index.items():
        r = client.get(url)
        assert r.status_code == 200, r.text
        assert r.json()["openapi"] == "3.1.0"
        assert all(openapi.service_of(p) == service for p in r.json()["paths"])
    r = client.get("/openapi/nothing.json")
    assert r.status_code == 404
    assert "one per service" in r.text
