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
    peak_pss_mb: float = 0.0
    processes: int = 0
    _sampler: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def _tree(self) -> list[Any]:
        """psutil handles on the server process and its children (the engine process, when
        ``novalite serve`` runs one)."""
        import psutil

        assert self.process is not None
        proc = psutil.Process(self.process.pid)
        return [proc, *proc.children(recursive=True)]

    def sample_rss(self) -> None:
        """Every 0.2 s: the process tree's RSS (pages shared between its processes counted in each)
        and PSS (shared pages split among the processes that map them, so the tree's total counts
        them once); keeps the peaks."""
        if self.process is None:
            return
        import psutil

        def run() -> None:
            while not self._stop.is_set():
                try:
                    tree = self._tree()
                    rss = sum(p.memory_info().rss for p in tree) / 1024 / 1024
                    pss = sum(_pss_bytes(p) for p in tree) / 1024 / 1024
                    self.processes = max(self.processes, len(tree))
                except psutil.Error:
                    return
                self.peak_rss_mb = max(self.peak_rss_mb, rss)
                self.peak_pss_mb = max(self.peak_pss_mb, pss)
                time.sleep(0.2)

        self._sampler = threading.Thread(target=run, daemon=True)
        self._sampler.start()

    def memory_now(self) -> tuple[float, float]:
        """(RSS, PSS) of the process tree now, in MB."""
        tree = self._tree()
        return (
            sum(p.memory_info().rss for p in tree) / 1024 / 1024,
            sum(_pss_bytes(p) for p in tree) / 1024 / 1024,
        )

    def memory_line(self) -> str:
        procs = "1 process" if self.processes <= 1 else f"{self.processes} processes"
        return f"server peak memory ({procs}): RSS {self.peak_rss_mb:.0f} MB, PSS {self.peak_pss_mb:.0f} MB"

    def cpu_seconds(self) -> float:
        """User + system CPU the server's processes have used so far (0 for an external endpoint)."""
        if self.process is None:
            return 0.0
        total = 0.0
        for p in self._tree():
            times = p.cpu_times()
            total += float(times.user + times.system)
        return total

    def stop(self) -> None:
        self._stop.set()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _pss_bytes(proc: Any) -> int:
    """Proportional set size from /proc/PID/smaps_rollup (Linux); RSS where that is missing."""
    try:
        with open(f"/proc/{proc.pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(proc.memory_info().rss)


def start_server(*args: str, database_url: str | None = None, quiet: bool = True) -> Server:
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="novalite-bench-"))
    env = dict(
        os.environ,
        NOVALITE_ADMIN_PASSWORD=ADMIN_PW,
        NOVALITE_DEMO_PASSWORD=ADMIN_PW,
        NOVALITE_WRITE_CLOUDS_YAML="false",
        NOVALITE_LOG_LEVEL="warning",
    )
    cmd = [
        str(Path(sys.executable).parent / "novalite"),
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(tmp),
        *args,
    ]
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
    server = Server(
        url=url, process=proc, data_dir=tmp, started_at=started, first_answer_s=time.monotonic() - started
    )
    server.sample_rss()
    return server


@dataclass(frozen=True)
class Auth:
    """A project-scoped token and what came with it."""

    token: str
    project_id: str
    endpoints: dict[str, str]  # service type -> public URL, from the catalog

    def endpoint(self, service_type: str) -> str:
        try:
            return self.endpoints[service_type]
        except KeyError:
            raise BenchError(f"the catalog has no public {service_type} endpoint") from None


class BenchError(Exception):
    """Why a benchmark cannot go on, in words for its user (the scripts print it and exit 1)."""


def identity_v3(auth_url: str) -> str:
    """The Identity v3 root for an auth URL as clouds.yaml writes it: ``http://HOST/identity``,
    ``http://HOST:5000`` or either with ``/v3`` already on it."""
    url = auth_url.rstrip("/")
    return url if url.endswith("/v3") else url + "/v3"


