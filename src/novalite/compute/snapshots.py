"""createImage / createBackup of a real guest: the host's driver copies the root disk (a
consistent standalone qcow2) and the copy becomes the data of the queued snapshot image.

The agent runs it for the API (``SnapshotInstance``, an RPC call). The image store lives in the
data directory both processes share: the driver writes next to it and the copy is streamed into
the store through ``store.DataWriter`` (hashed on the way), then the image turns active.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select

from novalite.compute.guest_spec import guest_spec
from novalite.db.models.compute import Instance
from novalite.image import store
from novalite.image.service import abort_upload, finish_upload
from novalite.virt.driver import DriverError

LOG = logging.getLogger(__name__)


def snapshot_instance(agent: Any, instance_uuid: str, image_id: str) -> dict[str, Any]:
    """``{"done": True}`` once the image holds the guest's disk; ``{"done": False}`` when the
    driver cannot snapshot (the API then gives the image its base image's data);
    ``{"error": ...}`` when the copy failed (the image goes back to queued)."""
    snap = getattr(agent.driver, "snapshot", None)
    root = getattr(agent.driver, "instances_path", None)
    if snap is None or root is None:
        return {"done": False}
    data_dir = Path(root).parent  # startup.qemu_driver: <data_dir>/instances
    with agent.db.reader() as s:
        inst = s.scalars(select(Instance).where(Instance.uuid == instance_uuid)).first()
        if inst is None or inst.deleted:
            return {"error": f"Instance {instance_uuid} could not be found."}
        guest = guest_spec(
            inst,
            agent.host,
        )
    with tempfile.TemporaryDirectory(prefix=".snapshot-", dir=root) as tmp:
        copy = Path(tmp) / "disk.qcow2"
        try:
            snap(guest, copy)
        except DriverError as exc:
            LOG.warning("snapshot of %s failed: %s", instance_uuid, exc)
            agent.db.write(lambda s: abort_upload(s, image_id))
            return {"error": str(exc)}
        writer = store.DataWriter(data_dir, image_id)
        try:
            with copy.open("rb") as f:
                while chunk := f.read(1 << 20):
                    writer.write(chunk)
            stored = writer.commit()
        except BaseException:
            writer.abort()
            raise

    def activate(s: Any) -> None:
        from novalite.db.models.image import Image

        image = s.get(Image, image_id)
        if image is not None and image.status == "queued":
            image.status = "saving"
            s.flush()
        finish_upload(s, image_id, stored)

    agent.db.write(activate)
    return {"done": True}
