"""``batching.CallBatcher``: what queues while the worker is busy is processed as one batch;
each submitter gets its own result or exception; a failing ``process`` fails only its batch (and
one that raises what is no Exception ends its worker, not the batcher); ``stop`` finishes what is
queued, and a later ``submit`` starts a new worker."""

from __future__ import annotations

import asyncio
import threading

import pytest

from novalite.batching import CallBatcher
from novalite.errors import BadRequest


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def process(self, items: list[int]) -> list[int | BaseException]:
        self.entered.set()
        self.gate.wait(5)
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        if -1 in items:
            raise RuntimeError("a bug in process")
        return [BadRequest(f"odd {i}") if i % 2 else i * 10 for i in items]


def test_what_queues_meanwhile_is_one_batch_with_its_own_outcomes() -> None:
    rec = Recorder()
    batcher: CallBatcher[int, int] = CallBatcher(rec.process, name="test-batch")

    async def main() -> list[int | BaseException]:
        rec.gate.clear()
        first = asyncio.ensure_future(batcher.submit(0))
        while not rec.entered.is_set():  # the worker holds item 0 and waits at the gate
            await asyncio.sleep(0.001)
        rest = [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        rec.gate.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    outcomes = asyncio.run(main())
    batcher.stop()
    assert rec.batches == [[0], [1, 2, 3, 4, 5]]
    assert rec.threads == {"test-batch"}
    assert [o if isinstance(o, int) else str(o) for o in outcomes] == [0, "odd 1", 20, "odd 3", 40, "odd 5"]


def test_a_failing_process_fails_its_batch_and_the_worker_goes_on() -> None:
    rec = Recorder()
    batcher: CallBatcher[int, int] = CallBatcher(rec.process, name="test-batch")

    async def main() -> int:
        with pytest.raises(RuntimeError, match="a bug in process"):
            await batcher.submit(-1)
        return await batcher.submit(4)

    assert asyncio.run(main()) == 40
    batcher.stop()


def test_after_process_raised_what_is_no_exception_a_later_submit_is_still_processed() -> None:
    rec = Recorder()
    raised = threading.Event()

    def process(items: list[int]) -> list[int | BaseException]:
        if -2 in items:
            raised.set()
            raise SystemExit("no Exception: it ends the worker thread")
        return rec.process(items)

    batcher: CallBatcher[int, int] = CallBatcher(process, name="test-batch")

    async def main() -> int:
        lost = asyncio.ensure_future(batcher.submit(-2))  # its batch dies with the worker: no answer
        while not raised.is_set():
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)  # that worker has ended
        try:
            return await asyncio.wait_for(batcher.submit(4), 5)
        finally:
            lost.cancel()

    assert asyncio.run(main()) == 40
    assert rec.batches == [[4]]
    batcher.stop()
    assert not [t for t in threading.enumerate() if t.name == "test-batch"]


def test_stop_finishes_the_queue_and_submit_starts_again() -> None:
    rec = Recorder()
    batcher: CallBatcher[int, int] = CallBatcher(rec.process, name="test-batch", max_batch=2)

    async def main() -> list[int]:
        rec.gate.clear()
        futures = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 4, 6, 8, 10)]
        while not rec.entered.is_set():
            await asyncio.sleep(0.001)
        stopper = threading.Thread(target=batcher.stop)  # stop while the worker is busy, items queued
        stopper.start()
        await asyncio.sleep(0.02)
        rec.gate.set()
        results = await asyncio.gather(*futures)
        stopper.join(5)
        assert not stopper.is_alive()
        return [*results, await batcher.submit(12)]

    assert asyncio.run(main()) == [20, 40, 60, 80, 100, 120]
    assert [i for b in rec.batches for i in b] == [2, 4, 6, 8, 10, 12]  # in order, nothing lost
    assert max(len(b) for b in rec.batches) == 2  # at most max_batch at a time
    batcher.stop()
    assert not [t for t in threading.enumerate() if t.name == "test-batch"]


def test_a_cancelled_submitter_does_not_disturb_the_others() -> None:
    rec = Recorder()
    batcher: CallBatcher[int, int] = CallBatcher(rec.process, name="test-batch")

    async def main() -> int:
        rec.gate.clear()
        gone = asyncio.ensure_future(batcher.submit(2))
        stays = asyncio.ensure_future(batcher.submit(4))
        await asyncio.sleep(0.01)
        gone.cancel()
        rec.gate.set()
        return await stays

    assert asyncio.run(main()) == 40
    batcher.stop()
    assert [2] in rec.batches or [2, 4] in rec.batches  # the cancelled one's work was still done
