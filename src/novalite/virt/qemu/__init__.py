"""Real guests: QEMU driven directly over QMP (see driver.py and docs/qemu.md)."""

from novalite.virt.qemu.driver import QemuDriver, QemuNotInstalled, host_resources

__all__ = ["QemuDriver", "QemuNotInstalled", "host_resources"]
