"""The "nccl" backend: collectives on CUDA tensors through NCCL (loaded at run time, cuda/nccl.cpp).

Note [NCCL streams]
Each group has a side stream per device. A collective makes the side stream wait for the caller's
current stream (its inputs are ready), runs there, records the tensors on that stream for the
caching allocator, and records an event. Work.wait() makes the current stream wait for that event:
the host never blocks, and compute queued meanwhile (DDP's backward) overlaps the communication.
The same event edges make a step with collectives capturable in a CUDA graph (NCCL >= 2.9.6).

Note [NCCL watchdog]
NCCL kernels waiting for a dead peer never finish. A daemon thread per group watches the pending
collectives' events, NCCL's asynchronous error and the store's failed ranks; past the timeout or on a
failure it aborts the communicator (which releases the stuck kernels), reports this rank as failed
and, like torch's default TORCH_NCCL_ASYNC_ERROR_HANDLING, ends the process with exit code 1 after
printing why (EMBER_NCCL_ASYNC_ERROR_HANDLING=0 keeps the process: the next collective raises).
"""
from __future__ import annotations

import os
import sys
import threading
import time

import ember

from ._work import DistBackendError, ReduceOp, Work

_nccl = getattr(ember._C._cuda, "_nccl", None)  # None: an extension built before NCCL support
_PRELOADED = False
_OPS = {ReduceOp.SUM: 0, ReduceOp.PRODUCT: 1, ReduceOp.MAX: 2, ReduceOp.MIN: 3, ReduceOp.AVG: 4}


def available() -> bool:
    if _nccl is None or not ember.cuda.is_available():
        return False
    _preload_nccl()  # before the first load attempt: the C++ side remembers its outcome
    return bool(_nccl.is_available())


def unavailable_reason() -> str:
    if not ember.cuda.is_available():
        return "no CUDA GPU is available"
    if _nccl is None:
        return "this ember extension was built without NCCL support; rebuild it"
    return _nccl.load_error() or "NCCL is not available"


def _preload_nccl() -> None:
    """Makes the nvidia-nccl wheel's library (a torch install brings one) findable by soname."""
    import ctypes
    import glob
    global _PRELOADED
    if _PRELOADED or os.environ.get("EMBER_NCCL_PATH"):
        return
    _PRELOADED = True
    try:
        import nvidia
    except ImportError:
        return
    for root in list(nvidia.__path__):
        for path in sorted(glob.glob(os.path.join(root, "*", "lib", "libnccl.so*"))):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                return
            except OSError:
                continue


class NCCLWork(Work):
    def __init__(self, backend: "NCCLBackend", event, what: str, outputs, started: float):
        super().__init__(outputs)
        self.backend = backend
        self.event = event
        self.what = what
        self.started = started

    def _test(self) -> bool:
        if self.backend.error:
            raise DistBackendError(self.backend.error)
        if self.event.query():
            self._finish()
            return True
        return False

    def _wait(self, timeout_s):
        if self.backend.error:
            raise DistBackendError(self.backend.error)
        self.event.wait(ember.cuda.current_stream(self.backend.device))  # the host does not block


