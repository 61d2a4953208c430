"""The one way to publish a new version: build it in a hidden folder, check it, rename it into place.

A running service watches `<model>/` for new version folders. Building straight into
`<model>/<version>/` would let it load a half-written folder, or a provisional card that is
rewritten after evaluation. Here the version is built in `<model>/.staging-<version>-<id>/`
(not a version name, so never loaded), checked by loading it as the service would, and then
renamed, which is atomic on one filesystem: the service sees no folder, then a finished one.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from contract.errors import ArtifactError
from contract.layout import next_version
from contract.savedmodel import SavedModel, load_model


@dataclass(frozen=True)
class StagedVersion:
    """Where to write a version being built, and the name and number it will be published as."""

    path: Path
    name: str
    version: int
    target: Path

    def load(self) -> SavedModel:
        """The staged version, loaded and checked as the service will load it (to evaluate it)."""
        return load_model(self.path, self.name, self.version)


@contextmanager
def staged_version(model_dir: Path, version: int | None = None) -> Iterator[StagedVersion]:
    """Yield a staging folder; on a clean exit check it and publish it as `<model_dir>/<version>/`.

    On an error the staging folder is removed and nothing is published.
    """
    version = version or next_version(model_dir)
    target = model_dir / str(version)
    if target.exists():
        raise ArtifactError(f"{target} already exists; published versions are never rewritten")
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = model_dir / f".staging-{version}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        staged = StagedVersion(path=staging, name=model_dir.name, version=version, target=target)
        yield staged
        staged.load()  # the final check: card and SavedModel agree
        if target.exists():  # another job published this number meanwhile
            raise ArtifactError(f"{target} appeared while {staging} was being built")
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
