"""Build novalite's default guest: a small BIOS-bootable disk image.

The image is what a cloud image is, in miniature: an MBR partition table, SYSLINUX in
the MBR and on a FAT partition, Debian's cloud kernel and a busybox initramfs whose
``/init`` (``init.sh`` beside this module) does what cloud-init does for novalite's
features. It boots with ``qemu-system-x86_64 -drive file=disk.qcow2,if=virtio`` (no
``-kernel``).

How it is built, without root, mounts or loop devices::

    apt-get download <kernel>  ->  dpkg-deb -x        (only the download needs the network)
    initramfs = newc cpio (written here) of busybox + init + the needed .ko files, gzip
    part.img  = mkfs.fat -C; mcopy vmlinuz initrd.gz syslinux.cfg; syslinux --install
    disk.raw  = mbr.bin + partition table + part.img at 1 MiB
    disk.qcow2 = qemu-img convert

The result is cached: ``OUTPUT/novalite-guest.qcow2`` with ``OUTPUT/novalite-guest.stamp``
holding a hash of every input (this module and ``ssh.py``, the init script, the kernel and
dropbear package files, busybox and SYSLINUX). A second build with the same inputs returns at once; the kernel
package stays in ``OUTPUT/debs`` so that a rebuild works offline.

Entry points: :func:`build_guest_image` and ``python -m novalite.guest.builder --output DIR``.
The host tools come from Debian packages (``scripts/install-qemu.sh`` installs them).
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from novalite.guest import ssh

IMAGE_NAME = "novalite-guest.qcow2"
STAMP_NAME = "novalite-guest.stamp"
KERNEL_NAME, INITRD_NAME = "novalite-guest.vmlinuz", "novalite-guest.initrd.gz"  # build_boot_files
BOOT_STAMP_NAME = "novalite-guest.boot.stamp"
DEFAULT_KERNEL_PACKAGE = "linux-image-cloud-amd64"
BUSYBOX = Path("/bin/busybox")
SYSLINUX_MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")
# Modules the init loads (with their dependencies, resolved here): virtio disk/net/PCI,
# IDE/SATA CD-ROMs (QEMU's default cdrom bus on pc), iso9660 and vfat config drives,
# and the ACPI power button seen through evdev by busybox acpid.
GUEST_MODULES = (
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_scsi",
    "ata_piix",
    "sr_mod",
    "sd_mod",
    "isofs",
    "vfat",
    "nls_cp437",
    "nls_ascii",
    "nls_utf8",
    "nls_iso8859_1",
    "button",
    "evdev",
)
# ``mitigations=off``: the speculative-execution workarounds cost boot time and protect nothing
# under TCG (it does not speculate) or in this one-user test guest; ``audit=0``: no audit daemon.
KERNEL_COMMAND_LINE = "console=ttyS0,115200 quiet panic=-1 mitigations=off audit=0"
PARTITION_START_SECTOR = 2048
SECTOR = 512
MIB = 1024 * 1024

# Debian package that provides each host tool; named in the error when one is missing.
TOOLS = {
    "dpkg-deb": "dpkg",
    "apt-get": "apt",
    "mkfs.fat": "dosfstools",
    "mcopy": "mtools",
    "syslinux": "syslinux",
    "qemu-img": "qemu-utils",
}


class GuestBuildError(RuntimeError):
    """The image could not be built; the message says what is missing or what failed."""


@dataclass(frozen=True)
class GuestImage:
    """A built image: ``path`` to the qcow2 file, the kernel version inside, and whether
    this call built it (False when the cached image was up to date)."""

    path: Path
    kernel_version: str
    built: bool


def default_cache_dir(configured: str = "") -> Path:
    """Where the default image is built and cached: ``configured`` (Settings.guest_image_cache),
    else ``$NOVALITE_GUEST_CACHE``, else ``~/.cache/novalite/guest``."""
    chosen = configured or os.environ.get("NOVALITE_GUEST_CACHE") or ""
    return Path(chosen).expanduser() if chosen else Path.home() / ".cache" / "novalite" / "guest"


def build_guest_image(output: Path, *, kernel_package: str = DEFAULT_KERNEL_PACKAGE) -> GuestImage:
    """Build (or reuse) ``output/novalite-guest.qcow2`` and return it.

    Concurrent builds into the same directory (test workers, two services) wait for each
    other on ``output/.lock``; the image is replaced atomically, so a reader never sees a
    half-written file (guests already running keep the previous file open).
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    _check_tools()
    with (output / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(output, kernel_package)


def _build_locked(output: Path, kernel_package: str) -> GuestImage:
    deb = _kernel_deb(output / "debs", kernel_package)
    try:  # dropbear and its libraries (novalite.guest.ssh)
        ssh_debs = ssh.ssh_debs(output / "debs")
    except ssh.SshBuildError as exc:
        raise GuestBuildError(f"cannot fetch the SSH server's packages: {exc}") from None
    stamp = _stamp(deb, ssh_debs)
    image = output / IMAGE_NAME
    stamp_file = output / STAMP_NAME
    if image.is_file() and stamp_file.is_file():
        recorded = stamp_file.read_text().split()
        if len(recorded) == 2 and recorded[0] == stamp:
            return GuestImage(path=image, kernel_version=recorded[1], built=False)
    with tempfile.TemporaryDirectory(prefix="novalite-guest-", dir=output) as tmp:
        work = Path(tmp)
        kernel_version, vmlinuz, modules = _unpack_kernel(deb, work / "kernel")
        initrd = work / "initrd.gz"
        try:
            extra = ssh.ssh_files(ssh_debs)
        except ssh.SshBuildError as exc:
            raise GuestBuildError(f"cannot unpack the SSH server: {exc}") from None
        initrd.write_bytes(_initramfs(kernel_version, modules, extra))
        raw = work / "disk.raw"
        _disk(raw, vmlinuz=vmlinuz, initrd=initrd, work=work)
        tmp_image = work / IMAGE_NAME
        _run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(tmp_image)])
        stamp_file.unlink(missing_ok=True)
        os.replace(tmp_image, image)
    stamp_file.write_text(f"{stamp} {kernel_version}\n")
    return GuestImage(path=image, kernel_version=kernel_version, built=True)


