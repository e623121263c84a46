"""Process groups and collectives: torch.distributed's API over ember's backends.

A ProcessGroup routes each tensor to a backend by device: "mpi" for CPU tensors (_mpi.py), "nccl"
for CUDA tensors (_nccl.py). backend=None takes both where available, like torch's
"cpu:gloo,cuda:nccl" default. Ranks meet at a TCPStore (store.py) found through init_method
("env://": MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE, or "tcp://host:port"); rank 0 starts it in a
child process (store.spawn_server) unless
ember's launcher already does (EMBER_DISTRIBUTED_AGENT_STORE=1).

Note [Failing ranks]
init_process_group installs a sys.excepthook that reports an uncaught exception to the store before
the process exits, and the store records a rank whose connection drops without goodbye. Ranks
waiting in a collective or on the store see the failure within a fraction of a second and raise
DistBackendError naming the failed rank; a rank that neither fails nor arrives makes the others
raise DistTimeoutError after the group's timeout.
"""
from __future__ import annotations

import atexit
import os
import sys
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlparse

import ember

from . import _mpi, _nccl
from ._work import ChainedWork, DistBackendError, DistTimeoutError, ReduceOp, Work
from .store import StoreFailure, StoreTimeout, TCPStore, spawn_server

__all__ = [
    "Backend", "GroupMember", "ProcessGroup", "group", "init_process_group", "destroy_process_group",
    "is_initialized", "is_available", "is_mpi_available", "is_nccl_available", "is_torchelastic_launched",
    "get_rank", "get_world_size", "get_backend", "get_global_rank", "get_group_rank", "new_group",
    "all_reduce", "broadcast", "all_gather", "all_gather_into_tensor", "reduce_scatter", "reduce_scatter_tensor",
    "barrier", "monitored_barrier",
]

DEFAULT_TIMEOUT = timedelta(minutes=30)  # torch's default for every backend
_BACKENDS = ("mpi", "nccl")


class Backend:
    """Backend names (torch.distributed.Backend)."""

    MPI = "mpi"
    NCCL = "nccl"
    UNDEFINED = "undefined"


def _parse_backend(backend) -> dict[str, str]:
    """{"cpu": name, "cuda": name} from "mpi", "nccl", "cpu:mpi,cuda:nccl" or None."""
    if backend is None or backend == Backend.UNDEFINED:
        spec = {}
        if _mpi.available():
            spec["cpu"] = "mpi"
        if _nccl.available():
            spec["cuda"] = "nccl"
        if not spec:
            raise RuntimeError("[distributed.init_process_group] no backend is available: install mpi4py and mpich "
                               "for CPU tensors (pip install mpi4py mpich), or use a CUDA build with NCCL")
        return spec
    text = str(backend).lower()
    if text == "gloo":
        raise ValueError("[distributed.init_process_group] ember has no Gloo backend; use backend='mpi' for CPU "
                         "tensors (MPI through mpi4py), 'nccl' for CUDA tensors, or None for both")
    if ":" in text:
        spec = {}
        for part in text.split(","):
            dev, _, name = part.partition(":")
            if dev not in ("cpu", "cuda") or name not in _BACKENDS:
                raise ValueError(f"[distributed.init_process_group] bad backend {backend!r}: expected entries like "
                                 "'cpu:mpi' or 'cuda:nccl'")
            spec[dev] = name
        return spec
    if text == "mpi":
        return {"cpu": "mpi"}
    if text == "nccl":
        return {"cuda": "nccl"}
    raise ValueError(f"[distributed.init_process_group] unknown backend {backend!r}; expected 'mpi', 'nccl', "
                     "'cpu:mpi,cuda:nccl' or None")


