"""An instance's files and QEMU command line (everything spawn prepares before QEMU starts).

Instance directory ``<instances_path>/<uuid>/`` (0700; files 0600)::

    disk          qcow2 overlay on the cached base, grown to the flavor's root disk
    disk.local    flavor ephemeral disk (vfat, label ephemeral0) when ephemeral_gb > 0
    disk.swap     flavor swap (mkswap) when swap > 0
    disk.config   config drive (ISO 9660, label config-2) when asked for
    launch.json   the QEMU argv, so start/reboot/resume reuse the very same devices
    console.log   serial console (appended across restarts, bounded by the driver)
    console.sock  the serial port itself (unix socket; the console proxy connects to it)
    kernel, ramdisk  a kernel/ramdisk image's files (-kernel/-initrd), when the image has them
    qmp.sock      QMP socket;  qemu.pid  QEMU's pid file;  memory.state  a suspended guest

QEMU starts in the instance directory and binds the QMP socket by its relative name (a
unix socket path must stay short); every other path is absolute, because ``-daemonize``
changes QEMU's directory to ``/`` after start-up and QEMU reopens its disks later (at the
end of a suspend's migration, for one).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novalite.network.dataplane.names import tap_name
from novalite.virt.configdrive import ConfigDriveData, write_config_drive
from novalite.virt.driver import BuildAbort, DriverError, GuestSpec
from novalite.virt.qemu import hotplug
from novalite.virt.qemu.images import CachedImage

GIB = 1024**3
DISK, EPHEMERAL, SWAP, CONFIG = "disk", "disk.local", "disk.swap", "disk.config"
CONSOLE, QMP_SOCKET, PID_FILE, LAUNCH, STATE = (
    "console.log",
    "qmp.sock",
    "qemu.pid",
    "launch.json",
    "memory.state",
)
CONSOLE_SOCKET = "console.sock"  # the serial console (relative: QEMU starts in the instance directory)
KERNEL, RAMDISK = "kernel", "ramdisk"  # a kernel/ramdisk image's boot files, copied per instance
DEFAULT_COMMAND_LINE = "root=/dev/vda console=ttyS0"  # Nova's default os_command_line
NO_KERNEL = "nokernel"  # kernel_id meaning "none" (Nova's): the image boots by itself
TCG_TB_SIZE_MB = 32  # TCG's translation cache (MiB): see _accel
DHCP_DOMAIN = "novalocal"
NIC_MODELS = {
    "virtio": "virtio-net-pci",
    "e1000": "e1000",
    "e1000e": "e1000e",
    "rtl8139": "rtl8139",
    "ne2k_pci": "ne2k_pci",
    "pcnet": "pcnet",
}
DISK_BUSES = ("virtio", "ide", "sata", "scsi")
OVMF_PATHS = (Path("/usr/share/ovmf/OVMF.fd"), Path("/usr/share/OVMF/OVMF.fd"))
_MACHINE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SANDBOX = "on,obsolete=deny,resourcecontrol=deny"  # spawn stays allowed: guestfwd ...-cmd: forks


def image_prop(image: Mapping[str, Any], key: str, default: str = "") -> str:
    """An image property, from ``image["properties"]`` or the image mapping itself."""
    props = image.get("properties")
    value = props.get(key) if isinstance(props, Mapping) else None
    if value is None:
        value = image.get(key)
    return str(value) if value not in (None, "") else default


@dataclass(frozen=True)
class LaunchOptions:
    accelerator: str  # kvm | tcg
    cpu_model: str
    metadata_command: str | None = None  # guestfwd command serving 169.254.169.254:80, if any
    dataplane: bool = False  # each port on its tap (docs/networking.md); else QEMU user networking


def prepare_disks(d: Path, guest: GuestSpec, base: CachedImage | None) -> None:
    """The disks in ``d``: the root overlay on ``base`` (None: the guest boots from a volume,
    whose file is its root disk), ephemeral, swap and config drive."""
    flavor = guest.flavor
    if base is not None:
        _root_overlay(d, flavor, base)
    _local_disks(d, guest)


def _root_overlay(d: Path, flavor: Mapping[str, Any], base: CachedImage) -> None:
    root_gb = _int(flavor.get("root_gb"))
    size = base.virtual_size
    if root_gb > 0:
        if base.virtual_size > root_gb * GIB:
            raise BuildAbort(
                f"Flavor's disk is too small for requested image: root_gb {root_gb} GiB, "
                f"image virtual size {base.virtual_size} bytes"
            )
        size = root_gb * GIB
    _run(
        "qemu-img",
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        str(base.path),
        "-F",
        "qcow2",
        str(d / DISK),
        str(size),
    )


def _local_disks(d: Path, guest: GuestSpec) -> None:
    flavor = guest.flavor
    ephemeral_gb, swap_mb = _int(flavor.get("ephemeral_gb")), _int(flavor.get("swap"))
    if ephemeral_gb > 0:
        _sparse(d / EPHEMERAL, ephemeral_gb * GIB)
        if shutil.which("mkfs.vfat"):
            _run("mkfs.vfat", "-n", "ephemeral0", str(d / EPHEMERAL))
    if swap_mb > 0:
        _sparse(d / SWAP, swap_mb * 1024 * 1024)
        if shutil.which("mkswap"):
            _run("mkswap", "-q", str(d / SWAP))
    for name in (DISK, EPHEMERAL, SWAP):
        if (d / name).exists():
            os.chmod(d / name, 0o600)
    if guest.config_drive or image_prop(guest.image, "img_config_drive") == "mandatory":
        write_config_drive(config_drive_data(guest), d / CONFIG)


def config_drive_data(guest: GuestSpec) -> ConfigDriveData:
    host = guest.hostname or _hostname(guest.display_name or guest.name)
    return ConfigDriveData(
        uuid=guest.uuid,
        hostname=f"{host}.{DHCP_DOMAIN}",
        name=guest.display_name or host,
        public_keys={name: key for name, _type, key in guest.key_pairs},
        user_data=guest.user_data,
        network_data=network_data(guest),
        availability_zone=guest.availability_zone,
        launch_index=guest.launch_index,
        project_id=guest.project_id,
        metadata={k: v for k, v in guest.metadata.items() if not k.startswith("novalite:")},
        admin_pass=guest.admin_password,
        ec2_instance_id=_ec2_id(guest.name),
        instance_type=str(guest.flavor.get("name") or ""),
        local_ipv4=next((ip for port in guest.network_info if (ip := _fixed_ip(port)[0])), ""),
    )


def _ec2_id(name: str) -> str:
    """Nova's EC2 instance id ``i-%08x`` from the instance name ``instance-%08x``."""
    prefix = "instance-"
    return "i-" + name[len(prefix) :] if name.startswith(prefix) else ""


