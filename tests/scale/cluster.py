"""A real two-node Ray cluster on loopback (head 127.0.0.2, worker 127.0.0.3) and the service on it.

Every node is a `ray start --block` process in a session of its own, so that tearing down kills
exactly the processes this module started (by session id), never another user's Ray on the same
machine, as `ray stop --force` would. Every port is a free one on the node's own address.

The ingress is chosen when the nodes start (`proxy`, service.ray_serve's --proxy): HAProxy by default,
or Ray Serve's classic Python proxy; the deployment's driver is told the same.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.server import supervised
from service.ray_serve import ingress_environment

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).parent / "ray")
HEAD_IP, WORKER_IP, PROXY_HOST = "127.0.0.2", "127.0.0.3", "127.0.0.1"


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


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


def _node_ports(ip: str) -> list[str]:
    """Every port a node listens on: free ones on its own address, and a range for its workers."""
    # free_port() hands out ports from the kernel's ephemeral range; the workers' range lies below
    # it, so that the two can never overlap (Ray refuses to start when they do).
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    low = random.randrange(max(10000, ephemeral_low - 12000), ephemeral_low - 400)
    flags = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port"]
    ports = [f"{flag}={free_port(ip)}" for flag in flags]
    return [*ports, f"--min-worker-port={low}", f"--max-worker-port={low + 200}"]


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
    deadline = time.monotonic() + timeout_s
    script = (f"import ray; ray.init(address={cluster.address!r}, _node_ip_address={HEAD_IP!r}, log_to_driver=False); "
              "print(sum(1 for n in ray.nodes() if n['Alive']))")
    while True:
        result = subprocess.run([sys.executable, "-c", script], env=cluster.env, capture_output=True, text=True,
                                timeout=max(5.0, deadline - time.monotonic()))
        if result.returncode == 0 and result.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the cluster did not reach {count} nodes: {result.stdout}{result.stderr}")
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
    head_port = free_port(HEAD_IP)
    cluster = Cluster(f"{HEAD_IP}:{head_port}", temp_dir, env, proxy=proxy)
    common = ["--block", "--disable-usage-stats", f"--num-cpus={cpus_per_node}", "--object-store-memory=100000000"]
    with ExitStack() as stack:
        head_cmd = [RAY, "start", "--head", f"--node-ip-address={HEAD_IP}", f"--port={head_port}",
                    f"--temp-dir={temp_dir}", f"--ray-client-server-port={free_port(HEAD_IP)}",
                    "--include-dashboard=false", f"--dashboard-host={HEAD_IP}",
                    f"--dashboard-port={free_port(HEAD_IP)}",
                    *common, *_node_ports(HEAD_IP)]
        worker_cmd = [RAY, "start", f"--address={cluster.address}", f"--node-ip-address={WORKER_IP}",
                      *common, *_node_ports(WORKER_IP)]
        for ip, command in ((HEAD_IP, head_cmd), (WORKER_IP, worker_cmd)):
            log = stack.enter_context(open(logs / f"ray-node-{ip}.log", "wb"))
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            node = Node(ip, process)
            cluster.nodes.append(node)
            stack.callback(_stop, process, 30)
            if ip == HEAD_IP:
                _wait_for_nodes(cluster, 1, 90)
        _wait_for_nodes(cluster, 2, 90)
        yield cluster


@dataclass
class Deployment:
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def served(cluster: Cluster, log_path: Path, settings: dict[str, str], flags: list[str],
           start_timeout_s: float = 180) -> Iterator[Deployment]:
    """`python -m service.ray_serve --address ...` on the cluster: deployed, serving, then shut down."""
    port = free_port(PROXY_HOST)
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
