"""novalite's default guest: a small BIOS-bootable disk image (see :mod:`novalite.guest.builder`)."""