def build_boot_files(output: Path, *, kernel_package: str = DEFAULT_KERNEL_PACKAGE) -> tuple[Path, Path]:
    """The default guest's kernel and initramfs as two files, ``output/novalite-guest.vmlinuz``
    and ``output/novalite-guest.initrd.gz`` (what a kernel/ramdisk image pair, aki + ari, holds;
    they boot with ``-kernel``/``-initrd`` and need no root disk). Cached like the disk image."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    _check_tools()
    kernel, initrd, stamp_file = output / KERNEL_NAME, output / INITRD_NAME, output / BOOT_STAMP_NAME
    with (output / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        deb = _kernel_deb(output / "debs", kernel_package)
        stamp = _stamp(deb)
        if kernel.is_file() and initrd.is_file() and stamp_file.is_file():
            if stamp_file.read_text().strip() == stamp:
                return kernel, initrd
        with tempfile.TemporaryDirectory(prefix="novalite-boot-", dir=output) as tmp:
            work = Path(tmp)
            kernel_version, vmlinuz, modules = _unpack_kernel(deb, work / "kernel")
            (work / INITRD_NAME).write_bytes(_initramfs(kernel_version, modules))
            stamp_file.unlink(missing_ok=True)
            os.replace(vmlinuz, kernel)
            os.replace(work / INITRD_NAME, initrd)
        stamp_file.write_text(stamp + "\n")
        return kernel, initrd


# -- inputs -------------------------------------------------------------------------------


def init_script() -> bytes:
    """The guest's ``/init`` (package data ``novalite/guest/init.sh``)."""
    return resources.files("novalite.guest").joinpath("init.sh").read_bytes()


def _check_tools() -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if not BUSYBOX.is_file():
        missing.append("busybox-static")
    if not SYSLINUX_MBR.is_file():
        missing.append("syslinux-common")
    if missing:
        raise GuestBuildError(
            "building the guest image needs the Debian packages "
            + ", ".join(missing)
            + " (scripts/install-qemu.sh installs them)"
        )


def _kernel_deb(cache: Path, meta_package: str) -> Path:
    """The kernel image package file, downloaded into ``cache`` once.

    ``linux-image-cloud-amd64`` is resolved to its versioned package (e.g.
    ``linux-image-6.1.0-57-cloud-amd64``); without apt lists the newest cached file is used.
    """
    cache.mkdir(parents=True, exist_ok=True)
    cached = sorted(cache.glob("linux-image-*.deb"))
    package = _resolve_kernel_package(meta_package)
    if package is None:
        if cached:
            return cached[-1]
        raise GuestBuildError(f"cannot resolve {meta_package} with apt-cache (run apt-get update)")
    for deb in cached:
        if deb.name.startswith(package + "_"):
            return deb
    # As root, apt would hand the download to user _apt, who cannot write to ``cache``.
    download = ["apt-get", "download", "-qq", package]
    if os.geteuid() == 0:
        download[2:2] = ["-o", "APT::Sandbox::User=root"]
    try:
        _run(download, cwd=cache)
    except GuestBuildError:
        if os.geteuid() != 0:
            raise
        _run(["apt-get", "update", "-qq"])  # stale or missing package lists
        _run(download, cwd=cache)
    found = sorted(cache.glob(f"{package}_*.deb"))
    if not found:
        raise GuestBuildError(f"apt-get download {package} left no package file in {cache}")
    for old in cached:  # keep one kernel package
        old.unlink(missing_ok=True)
    return found[-1]


