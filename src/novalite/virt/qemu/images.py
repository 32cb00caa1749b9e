"""The per-host image cache: ``<instances_path>/_base/<sha1(image id)>``, one qcow2 base per image.

An image's data is fetched once per host (concurrent spawns of the same image wait on a
file lock and then reuse the base), hashed while it streams in and verified against the
image's ``os_hash_algo``/``os_hash_value`` (else its md5 ``checksum``, as glanceclient
does for Nova) before anything uses it. The data must be what ``disk_format`` says and a
qcow2 must not point at a backing or data file (it could read any host file); anything
but qcow2 is converted to a qcow2 base, so every overlay is ``-F qcow2``.

:meth:`ImageCache.prune` is Nova's image cache manager pass: a base that no instance
overlay refers to and that has not been used for ``max_age_s`` is deleted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import struct
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novalite.virt.driver import BuildAbort, DriverError

Fetch = Callable[[str], Iterable[bytes]]
QCOW2_MAGIC = b"QFI\xfb"
CONVERTIBLE = {"raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx", "vpc"}
QEMU_IMG_TIMEOUT = 600.0


@dataclass(frozen=True)
class CachedImage:
    path: Path
    virtual_size: int  # bytes


def base_name(image_id: str) -> str:
    return hashlib.sha1(image_id.encode()).hexdigest()


class ImageCache:
    def __init__(self, instances_path: Path, fetch: Fetch) -> None:
        self.instances_path = Path(instances_path)
        self.root = self.instances_path / "_base"
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.fetch = fetch

    def ensure(self, image: Mapping[str, Any]) -> CachedImage:
        """The verified qcow2 base of ``image`` (``id``, ``disk_format``, ``checksum``,
        ``os_hash_algo``, ``os_hash_value``, ``size``), fetched if this host has none."""
        image_id = str(image.get("id") or "")
        if not image_id:
            raise BuildAbort("The instance has no image to boot from")
        base = self.root / base_name(image_id)
        with self._locked(base):
            if not base.is_file():
                self._download(image, base)
            os.utime(base)
            return CachedImage(base, virtual_size(base, "qcow2"))

    def prune(self, max_age_s: float) -> list[Path]:
        """Delete bases no overlay under instances_path refers to, unused for ``max_age_s``."""
        used = self.bases_in_use()
        removed: list[Path] = []
        now = time.time()
        for path in sorted(self.root.iterdir()):
            if path.suffix in (".lock", ".part") or not path.is_file():
                continue
            if path in used:
                os.utime(path)
                continue
            with self._locked(path):
                try:
                    if now - path.stat().st_mtime >= max_age_s and path not in self.bases_in_use():
                        path.unlink()
                        removed.append(path)
                except FileNotFoundError:
                    continue
        return removed

    def bases_in_use(self) -> set[Path]:
        used: set[Path] = set()
        for disk in self.instances_path.glob("*/disk*"):
            backing = qcow2_backing_file(disk)
            if backing:
                used.add(Path(backing))
        return used

    def _locked(self, base: Path) -> _FileLock:
        return _FileLock(base.with_name(base.name + ".lock"))

    def ensure_file(self, image: Mapping[str, Any]) -> Path:
        """The verified data of ``image`` as it is (never probed nor converted): a kernel or
        ramdisk image's file, ``_base/<sha1(image id)>.file``, fetched if this host has none.
        Pruned like a base once unused for the age (instances boot from their own copy)."""
        image_id = str(image.get("id") or "")
        if not image_id:
            raise BuildAbort("The instance's kernel or ramdisk image has no id")
        path = self.root / (base_name(image_id) + ".file")
        with self._locked(path):
            if not path.is_file():
                part = path.with_name(path.name + ".part")
                try:
                    self._fetch_verified(image, part)
                    os.replace(part, path)
                finally:
                    part.unlink(missing_ok=True)
            os.utime(path)
            return path

    def _fetch_verified(self, image: Mapping[str, Any], part: Path) -> None:
        """Stream the image's data into ``part``, checked against its hash (BuildAbort if not)."""
        image_id = str(image["id"])
        size = image.get("size")
        if isinstance(size, int) and size > shutil.disk_usage(self.root).free:
            raise BuildAbort(f"Image {image_id} ({size} bytes) is larger than the free disk on this host")
        algo, expected = _expected_hash(image)
        digest = hashlib.new(algo) if algo else None
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            try:
                for chunk in self.fetch(image_id):
                    out.write(chunk)
                    if digest is not None:
                        digest.update(chunk)
            except LookupError as exc:  # the image store has no such data: no host will
                raise BuildAbort(f"Could not download image {image_id}: {exc}") from exc
            except (OSError, RuntimeError) as exc:
                raise DriverError(f"Could not download image {image_id}: {exc}") from exc
            out.flush()
            os.fsync(out.fileno())
        if digest is not None and digest.hexdigest().lower() != expected.lower():
            raise BuildAbort(
                f"Image {image_id} data does not match its checksum ({algo} {expected}, "
                f"got {digest.hexdigest()}): the image is corrupt"
            )

    def _download(self, image: Mapping[str, Any], base: Path) -> None:
        image_id = str(image["id"])
        part = base.with_name(base.name + ".part")
        converted = base.with_name(base.name + ".converted.part")
        try:
            self._fetch_verified(image, part)
            fmt = _check_format(part, image_id, str(image.get("disk_format") or ""))
            if fmt == "qcow2":
                os.replace(part, base)
            else:
                _qemu_img("convert", "-q", "-f", fmt, "-O", "qcow2", str(part), str(converted))
                os.chmod(converted, 0o600)
                os.replace(converted, base)
        finally:
            part.unlink(missing_ok=True)
            converted.unlink(missing_ok=True)


