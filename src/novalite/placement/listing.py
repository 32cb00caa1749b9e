"""Finding resource providers by the filters of ``GET /resource_providers`` and the standard
traits placement knows without being told.

Every filter is an SQL condition (EXISTS on inventories, traits, aggregates), so a listing is
one query whatever the number of providers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from novalite.db.models.placement import Inventory, ProviderAggregate, ProviderTrait, ResourceProvider, Trait
from novalite.errors import BadRequest
from novalite.placement.params import MemberOf, TraitFilter

# A subset of os-traits: what a compute node reports, plus the status/image-type traits Nova uses.
STANDARD_TRAITS: tuple[str, ...] = tuple(
    sorted(
        {
            "COMPUTE_STATUS_DISABLED",
            "COMPUTE_NODE",
            "COMPUTE_TRUSTED_CERTS",
            "COMPUTE_DEVICE_TAGGING",
            "COMPUTE_NET_ATTACH_INTERFACE",
            "COMPUTE_NET_ATTACH_INTERFACE_WITH_TAG",
            "COMPUTE_VOLUME_ATTACH_WITH_TAG",
            "COMPUTE_VOLUME_EXTEND",
            "COMPUTE_VOLUME_MULTI_ATTACH",
            "COMPUTE_RESCUE_BFV",
            "COMPUTE_ACCELERATORS",
            "COMPUTE_IMAGE_TYPE_QCOW2",
            "COMPUTE_IMAGE_TYPE_RAW",
            "COMPUTE_IMAGE_TYPE_ISO",
            "COMPUTE_IMAGE_TYPE_AMI",
            "COMPUTE_IMAGE_TYPE_ARI",
            "COMPUTE_IMAGE_TYPE_AKI",
            "COMPUTE_IMAGE_TYPE_VHD",
            "COMPUTE_IMAGE_TYPE_VMDK",
            "COMPUTE_IMAGE_TYPE_VDI",
            "COMPUTE_IMAGE_TYPE_PLOOP",
            "COMPUTE_GRAPHICS_MODEL_VGA",
            "COMPUTE_GRAPHICS_MODEL_VIRTIO",
            "COMPUTE_NET_VIF_MODEL_VIRTIO",
            "COMPUTE_NET_VIF_MODEL_E1000",
            "COMPUTE_STORAGE_BUS_VIRTIO",
            "COMPUTE_STORAGE_BUS_SCSI",
            "COMPUTE_STORAGE_BUS_IDE",
            "COMPUTE_STORAGE_BUS_SATA",
            "COMPUTE_STORAGE_BUS_USB",
            "COMPUTE_STORAGE_BUS_FDC",
            "COMPUTE_SOCKET_PCI_NUMA_AFFINITY",
            "COMPUTE_ADDRESS_SPACE_PASSTHROUGH",
            "COMPUTE_ADDRESS_SPACE_EMULATED",
            "HW_ARCH_X86_64",
            "HW_CPU_X86_SSE",
            "HW_CPU_X86_SSE2",
            "HW_CPU_X86_SSSE3",
            "HW_CPU_X86_SSE41",
            "HW_CPU_X86_SSE42",
            "HW_CPU_X86_AVX",
            "HW_CPU_X86_AVX2",
            "HW_CPU_X86_AVX512F",
            "HW_CPU_X86_VMX",
            "HW_CPU_X86_SVM",
            "HW_CPU_X86_AESNI",
            "HW_CPU_HYPERTHREADING",
            "HW_NIC_SRIOV",
            "HW_GPU_API_VULKAN",
            "MISC_SHARES_VIA_AGGREGATE",
            "STORAGE_DISK_HDD",
            "STORAGE_DISK_SSD",
            "OWNER_NOVA",
        }
    )
)


def known_traits(s: Session, names: Iterable[str]) -> set[str]:
    wanted = set(names)
    if not wanted:
        return set()
    found = set(s.scalars(select(Trait.name).where(Trait.name.in_(wanted))))
    return found | (wanted & set(STANDARD_TRAITS))


def require_known_traits(s: Session, names: Iterable[str]) -> None:
    """400 "No such trait(s): ..." for names that are neither standard nor created."""
    wanted = set(names)
    missing = sorted(wanted - known_traits(s, wanted))
    if missing:
        raise BadRequest(f"No such trait(s): {', '.join(missing)}.")


def _has_trait(name: str) -> Any:
    return exists().where(
        ProviderTrait.resource_provider_id == ResourceProvider.id,
        ProviderTrait.trait_id == Trait.id,
        Trait.name == name,
    )


def _in_aggregates(uuids: list[str]) -> Any:
    return exists().where(
        ProviderAggregate.resource_provider_id == ResourceProvider.id,
        ProviderAggregate.aggregate_uuid.in_(uuids),
    )


def _fits(rc: str, amount: int) -> Any:
    capacity = (Inventory.total - Inventory.reserved) * Inventory.allocation_ratio
    return exists().where(
        and_(
            Inventory.resource_provider_id == ResourceProvider.id,
            Inventory.resource_class == rc,
            Inventory.used + amount <= capacity,
            Inventory.min_unit <= amount,
            Inventory.max_unit >= amount,
        )
    )


@dataclass
class ProviderFilter:
    name: str | None = None
    uuid: str | None = None
    in_tree: str | None = None
    member_of: MemberOf | None = None
    traits: TraitFilter | None = None
    resources: dict[str, int] | None = None


def _conditions(f: ProviderFilter) -> list[Any]:
    conds: list[Any] = []
    if f.name is not None:
        conds.append(ResourceProvider.name == f.name)
    if f.uuid is not None:
        conds.append(ResourceProvider.uuid == f.uuid)
    if f.member_of is not None:
        conds += [_in_aggregates(group) for group in f.member_of.any_of]
        if f.member_of.forbidden:
            conds.append(~_in_aggregates(f.member_of.forbidden))
    if f.traits is not None:
        conds += [_has_trait(t) for t in f.traits.required]
        conds += [~_has_trait(t) for t in f.traits.forbidden]
        conds += [or_(*[_has_trait(t) for t in group]) for group in f.traits.any_of]
    for rc, amount in (f.resources or {}).items():
        conds.append(_fits(rc, amount))
    return conds


def find_providers(s: Session, f: ProviderFilter) -> list[ResourceProvider]:
    """Providers matching every filter, by id. ``in_tree`` of an unknown provider finds none."""
    stmt = select(ResourceProvider).where(*_conditions(f)).order_by(ResourceProvider.id)
    if f.in_tree is not None:
        tree = s.scalars(select(ResourceProvider).where(ResourceProvider.uuid == f.in_tree)).first()
        if tree is None:
            return []
        root = tree.root_provider_uuid or tree.uuid
        stmt = stmt.where(or_(ResourceProvider.root_provider_uuid == root, ResourceProvider.uuid == root))
    return list(s.scalars(stmt))
