"""Image data files under ``<data_dir>/images/<id>``.

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


class DataWriter:
    """Receives chunks, hashes them and writes them to a temp file; ``commit`` renames it."""

    def __init__(self, data_dir: Path | str, image_id: str):
        folder = images_dir(data_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.final = data_path(data_dir, image_id)
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
