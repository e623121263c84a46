"""ember.distributed on 2 CPU processes (MPI backend), started by ember's launcher or by hand.

Each scenario of workers.py runs once per module (a launch costs seconds); the tests assert on the
checks every rank recorded (see workers.py for what each check compares against numpy).
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest

WORKERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers.py")
WORLD = 2
# The ranks import the same ember as this process (the in-tree package first, like conftest.py).
_PKG = os.path.abspath(os.path.join(os.path.dirname(WORKERS), "..", "..", "..", "python"))
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([_PKG] + [p for p in [os.environ.get("PYTHONPATH")] if p]))


def launch(scenario: str, out_dir, *extra, nproc: int = WORLD, timeout: float = 180, env=None):
    cmd = [sys.executable, "-m", "ember.distributed.run", "--nproc-per-node", str(nproc), "--master-port", "0",
           WORKERS, scenario, str(out_dir), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**ENV, **(env or {})})


def load_checks(out_dir, scenario: str) -> list[dict]:
    checks = []
    for rank in range(WORLD):
        path = os.path.join(out_dir, f"{scenario}.{rank}.json")
        assert os.path.exists(path), f"rank {rank} wrote no results for {scenario}"
        with open(path) as f:
            checks += [dict(c, rank=rank) for c in json.load(f)["checks"]]
    return checks


@pytest.fixture(scope="module")
def collective_checks(tmp_path_factory):
    out = tmp_path_factory.mktemp("collectives")
    proc = launch("collectives", out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return load_checks(out, "collectives")


@pytest.fixture(scope="module")
def ddp_checks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    proc = launch("ddp", out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return load_checks(out, "ddp")


def assert_all_ok(checks: list[dict], prefix: str, at_least: int) -> None:
    mine = [c for c in checks if c["name"].startswith(prefix)]
    assert len(mine) >= at_least * WORLD, f"only {len(mine)} {prefix} checks ran"
    failed = [f"rank {c['rank']} {c['name']}: {c['detail']}" for c in mine if not c["ok"]]
    assert not failed, "\n".join(failed[:5]) + (f"\n... {len(failed)} failed" if len(failed) > 5 else "")


@pytest.mark.parametrize("prefix,at_least", [
    ("all_reduce/", 9 * 5 * 5), ("broadcast/", 9 * 4 * 2), ("all_gather/", 16), ("reduce_scatter/", 33),
    ("non_contiguous", 1), ("async_handles", 1), ("bad_arguments", 1), ("subgroups", 1), ("info", 1)])
def test_collectives_match_numpy(collective_checks, prefix, at_least):
    assert_all_ok(collective_checks, prefix, at_least)


@pytest.mark.parametrize("prefix", ["ddp_equivalence/float64", "ddp_equivalence/float32", "ddp_no_sync/float64",
                                    "ddp_no_sync/float32", "ddp_find_unused_parameters",
                                    "ddp_unused_without_flag_raises", "ddp_buffers_broadcast"])
def test_ddp(ddp_checks, prefix):
    assert_all_ok(ddp_checks, prefix, 1)


# ---- failures: ranks started by hand (no launcher to kill the others) ---------------------------

def _kill(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def free_port() -> int:
    """A free port below Linux's ephemeral range (32768+), so no outgoing connection takes it meanwhile."""
    rng = random.Random()
    for _ in range(100):
        port = rng.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32000")


