"""instance_lock: the pid-file flock survives a forked child's exit, is not handed to exec'd
programs, and a second holder is refused with the first one's pid."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from novalite import instance_lock


def _try_lock(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing this description releases only a lock it took itself


def test_pid_file_lock_survives_a_forked_child_and_is_close_on_exec(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    fd = instance_lock.lock_data_dir(data_dir)
    try:
        assert (data_dir / "novalite.pid").read_text() == f"{os.getpid()}\n"
        assert oct(data_dir.stat().st_mode & 0o777) == oct(0o700)
        assert not os.get_inheritable(fd)  # exec'd programs do not keep the lock
        pid = os.fork()
        if pid == 0:  # the engine process's way out: its copy of the descriptor closes
            os._exit(0)
        os.waitpid(pid, 0)
        assert not _try_lock(data_dir / "novalite.pid")
        with pytest.raises(instance_lock.InstanceLocked) as refused:
            instance_lock.lock_data_dir(data_dir)
        assert str(refused.value) == (
            f"novalite: another novalite serve (pid {os.getpid()}) is using {data_dir}; stop it first"
        )
        assert (data_dir / "novalite.pid").read_text() == f"{os.getpid()}\n"  # the refusal kept it
    finally:
        instance_lock._HELD.remove(fd)
        os.close(fd)
    assert _try_lock(data_dir / "novalite.pid")


def test_the_postgres_key_is_a_constant_bigint() -> None:
    # a changed key would let an old and a new novalite serve one database at once
    assert instance_lock.PG_LOCK_KEY == 1831146054765197671


def test_a_sqlite_file_outside_the_data_dir_is_locked_too(tmp_path: Path) -> None:
    from types import SimpleNamespace

    db_file = tmp_path / "shared" / "novalite.db"
    url = f"sqlite:///{db_file}"
    first = SimpleNamespace(data_dir=tmp_path / "a", effective_database_url=url)
    second = SimpleNamespace(data_dir=tmp_path / "b", effective_database_url=url)
    held = list(instance_lock._HELD)
    try:
        instance_lock.hold(first)
        with pytest.raises(instance_lock.InstanceLocked) as refused:
            instance_lock.hold(second)
        assert f"(pid {os.getpid()}) is using the database {db_file.resolve()}; stop it first" in str(
            refused.value
        )
    finally:
        for fd in [fd for fd in instance_lock._HELD if fd not in held]:
            instance_lock._HELD.remove(fd)
            os.close(fd)
