"""Rollouts through the real app on real tiny models: routing, shadow figures, gates, rollback, promotion.

The gate checks run on the registry's tick; these tests turn the timer off and call
`registry.refresh()` themselves, so each step happens exactly when the test says.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from service.app import create_app
from service.rollout.policy import Policy, PolicyStore
from tests.service.conftest import serving
from tests.service.rollout.conftest import LENIENT, MODEL, settings_for, until, write_policy
from tests.tiny_models import build_text_model


async def _version(http: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str] | None = None) -> int:
    response = await http.post("/sentiment", json=body, headers=headers or {})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == int(response.headers["x-model-version"])
    return response.json()["version"]


async def _rollout(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get(f"/models/{MODEL}/rollout")
    assert response.status_code == 200
    return response.json()


async def test_without_a_policy_the_newest_version_serves_and_the_rollout_says_so(artifacts: Path) -> None:
    async with serving(create_app(settings_for(artifacts))) as http:
        assert await _version(http, {"text": "fine"}) == 4
        rollout = await _rollout(http)
        assert (rollout["state"], rollout["policy"], rollout["serving"]) == ("no policy", None, 4)


async def test_the_policys_stable_version_serves_and_a_newly_published_version_takes_no_unpinned_traffic(
    artifacts: Path, tmp_path: Path
) -> None:
    write_policy(artifacts, stable=1)
    app = create_app(settings_for(artifacts))
    async with serving(app) as http:
        assert await _version(http, {"text": "good"}) == 1
        # Version 1 is loaded although it is not among the newest two, because the policy names it.
        assert sorted(app.state.registry.model(MODEL).loaded) == [1, 3, 4]
        build_text_model(tmp_path / "staging" / MODEL / "5")
        shutil.move(tmp_path / "staging" / MODEL / "5", artifacts / MODEL / "5")
        for _ in range(3):  # a version is loaded once it has settled over a few looks
            await app.state.registry.refresh()
        assert 5 in app.state.registry.model(MODEL).loaded
        assert await _version(http, {"text": "good", "version": 5}) == 5
        assert {await _version(http, {"text": "good"}) for _ in range(10)} == {1}
        assert (await http.get(f"/models/{MODEL}")).json()["serving_version"] == 1


async def test_a_pinned_request_gets_its_version_whatever_the_policy_says(artifacts: Path) -> None:
    write_policy(artifacts, stable=1, candidate=2, mode="canary", weight=1.0)
    async with serving(create_app(settings_for(artifacts))) as http:
        assert await _version(http, {"text": "good"}) == 2  # every unpinned request goes to the canary
        for pinned in (1, 3, 4):
            assert await _version(http, {"text": "fine", "version": pinned}) == pinned
        v2 = await http.post(f"/v2/models/{MODEL}/versions/1/infer",
                             json={"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["good"]}]})
        assert v2.status_code == 200 and v2.headers["x-model-version"] == "1"


async def test_the_canary_share_is_within_binomial_bounds_and_each_caller_stays_on_its_side(artifacts: Path) -> None:
    weight, callers = 0.3, 400
    write_policy(artifacts, stable=1, candidate=2, mode="canary", weight=weight)
    async with serving(create_app(settings_for(artifacts))) as http:
        sides = {key: await _version(http, {"text": "good"}, {"X-Routing-Key": key})
                 for key in (f"caller-{i}" for i in range(callers))}
        on_candidate = sum(1 for version in sides.values() if version == 2)
        spread = 4.5 * math.sqrt(callers * weight * (1 - weight))  # a false alarm once in ~150,000 runs
        assert abs(on_candidate - callers * weight) < spread, on_candidate
        for key in list(sides)[:40]:  # the same key, the same version, every time
            assert await _version(http, {"text": "good"}, {"X-Routing-Key": key}) == sides[key]
        # Without a routing key, the API key is the caller (keys off: it is only read for the split).
        by_key = {await _version(http, {"text": "good"}, {"X-API-Key": "the-same-caller-key"}) for _ in range(20)}
        assert len(by_key) == 1
        # The split also covers the Open Inference Protocol's unversioned route.
        body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["good"]}]}
        key = next(k for k, v in sides.items() if v == 2)
        v2 = await http.post(f"/v2/models/{MODEL}/infer", json=body, headers={"X-Routing-Key": key})
        assert v2.headers["x-model-version"] == "2"


async def _shadowed(http: httpx.AsyncClient, texts: list[str], copies: int) -> dict[str, Any]:
    for text in texts:
        assert await _version(http, {"text": text}) == 1  # stable answers every request
    async def all_copies_done() -> bool:
        shadow = (await _rollout(http))["shadow"]
        return shadow["copies"] + shadow["dropped"] >= copies
    await until(all_copies_done, "the shadow copies")
    return await _rollout(http)


async def test_shadow_agreement_is_counted_exactly_on_the_labels_clients_receive(artifacts: Path) -> None:
    texts = [f"{'good ' * (i % 3)}{'bad ' * (i % 2)}review {i}" for i in range(30)]
    write_policy(artifacts, stable=1, candidate=2, mode="shadow", weight=1.0)
    app = create_app(settings_for(artifacts))
    async with serving(app) as http:
        rollout = await _shadowed(http, texts, 30)
        shadow = rollout["shadow"]
        assert (shadow["copies"], shadow["dropped"], shadow["compared_inputs"], shadow["agreement"]) == (30, 0, 30, 1.0)
        assert shadow["mean_top1_difference"] > 0  # version 2's probabilities are steeper
        assert rollout["versions"]["1"]["requests"] == 30 and rollout["versions"]["2"]["requests"] == 30

    # The hostile version: identical output indices, every label name swapped.
    write_policy(artifacts, stable=1, candidate=3, mode="shadow", weight=1.0)
    async with serving(create_app(settings_for(artifacts))) as http:
        shadow = (await _shadowed(http, texts, 30))["shadow"]
        assert (shadow["copies"], shadow["compared_inputs"], shadow["agreement"]) == (30, 30, 0.0)


async def test_a_shadow_copy_that_fails_costs_the_client_nothing_and_counts_against_the_candidate(
    artifacts: Path,
) -> None:
    write_policy(artifacts, stable=1, candidate=4, mode="shadow", weight=1.0, gates=LENIENT | {"min_requests": 10})
    app = create_app(settings_for(artifacts))
    async with serving(app) as http:
        rollout = await _shadowed(http, ["good"] * 10, 10)  # version 4 fails on "good"; stable answers
        assert rollout["versions"]["4"]["errors"] == 10 and rollout["versions"]["1"]["errors"] == 0
        metrics = (await http.get("/metrics")).text
        assert f'service_rollout_shadow_copies_total{{model="{MODEL}",outcome="failed",version="4"}} 10.0' in metrics
        await app.state.registry.refresh()
        rollout = await _rollout(http)
        assert rollout["state"] == "rolled back"
        assert rollout["policy"]["rollback"]["gate"] == "error_rate"


async def test_a_hostile_candidate_fails_the_agreement_gate_and_never_reaches_canary(artifacts: Path) -> None:
    write_policy(artifacts, stable=1, candidate=3, mode="shadow", weight=1.0, gates=LENIENT,
                 promotion={"advance_after": 10, "canary_weight": 0.5})
    app = create_app(settings_for(artifacts))
    async with serving(app) as http:
        await _shadowed(http, [f"good review {i}" for i in range(15)], 15)
        await app.state.registry.refresh()
        rollout = await _rollout(http)
        gates = {gate["gate"]: gate["status"] for gate in rollout["gates"]}
        assert gates["agreement"] == "fail" and gates["drift_vs_reference"] == "off"
        on_disk = PolicyStore(artifacts).read(MODEL)
        assert on_disk is not None and on_disk.mode == "off" and on_disk.rollback is not None
        assert (on_disk.rollback.candidate, on_disk.rollback.gate) == (3, "agreement")
        for _ in range(3):  # more ticks with more traffic: it never moves on
            assert await _version(http, {"text": "good"}) == 1
            await app.state.registry.refresh()
        assert PolicyStore(artifacts).read(MODEL).mode == "off"  # type: ignore[union-attr]
        metrics = (await http.get("/metrics")).text
        assert f'service_rollout_rolled_back{{model="{MODEL}"}} 1.0' in metrics
        assert f'service_rollout_rollbacks_total{{gate="agreement",model="{MODEL}",version="3"}} 1.0' in metrics


async def test_an_agreeing_candidate_advances_from_shadow_to_canary_and_is_promoted_with_every_gate_passing(
    artifacts: Path,
) -> None:
    write_policy(artifacts, stable=1, candidate=2, mode="shadow", weight=1.0, gates=LENIENT,
                 promotion={"advance_after": 10, "canary_weight": 1.0, "promote_after": 10})
    app = create_app(settings_for(artifacts))
    async with serving(app) as http:
        await _shadowed(http, [f"good review {i}" for i in range(12)], 12)
        await app.state.registry.refresh()
        assert PolicyStore(artifacts).read(MODEL).mode == "canary"  # type: ignore[union-attr]
        for i in range(12):  # the canary takes every unpinned request
            assert await _version(http, {"text": f"good {i}"}) == 2
        await app.state.registry.refresh()
        policy = PolicyStore(artifacts).read(MODEL)
        assert policy is not None and (policy.stable, policy.candidate, policy.mode) == (2, None, "off")
        assert await _version(http, {"text": "good"}) == 2
        metrics = (await http.get("/metrics")).text
        assert f'service_rollout_promotions_total{{model="{MODEL}",version="2"}} 1.0' in metrics


async def test_an_unreadable_or_invalid_policy_is_logged_and_the_last_good_one_kept(
    artifacts: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_policy(artifacts, stable=1)
    app = create_app(settings_for(artifacts))
    path = PolicyStore(artifacts).path(MODEL)
    async with serving(app) as http:
        for broken in ("{not json", json.dumps({"model": MODEL, "stable": 2, "candidate": 2, "mode": "canary"}),
                       json.dumps({"model": MODEL, "stable": 1, "weight": 7})):
            path.write_text(broken)
            with caplog.at_level(logging.ERROR, logger="service.rollout"):
                await app.state.registry.refresh()
            assert "keeping revision 1" in caplog.text
            caplog.clear()
            assert await _version(http, {"text": "good"}) == 1
            assert (await _rollout(http))["policy_error"].startswith(str(path))
        path.unlink()
        write_policy(artifacts, stable=3)
        await app.state.registry.refresh()
        assert await _version(http, {"text": "good"}) == 3
        assert (await _rollout(http))["policy_error"] is None


async def test_removing_the_policy_brings_back_the_newest_version(artifacts: Path) -> None:
    policy = write_policy(artifacts, stable=1)
    app = create_app(settings_for(artifacts))
    async with serving(app) as http:
        assert await _version(http, {"text": "good"}) == 1
        PolicyStore(artifacts).remove(MODEL, policy.revision)
        await app.state.registry.refresh()
        assert await _version(http, {"text": "fine"}) == 4
        assert (await _rollout(http))["state"] == "no policy"


async def _under_load(artifacts: Path, changed: Callable[[dict[str, Any]], bool],
                      what: str) -> tuple[list[int], list[int], int, dict[str, Any]]:
    """Eight clients send unpinned requests (a routing key each) until the rollout has `changed`, and a while
    after. The statuses, the versions that answered in order, how many had answered at the change, and
    the rollout at the end."""
    app = create_app(settings_for(artifacts, reload_interval_s=0.05))
    statuses: list[int] = []
    versions: list[int] = []
    stop = asyncio.Event()

    async def client(http: httpx.AsyncClient, index: int) -> None:
        i = 0
        while not stop.is_set():
            response = await http.post("/sentiment", json={"text": f"good review {i}"},
                                       headers={"X-Routing-Key": f"client-{index}-{i}"})
            statuses.append(response.status_code)
            if response.status_code == 200:
                versions.append(response.json()["version"])
            i += 1

    async with serving(app) as http:
        load = asyncio.gather(*(client(http, i) for i in range(8)))

        async def has_changed() -> bool:
            return changed(await _rollout(http))
        await until(has_changed, what)
        at_change = len(versions)
        await asyncio.sleep(0.3)  # more traffic after the change
        stop.set()
        await load
        return statuses, versions, at_change, await _rollout(http)


async def test_an_automatic_rollback_under_load_fails_no_request(artifacts: Path) -> None:
    """The hostile candidate in canary: its labels drift from stable's, and it is rolled back mid-load."""
    write_policy(artifacts, stable=1, candidate=3, mode="canary", weight=0.5, gates=LENIENT | {"min_requests": 20})
    statuses, versions, at_change, _ = await _under_load(artifacts, lambda r: r["state"] == "rolled back",
                                                         "the rollback")
    assert statuses and set(statuses) == {200}
    assert 3 in versions[:at_change]
    assert set(versions[at_change + 16 :]) == {1}  # after the requests already in flight, stable only
    policy = PolicyStore(artifacts).read(MODEL)
    assert policy is not None and policy.rollback is not None and policy.rollback.gate == "drift_vs_stable"


