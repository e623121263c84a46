"""The "mpi" backend: collectives on CPU tensors through MPI (mpi4py over MPICH, from PyPI).

Note [MPI without mpiexec]
Ranks started by ember's launcher (or by hand with env://) have no MPI process manager. MPI_Init
gets one from the rendezvous store, which speaks PMI-1 (_pmi.py): each rank connects, hands the
socket to MPI as PMI_FD, and MPI exchanges its addresses through the store. MPI_Init runs through
ctypes so the GIL is released (the store's server may be a thread of this very process).
MPI can be initialized once per process: a later init_process_group must reuse the same world.

Note [Collectives that cannot hang]
Every collective is MPI's nonblocking variant (Iallreduce, Ibcast, ...) polled with Test until it
completes, a peer is reported failed by the store, or the group's timeout passes; the last two raise
DistBackendError naming the ranks involved, and the group is unusable afterwards.

Note [PMI fd]
MPI gets a duplicate of the PMI socket numbered 512 or above: with the low-numbered original, MPICH's
finalize found it closed under it ("PMIU_write error ... Bad file descriptor"); something in its
shutdown closes low descriptors it believes it owns.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import time
import uuid

import numpy as np

import ember

from ._work import DistBackendError, DistTimeoutError, ReduceOp, Work
from .store import _pack, _recv_frame

_MPI = None          # the mpi4py.MPI module once imported
_WORLD = None        # (rank, size) of the MPI world this process joined
_PMI_SOCKET = None   # the PMI connection's socket, kept open while MPI runs
_FINALIZE_OK = True  # False after a failed/aborted collective: MPI_Finalize could hang


def available() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def _import_mpi():
    global _MPI
    if _MPI is None:
        try:
            import mpi4py
        except ImportError as e:
            raise RuntimeError("[distributed] the 'mpi' backend needs mpi4py and an MPI library: "
                               "pip install mpi4py mpich") from e
        mpi4py.rc.initialize = False  # ember initializes MPI itself (Note [MPI without mpiexec])
        mpi4py.rc.finalize = False
        from mpi4py import MPI
        _MPI = MPI
    return _MPI


def _libmpi() -> ctypes.CDLL:
    """The MPI library mpi4py loaded (its path from the process's memory map)."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "/libmpi" in line and ".so" in line}
    for path in sorted(paths):
        if os.path.basename(path).startswith("libmpi.so") or os.path.basename(path).startswith("libmpi_"):
            return ctypes.CDLL(path)
    raise RuntimeError(f"[distributed] could not find the MPI library mpi4py loaded (saw {sorted(paths)})")


def init_world(store, rank: int, size: int, timeout_s: float) -> None:
    """Joins (or checks) this process's MPI world through the store's PMI server."""
    global _WORLD, _PMI_SOCKET
    MPI = _import_mpi()
    if _WORLD is not None:
        if _WORLD != (rank, size):
            raise RuntimeError(f"[distributed.init_process_group] MPI can be initialized once per process: this "
                               f"process joined an MPI world as rank {_WORLD[0]} of {_WORLD[1]}, now asked to be "
                               f"rank {rank} of {size}")
        return
    if MPI.Is_initialized():
        raise RuntimeError("[distributed.init_process_group] MPI was initialized outside ember (mpiexec or "
                           "mpi4py); start the ranks with `python -m ember.distributed.run` instead")
    # One KVS name per MPI world: MPICH names its shared-memory segments after it.
    key = "__ember/mpi/kvsname"
    if rank == 0:
        store.set(key, f"ember-{uuid.uuid4().hex[:16]}")
    kvsname = store.get(key, timeout=timeout_s).decode()
    sock = socket.create_connection((store.host, store.port), timeout=timeout_s)
    sock.sendall(_pack([b"pmi", kvsname.encode(), str(rank).encode(), str(size).encode(),
                        socket.gethostname().encode(), repr(timeout_s).encode()]))
    if _recv_frame(sock)[0] != b"ok":
        raise RuntimeError("[distributed.init_process_group] the store refused the PMI handshake")
    sock.settimeout(None)
    _PMI_SOCKET = sock
    pmi_fd = fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD, 512)  # a high copy: see Note [PMI fd]
    os.environ.update(PMI_FD=str(pmi_fd), PMI_RANK=str(rank), PMI_SIZE=str(size))
    # MPICH's UCX netmod fails to exchange addresses on some hosts (and crashes at finalize); OFI works.
    os.environ.setdefault("MPIR_CVAR_CH4_NETMOD", "ofi")
    provided = ctypes.c_int(0)
    # SERIALIZED: MPI is called from one thread at a time (the caller's, or autograd's during backward).
    rc = _libmpi().MPI_Init_thread(None, None, ctypes.c_int(MPI.THREAD_SERIALIZED), ctypes.byref(provided))
    if rc != 0:
        raise RuntimeError(f"[distributed.init_process_group] MPI_Init_thread failed with code {rc} on rank {rank}")
    world = MPI.COMM_WORLD
    if (world.Get_rank(), world.Get_size()) != (rank, size):
        raise RuntimeError(f"[distributed.init_process_group] MPI placed this process at rank {world.Get_rank()} of "
                           f"{world.Get_size()}, expected rank {rank} of {size}")
    _WORLD = (rank, size)


