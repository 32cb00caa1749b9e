"""Where volume data lives, behind a four-method protocol.

* ``RecordsOnlyStorage`` (the fake): keeps no data, remembers which volumes exist and their
  sizes so tests can look; the default for the fake virt driver.
* ``FileStorage``: one file per volume under ``<data_dir>/volumes``; a volume created from an
  image starts as a copy of the image file, a blank one as a sparse file of its size. A snapshot
  is a copy of its volume's file beside it (``snapshot-<id>``), a backup a copy under
  ``<data_dir>/backups``; copies keep holes (only the data extents are written).
  A later qcow2 implementation (``qemu-img create -f qcow2 -b <image>``) plugs in here with
  the same four methods.

``storage_for(runtime)`` picks one per runtime (setting ``volume_storage``: ``records`` or
``file``; default ``file``, or ``records`` when the data directory is not writable), keeps it
in ``runtime.volume_storage`` and registers it for the runtime's database engine,
so code that only holds a session (the compute agent) finds it with ``storage_for_session``.
The volume seeder calls ``storage_for`` at start-up. Every method is idempotent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

GIB = 1024**3


class VolumeStorage(Protocol):
    def create_blank(self, volume_id: str, size_gb: int) -> str | None:
        """Provision an empty volume; returns its location (None when nothing is stored)."""

    def create_from_image(self, volume_id: str, size_gb: int, image_path: str | None) -> str | None:
        """Provision a volume holding the image's data."""

    def create_from_volume(self, volume_id: str, size_gb: int, source_location: str | None) -> str | None:
        """Provision a clone holding the source volume's data."""

    def extend(self, volume_id: str, location: str | None, new_size_gb: int) -> None:
        """Grow the volume to ``new_size_gb``."""

    def delete(self, volume_id: str, location: str | None) -> None:
        """Remove the volume's data; no error when it is already gone."""

    def copy_out(self, kind: str, item_id: str, source_location: str | None) -> str | None:
        """A copy of a volume's data kept as a ``snapshot`` or a ``backup``; returns its location."""

    def copy_into(self, location: str | None, source_location: str | None, size_gb: int) -> None:
        """Overwrite an existing volume's data with a snapshot's or a backup's (a restore)."""


@dataclass
class RecordsOnlyStorage:
    """The fake: records what would exist, stores nothing."""

    volumes: dict[str, int] = field(default_factory=dict)
    images: dict[str, str | None] = field(default_factory=dict)

    def create_blank(self, volume_id: str, size_gb: int) -> str | None:
        self.volumes[volume_id] = size_gb
        return None

    def create_from_image(self, volume_id: str, size_gb: int, image_path: str | None) -> str | None:
        self.volumes[volume_id] = size_gb
        self.images[volume_id] = image_path
        return None

    def create_from_volume(self, volume_id: str, size_gb: int, source_location: str | None) -> str | None:
        self.volumes[volume_id] = size_gb
        return None

    def extend(self, volume_id: str, location: str | None, new_size_gb: int) -> None:
        self.volumes[volume_id] = new_size_gb

    def delete(self, volume_id: str, location: str | None) -> None:
        self.volumes.pop(volume_id, None)
        self.images.pop(volume_id, None)

    def copy_out(self, kind: str, item_id: str, source_location: str | None) -> str | None:
        return None

    def copy_into(self, location: str | None, source_location: str | None, size_gb: int) -> None:
        return None


@dataclass
class FileStorage:
    """One raw file per volume (sparse for blank volumes, a copy of the image file otherwise)."""

    root: Path

    def _path(self, volume_id: str) -> Path:
        return self.root / f"volume-{volume_id}"

    def create_blank(self, volume_id: str, size_gb: int) -> str | None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(volume_id)
        with open(path, "wb") as handle:
            handle.truncate(size_gb * GIB)
        return str(path)

    def create_from_image(self, volume_id: str, size_gb: int, image_path: str | None) -> str | None:
        if image_path is None or not os.path.exists(image_path):
            return self.create_blank(volume_id, size_gb)
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(volume_id)
        if not raw_copy_of_qcow2(image_path, path):
            sparse_copy(image_path, path)
        if path.stat().st_size < size_gb * GIB:
            with open(path, "r+b") as handle:
                handle.truncate(size_gb * GIB)
        return str(path)

    def create_from_volume(self, volume_id: str, size_gb: int, source_location: str | None) -> str | None:
        return self.create_from_image(volume_id, size_gb, source_location)

    def extend(self, volume_id: str, location: str | None, new_size_gb: int) -> None:
        if location and os.path.exists(location):
            with open(location, "r+b") as handle:
                handle.truncate(new_size_gb * GIB)

    def delete(self, volume_id: str, location: str | None) -> None:
        if location:
            Path(location).unlink(missing_ok=True)

    def copy_out(self, kind: str, item_id: str, source_location: str | None) -> str | None:
        root = self.root if kind == "snapshot" else self.root.parent / "backups"
        root.mkdir(parents=True, exist_ok=True)
        path = root / f"{kind}-{item_id}"
        if source_location and os.path.exists(source_location):
            sparse_copy(source_location, path)
        else:
            path.touch()
        return str(path)

    def copy_into(self, location: str | None, source_location: str | None, size_gb: int) -> None:
        if not location:
            return
        if source_location and os.path.exists(source_location):
            sparse_copy(source_location, Path(location))
        with open(location, "r+b" if os.path.exists(location) else "wb") as handle:
            handle.truncate(max(size_gb * GIB, os.fstat(handle.fileno()).st_size))


