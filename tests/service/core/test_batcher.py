"""The batcher on its own, with a plain Python function as the model."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from service.core.batcher import Batcher
from service.core.errors import DeadlineExceeded, InferenceFailed, Overloaded, ShuttingDown
from service.core.metrics import Metrics
from service.core.otel import OpenTelemetryTracing


class Squares:
    """A model that squares numbers and records every batch it was called with."""

    def __init__(self, delay_s: float = 0.0, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.delay_s = delay_s
        self.fail_on = fail_on

    def __call__(self, items: np.ndarray) -> np.ndarray:
        self.batches.append(items.tolist())
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        if self.fail_on in items:
            raise ValueError("cannot square that")
        return items * items


def rows(*values: int) -> np.ndarray:
    return np.array(values)


def make_batcher(model, executor=None, **overrides) -> Batcher:
    options = dict(max_batch_size=8, max_delay_s=0.05, queue_limit=64, timeout_s=5.0, concurrency=1,
                   metrics=Metrics().for_batcher("squares", 1))
    batcher = Batcher(model, np.concatenate, executor=executor or ThreadPoolExecutor(1), **(options | overrides))
    batcher.start()
    return batcher


async def test_concurrent_callers_share_one_model_call_and_get_their_own_answers() -> None:
    model = Squares()
    batcher = make_batcher(model, max_batch_size=4, max_delay_s=1.0)
    answers = await asyncio.gather(*(batcher.submit(rows(x)) for x in (1, 2, 3, 4)))
    assert [a.outputs.tolist() for a in answers] == [[1], [4], [9], [16]]
    assert model.batches == [[1, 2, 3, 4]]
    assert all(a.batch_size == 4 for a in answers)
    await batcher.close()


async def test_a_batch_runs_off_the_event_loop_thread() -> None:
    model = Squares()
    batcher = make_batcher(model)
    await batcher.submit(rows(3))
    assert model.threads and threading.current_thread().name not in model.threads
    await batcher.close()


async def test_a_lone_request_waits_at_most_the_max_delay() -> None:
    batcher = make_batcher(Squares(), max_batch_size=64, max_delay_s=0.05)
    started = time.monotonic()
    answer = await batcher.submit(rows(5))
    assert answer.outputs.tolist() == [25] and answer.batch_size == 1
    assert time.monotonic() - started < 1.0  # generous: only shows it did not wait for a full batch
    await batcher.close()


async def test_one_callers_several_inputs_keep_their_order() -> None:
    batcher = make_batcher(Squares(), max_batch_size=3)
    answer = await batcher.submit(rows(1, 2, 3, 4, 5, 6, 7))
    assert answer.outputs.tolist() == [1, 4, 9, 16, 25, 36, 49]
    await batcher.close()


async def test_batches_form_while_the_model_is_busy() -> None:
    model = Squares(delay_s=0.2)
    batcher = make_batcher(model, max_batch_size=16, max_delay_s=0.0)
    first = asyncio.ensure_future(batcher.submit(rows(0)))
    await asyncio.sleep(0.05)  # the model is now busy with [0]
    rest = await asyncio.gather(*(batcher.submit(rows(x)) for x in range(1, 9)))
    await first
    assert [int(a.outputs[0]) for a in rest] == [x * x for x in range(1, 9)]
    assert model.batches == [[0], list(range(1, 9))]
    await batcher.close()


async def test_a_full_queue_refuses_at_once() -> None:
    model = Squares(delay_s=0.3)
    batcher = make_batcher(model, max_batch_size=2, queue_limit=4, max_delay_s=0.0)
    busy = asyncio.ensure_future(batcher.submit(rows(1, 2)))
    await asyncio.sleep(0.05)
    queued = asyncio.ensure_future(batcher.submit(rows(3, 4, 5, 6)))
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):
        await batcher.submit(rows(7))
    assert (await busy).outputs.tolist() == [1, 4]
    assert (await queued).outputs.tolist() == [9, 16, 25, 36]
    await batcher.close()


async def test_a_failed_model_call_fails_every_request_in_its_batch_and_the_next_batch_works() -> None:
    model = Squares(fail_on=13)
    batcher = make_batcher(model, max_batch_size=4, max_delay_s=1.0)
    results = await asyncio.gather(*(batcher.submit(rows(x)) for x in (11, 12, 13, 14)), return_exceptions=True)
    assert all(isinstance(r, InferenceFailed) for r in results)
    assert "cannot square that" in str(results[0])
    assert (await batcher.submit(rows(2))).outputs.tolist() == [4]
    await batcher.close()


async def test_a_model_that_returns_the_wrong_number_of_rows_is_an_error_not_a_shift() -> None:
    batcher = make_batcher(lambda items: items[1:], max_batch_size=2, max_delay_s=1.0)
    results = await asyncio.gather(batcher.submit(rows(1)), batcher.submit(rows(2)), return_exceptions=True)
    assert all(isinstance(r, InferenceFailed) and "1 rows for 2 inputs" in str(r) for r in results)
    await batcher.close()


async def test_a_request_past_its_timeout_gets_deadline_exceeded() -> None:
    batcher = make_batcher(Squares(delay_s=0.5), timeout_s=0.1, max_delay_s=0.0)
    with pytest.raises(DeadlineExceeded):
        await batcher.submit(rows(1))
    await batcher.close()


async def test_inputs_of_callers_that_gave_up_are_skipped() -> None:
    model = Squares(delay_s=0.3)
    batcher = make_batcher(model, max_batch_size=8, max_delay_s=0.0, timeout_s=0.1)
    busy = asyncio.ensure_future(batcher.submit(rows(1)))
    await asyncio.sleep(0.02)
    with pytest.raises(DeadlineExceeded):
        await batcher.submit(rows(2))  # waits behind the busy model past its timeout
    await asyncio.gather(busy, return_exceptions=True)
    batcher.timeout_s = 5.0
    assert (await batcher.submit(rows(3))).outputs.tolist() == [9]
    assert [2] not in model.batches
    await batcher.close()


async def test_close_answers_what_is_queued_then_refuses_new_inputs() -> None:
    model = Squares(delay_s=0.1)
    batcher = make_batcher(model, max_batch_size=2, max_delay_s=0.0)
    queued = [asyncio.ensure_future(batcher.submit(rows(x))) for x in range(5)]
    await asyncio.sleep(0)
    await batcher.close()
    assert [(await q).outputs.tolist() for q in queued] == [[x * x] for x in range(5)]
    with pytest.raises(ShuttingDown):
        await batcher.submit(rows(1))


async def test_a_callers_rows_travel_whole_and_share_a_batch_with_others() -> None:
    model = Squares()
    batcher = make_batcher(model, max_batch_size=4, max_delay_s=1.0)
    three, one = await asyncio.gather(batcher.submit(rows(1, 2, 3)), batcher.submit(rows(4)))
    assert three.outputs.tolist() == [1, 4, 9] and one.outputs.tolist() == [16]
    assert model.batches == [[1, 2, 3, 4]]
    await batcher.close()


async def test_a_piece_that_does_not_fit_waits_for_the_next_batch_instead_of_being_split() -> None:
    model = Squares(delay_s=0.2)
    batcher = make_batcher(model, max_batch_size=4, max_delay_s=0.0)
    busy = asyncio.ensure_future(batcher.submit(rows(0)))
    await asyncio.sleep(0.05)
    answers = await asyncio.gather(batcher.submit(rows(1, 2, 3)), batcher.submit(rows(4, 5)))
    await busy
    assert [a.outputs.tolist() for a in answers] == [[1, 4, 9], [16, 25]]
    assert model.batches == [[0], [1, 2, 3], [4, 5]]
    await batcher.close()


async def test_a_caller_that_gave_up_frees_its_queue_places_at_once() -> None:
    model = Squares(delay_s=0.4)
    batcher = make_batcher(model, max_batch_size=2, queue_limit=4, max_delay_s=0.0, timeout_s=0.1)
    busy = asyncio.ensure_future(batcher.submit(rows(1, 2)))
    await asyncio.sleep(0.02)
    with pytest.raises(DeadlineExceeded):
        await batcher.submit(rows(3, 4, 5, 6))  # fills the queue, then gives up while the model is busy
    batcher.timeout_s = 5.0
    # Still inside the first model call: the 4 places must be free again, not held until popped.
    assert (await batcher.submit(rows(7, 8, 9, 10))).outputs.tolist() == [49, 64, 81, 100]
    await asyncio.gather(busy, return_exceptions=True)
    assert [3, 4] not in model.batches and [5, 6] not in model.batches
    await batcher.close()


async def test_batchers_share_the_model_threads_they_are_given() -> None:
    shared = ThreadPoolExecutor(1, thread_name_prefix="shared-model")
    first, second = Squares(delay_s=0.05), Squares(delay_s=0.05)
    batchers = [make_batcher(model, executor=shared) for model in (first, second)]
    await asyncio.gather(*(b.submit(rows(x)) for b in batchers for x in range(3)))
    assert first.threads == second.threads and len(first.threads) == 1
    for batcher in batchers:
        await batcher.close()


async def test_with_two_model_threads_one_version_runs_two_batches_at_once() -> None:
    meeting = threading.Barrier(2, timeout=10)  # passes only if two model calls are running together

    def model(items: np.ndarray) -> np.ndarray:
        meeting.wait()
        return items * items

    batcher = make_batcher(model, executor=ThreadPoolExecutor(2), concurrency=2, max_batch_size=1, max_delay_s=0.0)
    answers = await asyncio.gather(batcher.submit(rows(1)), batcher.submit(rows(2)))
    assert [a.outputs.tolist() for a in answers] == [[1], [4]]
    await batcher.close()


# -- found by mutation testing (tests/MUTATION.md): each one a behaviour a client or an operator would notice --


async def test_refusals_say_why_in_words_a_client_can_act_on() -> None:
    batcher = make_batcher(Squares(delay_s=0.3), max_batch_size=2, queue_limit=4, max_delay_s=0.0, timeout_s=0.1)
    busy = asyncio.ensure_future(batcher.submit(rows(1, 2)))
    await asyncio.sleep(0.02)
    with pytest.raises(DeadlineExceeded, match=r"^no answer within 0\.1 s$"):
        await batcher.submit(rows(3))
    batcher.timeout_s = 5.0
    queued = asyncio.ensure_future(batcher.submit(rows(3, 4, 5, 6)))
    await asyncio.sleep(0)
    with pytest.raises(Overloaded, match=r"^4 inputs already queued \(limit 4\)$"):
        await batcher.submit(rows(7))
    await asyncio.gather(busy, queued, return_exceptions=True)
    await batcher.close()
    with pytest.raises(ShuttingDown, match="^the model version is shutting down$"):
        await batcher.submit(rows(1))


async def test_the_queue_limit_counts_every_callers_rows() -> None:
    batcher = make_batcher(Squares(delay_s=0.3), max_batch_size=2, queue_limit=4, max_delay_s=0.0)
    busy = asyncio.ensure_future(batcher.submit(rows(1)))
    await asyncio.sleep(0.05)
    waiting = [asyncio.ensure_future(batcher.submit(rows(2, 3))), asyncio.ensure_future(batcher.submit(rows(4, 5)))]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):  # 2 + 2 rows queued: one more is over the limit
        await batcher.submit(rows(6))
    await asyncio.gather(busy, *waiting)
    await batcher.close()


async def test_a_lone_request_waits_for_company_up_to_the_delay() -> None:
    model = Squares()
    batcher = make_batcher(model, max_batch_size=8, max_delay_s=0.3)
    first = asyncio.ensure_future(batcher.submit(rows(1)))
    await asyncio.sleep(0.1)  # well within the delay: the first is still waiting for a batch to fill
    second = await batcher.submit(rows(2))
    assert (await first).outputs.tolist() == [1] and second.outputs.tolist() == [4]
    assert model.batches == [[1, 2]]
    await batcher.close()


async def test_inputs_queued_behind_a_busy_model_wait_for_company_up_to_the_delay_after_it_frees() -> None:
    model = Squares(delay_s=0.2)
    batcher = make_batcher(model, max_batch_size=4, max_delay_s=0.15)
    busy = asyncio.ensure_future(batcher.submit(rows(1, 2, 3, 4)))  # a full batch: the model is busy until ~0.2 s
    await asyncio.sleep(0.02)
    queued = asyncio.ensure_future(batcher.submit(rows(5)))  # its own delay has passed when the model frees
    await asyncio.sleep(0.23)  # the model came free at ~0.2 s: [5] waits for company until ~0.35 s
    late = await batcher.submit(rows(6))
    assert [(await queued).outputs.tolist(), late.outputs.tolist()] == [[25], [36]]
    await busy
    assert model.batches == [[1, 2, 3, 4], [5, 6]]  # not [5] alone, then [6]: a steady load keeps whole batches
    await batcher.close()


async def test_a_full_batch_goes_at_once_without_waiting_for_the_delay() -> None:
    model = Squares()
    batcher = make_batcher(model, max_batch_size=2, max_delay_s=2.0)
    started = time.monotonic()
    await asyncio.gather(batcher.submit(rows(1)), batcher.submit(rows(2)))
    assert time.monotonic() - started < 1.0
    assert model.batches == [[1, 2]]
    await batcher.close()


async def test_a_batch_never_holds_more_rows_than_the_limit() -> None:
    model = Squares(delay_s=0.2)
    batcher = make_batcher(model, max_batch_size=4, max_delay_s=0.0)
    busy = asyncio.ensure_future(batcher.submit(rows(0)))
    await asyncio.sleep(0.05)
    await asyncio.gather(*(batcher.submit(rows(x, x)) for x in (1, 2, 3)))
    await busy
    assert model.batches == [[0], [1, 1, 2, 2], [3, 3]]
    await batcher.close()


async def test_a_caller_that_gave_up_mid_computation_frees_the_rest_of_its_queue_places() -> None:
    batcher = make_batcher(Squares(delay_s=0.4), max_batch_size=2, queue_limit=6, max_delay_s=0.0, timeout_s=0.1)
    with pytest.raises(DeadlineExceeded):
        await batcher.submit(rows(1, 2, 3, 4, 5, 6))  # its first piece is being computed when it gives up
    batcher.timeout_s = 5.0
    # Its two queued pieces (4 rows) were freed: a new caller may fill the whole queue.
    assert (await batcher.submit(rows(7, 8, 9, 10, 11, 12))).outputs.tolist() == [49, 64, 81, 100, 121, 144]
    await batcher.close()


async def test_close_returns_only_once_everything_queued_and_in_flight_is_answered() -> None:
    batcher = make_batcher(Squares(delay_s=0.1), max_batch_size=1, max_delay_s=0.0)
    queued = [asyncio.ensure_future(batcher.submit(rows(x))) for x in range(3)]
    await asyncio.sleep(0.02)  # the first is in flight
    await batcher.close()
    await asyncio.sleep(0.02)  # long enough for the callers to wake up, far shorter than a 0.1 s model call
    assert all(q.done() for q in queued)
    assert not batcher._in_flight  # finished batches are not kept


async def test_the_queue_wait_and_inference_metrics_measure_durations() -> None:
    metrics = Metrics()
    batcher = make_batcher(Squares(delay_s=0.2), max_batch_size=1, max_delay_s=0.0,
                           metrics=metrics.for_batcher("squares", 1))
    started = time.monotonic()
    await asyncio.gather(batcher.submit(rows(1)), batcher.submit(rows(2)))
    elapsed = time.monotonic() - started
    await batcher.close()
    sample = lambda name: metrics.registry.get_sample_value(name, {"model": "squares", "version": "1"})  # noqa: E731
    assert 0.2 <= sample("service_batch_queue_wait_seconds_sum") <= elapsed  # the second waited for the first
    assert 0.4 <= sample("service_model_inference_seconds_sum") <= elapsed


async def test_the_next_batch_goes_to_the_model_before_the_last_batchs_callers_are_answered() -> None:
    # Answering callers (their JSON, their HTTP writes) is event-loop work; the model thread should
    # not sit idle through it when the next batch is already waiting.
    events: list[str] = []

    class RecordingExecutor(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            events.append(f"model call {len(events)}")
            return super().submit(fn, *args, **kwargs)

    batcher = make_batcher(Squares(delay_s=0.2), RecordingExecutor(1), max_batch_size=2, max_delay_s=0.0)

    async def caller(value: int) -> None:
        await batcher.submit(rows(value))
        events.append(f"answered {value}")

    first = asyncio.ensure_future(caller(1))
    await asyncio.sleep(0.05)  # the first batch is computing; the next two rows queue behind it
    rest = [asyncio.ensure_future(caller(value)) for value in (2, 3)]
    await asyncio.gather(first, *rest)
    assert events[:3] == ["model call 0", "model call 1", "answered 1"], events
    await batcher.close()


async def test_refusing_the_queue_answers_waiting_callers_while_the_running_batch_finishes() -> None:
    model = Squares(delay_s=0.3)
    batcher = make_batcher(model, max_batch_size=1, max_delay_s=0.0)
    running = asyncio.ensure_future(batcher.submit(rows(2)))
    await asyncio.sleep(0.1)  # [2] is in the model; the next two wait for their turn
    waiting = [asyncio.ensure_future(batcher.submit(rows(x))) for x in (3, 4)]
    await asyncio.sleep(0.05)
    batcher.refuse_queued(ShuttingDown("stopping"))
    assert (await running).outputs.tolist() == [4]
    for caller in waiting:
        with pytest.raises(ShuttingDown, match="stopping"):
            await caller
    assert model.batches == [[2]]
    assert (await batcher.submit(rows(5))).outputs.tolist() == [25]  # the queue's places are free again
    await batcher.close()


async def test_a_watcher_gets_each_batchs_outputs_and_the_input_summaries_of_its_callers_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[tuple[list[int], list[str]]] = []
    batcher = make_batcher(Squares(), max_batch_size=2, max_delay_s=0.2)
    batcher.watch(lambda outputs, inputs: seen.append((outputs.tolist(), inputs)))
    # Three rows travel as two pieces; the request's summary rides on its first piece only.
    first, second = await asyncio.gather(batcher.submit(rows(1, 2, 3), inputs="three rows"),
                                         batcher.submit(rows(4), inputs="one row"))
    assert first.outputs.tolist() == [1, 4, 9] and second.outputs.tolist() == [16]
    assert seen == [([1, 4], ["three rows"]), ([9, 16], ["one row"])]

    def broken(outputs: np.ndarray, inputs: list[str]) -> None:
        raise ValueError("monitoring is broken")

    batcher.watch(broken)
    with caplog.at_level("ERROR", logger="service.batcher"):
        assert (await batcher.submit(rows(5))).outputs.tolist() == [25]  # monitoring never costs an answer
    assert "monitoring could not record a batch of 1" in caplog.text
    await batcher.close()


async def test_traced_callers_get_queue_wait_spans_and_one_batch_span_over_the_model_call() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = OpenTelemetryTracing(provider)
    batcher = make_batcher(Squares(fail_on=7), max_batch_size=4, max_delay_s=0.2,
                           tracing=tracing.for_batcher("squares", 1))
    tracer = provider.get_tracer("test")

    async def traced(name: str, values: np.ndarray) -> np.ndarray:
        with tracer.start_as_current_span(name):
            return (await batcher.submit(values)).outputs

    untraced = batcher.submit(rows(4))
    answers = await asyncio.gather(traced("a", rows(1, 2)), traced("b", rows(3)), untraced)
    assert [answers[0].tolist(), answers[1].tolist(), answers[2].outputs.tolist()] == [[1, 4], [9], [16]]
    spans = exporter.get_finished_spans()
    requests = {span.name: span for span in spans if span.name in ("a", "b")}
    (batch,) = [span for span in spans if span.name == "batch"]
    (call,) = [span for span in spans if span.name == "model call"]
    waits = [span for span in spans if span.name == "queue wait"]
    assert dict(batch.attributes or {}) == {"model.name": "squares", "model.version": 1, "batch.size": 4,
                                            "batch.requests": 3}
    assert {link.context.span_id for link in batch.links} == {s.context.span_id for s in requests.values()}
    assert call.parent is not None and call.parent.span_id == batch.context.span_id
    assert batch.start_time is not None and call.start_time is not None and batch.start_time <= call.start_time
    # One wait per traced caller, in its own trace, ending as the batch starts; the untraced caller has none.
    assert sorted((w.parent.span_id, (w.attributes or {})["rows"]) for w in waits if w.parent) == sorted(
        [(requests["a"].context.span_id, 2), (requests["b"].context.span_id, 1)])
    assert {w.end_time for w in waits} == {batch.start_time}

    exporter.clear()
    with pytest.raises(InferenceFailed):
        await traced("c", rows(7))
    spans = exporter.get_finished_spans()
    for name in ("batch", "model call"):
        (failed,) = [span for span in spans if span.name == name]
        assert failed.status.status_code is StatusCode.ERROR and "cannot square that" in str(failed.status.description)
        assert [event.name for event in failed.events] == ["exception"]
    await batcher.close()


async def test_without_a_traced_caller_a_batch_makes_no_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    batcher = make_batcher(Squares(), tracing=OpenTelemetryTracing(provider).for_batcher("squares", 1), max_delay_s=0.0)
    assert (await batcher.submit(rows(3))).outputs.tolist() == [9]
    assert exporter.get_finished_spans() == ()
    await batcher.close()


# -- low priority: the rows an explanation asks about ---------------------------------------------


class Gated(Squares):
    """Squares that holds its first batch until `release` is set, so that a test can queue behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def __call__(self, items: np.ndarray) -> np.ndarray:
        if not self.batches:
            self.release.wait(5)
        return super().__call__(items)


