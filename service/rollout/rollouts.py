"""Rollouts in one serving process: which version answers an unpinned request, and when a candidate moves.

`Rollouts` reads every model's policy (service.rollout.policy) on each reload tick of the
registry. A model without a policy file is served as before: its newest loaded version answers.
With one, `route` sends an unpinned request to stable, or to the candidate for the canary's
share (sticky: a routing key always lands on the same side), and in shadow mode samples copies
for the candidate (service.rollout.shadow). The figures of both versions (service.rollout.gates)
are judged on every tick: a failed gate takes the candidate out of traffic at once in this
process and, through the policy file, in every other one; passing gates can move shadow on to
canary and canary on to promotion, when the policy asks for that.

Figures are this process's own: with several worker processes, replicas or pods, each judges
the requests it served, and the first to see a gate fail writes the rollback for all.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from contract.monitoring import reference_of
from service.core.metrics import Metrics
from service.core.versions import ModelVersion, ModelVersions
from service.rollout.gates import GateResult, ShadowFigures, VersionFigures, judge
from service.rollout.policy import Policy, PolicyError, PolicyStore, Rollback, StaleWrite, now, writer_name
from service.rollout.shadow import ShadowCopy, ShadowQueue

log = logging.getLogger("service.rollout")


@dataclass(frozen=True, slots=True)
class Route:
    """Who answers one request and, in shadow mode, who also gets a copy of it.

    `rollout` is set while the request's model has a candidate in traffic: the answer then
    counts in the rollout's figures.
    """

    version: ModelVersion
    rollout: ModelRollout | None = None
    shadow: ModelVersion | None = None


class ModelRollout:
    """One model's policy as this process knows it, and the live figures of its rollout."""

    def __init__(self, name: str, policy: Policy, metrics: Metrics, shadows: ShadowQueue) -> None:
        self.name = name
        self.policy = policy
        self.read = policy  # the file as this process last read or wrote it
        self._told_shapes = False
        self._metrics = metrics
        self._shadows = shadows
        self._reset()
        self.publish_rollback()

    def _reset(self) -> None:
        window = self.policy.gates.window
        self.figures: dict[int, VersionFigures] = {v: VersionFigures(window) for v in self.policy.versions()}
        self.shadow_figures = ShadowFigures(window)
        self.gates: list[GateResult] = []
        self._mode_began_at = 0  # the candidate's request count when the current mode began

    def adopt(self, policy: Policy) -> None:
        """A newer policy from the file. The figures start again when stable or the candidate changed; a
        change of mode keeps them (shadow's figures are the first evidence on canary) and starts its count."""
        previous = self.policy
        self.policy = policy
        self.read = policy
        if (previous.stable, previous.candidate, previous.gates) != (policy.stable, policy.candidate, policy.gates):
            self._reset()
        elif previous.mode != policy.mode and policy.candidate is not None:
            self._mode_began_at = self.figures[policy.candidate].requests
        self.publish_rollback()

    def publish_rollback(self) -> None:
        """The gauge every process sets from the policy: 1 while it records a rolled-back candidate."""
        self._metrics.rolled_back.labels(self.name).set(1 if self.policy.rollback is not None else 0)

    @property
    def requests_in_mode(self) -> int:
        """The candidate's requests (answers or shadow copies) since its current mode began."""
        candidate = self.policy.candidate
        return self.figures[candidate].requests - self._mode_began_at if candidate is not None else 0

    # -- per request ----------------------------------------------------------------------------

    def route(self, model: ModelVersions, key: str | None) -> Route:
        policy = self.policy
        stable = model.loaded.get(policy.stable)
        if stable is None:  # it failed to load: the newest loaded version answers, as with no policy
            return Route(model.latest)
        candidate_number = policy.active_candidate
        candidate = model.loaded.get(candidate_number) if candidate_number is not None else None
        if candidate is None:
            return Route(stable)
        if policy.mode == "canary":
            chosen = candidate if _share(key, self.name, candidate.version) < policy.weight else stable
            return Route(chosen, self)
        shadow = candidate if random.random() < policy.weight and self._same_rows(stable, candidate) else None
        return Route(stable, self, shadow)

    def _same_rows(self, stable: ModelVersion, candidate: ModelVersion) -> bool:
        """A copy is stable's decoded rows: a candidate taking rows of another shape (another image size)
        cannot be shadowed. Said once in the log; its copies count as none, and its gates stay unknown."""
        if stable.handler.item_shape() == candidate.handler.item_shape():
            return True
        if not self._told_shapes:
            self._told_shapes = True
            log.warning("%s: candidate %d takes rows of shape %s, stable %d of %s: it cannot be shadowed "
                        "(try it in canary mode)", self.name, candidate.version, candidate.handler.item_shape(),
                        stable.version, stable.handler.item_shape())
        return False

    def answered(self, version: ModelVersion, seconds: float, outputs: np.ndarray) -> None:
        figures = self.figures.get(version.version)
        if figures is not None:
            figures.answered(seconds, _labels(version, outputs))

    def failed(self, version: ModelVersion, seconds: float) -> None:
        figures = self.figures.get(version.version)
        if figures is not None:
            figures.failed(seconds)

    def copy(self, stable: ModelVersion, candidate: ModelVersion, rows: Any, summary: Any,
             stable_outputs: np.ndarray) -> None:
        """Queue a shadow copy of a request stable has answered; counted as dropped when the queue is full."""

        def done(outputs: np.ndarray | None, seconds: float) -> None:
            if self.policy.active_candidate != candidate.version:
                return  # the rollout changed while the copy waited: it belongs to no figures now
            if outputs is None:
                self.failed(candidate, seconds)
                self.shadow_figures.copies += 1
                self._metrics.shadow_copies.labels(self.name, str(candidate.version), "failed").inc()
                return
            self.answered(candidate, seconds, outputs)
            self.shadow_figures.compared(_labels(stable, stable_outputs), _labels(candidate, outputs),
                                         stable_outputs.max(axis=1), outputs.max(axis=1))
            self._metrics.shadow_copies.labels(self.name, str(candidate.version), "compared").inc()

        if not self._shadows.offer(ShadowCopy(stable, candidate, rows, summary, stable_outputs, done)):
            self.shadow_figures.dropped += 1
            self._metrics.shadow_copies.labels(self.name, str(candidate.version), "dropped").inc()

    # -- per tick -------------------------------------------------------------------------------

    def judge(self, model: ModelVersions) -> list[GateResult]:
        policy = self.policy
        candidate = model.loaded.get(policy.active_candidate or 0)
        stable_figures = self.figures.get(policy.stable)
        if candidate is None or stable_figures is None or policy.mode == "off":
            self.gates = []
            return self.gates
        self.gates = judge(policy.mode, policy.gates, stable_figures, self.figures[candidate.version],
                           self.shadow_figures if policy.mode == "shadow" else None, _reference_shares(candidate))
        return self.gates

    def describe(self, model: ModelVersions | None, store: PolicyStore, error: str | None) -> dict[str, Any]:
        policy = self.policy
        if policy.rollback is not None:
            state = "rolled back"
        elif policy.active_candidate is not None:
            state = policy.mode
        else:
            state = "stable only"
        loaded = set(model.loaded) if model is not None else set()
        return {
            "model": self.name,
            "file": str(store.path(self.name)),
            "policy": policy.model_dump(mode="json"),
            "policy_error": error,
            "state": state,
            "serving": policy.stable if policy.stable in loaded else (max(loaded) if loaded else None),
            "gates": [gate.describe() for gate in self.gates],
            "versions": {str(v): {**figures.describe(), "loaded": v in loaded}
                         for v, figures in sorted(self.figures.items())},
            "shadow": self.shadow_figures.describe() if policy.mode == "shadow" else None,
            "process": os.getpid(),
        }


