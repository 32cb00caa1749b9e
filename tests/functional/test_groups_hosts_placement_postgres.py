"""The same user-visible flows on PostgreSQL: placement generations and allocations, the
aggregate -> placement mirror and zones, service disable -> trait, server group quotas."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api
from tests.functional import (
    test_aggregates,
    test_hypervisors_services,
    test_placement_api,
    test_server_groups,
)

Flow = Callable[[Api], None]


@pytest.mark.parametrize(
    "flow",
    [
        test_placement_api.test_inventories_with_generation_checks,
        test_placement_api.test_allocations_consumer_generations_and_usages,
        test_placement_api.test_allocation_candidates,
        test_placement_api.test_traits,
        test_placement_api.test_provider_aggregates_with_generation,
    ],
    ids=lambda f: f.__name__,
)
def test_placement_on_postgres(stack_factory: Any, flow: Flow) -> None:
    flow(stack_factory(fake_hosts=2, postgres=True))


@pytest.mark.parametrize(
    "flow",
    [
        test_aggregates.test_a_host_cannot_be_in_two_zones,
        test_aggregates.test_hosts_are_mirrored_into_placement_aggregates,
        test_aggregates.test_availability_zones_come_from_aggregates,
        test_hypervisors_services.test_disable_and_enable_at_253_mirror_a_trait,
        test_hypervisors_services.test_delete_compute_service,
        test_hypervisors_services.test_paging_from_233,
    ],
    ids=lambda f: f.__name__,
)
def test_hosts_on_postgres(stack_factory: Any, flow: Flow) -> None:
    flow(stack_factory(fake_hosts=3, postgres=True))


@pytest.mark.parametrize(
    "flow",
    [
        test_server_groups.test_server_groups_quota,
        test_server_groups.test_list_limit_and_offset,
        test_server_groups.test_server_group_members_quota,
    ],
    ids=lambda f: f.__name__,
)
def test_server_groups_on_postgres(stack_factory: Any, flow: Flow) -> None:
    flow(stack_factory(postgres=True))
