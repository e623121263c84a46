"""A PMI-1 server, so MPICH-family MPI libraries start from ember's rendezvous instead of mpiexec.

MPI_Init needs a process manager: it learns its rank and size, and exchanges network addresses with
the other ranks through the manager's key-value space (KVS) and barrier. mpiexec (hydra) plays that
role through the PMI-1 wire protocol; here the rendezvous store does. Each rank opens a connection
to the store, sends a handshake frame ("pmi", kvsname, rank, size, host) and then hands the socket
to MPI as PMI_FD (with PMI_RANK and PMI_SIZE in the environment). The protocol is the one the Flux
RFC 13 documents: newline-terminated "cmd=... key=value" requests answered in lock step.

Failure handling: a barrier or a PMI_process_mapping lookup that cannot complete because a rank
dropped its connection, or ran past the store timeout, is answered with rc=-1, so MPI_Init fails with
an error instead of hanging.
"""
from __future__ import annotations

import socket
import threading
import time

_MAX_KVSNAME, _MAX_KEY, _MAX_VALUE = 256, 256, 4096
_DEFAULT_TIMEOUT_S = 300.0


class Job:
    """The KVS, barrier and node map of one MPI world (one kvsname)."""

    def __init__(self, size: int, timeout_s: float):
        self.size = size
        self.timeout_s = timeout_s
        self.kvs: dict[str, str] = {}
        self.hosts: dict[int, str] = {}
        self.barrier: list[socket.socket] = []
        self.dead: set[int] = set()
        self.cond = threading.Condition()

    def process_mapping(self) -> str:
        """PMI_process_mapping: runs of consecutive ranks on one node as (node, 1, ranks) blocks."""
        node_ids: dict[str, int] = {}
        blocks: list[list[int]] = []
        for r in range(self.size):
            node = node_ids.setdefault(self.hosts[r], len(node_ids))
            if blocks and blocks[-1][0] == node:
                blocks[-1][2] += 1
            else:
                blocks.append([node, 1, 1])
        return "(vector," + ",".join(f"({a},{b},{c})" for a, b, c in blocks) + ")"


def _parse(line: str) -> dict[str, str]:
    out = {}
    for token in line.split(" "):
        if "=" in token:
            k, v = token.split("=", 1)
            out[k] = v
    return out


def serve_pmi(server, conn: socket.socket, handshake: list[bytes]) -> None:
    """Serves one rank's PMI connection until it finalizes or disconnects (store thread)."""
    kvsname, rank, size, host = handshake[0].decode(), int(handshake[1]), int(handshake[2]), handshake[3].decode()
    timeout_s = float(handshake[4]) if len(handshake) > 4 else _DEFAULT_TIMEOUT_S
    with server.cond:
        job = server.pmi_jobs.get(kvsname)
        if job is None:
            job = server.pmi_jobs[kvsname] = Job(size, timeout_s)
    with job.cond:
        job.hosts[rank] = host
        job.cond.notify_all()

    def send(text: str) -> None:
        conn.sendall((text + "\n").encode())

    reader = conn.makefile("rb")
    finalized = False
    try:
        while True:
            raw = reader.readline()
            if not raw:
                return
            req = _parse(raw.decode(errors="replace").strip())
            cmd = req.get("cmd", req.get("mcmd", ""))
            if cmd == "init":
                send("cmd=response_to_init pmi_version=1 pmi_subversion=1 rc=0")
            elif cmd == "get_maxes":
                send(f"cmd=maxes kvsname_max={_MAX_KVSNAME} keylen_max={_MAX_KEY} vallen_max={_MAX_VALUE} rc=0")
            elif cmd == "get_appnum":
                send("cmd=appnum appnum=0 rc=0")
            elif cmd == "get_my_kvsname":
                send(f"cmd=my_kvsname kvsname={kvsname} rc=0")
            elif cmd == "get_universe_size":
                send(f"cmd=universe_size size={size} rc=0")
            elif cmd == "put":
                with job.cond:
                    job.kvs[req.get("key", "")] = req.get("value", "")
                send("cmd=put_result rc=0")
            elif cmd == "get":
                send(_get(job, req.get("key", "")))
            elif cmd == "barrier_in":
                _barrier(job, conn)
            elif cmd == "finalize":
                send("cmd=finalize_ack rc=0")
                finalized = True
                return
            elif cmd == "abort":
                server.mark_failed(rank, f"MPI aborted: {req.get('message', '')} "
                                         f"(exit code {req.get('exitcode', '?')})")
                return
            else:
                send(f"cmd={cmd}_result rc=-1 msg=unsupported_by_ember_pmi")
    except (ConnectionError, OSError):
        return
    finally:
        if not finalized:  # a rank gone mid-protocol: waiting barriers fail instead of hanging
            with job.cond:
                job.dead.add(rank)
                job.cond.notify_all()


def _get(job: Job, key: str) -> str:
    if key == "PMI_process_mapping":
        deadline = time.monotonic() + job.timeout_s
        with job.cond:
            while len(job.hosts) < job.size:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "cmd=get_result rc=-1 msg=not_all_ranks_connected"
                job.cond.wait(min(left, 0.5))
            return f"cmd=get_result rc=0 value={job.process_mapping()}"
    with job.cond:
        if key in job.kvs:
            return f"cmd=get_result rc=0 value={job.kvs[key]}"
    return "cmd=get_result rc=-1 msg=key_not_found"


def _barrier(job: Job, conn: socket.socket) -> None:
    """Answers every rank once all `size` ranks entered; rc=-1 to the waiting ones if a rank died."""
    deadline = time.monotonic() + job.timeout_s
    with job.cond:
        job.barrier.append(conn)
        if len(job.barrier) == job.size:
            for c in job.barrier:
                c.sendall(b"cmd=barrier_out rc=0\n")
            job.barrier.clear()
            job.cond.notify_all()
            return
        generation = job.barrier
        while job.barrier is generation and conn in job.barrier:
            if job.dead or time.monotonic() > deadline:
                for c in job.barrier:
                    try:
                        c.sendall(b"cmd=barrier_out rc=-1\n")
                    except OSError:
                        pass
                job.barrier = []
                return
            job.cond.wait(0.5)
