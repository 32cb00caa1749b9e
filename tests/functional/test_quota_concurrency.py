"""Instance quota under concurrency and partial multi-create (§2.3 step 2, §7.4).

30 creates racing against an instances quota of 10 must never leave more than 10 servers,
on SQLite and on PostgreSQL; a multi-create that does not fully fit builds what fits
between min_count and max_count.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import Api

SERVERS = "/compute/v2.1/servers"


def _set_quota(stack: Api, **limits: int) -> None:
    r = stack.put(
        f"/compute/v2.1/os-quota-sets/{stack.ids['demo_project']}", as_="admin", json={"quota_set": limits}
    )
    assert r.status_code == 200, r.text


def _image(stack: Api) -> str:
    return str(stack.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"])


def _live_servers(stack: Api) -> int:
    from novalite.db.models.compute import Instance

    with stack.runtime.db.reader() as s:  # type: ignore[attr-defined]
        return int(
            s.scalar(
                select(func.count())
                .select_from(Instance)
                .where(Instance.project_id == stack.ids["demo_project"], Instance.deleted.is_(False))
            )
            or 0
        )


def _race(stack: Api, workers: int) -> list[int]:
    image = _image(stack)
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(workers)

    def one(i: int) -> None:
        start.wait()
        r = stack.post(SERVERS, json={"server": {"name": f"race-{i}", "imageRef": image, "flavorRef": "1"}})
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


@pytest.mark.parametrize("postgres", [False, True], ids=["sqlite", "postgresql"])
def test_thirty_concurrent_creates_never_exceed_ten(stack_factory: Any, postgres: bool) -> None:
    stack = stack_factory(postgres=postgres)
    _set_quota(stack, instances=10)
    statuses = _race(stack, 30)
    assert sorted(set(statuses)) == [202, 403], statuses
    assert statuses.count(202) == 10  # serialized: exactly the quota, no more, no fewer
    assert _live_servers(stack) == 10
    listed = stack.get(f"{SERVERS}?limit=100").json()["servers"]
    assert len(listed) == 10


def test_partial_multi_create(stack: Api) -> None:
    _set_quota(stack, instances=5)
    image = _image(stack)
    r = stack.post(
        SERVERS,
        json={
            "server": {
                "name": "many",
                "imageRef": image,
                "flavorRef": "1",
                "min_count": 2,
                "max_count": 10,
                "return_reservation_id": True,
            }
        },
    )
    assert r.status_code == 202, r.text
    rid = r.json()["reservation_id"]
    names = sorted(s["name"] for s in stack.get(f"{SERVERS}?reservation_id={rid}").json()["servers"])
    assert names == [f"many-{i}" for i in range(1, 6)]  # 5 fit of 2..10
    r = stack.post(
        SERVERS,
        json={
            "server": {"name": "more", "imageRef": image, "flavorRef": "1", "min_count": 1, "max_count": 3}
        },
    )
    assert r.status_code == 403
    assert (
        r.json()["forbidden"]["message"]
        == "Quota exceeded for instances: Requested 1-3, but already used 5 of 5 instances"
    )
    assert _live_servers(stack) == 5


def test_cores_limit_the_count(stack: Api) -> None:
    _set_quota(stack, instances=10, cores=3)
    r = stack.post(
        SERVERS,
        json={
            "server": {
                "name": "c",
                "imageRef": _image(stack),
                "flavorRef": "3",
                "min_count": 1,
                "max_count": 4,
            }
        },
    )  # m1.medium: 2 vcpus
    assert r.status_code == 202
    assert _live_servers(stack) == 1


def test_a_queued_group_of_creates_is_judged_create_by_create(
    stack: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creates that queue while the create worker waits for the project's quota lock are stored
    together (one quota read, one insert per table: ``pipeline._store_batch``); each one is still
    judged as if it ran after the ones before it: with 3 instances left, a group asking 2, 1-3 and 1
    gets 2, 1 and a 403."""
    from novalite.compute_api.servers import CREATES
    from novalite.db import group_commit
    from novalite.services.create_server import pipeline

    _set_quota(stack, instances=4)
    image = _image(stack)
    batches: list[int] = []
    real = pipeline._store_batch

    def spy(s: Any, plans: list[Any]) -> list[Any]:
        batches.append(len(plans))
        return real(s, plans)

    monkeypatch.setattr(pipeline, "_store_batch", spy)
    db = stack.runtime.db  # type: ignore[attr-defined]
    key = f"quota:{stack.ids['demo_project']}"
    group = group_commit.group(db, key)
    results: dict[str, Any] = {}
    deadline = time.monotonic() + 20

    def post(name: str, lo: int, hi: int) -> None:
        results[name] = stack.post(
            SERVERS,
            json={
                "server": {
                    "name": name,
                    "imageRef": image,
                    "flavorRef": "1",
                    "min_count": lo,
                    "max_count": hi,
                }
            },
        )

    def start(name: str, lo: int, hi: int, queued: int) -> threading.Thread:
        thread = threading.Thread(target=post, args=(name, lo, hi))
        thread.start()
        while CREATES.waiting() < queued:  # one after another, so the batch's order is known
            assert time.monotonic() < deadline, "the create did not queue"
            time.sleep(0.005)
        return thread

    with db.serialized(key):  # hold the lock: the first create waits in it, the next three queue behind
        first = threading.Thread(target=post, args=("first", 1, 1))
        first.start()
        while group._writer.acquire(blocking=False):  # until the first one is the writer
            group._writer.release()
            assert time.monotonic() < deadline, "the first create never became the writer"
            time.sleep(0.005)
        rest = [start("a", 2, 2, 1), start("b", 1, 3, 2), start("c", 1, 1, 3)]
    for t in [first, *rest]:
        t.join(30)
    assert 3 in batches, batches  # a, b and c were stored as one group
    assert results["first"].status_code == 202
    assert results["a"].status_code == 202, results["a"].text
    assert results["b"].status_code == 202, results["b"].text
    assert results["c"].status_code == 403
    assert (
        results["c"].json()["forbidden"]["message"]
        == "Quota exceeded for instances: Requested 1, but already used 4 of 4 instances"
    )
    assert _live_servers(stack) == 4  # first 1 + a 2 + b 1 (of 1-3: only 1 was left)