def joined() -> bool:
    return _WORLD is not None


def skip_finalize() -> None:
    global _FINALIZE_OK
    _FINALIZE_OK = False


def finalize() -> None:
    """MPI_Finalize at exit, unless a collective failed (then peers may never join it)."""
    if _MPI is None or _WORLD is None or not _FINALIZE_OK:
        return
    if _MPI.Is_initialized() and not _MPI.Is_finalized():
        _libmpi().MPI_Finalize()


# ---- dtypes ---------------------------------------------------------------------------------------

_NATIVE = {ember.float32, ember.float64, ember.int8, ember.uint8, ember.int32, ember.int64, ember.bool}


def _raw(t) -> np.ndarray:
    """The tensor's memory as a flat numpy array of its own width (any dtype, incl. bfloat16)."""
    return t.detach()._numpy_bits().reshape(-1)


def _typed(t) -> np.ndarray:
    return t.detach().numpy().reshape(-1)


def _mpi_op(MPI, op: ReduceOp, dtype):
    if dtype == ember.bool:  # like NCCL in torch: SUM/MAX are "or", PRODUCT/MIN are "and"
        return MPI.LOR if op in (ReduceOp.SUM, ReduceOp.MAX) else MPI.LAND
    return {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
            ReduceOp.MIN: MPI.MIN, ReduceOp.MAX: MPI.MAX}[op]


class MPIWork(Work):
    def __init__(self, backend: "MPIBackend", request, what: str, outputs=None, keep=()):
        super().__init__(outputs)
        self.backend = backend
        self.request = request
        self.what = what
        self.keep = keep  # staging tensors MPI reads or writes until completion

    def _test(self) -> bool:
        if self.request.Test():
            self._finish()
            return True
        return False

    def _wait(self, timeout_s):
        self.backend.poll(self.request, self.what, timeout_s)


def group_comm(ranks: list[int]):
    """A communicator over `ranks` (world ranks, in that order); None on non-members. Every rank of the
    world must call it (MPI_Comm_split is collective), right after a store barrier."""
    MPI = _import_mpi()
    world = MPI.COMM_WORLD
    if len(ranks) == world.Get_size() and ranks == sorted(ranks):
        return world.Dup()
    me = world.Get_rank()
    comm = world.Split(0 if me in ranks else MPI.UNDEFINED, ranks.index(me) if me in ranks else 0)
    return comm if me in ranks else None