def network_data(guest: GuestSpec) -> dict[str, Any]:
    """``network_data.json``: one link per port; addresses by DHCP (QEMU user networking)."""
    links, networks = [], []
    for i, port in enumerate(guest.network_info):
        mac = str(port.get("mac_address") or _mac(guest.uuid, i))
        links.append({"id": f"tap{i}", "type": "ethernet", "ethernet_mac_address": mac, "mtu": 1500})
        networks.append(
            {
                "id": f"network{i}",
                "type": "ipv4_dhcp",
                "link": f"tap{i}",
                "network_id": str(port.get("network_id", "")),
            }
        )
    return {"links": links, "networks": networks, "services": []}


def argv(d: Path, guest: GuestSpec, opts: LaunchOptions) -> list[str]:
    """The QEMU command line (QEMU starts in the instance directory ``d``)."""
    flavor, image = guest.flavor, guest.image
    machine = image_prop(image, "hw_machine_type", "pc")
    if not _MACHINE.match(machine):
        raise BuildAbort(f"Invalid hw_machine_type {machine!r}")
    smbios = ",".join(
        f"{k}={v.replace(',', ',,')}"
        for k, v in (
            ("manufacturer", "OpenStack Foundation"),
            ("product", "OpenStack Nova"),
            ("serial", guest.uuid),
            ("uuid", guest.uuid),
            ("family", "Virtual Machine"),
        )
    )
    args = [
        "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-sandbox", SANDBOX,
        "-name", f"guest={guest.uuid}", "-uuid", guest.uuid, "-smbios", f"type=1,{smbios}",
        "-machine", machine, "-accel", _accel(opts.accelerator), "-cpu", opts.cpu_model,
        "-m", str(max(16, _int(flavor.get("memory_mb")) or 512)),
        "-smp", str(max(1, _int(flavor.get("vcpus")) or 1)),
        "-display", "none",
        "-chardev", _console_chardev(d), "-serial", "chardev:console",
        "-chardev", f"socket,id=qmp,path={QMP_SOCKET},server=on,wait=off", "-mon", "chardev=qmp,mode=control",
        "-pidfile", str(d / PID_FILE), "-daemonize",
    ]  # fmt: skip
    if image_prop(image, "hw_firmware_type") == "uefi":
        ovmf = next((p for p in OVMF_PATHS if p.is_file()), None)
        if ovmf is None:
            raise BuildAbort(
                "The image needs UEFI firmware (hw_firmware_type=uefi) but OVMF is not installed"
            )
        args += ["-bios", str(ovmf)]
    args += _kernel_args(d, image)
    args += _disk_args(d, image, guest.block_devices)
    args += _nic_args(guest, opts)
    return args


