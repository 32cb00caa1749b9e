"""``api.common.in_thread``: the server reads' hand-off to their pool keeps the caller's context
variables, returns the result, raises the worker's exception, and runs at most ``READ_WORKERS``
calls at once (the rest wait their turn in order)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from novalite.api.common import READ_POOL, READ_WORKERS, in_thread
from novalite.errors import BadRequest

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def test_result_context_and_errors_cross_the_hand_off() -> None:
    def work(x: int) -> tuple[str, int, str]:
        return REQUEST_ID.get(), x * 2, threading.current_thread().name

    def bad() -> None:
        raise BadRequest("Invalid flavorRef provided.")

    async def main() -> tuple[str, int, str]:
        REQUEST_ID.set("req-1")
        with pytest.raises(BadRequest, match="Invalid flavorRef"):
            await in_thread(bad, pool=READ_POOL)
        return await in_thread(work, pool=READ_POOL, x=21)

    request_id, doubled, thread = asyncio.run(main())
    assert (request_id, doubled) == ("req-1", 42)
    assert thread.startswith("api-read") and thread != threading.current_thread().name


def test_at_most_read_workers_run_at_once_and_the_rest_in_order() -> None:
    running, peak, order = 0, 0, []
    lock = threading.Lock()

    def work(i: int) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            order.append(i)
        time.sleep(0.02)
        with lock:
            running -= 1

    async def main() -> None:
        await asyncio.gather(*(in_thread(work, i, pool=READ_POOL) for i in range(3 * READ_WORKERS)))

    asyncio.run(main())
    assert peak == READ_WORKERS
    # queued calls start first come, first served: each wave is the next READ_WORKERS submitted
    waves = [set(order[i : i + READ_WORKERS]) for i in range(0, len(order), READ_WORKERS)]
    assert waves == [set(range(i, i + READ_WORKERS)) for i in range(0, len(order), READ_WORKERS)]