def file_store_fetch(images_dir: Path, chunk_size: int = 1 << 20) -> Fetch:
    """A ``fetch`` reading the embedded image service's data files (``<data_dir>/images/<id>``)."""

    def fetch(image_id: str) -> Iterator[bytes]:
        if "/" in image_id or image_id in ("", ".", ".."):
            raise LookupError(f"bad image id {image_id!r}")
        try:
            f = (Path(images_dir) / image_id).open("rb")
        except FileNotFoundError as exc:
            raise LookupError(f"image {image_id} has no data") from exc
        with f:
            while chunk := f.read(chunk_size):
                yield chunk

    return fetch


def _expected_hash(image: Mapping[str, Any]) -> tuple[str, str]:
    algo, value = image.get("os_hash_algo"), image.get("os_hash_value")
    if algo and value:
        if str(algo).lower() not in hashlib.algorithms_available:
            raise BuildAbort(f"Image {image.get('id')} has an unknown os_hash_algo {algo!r}")
        return str(algo).lower(), str(value)
    if image.get("checksum"):
        return "md5", str(image["checksum"])
    return "", ""


def _check_format(path: Path, image_id: str, disk_format: str) -> str:
    """The data's format, refusing data that is not what ``disk_format`` says and qcow2 files
    with a backing or data file. Raw images are never probed (a raw disk may hold anything)."""
    if disk_format == "raw":
        return "raw"
    if disk_format and disk_format not in CONVERTIBLE:
        raise BuildAbort(f"Image {image_id} has disk_format {disk_format!r}, which cannot boot here")
    info = image_info(path)  # probed: the answer is only trusted when it is what the image says
    fmt = str(info.get("format", ""))
    if disk_format and fmt != disk_format and not (disk_format == "vhd" and fmt == "vpc"):
        raise BuildAbort(f"Image {image_id} content does not match its disk_format {disk_format!r}")
    if fmt not in CONVERTIBLE:
        raise BuildAbort(f"Image {image_id} has unsupported format {fmt!r}")
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise BuildAbort(f"Image {image_id} refers to a backing file; such images are refused")
    data_file = (info.get("format-specific") or {}).get("data", {}).get("data-file")
    if data_file:
        raise BuildAbort(f"Image {image_id} refers to an external data file; such images are refused")
    return "vpc" if fmt == "vhd" else fmt


def image_info(path: Path, fmt: str | None = None) -> dict[str, Any]:
    argv = ["info", "--output", "json"] + (["-f", "vpc" if fmt == "vhd" else fmt] if fmt else [])
    out = _qemu_img(*argv, str(path))
    try:
        info = json.loads(out)
    except ValueError as exc:
        raise DriverError(f"qemu-img info gave no JSON for {path.name}") from exc
    return info if isinstance(info, dict) else {}


def virtual_size(path: Path, fmt: str) -> int:
    return int(image_info(path, fmt).get("virtual-size") or 0)


def qcow2_backing_file(path: Path) -> str | None:
    """The backing file a qcow2 header names (read directly: no subprocess per overlay)."""
    try:
        with path.open("rb") as f:
            header = f.read(20)
            if len(header) < 20 or header[:4] != QCOW2_MAGIC:
                return None
            offset, size = struct.unpack(">QI", header[8:20])
            if not offset or not 0 < size <= 4096:
                return None
            f.seek(offset)
            return f.read(size).decode(errors="replace")
    except OSError:
        return None


def _qemu_img(*args: str) -> str:
    try:
        done = subprocess.run(
            ["qemu-img", *args], capture_output=True, text=True, timeout=QEMU_IMG_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DriverError(f"qemu-img {args[0]} failed: {exc}") from exc
    if done.returncode != 0:
        raise DriverError(f"qemu-img {args[0]} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


class _FileLock:
    """An exclusive ``flock`` on a lock file: serialises threads and processes alike."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1

    def __enter__(self) -> _FileLock:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