class ProcessGroup:
    """A set of ranks that run collectives together; rank()/size() are within the group."""

    def __init__(self, ranks: list[int], spec: dict[str, str], timeout_s: float, name: str):
        self.ranks = ranks
        self.spec = spec
        self.timeout_s = timeout_s
        self.name = name
        self.prefix = f"__ember/pg/{name}/"
        self._rank = ranks.index(_STATE.rank) if _STATE.rank in ranks else -1
        self._backends: dict = {}
        if spec.get("cpu") == "mpi":
            comm = _mpi.group_comm(ranks)  # collective over the world: members and non-members call it
            if comm is not None:
                self._backends["cpu"] = _mpi.MPIBackend(_STATE.store, comm, self._rank, ranks, timeout_s)

    def rank(self) -> int:
        return self._rank

    def size(self) -> int:
        return len(self.ranks)

    def backend_for(self, tensor, what: str):
        dev = tensor.device
        if dev.type == "cpu":
            be = self._backends.get("cpu")
            if be is None:
                raise RuntimeError(f"[distributed.{what}] no backend for CPU tensors in this process group (backend "
                                   f"{self.spec}); use backend='mpi' or None, or move the tensor to CUDA")
            return be
        if "cuda" not in self.spec:
            raise RuntimeError(f"[distributed.{what}] no backend for CUDA tensors in this process group (backend "
                               f"{self.spec}); use backend='nccl' or None")
        key = ("cuda", dev.index)
        be = self._backends.get(key)
        if be is None:
            # Created lazily, like torch: every rank reaches its first CUDA collective together.
            # The store key counts communicators, not devices: each rank uses its own GPU.
            n = sum(1 for k in self._backends if k != "cpu")
            be = self._backends[key] = _nccl.NCCLBackend(_STATE.store, f"{self.prefix}nccl{n}/", self._rank,
                                                         self.ranks, self.timeout_s, dev.index)
        return be

    def shutdown(self) -> None:
        for be in self._backends.values():
            be.shutdown()
        self._backends.clear()

    def __repr__(self):
        return f"<ember.distributed.ProcessGroup {self.name} ranks={self.ranks} backend={self.spec}>"


class GroupMember:
    WORLD: ProcessGroup | None = None
    NON_GROUP_MEMBER = object()


group = GroupMember  # torch.distributed.group.WORLD


@dataclass
class _State:
    store: TCPStore | None = None
    rank: int = -1
    world_size: int = -1
    timeout_s: float = DEFAULT_TIMEOUT.total_seconds()
    groups: list = field(default_factory=list)
    failed: bool = False
    hooks_installed: bool = False
    next_group: int = 0


_STATE = _State()


# ---- setup ----------------------------------------------------------------------------------------

def is_available() -> bool:
    return True


def is_mpi_available() -> bool:
    return _mpi.available()


def is_nccl_available() -> bool:
    return _nccl.available()


def is_initialized() -> bool:
    return GroupMember.WORLD is not None


def is_torchelastic_launched() -> bool:
    return os.environ.get("EMBER_DISTRIBUTED_LAUNCHED") == "1"


def _env_int(name: str, value: int, what: str) -> int:
    if value is not None and value >= 0:
        return value
    raw = os.environ.get(name)
    if raw is None:
        raise ValueError(f"[distributed.init_process_group] {what} is not set: pass {what}= or set ${name} "
                         "(python -m ember.distributed.run sets it)")
    return int(raw)


def _seconds(timeout) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT.total_seconds()
    return timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)


def init_process_group(backend=None, init_method=None, timeout=None, world_size: int = -1, rank: int = -1,
                       store=None, group_name: str = "", pg_options=None, device_id=None) -> None:
    """torch.distributed.init_process_group: joins the default group (WORLD) of `world_size` ranks."""
    if is_initialized():
        raise RuntimeError("[distributed.init_process_group] trying to initialize the default process group twice")
    spec = _parse_backend(backend)
    timeout_s = _seconds(timeout)
    rank = _env_int("RANK", rank, "rank")
    world_size = _env_int("WORLD_SIZE", world_size, "world_size")
    if not 0 <= rank < world_size:
        raise ValueError(f"[distributed.init_process_group] rank {rank} is out of range for world_size {world_size}")
    if device_id is not None and ember.cuda.is_available():
        ember.cuda.set_device(device_id)
    if store is None:
        store = _rendezvous(init_method, rank, world_size, timeout_s)
    _STATE.store, _STATE.rank, _STATE.world_size, _STATE.timeout_s = store, rank, world_size, timeout_s
    _STATE.failed = False
    _install_exit_hooks()
    try:
        _store_barrier("init", list(range(world_size)), timeout_s)
        if "cpu" in spec:
            _mpi.init_world(store, rank, world_size, timeout_s)
        GroupMember.WORLD = _new_group_object(list(range(world_size)), spec, timeout_s, group_name or "default")
    except BaseException:
        _STATE.store = None
        store.close(clean=False)
        raise