async def test_a_promotion_under_load_fails_no_request(artifacts: Path) -> None:
    write_policy(artifacts, stable=1, candidate=2, mode="canary", weight=0.5, gates=LENIENT | {"min_requests": 20},
                 promotion={"promote_after": 20})
    statuses, versions, at_change, rollout = await _under_load(artifacts, lambda r: r["policy"]["stable"] == 2,
                                                               "the promotion")
    assert statuses and set(statuses) == {200}
    assert set(versions[at_change + 16 :]) == {2}
    assert (rollout["state"], rollout["policy"]["candidate"], rollout["serving"]) == ("stable only", None, 2)


async def _judged_after_a_newer_write(artifacts: Path, **change: Any) -> Any:
    """The hostile candidate in canary with answers on both sides; then someone writes `change` into the
    file after this process last read it, and the process judges the gates (its rollback is then stale)."""
    write_policy(artifacts, stable=1, candidate=3, mode="canary", weight=0.5, gates=LENIENT)
    app = create_app(settings_for(artifacts))
    store = PolicyStore(artifacts)
    async with serving(app) as http:
        sides = {await _version(http, {"text": f"good {i}"}, {"X-Routing-Key": f"key-{i}"}) for i in range(60)}
        assert sides == {1, 3}
        current = store.read(MODEL)
        assert current is not None
        store.write(current.model_copy(update=change), current.revision)
        registry = app.state.registry
        registry.rollouts.check({model.name: model for model in registry.models()})
    return store.read(MODEL)


