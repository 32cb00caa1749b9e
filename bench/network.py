"""Network data plane figures with real guests: how long from ``POST /servers`` until the guest
answers a ping on its tenant network, and the ping round trip between two guests on one network.

    .venv/bin/python bench/network.py                 # 2 guests, TCG unless KVM works
    .venv/bin/python bench/network.py --accelerator tcg

It starts ``novalite serve --driver qemu --network-dataplane on`` on a fresh data dir (root,
QEMU, dnsmasq and nft needed: scripts/install-qemu.sh, scripts/install-network.sh), creates a
network, a subnet, a security group admitting ICMP and two ports with fixed IPs. A client
namespace joined to the network's bridge by a veth (the only address it adds is inside that
namespace) pings the first guest's fixed IP (one-second tries, busybox ping) from the moment of
the POST; the second guest's user_data runs ``ping -c N`` to the first and prints busybox's
``round-trip`` line on its console. Everything is deleted at the end, the namespace and the
server included, also on failure.
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ADMIN_PW, BenchError, authenticate, start_server  # noqa: E402

CIDR, IP1, IP2, CLIENT_IP = "10.78.0.0/24", "10.78.0.11", "10.78.0.12", "10.78.0.250/24"
RTT = re.compile(r"round-trip min/avg/max = ([\d.]+)/([\d.]+)/([\d.]+) ms")


class Cloud:
    def __init__(self, url: str) -> None:
        auth = authenticate(f"{url}/identity", "admin", ADMIN_PW, "admin")
        self.h = {"X-Auth-Token": auth.token}
        self.compute, self.network = auth.endpoint("compute"), auth.endpoint("network") + "/v2.0"

    def call(
        self, method: str, url: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 202, 204)
    ) -> Any:
        r = httpx.request(method, url, json=body, headers=self.h, timeout=60)
        if r.status_code not in ok:
            raise BenchError(f"{method} {url} answered {r.status_code}: {r.text[:300]}")
        return r.json() if r.content else None


def _ns(ns: str, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *args], capture_output=True, text=True, check=check)


def run(args: argparse.Namespace) -> None:
    for tool in ("ip", "dnsmasq", "nft", "busybox", "qemu-system-x86_64"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} missing: run scripts/install-qemu.sh and scripts/install-network.sh")
    server = start_server("--driver", "qemu", "--accelerator", args.accelerator, "--network-dataplane", "on")
    ns = f"nlbn-{uuid.uuid4().hex[:8]}"
    c = Cloud(server.url)
    made: dict[str, list[str]] = {"servers": [], "ports": [], "networks": [], "groups": []}
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        flavor = c.call(
            "POST", f"{c.compute}/flavors", {"flavor": {"name": "bn", "ram": 128, "vcpus": 1, "disk": 1}}
        )
        net = c.call("POST", f"{c.network}/networks", {"network": {"name": "bench-net"}})["network"]
        made["networks"].append(net["id"])
        subnet = {"network_id": net["id"], "cidr": CIDR, "ip_version": 4}
        sub = c.call("POST", f"{c.network}/subnets", {"subnet": subnet})["subnet"]
        group = c.call("POST", f"{c.network}/security-groups", {"security_group": {"name": "bench-icmp"}})
        gid = group["security_group"]["id"]
        made["groups"].append(gid)
        rule = {"security_group_id": gid, "direction": "ingress", "protocol": "icmp"}
        c.call("POST", f"{c.network}/security-group-rules", {"security_group_rule": rule})
        ports = []
        for ip in (IP1, IP2):
            body = {"network_id": net["id"], "security_groups": [gid],
                    "fixed_ips": [{"subnet_id": sub["id"], "ip_address": ip}]}  # fmt: skip
            port = c.call("POST", f"{c.network}/ports", {"port": body})["port"]
            made["ports"].append(port["id"])
            ports.append(port["id"])
        image = httpx.get(f"{server.url}/image/v2/images?name=novalite-guest", headers=c.h).json()["images"][
            0
        ]
        user_data = f"#!/bin/sh\nsleep 2\nping -c {args.count} {IP1} >/dev/console 2>&1\n"

        def create(name: str, port: str, data: str | None) -> str:
            body: dict[str, Any] = {"name": name, "imageRef": image["id"], "networks": [{"port": port}]}
            body["flavorRef"] = flavor["flavor"]["id"]
            if data:
                body["user_data"] = base64.b64encode(data.encode()).decode()
                body["config_drive"] = True
            sid = str(c.call("POST", f"{c.compute}/servers", {"server": body})["server"]["id"])
            made["servers"].append(sid)
            return sid

        started = time.monotonic()
        create("bench-net-1", ports[0], None)
        bridge = f"brq-{net['id'][:11]}"
        veth = "nlbn" + ns[-8:]
        while not Path(f"/sys/class/net/{bridge}").exists():
            if time.monotonic() - started > args.timeout:
                raise BenchError(f"no bridge {bridge} after {args.timeout} s")
            time.sleep(0.1)
        for cmd in (["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns],
                    ["ip", "link", "set", veth, "master", bridge, "up"]):  # fmt: skip
            subprocess.run(cmd, check=True)
        _ns(ns, "ip", "addr", "add", CLIENT_IP, "dev", "eth0", check=True)
        _ns(ns, "ip", "link", "set", "eth0", "up", check=True)
        while _ns(ns, "busybox", "ping", "-c", "1", "-W", "1", IP1).returncode != 0:
            if time.monotonic() - started > args.timeout:
                raise BenchError(f"the first guest did not answer a ping within {args.timeout} s")
        answered = time.monotonic() - started
        print(
            f"POST -> guest answers ping from a namespace: {answered:.1f} s (accelerator {args.accelerator})",
            flush=True,
        )

        second = create("bench-net-2", ports[1], user_data)
        while True:
            got = c.call(
                "POST", f"{c.compute}/servers/{second}/action", {"os-getConsoleOutput": {}}, ok=(200, 409)
            )  # 409 until the server is ACTIVE
            found = RTT.search(got.get("output", "") if isinstance(got, dict) else "")
            if found:
                break
            if time.monotonic() - started > 2 * args.timeout:
                raise BenchError("the second guest printed no ping summary")
            time.sleep(2)
        low, avg, high = found.groups()
        print(f"ping between two guests ({args.count} pings): min {low} / avg {avg} / max {high} ms")
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        for sid in made["servers"]:
            c.call("DELETE", f"{c.compute}/servers/{sid}", ok=(204, 404))
        deadline = time.monotonic() + args.timeout
        while made["servers"] and time.monotonic() < deadline:
            left = [s for s in made["servers"]
                    if httpx.get(f"{c.compute}/servers/{s}", headers=c.h).status_code != 404]  # fmt: skip
            if not left:
                break
            time.sleep(1)
        for kind, path in (("ports", "ports"), ("networks", "networks"), ("groups", "security-groups")):
            for ident in made[kind]:
                c.call("DELETE", f"{c.network}/{path}/{ident}", ok=(204, 404, 409))
        time.sleep(3)  # the data plane watcher removes the bridge, taps and dnsmasq
        if server.process is not None:
            server.process.terminate()
            server.process.wait(60)
        if server.data_dir is not None:
            from novalite.network.dataplane import reconcile

            reconcile.teardown(server.data_dir)
            shutil.rmtree(server.data_dir, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accelerator", default="auto", choices=("auto", "kvm", "tcg"))
    p.add_argument("--count", type=int, default=20, help="pings between the two guests")
    p.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args()
    try:
        run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
