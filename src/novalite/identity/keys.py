"""The Fernet key repository: token signing keys in files of their own, as Keystone keeps them.

``<data_dir>/fernet-keys/`` (``Settings.effective_token_key_dir``) holds numbered files, one
key each: ``0`` is the *staged* key (the next primary, already accepted so that hosts that
rotated earlier interoperate), the highest number the *primary* (it signs new tokens), the
others *secondary* keys (they only validate tokens signed before a rotation). The directory is
0700, every key file 0600, and each file is written whole (temporary file 0600, fsync, rename),
so a reader never sees half a key.

``rotate`` (``novalite keys rotate``) promotes the staged key to primary, stages a new one and
removes the oldest secondary keys so that at most ``max_active_keys`` remain. Running processes
notice on their own (``identity.tokens.TokenProvider`` re-reads the directory when its mtime
changed or a token does not validate). Every API host must hold the same repository: after a
rotation on one host the operator copies the directory to the others (Keystone's
``fernet_rotate`` and rsync).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from cryptography.fernet import Fernet

LOG = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
STAGED = 0
_LOCK_NAME = ".lock"


class KeyRepositoryError(RuntimeError):
    """The repository is unusable (no keys, a file that holds no Fernet key)."""


class KeyRepository:
    def __init__(self, path: Path, max_active_keys: int = 3):
        if max_active_keys < 2:
            raise ValueError("max_active_keys must be at least 2 (a staged and a primary key)")
        self.path = Path(path)
        self.max_active_keys = max_active_keys

    # -- reading -------------------------------------------------------------------------------

    def _numbers(self) -> list[int]:
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        return sorted(int(n) for n in names if n.isdigit())

    def mtime_ns(self) -> int:
        """The directory's mtime (changes when a key file is renamed in or removed); -1 if absent."""
        try:
            return os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return -1

    def load(self) -> list[bytes]:
        """Every key, the primary first, then the secondary keys newest first, the staged key last
        (the order ``MultiFernet`` wants: it signs with the first and tries them all)."""
        numbers = self._numbers()
        primary = [n for n in numbers if n != STAGED]
        if not primary:
            raise KeyRepositoryError(f"no primary key in {self.path} (`novalite serve` creates it)")
        order = sorted(primary, reverse=True) + ([STAGED] if STAGED in numbers else [])
        keys: list[bytes] = []
        for n in order:
            try:
                key = (self.path / str(n)).read_bytes().strip()
            except FileNotFoundError:  # removed by a rotation meanwhile
                continue
            try:
                Fernet(key)
            except ValueError:
                raise KeyRepositoryError(f"{self.path / str(n)} does not hold a Fernet key") from None
            keys.append(key)
        if not keys:
            raise KeyRepositoryError(f"no readable key in {self.path}")
        return keys

    # -- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise writers of the repository (two rotations, a rotation and a first start)."""
        self._make_dir()
        fd = os.open(self.path / _LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _make_dir(self) -> None:
        self.path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        if self.path.stat().st_mode & 0o777 != DIR_MODE:
            os.chmod(self.path, DIR_MODE)

    def _write(self, number: int, key: bytes) -> None:
        tmp = self.path / f".tmp-{number}-{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)  # whatever the umask
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self.path / str(number))
        self._sync_dir()

    def _sync_dir(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def initialize(self, legacy_key: bytes | None = None) -> bool:
        """Create the repository unless it holds a primary key already; tighten the modes of an
        existing one. ``legacy_key`` (the key an older novalite kept in the database) becomes the
        primary, so tokens signed with it stay valid. True when keys were written."""
        with self._locked():
            for n in self._numbers():
                key_file = self.path / str(n)
                if key_file.stat().st_mode & 0o777 != FILE_MODE:
                    LOG.warning("key file %s was readable by others: made it 0600", key_file)
                    os.chmod(key_file, FILE_MODE)
            numbers = self._numbers()
            if any(n != STAGED for n in numbers):
                return False
            if legacy_key is not None:
                Fernet(legacy_key)  # a ValueError here: the legacy row holds no key
            self._write(1, legacy_key if legacy_key is not None else Fernet.generate_key())
            if STAGED not in numbers:
                self._write(STAGED, Fernet.generate_key())
            LOG.info("created the token key repository %s", self.path)
            return True

    def rotate(self) -> int:
        """Staged key -> new primary, a new staged key, the oldest secondary keys beyond
        ``max_active_keys`` removed. Returns the new primary's number."""
        with self._locked():
            numbers = self._numbers()
            if not numbers:
                raise KeyRepositoryError(f"no keys in {self.path} (run `novalite serve` once to create them)")
            new_primary = max(numbers) + 1
            if STAGED in numbers:
                os.rename(self.path / str(STAGED), self.path / str(new_primary))
            else:  # someone removed it: the new primary is a fresh key
                self._write(new_primary, Fernet.generate_key())
            self._write(STAGED, Fernet.generate_key())
            secondary = sorted(n for n in self._numbers() if n not in (STAGED, new_primary))
            excess = len(secondary) + 2 - self.max_active_keys
            for n in secondary[: max(excess, 0)]:
                os.unlink(self.path / str(n))
                LOG.info("removed key %s from %s", n, self.path)
            self._sync_dir()
            return new_primary
