"""torch's reducing and masked scatters as compositions of ember ops: scatter_reduce, index_reduce,
masked_scatter, select_scatter, slice_scatter (with their Tensor methods and in-place forms).

Note [Scatter reductions without a scatter kernel]
'sum' and 'mean' are scatter_add (mean divides by the per-slot count, as torch does). 'prod',
'amax' and 'amin' sort the source elements by their flat target slot (a stable sort) and run a
segmented inclusive scan over the sorted values (log2(n) shifted combines); the last element of
each segment is that slot's reduction, written with index_put at unique slots. 'prod' is
differentiated through the scan (the product rule, zeros included); 'amax'/'amin' use torch's
backward, which splits the gradient evenly over every element equal to the result.
"""
from __future__ import annotations

from . import _C
from ._C import Tensor
from ._pointwise import _dtype_title, _inplace
from ._shape_ops import _index_copy, _wrap, broadcast_shapes
from .autograd.function import Function

__all__ = ["scatter_reduce", "index_reduce", "masked_scatter", "select_scatter", "slice_scatter"]

_SCATTER_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def scatter_reduce(input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, *,
                   include_self: bool = True) -> Tensor:
    """input with src[i] reduced into input[index[i]] along dim (torch.Tensor.scatter_reduce)."""
    if reduce not in _SCATTER_REDUCTIONS:
        raise RuntimeError(f"[scatter_reduce] reduce argument must be either sum, prod, mean, amax or amin, got "
                           f"{reduce}")
    d = _wrap(dim, input.dim(), "scatter_reduce")
    if input.dtype != src.dtype:
        raise RuntimeError(f"[scatter_reduce] scatter(): Expected self.dtype to be equal to src.dtype, got "
                           f"{input.dtype} and {src.dtype}")
    if index.dtype not in (_C.int64, _C.int32):
        raise RuntimeError(f"[scatter_reduce] scatter(): Expected dtype int64 for index, got {index.dtype}")
    if not (index.dim() == input.dim() == src.dim()) and index.numel():
        raise RuntimeError(f"[scatter_reduce] Index tensor must have the same number of dimensions as self tensor "
                           f"(index {list(index.shape)}, self {list(input.shape)}, src {list(src.shape)})")
    for k in range(index.dim()):
        if index.numel() and (index.shape[k] > src.shape[k] or (k != d and index.shape[k] > input.shape[k])):
            raise RuntimeError(f"[scatter_reduce] Expected index {list(index.shape)} to be no larger than self "
                               f"{list(input.shape)} apart from dimension {d} and to be no larger size than src "
                               f"{list(src.shape)}")
    index = index.to(_C.int64)
    _check_bounds(index, input.shape[d] if input.dim() else 1, d, "scatter_reduce")
    used = src[tuple(slice(0, n) for n in index.shape)] if tuple(src.shape) != tuple(index.shape) else src
    if index.numel() == 0:  # nothing to reduce; scatter_add keeps src in the graph (its gradient is empty)
        return input.scatter_add(d, index, used)
    return _reduce_into(input, d, index, used, reduce, include_self)