@pytest.mark.parametrize("mode,victim,timeout", [("raise1", 1, 60), ("raise0", 0, 60), ("hang1", 1, 3)])
def test_failing_rank_does_not_hang_the_others(tmp_path, mode, victim, timeout):
    port = free_port()
    procs = []
    for rank in range(WORLD):
        env = dict(ENV, RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   TEST_DIST_TIMEOUT=str(timeout), OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, WORKERS, f"failure_{mode}", str(tmp_path)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    survivor = 1 - victim
    try:
        procs[survivor].wait(timeout=timeout + 30)
    finally:
        _kill(procs)
    with open(tmp_path / f"failure_{mode}.{survivor}.json") as f:
        outcome = json.load(f)
    error = outcome["error"]
    assert error is not None, "the surviving rank's all_reduce returned normally"
    assert f"rank {survivor}" in error, error
    if mode.startswith("raise"):
        assert outcome["type"] == "DistBackendError" and f"rank {victim}" in error and "ValueError" in error, error
        assert outcome["elapsed"] < 10, f"took {outcome['elapsed']:.1f}s to notice the failure"
    else:
        assert outcome["type"] == "DistTimeoutError" and "timed out" in error, error
        assert timeout <= outcome["elapsed"] < timeout + 5
    assert procs[survivor].returncode == 0, procs[survivor].stderr.read()[-2000:]


# ---- the launcher --------------------------------------------------------------------------------

def test_launcher_sets_torchrun_env(tmp_path):
    proc = launch("env", tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    seen = [json.load(open(tmp_path / f"env.{r}.json")) for r in range(WORLD)]
    ports = {e["MASTER_PORT"] for e in seen}
    assert len(ports) == 1 and int(ports.pop()) > 0
    for r, e in enumerate(seen):
        assert e["RANK"] == str(r) and e["LOCAL_RANK"] == str(r) and e["GROUP_RANK"] == "0"
        assert e["WORLD_SIZE"] == str(WORLD) and e["LOCAL_WORLD_SIZE"] == str(WORLD)
        assert e["MASTER_ADDR"] == "127.0.0.1"


def test_launcher_exit_code_of_failing_rank_and_kills_the_others(tmp_path):
    t0 = time.monotonic()
    proc = launch("env", tmp_path, "3", timeout=60)  # rank 1 exits 3, rank 0 sleeps 60 s
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert time.monotonic() - t0 < 30, "the launcher waited for the sleeping rank"
    assert "rank 1" in proc.stderr and "exit code 3" in proc.stderr, proc.stderr


def test_launcher_forwards_sigterm(tmp_path):
    cmd = [sys.executable, "-m", "ember.distributed.run", "--nproc-per-node", str(WORLD), "--master-port", "0",
           WORKERS, "signal", str(tmp_path)]
    launcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready.{r}").exists() for r in range(WORLD)):
            assert time.monotonic() < deadline and launcher.poll() is None, "ranks did not start"
            time.sleep(0.05)
        launcher.send_signal(signal.SIGTERM)
        rc = launcher.wait(timeout=30)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert rc == 128 + signal.SIGTERM
    assert all((tmp_path / f"sigterm.{r}").exists() for r in range(WORLD)), "a rank did not receive SIGTERM"


def test_launcher_rejects_bad_node_rank():
    proc = subprocess.run([sys.executable, "-m", "ember.distributed.run", "--nnodes", "2", "--node-rank", "2",
                           WORKERS, "env", "."], capture_output=True, text=True, timeout=60, env=ENV)
    assert proc.returncode == 2 and "--node-rank 2" in proc.stderr


def test_tcp_init_method(tmp_path):
    port = free_port()
    procs = [subprocess.Popen([sys.executable, WORKERS, "smoke", str(tmp_path), f"tcp://127.0.0.1:{port}"],
                              env=dict(ENV, RANK=str(r), WORLD_SIZE=str(WORLD), OMP_NUM_THREADS="1"),
                              stderr=subprocess.PIPE, text=True) for r in range(WORLD)]
    try:
        for p in procs:
            assert p.wait(timeout=120) == 0, p.stderr.read()[-2000:]
    finally:
        _kill(procs)
    for r in range(WORLD):
        assert json.load(open(tmp_path / f"smoke.{r}.json"))["sum"] == [3.0] * 3


def test_launcher_two_nodes_on_one_machine(tmp_path):
    """--nnodes 2: node 0's launcher hosts the store, node 1's ranks join it (ranks 1 per node here)."""
    port = free_port()
    launchers = [subprocess.Popen([sys.executable, "-m", "ember.distributed.run", "--nnodes", "2", "--node-rank",
                                   str(node), "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port",
                                   str(port), WORKERS, "smoke", str(tmp_path)], env=ENV, stderr=subprocess.PIPE,
                                  text=True) for node in (1, 0)]  # node 1 first: it must wait for node 0's store
    try:
        for p in launchers:
            assert p.wait(timeout=120) == 0, p.stderr.read()[-2000:]
    finally:
        _kill(launchers)
    for r in range(WORLD):
        seen = json.load(open(tmp_path / f"smoke.{r}.json"))
        assert seen["sum"] == [3.0] * 3 and seen["world"] == 2 and seen["group_rank"] == str(r)


def test_rendezvous_timeout_names_the_missing_rank(tmp_path):
    """Rank 1 never starts: rank 0's init_process_group fails after its timeout, naming rank 1."""
    code = ("import ember.distributed as dist, sys\n"
            "try:\n"
            "    dist.init_process_group('mpi', timeout=2)\n"
            "except dist.DistTimeoutError as e:\n"
            "    print(e); sys.exit(7)\n")
    env = dict(ENV, RANK="0", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 7, proc.stderr[-2000:]
    assert "rank 0" in proc.stdout and "ranks [1] did not reach 'init'" in proc.stdout, proc.stdout
    assert time.monotonic() - t0 < 30