async def test_a_plain_request_goes_into_the_next_batch_ahead_of_queued_low_priority_rows() -> None:
    model = Gated()
    batcher = make_batcher(model, max_batch_size=4, max_delay_s=0.0)
    busy = asyncio.ensure_future(batcher.submit(rows(0)))
    await asyncio.sleep(0.05)  # the model holds [0]
    explained = asyncio.ensure_future(batcher.submit(rows(10, 11, 12, 13, 14, 15), low_priority=True))
    await asyncio.sleep(0)
    plain = asyncio.ensure_future(batcher.submit(rows(1)))  # arrives after the low-priority rows
    await asyncio.sleep(0)
    model.release.set()
    assert (await plain).outputs.tolist() == [1]
    assert (await explained).outputs.tolist() == [100, 121, 144, 169, 196, 225]
    await busy
    # The plain row first, then low-priority pieces (a quarter batch each) fill the batch: they share it.
    assert model.batches == [[0], [1, 10, 11, 12], [13, 14, 15]]
    await batcher.close()


async def test_monitoring_sees_only_the_normal_rows_of_a_batch_shared_with_low_priority_ones() -> None:
    model = Gated()
    batcher = make_batcher(model, max_batch_size=8, max_delay_s=0.0)
    seen: list[tuple[list[int], list[object]]] = []
    batcher.watch(lambda outputs, inputs: seen.append((outputs.tolist(), inputs)))
    busy = asyncio.ensure_future(batcher.submit(rows(0)))
    await asyncio.sleep(0.05)
    low = asyncio.ensure_future(batcher.submit(rows(5, 6), low_priority=True))
    plain = asyncio.ensure_future(batcher.submit(rows(2, 3), inputs="request"))
    await asyncio.sleep(0)
    model.release.set()
    await asyncio.gather(busy, low, plain)
    assert model.batches[1] == [2, 3, 5, 6]
    assert seen[1] == ([4, 9], ["request"])
    await batcher.close()


