"""torch's order statistics, counting and NaN-aware reductions as compositions of ember ops:
median/nanmedian, kthvalue, mode, quantile/nanquantile, nanmean/nansum, count_nonzero, aminmax,
bincount, histc, histogram, unique, unique_consecutive, cov, corrcoef.

Note [Selections through sort]
Order statistics sort along the dim (ember's sort is stable, NaNs last) and pick positions; values
are then gathered from the input at the picked indices, so their gradient lands on exactly those
elements, as torch's value-selecting backward does. Reductions over all elements without a dim
(median(), nanmedian()) spread the gradient evenly over every element equal to the result, again
as torch does.
"""
from __future__ import annotations

import math

import numpy as np

from . import _C
from ._C import Tensor
from ._compat import return_type
from ._shape_ops import diagonal_view
from .autograd.function import Function

__all__ = ["median", "nanmedian", "kthvalue", "mode", "quantile", "nanquantile", "nanmean", "nansum",
           "count_nonzero", "aminmax", "bincount", "histc", "histogram", "unique", "unique_consecutive", "cov",
           "corrcoef"]


_Median = return_type("median", "values indices")
_NanMedian = return_type("nanmedian", "values indices")
_Kthvalue = return_type("kthvalue", "values indices")
_Mode = return_type("mode", "values indices")
_AMinMax = return_type("aminmax", "min max")


def _wrap(d: int, nd: int, op: str) -> int:
    n = max(nd, 1)
    if not -n <= d < n:
        raise IndexError(f"[{op}] Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})")
    return d % n


def _dims(dim, nd: int, op: str) -> list:
    dims = [dim] if isinstance(dim, int) else list(dim)
    wrapped = [_wrap(d, nd, op) for d in dims]
    if len(set(wrapped)) != len(wrapped):
        raise RuntimeError(f"[{op}] dim {wrapped[0]} appears multiple times in the list of dims")
    return wrapped


class _EvenlyDistributed(Function):
    """`value` (a reduction of x over all elements) whose gradient is shared evenly by the elements of x
    equal to it (NaN counting as equal to NaN)."""

    @staticmethod
    def forward(ctx, x, value):
        ctx.save_for_backward(x, value)
        return value.clone()

    @staticmethod
    def backward(ctx, g):
        x, value = ctx.saved_tensors
        mask = (x == value).logical_or(x.isnan().logical_and(value.isnan())).to(g.dtype)
        return g * mask / mask.sum(), None


def _pick(x: Tensor, d: int, pos: Tensor, keepdim: bool):
    """values and indices of sorted position `pos` (keepdim-shaped) along d (Note [Selections through sort])."""
    _, order = _C.sort(x, d, stable=True)
    idx = order.gather(d, pos)
    values = x.gather(d, idx)
    return (values, idx) if keepdim else (values.squeeze(d), idx.squeeze(d))


def _check_reduce_size(x: Tensor, d: int, op: str) -> None:
    if x.dim() and x.shape[d] == 0:
        raise IndexError(f"[{op}] {op}(): Expected reduction dim {d} to have non-zero size.")


def median(input: Tensor, dim=None, keepdim: bool = False):
    """The lower median (NaN when the values include NaN); with a dim, values and indices."""
    return _median(input, dim, keepdim, ignore_nan=False)


def nanmedian(input: Tensor, dim=None, keepdim: bool = False):
    """median over the non-NaN values (NaN where there are none)."""
    return _median(input, dim, keepdim, ignore_nan=True)


