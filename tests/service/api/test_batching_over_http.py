"""Dynamic batching seen from clients: shared model calls, overload, failures and timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from service.app import create_app
from service.settings import Settings
from tests.service.conftest import serving
from tests.service.images import COLOURS, solid
from tests.tiny_models import IMAGE_LABELS, expected_image_probabilities, expected_positive


def batch_count(metrics_text: str, model: str) -> float:
    prefix = f'service_batch_size_count{{model="{model}",'
    return sum(float(line.split()[-1]) for line in metrics_text.splitlines() if line.startswith(prefix))


async def test_many_concurrent_requests_are_served_by_fewer_model_calls(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(max_batch_size=16, max_batch_delay_ms=50))
    async with serving(app) as http:
        before = batch_count((await http.get("/metrics")).text, "tiny-text")
        texts = [" ".join(["good"] * (i % 5) + ["bad"] * (i % 3)) for i in range(48)]
        responses = await asyncio.gather(*(http.post("/sentiment", json={"text": t}) for t in texts))
        colours = ["red", "green", "blue"] * 8
        image_responses = await asyncio.gather(*(
            http.post("/classify-image", content=solid(c), headers={"Content-Type": "image/png"}) for c in colours
        ))
        metrics = (await http.get("/metrics")).text
    for text, response in zip(texts, responses, strict=True):
        positive = response.json()["results"][0]["probabilities"]["positive"]
        assert positive == pytest.approx(expected_positive(text, 2), abs=1e-5), text
    for colour, response in zip(colours, image_responses, strict=True):
        got = {e["label"]: e["probability"] for e in response.json()["results"][0]["top_k"]}
        want = expected_image_probabilities(COLOURS[colour], 1)
        assert [got[label] for label in IMAGE_LABELS] == pytest.approx(want, abs=1e-5), colour
    sizes = {int(r.headers["x-batch-size"]) for r in responses}
    assert max(sizes) > 1 and all(size <= 16 for size in sizes)  # batched, never past the limit
    calls = batch_count(metrics, "tiny-text") - before
    assert 3 <= calls < 48 / 2, calls  # 48 requests, at most 16 per call
    assert batch_count(metrics, "tiny-image") < len(colours)


async def test_a_full_queue_answers_503_at_once_with_retry_after(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(max_batch_size=8, queue_limit=8, max_batch_delay_ms=1000, max_texts=8, max_files=8))
    async with serving(app) as http:
        waiting = asyncio.ensure_future(http.post("/sentiment", json={"texts": ["good"] * 5}))
        await asyncio.sleep(0.2)  # five texts wait for the batch to fill
        refused = await http.post("/sentiment", json={"texts": ["bad"] * 5})
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "overloaded"
        assert waiting.done() is False  # refused while the first request still waited
        assert (await waiting).status_code == 200


async def test_a_failing_model_call_fails_each_request_in_its_batch_and_serving_goes_on(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(max_batch_size=4, max_batch_delay_ms=500))
    async with serving(app) as http:
        texts = ["good", "boom", "bad", "good good"]
        responses = await asyncio.gather(*(http.post("/sentiment", json={"text": t}) for t in texts))
        assert [r.status_code for r in responses] == [500] * 4
        for response in responses:
            error = response.json()["error"]
            assert error["code"] == "inference_failed" and "batch of 4" in error["message"]
        after = await http.post("/sentiment", json={"text": "good"})
        assert after.status_code == 200 and after.json()["results"][0]["label"] == "positive"


@pytest.mark.slow  # it waits out a real request timeout (about 7 s)
async def test_a_request_that_waits_past_its_timeout_gets_504(make_settings: Callable[..., Settings]) -> None:
    # The timeout also bounds the warm-up at start: long enough for a busy machine's warm-up, and well
    # short of three "slow" spins.
    app = create_app(make_settings(request_timeout_s=1.5, max_batch_delay_ms=0))
    async with serving(app) as http:
        response = await http.post("/sentiment", json={"texts": ["slow"] * 3})
        assert response.status_code == 504 and response.json()["error"]["code"] == "timeout"
        # Once the slow call is over, requests are answered again.
        for _ in range(600):  # up to 60 s: the machine may be busy
            if (await http.post("/sentiment", json={"text": "good"})).status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the service did not recover after the slow model call")


async def test_with_batching_off_every_input_is_a_model_call_of_its_own(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(max_batch_size=1, queue_limit=64, max_batch_delay_ms=50))
    async with serving(app) as http:
        before = batch_count((await http.get("/metrics")).text, "tiny-text")
        texts = [" ".join(["good"] * (i % 4) + ["bad"] * (i % 3)) for i in range(12)]
        singles = await asyncio.gather(*(http.post("/sentiment", json={"text": t}) for t in texts))
        several = await http.post("/sentiment", json={"texts": texts[:5]})
        metrics = (await http.get("/metrics")).text
    for text, response in zip(texts, singles, strict=True):
        assert response.headers["x-batch-size"] == "1"
        assert response.json()["results"][0]["probabilities"]["positive"] == pytest.approx(
            expected_positive(text, 2), abs=1e-5)
    # One request's five texts go through as five calls of one, and come back in order.
    assert several.headers["x-batch-size"] == "1"
    positives = [r["probabilities"]["positive"] for r in several.json()["results"]]
    assert positives == pytest.approx([expected_positive(t, 2) for t in texts[:5]], abs=1e-5)
    assert batch_count(metrics, "tiny-text") - before == len(texts) + 5
