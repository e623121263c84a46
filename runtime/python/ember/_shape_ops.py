"""torch's shape and indexing helpers as compositions of ember ops (views where torch returns views):
repeat_interleave, diff, rot90, fliplr/flipud, tile, atleast_1d/2d/3d, hstack/vstack/dstack/
column_stack/row_stack, tensor_split/hsplit/vsplit/dsplit, broadcast_shapes/broadcast_tensors,
take, argwhere, msort, vander, ravel, adjoint, index_fill/index_copy; Tensor.unfold (windows as a
view), mH/H, fill_diagonal_ and small queries (is_complex, is_signed, is_nonzero, nbytes)."""
from __future__ import annotations

import numpy as np

from . import _C
from ._C import Tensor

__all__ = ["repeat_interleave", "diff", "rot90", "fliplr", "flipud", "tile", "atleast_1d", "atleast_2d",
           "atleast_3d", "hstack", "vstack", "row_stack", "dstack", "column_stack", "tensor_split", "hsplit",
           "vsplit", "dsplit", "broadcast_shapes", "broadcast_tensors", "take", "argwhere", "msort", "vander",
           "ravel", "adjoint", "index_fill", "index_copy", "is_complex", "is_nonzero", "is_same_size", "split_with_sizes"]


def ravel(input: Tensor) -> Tensor:
    return _ravel(input)


def adjoint(input: Tensor) -> Tensor:
    return _adjoint(input)


def index_fill(input: Tensor, dim: int, index: Tensor, value) -> Tensor:
    return _index_fill(input, dim, index, value)


def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    return _index_copy(input, dim, index, source)


def is_complex(input: Tensor) -> bool:
    return False


def is_nonzero(input: Tensor) -> bool:
    return _is_nonzero(input)


def split_with_sizes(input: Tensor, split_sizes, dim: int = 0) -> tuple:
    """split with a list of sizes that must cover dim exactly."""
    return _C.split(input, list(split_sizes), dim)


