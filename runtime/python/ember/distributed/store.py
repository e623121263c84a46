"""TCPStore: the key-value store every rank meets at (torch.distributed.TCPStore's API, stdlib only).

One process hosts the server (the launcher on node 0, or a child process of rank 0: spawn_server);
every rank holds a client connection. Besides set/get/add/wait the server keeps track of ranks: a client that registered its
rank and whose connection closes without a clean goodbye is recorded as failed, and so is one that
reports an error. Blocking operations return early with StoreFailure when any rank has failed, so a
crash on one rank surfaces on the others within a poll interval instead of a timeout.

The same port also serves MPI's PMI-1 wire protocol (see _pmi.py) for the "mpi" backend.

Wire format: a frame is a 4-byte big-endian length and a payload; a payload is a list of fields,
each a 4-byte length and bytes. Requests start with the operation name; replies with b"ok",
b"timeout" or b"failed". Values are bytes; nothing is ever unpickled.
"""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from datetime import timedelta

__all__ = ["Store", "TCPStore", "StoreFailure", "StoreTimeout"]

FAILED_PREFIX = "__ember/failed/"
_POLL_S = 0.2  # how often a blocking server-side wait re-checks for failed ranks


class StoreTimeout(RuntimeError):
    """A blocking store operation ran past its timeout."""


class StoreFailure(RuntimeError):
    """Another rank failed (raised, crashed or exited) while this one waited on the store."""

    def __init__(self, failures: dict[int, str], what: str):
        self.failures = failures
        detail = "; ".join(f"rank {r}: {msg}" for r, msg in sorted(failures.items()))
        super().__init__(f"{what}: {detail}")