def raw_copy_of_qcow2(source: str | Path, target: Path) -> bool:
    """A volume is a raw disk (a guest boots from it): a qcow2 image's data is converted with
    ``qemu-img convert`` (holes kept), as Cinder does. False when ``source`` is no qcow2 or
    qemu-img is not installed (the caller copies the bytes as they are)."""
    try:
        with open(source, "rb") as f:
            if f.read(4) != b"QFI\xfb":
                return False
    except OSError:
        return False
    if shutil.which("qemu-img") is None:
        return False
    info = subprocess.run(
        ["qemu-img", "info", "--output=json", "-f", "qcow2", str(source)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    try:
        meta = json.loads(info.stdout) if info.returncode == 0 else None
    except ValueError:
        meta = None
    specific = (meta or {}).get("format-specific") or {}
    data_file = (specific.get("data") or {}).get("data-file")
    if not isinstance(meta, dict) or meta.get("backing-filename") or data_file:
        return False  # a qcow2 naming another file could read any host file: copied as it is
    tmp = target.with_name(target.name + ".part")
    done = subprocess.run(
        ["qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", str(source), str(tmp)],
        capture_output=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        return False
    os.replace(tmp, target)
    return True


def sparse_copy(source: str | Path, target: Path) -> None:
    """Copy ``source`` to ``target`` writing only its data extents (holes stay holes)."""
    tmp = target.with_name(target.name + ".part")
    with open(source, "rb") as src, open(tmp, "wb") as dst:
        size = os.fstat(src.fileno()).st_size
        for start, end in _extents(src.fileno(), size):
            src.seek(start)
            dst.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = src.read(min(remaining, 4 * 1024 * 1024))
                if not chunk:
                    break
                dst.write(chunk)
                remaining -= len(chunk)
        dst.truncate(size)
    os.replace(tmp, target)


def _extents(fd: int, size: int) -> list[tuple[int, int]]:
    """The (start, end) byte ranges holding data; the whole file where SEEK_DATA is not supported."""
    seek_data, seek_hole = getattr(os, "SEEK_DATA", None), getattr(os, "SEEK_HOLE", None)
    if seek_data is None or seek_hole is None:
        return [(0, size)]
    out, offset = [], 0
    try:
        while offset < size:
            try:
                start = os.lseek(fd, offset, seek_data)
            except OSError:  # ENXIO: no data after offset
                break
            end = os.lseek(fd, start, seek_hole)
            out.append((start, end))
            offset = end
    except OSError:
        return [(0, size)]
    return out


_BY_ENGINE: weakref.WeakKeyDictionary[Any, VolumeStorage] = weakref.WeakKeyDictionary()


def storage_for_session(s: Any) -> VolumeStorage | None:
    """The storage registered for the database ``s`` is bound to (None before start-up)."""
    bind = s.get_bind()
    return _BY_ENGINE.get(getattr(bind, "engine", bind))


def delete_location(location: str | None) -> None:
    """Remove a volume's data file by its recorded location (every file-backed storage keeps a path)."""
    if location:
        Path(location).unlink(missing_ok=True)


def storage_for(runtime: Any) -> VolumeStorage:
    """The runtime's volume storage, created on first use."""
    existing = runtime.volume_storage
    if existing is not None:
        return existing
    kind = getattr(runtime.settings, "volume_storage", "file")
    root = Path(runtime.settings.data_dir) / "volumes"
    storage: VolumeStorage
    if kind == "records":
        storage = RecordsOnlyStorage()
    else:
        try:
            root.mkdir(parents=True, exist_ok=True)
            storage = FileStorage(root)
        except OSError:
            storage = RecordsOnlyStorage()
    runtime.volume_storage = storage
    _BY_ENGINE[runtime.db.engine] = storage
    return storage
