"""Hand-made breaks: each one breaks the code a promise rests on, and names the tests that must then fail.

    python -m tests.breaks            # every break (10 to 14 minutes on 2 shared cores)
    python -m tests.breaks settle     # the breaks whose name contains "settle"
    python -m tests.breaks --list

Each break is applied to a temporary copy of this checkout (never to the checkout itself), and
its tests run there with `python -m pytest -x`. A break is "caught" when pytest reports a failed
test (exit status 1); it is "MISSED" when they all pass, and "stale" when its text is no longer in
the source (the code moved: update the break). The command fails unless every break is caught.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COPIED = ("contract", "service", "tests", "loadtests", "pyproject.toml")
VERSIONS = "tests/service/core/test_versions_and_reload.py"
SHUTDOWN = "tests/service/api/test_shutdown.py"
BATCHING = "tests/service/api/test_batching_over_http.py"
STARTUP = "tests/service/core/test_startup_and_settings.py"
REGISTRY = "tests/service/core/test_registry.py"
ROLLOUTS = "tests/service/rollout/test_rollouts_over_http.py"
RUNTIMES = "tests/service/core/test_runtimes.py"
EXPLAIN = "tests/service/api/test_explanations.py"
BATCHER = "tests/service/core/test_batcher.py"
RESUME = "tests/service/score/test_resume.py"
BAD_INPUT = "tests/service/score/test_bad_input.py"
SCORER = "tests/service/score/test_batch_scorer.py"
AGREEMENT = "tests/service/score/test_agreement_with_the_api.py"


@dataclass(frozen=True)
class Break:
    name: str
    why: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


BREAKS = [
    Break("candidate-answers-although-pinned", "a pinned request is routed by the rollout policy",
          "service/core/inference.py", "        if version is not None:\n            return Route(",
          "        if False:\n            return Route(",
          (f"{ROLLOUTS}::test_a_pinned_request_gets_its_version_whatever_the_policy_says",)),
    Break("failed-gate-leaves-candidate-in-traffic", "a failed gate is reported but nothing is rolled back",
          "service/rollout/rollouts.py", "            if failed:\n", "            if False:\n",
          (f"{ROLLOUTS}::test_a_hostile_candidate_fails_the_agreement_gate_and_never_reaches_canary",
           f"{ROLLOUTS}::test_an_automatic_rollback_under_load_fails_no_request")),
    Break("shadow-error-reaches-client", "the shadow copy runs on the answer's path, its failure the client's",
          "service/core/inference.py",
          "            rollout.copy(version, route.shadow, prepared.rows, prepared.summary, answer.outputs)",
          "            await route.shadow.batcher.submit(prepared.rows)",
          (f"{ROLLOUTS}::test_a_shadow_copy_that_fails_costs_the_client_nothing_and_counts_against_the_candidate",)),
    Break("shadow-ahead-of-clients", "shadow copies go to the model whether or not stable has clients waiting",
          "service/rollout/shadow.py", "            while first.stable.batcher.busy:", "            while False:",
          ("tests/service/rollout/test_shadow_queue.py",)),
    Break("settle-always-yes", "the settle check says every folder has settled",
          "service/core/watching.py", "        return before == now", "        return True",
          (f"{REGISTRY}::test_a_folder_that_keeps_changing_is_not_loaded",
           f"{VERSIONS}::test_a_version_still_being_copied_in_is_only_loaded_once_it_settles")),
    Break("drain-hook-does-nothing", "SIGTERM no longer tells the registry to drain",
          "service/app.py", "            begin_draining()\n", "            pass\n",
          (f"{SHUTDOWN}::test_the_stop_signal_handler_starts_the_drain_before_uvicorn_shuts_down",
           f"{SHUTDOWN}::test_sigterm_answers_every_queued_request_refuses_later_ones_then_exits_within_the_grace_period",)),
    Break("no-connection-close-while-draining", "answers sent while draining let clients reuse the connection",
          "service/api/access_log.py", 'if scope["app"].state.registry.draining:', "if False:",
          (f"{VERSIONS}::test_draining_turns_readiness_503_and_refuses_new_requests",)),
    Break("retired-version-takes-requests", "a retired version's batcher still queues requests",
          "service/core/batcher.py", "        if self._closed:\n            raise ShuttingDown",
          "        if False:\n            raise ShuttingDown",
          (f"{VERSIONS}::test_a_version_retired_while_a_request_holds_it_answers_503_shutting_down",)),
    Break("pinning-ignored", "a pinned version is answered by the newest",
          "service/core/registry.py", "        if version is None:\n            return self.serving(model)",
          "        if True:\n            return self.serving(model)",
          (f"{VERSIONS}::test_a_request_can_pin_a_loaded_version_and_gets_that_versions_answer",
           "tests/service/api/test_inference_protocol.py::test_text_inference_on_a_pinned_version")),
    Break("answers-to-the-wrong-caller", "every caller of a batch gets the batch's first rows",
          "service/core/batcher.py", "piece.future.set_result((rows, call.size))",
          "piece.future.set_result((outputs[: len(rows)], call.size))",
          (f"{BATCHING}::test_many_concurrent_requests_are_served_by_fewer_model_calls",
           f"{VERSIONS}::test_new_versions_take_over_under_traffic_on_every_route_each_client_getting_its_own_answers")),
    Break("reload-never-retires", "a superseded version keeps answering",
          "service/core/registry.py", "                if version not in keep and len(model.loaded) > 1:",
          "                if False:",
          (f"{REGISTRY}::test_a_new_version_is_loaded_once_settled_and_then_the_oldest_is_retired",
           f"{VERSIONS}::test_new_versions_take_over_under_traffic_on_every_route_each_client_getting_its_own_answers")),
    Break("deleted-version-kept", "a version deleted from disk keeps answering",
          "service/core/registry.py", "            keep &= set(model.on_disk) or keep", "            pass",
          (f"{REGISTRY}::test_a_version_deleted_from_disk_is_retired_unless_it_is_the_last",
           f"{VERSIONS}::test_a_version_deleted_from_disk_while_loaded_is_retired_unless_it_is_the_last")),
    Break("no-warm-up", "a new version takes traffic without answering a warm-up batch",
          "service/core/loading.py",
          "await batcher.submit(handler.warm_up_rows(settings.max_batch_size), timeout_s=WARM_UP_TIMEOUT_S)",
          "pass",
          (f"{VERSIONS}::test_a_new_version_that_loads_but_fails_its_warm_up_is_reported_and_never_served",
           f"{STARTUP}::test_a_newest_version_that_fails_its_warm_up_is_a_start_up_error")),
    Break("v2-texts-unmonitored", "texts sent over the Open Inference Protocol never reach drift monitoring",
          "service/core/handlers/text.py",
          "return Prepared(rows, {TEXT_LENGTH: [len(row.decode(\"utf-8\", \"replace\")) for row in rows]})",
          "return Prepared(rows, {})",
          ("tests/service/api/test_prediction_drift.py::"
           "test_texts_over_the_open_inference_protocol_are_monitored_like_texts_to_sentiment",)),
    Break("no-signature-check", "a SavedModel is served whatever its signature",
          "contract/savedmodel.py", "    _check_signature(version_dir, card, function)\n", "",
          (f"{STARTUP}::test_a_savedmodel_whose_signature_differs_from_its_card_is_a_start_up_error",)),
    Break("batching-off-ignored", "SERVICE_MAX_BATCH_SIZE=1 still batches two inputs",
          "service/core/batcher.py", "rows + len(queue[0].rows) <= self.max_batch_size",
          "rows + len(queue[0].rows) <= max(self.max_batch_size, 2)",
          (f"{BATCHING}::test_with_batching_off_every_input_is_a_model_call_of_its_own",)),
    Break("key-logged", "the API key is written to the log",
          "service/api/auth.py", "    for given in presented:\n",
          "    for given in presented:\n"
          "        __import__('logging').getLogger('service.auth').info('key %s', given)\n",
          ("tests/service/api/test_api_keys.py::test_keys_never_reach_the_logs",
           "tests/service/api/test_api_keys.py::test_a_bearer_key_never_reaches_a_real_servers_log_even_at_debug_level")),
    Break("lean-query-unchecked", "a LeanRoute takes query parameters without validating them",
          "service/shims/fastapi_lean_route.py",
          "_validated(\"query\", model.model_validate, dict(request.query_params))",
          "model.model_construct(**dict(request.query_params))",
          ("tests/service/shims/test_fastapi_lean_route.py::test_a_lean_route_answers_what_fastapis_own_route_answers",)),
    Break("close-drops-the-last-answer", "a connection closed after its last answer loses that answer",
          "service/shims/uvicorn_coalescing.py", "        self._flush()  # what was written",
          "        self._pending.clear()  # what was written",
          ("tests/service/shims/test_uvicorn_coalescing.py::test_a_close_sends_what_was_written_before_it_and_nothing_is_written_after",
           "tests/service/shims/test_uvicorn_coalescing.py::test_a_real_server_answers_keep_alive_and_pipelined_requests_in_order")),
    Break("jpeg-fast-path-ignores-orientation", "a model-sized JPEG with an EXIF orientation is served unturned",
          "service/core/imaging.py", 'or colorspace not in ("YCbCr", "Gray") or _APP1 in data',
          'or colorspace not in ("YCbCr", "Gray")',
          ("tests/service/core/test_imaging.py::test_a_model_sized_jpeg_with_an_exif_orientation_is_still_turned",)),
    Break("queue-never-refused-at-grace", "what is queued when the grace runs out is left to uvicorn's 500s",
          "service/core/registry.py", "                version.batcher.refuse_queued(error)",
          "                pass",
          (f"{SHUTDOWN}::test_requests_still_queued_as_the_grace_period_runs_out_are_refused_with_a_retryable_503_and_the_process_exits",)),
    Break("grace-never-runs-out", "the shutdown grace is ignored: a stop waits for the running model call",
          "service/__main__.py", "            timeout_graceful_shutdown=settings.shutdown_grace_s,",
          "            timeout_graceful_shutdown=None,",
          (f"{SHUTDOWN}::test_requests_still_queued_as_the_grace_period_runs_out_are_refused_with_a_retryable_503_and_the_process_exits",)),
    Break("verification-ignored", "a faster runtime is used although its sample's figures fail the thresholds",
          "service/core/runtimes.py", "    if failures:\n", "    if False:\n",
          (f"{RUNTIMES}::test_a_reference_the_fast_runtime_disagrees_with_keeps_the_version_in_float32",)),
    Break("bf16-leaks-to-the-thread", "a bf16 call leaves its rewrite options on the thread for the calls after it",
          "service/shims/tensorflow_call_options.py", "            eager.function_call_options = previous\n",
          "            pass\n",
          ("tests/service/shims/test_tensorflow_call_options.py::"
           "test_a_wrapped_call_runs_in_bf16_and_the_next_plain_call_in_float32",)),
    Break("explanations-ahead-of-plain", "an explanation's variants queue with plain rows, ahead of later requests",
          "service/core/batcher.py", "        (self._low if low_priority else self._queue).extend(pieces)",
          "        self._queue.extend(pieces)",
          (f"{BATCHER}::test_a_plain_request_goes_into_the_next_batch_ahead_of_queued_low_priority_rows",)),
    Break("variants-monitored", "drift monitoring counts an explanation's variants as traffic",
          "service/core/batcher.py", "            if any(p.low_priority for p in batch):", "            if False:",
          (f"{BATCHER}::test_monitoring_sees_only_the_normal_rows_of_a_batch_shared_with_low_priority_ones",)),
    Break("weights-of-the-wrong-label", "a text's weights are taken on the first label, not the predicted one",
          "contract/occlusion.py", "    top = int(output.argmax())", "    top = 0",
          (f"{EXPLAIN}::test_the_word_that_decides_gets_the_weight_and_the_others_none",)),
    Break("offsets-of-the-rewritten-text", "a word's offsets point into the normalised text, not the request",
          "contract/tokens.py", "Token(word, min(s for s, _ in spans), max(e for _, e in spans))",
          "Token(word, position, position + len(word))",
          ("tests/contract/test_tokens.py::test_each_word_points_at_the_characters_it_came_from",)),
    Break("cpu-check-ignored", "SERVICE_CPU_BF16=off does not keep auto from trying bf16",
          "service/core/runtimes.py", '    if settings.cpu_bf16 == "off":\n        return "SERVICE_CPU_BF16=off"\n', "",
          (f"{RUNTIMES}::test_with_bf16_forced_off_auto_serves_float32_without_trying_it",)),
    # Offline scoring (docs/scoring.md): resume, bad rows, refusals before any work, the API's answers.
    Break("parquet-resume-restarts-its-row-group",
          "a resumed Parquet job reads its row group from the top: earlier texts written again under later rows",
          "service/score/inputs.py", "_chunked(itertools.islice(rows(), skip, None), start_row,",
          "_chunked(rows(), start_row,",
          (f"{RESUME}::test_every_input_format_resumes_at_the_row_where_it_stopped[parquet]",)),
    Break("resume-past-a-missing-part", "--resume continues after the last part although one before it is gone",
          "service/score/checkpoint.py", "            if first != end:\n                raise Refused(",
          "            if False:\n                raise Refused(",
          (f"{RESUME}::test_a_resume_whose_folder_lacks_a_part_is_refused_naming_the_rows",)),
    Break("bad-row-stops-the-job", "the scorer catches ServiceError, not its row errors: a bad row stops the job",
          "service/score/scorer.py", "            except _RowError as exc:\n                errors[offset]",
          "            except ServiceError as exc:\n                errors[offset]",
          (f"{SCORER}::test_a_batch_of_texts_keeps_its_columns_and_gets_the_answers",
           f"{BAD_INPUT}::test_bad_texts_get_an_error_row_and_the_rest_are_scored")),
    Break("answers-on-the-wrong-rows", "after a row set aside in a batch, the answers land on the rows before theirs",
          "service/score/scorer.py", "            position = prepared.kept[index]\n",
          "            position = index\n",
          (f"{SCORER}::test_a_batch_of_texts_keeps_its_columns_and_gets_the_answers",
           f"{BAD_INPUT}::test_bad_texts_get_an_error_row_and_the_rest_are_scored")),
    Break("jsonl-missing-column-scored", "a JSON Lines field no object has is not refused: every row gets an error",
          "service/score/inputs.py", "            if seen and not found[name]:", "            if False:",
          (f"{BAD_INPUT}::test_a_job_that_cannot_run_is_refused_before_any_work",)),
    Break("probabilities-of-sorted-labels", "the per-class columns are filled in sorted label order, not the card's",
          "service/score/scorer.py", "per_label = [columns[name] for name in probability_columns(self.labels)]",
          "per_label = [columns[name] for name in probability_columns(sorted(self.labels))]",
          (f"{AGREEMENT}::test_images_get_the_labels_and_probabilities_of_post_classify_image",)),
]


def copy_tree(tree: Path, into: Path) -> None:
    """The parts of a checkout the tests need (COPIED), copied into `into`, without caches."""
    for name in COPIED:
        source = tree / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__", "mutants"))
        elif source.exists():
            shutil.copy2(source, into / name)


def run(brk: Break) -> tuple[str, float, str]:
    with tempfile.TemporaryDirectory(prefix=f"break-{brk.name}-") as tmp:
        copy = Path(tmp)
        copy_tree(REPO, copy)
        target = copy / brk.file
        text = target.read_text()
        if text.count(brk.old) != 1:
            return "stale", 0.0, f"{brk.file} no longer holds the text this break replaces"
        target.write_text(text.replace(brk.old, brk.new))
        started = time.monotonic()
        # cwd first on sys.path: the copy's packages are imported, not the installed ones.
        result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *brk.tests],
                                cwd=copy, capture_output=True, text=True)
        took = time.monotonic() - started
        last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-300:]
        verdict = {0: "MISSED", 1: "caught"}.get(result.returncode, f"error ({result.returncode})")
        return verdict, took, last


def main(argv: list[str]) -> int:
    if "--list" in argv:
        for brk in BREAKS:
            print(f"{brk.name:38} {brk.why}")
        return 0
    chosen = [b for b in BREAKS if not argv or any(word in b.name for word in argv)]
    verdicts = []
    for brk in chosen:
        verdict, took, last = run(brk)
        verdicts.append(verdict)
        print(f"{verdict:8} {brk.name:38} {took:6.1f} s  {last}", flush=True)
    caught = verdicts.count("caught")
    print(f"{caught} of {len(chosen)} breaks caught")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
