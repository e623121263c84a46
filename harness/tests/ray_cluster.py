"""A real Ray cluster on this machine for the tests: a head and one more worker node, loopback
only, each `ray start --block` in its own session, stopped (every process it started) at the
end whatever happened."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

OBJECT_STORE_BYTES = 80 * 1024 * 1024  # the smallest Ray accepts is 75 MiB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalCluster:
    root: Path  # short: Ray's socket paths must fit in 107 bytes
    port: int
    keys: dict[str, str] = field(default_factory=dict)
    nodes: list[subprocess.Popen] = field(default_factory=list)
    started_s: dict[str, float] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def node_dir(self, name: str) -> Path:
        return self.root / name

    def start_node(self, name: str, head: bool, cpus: int = 1):
        ray = str(Path(sys.executable).with_name("ray"))
        ports = free_port()
        argv = [ray, "start", "--block", "--node-ip-address", "127.0.0.1",
                f"--num-cpus={cpus}", "--num-gpus=0", f"--object-store-memory={OBJECT_STORE_BYTES}",
                "--disable-usage-stats", f"--min-worker-port={ports}",
                f"--max-worker-port={ports + 50}"]  # fmt: skip
        if head:
            argv += ["--head", f"--port={self.port}", "--include-dashboard=false",
                     f"--temp-dir={self.root / 'ray'}"]  # fmt: skip
        else:
            argv += [f"--address={self.address}"]
        env = dict(
            os.environ,
            **self.keys,  # a worker reads model keys from its own environment, as in production
            RAY_USAGE_STATS_ENABLED="0",
            EMBER_RAY_WORKER_DIR=str(self.node_dir(name)),
            RAY_DEDUP_LOGS="0",
        )
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115  (closed by the process)
        self.nodes.append(
            subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    def wait_nodes(self, count: int, timeout: float = 120.0):
        """Until `count` nodes are alive (asked through a short-lived driver process)."""
        probe = (
            "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR');"
            "print(sum(n['Alive'] for n in ray.nodes()))"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(n.poll() is not None for n in self.nodes):
                raise RuntimeError("a Ray node exited:\n" + self.logs())
            try:
                done = subprocess.run([sys.executable, "-c", probe, self.address],
                                      capture_output=True, text=True, timeout=30)  # fmt: skip
            except subprocess.TimeoutExpired:
                continue
            alive = done.stdout.strip()
            if done.returncode == 0 and alive.isdigit() and int(alive) >= count:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{count} Ray node(s) not up in {timeout}s:\n" + self.logs())

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-2000:] for p in sorted(self.root.glob("*.log"))
        )

    def stop(self):
        """SIGTERM each node's session, then SIGKILL whatever of ours is left: the processes
        in those sessions and any process whose command line names our temp dir."""
        for node in self.nodes:
            _signal_group(node.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for node in self.nodes:
            try:
                node.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for node in self.nodes:
            _signal_group(node.pid, signal.SIGKILL)
            node.wait()
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if str(self.root) in cmdline and proc.pid != os.getpid():
                try:
                    proc.kill()
                except psutil.Error:
                    pass
        shutil.rmtree(self.root, ignore_errors=True)


def _signal_group(pgid: int, sig: int):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start_cluster(workers: int = 1, keys: dict[str, str] | None = None) -> LocalCluster:
    root = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    cluster = LocalCluster(root, free_port(), keys or {})
    try:
        start = time.monotonic()
        cluster.start_node("head", head=True)
        for i in range(workers):  # `ray start --address` waits for the head's GCS to come up
            cluster.start_node(f"worker-{i}", head=False)
        cluster.wait_nodes(1 + workers)
        cluster.started_s["nodes"] = time.monotonic() - start
    except BaseException:
        cluster.stop()
        raise
    return cluster
