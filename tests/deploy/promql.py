"""The metric names a PromQL expression reads, for checking a dashboard against the service's metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

# PromQL words that look like metric names but are not.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
             "offset", "inf", "nan"}
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    """Every metric name in `expr`: identifiers that are not functions, keywords, labels or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values and strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    text = re.sub(r"\$\w+", " ", text)  # Grafana variables
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group()
        following = text[match.end():].lstrip()
        if following.startswith("(") or name.lower() in _KEYWORDS:
            continue  # a function or aggregation, or an operator word
        if re.fullmatch(r"\d", text[match.start() - 1: match.start()] or " "):
            continue  # part of a number such as 1e3
        names.add(name)
    return names


def dashboard_expressions(path: Path) -> list[str]:
    """Every PromQL expression of a Grafana dashboard: panel targets (rows included) and variable queries."""
    dashboard = json.loads(path.read_text())
    expressions: list[str] = []

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            expressions.extend(target["expr"] for target in panel.get("targets", []) if target.get("expr"))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if variable.get("type") == "query" and query:
            inner = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", query)
            expressions.append(inner.group(1) if inner else query)
    return expressions


def family(name: str) -> str:
    """The metric family a sample name belongs to (histogram series share their family's name)."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def exposed_names(metrics_text: str) -> set[str]:
    """Every sample name and every declared family (# TYPE) in a Prometheus text exposition."""
    names = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def missing_metrics(expressions: list[str], metrics_text: str, prometheus_own: set[str]) -> set[str]:
    """The metric names the expressions read that the exposition neither has nor declares."""
    exposed = exposed_names(metrics_text)
    wanted = set().union(*(metric_names(e) for e in expressions)) - prometheus_own
    return {name for name in wanted if name not in exposed and family(name) not in exposed}