async def test_a_rollback_refused_as_stale_is_written_on_top_of_the_newer_policy_when_it_keeps_the_candidate(
    artifacts: Path,
) -> None:
    policy = await _judged_after_a_newer_write(artifacts, weight=0.9)  # a person raised the share
    assert policy is not None and (policy.revision, policy.weight, policy.mode) == (3, 0.9, "off")
    assert policy.rollback is not None and (policy.rollback.candidate, policy.rollback.gate) == (3, "drift_vs_stable")


async def test_a_stale_rollback_leaves_a_newer_policy_alone_when_it_names_another_candidate(artifacts: Path) -> None:
    policy = await _judged_after_a_newer_write(artifacts, candidate=2)  # a person moved on to version 2
    assert policy is not None and (policy.revision, policy.candidate, policy.mode, policy.rollback) == \
        (2, 2, "canary", None)


async def test_a_candidate_taking_images_of_another_size_is_not_shadowed_and_the_log_says_why_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.service.images import solid
    from tests.tiny_models import build_image_model

    root = tmp_path / "artifacts"
    build_image_model(root / "tiny-image" / "1", size=8)
    build_image_model(root / "tiny-image" / "2", size=12)
    store = PolicyStore(root)
    store.write(Policy(model="tiny-image", stable=1, candidate=2, mode="shadow", weight=1.0), None)
    app = create_app(settings_for(root))
    async with serving(app) as http:
        with caplog.at_level(logging.WARNING, logger="service.rollout"):
            for _ in range(3):
                response = await http.post("/classify-image", content=solid("red"),
                                           headers={"Content-Type": "image/png"})
                assert response.status_code == 200 and response.json()["version"] == 1
        rollout = (await http.get("/models/tiny-image/rollout")).json()
    assert rollout["shadow"]["copies"] == 0 and rollout["shadow"]["dropped"] == 0
    warnings = [r.getMessage() for r in caplog.records if "cannot be shadowed" in r.getMessage()]
    assert warnings == ["tiny-image: candidate 2 takes rows of shape [12, 12, 3], stable 1 of [8, 8, 3]: it cannot "
                        "be shadowed (try it in canary mode)"]
