"""A real two-node Ray cluster on loopback (head 127.0.0.2, worker 127.0.0.3) and the service on it.

Every node is a `ray start --block` process in a session of its own, so that tearing down kills
exactly the processes this module started (by session id), never another user's Ray on the same
machine, as `ray stop --force` would. Every port is one that no address of the machine uses (Ray
listens on every address: a port free on 127.0.0.3 but taken on 127.0.0.1 keeps the worker from joining).

The ingress is chosen when the nodes start (`proxy`, service.ray_serve's --proxy): HAProxy by default,
or Ray Serve's classic Python proxy; the deployment's driver is told the same.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.server import free_port, free_ports, supervised
from service.ray_serve import ingress_environment

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).parent / "ray")
HEAD_IP, WORKER_IP, PROXY_HOST = "127.0.0.2", "127.0.0.3", "127.0.0.1"


def cluster_environment(temp_dir: Path, proxy: str = "haproxy") -> dict[str, str]:
    """The environment of every Ray process (and so of every replica), for the ingress `proxy`."""
    # HAProxy's statistics and metrics listeners get free ports (on loopback): never Ray's fixed defaults.
    return os.environ | ingress_environment(proxy, {}) | {
        "RAY_USAGE_STATS_ENABLED": "0",
        # Token authentication with a token of this cluster's own, handed to every process here
        # rather than read from (or written to) ~/.ray, which another cluster may have changed.
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_TMPDIR": str(temp_dir),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # Replicas import this checkout's `service`, whatever the virtual environment has installed.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        # The autoscaler's inputs every half second instead of every 10 s, so that scaling can be
        # tested in seconds; the decisions and delays themselves are the deployment's options.
        "RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "0.5",
        "RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S": "0.5",
        # One proxy (on the head) for the whole cluster: let it balance over every replica instead of
        # filling the head's own replicas first (docs/deploy/ray.md: one proxy or one per node).
        "RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING": "0",
    }


WORKERS_PER_NODE = 200  # ports for a node's worker processes
NODE_PORT_FLAGS = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                   "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")


def _worker_ports_low(nodes: int) -> int:
    """The first of `nodes` ranges of worker ports, one after the other, below the ephemeral range.

    free_ports() hands out ports from the kernel's ephemeral range, so the workers' ranges never meet
    them (Ray refuses to start when they do); nor each other: workers listen on every address.
    """
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return random.randrange(max(10000, ephemeral_low - 12000), ephemeral_low - nodes * WORKERS_PER_NODE - 200)


def _node_ports(workers_low: int, *flags: str) -> dict[str, int]:
    """A free port for each of `flags` and for every listener of a node, and the node's worker range."""
    flags = (*flags, *NODE_PORT_FLAGS)
    ports = dict(zip(flags, free_ports(len(flags)), strict=True))
    return ports | {"--min-worker-port": workers_low, "--max-worker-port": workers_low + WORKERS_PER_NODE - 1}


def session_processes(session_id: int) -> list[int]:
    """The processes of a session (every process a node started, however deep), by /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session_id:  # after the name: state, ppid, pgrp, session
            found.append(int(entry.name))
    return found


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_title(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()


@dataclass
class Node:
    ip: str
    process: subprocess.Popen[bytes]
    log: Path

    def processes(self) -> list[int]:
        return session_processes(self.process.pid)

    def replica_pids(self) -> list[int]:
        return self._pids(lambda title: title.startswith("ray::ServeReplica:"))

    def haproxy_pids(self) -> list[int]:
        return self._pids(lambda title: Path(title.split(" ", 1)[0]).name == "haproxy")

    def _pids(self, wanted: Callable[[str], bool]) -> list[int]:
        pids = []
        for pid in self.processes():
            try:
                if wanted(process_title(pid)):
                    pids.append(pid)
            except OSError:
                continue
        return pids


@dataclass
class Cluster:
    address: str
    temp_dir: Path
    env: dict[str, str]
    nodes: list[Node] = field(default_factory=list)
    proxy: str = "haproxy"


def _wait_for_nodes(cluster: Cluster, count: int, timeout_s: float) -> None:
    """Until `count` nodes are alive; a node that ended or never joined is reported with its log's end."""
    deadline = time.monotonic() + timeout_s
    script = (f"import ray; ray.init(address={cluster.address!r}, _node_ip_address={HEAD_IP!r}, log_to_driver=False); "
              "print(sum(1 for n in ray.nodes() if n['Alive']))")
    while True:
        result = subprocess.run([sys.executable, "-c", script], env=cluster.env, capture_output=True, text=True,
                                timeout=max(5.0, deadline - time.monotonic()))
        if result.returncode == 0 and result.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        ended = [node for node in cluster.nodes if node.process.poll() is not None]
        if ended or time.monotonic() > deadline:
            logs = "\n".join(f"--- {node.log} ({'ended' if node in ended else 'running'}):\n"
                              + node.log.read_text(errors="replace")[-3000:] for node in cluster.nodes)
            raise TimeoutError(f"the cluster did not reach {count} nodes: {result.stdout}{result.stderr}\n{logs}")
        time.sleep(1)