def _rendezvous(init_method, rank: int, world_size: int, timeout_s: float) -> TCPStore:
    method = init_method or "env://"
    if method.startswith("env://"):
        addr = os.environ.get("MASTER_ADDR")
        port = os.environ.get("MASTER_PORT")
        if not addr or not port:
            raise ValueError("[distributed.init_process_group] init_method='env://' needs $MASTER_ADDR and "
                             "$MASTER_PORT (python -m ember.distributed.run sets them)")
        port = int(port)
    elif method.startswith("tcp://"):
        url = urlparse(method)
        addr, port = url.hostname, url.port
        if not addr or not port:
            raise ValueError(f"[distributed.init_process_group] init_method {method!r} needs tcp://host:port")
    else:
        raise ValueError(f"[distributed.init_process_group] unsupported init_method {method!r} "
                         "(expected 'env://' or 'tcp://host:port')")
    if rank == 0 and os.environ.get("EMBER_DISTRIBUTED_AGENT_STORE") != "1":
        loopback = addr in ("localhost", "::1") or addr.startswith("127.")
        spawn_server(addr if loopback else "", port, world_size, timeout_s)  # Note [Store in a child process]
    return TCPStore(addr, port, world_size, timeout=timedelta(seconds=timeout_s), rank=rank)


def _store_barrier(tag: str, ranks: list[int], timeout_s: float) -> None:
    """Every rank of `ranks` arrives (one key each); on timeout the error names the missing ranks."""
    store = _STATE.store
    prefix = f"__ember/barrier/{tag}/"
    store.set(f"{prefix}{_STATE.rank}", b"1")
    try:
        store.wait([f"{prefix}{r}" for r in ranks], timeout=timeout_s)
    except StoreTimeout:
        missing = [r for r in ranks if not store.check([f"{prefix}{r}"])]
        raise DistTimeoutError(f"[distributed] rank {_STATE.rank}: ranks {missing} did not reach {tag!r} within "
                               f"{timeout_s:.1f}s (not started, stuck, or pointed at another MASTER_ADDR/PORT?)"
                               ) from None
    except StoreFailure as e:
        raise DistBackendError(f"[distributed] rank {_STATE.rank} waiting at {tag!r}: a peer failed "
                               f"({'; '.join(f'rank {r}: {m}' for r, m in sorted(e.failures.items()))})") from None


def _new_group_object(ranks, spec, timeout_s, name) -> ProcessGroup:
    pg = ProcessGroup(ranks, spec, timeout_s, name)
    _STATE.groups.append(pg)
    return pg


def new_group(ranks=None, timeout=None, backend=None, pg_options=None, use_local_synchronization=False):
    """A subgroup; every rank of WORLD must call it with the same arguments (like torch)."""
    world = _world("new_group")
    ranks = sorted(set(range(world.size()) if ranks is None else ranks))
    if any(not 0 <= r < world.size() for r in ranks):
        raise ValueError(f"[distributed.new_group] ranks {ranks} must lie in [0, {world.size()})")
    spec = world.spec if backend is None else _parse_backend(backend)
    _STATE.next_group += 1
    name = f"group{_STATE.next_group}"
    _store_barrier(name, list(range(world.size())), _STATE.timeout_s)
    return _new_group_object(ranks, spec, _seconds(timeout) if timeout is not None else world.timeout_s, name)


def destroy_process_group(group: ProcessGroup | None = None) -> None:
    """Frees `group`, or every group and the rendezvous (group=None)."""
    if group is not None and group is not GroupMember.WORLD:
        group.shutdown()
        if group in _STATE.groups:
            _STATE.groups.remove(group)
        return
    if not is_initialized():
        return
    for pg in _STATE.groups:
        pg.shutdown()
    _STATE.groups.clear()
    GroupMember.WORLD = None
    store, _STATE.store = _STATE.store, None
    if store is not None:
        store.close(clean=not _STATE.failed)


def _world(what: str) -> ProcessGroup:
    if GroupMember.WORLD is None:
        raise RuntimeError(f"[distributed.{what}] the default process group is not initialized; call "
                           "ember.distributed.init_process_group() first")
    return GroupMember.WORLD


def _group(group, what: str) -> ProcessGroup:
    world = _world(what)
    return world if group is None else group


def get_rank(group: ProcessGroup | None = None) -> int:
    """This process's rank in `group` (WORLD by default); -1 when it is not a member."""
    return _group(group, "get_rank").rank()


def get_world_size(group: ProcessGroup | None = None) -> int:
    return _group(group, "get_world_size").size()


def get_backend(group: ProcessGroup | None = None) -> str:
    spec = _group(group, "get_backend").spec
    return next(iter(spec.values())) if len(spec) == 1 else ",".join(f"{k}:{v}" for k, v in spec.items())


def get_global_rank(group: ProcessGroup, group_rank: int) -> int:
    return group.ranks[group_rank]


def get_group_rank(group: ProcessGroup, global_rank: int) -> int:
    return group.ranks.index(global_rank)


