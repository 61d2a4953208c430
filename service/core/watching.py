"""Which version folders have settled: the same files, sizes and times at two looks in a row.

A folder still being copied in (by hand, rsync, a volume sync) changes between looks and is
not loaded until it stops changing; training's own publishing renames a finished folder into
place (contract.publish), which settles at once. A folder that failed to load is not tried
again until it changes.
"""

from __future__ import annotations

from pathlib import Path

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(folder: Path) -> Fingerprint:
    """Names, sizes and modification times of every file under a folder."""
    stats = ((p, p.stat()) for p in folder.rglob("*") if p.is_file())
    return tuple(sorted((str(p.relative_to(folder)), st.st_size, st.st_mtime_ns) for p, st in stats))


class FolderWatch:
    """What each version folder looked like at the last look, and which ones failed as they are."""

    def __init__(self) -> None:
        self._seen: dict[Path, Fingerprint] = {}
        self._failed: dict[Path, Fingerprint] = {}

    def settled(self, folder: Path) -> bool:
        """True when the folder looks the same as at the previous look (the first look never is)."""
        try:
            now = fingerprint(folder)
        except OSError:
            return False
        before, self._seen[folder] = self._seen.get(folder), now
        return before == now

    def failed(self, folder: Path) -> None:
        """Remember that the folder, as it is now, failed to load."""
        try:
            self._failed[folder] = fingerprint(folder)
        except OSError:
            self._failed.pop(folder, None)

    def failed_unchanged(self, folder: Path) -> bool:
        """True when the folder failed to load and has not changed since its last look."""
        return folder in self._failed and self._failed[folder] == self._seen.get(folder)

    def loaded(self, folder: Path) -> None:
        self._failed.pop(folder, None)