def authenticate(auth_url: str, user: str, password: str, project: str, domain: str = "Default") -> Auth:
    """Password authentication, scoped to ``project`` (user and project in ``domain``, by name)."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"name": domain}, "password": password}},
            },
            "scope": {"project": {"name": project, "domain": {"name": domain}}},
        }
    }
    try:
        r = httpx.post(f"{identity_v3(auth_url)}/auth/tokens", json=body, timeout=30)
    except httpx.HTTPError as exc:
        raise BenchError(f"cannot reach the identity service at {identity_v3(auth_url)}: {exc}") from exc
    if r.status_code != 201:
        raise BenchError(
            f"authentication as {user} in project {project} failed: {r.status_code} {r.text[:300]}"
        )
    doc = r.json()["token"]
    endpoints = {}
    for service in doc.get("catalog", []):
        public = [e["url"] for e in service.get("endpoints", []) if e.get("interface") == "public"]
        if public:
            endpoints[service["type"]] = public[0].rstrip("/")
    return Auth(r.headers["X-Subject-Token"], str(doc["project"]["id"]), endpoints)


def token(url: str, user: str = "admin", password: str = ADMIN_PW, project: str = "admin") -> tuple[str, str]:
    """(token, compute endpoint) for a user of the novalite at ``url``."""
    auth = authenticate(f"{url}/identity", user, password, project)
    return auth.token, auth.endpoint("compute")


def project_id(url: str, user: str = "admin", password: str = ADMIN_PW, project: str = "admin") -> str:
    return authenticate(f"{url}/identity", user, password, project).project_id


def default_image(image_url: str, tok: str) -> str:
    """The id of the first active image the Image service (``image_url``, its catalog URL) lists."""
    r = httpx.get(
        f"{image_url}/v2/images", params={"status": "active"}, headers={"X-Auth-Token": tok}, timeout=30
    )
    if not r.is_success:
        raise BenchError(f"listing the images answered {r.status_code}: {r.text[:300]}; pass --image")
    images = r.json()["images"]
    if not images:
        raise BenchError("no active image found; pass --image")
    return str(images[0]["id"])


class NoResponse(ConnectionError):
    """Not one byte of an answer came: the server closed the connection first."""


class PlainHTTP:
    """A lean HTTP/1.1 client for the timed requests: one keep-alive connection, requests one
    after another, nothing but the status line, the headers and a Content-Length (or chunked)
    body. A benchmark's client shares the machine's cores with the server; httpx spends several
    times more CPU per request than this, which shows up as latency the server did not cause
    (bench/README.md compares both with wrk)."""

    def __init__(self, base_url: str, headers: dict[str, str]):
        from urllib.parse import urlsplit

        parts = urlsplit(base_url)
        self.tls = parts.scheme == "https"
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/")
        fixed = {"Host": parts.netloc, **headers}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())
        self._reader: Any = None
        self._writer: Any = None

    async def request(
        self, method: str, path: str, body: Any = None, *, timeout: float = 120.0
    ) -> tuple[int, bytes]:
        """(status, body). A connection the server closed while it sat idle is replaced before
        use; a request that got no byte of answer on a reused connection is sent once more on a
        new one (a POST too: that is the server dropping the idle connection as it was sent). Any
        other failure is raised: a request may have been carried out, and is never sent twice."""
        import asyncio
        import json as _json

        data = b"" if body is None else _json.dumps(body).encode()
        head = f"{method} {self.prefix}{path} HTTP/1.1\r\n{self._fixed}Content-Length: {len(data)}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        payload = (head + "\r\n").encode() + data
        for attempt in (1, 2):
            if self._reader is not None and self._reader.at_eof():
                self.close()
            reused = self._writer is not None
            if not reused:
                self._reader, self._writer = await asyncio.open_connection(
                    self.host, self.port, ssl=True if self.tls else None
                )
            try:
                async with asyncio.timeout(timeout):
                    self._writer.write(payload)
                    return await self._response()
            except NoResponse:  # on a reused connection: the server dropped it, unread, as it was sent
                self.close()
                if attempt == 2 or not reused:
                    raise
            except BaseException:  # cancelled, timed out or failed mid-request: the socket's state is unknown
                self.close()
                raise
        raise AssertionError("unreachable")

    async def _response(self) -> tuple[int, bytes]:
        try:
            line = await self._reader.readline()
        except ConnectionError as exc:
            raise NoResponse(str(exc)) from exc
        if not line:
            raise NoResponse("the server closed the connection")
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise ConnectionError(f"not an HTTP status line: {line[:80]!r}")
        status = int(parts[1])
        length, chunked, close = 0, False, False
        while True:
            line = await self._reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await self._reader.readline()).split(b";")[0], 16)
                chunk = await self._reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            data = b"".join(parts)
        else:
            data = await self._reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, data

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