# ---- exit hooks (Note [Failing ranks]) -----------------------------------------------------------

def _report_failure(message: str) -> None:
    _STATE.failed = True
    store = _STATE.store
    if store is not None:
        try:
            store.report_failure(_STATE.rank, message)
        except (ConnectionError, OSError, RuntimeError):
            pass


def _install_exit_hooks() -> None:
    if _STATE.hooks_installed:
        return
    _STATE.hooks_installed = True
    previous = sys.excepthook

    def excepthook(tp, value, tb):
        if is_initialized():
            _report_failure(f"raised {tp.__name__}: {value}")
        previous(tp, value, tb)

    sys.excepthook = excepthook
    previous_thread_hook = threading.excepthook

    def thread_excepthook(args):
        if is_initialized() and args.exc_type is not SystemExit:
            _report_failure(f"thread {args.thread.name if args.thread else '?'} raised {args.exc_type.__name__}: "
                            f"{args.exc_value}")
        previous_thread_hook(args)

    threading.excepthook = thread_excepthook
    atexit.register(_at_exit)


def _at_exit() -> None:
    if is_initialized():
        if _STATE.failed:
            _mpi.skip_finalize()
        destroy_process_group()
    _mpi.finalize()


# ---- collectives ---------------------------------------------------------------------------------

def _finish(work: Work, async_op: bool):
    if async_op:
        return work
    work.wait()
    return None


def _member(group, what: str) -> ProcessGroup | None:
    pg = _group(group, what)
    return pg if pg.rank() >= 0 else None


def _check_op(op, what: str) -> ReduceOp:
    if not isinstance(op, ReduceOp):
        raise TypeError(f"[distributed.{what}] op must be an ember.distributed.ReduceOp, got {op!r}")
    return op


def _check_tensor(t, what: str, name: str = "tensor") -> None:
    if not isinstance(t, ember.Tensor):
        raise TypeError(f"[distributed.{what}] {name} must be an ember.Tensor, got {type(t).__name__}")


