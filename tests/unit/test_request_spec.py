"""domain.request_spec: the RequestSpec document the create pipeline stores and the conductor
reads back (possibly on another machine, from another release)."""

from __future__ import annotations

from typing import Any

import pytest

from novalite.domain.flavor import FlavorSnapshot
from novalite.domain.request_spec import (
    VERSION,
    ImageSnapshot,
    RequestedNetwork,
    RequestSpecDoc,
    RequestSpecVersionError,
)

FLAVOR = FlavorSnapshot(
    flavorid="1", name="m1.tiny", memory_mb=512, vcpus=1, root_gb=1, swap=512, extra_specs={"a": "1"}
)


def _spec() -> RequestSpecDoc:
    return RequestSpecDoc(
        instance_uuid="u-1",
        project_id="p",
        user_id="u",
        flavor=FLAVOR,
        image=ImageSnapshot(id="img", name="cirros", properties={"hw_x": "1"}, min_ram=1, size=10),
        num_instances=2,
        reservation_id="r-00000001",
        availability_zone="az1",
        force_hosts=("h1",),
        requested_node="n1",
        scheduler_hints={"same_host": ("u-0",)},
        instance_group="g",
        security_groups=("default",),
        requested_networks=(RequestedNetwork(network_id="net", fixed_ip="10.0.0.5"),),
    )


def test_round_trip() -> None:
    spec = _spec()
    doc = spec.to_doc()
    assert doc["version"] == VERSION
    assert doc["requested_destination"] == {"host": None, "node": "n1"}
    assert doc["requested_networks"] == [
        {"network_id": "net", "port_id": None, "fixed_ip": "10.0.0.5", "tag": None}
    ]
    assert doc["flavor"] == {
        "flavorid": "1",
        "name": "m1.tiny",
        "memory_mb": 512,
        "vcpus": 1,
        "root_gb": 1,
        "ephemeral_gb": 0,
        "swap": 512,
        "extra_specs": {"a": "1"},
    }
    assert RequestSpecDoc.from_doc(doc) == spec
    docs = spec.to_docs(["a", "b"])
    assert [d["instance_uuid"] for d in docs] == ["a", "b"] and docs[0] | {"instance_uuid": "u-1"} == doc


def test_a_document_without_version_is_read_as_1_0() -> None:
    """The shape stored before the document had a version (and partial documents: tests, bench)."""
    doc: dict[str, Any] = {
        "instance_uuid": "u-1",
        "project_id": "p",
        "user_id": "u",
        "num_instances": 1,
        "flavor": {"vcpus": 1, "memory_mb": 64},
        "image": {},
        "is_bfv": True,
        "availability_zone": None,
        "force_hosts": [],
        "force_nodes": [],
        "requested_destination": None,
        "scheduler_hints": {"group": "g"},
        "instance_group": "g",
        "requested_networks": "none",
    }
    spec = RequestSpecDoc.from_doc(doc)
    assert spec.image is None and spec.is_bfv and spec.requested_networks == "none"
    assert (spec.flavor.vcpus, spec.flavor.memory_mb, spec.flavor.root_gb) == (1, 64, 0)
    assert spec.scheduler_hints == {"group": ("g",)}
    assert spec.requested_host is None and spec.requested_node is None


def test_a_newer_minor_is_read_and_a_newer_major_refused() -> None:
    doc = _spec().to_doc()
    assert RequestSpecDoc.from_doc(doc | {"version": "1.7", "new_key": 1}) == _spec()
    with pytest.raises(RequestSpecVersionError, match="newer than this release reads"):
        RequestSpecDoc.from_doc(doc | {"version": "2.0"})