class MPIBackend:
    """Collectives of one process group over its MPI communicator."""

    name = "mpi"

    def __init__(self, store, comm, rank: int, ranks: list[int], timeout_s: float):
        self.MPI = _import_mpi()
        self.store = store
        self.comm = comm
        self.rank = rank            # rank in this group
        self.ranks = ranks          # global ranks of the group's members
        self.size = len(ranks)
        self.timeout_s = timeout_s
        self.broken: str | None = None
        self.seq = 0

    # ---- progress with deadline and failure detection (Note [Collectives that cannot hang]) ----
    def poll(self, request, what: str, timeout_s: float | None) -> None:
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        for _ in range(200):  # fast path: small collectives finish within a few microseconds
            if request.Test():
                return
        start = time.monotonic()
        next_check = start + 0.1
        sleep = 1e-5
        while not request.Test():
            now = time.monotonic()
            if now >= next_check:
                failures = {r: m for r, m in self.store.failures().items() if r in self.ranks}
                if failures:
                    self._break(what)
                    detail = "; ".join(f"rank {r}: {m}" for r, m in sorted(failures.items()))
                    raise DistBackendError(f"[distributed.{what}] rank {self.store.rank} gave up: a peer failed "
                                           f"({detail})")
                next_check = now + 0.25
            if now - start > timeout_s:
                self._break(what)
                raise DistTimeoutError(
                    f"[distributed.{what}] rank {self.store.rank} timed out after {timeout_s:.1f}s waiting for the "
                    f"other ranks of the group {self.ranks} (collective #{self.seq}); a rank is stuck, slower than the "
                    "timeout, or did not call the same collective (init_process_group(timeout=...) sets the limit)")
            time.sleep(sleep)
            sleep = min(sleep * 2, 1e-3)

    def _break(self, what: str) -> None:
        self.broken = what
        skip_finalize()

    def _start(self, what: str):
        if self.broken is not None:
            raise DistBackendError(f"[distributed.{what}] the process group is unusable after a failed "
                                   f"{self.broken}; destroy it and exit")
        self.seq += 1

    @staticmethod
    def _check_cpu(what: str, *tensors):
        for t in tensors:
            if t.device.type != "cpu":
                raise ValueError(f"[distributed.{what}] the 'mpi' backend takes CPU tensors, got one on {t.device} "
                                 "(use backend='nccl' for CUDA tensors)")

    # ---- collectives ----
    def all_reduce(self, tensor, op: ReduceOp) -> Work:
        self._check_cpu("all_reduce", tensor)
        self._start("all_reduce")
        if op == ReduceOp.AVG and not tensor.dtype.is_floating_point:
            raise TypeError(f"[distributed.all_reduce] ReduceOp.AVG needs a floating dtype, got {tensor.dtype}")
        wide = ember.float32 if tensor.dtype in (ember.float16, ember.bfloat16) else tensor.dtype
        work_t = tensor if (tensor.dtype in _NATIVE and tensor.is_contiguous()) else \
            tensor.detach().to(wide).contiguous()
        buf = _typed(work_t)
        req = self.comm.Iallreduce(self.MPI.IN_PLACE, buf, _mpi_op(self.MPI, op, tensor.dtype))
        work = MPIWork(self, req, "all_reduce", [tensor], keep=(work_t,))
        if op == ReduceOp.AVG:
            work.then(lambda: buf.__itruediv__(self.size))
        if work_t is not tensor:
            work.then(lambda: _copy_into(tensor, work_t))
        return work

    def broadcast(self, tensor, src: int) -> Work:
        self._check_cpu("broadcast", tensor)
        self._start("broadcast")
        work_t = tensor if tensor.is_contiguous() else tensor.detach().contiguous()
        req = self.comm.Ibcast(_raw(work_t).view(np.uint8), root=src)
        work = MPIWork(self, req, "broadcast", [tensor], keep=(work_t,))
        if work_t is not tensor:
            work.then(lambda: _copy_into(tensor, work_t))
        return work

    def all_gather_into_tensor(self, output, input) -> Work:
        self._check_cpu("all_gather", output, input)
        self._start("all_gather")
        send = input if input.is_contiguous() else input.detach().contiguous()
        recv = output if output.is_contiguous() else output.detach().contiguous()
        req = self.comm.Iallgather(_raw(send).view(np.uint8), _raw(recv).view(np.uint8))
        work = MPIWork(self, req, "all_gather", [output], keep=(send, recv))
        if recv is not output:
            work.then(lambda: _copy_into(output, recv))
        return work

    def reduce_scatter_tensor(self, output, input, op: ReduceOp) -> Work:
        self._check_cpu("reduce_scatter", output, input)
        self._start("reduce_scatter")
        if op == ReduceOp.AVG and not input.dtype.is_floating_point:
            raise TypeError(f"[distributed.reduce_scatter] ReduceOp.AVG needs a floating dtype, got {input.dtype}")
        wide = ember.float32 if input.dtype in (ember.float16, ember.bfloat16) else input.dtype
        send = input.detach().to(wide).contiguous()
        recv = output if (output.dtype == wide and output.is_contiguous()) else \
            ember.empty(tuple(output.shape), dtype=wide)
        recv_np = _typed(recv)
        req = self.comm.Ireduce_scatter_block(_typed(send), recv_np, _mpi_op(self.MPI, op, input.dtype))
        work = MPIWork(self, req, "reduce_scatter", [output], keep=(send, recv))
        if op == ReduceOp.AVG:
            work.then(lambda: recv_np.__itruediv__(self.size))
        if recv is not output:
            work.then(lambda: _copy_into(output, recv))
        return work

    def barrier(self) -> Work:
        self._start("barrier")
        return MPIWork(self, self.comm.Ibarrier(), "barrier")

    def shutdown(self) -> None:
        if self.broken is None:
            try:
                self.comm.Free()
            except Exception:  # noqa: BLE001 - a freed/invalid communicator at exit is harmless
                pass


def _copy_into(dst, src) -> None:
    with ember.no_grad():
        dst.detach().copy_(src)

