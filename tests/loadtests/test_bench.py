"""The benchmark's own readings: what the model did during a run, from the service's /metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx2 as httpx
import pytest

from loadtests.bench import ModelActivity, Row, _median, _variant
from loadtests.server import running_service


@pytest.mark.live
def test_model_activity_counts_one_models_calls_inputs_and_time_between_two_readings(
    artifacts_dir: Path, tmp_path: Path
) -> None:
    with running_service(artifacts_dir, tmp_path / "service.log", default_sentiment_model="tiny-text") as service:
        before = ModelActivity.read(service.base_url, "tiny-text")
        with httpx.Client(base_url=service.base_url, timeout=10) as http:
            for texts in (["good"], ["bad", "good good", "bad bad"]):
                assert http.post("/sentiment", json={"texts": texts}).status_code == 200
            assert http.post("/classify-image", content=b"not an image",
                             headers={"Content-Type": "image/png"}).status_code == 400
        after = ModelActivity.read(service.base_url, "tiny-text")
        image_model = ModelActivity.read(service.base_url, "tiny-image")

    assert after.calls - before.calls == 2  # one request at a time: one call each
    assert after.inputs - before.inputs == 4
    assert after.seconds > before.seconds
    assert image_model.calls == 1  # its warm-up; the refused upload never reached it
    row = Row("sentiment", "on", 100.0, 1.0, 2.0, 3.0, 0, load_s=2.0)
    after.note_on(row, before)
    assert row.mean_batch == 2.0
    assert row.model_busy == pytest.approx((after.seconds - before.seconds) / 2.0)


def test_a_row_with_no_model_call_in_its_run_says_nothing_of_the_model() -> None:
    row = Row("sentiment", "on", 0.0, None, None, None, 32, load_s=20.0)
    ModelActivity(calls=5, inputs=40, seconds=1.0).note_on(row, ModelActivity(calls=5, inputs=40, seconds=1.0))
    assert row.mean_batch is None and row.model_busy is None


def test_variants_are_a_label_and_environment_variables() -> None:
    assert _variant("intra2:TF_NUM_INTRAOP_THREADS=2,SERVICE_MAX_DELAY_MS=2.5") == (
        "intra2", {"TF_NUM_INTRAOP_THREADS": "2", "SERVICE_MAX_DELAY_MS": "2.5"})
    for wrong in ("intra2", ":TF_NUM_INTRAOP_THREADS=2", "label:nothing"):
        with pytest.raises(argparse.ArgumentTypeError):
            _variant(wrong)


def test_each_round_is_judged_by_its_own_ceiling_and_the_median_round_is_reported() -> None:
    # The machine slowed down in round 2: its service rate is the lowest, its share the highest.
    rounds = [Row("s", "on", rate, None, None, None, 0, ceiling=ceiling)
              for rate, ceiling in ((300.0, 1000.0), (200.0, 400.0), (310.0, 800.0), (290.0, 900.0))]
    assert [round(row.share or 0, 3) for row in rounds] == [0.3, 0.5, 0.388, 0.322]
    assert _median(rounds) is rounds[3]  # shares 0.3 < 0.322 < 0.388 < 0.5: the lower middle one
    assert _median(rounds[:3]) is rounds[2]


def test_in_process_rows_have_no_share_and_their_median_is_by_rate() -> None:
    rates = [Row("s", "in-process m, batch 64", rate, None, None, None, 0) for rate in (900.0, 700.0, 800.0)]
    assert all(row.share is None for row in rates)
    assert _median(rates) is rates[2]
