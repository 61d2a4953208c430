"""The deployment's config files agree with the service and with each other (fast: no engine needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from service.core.metrics import Metrics
from service.core.tracing import exporters_from
from service.settings import Settings
from tests.deploy.promql import dashboard_expressions, metric_names, missing_metrics

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "service.json"
PROMETHEUS_OWN = {"up", "ALERTS"}  # Prometheus writes ALERTS for its own alert rules


def _compose(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _replicas(compose: dict) -> list[str]:
    return sorted(name for name in compose["services"] if re.fullmatch(r"service-\d+", name))


def test_every_dashboard_metric_is_one_the_service_exposes() -> None:
    expressions = dashboard_expressions(DASHBOARD)
    exposition = generate_latest(Metrics().registry).decode()
    assert missing_metrics(expressions, exposition, PROMETHEUS_OWN) == set()


def test_the_dashboard_covers_traffic_latency_batching_and_versions() -> None:
    used = set().union(*(metric_names(e) for e in dashboard_expressions(DASHBOARD)))
    for family in ("service_requests_total", "service_request_duration_seconds_bucket", "service_batch_size_bucket",
                   "service_batch_queue_wait_seconds_bucket", "service_batch_queue_depth",
                   "service_model_inference_seconds_bucket", "service_model_version_loaded",
                   "service_prediction_drift", "service_predictions_total", "service_prediction_confidence_bucket",
                   "service_input_text_length_chars_bucket", "service_input_image_width_pixels_bucket",
                   "service_input_image_height_pixels_bucket"):
        assert family in used
    text = DASHBOARD.read_text()
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le, route) (rate(service_request_duration" in text


def test_the_dashboard_uses_the_provisioned_data_source() -> None:
    provisioned = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uids = {source["uid"] for source in provisioned["datasources"]}
    assert set(re.findall(r'"uid": "([^"]+)"', DASHBOARD.read_text())) - {"model-serving"} <= uids


def test_compose_passes_every_service_setting_through() -> None:
    compose = _compose(REPO / "docker-compose.yml")
    wanted = {f"SERVICE_{name.upper()}" for name in Settings.model_fields}
    for replica in _replicas(compose):
        assert wanted <= set(compose["services"][replica]["environment"]), replica


def test_the_load_balancer_and_the_service_share_the_body_limit() -> None:
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    size = re.search(r"client_max_body_size\s+(\d+)([kmg]?);", conf)
    assert size is not None
    limit = int(size.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[size.group(2)]
    assert limit == Settings.model_fields["max_body_bytes"].default


@pytest.mark.parametrize(
    ("compose_files", "upstreams", "prometheus"),
    [
        (["docker-compose.yml"], "upstreams.conf", "prometheus.yml"),
        (["docker-compose.yml", "deploy/docker-compose.host.yml"], "upstreams.host.conf", "prometheus.host.yml"),
    ],
    ids=["bridge", "host"],
)
def test_the_load_balancer_and_prometheus_know_every_replica(
    compose_files: list[str], upstreams: str, prometheus: str
) -> None:
    base = _compose(REPO / compose_files[0])
    override = _compose(REPO / compose_files[-1]) if len(compose_files) > 1 else {"services": {}}
    replicas = _replicas(base)
    assert len(replicas) >= 2
    if len(compose_files) == 1:
        expected = {f"{name}:8000" for name in replicas}
    else:
        expected = {f"127.0.0.1:{override['services'][name]['environment']['SERVICE_PORT']}" for name in replicas}
        assert len(expected) == len(replicas), "each replica needs its own port on the host network"
    servers = set(re.findall(r"^\s*server\s+(\S+)", (DEPLOY / "nginx" / upstreams).read_text(), re.MULTILINE))
    assert servers == expected
    config = yaml.safe_load((DEPLOY / "prometheus" / prometheus).read_text())
    job = next(job for job in config["scrape_configs"] if job["job_name"] == "service")
    targets = {target for group in job["static_configs"] for target in group["targets"]}
    assert targets == expected
    labels = {group["labels"]["replica"] for group in job["static_configs"]}
    assert labels == set(replicas)


def test_the_tracing_profile_sends_spans_to_jaeger_and_tracing_is_off_unless_asked() -> None:
    compose = _compose(REPO / "docker-compose.yml")
    jaeger = compose["services"]["jaeger"]
    assert jaeger["profiles"] == ["tracing"], "Jaeger starts only with --profile tracing"
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    for replica in _replicas(compose):
        variables = compose["services"][replica]["environment"]
        defaults = {}
        for name, value in variables.items():
            if name.startswith("OTEL_"):
                default = re.fullmatch(r"\$\{" + name + r":-(.*)\}", str(value))
                assert default is not None, f"{replica}: {name} should be passed through with a default"
                defaults[name] = default.group(1)
        assert exporters_from(defaults) == [], "the stack traces nothing unless OTEL_TRACES_EXPORTER is set"
        assert exporters_from(defaults | {"OTEL_TRACES_EXPORTER": "otlp"}) == ["otlp"]
        assert defaults["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"  # Jaeger's OTLP/HTTP receiver
    host = _compose(DEPLOY / "docker-compose.host.yml")
    for replica in _replicas(compose):
        endpoint = host["services"][replica]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert endpoint.endswith(":-http://127.0.0.1:4318}"), endpoint
    published = _compose(REPO / "docker-compose.override.yml")["services"]["jaeger"]["ports"]
    assert all(port.startswith("127.0.0.1:") for port in published), "Jaeger's UI is for this machine only"
    # The image carries the exporter, so the profile needs no other build.
    assert re.search(r"^ARG EXTRAS=otel,openvino$", (REPO / "Dockerfile").read_text(), re.MULTILINE)


def test_every_replica_shares_one_writable_rollouts_volume_the_image_prepares() -> None:
    compose = _compose(REPO / "docker-compose.yml")
    folders = set()
    for replica in _replicas(compose):
        service = compose["services"][replica]
        folder = service["environment"]["SERVICE_ROLLOUT_DIR"]
        assert folder != service["environment"]["SERVICE_ARTIFACTS_DIR"], "the models stay baked in, apart"
        # A named volume (declared below), read-write: the replicas write their rollbacks into it too.
        assert f"rollouts:{folder}" in service["volumes"], replica
        folders.add(folder)
    assert len(folders) == 1 and "rollouts" in compose["volumes"]
    (folder,) = folders
    # A fresh named volume takes the owner of the image's folder at its mount point: the service's user.
    dockerfile = (REPO / "Dockerfile").read_text()
    user = re.search(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert user is not None
    uid = re.search(rf"useradd --user-group --uid (\d+) .* {user.group(1)} ", dockerfile)
    assert uid is not None
    assert re.search(rf" install -d -o {uid.group(1)} -g {uid.group(1)} -m 0755 {folder}$", dockerfile, re.MULTILINE)
    # The other compose files change where the models come from, never where the policies are.
    for overlay in ("docker-compose.host.yml", "docker-compose.models.yml"):
        for replica, service in _compose(DEPLOY / overlay)["services"].items():
            assert "SERVICE_ROLLOUT_DIR" not in service.get("environment", {}), (overlay, replica)
            assert not [v for v in service.get("volumes", []) if f":{folder}" in v], (overlay, replica)
