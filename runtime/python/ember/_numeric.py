"""torch's sequence builders, window functions and numerical integration as compositions of ember
ops: logspace, range (deprecated, inclusive), hann/hamming/blackman/bartlett windows, trapezoid/trapz,
cumulative_trapezoid and unravel_index. kaiser_window is absent: it needs i0, which ember lacks."""
from __future__ import annotations

import builtins
import math
import warnings

from . import _C
from ._C import Tensor
from ._shape_ops import _wrap

__all__ = ["logspace", "range", "hann_window", "hamming_window", "blackman_window", "bartlett_window", "trapezoid",
           "trapz", "cumulative_trapezoid", "unravel_index"]


def _finish(t: Tensor, requires_grad: bool) -> Tensor:
    return t.requires_grad_(True) if requires_grad else t


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, layout=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """base ** linspace(start, end, steps), evaluated in float64 and cast to dtype (float32 by default)."""
    if steps < 0:
        raise RuntimeError(f"[logspace] number of steps must be non-negative, got {steps}")
    exponents = _C.linspace(float(start), float(end), steps, dtype=_C.float64, device=device)
    return _finish(_C.pow(float(base), exponents).to(dtype or _C.float32), requires_grad)


def range(start, end, step=1, *, dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:  # noqa: A001
    """start, start + step, ... up to end inclusive (torch.range is deprecated in favour of arange)."""
    warnings.warn("torch.range is deprecated and will be removed in a future release because its behavior is "
                  "inconsistent with Python's range builtin. Instead, use torch.arange, which produces values in "
                  "[start, end).", UserWarning, stacklevel=2)
    if step == 0:
        raise RuntimeError("[range] step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"[range] upper bound and lower bound inconsistent with step sign (start={start}, "
                           f"end={end}, step={step})")
    n = int(math.floor((end - start) / step)) + 1
    values = _C.arange(n, dtype=_C.float64, device=device) * step + start
    return _finish(values.to(dtype or _C.float32), requires_grad)


def _window(name: str, window_length: int, periodic: bool, dtype, device, requires_grad: bool, terms):
    """sum_k a_k cos(2 pi k n / (N - 1)) for n < window_length, with N one longer when periodic."""
    dtype = dtype or _C.float32
    if window_length < 0:
        raise RuntimeError(f"[{name}] {name} requires non-negative window_length, got window_length={window_length}")
    if not dtype.is_floating_point:
        raise RuntimeError(f"[{name}] {name} expects floating point dtypes, got: {dtype}")
    if window_length <= 1:
        return _finish(_C.ones(window_length, dtype=dtype, device=device), requires_grad)
    n = window_length + 1 if periodic else window_length
    phase = _C.arange(n, dtype=dtype, device=device) * (2 * math.pi / (n - 1))
    out = terms(phase)
    return _finish(out[:window_length] if periodic else out, requires_grad)


def hamming_window(window_length: int, periodic: bool = True, alpha: float = 0.54, beta: float = 0.46, *,
                   dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:
    return _window("hamming_window", window_length, periodic, dtype, device, requires_grad,
                   lambda phase: alpha - beta * _C.cos(phase))


def hann_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None, device=None,
                requires_grad: bool = False) -> Tensor:
    return _window("hann_window", window_length, periodic, dtype, device, requires_grad,
                   lambda phase: 0.5 - 0.5 * _C.cos(phase))


def blackman_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None, device=None,
                    requires_grad: bool = False) -> Tensor:
    return _window("blackman_window", window_length, periodic, dtype, device, requires_grad,
                   lambda phase: 0.42 - 0.5 * _C.cos(phase) + 0.08 * _C.cos(phase * 2))


def bartlett_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None, device=None,
                    requires_grad: bool = False) -> Tensor:
    """1 - |2n / (N - 1) - 1|: the triangle (phase / pi is 2n / (N - 1))."""
    return _window("bartlett_window", window_length, periodic, dtype, device, requires_grad,
                   lambda phase: 1 - _C.abs(phase / math.pi - 1))


