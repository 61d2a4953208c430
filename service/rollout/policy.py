"""A model's rollout policy: which version answers, which one is tried, and how it may move on.

The policy is data beside the versions, one file per model: `<rollout dir>/<model>/rollout.json`.
Every process serving the model reads it on each reload tick, and it is the one truth they
share: a rollback decided by one process is written here and reaches the others on their next
read. Two writers (the `python -m service.rollout` command, a service process rolling back or
promoting) never overwrite each other's newer state: every write names the revision it read,
and a write whose revision is no longer the file's is refused (`StaleWrite`). The compare and
the rename happen under an exclusive lock on a file beside the policy, and the rename makes a
reader see the old policy or the new one, never half of one (docs/decisions/0010-rollout-policy-file.md).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

POLICY_FILE = "rollout.json"
Mode = Literal["off", "shadow", "canary"]


class PolicyError(Exception):
    """A policy that cannot be read or cannot work; the message says why."""


class StaleWrite(PolicyError):
    """The policy changed since it was read: read it again and decide again."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Gates(_Strict):
    """What a candidate must show, over its last `window` requests, to stay in traffic.

    A threshold set to null turns its gate off. A gate is only judged once the candidate has
    answered `min_requests` in the window; before that it is "unknown", which never passes.
    """

    window: int = Field(1000, ge=10, le=1_000_000, description="Recent requests per version the gates look at.")
    min_requests: int = Field(200, ge=1, description="Candidate requests in the window before any gate is judged.")
    min_agreement: float | None = Field(
        0.95, ge=0, le=1, description="Shadow: least share of copies where candidate and stable give the same label.")
    max_error_rate: float | None = Field(0.01, ge=0, le=1, description="Most share of candidate requests that fail.")
    max_p99_ratio: float | None = Field(
        2.0, gt=0, description="Most candidate p99 latency (queue and model) as a multiple of stable's.")
    max_drift_vs_stable: float | None = Field(
        0.25, gt=0, description="Most PSI of the candidate's predicted labels against stable's, live, by label name.")
    max_drift_vs_reference: float | None = Field(
        0.25, gt=0,
        description="Most PSI of the candidate's predicted labels against its card's monitoring reference. A card "
                    "without one leaves this gate unknown, which blocks automatic moves: turn it off for such cards.")


class Promotion(_Strict):
    """How a candidate moves on without a command: counted in requests with every gate passing."""

    advance_after: int | None = Field(
        None, ge=1, description="Shadow copies, all gates passing, after which shadow becomes canary.")
    canary_weight: float = Field(0.1, gt=0, le=1, description="The canary's share when shadow advances to it.")
    promote_after: int | None = Field(
        None, ge=1, description="Canary requests, all gates passing, after which the candidate becomes stable.")


class Rollback(_Strict):
    """Why and when a candidate was taken out of traffic."""

    candidate: int
    gate: str
    reason: str
    at: str
    by: str


class Policy(_Strict):
    model: str
    revision: int = Field(0, ge=0, description="Raised by one on every write; a write names the one it read.")
    stable: int = Field(ge=1, description="The version unpinned requests get, but for the canary's share.")
    candidate: int | None = Field(None, ge=1)
    mode: Mode = "off"
    weight: float = Field(
        0.1, ge=0, le=1,
        description="The candidate's share of unpinned requests: copied to it in shadow mode, answered by it in "
                    "canary mode.")
    gates: Gates = Gates()
    promotion: Promotion = Promotion()
    rollback: Rollback | None = None
    updated_at: str = ""
    updated_by: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        if self.candidate is not None and self.candidate == self.stable:
            raise ValueError(f"the candidate ({self.candidate}) is the stable version; name another one")
        if self.mode != "off" and self.candidate is None:
            raise ValueError(f"mode {self.mode!r} needs a candidate")
        return self

    @property
    def active_candidate(self) -> int | None:
        """The candidate taking traffic (copies or answers) now; None when off or rolled back."""
        return self.candidate if self.mode != "off" else None

    def versions(self) -> set[int]:
        """The versions this policy names, which stay loaded whatever SERVICE_MODEL_VERSIONS says."""
        return {self.stable} | ({self.candidate} if self.candidate is not None else set())

    def promoted(self) -> Policy:
        """This policy with its candidate made stable: no candidate, mode off."""
        if self.candidate is None:
            raise PolicyError(f"{self.model}: there is no candidate to promote")
        return self.model_copy(update={"stable": self.candidate, "candidate": None, "mode": "off", "rollback": None,
                                       "updated_by": ""})

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def writer_name() -> str:
    """Who wrote a policy: the host and process, for the record."""
    return f"{os.uname().nodename}:{os.getpid()}"


class PolicyStore:
    """The rollout folder: one policy file per model, read and written safely by several processes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, model: str) -> Path:
        return self.root / model / POLICY_FILE

    def read(self, model: str) -> Policy | None:
        """The model's policy, or None when it has none. PolicyError when the file is unreadable or invalid."""
        path = self.path(model)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"{path}: cannot be read: {exc}") from exc
        try:
            policy = Policy.model_validate(json.loads(text))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise PolicyError(f"{path}: not a valid rollout policy: {_first_line(exc)}") from exc
        if policy.model != model:
            raise PolicyError(f"{path}: names model {policy.model!r}, but it is {model!r}'s policy file")
        return policy

    def write(self, policy: Policy, read_revision: int | None) -> Policy:
        """Write `policy` as the revision after `read_revision` (None: the model had no policy file).

        StaleWrite when the file's revision is no longer `read_revision`: someone wrote in between.
        """
        path = self.path(policy.model)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.with_name(f".{POLICY_FILE}.lock")):
            try:
                current = self.read(policy.model)
            except PolicyError:
                current = None  # a broken file is replaced by a good one, never merged
                if read_revision is not None and path.exists():
                    raise
            found = None if current is None else current.revision
            if found != read_revision:
                raise StaleWrite(f"{path}: the policy is at revision {found}, not {read_revision}: "
                                 "it changed since it was read")
            written = policy.model_copy(update={"revision": (read_revision or 0) + 1, "updated_at": now(),
                                                "updated_by": policy.updated_by or writer_name()})
            _replace(path, written.to_json())
        return written

    def remove(self, model: str, read_revision: int) -> None:
        """Delete the policy (the newest version serves again), unless someone wrote since it was read."""
        path = self.path(model)
        with _locked(path.with_name(f".{POLICY_FILE}.lock")):
            current = self.read(model)
            if current is None or current.revision != read_revision:
                raise StaleWrite(f"{path}: the policy changed since it was read")
            path.unlink()


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _replace(path: Path, text: str) -> None:
    """Write a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "policy"
        return f"{where}: {error['msg']}"
    return str(exc).splitlines()[0]
