"""DistributedDataParallel: data parallelism with gradients averaged across ranks during backward.

Note [DDP buckets]
Parameters are packed, in reverse registration order (roughly the order backward produces their
gradients), into flat buckets of one dtype and device: the first holds ~1 MiB, the others
`bucket_cap_mb` (torch's sizes). A post-accumulate-grad hook on each parameter copies its fresh
gradient into its bucket; once every gradient of a bucket has arrived, the bucket is divided by the
world size and all-reduced asynchronously while backward goes on. Buckets are launched strictly in
index order so that every rank issues the same collectives in the same order. The hook of the last
gradient waits for all buckets (on CUDA: the current stream waits, the host does not) and copies the
averages back into each .grad, so after backward() every rank holds the average of the ranks'
gradients, as with torch.

Note [DDP unused parameters]
Without find_unused_parameters, a parameter that gets no gradient leaves its bucket incomplete and the
next forward raises (torch does the same). With it, forward walks the autograd graph from the
outputs; parameters it does not reach count as ready with a zero gradient, and a bitmap of the ranks'
used parameters is all-reduced so that a parameter no rank used keeps its .grad untouched.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import ember
from ember import distributed as dist

from ..modules.module import Module

_FIRST_BUCKET_BYTES = 1 << 20  # torch's dist._DEFAULT_FIRST_BUCKET_BYTES
_DEFAULT_BUCKET_MB = 25


@dataclass
class _Bucket:
    index: int
    members: list[int]            # parameter indices
    offsets: list[int]
    buffer: object                # flat tensor holding the members' gradients
    pending: int = 0              # gradients still to arrive in this backward
    work: object = None


@dataclass
class _Slot:
    bucket: int
    offset: int
    numel: int


@dataclass
class _Iteration:
    """Bookkeeping of one forward/backward with gradient sync."""
    next_bucket: int = 0
    finished: bool = False
    ready: list[bool] = field(default_factory=list)      # per parameter
    used_map: object = None                               # find_unused_parameters: this rank's bitmap
    used_work: object = None


def _collect_tensors(obj, out: list) -> list:
    if isinstance(obj, ember.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _collect_tensors(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _collect_tensors(o, out)
    return out


def _move(obj, device):
    if isinstance(obj, ember.Tensor):
        return obj.to(device)
    if isinstance(obj, tuple):
        return tuple(_move(o, device) for o in obj)
    if isinstance(obj, list):
        return [_move(o, device) for o in obj]
    if isinstance(obj, dict):
        return {k: _move(v, device) for k, v in obj.items()}
    return obj


class DistributedDataParallel(Module):
    """torch.nn.parallel.DistributedDataParallel over ember.distributed (Note [DDP buckets])."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None, bucket_cap_mb: float | None = None,
                 find_unused_parameters: bool = False, check_reduction: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False, init_sync: bool = True):
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError("[DistributedDataParallel] the default process group is not initialized; call "
                               "ember.distributed.init_process_group() first")
        if dim != 0:
            raise ValueError("[DistributedDataParallel] only dim=0 is supported")
        self.module = module
        self.process_group = process_group if process_group is not None else dist.GroupMember.WORLD
        self.world_size = self.process_group.size()
        self.device_ids = list(device_ids) if device_ids else None
        self.output_device = output_device
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.require_backward_grad_sync = True
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise RuntimeError("[DistributedDataParallel] the module has no parameter that requires grad")
        self._param_names = [n for n, _ in named]
        self._params = [p for _, p in named]
        devices = {str(p.device) for p in self._params}
        if len(devices) > 1:
            raise ValueError(f"[DistributedDataParallel] the module's parameters span several devices "
                             f"{sorted(devices)}; DDP expects one device per rank")
        self._device = self._params[0].device
        if init_sync:
            self._verify_same_model()
            self._broadcast_coalesced(self._params + [b for _, b in module.named_buffers()])
        cap = _DEFAULT_BUCKET_MB if bucket_cap_mb is None else bucket_cap_mb
        self._buckets, self._slots = self._assign_buckets(int(cap * (1 << 20)))
        self._iteration: _Iteration | None = None
        self._hooks = [p.register_post_accumulate_grad_hook(self._make_hook(i)) for i, p in enumerate(self._params)]

    # ---- construction ----
    def _verify_same_model(self) -> None:
        """Every rank must wrap the same parameter shapes (else the buckets would not line up)."""
        sig = [len(self._params), sum(p.numel() for p in self._params),
               sum((i + 1) * p.numel() for i, p in enumerate(self._params))]
        hi = ember.tensor(sig, dtype=ember.int64, device=self._device)
        lo = hi.clone()
        dist.all_reduce(hi, dist.ReduceOp.MAX, group=self.process_group)
        dist.all_reduce(lo, dist.ReduceOp.MIN, group=self.process_group)
        if hi.tolist() != lo.tolist():
            raise RuntimeError(f"[DistributedDataParallel] the ranks wrap different models (parameter count / "
                               f"sizes differ: max {hi.tolist()} vs min {lo.tolist()}); every rank must build the "
                               "same module")

    def _assign_buckets(self, cap_bytes: int):
        buckets: list[_Bucket] = []
        slots: list[_Slot | None] = [None] * len(self._params)
        open_by_dtype: dict = {}  # dtype -> (members, bytes)
        limit = min(_FIRST_BUCKET_BYTES, cap_bytes)

        def close(dtype):
            members, _ = open_by_dtype.pop(dtype)
            offsets, total = [], 0
            for i in members:
                offsets.append(total)
                total += self._params[i].numel()
            buf = ember.zeros((total,), dtype=dtype, device=self._device)
            b = _Bucket(len(buckets), members, offsets, buf)
            for i, off in zip(members, offsets):
                slots[i] = _Slot(b.index, off, self._params[i].numel())
            buckets.append(b)

        for i in reversed(range(len(self._params))):
            p = self._params[i]
            members, size = open_by_dtype.setdefault(p.dtype, ([], 0))
            members.append(i)
            size += p.numel() * p.element_size()
            open_by_dtype[p.dtype] = (members, size)
            if size >= limit:
                close(p.dtype)
                limit = cap_bytes
        for dtype in list(open_by_dtype):
            close(dtype)
        return buckets, slots

    def _broadcast_coalesced(self, tensors, src: int = 0) -> None:
        """Broadcasts tensors from group rank `src`, one flat message per dtype."""
        if self.world_size == 1:
            return
        by_dtype: dict = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t)
        with ember.no_grad():
            for group in by_dtype.values():
                flat = ember.cat([t.detach().reshape(-1) for t in group])
                dist.broadcast(flat, group_src=src, group=self.process_group)
                off = 0
                for t in group:
                    n = t.numel()
                    t.detach().copy_(flat[off:off + n].view(tuple(t.shape)))
                    off += n

    # ---- forward ----
    def forward(self, *inputs, **kwargs):
        it = self._iteration
        if it is not None and not it.finished:
            missing = [self._param_names[i] for i, r in enumerate(it.ready) if not r]
            raise RuntimeError(
                "[DistributedDataParallel] Expected to have finished reduction in the prior iteration before starting "
                "a new one: the previous backward did not produce gradients for "
                f"{missing[:10]}{' ...' if len(missing) > 10 else ''}. Pass find_unused_parameters=True if parameters "
                "may go unused, and make sure every output that depends on them takes part in the loss.")
        if self.broadcast_buffers and self.world_size > 1:
            buffers = [b for _, b in self.module.named_buffers()]
            if buffers:
                self._broadcast_coalesced(buffers)
        if self.device_ids:
            inputs, kwargs = _move(inputs, self._device), _move(kwargs, self._device)
        out = self.module(*inputs, **kwargs)
        if ember.is_grad_enabled() and self.require_backward_grad_sync:
            self._prepare_for_backward(out)
        else:
            self._iteration = None
        return out

    def _prepare_for_backward(self, out) -> None:
        it = _Iteration(ready=[False] * len(self._params))
        for b in self._buckets:
            b.pending, b.work = len(b.members), None
        self._iteration = it
        if self.find_unused_parameters:
            used = self._reachable_params(out)
            it.used_map = ember.tensor([1 if u else 0 for u in used], dtype=ember.int32, device=self._device)
            it.used_work = dist.all_reduce(it.used_map, dist.ReduceOp.MAX, group=self.process_group, async_op=True)
            with ember.no_grad():
                for i, u in enumerate(used):
                    if not u:
                        s = self._slots[i]
                        self._buckets[s.bucket].buffer[s.offset:s.offset + s.numel].zero_()
                        self._mark_ready(i)

    def _reachable_params(self, out) -> list[bool]:
        """Which parameters the autograd graph behind `out` reaches (Note [DDP unused parameters])."""
        by_ptr: dict = {}
        for i, p in enumerate(self._params):
            by_ptr.setdefault(p.data_ptr(), []).append(i)
        used = [False] * len(self._params)
        stack = [t.grad_fn for t in _collect_tensors(out, []) if t.grad_fn is not None]
        for t in _collect_tensors(out, []):
            if t.grad_fn is None and t.requires_grad:  # the output is a parameter itself
                for i in by_ptr.get(t.data_ptr(), []):
                    used[i] = used[i] or t._is_same(self._params[i])
        seen: dict = {}
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen[id(node)] = node  # keeps the wrapper alive, so ids stay unique
            if node.name() == "AccumulateGrad":
                v = node.variable
                for i in by_ptr.get(v.data_ptr(), []):
                    used[i] = used[i] or v._is_same(self._params[i])
                continue
            for nxt, _ in node.next_functions:
                if nxt is not None:
                    stack.append(nxt)
        return used

    # ---- backward (Note [DDP buckets]) ----
    def _make_hook(self, index: int):
        def hook(param):
            self._on_grad(index, param)
        return hook

    def _on_grad(self, index: int, param) -> None:
        it = self._iteration
        if it is None or it.finished or it.ready[index]:
            return
        s = self._slots[index]
        view = self._buckets[s.bucket].buffer[s.offset:s.offset + s.numel]
        grad = param.grad
        with ember.no_grad():
            if grad.data_ptr() != view.data_ptr():
                view.copy_(grad.detach().reshape(-1))
        self._mark_ready(index)

    def _mark_ready(self, index: int) -> None:
        it = self._iteration
        it.ready[index] = True
        bucket = self._buckets[self._slots[index].bucket]
        bucket.pending -= 1
        while it.next_bucket < len(self._buckets) and self._buckets[it.next_bucket].pending == 0:
            self._launch(self._buckets[it.next_bucket])
            it.next_bucket += 1
        if self._device.type == "cpu":  # MPI progresses only inside its calls: drive the launched buckets
            for b in self._buckets[:it.next_bucket]:
                if b.work is not None:
                    b.work.is_completed()
        if it.next_bucket == len(self._buckets):
            self._finalize()

    def _launch(self, bucket: _Bucket) -> None:
        with ember.no_grad():
            if self.world_size > 1:
                bucket.buffer.div_(self.world_size)  # torch's default comm hook divides before the sum
            bucket.work = dist.all_reduce(bucket.buffer, group=self.process_group, async_op=True)

    def _finalize(self) -> None:
        it = self._iteration
        it.finished = True
        globally_used = None
        if it.used_work is not None:
            it.used_work.wait()
            globally_used = it.used_map.tolist()
        for b in self._buckets:
            b.work.wait()
        with ember.no_grad():
            for i, p in enumerate(self._params):
                if globally_used is not None and not globally_used[i]:
                    continue  # no rank used it: .grad stays as it was, like torch
                s = self._slots[i]
                view = self._buckets[s.bucket].buffer[s.offset:s.offset + s.numel].view(tuple(p.shape))
                if self.gradient_as_bucket_view:
                    if p.grad is None or p.grad.data_ptr() != view.data_ptr():
                        p.grad = view
                elif p.grad is None:
                    p.grad = view.clone()
                else:
                    p.grad.copy_(view)

    # ---- torch's helpers ----
    @contextlib.contextmanager
    def no_sync(self):
        """Forwards inside the block run backward without averaging: gradients accumulate locally
        until the first backward of a forward outside it."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def bucket_sizes(self) -> list[int]:
        """Elements per gradient bucket, in launch order."""
        return [b.buffer.numel() for b in self._buckets]

    def __repr__(self):
        return f"DistributedDataParallel(\n  (module): {self.module!r}\n)"
