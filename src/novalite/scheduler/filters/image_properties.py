"""ImagePropertiesFilter: the image's architecture / hypervisor type / vm mode are among the
host's supported instance tuples; ``img_hv_requested_version`` and ``hw_maxphysaddr_bits``
are satisfied. Images with none of these properties pass everywhere."""

from __future__ import annotations

from typing import ClassVar

from novalite.scheduler.filters import extra_specs_ops
from novalite.scheduler.filters.base import PASS, Verdict, fail
from novalite.scheduler.snapshots import HostSnapshot, RequestView

_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "x86_32": "i686", "i386": "i686", "arm64": "aarch64"}
_HV_ALIASES = {"kvm": "qemu", "xapi": "xen"}
_MODE_ALIASES = {"pv": "xen", "hv": "hvm", "baremetal": "hvm"}


def _norm(value: object, aliases: dict[str, str]) -> str | None:
    if value in (None, ""):
        return None
    text = str(value).strip().lower()
    return aliases.get(text, text)


def _supported(host: HostSnapshot, arch: str | None, hv: str | None, mode: str | None) -> bool:
    for entry in host.supported_instances:
        h_arch, h_hv, h_mode = (
            _norm(entry[0], _ARCH_ALIASES),
            _norm(entry[1], _HV_ALIASES),
            _norm(entry[2], _MODE_ALIASES),
        )
        if (
            (arch is None or arch == h_arch)
            and (hv is None or hv == h_hv)
            and (mode is None or mode == h_mode)
        ):
            return True
    return False


class ImagePropertiesFilter:
    name: ClassVar[str] = "ImagePropertiesFilter"

    def passes(self, host: HostSnapshot, spec: RequestView) -> Verdict:
        props = spec.image_properties
        arch = _norm(props.get("hw_architecture") or props.get("architecture"), _ARCH_ALIASES)
        hv = _norm(props.get("img_hv_type") or props.get("hypervisor_type"), _HV_ALIASES)
        mode = _norm(props.get("hw_vm_mode") or props.get("vm_mode"), _MODE_ALIASES)
        if (arch or hv or mode) and not _supported(host, arch, hv, mode):
            return fail(f"does not support instances {arch or '*'}/{hv or '*'}/{mode or '*'}")
        version = props.get("img_hv_requested_version")
        if version and not extra_specs_ops.match(host.hypervisor_version, str(version)):
            return fail(f"hypervisor version {host.hypervisor_version} does not satisfy {version}")
        bits = props.get("hw_maxphysaddr_bits")
        if bits:
            have = (host.cpu_info.get("maxphysaddr") or {}).get("bits")
            if have is None or int(have) < int(bits):
                return fail(f"cpu maxphysaddr bits below {bits}")
        return PASS
