"""Token signing keys live in a key repository of their own files, not in the database; the data
directory, the database and its side files and the key files are readable by their owner only;
``novalite keys rotate`` reaches a running server without a restart; a database from before the
repository hands its key over (issue 16, "Keys and files")."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import text

from tests.conftest import ADMIN_PW, RunningServer, make_settings, start_server, stop_server

AUTH = {
    "auth": {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PW}},
        },
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
    }
}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _key_files(key_dir: Path) -> dict[int, bytes]:
    return {int(p.name): p.read_bytes().strip() for p in key_dir.iterdir() if p.name.isdigit()}


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("keys"), "--fake-hosts", "1")
    yield srv
    stop_server(srv)
    assert srv.process.returncode == 0, f"unclean shutdown:\n{srv.log.read_text()[-3000:]}"


def _token(srv: RunningServer) -> str:
    r = httpx.post(srv.url + "/identity/v3/auth/tokens", json=AUTH, timeout=10)
    assert r.status_code == 201, r.text
    return str(r.headers["X-Subject-Token"])


def _status(srv: RunningServer, token: str) -> int:
    r = httpx.get(srv.url + "/compute/v2.1/os-hypervisors", headers={"X-Auth-Token": token}, timeout=10)
    return r.status_code


def _rotate(data_dir: Path, *extra: str) -> str:
    exe = str(Path(sys.executable).parent / "novalite")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVALITE_")}
    proc = subprocess.run(
        [exe, "keys", "rotate", "--data-dir", str(data_dir), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_first_start_makes_everything_private_and_keeps_no_key_in_the_database(serve: RunningServer) -> None:
    data = serve.data_dir
    assert _mode(data) == 0o700
    db = data / "novalite.db"
    assert db.is_file()
    assert (data / "novalite.db-wal").exists()  # WAL: its side files are there while serving
    for side in (
        "novalite.db",
        "novalite.db-wal",
        "novalite.db-shm",
        "novalite.db-journal",
        "novalite.db.writelock",
    ):
        if (data / side).exists():
            assert _mode(data / side) == 0o600, side
    # nothing under the data directory is open to group or others (images, locks, keys)
    loose = [str(p) for p in data.rglob("*") if _mode(p) & 0o077]
    assert loose == []
    key_dir = data / "fernet-keys"
    assert _mode(key_dir) == 0o700
    keys = _key_files(key_dir)
    assert 0 in keys and max(keys) >= 1, keys  # a staged and a primary key
    for number in keys:
        assert _mode(key_dir / str(number)) == 0o600
    # no table holds key material: no service_keys table, and no cell holds any of the keys
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert "service_keys" not in tables
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for cell in row:
                    if isinstance(cell, str | bytes):
                        raw = cell.encode() if isinstance(cell, str) else cell
                        assert not any(k in raw for k in keys.values()), table
    finally:
        conn.close()


def test_rotation_reaches_the_running_server(serve: RunningServer) -> None:
    key_dir = serve.data_dir / "fernet-keys"
    before = _token(serve)
    assert _status(serve, before) == 200
    primary_before = max(_key_files(key_dir))

    out = _rotate(serve.data_dir)
    keys = _key_files(key_dir)
    new_primary = max(keys)
    assert new_primary == primary_before + 1, out
    assert all(_mode(key_dir / str(n)) == 0o600 for n in keys)
    assert _status(serve, before) == 200  # signed with what is now a secondary key

    # within a second or two the server signs with the new primary, and those tokens validate
    deadline = time.monotonic() + 10
    while True:
        after = _token(serve)
        try:
            Fernet(keys[new_primary]).decrypt(after.encode())
            break
        except InvalidToken:
            assert time.monotonic() < deadline, "the server never signed with the rotated primary"
            time.sleep(0.2)
    assert _status(serve, after) == 200
    assert _status(serve, before) == 200

    # two more rotations (max_active_keys 3): the key that signed `before` is removed, and the
    # server stops accepting it without a restart
    _rotate(serve.data_dir)
    _rotate(serve.data_dir)
    assert sorted(_key_files(key_dir)) == [0, new_primary + 1, new_primary + 2]
    deadline = time.monotonic() + 10
    while _status(serve, before) != 401:
        assert time.monotonic() < deadline, "a token of a removed key still validates"
        time.sleep(0.2)
    assert _status(serve, _token(serve)) == 200


def test_rotation_in_process_keeps_old_tokens_and_accepts_new_ones(stack_factory: Any) -> None:
    from novalite.identity.keys import KeyRepository

    api = stack_factory()
    settings = api.runtime.settings
    old = api.tokens["admin"]
    KeyRepository(settings.effective_token_key_dir, settings.max_active_keys).rotate()
    assert api.get("/compute/v2.1/os-hypervisors", as_="admin").status_code == 200
    # a token signed by another process that already uses the new primary validates here at once
    from novalite.identity.tokens import TokenProvider

    other = TokenProvider(KeyRepository(settings.effective_token_key_dir), 3600)
    fresh, _ = other.issue(user=("u", "admin"), project=("p", "admin"), roles=[("r", "admin")])
    assert api.runtime.tokens.validate(fresh).user_name == "admin"
    assert api.runtime.tokens.validate(old).user_name == "admin"


def test_a_key_removed_from_the_repository_stops_validating(tmp_path: Path, monkeypatch: Any) -> None:
    from novalite.identity import tokens as tokens_mod
    from novalite.identity.keys import KeyRepository
    from novalite.identity.tokens import TokenProvider

    repo = KeyRepository(tmp_path / "keys", max_active_keys=3)
    assert repo.initialize()
    provider = TokenProvider(repo, 3600)
    token, _ = provider.issue(user=("u", "n"), project=("p", "pn"), roles=[])
    assert provider.validate(token).user_id == "u"
    repo.rotate()
    repo.rotate()  # the key that signed `token` is gone (staged + 2 primaries)
    monkeypatch.setattr(tokens_mod, "RECHECK_INTERVAL", 0.0)
    with pytest.raises(tokens_mod.Unauthorized):
        provider.validate(token)


def test_repository_layout_rotation_and_modes(tmp_path: Path) -> None:
    from novalite.identity.keys import KeyRepository

    key_dir = tmp_path / "keys"
    repo = KeyRepository(key_dir, max_active_keys=4)
    assert repo.initialize()
    assert not repo.initialize()  # a second start keeps the keys
    assert sorted(_key_files(key_dir)) == [0, 1]
    assert _mode(key_dir) == 0o700
    staged = _key_files(key_dir)[0]
    assert repo.rotate() == 2
    files = _key_files(key_dir)
    assert files[2] == staged and files[0] != staged
    repo.rotate()
    repo.rotate()
    assert sorted(_key_files(key_dir)) == [0, 2, 3, 4]  # the oldest beyond max_active_keys removed
    assert repo.load()[0] == _key_files(key_dir)[4]  # the primary signs
    assert all(_mode(key_dir / str(n)) == 0o600 for n in _key_files(key_dir))
    assert [p.name for p in key_dir.iterdir() if p.name.startswith(".tmp")] == []
    # loose modes from a careless copy are tightened on the next start
    os.chmod(key_dir, 0o755)
    os.chmod(key_dir / "4", 0o644)
    repo.initialize()
    assert _mode(key_dir) == 0o700 and _mode(key_dir / "4") == 0o600


def test_legacy_database_key_becomes_the_primary_key_file(tmp_path: Path) -> None:
    from novalite.db.base import Database, upgrade
    from novalite.identity.tokens import TokenProvider
    from novalite.runtime import load_token_key

    settings = make_settings(tmp_path / "old")
    settings.data_dir.mkdir()
    url = settings.effective_database_url
    upgrade(url)
    db = Database(url)
    try:
        legacy = Fernet.generate_key()
        with db.session() as s:  # what novalite kept before the key repository
            s.execute(text("CREATE TABLE service_keys (name VARCHAR(64) PRIMARY KEY, value VARCHAR(255))"))
            s.execute(
                text("INSERT INTO service_keys (name, value) VALUES ('fernet', :v)"), {"v": legacy.decode()}
            )
        old_token, _ = TokenProvider(legacy, 3600).issue(
            user=("u", "admin"),
            project=("p", "admin"),
            roles=[("r", "admin")],
            expires_at=dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=1),
        )

        repo = load_token_key(db, settings)
        files = _key_files(settings.effective_token_key_dir)
        assert files[max(files)] == legacy  # the primary
        assert 0 in files and files[0] != legacy  # and a fresh staged key
        assert TokenProvider(repo, 3600).validate(old_token).user_name == "admin"
        with db.reader() as s:
            tables = {r[0] for r in s.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))}
        assert "service_keys" not in tables

        # the next start finds the repository and leaves it alone
        load_token_key(db, settings)
        assert _key_files(settings.effective_token_key_dir) == files
    finally:
        db.dispose()


def test_an_existing_loose_data_dir_and_database_are_tightened(tmp_path: Path) -> None:
    from novalite.cli import prepare_data_dir

    data = tmp_path / "given"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    for name in ("novalite.db", "novalite.db-wal", "novalite.db-shm", "novalite.db.writelock"):
        (data / name).write_bytes(b"")
        os.chmod(data / name, 0o644)
    previous = os.umask(0o022)
    try:
        prepare_data_dir(make_settings(data))
        assert os.umask(0o077) == 0o077  # what serve, api and db upgrade run with
    finally:
        os.umask(previous)
    assert _mode(data) == 0o700
    for name in ("novalite.db", "novalite.db-wal", "novalite.db-shm", "novalite.db.writelock"):
        assert _mode(data / name) == 0o600, name
