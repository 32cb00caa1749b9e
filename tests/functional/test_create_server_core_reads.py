"""The column-only reads POST /servers uses give what the ORM-based contracts give.

``flavors.find_snapshot`` = ``flavors.flavor_snapshot(flavors.get_flavor(...))`` (visibility
of private flavors included), ``image.service.get_image`` = ``info(find_visible(...))``, and the
one-statement quota limits = ``class_limits`` + the project's and user's rows; on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from novalite.context import RequestContext
from novalite.db.models.catalog import Flavor, FlavorExtraSpec, FlavorProjectAccess
from novalite.db.models.image import Image, ImageProperty
from novalite.errors import NotFound
from novalite.image import service as images
from novalite.services import flavors, quotas


def _ctx(project: str, admin: bool = False) -> RequestContext:
    return RequestContext(user_id="u-1", project_id=project, roles=("admin",) if admin else ("member",))


def _fast_snapshot(s: Any, ctx: RequestContext, flavorid: str) -> dict[str, Any] | None:
    snapshot = flavors.find_snapshot(s, ctx, flavorid)
    return snapshot.to_dict() if snapshot is not None else None


def _orm_snapshot(s: Any, ctx: RequestContext, flavorid: str) -> dict[str, Any] | None:
    try:
        return flavors.flavor_snapshot(flavors.get_flavor(s, ctx, flavorid))
    except NotFound:
        return None


@pytest.mark.parametrize("postgres", [False, True], ids=["sqlite", "postgresql"])
def test_core_reads_match_the_orm_contracts(stack_factory: Any, postgres: bool) -> None:
    stack = stack_factory(postgres=postgres)
    db = stack.runtime.db
    with db.session() as s:
        private = Flavor(
            flavorid="priv-1", name="priv", memory_mb=64, vcpus=1, root_gb=1, is_public=False, description="d"
        )
        s.add(private)
        s.flush()
        s.add_all(
            [FlavorExtraSpec(flavor_id=private.id, key=k, value=v) for k, v in (("b", "2"), ("a", "1"))]
        )
        s.add(FlavorProjectAccess(flavor_id=private.id, project_id="granted"))
        s.add(
            Image(
                id="11111111-2222-3333-4444-555555555555",
                name="p",
                status="active",
                visibility="private",
                owner="granted",
                disk_format="qcow2",
                container_format="bare",
                size=10,
                min_ram=1,
                min_disk=2,
            )
        )
        s.add_all(
            [
                ImageProperty(image_id="11111111-2222-3333-4444-555555555555", name=n, value=v)
                for n, v in (("z", "26"), ("kernel_id", "nokernel"))
            ]
        )
        quotas.set_limits(s, "granted", None, {"instances": 7, "metadata_items": 3})
        quotas.set_limits(s, "granted", "u-1", {"cores": 5})
        quotas.set_class_limits(s, "default", {"ram": 1000})
    public_image = stack.get("/image/v2/images?name=novalite-tiny").json()["images"][0]["id"]
    contexts = [_ctx("granted"), _ctx("other"), _ctx("other", admin=True)]
    with db.reader() as s:
        for ctx in contexts:
            for flavorid in ("1", "priv-1", "missing"):
                assert _fast_snapshot(s, ctx, flavorid) == _orm_snapshot(s, ctx, flavorid)
            for image_id in (public_image, "11111111-2222-3333-4444-555555555555", "nope", "x" * 40):
                orm = images.find_visible(s, ctx, image_id)
                assert images.get_image(s, ctx, image_id) == (images.info(orm) if orm is not None else None)
        assert _fast_snapshot(s, _ctx("granted"), "priv-1")["extra_specs"] == {"a": "1", "b": "2"}
        limits, rows = quotas._sources(s, "granted", "u-1")
        assert limits == quotas.class_limits(s)
        assert rows == quotas._limit_rows(s, "granted", ["", "u-1"])
        assert quotas._sources(s, "granted", None) == (limits, quotas._limit_rows(s, "granted", [""]))
        assert quotas.effective_limits(s, "granted", "u-1")["cores"] == 5
        assert quotas.effective_limits(s, "granted")["instances"] == 7
        assert quotas.effective_limits(s, "granted")["ram"] == 1000