async def test_a_low_priority_caller_that_gave_up_frees_its_queue_places() -> None:
    model = Gated()
    batcher = make_batcher(model, max_batch_size=4, queue_limit=4, max_delay_s=0.0, timeout_s=0.1)
    busy = asyncio.ensure_future(batcher.submit(rows(0), timeout_s=5))
    await asyncio.sleep(0.05)
    with pytest.raises(DeadlineExceeded):
        await batcher.submit(rows(1, 2, 3, 4), low_priority=True)
    assert not batcher._low and batcher.busy  # its places are free; [0] is still being computed
    model.release.set()
    assert (await batcher.submit(rows(5, 6, 7, 8), timeout_s=5)).outputs.tolist() == [25, 36, 49, 64]
    await busy
    await batcher.close()


async def test_queued_low_priority_rows_never_take_a_plain_requests_place_in_the_queue() -> None:
    model = Gated()
    batcher = make_batcher(model, max_batch_size=4, queue_limit=4, max_delay_s=0.0)
    busy = asyncio.ensure_future(batcher.submit(rows(0)))
    await asyncio.sleep(0.05)  # the model holds [0]
    explained = asyncio.ensure_future(batcher.submit(rows(1, 2, 3, 4), low_priority=True))  # the limit, of its kind
    await asyncio.sleep(0)
    with pytest.raises(Overloaded, match=r"^4 explanation inputs already queued \(limit 4\)$"):
        await batcher.submit(rows(5), low_priority=True)
    plain = asyncio.ensure_future(batcher.submit(rows(6, 7, 8, 9)))  # still has all its places
    await asyncio.sleep(0)
    model.release.set()
    assert (await plain).outputs.tolist() == [36, 49, 64, 81]
    assert (await explained).outputs.tolist() == [1, 4, 9, 16]
    await busy
    await batcher.close()