def _pack(fields) -> bytes:
    body = b"".join(struct.pack(">I", len(f)) + f for f in fields)
    return struct.pack(">I", len(body)) + body


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise ConnectionError("connection closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv_frame(sock: socket.socket) -> list[bytes]:
    (size,) = struct.unpack(">I", _recv_exact(sock, 4))
    body = _recv_exact(sock, size)
    fields, pos = [], 0
    while pos < size:
        (n,) = struct.unpack_from(">I", body, pos)
        fields.append(body[pos + 4:pos + 4 + n])
        pos += 4 + n
    return fields


def _seconds(timeout) -> float:
    if isinstance(timeout, timedelta):
        return timeout.total_seconds()
    return float(timeout)


# ---- server ---------------------------------------------------------------------------------------

class _Server:
    """The store's server: one thread accepts, one thread per connection serves it."""

    def __init__(self, host: str, port: int):
        self.data: dict[str, bytes] = {}
        self.cond = threading.Condition()
        self.pmi_jobs: dict = {}  # kvsname -> _pmi.Job, created on the first PMI handshake
        self.sock = socket.create_server((host, port), reuse_port=False, backlog=1024)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self.connections: set[socket.socket] = set()
        self.live_ranks: set[int] = set()  # ranks whose registered client connection is open
        self.ever_ranks: set[int] = set()  # ranks that registered at some point
        self.pmi_conns: dict[socket.socket, int] = {}  # MPI's PMI connections (open until that process exits)
        self.thread = threading.Thread(target=self._accept_loop, name="ember-store-server", daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="ember-store-conn", daemon=True).start()

    def failures(self) -> dict[int, str]:
        return {int(k[len(FAILED_PREFIX):]): v.decode(errors="replace")
                for k, v in self.data.items() if k.startswith(FAILED_PREFIX)}

    def mark_failed(self, rank: int, message: str) -> None:
        with self.cond:
            self.data.setdefault(f"{FAILED_PREFIX}{rank}", message.encode())
            self.cond.notify_all()

    def _wait_for(self, keys, timeout_s: float):
        """Blocks until every key exists; b"ok", b"timeout" or b"failed" (some rank failed)."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while True:
                if all(k in self.data for k in keys):
                    return b"ok"
                if self.failures():
                    return b"failed"
                left = deadline - time.monotonic()
                if left <= 0:
                    return b"timeout"
                self.cond.wait(min(left, _POLL_S))

    def _serve(self, conn: socket.socket):
        rank = None
        clean = False
        try:
            while True:
                try:
                    fields = _recv_frame(conn)
                except (ConnectionError, OSError, struct.error):
                    return
                op, args = fields[0].decode(), fields[1:]
                if op == "pmi":  # this connection now speaks PMI-1 for MPI_Init (see _pmi.py)
                    from ._pmi import serve_pmi
                    conn.sendall(_pack([b"ok"]))
                    self.pmi_conns[conn] = int(args[1])
                    try:
                        serve_pmi(self, conn, args)
                    finally:
                        self.pmi_conns.pop(conn, None)
                    return
                if op == "hello":
                    rank = int(args[0])
                    self.live_ranks.add(rank)
                    self.ever_ranks.add(rank)
                    reply = [b"ok"]
                elif op == "bye":
                    clean = True
                    reply = [b"ok"]
                else:
                    reply = self._handle(op, args)
                conn.sendall(_pack(reply))
        finally:
            self.connections.discard(conn)
            if rank is not None:
                self.live_ranks.discard(rank)
            conn.close()
            if rank is not None and not clean and not self.closed:
                self.mark_failed(rank, "exited or lost its connection to the store without "
                                       "destroy_process_group() (crashed or killed?)")

    def _handle(self, op: str, args: list[bytes]) -> list[bytes]:
        cond = self.cond
        if op == "set":
            with cond:
                self.data[args[0].decode()] = args[1]
                cond.notify_all()
            return [b"ok"]
        if op == "get":
            key = args[0].decode()
            status = self._wait_for([key], float(args[1]))
            with cond:
                return [status, self.data[key]] if status == b"ok" else [status] + self._failure_fields()
        if op == "add":
            key = args[0].decode()
            with cond:
                value = int(self.data.get(key, b"0")) + int(args[1])
                self.data[key] = str(value).encode()
                cond.notify_all()
            return [b"ok", str(value).encode()]
        if op == "compare_set":
            key = args[0].decode()
            with cond:
                current = self.data.get(key)
                if (current is None and args[1] == b"") or current == args[1]:
                    self.data[key] = args[2]
                    cond.notify_all()
                    return [b"ok", args[2]]
                return [b"ok", current if current is not None else args[1]]
        if op == "wait":
            keys = [a.decode() for a in args[1:]]
            status = self._wait_for(keys, float(args[0]))
            return [status] + (self._failure_fields() if status != b"ok" else [])
        if op == "check":
            with cond:
                return [b"ok", b"1" if all(a.decode() in self.data for a in args) else b"0"]
        if op == "delete":
            with cond:
                return [b"ok", b"1" if self.data.pop(args[0].decode(), None) is not None else b"0"]
        if op == "num_keys":
            with cond:
                return [b"ok", str(len(self.data)).encode()]
        if op == "failures":
            with cond:
                return [b"ok"] + self._failure_fields()
        return [b"error", f"unknown store operation {op!r}".encode()]

    def _failure_fields(self) -> list[bytes]:
        out = []
        for r, msg in sorted(self.failures().items()):
            out += [str(r).encode(), msg.encode()]
        return out

    def close(self, wait_for_ranks_s: float = 0.0, own_rank: int | None = None):
        """Stops serving. First waits (up to wait_for_ranks_s) for the other ranks to leave: their store
        clients (so they can still read failures and say goodbye) and their MPI processes (MPICH keeps
        the PMI connection until exit and crashed in its exit handler when the host vanished first)."""
        deadline = time.monotonic() + wait_for_ranks_s
        while time.monotonic() < deadline and (self.live_ranks - {own_rank} or
                                               set(self.pmi_conns.values()) - {own_rank}):
            time.sleep(0.05)
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
        for c in list(self.connections):
            if c in self.pmi_conns:  # this process's own MPI still holds it: left to the exit
                continue
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def start_server(host: str, port: int) -> _Server:
    """Hosts a store at host:port (port 0: a free one, see .port). RuntimeError naming the address
    when the port is taken."""
    try:
        return _Server(host, port)
    except OSError as e:
        raise RuntimeError(f"[distributed] could not host the rendezvous store at {host}:{port}: {e} "
                           "(another job on this port? pick another MASTER_PORT)") from e


def spawn_server(host: str, port: int, world_size: int, timeout_s: float) -> int:
    """Hosts a store in a child process (`python -m ember.distributed._store_process`); returns its port.

    Note [Store in a child process]: rank 0 could serve the store from a thread, but MPICH finalizes its
    PMI connection in a C exit handler, after the interpreter (and every Python thread) is gone: the
    host rank then waited forever on its own dead server. The child outlives the ranks: it exits once
    every rank has come and gone, or when its parent died and nobody is connected any more.
    """
    cmd = [sys.executable, "-m", "ember.distributed._store_process", host, str(port), str(world_size), str(os.getpid()),
           repr(timeout_s)]
    # Its own session and no inherited stdin/stderr: it must not hold a caller's pipes open past the job.
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    line = proc.stdout.readline().strip()
    proc.stdout.close()
    if not line.startswith("ready "):
        proc.wait()
        raise RuntimeError(line or f"[distributed] the store process exited with code {proc.returncode}")
    return int(line.split()[1])


def serve_until_everyone_left(host: str, port: int, world_size: int, parent: int, timeout_s: float) -> None:
    try:
        server = start_server(host, port)
    except RuntimeError as e:
        print(str(e), flush=True)
        sys.exit(1)
    print(f"ready {server.port}", flush=True)
    start = idle_since = time.monotonic()
    while True:
        time.sleep(0.2)
        now = time.monotonic()
        if server.live_ranks or server.pmi_conns:
            idle_since = now
            continue
        parent_alive = os.getppid() == parent  # reparented once rank 0 exits (even while a zombie)
        if len(server.ever_ranks) >= world_size and now - idle_since > 1.0:
            break  # every rank came and left
        if not parent_alive and now - idle_since > 10.0:
            break  # the job is gone
        if not server.ever_ranks and now - start > timeout_s:
            break  # nobody came
    server.close()



# ---- client ---------------------------------------------------------------------------------------

class Store:
    """Base class (torch.distributed.Store)."""


def _encode(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _failures_from(fields: list[bytes]) -> dict[int, str]:
    return {int(fields[i]): fields[i + 1].decode(errors="replace") for i in range(0, len(fields) - 1, 2)}


class TCPStore(Store):
    """Client of the store at host:port, and its host when is_master=True (torch's TCPStore).

    `rank` registers this client for failure tracking (see the module docstring).
    """

    def __init__(self, host_name: str, port: int, world_size: int | None = None, is_master: bool = False,
                 timeout=timedelta(seconds=300), wait_for_workers: bool = False, rank: int | None = None):
        self.host = host_name
        self.timeout_s = _seconds(timeout)
        self.world_size = world_size
        self._server = start_server("" if host_name in ("0.0.0.0", "") else host_name, port) if is_master else None
        self.port = self._server.port if self._server else port
        self._lock = threading.Lock()
        self._sock = self._connect()
        self.rank = rank
        if rank is not None:
            self._call("hello", str(rank).encode())
        if is_master and wait_for_workers and world_size:
            self.wait([f"__ember/joined/{r}" for r in range(world_size)])

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + self.timeout_s
        delay = 0.01
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=min(10.0, self.timeout_s))
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(None)
                return sock
            except OSError as e:
                if time.monotonic() + delay > deadline:
                    raise StoreTimeout(f"[distributed] could not reach the rendezvous store at {self.host}:{self.port} "
                                       f"within {self.timeout_s:.0f}s ({e}); is MASTER_ADDR/MASTER_PORT right and "
                                       "is rank 0 (or the launcher) running?") from e
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _call(self, op: str, *fields: bytes, wait_s: float | None = None) -> list[bytes]:
        with self._lock:
            try:
                self._sock.settimeout(None if wait_s is None else wait_s + 30.0)
                self._sock.sendall(_pack([op.encode(), *fields]))
                reply = _recv_frame(self._sock)
            except (ConnectionError, OSError, struct.error) as e:
                raise ConnectionError(f"[distributed] lost the connection to the rendezvous store at "
                                      f"{self.host}:{self.port} ({e}); the process hosting it (rank 0 or the "
                                      "launcher) has probably exited") from e
        if reply[0] == b"error":
            raise RuntimeError(reply[1].decode())
        return reply

    def _blocking(self, what: str, status: bytes, rest: list[bytes], timeout_s: float):
        if status == b"failed":
            raise StoreFailure(_failures_from(rest), f"[distributed] {what}: another rank failed")
        if status == b"timeout":
            raise StoreTimeout(f"[distributed] {what} timed out after {timeout_s:.1f}s")

    # torch.distributed.Store's methods
    def set(self, key: str, value) -> None:
        self._call("set", key.encode(), _encode(value))

    def get(self, key: str, timeout=None) -> bytes:
        t = self.timeout_s if timeout is None else _seconds(timeout)
        reply = self._call("get", key.encode(), repr(t).encode(), wait_s=t)
        self._blocking(f"get({key!r})", reply[0], reply[1:], t)
        return reply[1]

    def add(self, key: str, amount: int) -> int:
        return int(self._call("add", key.encode(), str(int(amount)).encode())[1])

    def compare_set(self, key: str, expected_value, desired_value) -> bytes:
        return self._call("compare_set", key.encode(), _encode(expected_value), _encode(desired_value))[1]

    def wait(self, keys, timeout=None) -> None:
        t = self.timeout_s if timeout is None else _seconds(timeout)
        reply = self._call("wait", repr(t).encode(), *[k.encode() for k in keys], wait_s=t)
        self._blocking(f"wait({list(keys)})", reply[0], reply[1:], t)

    def check(self, keys) -> bool:
        return self._call("check", *[k.encode() for k in keys])[1] == b"1"

    def delete_key(self, key: str) -> bool:
        return self._call("delete", key.encode())[1] == b"1"

    def num_keys(self) -> int:
        return int(self._call("num_keys")[1])

    def set_timeout(self, timeout) -> None:
        self.timeout_s = _seconds(timeout)

    @property
    def timeout(self) -> timedelta:
        return timedelta(seconds=self.timeout_s)

    # ember's failure tracking
    def failures(self) -> dict[int, str]:
        """{rank: message} of every rank that failed so far."""
        return _failures_from(self._call("failures")[1:])

    def report_failure(self, rank: int, message: str) -> None:
        self._call("set", f"{FAILED_PREFIX}{rank}".encode(), message.encode())

    def close(self, clean: bool = True) -> None:
        """Says goodbye (clean=True: not a failure) and closes the connection."""
        try:
            if clean and self.rank is not None:
                self._call("bye")
            self._sock.close()
        except (ConnectionError, OSError):
            pass

    def clone(self) -> "TCPStore":
        """A second connection to the same store (for a watchdog thread); not registered as a rank."""
        return TCPStore(self.host, self.port, timeout=timedelta(seconds=self.timeout_s))

    @property
    def server(self):
        return self._server