class NCCLBackend:
    """One process group's NCCL communicator on one device (created at its first CUDA collective)."""

    name = "nccl"

    def __init__(self, store, prefix: str, rank: int, ranks: list[int], timeout_s: float, device: int):
        if not available():
            raise RuntimeError(f"[distributed] the 'nccl' backend is unavailable: {unavailable_reason()}")
        self.store = store
        self.rank = rank
        self.ranks = ranks
        self.size = len(ranks)
        self.timeout_s = timeout_s
        self.device = device
        self.error: str | None = None
        key = f"{prefix}nccl_unique_id"
        if rank == 0:
            store.set(key, _nccl.unique_id())
        uid = store.get(key, timeout=timeout_s)
        with ember.cuda.device(device):
            self.comm = _nccl.Communicator(uid, self.size, rank, device)
            self.stream = ember.cuda.Stream(device)
        self.pending: list[NCCLWork] = []
        self.lock = threading.Lock()
        self.closed = False
        self.watchdog = threading.Thread(target=self._watch, name=f"ember-nccl-watchdog-{prefix}", daemon=True)
        self.watchdog.start()

    # ---- Note [NCCL streams] ----
    def _run(self, what: str, tensors, outputs, launch) -> Work:
        if self.error:
            raise DistBackendError(self.error)
        for t in tensors:
            if t.device.type != "cuda" or t.device.index != self.device:
                raise ValueError(f"[distributed.{what}] this group's NCCL communicator is on cuda:{self.device}, got a "
                                 f"tensor on {t.device} (one device per rank: ember.cuda.set_device(local_rank))")
        current = ember.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        launch(self.stream.cuda_stream)
        for t in tensors:
            t.record_stream(self.stream)
        event = ember.cuda.Event()
        event.record(self.stream)
        work = NCCLWork(self, event, what, outputs, time.monotonic())
        if not ember.cuda.is_current_stream_capturing():  # captured events can't be queried (watchdog)
            with self.lock:
                self.pending.append(work)
        return work

    @staticmethod
    def _staged(work: Work, output, out) -> Work:
        """Copies a contiguous staging output back into a strided `output` once the work is waited for."""
        if not output.is_contiguous():
            work.then(lambda: output.detach().copy_(out.view(tuple(output.shape))))
        return work

    def all_gather_into_tensor(self, output, input) -> Work:
        out = output.detach() if output.is_contiguous() else output.detach().contiguous()
        inp = input.detach().contiguous()
        work = self._run("all_gather", [out, inp], [output], lambda s: self.comm.all_gather(inp, out, s))
        return self._staged(work, output, out)

    def reduce_scatter_tensor(self, output, input, op: ReduceOp) -> Work:
        if op == ReduceOp.AVG and not input.dtype.is_floating_point:
            raise TypeError(f"[distributed.reduce_scatter] ReduceOp.AVG needs a floating dtype, got {input.dtype}")
        out = output.detach() if output.is_contiguous() else output.detach().contiguous()
        inp = input.detach().contiguous()
        work = self._run("reduce_scatter", [out, inp], [output],
                         lambda s: self.comm.reduce_scatter(inp, out, _OPS[op], s))
        return self._staged(work, output, out)

    def barrier(self) -> Work:
        # torch's NCCL barrier: an all_reduce of one element on this rank's device.
        one = ember.ones((1,), device=f"cuda:{self.device}")
        return self._run("barrier", [one], [], lambda s: self.comm.all_reduce(one, one, 0, s))

    # ---- Note [NCCL watchdog] ----
    def _watch(self) -> None:
        watch_store = None
        while not self.closed:
            time.sleep(0.5)
            with self.lock:
                self.pending = [w for w in self.pending if not w.event.query()]
                oldest = min((w.started for w in self.pending), default=None)
            problem = self.comm.async_error() if self.comm.valid else ""
            if not problem and oldest is not None and time.monotonic() - oldest > self.timeout_s:
                problem = f"a collective did not finish within the timeout of {self.timeout_s:.0f}s"
            if not problem and self.pending:
                if watch_store is None:
                    watch_store = self.store.clone()
                failed = {r: m for r, m in watch_store.failures().items() if r in self.ranks and r != self.store.rank}
                if failed:
                    problem = "peer failed: " + "; ".join(f"rank {r}: {m}" for r, m in sorted(failed.items()))
            if problem:
                self._fail(problem, watch_store)
                return

    def _fail(self, problem: str, watch_store) -> None:
        self.error = (f"[distributed] NCCL on rank {self.store.rank} (cuda:{self.device}): {problem}; "
                      "communicator aborted")
        self.comm.abort()
        try:
            (watch_store or self.store.clone()).report_failure(self.store.rank, self.error)
        except (ConnectionError, OSError, RuntimeError):
            pass
        if os.environ.get("EMBER_NCCL_ASYNC_ERROR_HANDLING", "1") != "0":
            print(self.error + "; exiting (EMBER_NCCL_ASYNC_ERROR_HANDLING=0 keeps the process)", file=sys.stderr,
                  flush=True)
            os._exit(1)

    def shutdown(self) -> None:
        self.closed = True
        if self.comm.valid:
            if self.error:
                self.comm.abort()
            else:
                ember.cuda.synchronize(self.device)
                self.comm.destroy()
