"""``pipeline.create_servers``: creates that arrive together run as one batch (one read
transaction for the checks, one store, then the hand-offs) and each one ends as if it had run
alone: a bad flavor, a create over quota or a failed hand-off is that create's error only, and
leaves no rows behind; the others are stored, handed off and built. On SQLite and PostgreSQL (where
an error ends a transaction, so the checks after a rejected create run in a new one)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import func, select

from novalite.api.microversion import V
from novalite.context import RequestContext
from novalite.db.models.compute import Instance, RequestSpec
from novalite.errors import BadRequest, OverQuota
from novalite.messaging.transport import PeerUnavailable
from novalite.services.create_server import pipeline
from novalite.services.create_server.request import CreateServerRequest, CreateServerResult
from tests.conftest import Api


def _ctx(stack: Api) -> RequestContext:
    return RequestContext(
        user_id=stack.ids["demo_user"], project_id=stack.ids["demo_project"], roles=("member",)
    )


def _request(stack: Api, image: str, name: str, **server: Any) -> CreateServerRequest:
    body = {"server": {"name": name, "flavorRef": "1", "imageRef": image, **server}}
    return CreateServerRequest.from_body(body, _ctx(stack), V(2, 1))


def _image(stack: Api) -> str:
    return str(stack.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"])


def _rows(stack: Api) -> tuple[list[str], int]:
    with stack.runtime.db.reader() as s:  # type: ignore[attr-defined]
        names = sorted(s.scalars(select(Instance.display_name).where(Instance.deleted.is_(False))))
        specs = int(s.scalar(select(func.count()).select_from(RequestSpec)) or 0)
    return names, specs


@pytest.mark.parametrize("postgres", [False, True], ids=["sqlite", "postgresql"])
def test_each_create_of_a_batch_ends_as_if_alone(stack_factory: Any, postgres: bool) -> None:
    stack = stack_factory(postgres=postgres)
    r = stack.put(
        f"/compute/v2.1/os-quota-sets/{stack.ids['demo_project']}",
        as_="admin",
        json={"quota_set": {"instances": 3}},
    )
    assert r.status_code == 200, r.text
    image = _image(stack)
    reqs = [
        _request(stack, image, "first"),
        _request(stack, image, "bad-flavor", flavorRef="no-such-flavor"),
        _request(stack, image, "second", min_count=1, max_count=1),
        _request(stack, image, "bad-image", imageRef="00000000-0000-0000-0000-00000000dead"),
        _request(stack, image, "third"),
        _request(stack, image, "over-quota"),  # the fourth of an instances quota of 3
    ]
    outcomes = pipeline.create_servers(stack.runtime, reqs)  # type: ignore[attr-defined]

    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == [
        "CreateServerResult",
        "BadRequest",
        "CreateServerResult",
        "BadRequest",
        "CreateServerResult",
        "OverQuota",
    ], outcomes
    assert isinstance(outcomes[1], BadRequest) and "Flavor no-such-flavor could not be found" in str(
        outcomes[1]
    )
    assert isinstance(outcomes[3], BadRequest) and "Can not find requested image" in str(outcomes[3])
    assert isinstance(outcomes[5], OverQuota) and "Quota exceeded for instances" in str(outcomes[5])
    assert _rows(stack) == (["first", "second", "third"], 3)
    for outcome in (outcomes[0], outcomes[2], outcomes[4]):
        assert isinstance(outcome, CreateServerResult)
        r = stack.wait_for(
            f"/compute/v2.1/servers/{outcome.first_uuid}", lambda r: r.json()["server"]["status"] != "BUILD"
        )
        assert r.json()["server"]["status"] == "ACTIVE"


def test_a_batch_is_handed_to_the_conductor_in_one_message(
    stack_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18 (throughput): the creates of a batch cross the broker as one message, and each
    is scheduled and built as if it had come alone."""
    stack = stack_factory(fake_hosts=2)
    image = _image(stack)
    transport = stack.runtime.services.conductor.transport  # type: ignore[attr-defined]
    sent: list[Any] = []
    real_cast = transport.cast

    def cast(topic: str, msg: Any) -> None:
        sent.append((topic, msg))
        real_cast(topic, msg)

    monkeypatch.setattr(transport, "cast", cast)
    names = ["one", "two", "three"]
    outcomes = pipeline.create_servers(
        stack.runtime,  # type: ignore[attr-defined]
        [_request(stack, image, n) for n in names],
    )
    assert all(isinstance(o, CreateServerResult) for o in outcomes), outcomes
    assert [(t, type(m).__name__) for t, m in sent] == [("conductor", "ScheduleAndBuildMany")]
    carried = [u for r in sent[0][1].requests for u in r["instance_uuids"]]
    assert carried == [o.first_uuid for o in outcomes]  # type: ignore[union-attr]
    for outcome in outcomes:
        r = stack.wait_for(
            f"/compute/v2.1/servers/{outcome.first_uuid}",  # type: ignore[union-attr]
            lambda r: r.json()["server"]["status"] != "BUILD",
        )
        assert r.json()["server"]["status"] == "ACTIVE"


