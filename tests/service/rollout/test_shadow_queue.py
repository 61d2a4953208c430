"""Shadow copies wait for stable to be idle: a client request never waits behind one, and a full queue drops."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np

from service.core.batcher import Batcher
from service.core.metrics import Metrics
from service.rollout.shadow import ShadowCopy, ShadowQueue


class Recorded:
    """A model that doubles numbers after `delay_s`, recording its calls in one list shared by versions."""

    def __init__(self, name: str, calls: list[tuple[str, list[int]]], delay_s: float) -> None:
        self.name, self.calls, self.delay_s = name, calls, delay_s
        self.lock = threading.Lock()

    def __call__(self, items: np.ndarray) -> np.ndarray:
        with self.lock:
            self.calls.append((self.name, items.tolist()))
        time.sleep(self.delay_s)
        return np.stack([items * 2.0, items * 1.0], axis=1)


def _version(name: str, calls: list[tuple[str, list[int]]], executor: ThreadPoolExecutor,
             delay_s: float) -> SimpleNamespace:
    batcher = Batcher(Recorded(name, calls, delay_s), np.concatenate, executor=executor, concurrency=1,
                      max_batch_size=8, max_delay_s=0.001, queue_limit=64, timeout_s=5.0,
                      metrics=Metrics().for_batcher(name, 1))
    batcher.start()
    return SimpleNamespace(name=name, version=1, batcher=batcher)


async def test_a_client_request_arriving_while_copies_wait_goes_to_the_model_ahead_of_them() -> None:
    calls: list[tuple[str, list[int]]] = []
    executor = ThreadPoolExecutor(1)  # one model thread, shared, as in the service
    stable = _version("stable", calls, executor, delay_s=0.2)
    candidate = _version("candidate", calls, executor, delay_s=0.0)
    shadows = ShadowQueue(limit=8, fill_wait_s=0)  # no wait to fill a batch: only idleness holds copies back
    shadows.start()
    done: list[object] = []
    first = asyncio.create_task(stable.batcher.submit(np.array([1])))
    await asyncio.sleep(0.05)  # the first client batch is on the model
    for value in (10, 11):  # copies of earlier requests
        shadows.offer(ShadowCopy(stable, candidate, np.array([value]), None, np.zeros((1, 2)),  # type: ignore[arg-type]
                                 lambda outputs, seconds: done.append(outputs)))
    second = asyncio.create_task(stable.batcher.submit(np.array([2])))
    await asyncio.gather(first, second)
    while len(done) < 2:
        await asyncio.sleep(0.01)
    assert calls == [("stable", [1]), ("stable", [2]), ("candidate", [10, 11])]
    await shadows.close()
    for version in (stable, candidate):
        await version.batcher.close()


async def test_a_full_shadow_queue_refuses_the_copy() -> None:
    shadows = ShadowQueue(limit=2)  # not started: nothing leaves the queue
    copy = ShadowCopy(None, None, np.array([1]), None, np.zeros((1, 2)), lambda o, s: None)  # type: ignore[arg-type]
    assert [shadows.offer(copy) for _ in range(3)] == [True, True, False]
    assert shadows.waiting == 2


async def test_copies_go_to_the_candidate_in_batches_a_full_one_at_once_a_part_one_after_the_fill_wait() -> None:
    calls: list[tuple[str, list[int]]] = []
    executor = ThreadPoolExecutor(1)
    stable = _version("stable", calls, executor, delay_s=0.0)
    candidate = _version("candidate", calls, executor, delay_s=0.0)
    done: list[object] = []

    def offer(shadows: ShadowQueue, *values: int) -> None:
        for value in values:
            shadows.offer(ShadowCopy(stable, candidate, np.array([value]), None, np.zeros((1, 2)),  # type: ignore[arg-type]
                                     lambda outputs, seconds: done.append(outputs)))

    async def until_done(count: int) -> None:
        async with asyncio.timeout(10):
            while len(done) < count:
                await asyncio.sleep(0.005)

    patient = ShadowQueue(limit=64, fill_wait_s=600)
    patient.start()
    offer(patient, *range(8))  # a full batch (the candidate's max_batch_size) goes without waiting
    await until_done(8)
    offer(patient, 20, 21, 22)  # a part batch waits for more copies ...
    await asyncio.sleep(0.3)
    assert patient.waiting == 3
    await patient.close()
    hurried = ShadowQueue(limit=64, fill_wait_s=0.05)
    hurried.start()
    offer(hurried, 30, 31, 32)  # ... until the oldest has waited the fill wait: then it goes as it is
    await until_done(11)
    assert calls == [("candidate", list(range(8))), ("candidate", [30, 31, 32])]
    await hurried.close()
    for version in (stable, candidate):
        await version.batcher.close()