def _resolve_kernel_package(meta_package: str) -> str | None:
    if not meta_package.startswith("linux-image-") or "/" in meta_package:
        raise GuestBuildError(f"not a kernel image package name: {meta_package!r}")
    if meta_package.removeprefix("linux-image-")[:1].isdigit():
        return meta_package  # already versioned, e.g. linux-image-6.1.0-57-cloud-amd64
    proc = subprocess.run(["apt-cache", "depends", meta_package], capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        name = line.strip().removeprefix("Depends:").strip()
        if line.strip().startswith("Depends:") and name.startswith("linux-image-") and name[12:13].isdigit():
            return name
    return None


def _stamp(deb: Path, extra_debs: Iterable[Path] = ()) -> str:
    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    h.update(Path(ssh.__file__).read_bytes())
    for extra in extra_debs:
        h.update(extra.name.encode() + b"\0" + str(extra.stat().st_size).encode())
    h.update(init_script())
    h.update(deb.name.encode() + b"\0" + str(deb.stat().st_size).encode())
    for path in (BUSYBOX, SYSLINUX_MBR):
        h.update(path.read_bytes())
    syslinux = shutil.which("syslinux")
    if syslinux:
        h.update(Path(syslinux).read_bytes())
    return h.hexdigest()[:32]


# -- kernel and initramfs -----------------------------------------------------------------


def _unpack_kernel(deb: Path, dest: Path) -> tuple[str, Path, list[tuple[str, bytes]]]:
    """Unpack the kernel package; return its version, vmlinuz and the ordered modules.

    Modules come back as ``(path under lib/modules/<version>, content)`` with every
    dependency before the modules that need it (from each module's ``depends=`` field).
    """
    _run(["dpkg-deb", "-x", str(deb), str(dest)])
    images = sorted((dest / "boot").glob("vmlinuz-*"))
    if not images:
        raise GuestBuildError(f"{deb.name} has no boot/vmlinuz-*")
    vmlinuz = images[-1]
    version = vmlinuz.name.removeprefix("vmlinuz-")
    moddir = dest / "lib" / "modules" / version
    by_name = {
        _module_name(p): p for p in moddir.rglob("*.ko*") if p.name.endswith((".ko", ".ko.xz", ".ko.zst"))
    }
    builtin = {
        _module_name(Path(line.strip()))
        for line in (moddir / "modules.builtin").read_text().splitlines()
        if line.strip()
    }
    ordered: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def add(name: str, chain: tuple[str, ...]) -> None:
        if name in seen or name in builtin:
            return
        path = by_name.get(name)
        if path is None:
            raise GuestBuildError(f"kernel {version} has no module {name} (needed by {' <- '.join(chain)})")
        if path.suffix != ".ko":
            raise GuestBuildError(f"compressed kernel modules are not supported: {path.name}")
        seen.add(name)
        data = path.read_bytes()
        for dep in _module_depends(data):
            add(dep, (*chain, dep))
        ordered.append((str(path.relative_to(moddir)), data))

    for name in GUEST_MODULES:
        add(name, (name,))
    return version, vmlinuz, ordered


def _module_name(path: Path) -> str:
    return path.name.split(".ko", 1)[0].replace("-", "_")


def _module_depends(data: bytes) -> list[str]:
    marker = data.find(b"\0depends=")
    if marker < 0:
        return []
    end = data.index(b"\0", marker + 1)
    value = data[marker + len(b"\0depends=") : end].decode()
    return [d.replace("-", "_") for d in value.split(",") if d]


def _initramfs(
    kernel_version: str, modules: list[tuple[str, bytes]], extra: Iterable[tuple[str, bytes, int]] = ()
) -> bytes:
    moddir = f"lib/modules/{kernel_version}"
    order = "".join(f"/{moddir}/{rel}\n" for rel, _ in modules).encode()
    cpio = _Cpio()
    for d in ("bin", "dev", "etc", "lib", "lib/modules", moddir, "proc", "sys", "tmp", "run", "root", "mnt"):
        cpio.directory(d)
    cpio.device("dev/console", major=5, minor=1)
    cpio.file("bin/busybox", BUSYBOX.read_bytes(), mode=0o755)
    cpio.file("init", init_script(), mode=0o755)
    cpio.file("etc/novalite-modules", order)
    cpio.file("etc/novalite-kernel", kernel_version.encode() + b"\n")
    for rel, data in modules:
        parent = Path(moddir, rel).parent
        for anc in reversed([parent, *parent.parents]):
            if str(anc) not in (".", "lib", "lib/modules", moddir):
                cpio.directory(str(anc))
        cpio.file(f"{moddir}/{rel}", data)
    for rel, data, mode in extra:  # the SSH server and its libraries
        parent = Path(rel).parent
        for anc in reversed([parent, *parent.parents]):
            if str(anc) != ".":
                cpio.directory(str(anc))
        cpio.file(rel, data, mode=mode)
    return gzip.compress(cpio.finish(), compresslevel=9, mtime=0)


class _Cpio:
    """A minimal writer of the "newc" cpio format the kernel unpacks as initramfs."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._ino = 1
        self._dirs: set[str] = set()

    def directory(self, name: str) -> None:
        if name not in self._dirs:
            self._dirs.add(name)
            self._entry(name, 0o040755, b"")

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def device(self, name: str, *, major: int, minor: int) -> None:
        self._entry(name, 0o020600, b"", rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, b"", ino=0)
        return b"".join(self._parts)

    def _entry(
        self, name: str, mode: int, data: bytes, *, rdev: tuple[int, int] = (0, 0), ino: int = -1
    ) -> None:
        encoded = name.encode() + b"\0"
        if ino < 0:
            ino, self._ino = self._ino, self._ino + 1
        nlink = 2 if mode & 0o040000 else 1
        fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self._parts.append(_pad4(header + encoded))
        self._parts.append(_pad4(data))


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


# -- disk ---------------------------------------------------------------------------------


def _disk(raw: Path, *, vmlinuz: Path, initrd: Path, work: Path) -> None:
    """Write the bootable raw disk: MBR (SYSLINUX code + one active FAT16 partition)."""
    payload = vmlinuz.stat().st_size + initrd.stat().st_size
    part_bytes = _round_up(payload + 4 * MIB, MIB)
    part = work / "part.img"
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    _run(
        [
            "mkfs.fat",
            "-C",
            "-F",
            "16",
            "-n",
            "NOVALITE",
            "-h",
            str(PARTITION_START_SECTOR),
            str(part),
            str(part_bytes // 1024),
        ]
    )
    cfg = work / "syslinux.cfg"
    cfg.write_text(
        "SERIAL 0 115200\nDEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n"
        f"  KERNEL vmlinuz\n  APPEND initrd=initrd.gz {KERNEL_COMMAND_LINE}\n"
    )
    shutil.copyfile(vmlinuz, work / "vmlinuz")
    _run(["mcopy", "-i", str(part), str(work / "vmlinuz"), str(initrd), str(cfg), "::/"], env=env)
    _run(["syslinux", "--install", str(part)], env=env)
    sectors = part_bytes // SECTOR
    entry = struct.pack(
        "<B3sB3sII",
        0x80,
        _chs(PARTITION_START_SECTOR),
        0x0E,
        _chs(PARTITION_START_SECTOR + sectors - 1),
        PARTITION_START_SECTOR,
        sectors,
    )
    mbr = bytearray(SECTOR)
    code = SYSLINUX_MBR.read_bytes()[:440]
    mbr[: len(code)] = code
    mbr[440:444] = hashlib.sha256(code).digest()[:4]  # disk signature
    mbr[446:462] = entry
    mbr[510:512] = b"\x55\xaa"
    with raw.open("wb") as out:
        out.write(mbr)
        out.seek(PARTITION_START_SECTOR * SECTOR)
        with part.open("rb") as src:
            shutil.copyfileobj(src, out, MIB)
        out.truncate(PARTITION_START_SECTOR * SECTOR + part_bytes + MIB)


def _chs(lba: int) -> bytes:
    """CHS address of ``lba`` with 255 heads and 63 sectors (0xFEFFFF past the CHS limit)."""
    cyl, rem = divmod(lba, 255 * 63)
    if cyl > 1023:
        return b"\xfe\xff\xff"
    head, sector = divmod(rem, 63)
    return bytes((head, ((cyl >> 2) & 0xC0) | (sector + 1), cyl & 0xFF))


def _round_up(n: int, unit: int) -> int:
    return -(-n // unit) * unit


def _run(argv: Iterable[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    args = list(argv)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise GuestBuildError(f"{' '.join(args)} failed (exit {proc.returncode}): {detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m novalite.guest.builder", description="Build novalite's default guest disk image."
    )
    parser.add_argument("--output", required=True, type=Path, help="directory for the image and its cache")
    parser.add_argument("--kernel-package", default=DEFAULT_KERNEL_PACKAGE)
    args = parser.parse_args(argv)
    try:
        image = build_guest_image(args.output, kernel_package=args.kernel_package)
    except GuestBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    state = "built" if image.built else "up to date"
    size = image.path.stat().st_size / MIB
    print(f"{image.path} {state} (kernel {image.kernel_version}, {size:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
