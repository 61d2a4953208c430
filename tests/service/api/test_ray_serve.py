"""service.ray_serve without a cluster: options, what Ray is told, the replica headers, the health check.

The real thing (two nodes, scaling, a killed replica, hot reload) is tests/scale (make test-scale).
"""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.app import create_app
from service.settings import Settings
from tests.required_tools import missing_tool

try:
    from service import ray_serve
except ImportError:  # ray is an optional extra
    ray_serve = None

pytestmark = pytest.mark.slow  # importing Ray alone takes seconds


@pytest.fixture
def rs() -> Any:
    if ray_serve is None:
        missing_tool("ray is not installed: make deps")
    return ray_serve


def test_ray_options_are_derived_from_the_services_settings(rs: Any) -> None:
    options = rs.ServeOptions(settings={"SERVICE_ARTIFACTS_DIR": "/models", "SERVICE_MAX_BATCH_SIZE": "16",
                                        "SERVICE_QUEUE_LIMIT": "100", "SERVICE_SHUTDOWN_GRACE_S": "20"},
                              min_replicas=2, max_replicas=5, num_cpus=1.5)
    ray = rs.deployment_options(options, options.service_settings())
    assert ray["autoscaling_config"]["target_ongoing_requests"] == 16  # one full batch per replica
    assert ray["autoscaling_config"]["min_replicas"] == 2 and ray["autoscaling_config"]["max_replicas"] == 5
    assert ray["max_ongoing_requests"] == 100 and ray["max_queued_requests"] == 100  # the queue limit
    assert ray["graceful_shutdown_timeout_s"] > 20
    # Ray's own refusal (its router's or, under HAProxy, the replica's queue full) answers as the service does.
    assert (ray["backpressure_config"].status_code, ray["backpressure_config"].retry_after_s) == (503, 1)
    assert ray["ray_actor_options"] == {"num_cpus": 1.5}
    # The app writes the access line; Ray's would be a second one per request, so it is off unless asked for.
    assert ray["logging_config"] == {"enable_access_log": False, "log_level": "INFO"}
    with_rays = rs.ServeOptions(settings={"SERVICE_ARTIFACTS_DIR": "/m", "SERVICE_LOG_LEVEL": "debug"},
                                ray_access_log=True)
    assert rs.deployment_options(with_rays, with_rays.service_settings())["logging_config"] == {
        "enable_access_log": True, "log_level": "DEBUG"}
    environment = rs.replica_environment(options)
    # TensorFlow's pools follow the replica's 2 CPUs (rounded up), not the node's cores.
    assert (environment["TF_NUM_INTRAOP_THREADS"], environment["TF_NUM_INTEROP_THREADS"]) == ("1", "2")
    assert environment["SERVICE_MAX_BATCH_SIZE"] == "16"
    explicit = rs.ServeOptions(settings={"SERVICE_ARTIFACTS_DIR": "/models"}, target_ongoing_requests=4,
                               max_ongoing_requests=8)
    ray = rs.deployment_options(explicit, explicit.service_settings())
    assert ray["autoscaling_config"]["target_ongoing_requests"] == 4 and ray["max_ongoing_requests"] == 8


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"settings": {"SERVICE_ARTIFACTS_DIR": "models"}}, "must be an absolute path"),
        ({"settings": {}}, "must be an absolute path"),
        ({"settings": {"SERVICE_ARTIFACTS_DIR": "/m", "SERVICE_ROLLOUT_DIR": "rollouts"}},
         "settings.SERVICE_ROLLOUT_DIR must be an absolute path"),
        ({"settings": {"SERVICE_ARTIFACTS_DIR": "/m", "SERVICE_MAX_BATCHSIZE": "8"}}, "unknown settings"),
        ({"settings": {"SERVICE_ARTIFACTS_DIR": "/m"}, "min_replicas": 3, "max_replicas": 2}, "min (3) <= initial"),
        ({"settings": {"SERVICE_ARTIFACTS_DIR": "/m"}, "replicas": 2}, "Extra inputs"),
    ],
)
def test_bad_options_are_refused_with_a_message_naming_them(rs: Any, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        rs.ServeOptions.model_validate(options)


def test_bad_service_settings_fail_the_build_not_the_replicas(rs: Any) -> None:
    with pytest.raises(ValidationError, match="max_batch_size"):
        rs.app_builder({"settings": {"SERVICE_ARTIFACTS_DIR": "/m", "SERVICE_MAX_BATCH_SIZE": "0"}})
    rs.app_builder({"settings": {"SERVICE_ARTIFACTS_DIR": "/m", "SERVICE_MAX_BATCH_SIZE": 8}})  # YAML numbers


def test_the_cli_passes_this_process_settings_with_absolute_folders(
    rs: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = rs._settings_from_environment({"SERVICE_ARTIFACTS_DIR": "models", "SERVICE_PORT": "9000",
                                              "SERVICE_HOST": "0.0.0.0", "SERVICE_LOG_LEVEL": "debug", "HOME": "/",
                                              "SERVICE_ROLLOUT_DIR": "rollouts", "SERVICE_PAYLOAD_LOG_DIR": ""})
    assert settings == {"SERVICE_ARTIFACTS_DIR": str(tmp_path / "models"), "SERVICE_LOG_LEVEL": "debug",
                        "SERVICE_ROLLOUT_DIR": str(tmp_path / "rollouts"), "SERVICE_PAYLOAD_LOG_DIR": ""}


def test_answers_name_the_replica_and_carry_one_request_id(rs: Any, artifacts_dir: Path) -> None:
    app = create_app(Settings(artifacts_dir=artifacts_dir, default_sentiment_model="tiny-text", reload_interval_s=0))
    app.add_middleware(rs.ReplicaHeaders, replica="abc123", node="127.0.0.3")
    with TestClient(app) as client:
        response = client.post("/sentiment", json={"text": "good"})
        assert response.status_code == 200
        assert response.headers["x-replica"] == "abc123" and response.headers["x-replica-node"] == "127.0.0.3"
        # Ray's proxy adds X-Request-ID to every answer itself; the replica does not send a second one.
        assert "x-request-id" not in response.headers


def test_a_replica_writes_the_services_log_lines_to_its_stderr_at_the_services_level(
    rs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = logging.getLogger("service")
    for name in ("handlers", "propagate", "level"):  # restored after the test
        monkeypatch.setattr(service, name, getattr(service, name))
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "__stderr__", stderr)  # the process's own stderr, which Ray keeps in a file
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # what Ray's throughput-optimised mode redirects
    rs.log_to_replica_log("info")
    logging.getLogger("service.access").info("request_id=%s status=%d", "abc", 200)
    logging.getLogger("service.core.registry").debug("below the level")
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith(" INFO service.access request_id=abc status=200")
    assert sys.stderr.getvalue() == ""


def test_the_health_check_is_the_registrys_readiness(rs: Any, artifacts_dir: Path) -> None:
    replica = object.__new__(rs.ServiceReplica)  # the constructor needs a Ray replica context
    replica._app = create_app(Settings(artifacts_dir=artifacts_dir, default_sentiment_model="tiny-text",
                                       reload_interval_s=0))
    with pytest.raises(RuntimeError, match="not ready"):
        replica.check_health()  # models not loaded yet
    with TestClient(replica._app):
        replica.check_health()
        replica._app.state.registry.begin_draining()
        with pytest.raises(RuntimeError, match="not ready"):
            replica.check_health()


def test_the_haproxy_ingress_is_switched_on_with_free_loopback_ports_unless_classic(rs: Any) -> None:
    haproxy = rs.ingress_environment("haproxy", {})
    assert haproxy["RAY_SERVE_ENABLE_HA_PROXY"] == "1" and haproxy["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
    assert Path(haproxy["HAPROXY_WRAPPED_BINARY"]).is_file()
    assert haproxy["RAY_SERVE_HAPROXY_STATS_PORT"] != "8404"  # Ray's fixed default, not free
    # Ports already chosen (by the node, for the driver) are kept, so that both agree.
    again = rs.ingress_environment("haproxy", haproxy)
    assert again == haproxy
    # A shell that exported the HAProxy variables still gets the classic proxy when asked.
    assert rs.ingress_environment("classic", haproxy) == {"RAY_SERVE_ENABLE_HA_PROXY": "0",
                                                           "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0"}
    with pytest.raises(ValueError, match="unknown proxy 'nginx'"):
        rs.ingress_environment("nginx", {})


def test_haproxys_statistics_and_metrics_listeners_are_moved_to_loopback(rs: Any, tmp_path: Path) -> None:
    # The binds as Ray 2.60's template writes them; the serving frontend's address is left alone.
    config = tmp_path / "haproxy.cfg"
    config.write_text("frontend prometheus\n    bind :9101\nfrontend http_frontend\n    bind 0.0.0.0:8000\n"
                      "listen stats\n  bind *:8404\n  stats enable\n")
    ran = subprocess.run([str(rs.HAPROXY_LOOPBACK), "-db", "-f", str(config), "-dR"], capture_output=True, text=True,
                         env={"HAPROXY_WRAPPED_BINARY": "/bin/echo", "PATH": "/usr/bin:/bin"}, check=True)
    assert ran.stdout.split() == ["-db", "-f", str(config), "-dR"]  # HAProxy gets its arguments unchanged
    assert config.read_text().split("\n")[1::2][:3] == ["    bind 127.0.0.1:9101", "    bind 0.0.0.0:8000",
                                                        "  bind 127.0.0.1:8404"]
