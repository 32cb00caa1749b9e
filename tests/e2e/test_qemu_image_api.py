"""A QEMU compute on "another machine" gets its images over the Image API (issue 18).

``novalite api`` + ``novalite conductor`` on a private PostgreSQL database and RabbitMQ vhost, and
one ``novalite compute --driver qemu`` with NO ``--image-dir``, its own data dir (instances, image
cache) and a config file holding only what a compute machine's would: the API's ``public_url``
(the catalog's built-in endpoints are relative to it) and a ``[service_user]`` password. The
default guest image is uploaded with ``openstack image create --file``; the compute downloads it
as the ``nova`` service user, boots it, and its user_data marker shows on the console.

Needs QEMU, PostgreSQL and RabbitMQ: skips loudly without them, fails under
NOVALITE_REQUIRE_SERVICES=1. Every process, QEMU and file made here is removed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from novalite.virt.qemu.images import base_name
from tests.e2e.test_distributed import NOVALITE, Deployment
from tests.e2e.test_distributed import deployment as deployment  # noqa: F401  (the fixture)
from tests.e2e.test_qemu_two_hosts import _console, _guests_running, _start_api, _upload_guest_image, _wait
from tests.e2e.test_qemu_two_hosts import hosts_root as hosts_root  # noqa: F401  (the fixture)

pytestmark = pytest.mark.e2e

SERVICE_PW = "nova-service-secret"


@pytest.mark.timeout(900)
def test_a_qemu_compute_without_image_dir_fetches_over_the_image_api(
    deployment: Deployment,  # noqa: F811
    hosts_root: Path,  # noqa: F811
) -> None:
    dep = deployment
    dep.env["NOVALITE_SERVICE_USER_PASSWORD"] = SERVICE_PW  # the API's bootstrap creates `nova` with it
    url = _start_api(dep)
    compute_env = {k: v for k, v in dep.env.items() if k != "NOVALITE_SERVICE_USER_PASSWORD"}
    config = dep.tmp / "compute.toml"
    config.write_text(f'[novalite]\npublic_url = "{url}"\n\n[service_user]\npassword = "{SERVICE_PW}"\n')
    data_dir = hosts_root / "qhost"
    database_url = dep.common[dep.common.index("--database-url") + 1]
    transport_url = dep.common[dep.common.index("--transport-url") + 1]
    log = dep.tmp / "qhost.log"
    dep.processes["qhost"] = subprocess.Popen(
        [NOVALITE, "compute", "--host", "qhost", "--driver", "qemu", "--accelerator", "tcg",
         "--network-dataplane", "off", "--config", str(config), "--data-dir", str(data_dir),
         "--database-url", database_url, "--transport-url", transport_url],
        env=compute_env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    dep.wait("the QEMU compute up", lambda: dep.compute_states() == {"qhost": "up"}, timeout=120)
    _upload_guest_image(dep)
    image = dep.openstack("image", "show", "novalite-guest")
    user_data = dep.tmp / "user-data.sh"
    user_data.write_text('#!/bin/sh\necho "marker-from-$(hostname)"\n')
    created = dep.openstack(
        "server", "create", "--image", "novalite-guest", "--flavor", "g1.nano", "--no-network",
        "--config-drive", "true", "--user-data", str(user_data), "--wait", "vm-fetched",
    )  # fmt: skip
    assert created["status"] == "ACTIVE", dep.logs()
    marker = "marker-from-vm-fetched"
    _wait("the guest's user_data marker", lambda: marker in _console(dep, "vm-fetched"), dep)
    # the data came over HTTP into the compute's own cache; it has no image store of its own
    assert (data_dir / "instances" / "_base" / base_name(image["id"])).is_file()
    assert not list((data_dir / "instances" / "_base").glob("*.part"))
    assert not (data_dir / "images").exists()
    assert f"image {image['id']}: " in log.read_text() and "/image/v2/images/" in log.read_text()
    assert dep.cli is not None
    # data changed behind the Image API's back: the download does not match the hash Glance
    # recorded, the build ends in ERROR with a fault that says so, and nothing stays in the cache
    junk = dep.tmp / "junk.raw"
    junk.write_bytes(os.urandom(1 << 20))
    tampered = dep.openstack("image", "create", "--disk-format", "raw", "--container-format", "bare",
                             "--file", str(junk), "tampered")  # fmt: skip
    api_data = Path(dep.common[dep.common.index("--data-dir") + 1])
    (api_data / "images" / tampered["id"]).write_bytes(os.urandom(1 << 20))
    failed = dep.cli.openstack(
        "server", "create", "--image", "tampered", "--flavor", "g1.nano", "--no-network", "--wait", "vm-bad",
        cloud="novalite-admin", check=False,
    )  # fmt: skip
    assert failed.returncode != 0
    bad = dep.openstack("server", "show", "vm-bad")
    assert bad["status"] == "ERROR"
    assert "does not match its checksum" in json.dumps(bad["fault"]), bad["fault"]
    base = data_dir / "instances" / "_base" / base_name(tampered["id"])
    assert not base.exists() and not list(base.parent.glob("*.part"))
    dep.cli.openstack("server", "delete", "--wait", "vm-bad", cloud="novalite-admin")
    dep.cli.openstack("server", "delete", "--wait", "vm-fetched", cloud="novalite-admin")
    _wait("the guest's QEMU gone", lambda: not _guests_running(hosts_root), dep, timeout=120)
    for name, proc in dep.processes.items():
        assert proc.poll() is None, f"{name} exited\n{dep.logs()}"


def test_a_compute_fetching_over_the_api_needs_the_service_password(tmp_path: Path) -> None:
    """Refused at once, with the way out named, before it touches the database or the broker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "NOVALITE_"))}
    env["HOME"] = str(tmp_path)
    database = ["--database-url", f"sqlite:///{tmp_path}/novalite.db"]
    upgrade = [NOVALITE, "db", "upgrade", *database]
    subprocess.run(upgrade, env=env, check=True, capture_output=True, timeout=120)
    done = subprocess.run(  # timeout: it must not get as far as waiting for the broker
        [NOVALITE, "compute", "--host", "h", "--driver", "qemu", "--data-dir", str(tmp_path / "d"),
         *database, "--transport-url", "amqp://u:p@127.0.0.1:1/v"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    if "QEMU" in done.stderr and "--service-password" not in done.stderr:
        pytest.skip(f"no QEMU here, refused for that first: {done.stderr.strip()[-200:]}")
    assert "--service-password" in done.stderr, done.stderr
