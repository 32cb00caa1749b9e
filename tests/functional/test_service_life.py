"""Service life of compute hosts (issue 18): a host without a heartbeat within service_down_time is
down (os-services, host_status UNKNOWN, the scheduler skips it), forced down works, an agent
restarted with its name takes its records back, a service without servers can be deleted with its
hypervisor and provider; the split commands refuse memory:// and an old schema; two deployments
on one broker keep their messages apart."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import update

from novalite.cli import main
from novalite.compute import hosts as compute_hosts
from novalite.compute.rpcapi import REGISTRY, TerminateInstance
from novalite.db.base import upgrade, utcnow
from novalite.db.models.placement import Service
from novalite.messaging.transport import Transport
from tests.conftest import Api, require_service
from tests.functional.test_servers_api import SERVERS, create, make_active, show

SERVICES = "/compute/v2.1/os-services"


def _services(stack: Api, host: str) -> list[dict[str, Any]]:
    r = stack.get(f"{SERVICES}?binary=nova-compute&host={host}", as_="admin", version="2.53")
    assert r.status_code == 200, r.text
    return r.json()["services"]  # type: ignore[no-any-return]


def _age_heartbeat(stack: Any, host: str, seconds: int) -> None:
    with stack.runtime.db.session() as s:
        s.execute(
            update(Service)
            .where(Service.host == host)
            .values(last_seen_at=utcnow() - dt.timedelta(seconds=seconds))
        )


def _host_of(stack: Api, sid: str) -> str:
    return str(show(stack, sid, as_="admin", version="2.16")["OS-EXT-SRV-ATTR:host"])


def _two_servers_on_two_hosts(stack: Api) -> dict[str, str]:
    by_host: dict[str, str] = {}
    for i in range(2):
        sid = create(stack, f"vm{i}")["server"]["id"]
        make_active(stack, sid)
        by_host[_host_of(stack, sid)] = sid
    assert set(by_host) == {"fake-host-1", "fake-host-2"}  # the RAM weigher spreads them
    return by_host


def test_a_host_without_heartbeat_is_down_and_skipped(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=2, report_interval=3600, service_down_time=60)
    on = _two_servers_on_two_hosts(stack)
    _age_heartbeat(stack, "fake-host-2", 120)
    assert _services(stack, "fake-host-2")[0]["state"] == "down"
    assert _services(stack, "fake-host-1")[0]["state"] == "up"
    assert show(stack, on["fake-host-2"], as_="admin", version="2.16")["host_status"] == "UNKNOWN"
    assert show(stack, on["fake-host-1"], as_="admin", version="2.16")["host_status"] == "UP"
    for i in range(3):
        sid = create(stack, f"later{i}")["server"]["id"]
        make_active(stack, sid)
        assert _host_of(stack, sid) == "fake-host-1"
    r = stack.get("/compute/v2.1/os-hypervisors/detail", as_="admin", version="2.53")
    states = {h["hypervisor_hostname"]: h["state"] for h in r.json()["hypervisors"]}
    assert states == {"fake-host-1": "up", "fake-host-2": "down"}


def test_forced_down_host(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=2)
    on = _two_servers_on_two_hosts(stack)
    svc = _services(stack, "fake-host-2")[0]
    r = stack.put(f"{SERVICES}/{svc['id']}", as_="admin", version="2.53", json={"forced_down": True})
    assert r.status_code == 200, r.text
    assert r.json()["service"]["forced_down"] is True
    assert r.json()["service"]["state"] == "down"
    assert show(stack, on["fake-host-2"], as_="admin", version="2.16")["host_status"] == "DOWN"
    for i in range(3):
        sid = create(stack, f"while-forced{i}")["server"]["id"]
        make_active(stack, sid)
        assert _host_of(stack, sid) == "fake-host-1"
    r = stack.put(f"{SERVICES}/{svc['id']}", as_="admin", version="2.53", json={"forced_down": False})
    assert r.json()["service"]["state"] == "up"
    assert show(stack, on["fake-host-2"], as_="admin", version="2.16")["host_status"] == "UP"


def _hypervisors(stack: Api) -> list[str]:
    r = stack.get("/compute/v2.1/os-hypervisors", as_="admin", version="2.53")
    return sorted(h["hypervisor_hostname"] for h in r.json()["hypervisors"])


def _providers(stack: Api) -> list[str]:
    r = stack.get("/placement/resource_providers", as_="admin")
    assert r.status_code == 200, r.text
    return sorted(p["name"] for p in r.json()["resource_providers"])


def test_a_restarted_agent_takes_its_records_back_and_a_deleted_one_comes_back(stack_factory: Any) -> None:
    stack = stack_factory(fake_hosts=1)
    rt = stack.runtime
    for _ in range(2):  # a compute process started twice with the same --host
        rt.db.write(lambda s: compute_hosts.register(rt.settings, s, ["cx"]))
    assert _hypervisors(stack) == ["cx", "fake-host-1"]
    assert _providers(stack) == ["cx", "fake-host-1"]
    svc = _services(stack, "cx")[0]
    assert svc["state"] == "up"
    # a service hosting servers is kept (409); one without goes, with its hypervisor and provider
    sid = create(stack)["server"]["id"]
    make_active(stack, sid)
    busy = _services(stack, _host_of(stack, sid))[0]
    r = stack.delete(f"{SERVICES}/{busy['id']}", as_="admin", version="2.53")
    assert r.status_code == 409, r.text
    assert "hosting instances" in r.json()["conflictingRequest"]["message"]
    r = stack.delete(f"{SERVICES}/{svc['id']}", as_="admin", version="2.53")
    assert r.status_code == 204, r.text
    assert _services(stack, "cx") == []
    assert _hypervisors(stack) == ["fake-host-1"]
    assert _providers(stack) == ["fake-host-1"]
    rt.db.write(lambda s: compute_hosts.register(rt.settings, s, ["cx"]))  # the agent starts again
    assert [s["state"] for s in _services(stack, "cx")] == ["up"]
    assert _hypervisors(stack) == ["cx", "fake-host-1"]
    assert _providers(stack) == ["cx", "fake-host-1"]
    assert stack.get(f"{SERVERS}/{sid}", as_="admin").json()["server"]["status"] == "ACTIVE"


# -- the split commands -----------------------------------------------------------------------------


def test_split_commands_refuse_memory_transport(tmp_path: Path) -> None:
    for command in (["conductor"], ["compute", "--host", "c1"], ["api"]):
        result = CliRunner().invoke(
            main, [*command, "--data-dir", str(tmp_path), "--transport-url", "memory://"]
        )
        assert result.exit_code == 1, result.output
        assert "through a message broker" in result.output
        assert "amqp://" in result.output


def test_split_commands_refuse_an_old_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0008")
    args = ["--data-dir", str(tmp_path), "--database-url", url, "--transport-url", "amqp://u:p@127.0.0.1:1/v"]
    result = CliRunner().invoke(main, ["compute", "--host", "c1", *args])
    assert result.exit_code == 1
    assert "database schema is at revision 0008, this novalite needs" in result.output
    assert "run `novalite db upgrade`" in result.output
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    result = CliRunner().invoke(main, ["conductor", *args[:3], empty, *args[4:]])
    assert "database schema is at revision none (an empty database)" in result.output


# -- the broker -------------------------------------------------------------------------------------


def _vhost() -> tuple[str, str | None]:
    """A fresh vhost on the local RabbitMQ (removed by the caller), or "/" when rabbitmqctl is absent."""
    require_service("127.0.0.1", 5672, "RabbitMQ")
    if shutil.which("rabbitmqctl") is None:
        return "amqp://guest:guest@127.0.0.1:5672//", None
    name = "novalite-test-" + uuid.uuid4().hex[:8]
    subprocess.run(["rabbitmqctl", "add_vhost", name], check=True, capture_output=True, timeout=60)
    subprocess.run(
        ["rabbitmqctl", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return f"amqp://guest:guest@127.0.0.1:5672/{name}", name


def _drop_vhost(name: str | None) -> None:
    if name is not None:
        subprocess.run(["rabbitmqctl", "delete_vhost", name], capture_output=True, timeout=60)


class _Inbox:
    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []
        self.event = threading.Event()

    def __call__(self, topic: str, msg: Any) -> None:
        self.got.append((topic, msg.instance_uuid))
        self.event.set()


def test_two_prefixes_on_one_broker_and_per_host_queues() -> None:
    url, vhost = _vhost()
    a, b = Transport(url, namespace="deploy-a."), Transport(url, namespace="deploy-b.")
    try:
        host_1, host_2, other = _Inbox(), _Inbox(), _Inbox()
        a.serve(["compute.h1"], host_1, REGISTRY)  # novalite compute --host h1
        a.serve(["compute.h2"], host_2, REGISTRY)
        b.serve(["compute"], other, REGISTRY)  # another deployment's all-in-one engine
        ctx: dict[str, Any] = {}
        a.cast("compute", TerminateInstance(context=ctx, instance_uuid="for-h1", host="h1"))
        a.cast("compute", TerminateInstance(context=ctx, instance_uuid="for-h2", host="h2"))
        assert host_1.event.wait(20) and host_2.event.wait(20)
        assert host_1.got == [("compute.h1", "for-h1")]
        assert host_2.got == [("compute.h2", "for-h2")]
        b.cast("compute", TerminateInstance(context=ctx, instance_uuid="b-any", host="h1"))
        assert other.event.wait(20)
        assert other.got == [("compute.h1", "b-any")]  # the all-in-one queue gets every host's
        assert host_1.got == [("compute.h1", "for-h1")]  # nothing of deployment b reached a
    finally:
        a.stop()
        b.stop()
        _drop_vhost(vhost)


def test_compute_refuses_a_host_name_that_is_no_queue_name(tmp_path: Path) -> None:
    args = ["--data-dir", str(tmp_path), "--transport-url", "amqp://u:p@127.0.0.1:1/v"]
    result = CliRunner().invoke(main, ["compute", "--host", "a b", *args])
    assert result.exit_code == 2
    assert "'a b' is not a host name" in result.output