class Rollouts:
    """Every model's rollout in this process, read from the rollout folder."""

    def __init__(self, store: PolicyStore, metrics: Metrics, shadow_queue_limit: int) -> None:
        self.store = store
        self._metrics = metrics
        self._shadows = ShadowQueue(shadow_queue_limit)
        self._models: dict[str, ModelRollout] = {}
        self._errors: dict[str, str] = {}  # the policy file's last problem, per model (logged once)

    def start(self) -> None:
        self._shadows.start()

    async def close(self) -> None:
        await self._shadows.close()

    # -- reading the policies -------------------------------------------------------------------

    def reload(self, names: Iterable[str]) -> None:
        """Read each model's policy; a file that cannot be read or is invalid keeps the last good one."""
        for name in names:
            try:
                policy = self.store.read(name)
            except PolicyError as exc:
                if self._errors.get(name) != str(exc):
                    kept = self._models.get(name)
                    log.error("%s; keeping %s", exc,
                              f"revision {kept.read.revision}" if kept else "today's behaviour (no policy)")
                self._errors[name] = str(exc)
                continue
            if self._errors.pop(name, None) is not None:
                log.info("%s: the rollout policy is readable again", name)
            current = self._models.get(name)
            if policy is None:
                if current is not None:
                    log.info("%s: rollout policy removed; the newest version serves", name)
                    self._metrics.rolled_back.labels(name).set(0)
                    del self._models[name]
            elif current is None or policy != current.read:  # a file written anew may repeat a revision
                log.info("%s: rollout policy revision %d: stable %d, candidate %s, mode %s", name, policy.revision,
                         policy.stable, policy.candidate, policy.mode)
                if current is None:
                    self._models[name] = ModelRollout(name, policy, self._metrics, self._shadows)
                else:
                    current.adopt(policy)

    def policy(self, name: str) -> Policy | None:
        rollout = self._models.get(name)
        return rollout.policy if rollout is not None else None

    def pinned_versions(self, name: str) -> set[int]:
        """The versions the model's policy names: they stay loaded."""
        policy = self.policy(name)
        return policy.versions() if policy is not None else set()

    # -- routing --------------------------------------------------------------------------------

    def route(self, model: ModelVersions, key: str | None) -> Route:
        """Who answers an unpinned request for `model` from the caller `key` (None: no key, a random split)."""
        rollout = self._models.get(model.name)
        if rollout is None:
            return Route(model.latest)
        return rollout.route(model, key)

    def serving(self, model: ModelVersions) -> ModelVersion:
        """The version unpinned requests get, but for a canary's share."""
        rollout = self._models.get(model.name)
        if rollout is not None and rollout.policy.stable in model.loaded:
            return model.loaded[rollout.policy.stable]
        return model.latest

    # -- judging --------------------------------------------------------------------------------

    def check(self, models: Mapping[str, ModelVersions]) -> None:
        """Judge every rollout with a candidate in traffic; roll back, advance or promote as its policy says."""
        for name, rollout in list(self._models.items()):
            model = models.get(name)
            if model is None or rollout.policy.active_candidate is None:
                continue
            gates = rollout.judge(model)
            failed = [gate for gate in gates if gate.status == "fail"]
            if failed:
                self._roll_back(rollout, failed[0])
            elif gates and all(gate.status in ("pass", "off") for gate in gates):
                self._move_on(rollout)

    def _roll_back(self, rollout: ModelRollout, gate: GateResult) -> None:
        policy = rollout.policy
        candidate = policy.active_candidate
        assert candidate is not None
        reason = f"{gate.gate} was {gate.value:.4g}, limit {gate.limit}" if gate.value is not None else gate.gate
        log.warning("%s: rolling back candidate %d in %s mode: %s", rollout.name, candidate, policy.mode, reason)
        rolled_back = policy.model_copy(update={
            "mode": "off", "updated_by": "",
            "rollback": Rollback(candidate=candidate, gate=gate.gate, reason=reason, at=now(), by=writer_name()),
        })
        # Out of traffic here at once, whatever happens to the write: the file carries it to the others.
        rollout.policy = rolled_back
        self._metrics.rollbacks.labels(rollout.name, str(candidate), gate.gate).inc()
        rollout.publish_rollback()
        if self._write(rollout, rolled_back):
            return
        # Someone wrote first. If their policy still has this candidate in traffic, roll back on top of it.
        try:
            newer = self.store.read(rollout.name)
        except PolicyError:
            return
        if newer is not None and newer.active_candidate == candidate:
            rollout.read = newer
            self._write(rollout, newer.model_copy(update={"mode": "off", "updated_by": "",
                                                          "rollback": rolled_back.rollback}))

    def _move_on(self, rollout: ModelRollout) -> None:
        policy = rollout.policy
        promotion = policy.promotion
        candidate = policy.active_candidate
        if policy.mode == "shadow" and promotion.advance_after is not None \
                and rollout.requests_in_mode >= promotion.advance_after:
            log.info("%s: candidate %d passed every gate over %d shadow copies; on to canary at %.0f%%",
                     rollout.name, candidate, rollout.requests_in_mode, promotion.canary_weight * 100)
            self._write(rollout, policy.model_copy(update={"mode": "canary", "weight": promotion.canary_weight,
                                                           "updated_by": ""}))
        elif policy.mode == "canary" and promotion.promote_after is not None \
                and rollout.requests_in_mode >= promotion.promote_after:
            log.info("%s: candidate %d passed every gate over %d canary requests; promoted to stable",
                     rollout.name, candidate, rollout.requests_in_mode)
            self._write(rollout, policy.promoted())
            self._metrics.promotions.labels(rollout.name, str(candidate)).inc()

    def _write(self, rollout: ModelRollout, policy: Policy) -> bool:
        """Write a decision; False when someone wrote first (their policy is read on the next tick)."""
        try:
            written = self.store.write(policy, rollout.read.revision)
        except StaleWrite as exc:
            log.info("%s; not overwriting it", exc)
            return False
        except (OSError, PolicyError) as exc:
            log.error("%s: could not write the rollout policy (%s); only this process knows of the change",
                      rollout.name, exc)
            return True
        rollout.adopt(written)
        return True

    # -- reporting ------------------------------------------------------------------------------

    def describe(self, name: str, model: ModelVersions | None) -> dict[str, Any]:
        rollout = self._models.get(name)
        error = self._errors.get(name)
        if rollout is None:
            return {"model": name, "file": str(self.store.path(name)), "policy": None, "policy_error": error,
                    "state": "no policy", "serving": model.latest.version if model and model.loaded else None,
                    "gates": [], "versions": {}, "shadow": None, "process": os.getpid()}
        return rollout.describe(model, self.store, error)


def _share(key: str | None, model: str, candidate: int) -> float:
    """Where a caller falls in [0, 1): the same key always in the same place for one candidate."""
    if key is None:
        return random.random()
    digest = hashlib.blake2b(f"{model}/{candidate}/{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _labels(version: ModelVersion, outputs: np.ndarray) -> list[str]:
    labels = version.labels
    return [labels[i] for i in outputs.argmax(axis=1).tolist()]


def _reference_shares(version: ModelVersion) -> Mapping[str, float] | None:
    if version.monitor is not None:
        reference = version.monitor.reference
    else:
        try:
            reference = reference_of(version.card.model_extra)
        except ValueError:
            return None
    return reference.predicted_label_share if reference is not None else None