def all_reduce(tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduces `tensor` across the group in place; every rank gets the result."""
    _check_tensor(tensor, "all_reduce")
    pg = _member(group, "all_reduce")
    if pg is None:
        return None
    work = pg.backend_for(tensor, "all_reduce").all_reduce(tensor, _check_op(op, "all_reduce"))
    return _finish(work, async_op)


def broadcast(tensor, src: int | None = None, group=None, async_op: bool = False, group_src: int | None = None):
    """Copies `tensor` from rank `src` (a global rank; or group_src within the group) to every rank."""
    _check_tensor(tensor, "broadcast")
    pg = _member(group, "broadcast")
    if pg is None:
        return None
    if group_src is None:
        if src is None:
            raise ValueError("[distributed.broadcast] pass src (a global rank) or group_src")
        if src not in pg.ranks:
            raise ValueError(f"[distributed.broadcast] src rank {src} is not in the group {pg.ranks}")
        group_src = pg.ranks.index(src)
    if not 0 <= group_src < pg.size():
        raise ValueError(f"[distributed.broadcast] group_src {group_src} is out of range for a group of {pg.size()}")
    return _finish(pg.backend_for(tensor, "broadcast").broadcast(tensor, group_src), async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op: bool = False):
    """Concatenates every rank's `input_tensor` (in rank order) into `output_tensor`, of shape
    [world * d0, ...] or [world, d0, ...]."""
    _check_tensor(output_tensor, "all_gather_into_tensor", "output_tensor")
    _check_tensor(input_tensor, "all_gather_into_tensor", "input_tensor")
    pg = _member(group, "all_gather_into_tensor")
    if pg is None:
        return None
    n = pg.size()
    if output_tensor.numel() != n * input_tensor.numel() or output_tensor.dtype != input_tensor.dtype or \
            output_tensor.device != input_tensor.device:
        raise ValueError(f"[distributed.all_gather_into_tensor] output_tensor {tuple(output_tensor.shape)} "
                         f"{output_tensor.dtype} on {output_tensor.device} must hold world_size ({n}) x input_tensor "
                         f"{tuple(input_tensor.shape)} {input_tensor.dtype} on {input_tensor.device}")
    work = pg.backend_for(input_tensor, "all_gather_into_tensor").all_gather_into_tensor(output_tensor, input_tensor)
    return _finish(work, async_op)


def _check_tensor_list(tensors, n: int, like, op: str, name: str, like_name: str):
    """One tensor per rank, each shaped, typed and placed like `like`."""
    if len(tensors) != n:
        raise ValueError(f"[distributed.{op}] {name} has {len(tensors)} tensors; the group has {n} ranks")
    for i, t in enumerate(tensors):
        _check_tensor(t, op, f"{name}[{i}]")
        if tuple(t.shape) != tuple(like.shape) or t.dtype != like.dtype or t.device != like.device:
            raise ValueError(f"[distributed.{op}] {name}[{i}] is {tuple(t.shape)} {t.dtype} on {t.device}; "
                             f"expected {tuple(like.shape)} {like.dtype} on {like.device} like {like_name}")


def all_gather(tensor_list, tensor, group=None, async_op: bool = False):
    """tensor_list[i] = rank i's `tensor`."""
    _check_tensor(tensor, "all_gather")
    pg = _member(group, "all_gather")
    if pg is None:
        return None
    n = pg.size()
    _check_tensor_list(tensor_list, n, tensor, "all_gather", "tensor_list", "the input")
    flat = ember.empty((n * tensor.numel(),), dtype=tensor.dtype, device=tensor.device)
    inner = pg.backend_for(tensor, "all_gather").all_gather_into_tensor(flat, tensor.detach().reshape(-1))
    work = ChainedWork(inner, tensor_list)
    k = tensor.numel()

    def scatter_out():
        with ember.no_grad():
            for i, t in enumerate(tensor_list):
                t.detach().copy_(flat[i * k:(i + 1) * k].view(tuple(tensor.shape)))

    work.then(scatter_out)
    return _finish(work, async_op)


def reduce_scatter_tensor(output, input, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduces `input` ([world * d0, ...]) across ranks; rank r gets block r in `output`."""
    _check_tensor(output, "reduce_scatter_tensor", "output")
    _check_tensor(input, "reduce_scatter_tensor", "input")
    pg = _member(group, "reduce_scatter_tensor")
    if pg is None:
        return None
    n = pg.size()
    if input.numel() != n * output.numel() or input.dtype != output.dtype or input.device != output.device:
        raise ValueError(f"[distributed.reduce_scatter_tensor] input {tuple(input.shape)} {input.dtype} on "
                         f"{input.device} must hold world_size ({n}) x output {tuple(output.shape)} {output.dtype} "
                         f"on {output.device}")
    op = _check_op(op, "reduce_scatter_tensor")
    return _finish(pg.backend_for(input, "reduce_scatter_tensor").reduce_scatter_tensor(output, input, op), async_op)


def reduce_scatter(output, input_list, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """output = the reduction over ranks of their input_list[this rank]."""
    _check_tensor(output, "reduce_scatter", "output")
    pg = _member(group, "reduce_scatter")
    if pg is None:
        return None
    n = pg.size()
    _check_tensor_list(input_list, n, output, "reduce_scatter", "input_list", "output")
    if n == 0:
        return None
    flat = ember.cat([t.detach().reshape(-1) for t in input_list]) if output.numel() else \
        ember.empty((0,), dtype=output.dtype, device=output.device)
    out_flat = ember.empty((output.numel(),), dtype=output.dtype, device=output.device)
    op = _check_op(op, "reduce_scatter")
    inner = pg.backend_for(output, "reduce_scatter").reduce_scatter_tensor(out_flat, flat, op)
    work = ChainedWork(inner, [output])

    def copy_out():
        with ember.no_grad():
            output.detach().copy_(out_flat.view(tuple(output.shape)))

    work.then(copy_out)
    return _finish(work, async_op)


def barrier(group=None, async_op: bool = False, device_ids=None):
    """Returns once every rank of the group called barrier (on CUDA-only groups: once the current
    stream reached it, like torch's NCCL barrier)."""
    pg = _member(group, "barrier")
    if pg is None:
        return None
    if "cpu" in pg._backends:
        work = pg._backends["cpu"].barrier()
    else:
        dev = device_ids[0] if device_ids else ember.cuda.current_device()
        work = pg.backend_for(ember.empty((0,), device=f"cuda:{dev}"), "barrier").barrier()
        if not async_op:
            work.wait()
            ember.cuda.synchronize(dev)
            return None
    return _finish(work, async_op)


def monitored_barrier(group=None, timeout=None, wait_all_ranks: bool = False) -> None:
    """A barrier through the store that names the ranks that did not arrive (torch's debugging aid)."""
    pg = _group(group, "monitored_barrier")
    _STATE.next_group += 1
    _store_barrier(f"monitored{_STATE.next_group}", pg.ranks,
                   pg.timeout_s if timeout is None else _seconds(timeout))

