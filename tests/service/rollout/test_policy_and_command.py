"""The policy file and the command that writes it: validation, atomic writes, and no lost update."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.rollout.__main__ import main
from service.rollout.policy import Policy, PolicyError, PolicyStore, StaleWrite
from tests.service.rollout.conftest import MODEL


def _command(root: Path, *args: str) -> int:
    return main([MODEL, "--artifacts-dir", str(root), *args])


def test_the_command_writes_a_policy_the_service_can_read_and_shows_it(
    artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _command(artifacts) == 0
    assert "has no rollout policy" in capsys.readouterr().out
    assert _command(artifacts, "--stable", "1", "--candidate", "2", "--mode", "shadow", "--weight", "0.25",
                    "--gate", "min_agreement=0.99", "--gate", "max_p99_ratio=off", "--advance-after", "500") == 0
    policy = PolicyStore(artifacts).read(MODEL)
    assert policy is not None
    assert (policy.revision, policy.stable, policy.candidate, policy.mode, policy.weight) == (1, 1, 2, "shadow", 0.25)
    assert (policy.gates.min_agreement, policy.gates.max_p99_ratio, policy.promotion.advance_after) == (0.99, None, 500)
    # A later command changes what it names and keeps the rest.
    assert _command(artifacts, "--mode", "canary", "--weight", "0.1") == 0
    policy = PolicyStore(artifacts).read(MODEL)
    assert policy is not None and (policy.revision, policy.mode, policy.candidate, policy.gates.min_agreement) == \
        (2, "canary", 2, 0.99)
    capsys.readouterr()
    assert _command(artifacts) == 0
    assert json.loads(capsys.readouterr().out)["revision"] == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--candidate", "9", "--mode", "shadow"], "version 9 of 'tiny-text' is not on disk (on disk: 1, 2, 3, 4)"),
    (["--stable", "2", "--candidate", "2", "--mode", "canary"], "the candidate (2) is the stable version"),
    (["--candidate", "2", "--mode", "canary", "--weight", "1.5"], "weight: Input should be less than or equal to 1"),
    (["--candidate", "2", "--mode", "canary", "--weight", "-0.1"], "weight: Input should be greater than or equal"),
    (["--mode", "shadow"], "mode 'shadow' needs a candidate"),
    (["--promote"], "no rollout policy, so no candidate to promote"),
    (["--remove"], "no rollout policy to remove"),
    (["--candidate", "2", "--mode", "shadow", "--gate", "min_agreement"], "expected NAME=VALUE"),
    (["--candidate", "2", "--mode", "shadow", "--gate", "typo=1"], "expected NAME=VALUE"),
    (["--candidate", "2", "--mode", "shadow", "--gate", "min_agreement=high"], "'high' is not a number"),
])
def test_the_command_refuses_what_cannot_work_with_a_clear_message_and_writes_nothing(
    artifacts: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert _command(artifacts, *args) == 2
    assert message in capsys.readouterr().err
    assert not PolicyStore(artifacts).path(MODEL).exists()


def test_the_command_refuses_a_model_with_no_versions_on_disk(artifacts: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-model", "--artifacts-dir", str(artifacts), "--mode", "off"]) == 2
    assert "no versions of 'no-such-model' on disk" in capsys.readouterr().err


def test_promote_makes_the_candidate_stable_and_remove_brings_back_the_newest(artifacts: Path) -> None:
    assert _command(artifacts, "--stable", "1", "--candidate", "2", "--mode", "canary") == 0
    assert _command(artifacts, "--promote") == 0
    policy = PolicyStore(artifacts).read(MODEL)
    assert policy is not None and (policy.stable, policy.candidate, policy.mode) == (2, None, "off")
    assert _command(artifacts, "--remove") == 0
    assert PolicyStore(artifacts).read(MODEL) is None


def test_a_rollout_folder_apart_from_the_artifacts_holds_the_policy(artifacts: Path, tmp_path: Path) -> None:
    rollouts = tmp_path / "rollouts"
    assert _command(artifacts, "--rollout-dir", str(rollouts), "--candidate", "2", "--mode", "shadow") == 0
    assert (rollouts / MODEL / "rollout.json").is_file()
    assert not PolicyStore(artifacts).path(MODEL).exists()


def test_a_write_based_on_an_old_revision_is_refused_so_no_newer_state_is_overwritten(tmp_path: Path) -> None:
    store = PolicyStore(tmp_path)
    first = store.write(Policy(model=MODEL, stable=1, candidate=2, mode="canary"), None)
    # A service process rolls the candidate back (revision 2) ...
    store.write(first.model_copy(update={"mode": "off"}), first.revision)
    # ... while a person who read revision 1 tries to raise the canary's share: refused.
    with pytest.raises(StaleWrite, match="revision 2, not 1"):
        store.write(first.model_copy(update={"weight": 0.5}), first.revision)
    with pytest.raises(StaleWrite):  # and creating one where one exists
        store.write(Policy(model=MODEL, stable=1), None)
    policy = store.read(MODEL)
    assert policy is not None and (policy.revision, policy.mode, policy.weight) == (2, "off", 0.1)


def test_the_write_is_a_rename_so_no_temporary_file_is_left_and_readers_never_see_half_a_policy(
    tmp_path: Path,
) -> None:
    store = PolicyStore(tmp_path)
    policy = store.write(Policy(model=MODEL, stable=1), None)
    for revision in range(policy.revision, policy.revision + 20):
        store.write(Policy(model=MODEL, stable=1, weight=revision / 100), revision)
    assert sorted(p.name for p in (tmp_path / MODEL).iterdir()) == [".rollout.json.lock", "rollout.json"]


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not a valid rollout policy"),
    ('{"model": "tiny-text"}', "stable: Field required"),
    ('{"model": "tiny-text", "stable": 1, "surprise": true}', "surprise: Extra inputs are not permitted"),
    ('{"model": "other", "stable": 1}', "names model 'other'"),
    (b"\xff\xfe", "cannot be read"),
])
def test_an_invalid_policy_file_is_an_error_that_names_the_file_and_the_problem(
    tmp_path: Path, text: str | bytes, message: str
) -> None:
    store = PolicyStore(tmp_path)
    store.path(MODEL).parent.mkdir(parents=True)
    if isinstance(text, bytes):
        store.path(MODEL).write_bytes(text)
    else:
        store.path(MODEL).write_text(text)
    with pytest.raises(PolicyError, match=message) as raised:
        store.read(MODEL)
    assert str(store.path(MODEL)) in str(raised.value)
