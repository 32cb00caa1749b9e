"""``batching.CastBatcher``: ``submit`` returns at once; what queues while the worker is busy is
processed as one batch (at most ``max_batch``); a failing ``process`` does not end the worker;
``stop`` finishes the batch in hand, leaves the rest queued, and is safe twice; ``start`` after
``stop`` raises."""

from __future__ import annotations

import threading

import pytest

from novalite.batching import CastBatcher


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.done = threading.Event()
        self.want = 0

    def process(self, items: list[int]) -> None:
        self.entered.set()
        self.gate.wait(5)
        self.batches.append(list(items))
        if sum(len(b) for b in self.batches) >= self.want:
            self.done.set()
        if -1 in items:
            raise RuntimeError("a bug in process")


def test_what_queues_meanwhile_is_one_batch_and_a_failure_does_not_end_the_worker() -> None:
    rec = Recorder()
    batcher: CastBatcher[int] = CastBatcher(rec.process, name="test-cast", max_batch=3)
    batcher.start()
    rec.gate.clear()
    rec.want = 6
    batcher.submit(-1)
    assert rec.entered.wait(5)
    for i in range(1, 6):
        batcher.submit(i)
    rec.gate.set()
    assert rec.done.wait(5)
    batcher.stop()
    assert rec.batches == [[-1], [1, 2, 3], [4, 5]]
    assert not [t for t in threading.enumerate() if t.name == "test-cast"]


def test_stop_finishes_the_batch_in_hand_and_is_safe_twice() -> None:
    rec = Recorder()
    batcher: CastBatcher[int] = CastBatcher(rec.process, name="test-cast", max_batch=2)
    batcher.start()
    rec.gate.clear()
    batcher.submit(1)
    assert rec.entered.wait(5)
    for i in (2, 3, 4):
        batcher.submit(i)
    opener = threading.Timer(0.05, rec.gate.set)  # the worker holds its batch until after the stop
    opener.start()
    batcher.stop()
    opener.join(5)
    batcher.stop()
    assert rec.batches == [[1]]  # the batch in hand was finished; what was queued stays
    assert not [t for t in threading.enumerate() if t.name == "test-cast"]


def test_stop_of_an_idle_or_never_started_worker_returns() -> None:
    idle: CastBatcher[int] = CastBatcher(Recorder().process, name="test-cast")
    idle.start()
    idle.stop()
    never: CastBatcher[int] = CastBatcher(Recorder().process, name="test-cast")
    never.stop()
    never.stop()
    assert not [t for t in threading.enumerate() if t.name == "test-cast"]


def test_start_after_stop_raises() -> None:
    rec = Recorder()
    batcher: CastBatcher[int] = CastBatcher(rec.process, name="test-cast")
    batcher.start()
    batcher.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        batcher.start()
    never: CastBatcher[int] = CastBatcher(rec.process, name="test-cast")
    never.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        never.start()
    assert not [t for t in threading.enumerate() if t.name == "test-cast"]
