"""The alert rules (deploy/prometheus/alerts.yml) are valid, pass their promtool unit tests, read only
metrics the service exposes, and are loaded by the compose stack's Prometheus in both networking modes.

Fast (promtool takes well under a second), so part of `make test`. promtool is in Debian's
`prometheus` package: without it the promtool tests skip, unless REQUIRE_TOOLS=1 (as in CI), where
a missing tool is an error.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml
from prometheus_client import generate_latest

from service.core.metrics import Metrics
from service.settings import Settings
from tests.deploy.promql import dashboard_expressions, metric_names, missing_metrics
from tests.required_tools import missing_tool

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "alerts.test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "service.json"
PROMETHEUS_OWN = {"up"}
SEVERITIES = {"warning", "critical"}
QUEUE_LIMIT_RECORD = "service:batch_queue_limit"

# Each networking mode: the compose files, in the order compose reads them, and the config they mount.
MODES = {
    "bridge": (["docker-compose.yml"], "prometheus.yml"),
    "host": (["docker-compose.yml", "deploy/docker-compose.host.yml"], "prometheus.host.yml"),
}


def _rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _alerts() -> list[dict]:
    return [rule for rule in _rules() if "alert" in rule]


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        missing_tool("promtool is not installed (apt-get install prometheus)")
    return path


def _run(promtool: str, *args: str) -> str:
    # From the rules' folder, as Prometheus resolves rule_files relative to the file naming them.
    done = subprocess.run([promtool, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def test_the_rules_are_valid(promtool: str) -> None:
    output = _run(promtool, "check", "rules", RULES.name)
    assert f"SUCCESS: {len(_rules())} rules found" in output


def test_the_rules_pass_their_unit_tests(promtool: str) -> None:
    _run(promtool, "test", "rules", RULE_TESTS.name)


@pytest.mark.parametrize("mode", MODES)
def test_the_prometheus_config_is_valid_with_its_rules(promtool: str, mode: str) -> None:
    output = _run(promtool, "check", "config", MODES[mode][1])
    assert "SUCCESS: 1 rule files found" in output
    assert f"SUCCESS: {len(_rules())} rules found" in output


def _volumes(compose_files: list[str]) -> dict[str, str]:
    """The prometheus service's bind mounts, container path -> host path, with later files overriding
    earlier ones for the same container path (as compose merges them)."""
    mounts: dict[str, str] = {}
    for name in compose_files:
        service = yaml.safe_load((REPO / name).read_text())["services"]["prometheus"]
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            mounts[target] = source
    return mounts


@pytest.mark.parametrize("mode", MODES)
def test_the_compose_stack_mounts_the_rules_where_the_config_loads_them(mode: str) -> None:
    compose_files, config_name = MODES[mode]
    config = yaml.safe_load((PROMETHEUS_DIR / config_name).read_text())
    assert config.get("rule_files"), f"{config_name} loads no rule files"

    base = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["prometheus"]
    flag = next(arg for arg in base["command"] if arg.startswith("--config.file="))
    config_in_container = PurePosixPath(flag.split("=", 1)[1])
    mounts = _volumes(compose_files)
    assert (REPO / mounts[str(config_in_container)]).resolve() == PROMETHEUS_DIR / config_name

    for rule_file in config["rule_files"]:
        # Relative rule_files paths are resolved against the config file's folder.
        in_container = config_in_container.parent / rule_file
        assert str(in_container) in mounts, f"{mode}: {in_container} is not mounted into Prometheus"
        assert (REPO / mounts[str(in_container)]).resolve() == RULES
        assert (PROMETHEUS_DIR / rule_file).resolve() == RULES  # promtool, run from the repo, sees it too


def test_every_metric_an_alert_reads_is_one_the_service_exposes() -> None:
    rules = _rules()
    expressions = [rule["expr"] for rule in rules]
    recorded = {rule["record"] for rule in rules if "record" in rule}
    exposition = generate_latest(Metrics().registry).decode()
    assert missing_metrics(expressions, exposition, PROMETHEUS_OWN | recorded) == set()
    # And the parsing found what the alerts are about (an empty set would pass the check above).
    read = set().union(*(metric_names(e) for e in expressions))
    assert {"service_requests_total", "service_request_duration_seconds_bucket", "service_batch_queue_depth",
            "service_model_load_failures_total", "up", QUEUE_LIMIT_RECORD, "service_prediction_drift",
            "service_rollout_rolled_back", "service_rollout_shadow_copies_total"} <= read


def test_the_drift_alert_fires_above_the_service_default_threshold() -> None:
    rule = next(rule for rule in _alerts() if rule["alert"] == "ServicePredictionDrift")
    value = re.search(r"service_prediction_drift\)\s*>\s*([0-9.]+)", rule["expr"])
    assert value is not None, rule["expr"]
    assert float(value.group(1)) == Settings.model_fields["drift_threshold"].default


def test_the_recorded_queue_limit_is_the_service_default() -> None:
    record = next(rule for rule in _rules() if rule.get("record") == QUEUE_LIMIT_RECORD)
    value = re.fullmatch(r"\s*vector\((\d+)\)\s*", record["expr"])
    assert value is not None, f"{QUEUE_LIMIT_RECORD} should be a constant, vector(N): {record['expr']!r}"
    assert int(value.group(1)) == Settings.model_fields["queue_limit"].default


def test_every_alert_has_a_severity_and_says_what_to_check() -> None:
    alerts = _alerts()
    assert len({alert["alert"] for alert in alerts}) == len(alerts), "alert names must be unique"
    for alert in alerts:
        assert alert.get("labels", {}).get("severity") in SEVERITIES, alert["alert"]
        annotations = alert.get("annotations", {})
        assert annotations.get("summary", "").strip(), alert["alert"]
        assert len(annotations.get("description", "")) > 100, f"{alert['alert']}: the description says what to check"


def test_every_rule_has_unit_tests_that_fire_and_that_do_not() -> None:
    suite = yaml.safe_load(RULE_TESTS.read_text())
    assert suite["rule_files"] == [RULES.name]
    cases = [case for test in suite["tests"] for case in test.get("alert_rule_test", [])]
    for alert in _alerts():
        name = alert["alert"]
        expected = [case["exp_alerts"] for case in cases if case["alertname"] == name]
        assert any(expected), f"{name}: no unit test where it fires"
        assert any(not alerts for alerts in expected), f"{name}: no unit test where it stays quiet"
    expressions = {case["expr"] for test in suite["tests"] for case in test.get("promql_expr_test", [])}
    for rule in _rules():
        if "record" in rule:
            assert rule["record"] in expressions, f"{rule['record']}: no unit test"


def test_the_dashboard_shows_the_alerts() -> None:
    alert_panels = [e for e in dashboard_expressions(DASHBOARD) if "ALERTS" in metric_names(e)]
    assert alert_panels, "no dashboard panel reads ALERTS"
    # Prometheus's ALERTS series has the alert's labels; a panel that filtered on $replica would hide
    # the request alerts, which sum over every replica.
    assert not [e for e in alert_panels if "$replica" in e]
