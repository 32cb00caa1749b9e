"""The default guest's SSH server: dropbear from Debian's ``dropbear-bin``, with the shared
libraries it needs, taken from the Debian packages themselves (downloaded once with
``apt-get download`` into the builder's ``debs`` cache, then unpacked offline like the kernel).

:func:`ssh_debs` returns the package files (downloading the missing ones), :func:`ssh_files`
the files to put in the initramfs: ``usr/sbin/dropbear``, ``usr/bin/dropbearkey``, every
library in their ``DT_NEEDED`` closure under ``lib/x86_64-linux-gnu/`` and the dynamic loader
at the path the binaries name (``PT_INTERP``). The guest's init generates the host key at first
boot and starts dropbear on port 22 (init.sh, "SSH").
"""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile
from pathlib import Path

# dropbear-bin and its Depends closure, minus what dropbear does not load (libgcc-s1)
SSH_PACKAGES = ("dropbear-bin", "libtomcrypt1", "libtommath1", "libgmp10", "libcrypt1", "zlib1g", "libc6")
BINARIES = ("usr/sbin/dropbear", "usr/bin/dropbearkey")
LIB_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64")
GUEST_LIB_DIR = "lib/x86_64-linux-gnu"


class SshBuildError(RuntimeError):
    pass


def _run(args: list[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise SshBuildError(f"{' '.join(args)} failed (exit {proc.returncode}): {detail}")


def ssh_debs(cache: Path) -> list[Path]:
    """The package files of :data:`SSH_PACKAGES` in ``cache``, downloading those missing."""
    cache.mkdir(parents=True, exist_ok=True)
    missing = [p for p in SSH_PACKAGES if not sorted(cache.glob(f"{p}_*.deb"))]
    if missing:
        download = ["apt-get", "download", "-qq", *missing]
        if os.geteuid() == 0:  # as root apt hands the download to _apt, who cannot write here
            download[2:2] = ["-o", "APT::Sandbox::User=root"]
        try:
            _run(download, cwd=cache)
        except SshBuildError:
            if os.geteuid() != 0:
                raise
            _run(["apt-get", "update", "-qq"])
            _run(download, cwd=cache)
    found = []
    for p in SSH_PACKAGES:
        files = sorted(cache.glob(f"{p}_*.deb"))
        if not files:
            raise SshBuildError(f"apt-get download {p} left no package file in {cache}")
        found.append(files[-1])
    return found


def _inside(root: Path, path: Path) -> Path:
    """``path`` (under ``root``) with its symlinks followed inside ``root``, absolute ones too."""
    for _ in range(40):
        if not path.is_symlink():
            return path
        target = os.readlink(path)
        path = root / target.lstrip("/") if target.startswith("/") else path.parent / target
    raise SshBuildError(f"symlink loop at {path}")


def elf_needs(data: bytes) -> tuple[str | None, list[str]]:
    """An x86-64 ELF file's interpreter (``PT_INTERP``) and ``DT_NEEDED`` libraries."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise SshBuildError("not a 64-bit little-endian ELF file")
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads: list[tuple[int, int, int]] = []
    interp = None
    dynamic = None
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == 1:  # PT_LOAD
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 3:  # PT_INTERP
            interp = data[p_offset : p_offset + p_filesz].rstrip(b"\0").decode()
        elif p_type == 2:  # PT_DYNAMIC
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return interp, []

    def offset(vaddr: int) -> int:
        for start, off, size in loads:
            if start <= vaddr < start + size:
                return off + vaddr - start
        raise SshBuildError(f"address {vaddr:#x} is in no loaded segment")

    needed: list[int] = []
    strtab = None
    for pos in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, value = struct.unpack_from("<qQ", data, pos)
        if tag == 0:
            break
        if tag == 1:  # DT_NEEDED
            needed.append(value)
        elif tag == 5:  # DT_STRTAB
            strtab = offset(value)
    if strtab is None:
        return interp, []
    names = []
    for n in needed:
        start = strtab + n
        names.append(data[start : data.index(b"\0", start)].decode())
    return interp, names


def ssh_files(debs: list[Path]) -> list[tuple[str, bytes, int]]:
    """``(path in the initramfs, content, mode)`` for dropbear, its libraries and the loader."""
    with tempfile.TemporaryDirectory(prefix="novalite-ssh-") as tmp:
        root = Path(tmp)
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(root)])
        out: list[tuple[str, bytes, int]] = []
        todo: list[bytes] = []
        interpreters: set[str] = set()
        for rel in BINARIES:
            data = _inside(root, root / rel).read_bytes()
            out.append((rel, data, 0o755))
            todo.append(data)
        seen: set[str] = set()
        while todo:
            interp, needed = elf_needs(todo.pop())
            if interp:
                interpreters.add(interp)
            for lib in needed:
                if lib in seen:
                    continue
                seen.add(lib)
                path = next((root / d / lib for d in LIB_DIRS if os.path.lexists(root / d / lib)), None)
                if path is None:
                    raise SshBuildError(f"no {lib} in {', '.join(d.name for d in debs)}")
                data = _inside(root, path).read_bytes()
                out.append((f"{GUEST_LIB_DIR}/{lib}", data, 0o755))
                todo.append(data)
        for interp in sorted(interpreters):
            data = _inside(root, root / interp.lstrip("/")).read_bytes()
            out.append((interp.lstrip("/"), data, 0o755))
        return out