def _new_empty_strided(self: Tensor, size, stride, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _C.empty_strided(size, stride, dtype=self.dtype if dtype is None else dtype,
                            device=self.device if device is None else device, requires_grad=requires_grad)


def is_same_size(input: Tensor, other: Tensor) -> bool:
    return tuple(input.shape) == tuple(other.shape)


def _wrap(d: int, nd: int, op: str) -> int:
    n = max(nd, 1)
    if not -n <= d < n:
        raise IndexError(f"[{op}] Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})")
    return d % n


def diagonal_view(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The offset-th diagonal over dim1, dim2 as a view (those dims removed, the diagonal last), built
    with as_strided: what torch.diagonal returns, for the compositions here (einsum, trace, diag,
    linalg.diagonal), which then do not depend on the diagonal op itself."""
    nd = input.dim()
    d1, d2 = _wrap(dim1, nd, "diagonal"), _wrap(dim2, nd, "diagonal")
    if d1 == d2:
        raise RuntimeError(f"[diagonal] diagonal dimensions cannot be identical {dim1}, {dim2}")
    sizes, strides = list(input.shape), list(input.stride())
    n1, n2 = sizes[d1], sizes[d2]
    offset_elems = input.storage_offset()
    if offset >= 0:
        length = max(min(n1, n2 - offset), 0)
        offset_elems += offset * strides[d2] if length else 0
    else:
        length = max(min(n1 + offset, n2), 0)
        offset_elems += -offset * strides[d1] if length else 0
    keep = [d for d in range(nd) if d not in (d1, d2)]
    return _C.as_strided(input, [sizes[d] for d in keep] + [length],
                         [strides[d] for d in keep] + [strides[d1] + strides[d2]], offset_elems)


def repeat_interleave(input: Tensor, repeats=None, dim=None, *, output_size=None) -> Tensor:
    """Repeats each element (or slice along dim) repeats[i] times; the input is flattened without a dim.
    repeat_interleave(r) alone gives arange(len(r)) with element i repeated r[i] times."""
    if repeats is None:  # torch.repeat_interleave(repeats)
        return repeat_interleave(_C.arange(input.shape[0], device=input.device), input, 0)
    if dim is None:
        input, dim = input.reshape(-1), 0
    d = _wrap(dim, input.dim(), "repeat_interleave")
    if input.dim() == 0:
        input = input.reshape(1)
    if isinstance(repeats, Tensor):
        if repeats.dim() > 1:
            raise RuntimeError("[repeat_interleave] repeats must be 0-dim or 1-dim tensor")
        if repeats.dtype.is_floating_point or repeats.dtype == _C.bool:
            raise RuntimeError(f"[repeat_interleave] repeats has to be Long or Int tensor, got {repeats.dtype}")
        if repeats.dim() == 0 or repeats.numel() == 1:
            repeats = int(repeats.reshape(-1)[0].item())
    if isinstance(repeats, int):
        if repeats < 0:
            raise RuntimeError(f"[repeat_interleave] Repeats must be non-negative, got {repeats}")
        shape = list(input.shape)
        expanded = input.unsqueeze(d + 1).expand(shape[:d + 1] + [repeats] + shape[d + 1:])
        shape[d] *= repeats
        return expanded.reshape(shape)
    counts = repeats.cpu().numpy().astype(np.int64)
    if len(counts) != input.shape[d]:
        raise RuntimeError(f"[repeat_interleave] repeats must have the same size as input along dim, but got "
                           f"repeats.size(0) = {len(counts)} and input.size({d}) = {input.shape[d]}")
    if (counts < 0).any():
        raise RuntimeError("[repeat_interleave] repeats can not be negative")
    total = int(counts.sum())
    if output_size is not None and output_size != total:
        raise RuntimeError(f"[repeat_interleave] allocated size ({output_size}) does not match required size "
                           f"({total})")
    index = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    return _C.index_select(input, d, _C.from_numpy(index).to(input.device))


def diff(input: Tensor, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:
    """n-th forward differences along dim (logical xor for bool), after prepend/append."""
    if input.dim() == 0:
        raise RuntimeError("[diff] diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"[diff] order must be non-negative but got {n}")
    d = _wrap(dim, input.dim(), "diff")
    parts = []
    for extra in (prepend, append):
        if extra is not None and extra.dim() != input.dim():
            raise RuntimeError("[diff] diff expects prepend or append to be the same dimension as input")
    if prepend is not None:
        parts.append(prepend)
    parts.append(input)
    if append is not None:
        parts.append(append)
    x = _C.cat(parts, d) if len(parts) > 1 else input
    for _ in range(n):
        length = x.shape[d]
        if length == 0:
            break
        hi, lo = x.narrow(d, 1, length - 1), x.narrow(d, 0, length - 1)
        x = hi != lo if x.dtype == _C.bool else hi - lo  # bool: torch's logical xor
    return x


def rot90(input: Tensor, k: int = 1, dims=(0, 1)) -> Tensor:
    """Rotation by 90 degrees k times in the plane of dims, from the first towards the second."""
    dims = list(dims)
    if len(dims) != 2:
        raise RuntimeError(f"[rot90] expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.dim() < 2:
        raise RuntimeError(f"[rot90] expected total dims >= 2, but got total dims = {input.dim()}")
    d0, d1 = _wrap(dims[0], input.dim(), "rot90"), _wrap(dims[1], input.dim(), "rot90")
    if d0 == d1:
        raise RuntimeError(f"[rot90] expected rotation dims to be different, but got dim0 = {d0} and dim1 = {d1}")
    k %= 4
    if k == 1:
        return input.flip([d1]).transpose(d0, d1)
    if k == 2:
        return input.flip([d0, d1])
    if k == 3:
        return input.flip([d0]).transpose(d0, d1)
    return input.clone()


def fliplr(input: Tensor) -> Tensor:
    if input.dim() < 2:
        raise RuntimeError("[fliplr] Input must be >= 2-d.")
    return input.flip([1])


def flipud(input: Tensor) -> Tensor:
    if input.dim() < 1:
        raise RuntimeError("[flipud] Input must be >= 1-d.")
    return input.flip([0])


def tile(input: Tensor, dims) -> Tensor:
    """input repeated dims[i] times along each dim (dims or input padded with leading 1s): each size s
    with r copies is a broadcast [r, s] block, reshaped to r * s."""
    dims = list(dims) if not isinstance(dims, int) else [dims]
    nd = max(len(dims), input.dim())
    dims = [1] * (nd - len(dims)) + dims
    sizes = [1] * (nd - input.dim()) + list(input.shape)
    pairs = [v for s in sizes for v in (1, s)]
    expanded = [v for r, s in zip(dims, sizes) for v in (r, s)]
    return input.reshape(pairs).expand(expanded).reshape([r * s for r, s in zip(dims, sizes)])


def _atleast(tensors, fn):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    out = tuple(fn(t) for t in tensors)
    return out[0] if len(out) == 1 else out


def atleast_1d(*tensors):
    return _atleast(tensors, lambda t: t.reshape(1) if t.dim() == 0 else t)


def atleast_2d(*tensors):
    return _atleast(tensors, lambda t: t.reshape(1, 1) if t.dim() == 0 else t.unsqueeze(0) if t.dim() == 1 else t)


def atleast_3d(*tensors):
    def three(t):
        if t.dim() == 0:
            return t.reshape(1, 1, 1)
        if t.dim() == 1:
            return t.reshape(1, t.shape[0], 1)
        if t.dim() == 2:
            return t.unsqueeze(-1)
        return t
    return _atleast(tensors, three)


def _seq(tensors, op: str) -> list:
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"[{op}] expects a non-empty TensorList")
    return tensors


def hstack(tensors) -> Tensor:
    ts = [atleast_1d(t) for t in _seq(tensors, "hstack")]
    return _C.cat(ts, 0 if ts[0].dim() == 1 else 1)


def vstack(tensors) -> Tensor:
    return _C.cat([atleast_2d(t) for t in _seq(tensors, "vstack")], 0)


row_stack = vstack


def dstack(tensors) -> Tensor:
    return _C.cat([atleast_3d(t) for t in _seq(tensors, "dstack")], 2)


def column_stack(tensors) -> Tensor:
    ts = [t.reshape(t.numel(), 1) if t.dim() <= 1 else t for t in _seq(tensors, "column_stack")]
    return _C.cat(ts, 1)


def tensor_split(input: Tensor, indices_or_sections, dim: int = 0) -> tuple:
    """Views of input split into n near-equal sections (the first L % n one longer) or at the given indices."""
    if input.dim() == 0:
        raise RuntimeError("[tensor_split] tensor_split expected at least a 1-dimensional tensor, but got a tensor "
                           "with 0 dims")
    d = _wrap(dim, input.dim(), "tensor_split")
    spec = indices_or_sections
    if isinstance(spec, Tensor):
        if spec.dtype.is_floating_point or spec.dim() > 1:
            raise RuntimeError("[tensor_split] tensor_split expected tensor_indices_or_sections to be a zero-dimensional "
                               "or one-dimensional tensor of long")
        spec = int(spec.item()) if spec.dim() == 0 else spec.tolist()
    length = input.shape[d]
    if isinstance(spec, int):
        if spec <= 0:
            raise RuntimeError(f"[tensor_split] number of sections must be larger than 0, got {spec}")
        small, extra = divmod(length, spec)
        sizes = [small + 1] * extra + [small] * (spec - extra)
        bounds, start = [], 0
        for s in sizes:
            bounds.append((start, start + s))
            start += s
    else:
        points = [min(max(p if p >= 0 else p + length, 0), length) for p in spec]
        edges = [0] + points + [length]
        bounds = [(edges[i], max(edges[i], edges[i + 1])) for i in range(len(edges) - 1)]
    return tuple(input.narrow(d, lo, hi - lo) for lo, hi in bounds)


def _split_even(input: Tensor, sections, dim: int, op: str) -> tuple:
    if isinstance(sections, int) and (sections == 0 or input.shape[dim] % sections):
        raise RuntimeError(f"[{op}] torch.{op} attempted to split along dimension {dim}, but the size of the "
                           f"dimension {input.shape[dim]} is not divisible by the split_size {sections}!")
    return tensor_split(input, sections, dim)


def hsplit(input: Tensor, sections) -> tuple:
    if input.dim() < 1:
        raise RuntimeError("[hsplit] torch.hsplit requires a tensor with at least 1 dimension, but got a tensor with "
                           "0 dimensions!")
    return _split_even(input, sections, 1 if input.dim() > 1 else 0, "hsplit")


def vsplit(input: Tensor, sections) -> tuple:
    if input.dim() < 2:
        raise RuntimeError(f"[vsplit] torch.vsplit requires a tensor with at least 2 dimension, but got a tensor with "
                           f"{input.dim()} dimensions!")
    return _split_even(input, sections, 0, "vsplit")


def dsplit(input: Tensor, sections) -> tuple:
    if input.dim() < 3:
        raise RuntimeError(f"[dsplit] torch.dsplit requires a tensor with at least 3 dimension, but got a tensor with "
                           f"{input.dim()} dimensions!")
    return _split_even(input, sections, 2, "dsplit")


def broadcast_shapes(*shapes):
    """The shape all of `shapes` broadcast to (ints count as 1-d shapes)."""
    from ._compat import Size
    shapes = [(s,) if isinstance(s, int) else tuple(s) for s in shapes]
    nd = max((len(s) for s in shapes), default=0)
    out = [1] * nd
    for s in shapes:
        for i, size in enumerate(s, start=nd - len(s)):
            if size < 0:
                raise RuntimeError(f"[broadcast_shapes] Trying to create tensor with negative dimension {size}: {s}")
            if size != 1 and out[i] not in (1, size):
                raise RuntimeError(f"[broadcast_shapes] Shape mismatch: objects cannot be broadcast to a single shape "
                                   f"(got {[list(x) for x in shapes]})")
            if size != 1:
                out[i] = size
    return Size(out)


def broadcast_tensors(*tensors) -> tuple:
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = tuple(broadcast_shapes(*[t.shape for t in tensors]))
    return tuple(t if tuple(t.shape) == shape else t.expand(shape) for t in tensors)


def take(input: Tensor, index: Tensor) -> Tensor:
    """input seen as 1-D, indexed by `index` (negative indices count from the end); index's shape."""
    n = input.numel()
    if index.numel():
        lo, hi = int(index.min().item()), int(index.max().item())
        if lo < -n or hi >= n:
            bad = hi if hi >= n else lo
            raise IndexError(f"[take] out of range: tried to access index {bad} on a tensor of {n} elements.")
    flat_index = _C.where(index < 0, index + n, index).reshape(-1)
    return _C.index_select(input.reshape(-1), 0, flat_index).reshape(tuple(index.shape))


def argwhere(input: Tensor) -> Tensor:
    return _C.nonzero(input)


def msort(input: Tensor) -> Tensor:
    return _C.sort(input, 0)[0]


def vander(x: Tensor, N=None, increasing: bool = False) -> Tensor:
    """torch.vander (numpy's order: decreasing powers unless increasing)."""
    if x.dim() != 1:
        raise RuntimeError("[vander] x must be a one-dimensional tensor.")
    from .linalg import vander as increasing_vander
    if N is not None and N < 0:
        raise RuntimeError("[vander] N must be non-negative.")
    v = increasing_vander(x if x.dtype.is_floating_point else x.to(_C.int64), N=N)
    return v if increasing else v.flip([-1])


# ---- Tensor-only helpers ------------------------------------------------------------------------------

def _unfold(self: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """The size-long windows every `step` along dimension, as a new last dim (a view)."""
    d = _wrap(dimension, self.dim(), "unfold")
    length = self.shape[d] if self.dim() else 1
    if size > length:
        raise RuntimeError(f"[unfold] maximum size for tensor at dimension {d} is {length} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"[unfold] step is {step} but must be > 0")
    if self.dim() == 0:
        return self.reshape(1)
    sizes, strides = list(self.shape), list(self.stride())
    sizes[d] = (length - size) // step + 1
    inner = strides[d]
    strides[d] *= step
    return _C.as_strided(self, sizes + [size], strides + [inner], self.storage_offset())


def _ravel(self: Tensor) -> Tensor:
    return self.reshape(-1)


def _adjoint(self: Tensor) -> Tensor:
    """The conjugate transpose of the last two dims: the transpose for ember's real dtypes."""
    return self.transpose(-2, -1)


def _H(self: Tensor) -> Tensor:
    if self.dim() not in (0, 2):
        raise RuntimeError(f"[Tensor.H] tensor.H is only supported on matrices (2-D tensors). Got {self.dim()}-D "
                           f"tensor.")
    return self if self.dim() == 0 else self.t()


def _index_mask(self: Tensor, dim: int, index: Tensor, op: str) -> tuple[int, Tensor]:
    """(wrapped dim, a bool mask broadcastable to self that is True at the indexed positions of dim)."""
    d = _wrap(dim, self.dim(), op)
    n = self.shape[d] if self.dim() else 1
    mask = _C.zeros(n, dtype=_C.bool, device=self.device)
    if index.numel():
        mask[index.reshape(-1)] = True
    view = [1] * max(self.dim(), 1)
    view[d] = n
    return d, mask.reshape(view if self.dim() else [])


def _index_fill(self: Tensor, dim: int, index: Tensor, value) -> Tensor:
    _, mask = _index_mask(self, dim, index, "index_fill")
    fill = value if isinstance(value, Tensor) else _C.scalar_tensor(value, dtype=self.dtype, device=self.device)
    if fill.dim() != 0:
        raise RuntimeError(f"[index_fill] only supports a 0-dimensional value tensor, but got tensor with "
                           f"{fill.dim()} dimension(s).")
    return _C.where(mask, fill.to(self.dtype), self)


def _index_copy(self: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """self with the slices index[i] along dim replaced by source's slice i."""
    d = _wrap(dim, self.dim(), "index_copy")
    if index.dim() > 1 or (source.dim() and index.numel() != source.shape[d]):
        raise RuntimeError(f"[index_copy] index_copy_(): Number of indices ({index.numel()}) should be equal to "
                           f"source.size(dim) ({source.shape[d] if source.dim() else 1})")
    moved = self.movedim(d, 0).index_put((index.reshape(-1),), source.movedim(d, 0).to(self.dtype))
    return moved.movedim(0, d)


def _fill_diagonal_(self: Tensor, fill_value, wrap: bool = False) -> Tensor:
    """Writes fill_value on the main diagonal (all dims equal, or a matrix); wrap continues it
    every n + 1 rows down a tall matrix, as torch does."""
    if self.dim() < 2:
        raise RuntimeError("[fill_diagonal_] dimensions must larger than 1")
    if self.dim() > 2 and len(set(self.shape)) != 1:
        raise RuntimeError("[fill_diagonal_] all dimensions of input must be of equal length")
    numel = self.numel()
    if self.dim() == 2:
        rows, cols = self.shape
        step = cols + 1
        count = (numel + step - 1) // step if wrap and rows > cols + 1 else min(rows, cols)
    else:
        step = sum(self.shape[0] ** k for k in range(self.dim()))
        count = self.shape[0]
    flat = _C.zeros(numel, dtype=_C.bool, device=self.device)
    if count:
        flat[_C.arange(count, device=self.device) * step] = True
    return self.masked_fill_(flat.reshape(tuple(self.shape)), fill_value)


def _inplace(fn):
    """fn's result written into self (read through a copy when self is in the graph)."""
    def method(self, *args, **kwargs):
        return self.copy_(fn(self.clone() if self.requires_grad else self, *args, **kwargs))
    method.__name__ = fn.__name__ + "_"
    return method


def _is_nonzero(self: Tensor) -> bool:
    if self.numel() != 1:
        raise RuntimeError("[is_nonzero] Boolean value of Tensor with " + ("no values" if self.numel() == 0 else
                           "more than one value") + " is ambiguous")
    return bool(self.reshape(-1)[0].item() != 0)


TENSOR_METHODS = {
    "unfold": _unfold, "ravel": _ravel, "adjoint": _adjoint, "mH": property(_adjoint), "H": property(_H),
    "index_fill": _index_fill, "index_fill_": _inplace(_index_fill), "index_copy": _index_copy,
    "index_copy_": _inplace(_index_copy), "fill_diagonal_": _fill_diagonal_,
    "is_complex": lambda self: False, "is_signed": lambda self: self.dtype not in (_C.uint8, _C.bool),
    "is_nonzero": _is_nonzero, "is_same_size": lambda self, other: tuple(self.shape) == tuple(other.shape),
    "nbytes": property(lambda self: self.numel() * self.element_size()),
    "repeat_interleave": repeat_interleave, "diff": diff, "rot90": rot90, "fliplr": fliplr, "flipud": flipud,
    "tile": tile, "tensor_split": tensor_split, "hsplit": hsplit, "vsplit": vsplit, "dsplit": dsplit, "take": take,
    "argwhere": argwhere, "msort": msort, "split_with_sizes": split_with_sizes,
    "new_empty_strided": _new_empty_strided,
}