def _spacing(op: str, y: Tensor, x, dx, d: int):
    """The sample spacing along d: a Python number (dx) or a tensor of differences of x."""
    if x is None:
        return 1 if dx is None else dx
    if not isinstance(x, Tensor):
        return x
    if x.dim() == 1:
        if x.shape[0] != y.shape[d]:
            raise RuntimeError(f"[{op}] {op}: There must be one `x` value for each sample point (x has "
                               f"{x.shape[0]}, y has {y.shape[d]} along dim {d})")
        view = [1] * y.dim()
        view[d] = x.shape[0]
        x = x.reshape(view)
    elif x.dim() < y.dim():
        x = x.reshape([1] * (y.dim() - x.dim()) + list(x.shape))
    length = x.shape[d]
    return x.narrow(d, 1, length - 1) - x.narrow(d, 0, length - 1)


def _trapezoid_args(op: str, y: Tensor, x, dx, dim: int):
    """(dim wrapped, y's length along it, the spacing) for the trapezoid rules."""
    d = _wrap(dim, y.dim(), op)
    if isinstance(x, Tensor) and dx is not None:
        raise RuntimeError(f"[{op}] {op}: received both x and dx; pass one of them")
    return d, y.shape[d], _spacing(op, y, x, dx, d)


def trapezoid(y: Tensor, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """The trapezoidal rule along dim, with samples at x (a tensor) or evenly spaced by dx."""
    d, length, spacing = _trapezoid_args("trapezoid", y, x, dx, dim)
    if length == 0:
        shape = [s for k, s in enumerate(y.shape) if k != d]
        return _C.zeros(shape, dtype=y.dtype if y.dtype.is_floating_point else _C.float32, device=y.device)
    if isinstance(spacing, Tensor):
        return (spacing * (y.narrow(d, 1, length - 1) + y.narrow(d, 0, length - 1)) / 2.0).sum(d)
    return (y.sum(d) - (y.select(d, 0) + y.select(d, -1)) * 0.5) * spacing


def trapz(y: Tensor, x=None, *, dx=None, dim: int = -1) -> Tensor:
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y: Tensor, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """The running trapezoidal integral along dim (one element shorter than y there)."""
    d, length, spacing = _trapezoid_args("cumulative_trapezoid", y, x, dx, dim)
    if length == 0:
        return _C.zeros_like(y, dtype=y.dtype if y.dtype.is_floating_point else _C.float32)
    areas = (y.narrow(d, 0, length - 1) + y.narrow(d, 1, length - 1)) * spacing / 2.0
    return _running_sum(areas, d)


def _running_sum(x: Tensor, d: int) -> Tensor:
    """Inclusive prefix sums along d by doubling (log2(n) shifted adds)."""
    n = x.shape[d]
    k = 1
    while k < n:
        shifted = _C.cat([_C.zeros_like(x.narrow(d, 0, k)), x.narrow(d, 0, n - k)], d)
        x = x + shifted
        k *= 2
    return x


def unravel_index(indices, shape) -> tuple:
    """The coordinates in a row-major tensor of `shape` of each flat index (one tensor per dim).
    Negative indices count from the end, as in torch."""
    if not isinstance(indices, Tensor):
        indices = _C.tensor(indices)
    if indices.dtype.is_floating_point or indices.dtype == _C.bool:
        raise TypeError(f"[unravel_index] expected 'indices' to be integer dtype, but got {indices.dtype}")
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"[unravel_index] 'shape' cannot have negative values, but got {shape}")
    numel = 1
    for size in shape:
        numel *= size
    if numel == 0 and indices.numel():
        raise ValueError(f"[unravel_index] cannot unravel index of a tensor of shape {shape} with no elements")
    flat = indices.to(_C.int64)
    if numel:
        flat = _C.remainder(flat, numel)
    coords = []
    for size in reversed(shape):
        coords.append(_C.remainder(flat, builtins.max(size, 1)))
        flat = _C.div(flat, builtins.max(size, 1), rounding_mode="floor")
    return tuple(reversed(coords))