def test_a_failed_hand_off_removes_only_the_rows_of_creates_recovery_cannot_build(
    stack_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine is restarting (the message cannot be sent): creates that recovery can build from
    the database alone stay accepted; one with files to inject (carried only by the message) gets
    the error and its rows are removed."""
    stack = stack_factory()
    image = _image(stack)
    transport = stack.runtime.services.conductor.transport  # type: ignore[attr-defined]

    def cast(_topic: str, _msg: Any) -> None:
        raise PeerUnavailable("The compute engine is restarting; retry shortly.")

    monkeypatch.setattr(transport, "cast", cast)
    files = [{"path": "/etc/motd", "contents": base64.b64encode(b"hello").decode()}]
    outcomes = pipeline.create_servers(
        stack.runtime,  # type: ignore[attr-defined]
        [
            _request(stack, image, "lucky"),
            _request(stack, image, "unlucky", personality=files),
            _request(stack, image, "also-lucky"),
        ],
    )
    assert [type(o).__name__ for o in outcomes] == [
        "CreateServerResult",
        "PeerUnavailable",
        "CreateServerResult",
    ]
    assert _rows(stack) == (["also-lucky", "lucky"], 2)


def test_a_batch_of_one_refused_create_leaves_nothing(stack_factory: Any) -> None:
    stack = stack_factory()
    (outcome,) = pipeline.create_servers(
        stack.runtime,
        [  # type: ignore[attr-defined]
            _request(stack, _image(stack), "x", flavorRef="42")
        ],
    )
    assert isinstance(outcome, BadRequest) and "Flavor 42 could not be found" in str(outcome)
    assert _rows(stack) == ([], 0)


def test_creates_of_a_batch_see_flavors_as_their_own_project_does(stack_factory: Any) -> None:
    """The checks of a batch read a flavor once per project and role: a private flavor the admin
    may use stays invisible to the demo project in the same batch, and the other way round."""
    stack = stack_factory()
    r = stack.post(
        "/compute/v2.1/flavors",
        as_="admin",
        json={
            "flavor": {
                "name": "private",
                "ram": 64,
                "vcpus": 1,
                "disk": 1,
                "id": "priv-batch",
                "os-flavor-access:is_public": False,
            }
        },
    )
    assert r.status_code == 200, r.text
    admin = RequestContext(
        user_id=stack.ids["admin_user"], project_id=stack.ids["admin_project"], roles=("admin",)
    )
    image = _image(stack)

    def req(ctx: RequestContext, name: str) -> CreateServerRequest:
        body = {"server": {"name": name, "flavorRef": "priv-batch", "imageRef": image}}
        return CreateServerRequest.from_body(body, ctx, V(2, 1))

    outcomes = pipeline.create_servers(
        stack.runtime,
        [  # type: ignore[attr-defined]
            req(admin, "admins"),
            req(_ctx(stack), "demos"),
            req(admin, "admins-too"),
        ],
    )
    assert [type(o).__name__ for o in outcomes] == ["CreateServerResult", "BadRequest", "CreateServerResult"]
    assert "Flavor priv-batch could not be found" in str(outcomes[1])
    assert _rows(stack)[0] == ["admins", "admins-too"]