def index_reduce(input: Tensor, dim: int, index: Tensor, source: Tensor, reduce: str, *,
                 include_self: bool = True) -> Tensor:
    """input with source's slice i reduced into input's slice index[i] along dim."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(f"[index_reduce] index_reduce(): Expected reduce to be one of prod, mean, amax or amin but "
                           f"got {reduce}.")
    d = _wrap(dim, input.dim(), "index_reduce")
    if index.dim() > 1:
        raise IndexError(f"[index_reduce] index_reduce_(): Index is supposed to be a vector, got {list(index.shape)}")
    if index.dtype not in (_C.int64, _C.int32):
        raise RuntimeError(f"[index_reduce] index_reduce_(): Expected dtype int32/int64 for index, got {index.dtype}")
    if input.dtype != source.dtype:
        raise RuntimeError(f"[index_reduce] index_reduce_(): self ({input.dtype}) and source ({source.dtype}) must "
                           f"have the same scalar type")
    src = source if source.dim() else source.reshape(1)
    inp_shape = tuple(input.shape) if input.dim() else (1,)
    if src.dim() != len(inp_shape) or any(a != b for k, (a, b) in enumerate(zip(inp_shape, src.shape)) if k != d):
        raise RuntimeError(f"[index_reduce] source tensor shape must match self tensor shape, excluding the specified "
                           f"dimension. Got self.shape = {list(input.shape)} source.shape = {list(source.shape)}")
    if index.numel() != src.shape[d]:
        raise RuntimeError(f"[index_reduce] index_reduce_(): Number of indices ({index.numel()}) should be equal to "
                           f"source.size(dim) ({src.shape[d]})")
    index = index.to(_C.int64).reshape(-1)
    if index.numel() and bool(((index < 0).logical_or(index >= inp_shape[d])).any().item()):
        raise IndexError(f"[index_reduce] index out of range in self (dim {d} has size {inp_shape[d]})")
    view = [1] * src.dim()
    view[d] = -1
    expanded = index.reshape(view).expand(*src.shape)
    if index.numel() == 0:
        return input.reshape(inp_shape).scatter_add(d, expanded, src).reshape(tuple(input.shape))
    out = _reduce_into(input.reshape(inp_shape), d, expanded, src, reduce, include_self)
    return out.reshape(tuple(input.shape))


def _check_bounds(index: Tensor, size: int, d: int, op: str) -> None:
    if index.numel() == 0:
        return
    bad = (index < 0).logical_or(index >= size)
    if bool(bad.any().item()):
        value = int(index.reshape(-1)[_C.nonzero(bad.reshape(-1))[0, 0]].item())
        raise RuntimeError(f"[{op}] index {value} is out of bounds for dimension {d} with size {size}")


def _reduce_into(input: Tensor, d: int, index: Tensor, src: Tensor, reduce: str, include_self: bool) -> Tensor:
    """The reduction of src (index's shape, int64 indices checked) into input along d."""
    if reduce in ("sum", "mean"):
        base = input if include_self else input.scatter(d, index, 0)
        out = base.scatter_add(d, index, src)
        if reduce == "sum":
            return out
        count = (_C.ones_like(input) if include_self else _C.zeros_like(input)).scatter_add(d, index, _C.ones_like(src))
        count = _C.where(count == 0, _C.ones_like(count), count)
        return out / count if out.dtype.is_floating_point else _C.div(out, count, rounding_mode="floor")
    if reduce == "prod":
        return _segment_reduce(input, d, index, src, _C.mul, include_self)
    return _ScatterExtreme.apply(input, d, index, src, reduce, include_self)


def _segment_reduce(input: Tensor, d: int, index: Tensor, src: Tensor, combine, include_self: bool) -> Tensor:
    """Note [Scatter reductions without a scatter kernel]: the slot-by-slot reduction by a sort and a
    segmented scan."""
    shape = tuple(input.shape)
    strides = [1] * len(shape)
    for k in range(len(shape) - 2, -1, -1):
        strides[k] = strides[k + 1] * shape[k + 1]
    slot = index * strides[d]
    for k in range(index.dim()):
        if k != d:
            view = [1] * index.dim()
            view[k] = index.shape[k]
            slot = slot + _C.arange(index.shape[k], device=index.device).reshape(view) * strides[k]
    slots, order = _C.sort(slot.reshape(-1), stable=True)
    values = src.reshape(-1)[order]
    n = values.shape[0]
    k = 1
    while k < n:
        same = _C.cat([_C.zeros(k, dtype=_C.bool, device=slots.device), slots[k:] == slots[:-k]])
        shifted = _C.cat([values[:k], values[:-k]])
        values = _C.where(same, combine(shifted, values), values)
        k *= 2
    last = _C.cat([slots[1:] != slots[:-1], _C.ones(1, dtype=_C.bool, device=slots.device)])
    targets = slots[last]
    reduced = values[last]
    flat = input.reshape(-1)
    if include_self:
        reduced = combine(flat[targets], reduced)
    return flat.index_put((targets,), reduced).reshape(shape)


class _ScatterExtreme(Function):
    """scatter amax/amin with torch's backward: the gradient of each slot is split evenly over the
    elements (of self and src) equal to its result."""

    @staticmethod
    def forward(ctx, input, d, index, src, reduce, include_self):
        out = _segment_reduce(input, d, index, src, _C.maximum if reduce == "amax" else _C.minimum, include_self)
        ctx.save_for_backward(input, index, src, out)
        ctx.d, ctx.include_self = d, include_self
        return out

    @staticmethod
    def backward(ctx, g):
        input, index, src, out = ctx.saved_tensors
        d = ctx.d
        value = out.gather(d, index)
        self_is_result = (input == out).to(g.dtype)
        src_is_result = (src == value).to(g.dtype)
        share = g / self_is_result.scatter_add(d, index, src_is_result)
        grad_self = self_is_result * share
        if not ctx.include_self:
            grad_self = grad_self.scatter(d, index, 0)
        return grad_self, None, None, src_is_result * share.gather(d, index), None, None


def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """input (broadcast with mask) with its masked positions, in row-major order, taken from the
    leading elements of source."""
    if mask.dtype != _C.bool:
        raise RuntimeError(f"[masked_scatter] masked_scatter_ only supports boolean masks, but got mask with dtype "
                           f"{_dtype_title(mask.dtype)}")
    if source.dtype != input.dtype:
        raise RuntimeError(f"[masked_scatter] masked_scatter: expected self and source to have same dtypes but got "
                           f"{_dtype_title(input.dtype)} and {_dtype_title(source.dtype)}")
    shape = tuple(broadcast_shapes(input.shape, mask.shape))
    positions = _C.nonzero(mask.expand(*shape).reshape(-1)).reshape(-1)
    n = positions.shape[0]
    if source.numel() < n:
        raise RuntimeError(f"[masked_scatter] Number of elements of source < number of ones in mask "
                           f"({source.numel()} < {n})")
    flat = input.expand(*shape).reshape(-1)
    return flat.index_put((positions,), source.reshape(-1)[:n]).reshape(shape)


def select_scatter(input: Tensor, src: Tensor, dim: int, index: int) -> Tensor:
    """input with input.select(dim, index) replaced by src."""
    d = _wrap(dim, input.dim(), "select_scatter")
    size = input.shape[d]
    if not -size <= index < size:
        raise IndexError(f"[select_scatter] select(): index {index} out of range for tensor of size "
                         f"{list(input.shape)} at dimension {d}")
    slice_shape = [s for k, s in enumerate(input.shape) if k != d]
    _check_slice_shape("select_scatter", src, slice_shape)
    return _index_copy(input, d, _C.tensor([index % size], device=input.device), src.unsqueeze(d))


def slice_scatter(input: Tensor, src: Tensor, dim: int = 0, start=None, end=None, step: int = 1) -> Tensor:
    """input with input[start:end:step] along dim replaced by src."""
    d = _wrap(dim, input.dim(), "slice_scatter")
    if step <= 0:
        raise RuntimeError(f"[slice_scatter] slice step must be positive, got {step}")
    positions = range(input.shape[d])[slice(start, end, step)]
    slice_shape = list(input.shape)
    slice_shape[d] = len(positions)
    _check_slice_shape("slice_scatter", src, slice_shape)
    index = _C.arange(positions.start, positions.stop, positions.step, device=input.device)
    return _index_copy(input, d, index, src)


def _check_slice_shape(op: str, src: Tensor, slice_shape: list) -> None:
    if list(src.shape) != slice_shape:
        raise RuntimeError(f"[{op}] expected src to have a size equal to the slice of self. src size = "
                           f"{list(src.shape)}, slice size = {slice_shape}")


def _masked_scatter_(self: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    if tuple(broadcast_shapes(self.shape, mask.shape)) != tuple(self.shape):
        raise RuntimeError(f"[masked_scatter_] mask of shape {list(mask.shape)} cannot be broadcast to self's shape "
                           f"{list(self.shape)}")
    return _inplace(masked_scatter)(self, mask, source)


TENSOR_METHODS = {
    "scatter_reduce": scatter_reduce, "scatter_reduce_": _inplace(scatter_reduce), "index_reduce": index_reduce,
    "index_reduce_": _inplace(index_reduce), "masked_scatter": masked_scatter, "masked_scatter_": _masked_scatter_,
    "select_scatter": select_scatter, "slice_scatter": slice_scatter,
}
