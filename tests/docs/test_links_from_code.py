"""Code and configuration point into the docs by file, never by a README heading, and every file they name exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = ["contract", "service", "training", "loadtests", "tests", "deploy"]
TOP_LEVEL = ["Makefile", "Dockerfile", "docker-compose.yml", "pyproject.toml", ".ci/run"]
DOCS_PATH = re.compile(r"docs/[\w./-]+?\.md")
HEADING_POINTER = re.compile(r'README(\.md)?(, *| *\()"')  # (README, "Benchmark"), README.md ("Alerts")


def _files() -> list[Path]:
    files = [REPO / name for name in TOP_LEVEL if (REPO / name).is_file()]
    for folder in SOURCES:
        files += [p for p in (REPO / folder).rglob("*") if p.is_file() and "node_modules" not in p.parts
                  and p.suffix in {".py", ".yml", ".yaml", ".json", ".toml", ".tpl", ".txt", ".conf", ""}]
    return files


def test_every_docs_file_the_code_names_exists() -> None:
    missing = {}
    for path in _files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for target in DOCS_PATH.findall(text):
            if not (REPO / target).is_file():
                missing.setdefault(target, []).append(str(path.relative_to(REPO)))
    assert not missing, f"docs files named in the code but absent: {missing}"


def test_no_comment_points_at_a_readme_heading() -> None:
    pointers = []
    for path in _files():
        if path == Path(__file__):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if HEADING_POINTER.search(line):
                pointers.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not pointers, "point at a docs/ file instead of a README heading:\n" + "\n".join(pointers)
