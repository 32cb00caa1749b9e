"""Image data files under ``<data_dir>/images/<id>``; data staged for an import under
``<data_dir>/staging/<id>`` until the import moves it next to the others.

Data is streamed into a temporary file next to its final place while md5 and sha512 are
computed, then renamed, so a reader never sees a half-written image.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoredData:
    path: Path
    size: int
    md5: str
    sha512: str


def images_dir(data_dir: Path | str) -> Path:
    return Path(data_dir) / "images"


def data_path(data_dir: Path | str, image_id: str) -> Path:
    return images_dir(data_dir) / image_id


def staged_path(data_dir: Path | str, image_id: str) -> Path:
    return Path(data_dir) / "staging" / image_id


class DataWriter:
    """Receives chunks, hashes them and writes them to a temp file; ``commit`` renames it."""

    def __init__(self, data_dir: Path | str, image_id: str, *, staging: bool = False):
        self.final = (staged_path if staging else data_path)(data_dir, image_id)
        folder = self.final.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{image_id}.", suffix=".part", dir=folder)
        self._file = os.fdopen(fd, "wb")
        self._tmp = Path(tmp)
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha512 = hashlib.sha512()
        self._size = 0

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._md5.update(chunk)
        self._sha512.update(chunk)
        self._size += len(chunk)

    def commit(self) -> StoredData:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self.final)
        return StoredData(
            path=self.final, size=self._size, md5=self._md5.hexdigest(), sha512=self._sha512.hexdigest()
        )

    def abort(self) -> None:
        """Drop the partial file; safe to call after ``commit`` or twice."""
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)


def write_bytes(data_dir: Path | str, image_id: str, data: bytes) -> StoredData:
    writer = DataWriter(data_dir, image_id)
    try:
        writer.write(data)
        return writer.commit()
    except BaseException:
        writer.abort()
        raise


def remove(data_dir: Path | str, image_id: str) -> None:
    data_path(data_dir, image_id).unlink(missing_ok=True)
    staged_path(data_dir, image_id).unlink(missing_ok=True)


def promote_staged(data_dir: Path | str, image_id: str) -> StoredData:
    """Move the staged data to the image's data file, hashing it on the way (a copy through a
    temporary file, as an upload: the staged file stays until the copy is in place)."""
    source = staged_path(data_dir, image_id)
    stored = store_file(data_dir, image_id, source)
    source.unlink(missing_ok=True)
    return stored


def store_file(data_dir: Path | str, image_id: str, source: Path) -> StoredData:
    """Copy ``source`` in as the image's data (hashed on the way; nothing left behind if the copy
    fails)."""
    writer = DataWriter(data_dir, image_id)
    try:
        with source.open("rb") as f:
            while chunk := f.read(1 << 20):
                writer.write(chunk)
        return writer.commit()
    except BaseException:
        writer.abort()
        raise