def _stop(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM a node (it stops what it started), then SIGKILL whatever of its session is left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while session_processes(process.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    kill_session(process)


def kill_session(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL every process left in `process`'s session, and `process` itself; wait for it."""
    for pid in session_processes(process.pid):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()
    process.wait()


@contextmanager
def two_node_cluster(temp_dir: Path, logs: Path, cpus_per_node: int = 2, proxy: str = "haproxy") -> Iterator[Cluster]:
    """A head on 127.0.0.2 and a worker on 127.0.0.3, each claiming `cpus_per_node` CPUs, serving
    through `proxy` (haproxy or classic); torn down after."""
    env = cluster_environment(temp_dir, proxy)
    workers_low = _worker_ports_low(2)
    head_ports = _node_ports(workers_low, "--port", "--ray-client-server-port", "--dashboard-port")
    cluster = Cluster(f"{HEAD_IP}:{head_ports['--port']}", temp_dir, env, proxy=proxy)
    common = ["--block", "--disable-usage-stats", f"--num-cpus={cpus_per_node}", "--object-store-memory=100000000"]
    head = [RAY, "start", "--head", f"--node-ip-address={HEAD_IP}", f"--temp-dir={temp_dir}",
            "--include-dashboard=false", f"--dashboard-host={HEAD_IP}"]
    worker = [RAY, "start", f"--address={cluster.address}", f"--node-ip-address={WORKER_IP}"]
    with ExitStack() as stack:
        for ip, command in ((HEAD_IP, head), (WORKER_IP, worker)):
            # The worker's ports are chosen once the head listens, so that they cannot be the head's.
            ports = head_ports if ip == HEAD_IP else _node_ports(workers_low + WORKERS_PER_NODE)
            command += [*common, *(f"{flag}={port}" for flag, port in ports.items())]
            log = logs / f"ray-node-{ip}.log"
            with open(log, "wb") as output:
                process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT,
                                           start_new_session=True)
            cluster.nodes.append(Node(ip, process, log))
            stack.callback(_stop, process, 30)
            _wait_for_nodes(cluster, len(cluster.nodes), 90)
        yield cluster


@dataclass
class Deployment:
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def served(cluster: Cluster, log_path: Path, settings: dict[str, str], flags: list[str],
           start_timeout_s: float = 180) -> Iterator[Deployment]:
    """`python -m service.ray_serve --address ...` on the cluster: deployed, serving, then shut down."""
    port = free_port()
    env = cluster.env | settings
    # Under HAProxy every replica listens on the ingress's address too, and the head's HAProxy reaches
    # the worker's replicas at 127.0.0.3: only every interface serves both nodes (docs/deploy/ray.md).
    host = "0.0.0.0" if cluster.proxy == "haproxy" else PROXY_HOST
    command = [sys.executable, "-m", "service.ray_serve", "--address", cluster.address, "--node-ip", HEAD_IP,
               "--host", host, "--port", str(port), "--proxy", cluster.proxy,
               "--start-timeout-s", str(start_timeout_s), *flags]
    # service.ray_serve waits for the deployment itself (--start-timeout-s); the margin covers its start.
    with supervised("service.ray_serve", command, cwd=REPO, env=env, log_path=log_path,
                    ready_url=f"http://{PROXY_HOST}:{port}/readyz", start_timeout_s=start_timeout_s + 30,
                    stop_timeout_s=60) as process:
        yield Deployment(f"http://{PROXY_HOST}:{port}", process)