def _median(x: Tensor, dim, keepdim: bool, ignore_nan: bool):
    op = "nanmedian" if ignore_nan else "median"
    if dim is None:
        flat = x.reshape(-1)
        if flat.numel() == 0:
            return _C.full((), float("nan"), dtype=x.dtype, device=x.device)
        with _no_grad():
            values, _ = _median(flat.detach(), 0, False, ignore_nan)
        return _EvenlyDistributed.apply(x, values)
    d = _wrap(dim, x.dim(), op)
    _check_reduce_size(x, d, op)
    if x.dim() == 0:
        return (_Median if not ignore_nan else _NanMedian)(x.clone(), _C.zeros((), dtype=_C.int64, device=x.device))
    n = x.shape[d]
    nans = x.isnan().sum(d, keepdim=True) if x.dtype.is_floating_point else None
    if nans is None:
        pos = _C.full_like(x.narrow(d, 0, 1), (n - 1) // 2, dtype=_C.int64)
    elif ignore_nan:  # (count - 1) // 2 of the non-NaN values; the first NaN when all are NaN
        pos = ((n - nans - 1) // 2).clamp_min(0)
    else:  # the first NaN (sorted last) where there is one
        pos = _C.where(nans > 0, n - nans, _C.full_like(nans, (n - 1) // 2))
    return (_NanMedian if ignore_nan else _Median)(*_pick(x, d, pos, keepdim))


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    """The k-th smallest value (1-based; NaN counts as largest) along dim and its index."""
    d = _wrap(dim, input.dim(), "kthvalue")
    n = input.shape[d] if input.dim() else 1
    if not 1 <= k <= n:
        raise RuntimeError(f"[kthvalue] kthvalue(): selected number k out of range for dimension {d} (k={k}, size {n})")
    if input.dim() == 0:
        return _Kthvalue(input.clone(), _C.zeros((), dtype=_C.int64, device=input.device))
    pos = _C.full_like(input.narrow(d, 0, 1), k - 1, dtype=_C.int64)
    return _Kthvalue(*_pick(input, d, pos, keepdim))


def mode(input: Tensor, dim: int = -1, keepdim: bool = False):
    """The most frequent value along dim (the smallest among equally frequent ones) and the index of
    its last occurrence, as torch's CPU kernel returns. Counted on the host (numpy)."""
    d = _wrap(dim, input.dim(), "mode")
    _check_reduce_size(input, d, "mode")
    if input.dim() == 0:
        return _Mode(input.clone(), _C.zeros((), dtype=_C.int64, device=input.device))
    moved = input.detach().movedim(d, -1)
    n = moved.shape[-1]
    rows = moved.reshape(-1, n).cpu()
    vals = rows.float().numpy() if rows.dtype == _C.bfloat16 else rows.numpy()
    order = np.argsort(vals, axis=-1, kind="stable")
    s = np.take_along_axis(vals, order, -1)
    # Runs of equal values in each sorted row; a run's elements keep their original order.
    new_run = np.ones_like(s, dtype=bool)
    new_run[:, 1:] = s[:, 1:] != s[:, :-1]
    run_id = np.cumsum(new_run.reshape(-1)).reshape(s.shape) - 1
    counts = np.bincount(run_id.reshape(-1))[run_id]
    first = np.argmax(counts, axis=-1)  # the first (smallest) of the most frequent runs
    last = first + counts[np.arange(len(first)), first] - 1
    index = order[np.arange(len(first)), last].reshape(tuple(moved.shape[:-1]) + (1,))
    idx = _C.from_numpy(np.ascontiguousarray(index)).to(input.device).movedim(-1, d)
    values = input.gather(d, idx)
    return _Mode(values, idx) if keepdim else _Mode(values.squeeze(d), idx.squeeze(d))


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(x: Tensor, q, dim, keepdim: bool, interpolation: str, ignore_nan: bool) -> Tensor:
    op = "nanquantile" if ignore_nan else "quantile"
    if x.numel() == 0:
        raise RuntimeError(f"[{op}] {op}() input tensor must be non-empty")
    if x.dtype not in (_C.float32, _C.float64):
        raise RuntimeError(f"[{op}] {op}() input tensor must be either float or double dtype")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"[{op}] {op}() interpolation must be one of {', '.join(_INTERPOLATIONS)}. Got "
                         f"'{interpolation}'")
    scalar_q = not isinstance(q, Tensor)
    if scalar_q:
        if not 0 <= q <= 1:
            raise RuntimeError(f"[{op}] {op}() q must be in the range [0, 1] but got {q}")
        qt = _C.full((1,), float(q), dtype=x.dtype, device=x.device)
    else:
        if q.dim() > 1:
            raise RuntimeError(f"[{op}] {op}() q must be a scalar or 1D tensor")
        if q.dtype != x.dtype:
            raise RuntimeError(f"[{op}] {op}() q tensor must be same dtype as the input tensor")
        if q.numel() and not bool(((q >= 0).logical_and(q <= 1)).all().item()):
            raise RuntimeError(f"[{op}] {op}() q values must be in the range [0, 1]")
        qt = q.reshape(-1)
    # Reduce over the last dim of a [..., n] view (all elements when dim is None).
    if dim is None:
        v = x.reshape(-1)
        kept_shape = [1] * x.dim() if keepdim else []
    else:
        d = _wrap(dim, x.dim(), op)
        v = x.movedim(d, -1) if x.dim() else x.reshape(1)
        kept_shape = list(x.shape)
        if x.dim():
            if keepdim:
                kept_shape[d] = 1
            else:
                del kept_shape[d]
    n = v.shape[-1]
    sorted_v, _ = _C.sort(v, -1)
    nans = v.isnan().sum(-1, keepdim=True)  # [..., 1]
    count = (n - nans) if ignore_nan else _C.full_like(nans, n)
    last = (count - 1).clamp_min(0).to(x.dtype)
    ranks = qt * last  # [..., nq]
    if not ignore_nan:  # a row with NaN ranks its last (NaN) element
        ranks = _C.where(nans > 0, _C.full_like(ranks, n - 1), ranks)
    # ranks are >= 0: truncation is the floor, and the ceiling is one above it unless exact.
    below = ranks.long()
    above = below + (ranks > below.to(x.dtype)).long()
    if interpolation == "lower":
        ranks, above = below.to(x.dtype), below
    elif interpolation == "higher":
        ranks, below = above.to(x.dtype), above
    elif interpolation == "nearest":
        ranks = ranks.round()
        below = above = ranks.long()
    weights = _C.full_like(ranks, 0.5) if interpolation == "midpoint" else ranks - below.to(x.dtype)
    lo = sorted_v.gather(-1, below)
    hi = sorted_v.gather(-1, above)
    out = _C.lerp(lo, hi, weights)
    if ignore_nan:  # rows of NaNs only
        out = _C.where(count == 0, _C.full_like(out, float("nan")), out)
    out = out.movedim(-1, 0).reshape([qt.shape[0]] + kept_shape)
    return out.squeeze(0) if scalar_q or q.dim() == 0 else out


def quantile(input: Tensor, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear") -> Tensor:
    """The q-th quantiles along dim (of all elements without one), interpolating between sorted values
    as torch does; NaN where the values include NaN. q may be a 1-D tensor: its dim comes first."""
    return _quantile(input, q, dim, keepdim, interpolation, ignore_nan=False)


def nanquantile(input: Tensor, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear") -> Tensor:
    return _quantile(input, q, dim, keepdim, interpolation, ignore_nan=True)


def nansum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    x = _C.where(input.isnan(), _C.zeros((), dtype=input.dtype, device=input.device), input) \
        if input.dtype.is_floating_point else input
    return x.sum(_reduced(dim, input.dim()), keepdim, dtype=dtype)


def nanmean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"[nanmean] nanmean(): expected input to have floating point or complex dtype but got "
                           f"{_torch_name(input.dtype)}")
    dims = _reduced(dim, input.dim())
    count = input.isnan().logical_not().sum(dims, keepdim)
    return nansum(input, dim, keepdim, dtype=dtype) / count


def _reduced(dim, nd: int) -> list:
    if dim is None:
        return list(range(nd))
    return [dim] if isinstance(dim, int) else list(dim)


def count_nonzero(input: Tensor, dim=None) -> Tensor:
    dims = [] if dim is None else _dims(dim, input.dim(), "count_nonzero")
    nonzero = input != 0 if input.dtype != _C.bool else input
    return nonzero.sum(dims) if dims else nonzero.sum()


def aminmax(input: Tensor, *, dim=None, keepdim: bool = False):
    if dim is None:
        if input.numel() == 0:
            raise RuntimeError("[aminmax] aminmax(): cannot compute aminmax over an empty dimension as the operation "
                               "has no identity.")
        dims = list(range(input.dim()))
    else:
        d = _wrap(dim, input.dim(), "aminmax")
        if input.dim() and input.shape[d] == 0:
            raise IndexError(f"[aminmax] aminmax(): Expected reduction dim {d} to have non-zero size.")
        dims = [d] if input.dim() else []
    return _AMinMax(_C.amin(input, dims, keepdim), _C.amax(input, dims, keepdim))


def bincount(input: Tensor, weights=None, minlength: int = 0) -> Tensor:
    """Counts of each value of a 1-D non-negative integer tensor (sums of weights, if given); the
    result has max(input) + 1 entries, at least minlength."""
    if minlength < 0:
        raise RuntimeError(f"[bincount] minlength should be >= 0 (got {minlength})")
    if input.dim() != 1 or input.dtype.is_floating_point or input.dtype == _C.bool:
        if input.dtype.is_floating_point:
            raise NotImplementedError(f"[bincount] \"bincount_cpu\" not implemented for '{_torch_name(input.dtype)}'")
        raise RuntimeError(f"[bincount] bincount only supports 1-d non-negative integral inputs (got "
                           f"{list(input.shape)} {input.dtype}).")
    if weights is not None and tuple(weights.shape) != tuple(input.shape):
        raise RuntimeError(f"[bincount] weights should be 1-d and have the same length as input (got "
                           f"{list(weights.shape)} and {list(input.shape)})")
    if input.numel() == 0:  # torch: int64 zeros whatever the weights
        return _C.zeros(minlength, dtype=_C.int64, device=input.device)
    n = minlength
    if input.numel():
        lo, hi = int(input.min().item()), int(input.max().item())
        if lo < 0:
            raise RuntimeError("[bincount] bincount only supports 1-d non-negative integral inputs.")
        n = max(n, hi + 1)
    index = input.long()
    if weights is None:
        return _C.zeros(n, dtype=_C.int64, device=input.device).index_add(0, index, _C.ones_like(index))
    dtype = _C.float32 if weights.dtype == _C.float32 else _C.float64
    return _C.zeros(n, dtype=dtype, device=input.device).index_add(0, index, weights.to(dtype))


def histc(input: Tensor, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:  # noqa: A002
    """A histogram of `bins` equal-width bins over [min, max] (the data's range when both are 0);
    values outside are ignored, the max value falls in the last bin."""
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"[histc] \"histogram_cpu\" not implemented for '{_torch_name(input.dtype)}'")
    if bins <= 0:
        raise RuntimeError(f"[histc] torch.histogram(): bins must be > 0, but got {bins} for dimension 0")
    lo, hi = float(min), float(max)
    if lo == hi and input.numel():
        lo, hi = float(input.min().item()), float(input.max().item())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError("[histc] torch.histc: max must be larger than min")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise RuntimeError(f"[histc] torch.histc: range of [{lo}, {hi}] is not finite")
    x = input.detach().reshape(-1)
    inside = (x >= lo).logical_and(x <= hi)
    pos = ((x - lo) * bins / (hi - lo)).long().clamp(0, bins - 1)  # >= 0 inside: truncation floors
    pos = _C.where(inside, pos, _C.full_like(pos, bins))  # one spare bin for everything outside
    counts = _C.zeros(bins + 1, dtype=input.dtype, device=input.device)
    return counts.index_add(0, pos, _C.ones_like(x)).narrow(0, 0, bins)


def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False,  # noqa: A002
           dim=None):
    """The distinct values in ascending order (NaNs are all distinct, as in torch), optionally the index
    of each input element's value and each value's count; with a dim, distinct slices along it."""
    if dim is not None:
        return _unique_dim(input, _wrap(dim, input.dim(), "unique"), return_inverse, return_counts, consecutive=False)
    flat = input.reshape(-1)
    values, order = _C.sort(flat, 0, stable=True)
    return _runs(values, order, input.shape, return_inverse, return_counts)


def unique_consecutive(input: Tensor, return_inverse: bool = False, return_counts: bool = False, dim=None):
    """Collapses runs of equal consecutive values (slices along dim)."""
    if dim is not None:
        return _unique_dim(input, _wrap(dim, input.dim(), "unique_consecutive"), return_inverse, return_counts,
                           consecutive=True)
    return _runs(input.reshape(-1), None, input.shape, return_inverse, return_counts)


def _runs(values: Tensor, order, shape, return_inverse: bool, return_counts: bool):
    """Unique values of runs in `values` (the input's order, or sorted with `order` the permutation)."""
    n = values.shape[0]
    if n == 0:
        empty_i = _C.zeros(0, dtype=_C.int64, device=values.device)
        out = [values]
    else:
        starts = _C.cat([_C.ones(1, dtype=_C.bool, device=values.device), values[1:] != values[:-1]])
        # Each element's run: how many runs start at or before it, minus one.
        run_starts = _C.nonzero(starts).reshape(-1)
        run_id = _C.searchsorted(run_starts, _C.arange(n, device=values.device), right=True) - 1
        out = [values[starts]]
    if return_inverse:
        if n == 0:
            inverse = empty_i
        elif order is None:
            inverse = run_id
        else:
            inverse = _C.zeros(n, dtype=_C.int64, device=values.device).scatter(0, order, run_id)
        out.append(inverse.reshape(tuple(shape)))
    if return_counts:
        out.append(empty_i if n == 0 else bincount(run_id))
    return out[0] if len(out) == 1 else tuple(out)


def _unique_dim(input: Tensor, d: int, return_inverse: bool, return_counts: bool, consecutive: bool):
    """Distinct slices along d (numpy on the host: lexicographic order, like torch)."""
    if any(size == 0 for i, size in enumerate(input.shape) if i != d):
        raise RuntimeError(f"[unique] There are 0 sized dimensions, and they aren't selected, so unique cannot be "
                           f"applied (shape {list(input.shape)}, dim {d})")
    moved = input.detach().movedim(d, 0)
    rest = 1
    for size in moved.shape[1:]:
        rest *= size
    rows = moved.reshape(moved.shape[0], rest).cpu()
    host = rows.float().numpy() if rows.dtype == _C.bfloat16 else rows.numpy()
    if consecutive:
        starts = np.ones(host.shape[0], dtype=bool)
        if host.shape[0] and host.shape[1]:
            starts[1:] = (host[1:] != host[:-1]).any(1)
        elif host.shape[0]:
            starts[1:] = False
        inverse = np.cumsum(starts) - 1
        keep = np.nonzero(starts)[0]
        counts = np.bincount(inverse, minlength=len(keep)) if len(inverse) else np.zeros(0, dtype=np.int64)
    elif host.shape[0] and host.shape[1]:
        _, keep, inverse, counts = np.unique(host, axis=0, return_index=True, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
    else:  # no slices, or empty slices (all equal)
        keep = np.arange(min(host.shape[0], 1))
        inverse = np.zeros(host.shape[0], dtype=np.int64)
        counts = np.array([host.shape[0]] if host.shape[0] else [], dtype=np.int64)
    dev = input.device
    values = _C.index_select(input, d, _C.from_numpy(np.asarray(keep, dtype=np.int64)).to(dev))
    out = [values]
    if return_inverse:
        out.append(_C.from_numpy(np.asarray(inverse, dtype=np.int64)).to(dev))
    if return_counts:
        out.append(_C.from_numpy(np.asarray(counts, dtype=np.int64)).to(dev))
    return out[0] if len(out) == 1 else tuple(out)


_Histogram = return_type("histogram", "hist bin_edges")


def histogram(input: Tensor, bins=100, *, range=None, weight=None, density: bool = False):  # noqa: A002
    """Counts (or summed weights) in `bins` equal-width bins over range (the data's range by default;
    +-0.5 around a constant) or between the given edges; values outside are ignored, the last edge
    belongs to the last bin. density divides by the total and the bin widths."""
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"[histogram] \"histogramdd\" not implemented for '{_torch_name(input.dtype)}'")
    x = input.detach().reshape(-1)
    if isinstance(bins, Tensor):
        edges = bins.to(input.dtype)
        if edges.dim() != 1 or edges.numel() < 1:
            raise RuntimeError("[histogram] torch.histogram(): bins tensor should have one dimension and at least 1 "
                               "element")
        nbins = edges.numel() - 1
        lo, hi = edges[0], edges[-1]
        pos = _C.searchsorted(edges, x, right=True) - 1
        pos = _C.where(x == hi, _C.full_like(pos, nbins - 1), pos)
        inside = (x >= lo).logical_and(x <= hi)
    else:
        if bins <= 0:
            raise RuntimeError(f"[histogram] torch.histogram(): bins must be > 0, but got {bins} for dimension 0")
        nbins = bins
        if range is not None:
            lo_f, hi_f = float(range[0]), float(range[1])
        elif x.numel():
            lo_f, hi_f = float(x.min().item()), float(x.max().item())
        else:
            lo_f, hi_f = 0.0, 0.0
        if lo_f == hi_f:
            lo_f, hi_f = lo_f - 0.5, hi_f + 0.5
        if lo_f > hi_f:
            raise RuntimeError(f"[histogram] torch.histogram(): min should not exceed max, but got min {lo_f} max "
                               f"{hi_f}")
        edges = _C.linspace(lo_f, hi_f, nbins + 1, dtype=input.dtype, device=input.device)
        inside = (x >= lo_f).logical_and(x <= hi_f)
        pos = ((x - lo_f) * nbins / (hi_f - lo_f)).long().clamp(0, nbins - 1)  # >= 0 inside: truncation floors
    pos = _C.where(inside, pos, _C.full_like(pos, nbins)).clamp(0, nbins)  # one spare bin for the outside
    w = _C.ones_like(x) if weight is None else weight.detach().reshape(-1).to(input.dtype)
    hist = _C.zeros(nbins + 1, dtype=input.dtype, device=input.device).index_add(0, pos, w).narrow(0, 0, nbins)
    if density:
        widths = edges[1:] - edges[:-1]
        hist = hist / (hist.sum() * widths)
    return _Histogram(hist, edges)


def cov(input: Tensor, *, correction: int = 1, fweights=None, aweights=None) -> Tensor:
    """Covariance of the rows (variables) of input over its columns (observations), with torch's
    frequency/importance weights and correction."""
    if input.dim() > 2:
        raise RuntimeError(f"[cov] cov(): expected input to have two or fewer dimensions but got an input with "
                           f"{input.dim()} dimensions")
    x = input.reshape(1, -1) if input.dim() < 2 else input
    if not x.dtype.is_floating_point:
        x = x.to(_C.float32)
    n = x.shape[1]
    w = None
    if fweights is not None:
        w = fweights.to(x.dtype)
    if aweights is not None:
        w = aweights.to(x.dtype) if w is None else w * aweights.to(x.dtype)
    if w is None:
        avg = x.mean(1)
        norm = float(n - correction)
    else:
        w_sum = w.sum()
        avg = (x * w).sum(1) / w_sum
        if correction == 0:
            norm = w_sum
        elif aweights is None:
            norm = w_sum - correction
        else:
            norm = w_sum - correction * (w * aweights.to(x.dtype)).sum() / w_sum
    if not isinstance(norm, Tensor):
        norm = _C.scalar_tensor(norm, dtype=x.dtype, device=x.device)
    norm = norm.clamp_min(0)
    centered = x - avg.unsqueeze(1)
    weighted = centered if w is None else centered * w
    c = _C.mm(centered, weighted.t()) / norm
    return c.squeeze()


def corrcoef(input: Tensor) -> Tensor:
    """Pearson correlation coefficients of the rows, clipped to [-1, 1]."""
    c = cov(input)
    if c.dim() == 0:
        return c / c
    std = diagonal_view(c).sqrt()
    c = c / std.unsqueeze(1) / std.unsqueeze(0)
    return c.clamp(-1, 1)


def _no_grad():
    from .autograd.grad_mode import no_grad
    return no_grad()


_TORCH_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16", "int64": "Long",
                "int32": "Int", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def _torch_name(dtype) -> str:
    return _TORCH_NAMES[repr(dtype).split(".")[-1]]


TENSOR_METHODS = {
    "median": median, "nanmedian": nanmedian, "kthvalue": kthvalue, "mode": mode, "quantile": quantile,
    "nanquantile": nanquantile, "nanmean": nanmean, "nansum": nansum, "count_nonzero": count_nonzero,
    "aminmax": aminmax, "bincount": bincount, "histc": histc, "unique": unique,
    "unique_consecutive": unique_consecutive, "histogram": histogram, "cov": cov, "corrcoef": corrcoef,
}
