"""The launcher: `python -m ember.distributed.run --nproc-per-node N script.py args` (torchrun's flags).

Starts N ranks on this node with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK,
MASTER_ADDR and MASTER_PORT set, hosts the rendezvous store on node 0 (so a failing rank 0 does not
take it down), forwards SIGINT/SIGTERM/SIGHUP to the ranks, and when a rank fails terminates the
others and exits with the failing rank's exit code (128 + signal for a rank killed by a signal).

Several nodes: run it once per node with the same --nnodes, --master-addr (node 0's address, reachable
from every node) and --master-port, and --node-rank 0..nnodes-1; see docs/distributed.md.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from .store import start_server

_GRACE_S = 5.0  # after SIGTERM, how long ranks get before SIGKILL
_REMOTE_GRACE_S = 60.0  # how long node 0 keeps the store up for other nodes' ranks after its own exited


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ember.distributed.run",
                                description="Launch one process per rank (torchrun-compatible flags).")
    p.add_argument("--nproc-per-node", "--nproc_per_node", default="1",
                   help="ranks on this node: a number, 'gpu' (one per CUDA device) or 'cpu' (one per core)")
    p.add_argument("--nnodes", type=int, default=1)
    p.add_argument("--node-rank", "--node_rank", type=int, default=0)
    p.add_argument("--master-addr", "--master_addr", default="127.0.0.1",
                   help="address of node 0, reachable from every node (default 127.0.0.1: one node)")
    p.add_argument("--master-port", "--master_port", type=int, default=29500,
                   help="port of the rendezvous store on node 0 (0: any free port, single node only)")
    p.add_argument("--standalone", action="store_true", help="one node, a free port (like torchrun --standalone)")
    p.add_argument("--no-python", "--no_python", action="store_true", help="run `script` as an executable")
    p.add_argument("-m", "--module", action="store_true", help="run `script` as a module (python -m script)")
    p.add_argument("script", help="the training script (or module with -m, program with --no-python)")
    p.add_argument("script_args", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if args.standalone:
        args.nnodes, args.node_rank, args.master_addr, args.master_port = 1, 0, "127.0.0.1", 0
    if args.nnodes < 1 or not 0 <= args.node_rank < args.nnodes:
        p.error(f"--node-rank {args.node_rank} must lie in [0, --nnodes={args.nnodes})")
    if args.master_port == 0 and args.nnodes > 1:
        p.error("--master-port 0 (a free port) only works on one node: the other nodes must know the port")
    return args


def _nproc(value: str) -> int:
    if value == "gpu":
        from ember import cuda
        n = cuda.device_count()
        if n == 0:
            raise SystemExit("ember.distributed.run: --nproc-per-node gpu but no CUDA device is visible")
        return n
    if value in ("cpu", "auto"):
        return os.cpu_count() or 1
    n = int(value)
    if n < 1:
        raise SystemExit(f"ember.distributed.run: --nproc-per-node must be >= 1, got {n}")
    return n


def _command(args) -> list[str]:
    if args.no_python:
        return [args.script, *args.script_args]
    if args.module:
        return [sys.executable, "-u", "-m", args.script, *args.script_args]
    return [sys.executable, "-u", args.script, *args.script_args]


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def main(argv=None) -> int:
    args = parse_args(argv)
    nproc = _nproc(args.nproc_per_node)
    world_size = args.nnodes * nproc
    server = None
    port = args.master_port
    if args.node_rank == 0:
        bind = "" if args.nnodes > 1 else args.master_addr
        server = start_server(bind, port)
        port = server.port
    base_env = dict(os.environ)
    base_env.update(MASTER_ADDR=args.master_addr, MASTER_PORT=str(port), WORLD_SIZE=str(world_size),
                    LOCAL_WORLD_SIZE=str(nproc), GROUP_RANK=str(args.node_rank), NODE_RANK=str(args.node_rank),
                    EMBER_DISTRIBUTED_LAUNCHED="1", EMBER_DISTRIBUTED_AGENT_STORE="1")
    if nproc > 1 and "OMP_NUM_THREADS" not in os.environ:
        # Like torchrun: N ranks each with one OpenMP thread per core would oversubscribe the node.
        base_env["OMP_NUM_THREADS"] = "1"
        print(f"ember.distributed.run: OMP_NUM_THREADS=1 for each of the {nproc} ranks (set it to tune)",
              file=sys.stderr, flush=True)
    procs: list[tuple[int, subprocess.Popen]] = []
    for local_rank in range(nproc):
        rank = args.node_rank * nproc + local_rank
        env = dict(base_env, RANK=str(rank), LOCAL_RANK=str(local_rank))
        procs.append((rank, subprocess.Popen(_command(args), env=env, start_new_session=True)))

    forwarded = []

    def forward(signum, _frame):
        forwarded.append(signum)
        for _, proc in procs:
            if proc.poll() is None:
                _signal_group(proc, signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)

    failed = None  # (rank, returncode) of the first rank that failed
    try:
        while True:
            running = False
            for rank, proc in procs:
                rc = proc.poll()
                if rc is None:
                    running = True
                elif rc != 0 and failed is None:
                    failed = (rank, rc)
            if failed is not None or not running:
                break
            time.sleep(0.05)
        if forwarded:  # the ranks were told to stop: report the signal, not their exit codes
            _terminate([p for _, p in procs])
            return 128 + forwarded[0]
        if failed is not None:
            rank, rc = failed
            what = f"signal {-rc}" if rc < 0 else f"exit code {rc}"
            print(f"ember.distributed.run: rank {rank} (local rank {rank - args.node_rank * nproc}) failed with "
                  f"{what}; terminating the other ranks", file=sys.stderr, flush=True)
            _terminate([p for _, p in procs])
            return _exit_code(rc)
        return 0
    finally:
        _terminate([p for _, p in procs])
        if server is not None:
            # Other nodes' ranks may still be finishing: they read failures from the store, and MPICH
            # talks to its PMI server from its exit handler (it crashed when the server vanished first).
            server.close(wait_for_ranks_s=_REMOTE_GRACE_S if args.nnodes > 1 else 0.0)


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _terminate(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to every live rank's process group, SIGKILL to those still alive after the grace time."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        _signal_group(p, signal.SIGTERM)
    deadline = time.monotonic() + _GRACE_S
    for p in live:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(p, signal.SIGKILL)
            p.wait()


if __name__ == "__main__":
    sys.exit(main())
