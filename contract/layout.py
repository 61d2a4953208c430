"""Version folders: `<root>/<model>/<version>/`, version a positive integer, the highest the newest.

Anything else under a model folder (a dot-folder being staged by `contract.publish`, a
README) is not a version.
"""

from __future__ import annotations

from pathlib import Path


def is_version_name(name: str) -> bool:
    return name.isdigit() and int(name) > 0 and not name.startswith("0")


def list_versions(model_dir: Path) -> list[int]:
    """The version folders under one model's folder, oldest first ([] when there is no folder)."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and is_version_name(p.name))


def next_version(model_dir: Path) -> int:
    """One more than the newest version (1 for a new model)."""
    return max(list_versions(model_dir), default=0) + 1


def newest_version_dir(model_dir: Path) -> Path:
    versions = list_versions(model_dir)
    if not versions:
        raise FileNotFoundError(f"{model_dir}: no version folders")
    return model_dir / str(versions[-1])


def model_dirs(root: Path) -> list[Path]:
    """Every model folder under an artifacts root (hidden folders excluded)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
