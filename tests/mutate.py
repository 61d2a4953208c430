"""Mutation testing with mutmut, one module group at a time, each with its own short test selection.

    python -m tests.mutate                # every group (make mutate)
    python -m tests.mutate batcher        # one group
    python -m tests.mutate --tree DIR     # score another checkout (e.g. an older commit) the same way

mutmut reads one selection from pyproject.toml; a selection wide enough for every module would run
the registry's tests for each batcher mutant. So each group runs in a temporary copy of the tree whose
[tool.mutmut] names only that group's files and tests. Prints each group's counts and its score:
killed (and timed out) over all mutants that were run. The survivors are listed for tests/MUTATION.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.breaks import copy_tree

REPO = Path(__file__).resolve().parent.parent

GROUPS: dict[str, tuple[list[str], list[str]]] = {
    # The batcher's own tests use a plain Python model: seconds per mutant, where a test through the app
    # (TensorFlow, a model load per test) takes tens. What the app adds is covered by tests/breaks.py.
    "batcher": (["service/core/batcher.py"], ["tests/service/core/test_batcher.py"]),
    # The reload decisions, settling and draining, with a fake loader (no TensorFlow: seconds per mutant);
    # the app-level tests check the same through the real loader.
    "registry": (["service/core/registry.py", "service/core/watching.py", "service/core/draining.py"],
                 ["tests/service/core/test_registry.py", "tests/service/core/test_versions_and_reload.py",
                  "tests/service/core/test_startup_and_settings.py"]),
    # Each loaded version's batcher is wired to a drift monitor and to tracing: their tests check that wiring.
    "loading": (["service/core/loading.py"],
                ["tests/service/core/test_versions_and_reload.py", "tests/service/core/test_startup_and_settings.py",
                 "tests/service/api/test_prediction_drift.py", "tests/service/api/test_tracing.py"]),
    # One prediction from the edge's inputs to the answer, for each kind (a third one included).
    "inference": (["service/core/inference.py", "service/core/handlers/*"],
                  ["tests/service/api/test_sentiment.py", "tests/service/api/test_classify_image.py",
                   "tests/service/api/test_inference_protocol_errors.py", "tests/service/core/test_a_third_kind.py",
                   "tests/service/api/test_prediction_drift.py", "tests/service/api/test_tracing.py"]),
    # The card-file routes are tested with the page; the routes' traced branches by the tracing tests.
    "errors-and-routes": (["service/api/errors.py", "service/api/routes/*"],
                          ["tests/service/api/test_sentiment.py", "tests/service/api/test_classify_image.py",
                           "tests/service/api/test_models_and_probes.py",
                           "tests/service/api/test_inference_protocol_errors.py",
                           "tests/service/api/test_api_keys.py", "tests/service/api/test_page.py",
                           "tests/service/api/test_tracing.py"]),
    # Explanations: the limits and the joining of variants' answers, through the app on tiny models whose
    # right answers are known (the method itself, contract/occlusion.py, is outside mutmut's service/ tree).
    "explaining": (["service/core/explaining.py"], ["tests/service/api/test_explanations.py"]),
    "shutdown": (["service/__main__.py"], ["tests/service/api/test_shutdown.py"]),
    # Decoding needs no model: every way an image can be, with Pillow as the reference for the fast path.
    "imaging": (["service/core/imaging.py"], ["tests/service/core/test_imaging.py"]),
    # Rollouts: the policy file, the gates and the shadow queue without TensorFlow (test_policy_and_command,
    # test_gates, test_shadow_queue); routing, rollback and promotion through the app on tiny models.
    "rollout": (["service/rollout/*"], ["tests/service/rollout/test_policy_and_command.py",
                                        "tests/service/rollout/test_gates.py",
                                        "tests/service/rollout/test_shadow_queue.py",
                                        "tests/service/rollout/test_rollouts_over_http.py"]),
}


def _config(only_mutate: list[str], tests: list[str]) -> str:
    quoted = lambda items: "[" + ", ".join(f'"{item}"' for item in items) + "]"  # noqa: E731
    return (
        "[tool.mutmut]\n"
        'source_paths = ["service/"]\n'
        f"only_mutate = {quoted(only_mutate)}\n"
        'also_copy = ["contract/", "loadtests/"]\n'
        # Tests that start a real server are left out: their mutants run in another process.
        f"pytest_add_cli_args_test_selection = {quoted([*tests, '-m', 'not live'])}\n"
        # A mutant that makes a test hang (a lost wake-up, a slot never freed) burns no CPU, so mutmut's
        # CPU-time limit never ends it: pytest-timeout does, and the hang counts as caught.
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "--timeout", "30"]\n'
        # TensorFlow's threads count towards a mutant's CPU limit: be generous before calling it a timeout.
        "timeout_multiplier = 20.0\n"
        "timeout_constant = 120.0\n"
        # mutmut's default forks each mutant from the process that ran every test for its coverage stats, so
        # TensorFlow's thread pools are already running there; a forked child's first model call then hangs
        # until pytest-timeout, and every mutant the app-level tests reach counts as killed. A fork server
        # only imports the tests before it forks, and no model has run in it.
        'process_isolation = "forkserver"\n'
    )


def run_group(tree: Path, name: str) -> Counter[str]:
    only_mutate, tests = GROUPS[name]
    tests = [t for t in tests if (tree / t).exists()]
    with tempfile.TemporaryDirectory(prefix=f"mutate-{name}-") as tmp:
        copy = Path(tmp)
        copy_tree(tree, copy)
        pyproject = (copy / "pyproject.toml").read_text()
        pyproject = re.sub(r"(?ms)^\[tool\.mutmut\].*?(?=^\[)", "", pyproject)
        (copy / "pyproject.toml").write_text(pyproject + "\n" + _config(only_mutate, tests))
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "mutmut", "run"], cwd=copy, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        took = time.monotonic() - started
        results = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=copy,
                                 capture_output=True, text=True).stdout
    statuses: Counter[str] = Counter()
    survivors = []
    for line in results.splitlines():
        mutant, _, status = line.strip().rpartition(": ")
        if not mutant:
            continue
        statuses[status] += 1
        if status == "survived":
            survivors.append(mutant)
    run = sum(n for status, n in statuses.items() if status not in ("not checked", "skipped"))
    killed = statuses["killed"] + statuses["timeout"]
    score = f"{100 * killed / run:.1f}%" if run else "n/a"
    print(f"{name}: {killed} of {run} mutants killed ({score}) in {took / 60:.1f} min; {dict(statuses)}", flush=True)
    for mutant in survivors:
        print(f"    survived: {mutant}")
    return statuses


def main(argv: list[str]) -> int:
    tree = REPO
    if "--tree" in argv:
        index = argv.index("--tree")
        tree = Path(argv[index + 1]).resolve()
        argv = argv[:index] + argv[index + 2 :]
    total: Counter[str] = Counter()
    for name in argv or list(GROUPS):
        total += run_group(tree, name)
    run = sum(n for status, n in total.items() if status not in ("not checked", "skipped"))
    killed = total["killed"] + total["timeout"]
    print(f"all: {killed} of {run} mutants killed ({100 * killed / max(run, 1):.1f}%); {dict(total)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