def _accel(accelerator: str) -> str:
    """TCG's translated-code cache bounded to TCG_TB_SIZE_MB: QEMU 7.2 reserves 1 GiB and a guest's
    boot fills about 50 MB of it (measured: 216 MB RSS per 128 MB guest at ready, 189 MB with 32)."""
    return f"tcg,tb-size={TCG_TB_SIZE_MB}" if accelerator == "tcg" else accelerator


def _console_chardev(d: Path) -> str:
    """The first serial port: a unix socket the serial console proxy connects to (one client at
    a time; QEMU starts in ``d`` and binds the short relative name), logging everything the guest
    prints to ``console.log`` whether a client is connected or not."""
    return f"socket,id=console,path={CONSOLE_SOCKET},server=on,wait=off,logfile={d / CONSOLE},logappend=on"


def kernel_files(image: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The kernel and ramdisk images a ``kernel_id``/``ramdisk_id`` image boots with: ``{"kernel":
    row, "ramdisk": row}`` (the rows the build found: ``image["kernel"]``, ``image["ramdisk"]``);
    none for ``kernel_id`` "nokernel". An id naming no image is a BuildAbort."""
    found: dict[str, Mapping[str, Any]] = {}
    if image_prop(image, "kernel_id") in ("", NO_KERNEL):
        return found
    for key in ("kernel", "ramdisk"):
        wanted = image_prop(image, f"{key}_id")
        if not wanted:
            continue
        row = image.get(key)
        if not isinstance(row, Mapping) or str(row.get("id")) != wanted:
            raise BuildAbort(f"The {key} image {wanted} of image {image.get('id')} was not found")
        found[key] = row
    return found


def _kernel_args(d: Path, image: Mapping[str, Any]) -> list[str]:
    """``-kernel``/``-initrd``/``-append`` for a kernel/ramdisk image (their files are copied into
    the instance directory by spawn); nothing for an image that boots by itself."""
    if image_prop(image, "kernel_id") in ("", NO_KERNEL):
        return []
    args = ["-kernel", str(d / KERNEL)]
    if image_prop(image, "ramdisk_id"):
        args += ["-initrd", str(d / RAMDISK)]
    return args + ["-append", image_prop(image, "os_command_line", DEFAULT_COMMAND_LINE)]


def _disk_args(d: Path, image: Mapping[str, Any], volumes: tuple[Mapping[str, Any], ...] = ()) -> list[str]:
    bus = image_prop(image, "hw_disk_bus", "virtio")
    if bus not in DISK_BUSES:
        raise BuildAbort(f"Unsupported hw_disk_bus {bus!r} (one of {', '.join(DISK_BUSES)})")
    cdrom_bus = image_prop(image, "hw_cdrom_bus", "ide")
    if cdrom_bus not in ("ide", "sata", "scsi"):
        raise BuildAbort(f"Unsupported hw_cdrom_bus {cdrom_bus!r} (one of ide, sata, scsi)")
    args: list[str] = []
    ide_slots = iter(("bus=ide.0,unit=0", "bus=ide.1,unit=0", "bus=ide.0,unit=1", "bus=ide.1,unit=1"))
    sata_port = iter(range(6))
    controllers: set[str] = set()

    def attach(dev: str, node: str, kind: str, which_bus: str, extra: str = "") -> None:
        if which_bus == "virtio":
            args.extend(["-device", f"virtio-blk-pci,drive={node},id={dev}{extra}"])
        elif which_bus == "ide":
            slot = next(ide_slots, None)
            if slot is None:
                raise BuildAbort("Too many IDE disks (4 at most)")
            args.extend(["-device", f"ide-{kind},drive={node},id={dev},{slot}{extra}"])
        elif which_bus == "sata":
            if "ahci" not in controllers:
                controllers.add("ahci")
                args.extend(["-device", "ahci,id=ahci"])
            args.extend(["-device", f"ide-{kind},drive={node},id={dev},bus=ahci.{next(sata_port)}{extra}"])
        else:
            if "scsi" not in controllers:
                controllers.add("scsi")
                args.extend(["-device", "virtio-scsi-pci,id=scsi"])
            args.extend(["-device", f"scsi-{kind},drive={node},id={dev},bus=scsi.0{extra}"])

    if hotplug.root_volume(volumes) is None:
        args += ["-drive", f"file={d / DISK},format=qcow2,if=none,id=drive-root"]
        attach("disk-root", "drive-root", "hd", bus, ",bootindex=1")
    else:  # boot from volume: the volume's raw file is the first disk (virtio)
        args += hotplug.boot_volume_args(volumes, root=True)
    for name, ident in ((EPHEMERAL, "ephemeral"), (SWAP, "swap")):
        if (d / name).exists():
            args += ["-drive", f"file={d / name},format=raw,if=none,id=drive-{ident}"]
            attach(f"disk-{ident}", f"drive-{ident}", "hd", bus)
    if (d / CONFIG).exists():
        args += ["-drive", f"file={d / CONFIG},format=raw,if=none,id=drive-config,media=cdrom,readonly=on"]
        attach("disk-config", "drive-config", "cd", cdrom_bus)
    args += hotplug.boot_volume_args(volumes, root=False)  # the other volumes attached at boot
    return args


def _nic_args(guest: GuestSpec, opts: LaunchOptions) -> list[str]:
    model = image_prop(guest.image, "hw_vif_model", "virtio")
    if model not in NIC_MODELS:
        raise BuildAbort(f"Unsupported hw_vif_model {model!r} (one of {', '.join(NIC_MODELS)})")
    args: list[str] = []
    for i, port in enumerate(guest.network_info):
        if opts.dataplane and port.get("port_id"):
            # the tap exists already, on its network's bridge in the network's namespace
            # (compute/networking.py); QemuDriver._start hands QEMU an fd on it instead of the name
            tap = tap_name(str(port["port_id"]))
            args += ["-netdev", f"tap,id=net{i},ifname={tap},script=no,downscript=no"]
        else:
            args += ["-netdev", f"user,id=net{i},restrict=on{_addressing(port)}"]
        mac = str(port.get("mac_address") or _mac(guest.uuid, i))
        args += ["-device", f"{NIC_MODELS[model]},netdev=net{i},mac={mac},id=nic{i}"]
    if opts.metadata_command is not None:
        if "," in opts.metadata_command:
            raise DriverError("the metadata guestfwd command cannot contain a comma")
        forward = f"tcp:169.254.169.254:80-cmd:{opts.metadata_command}"
        args += ["-netdev", f"user,id=metadata,restrict=on,net=169.254.0.0/16,guestfwd={forward}"]
        args += ["-device", f"{NIC_MODELS[model]},netdev=metadata,mac={_mac(guest.uuid, 99)},id=nic-metadata"]
    return args


def _addressing(port: Mapping[str, Any]) -> str:
    """``,net=..,host=..,dns=..,dhcpstart=<fixed ip>`` so that the guest leases its port's fixed IP."""
    ip_text, cidr = _fixed_ip(port)
    if not ip_text or not cidr:
        return ""
    try:
        ip = ipaddress.IPv4Address(ip_text)
        net = ipaddress.IPv4Network(cidr, strict=False)
    except ValueError:
        return ""
    if ip not in net or net.num_addresses < 8:
        return ""
    gateway = port.get("gateway")
    others = [h for h in net.hosts() if h != ip][:3]
    host = ipaddress.IPv4Address(gateway) if _is_ip(gateway) and gateway != ip_text else others[0]
    if host not in net:
        host = others[0]
    dns = next(h for h in others if h != host)
    return f",net={net},host={host},dns={dns},dhcpstart={ip}"


def _fixed_ip(port: Mapping[str, Any]) -> tuple[str, str]:
    ips = port.get("fixed_ips")
    if isinstance(ips, (list, tuple)) and ips and isinstance(ips[0], Mapping):
        first = ips[0]
        return str(first.get("ip_address") or first.get("address") or ""), str(
            first.get("cidr") or port.get("cidr") or ""
        )
    return str(port.get("fixed_ip") or ""), str(port.get("cidr") or "")


def _is_ip(value: object) -> bool:
    try:
        ipaddress.IPv4Address(str(value))
        return value is not None
    except ValueError:
        return False


def _mac(uuid: str, index: int) -> str:
    """A stable locally administered MAC (fa:16:3e is Neutron's prefix) for a port without one."""
    raw = bytes.fromhex(uuid.replace("-", ""))
    return f"fa:16:3e:{raw[0]:02x}:{raw[1]:02x}:{(raw[2] + index) % 256:02x}"


def _hostname(name: str) -> str:
    host = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return host or "server"


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def _sparse(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def _run(*args: str) -> None:
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DriverError(f"{args[0]} failed: {exc}") from exc
    if done.returncode != 0:
        raise DriverError(f"{args[0]} failed: {done.stderr.strip()[-500:]}")
