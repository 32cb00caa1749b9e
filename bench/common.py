"""Shared pieces of the benchmark scripts: start a server, get a token, percentiles, RSS."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ADMIN_PW = "bench-admin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes] | None
    data_dir: Path | None
    started_at: float = 0.0
    first_answer_s: float = 0.0
    peak_rss_mb: float = 0.0
    _sampler: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample_rss(self) -> None:
        if self.process is None:
            return
        import psutil

        proc = psutil.Process(self.process.pid)

        def run() -> None:
            while not self._stop.is_set():
                try:
                    rss = proc.memory_info().rss / 1024 / 1024
                except psutil.Error:
                    return
                self.peak_rss_mb = max(self.peak_rss_mb, rss)
                time.sleep(0.2)

        self._sampler = threading.Thread(target=run, daemon=True)
        self._sampler.start()

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far (0 for an external endpoint)."""
        if self.process is None:
            return 0.0
        import psutil

        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self._stop.set()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_server(*args: str, database_url: str | None = None, quiet: bool = True) -> Server:
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="novalite-bench-"))
    env = dict(os.environ, NOVALITE_ADMIN_PASSWORD=ADMIN_PW, NOVALITE_DEMO_PASSWORD=ADMIN_PW,
               NOVALITE_WRITE_CLOUDS_YAML="false", NOVALITE_LOG_LEVEL="warning")
    cmd = [str(Path(sys.executable).parent / "novalite"), "serve", "--port", str(port), "--data-dir", str(tmp),
           *args]
    if database_url:
        cmd += ["--database-url", database_url]
    started = time.monotonic()
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"novalite serve exited with {proc.returncode}")
        try:
            if httpx.get(url + "/compute/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.02)
        if time.monotonic() - started > 120:
            proc.kill()
            raise SystemExit("novalite serve did not answer within 120 s")
    server = Server(url=url, process=proc, data_dir=tmp, started_at=started,
                    first_answer_s=time.monotonic() - started)
    server.sample_rss()
    return server


def token(url: str, user: str = "admin", password: str = ADMIN_PW, project: str = "admin") -> tuple[str, str]:
    """(token, compute endpoint) for a user; the endpoint comes from the catalog."""
    r = _auth(url, user, password, project)
    catalog: list[dict[str, Any]] = r.json()["token"]["catalog"]
    compute = next(c for c in catalog if c["type"] == "compute")
    endpoint = next(e["url"] for e in compute["endpoints"] if e["interface"] == "public")
    return r.headers["X-Subject-Token"], endpoint


def _auth(url: str, user: str, password: str, project: str) -> httpx.Response:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}
    r = httpx.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=30)
    r.raise_for_status()
    return r


def project_id(url: str, user: str = "admin", password: str = ADMIN_PW, project: str = "admin") -> str:
    return str(_auth(url, user, password, project).json()["token"]["project"]["id"])


def default_image(compute_url: str, tok: str) -> str:
    """The id of the first active image visible through the compute image proxy or Glance."""
    base = compute_url.split("/compute/")[0]
    r = httpx.get(f"{base}/image/v2/images", params={"status": "active"}, headers={"X-Auth-Token": tok}, timeout=30)
    r.raise_for_status()
    images = r.json()["images"]
    if not images:
        raise SystemExit("no active image found; pass --image")
    return str(images[0]["id"])
