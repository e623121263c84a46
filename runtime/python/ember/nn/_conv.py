"""Convolution, pooling, batch/group norm and channel dropout as functions (torch.nn.functional's).

Convolutions are the C++ ops of runtime/spec/conv.yaml (im2col + one GEMM per group, Note [Convolution
as im2col + GEMM] in ops/conv.cpp); the 1-d forms run the 2-d op on a height-1 image. Average and
adaptive pooling, batch norm, group norm and dropout2d are composites of ember ops, so autograd and
every device come from those ops; max pooling is its own op (it returns the argmax indices)."""
from __future__ import annotations

import math

import numpy as np

import ember
from ember import _C
from ember import Tensor

from ._padding import pad

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "unfold", "fold", "max_pool1d",
           "max_pool2d", "max_pool1d_with_indices", "max_pool2d_with_indices", "avg_pool1d", "avg_pool2d",
           "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices", "batch_norm", "group_norm",
           "dropout1d", "dropout2d", "dropout3d"]


def _tuple(op: str, name: str, value, n: int) -> tuple:
    """An int (or a 1-element sequence) repeated n times, or a sequence of n ints."""
    if isinstance(value, int):
        return (value,) * n
    try:
        items = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"[{op}] {name} must be an int or a tuple of {n} ints, got {value!r}") from None
    if len(items) == 1:
        return items * n
    if len(items) != n:
        raise ValueError(f"[{op}] {name} must be an int or a tuple of {n} ints, got {value!r}")
    return items


def _check_dims(op: str, input: Tensor, dims: tuple, what: str) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"[{op}] expected input to be a Tensor, got {type(input).__name__}")
    if input.dim() not in dims:
        raise RuntimeError(f"[{op}] Expected {what} input, but got input of size: {list(input.shape)}")


# ---- convolution -----------------------------------------------------------------------------------

def _same_padding(op: str, kernel: tuple, stride: tuple, dilation: tuple) -> tuple[list, list]:
    """torch's padding='same': total d*(k-1) per dim, the odd element on the right."""
    if any(s != 1 for s in stride):
        raise ValueError(f"[{op}] padding='same' is not supported for strided convolutions (stride={stride})")
    total = [d * (k - 1) for d, k in zip(dilation, kernel)]
    return [t // 2 for t in total], [t - t // 2 for t in total]


def _resolve_padding(op: str, input: Tensor, padding, kernel: tuple, stride: tuple, dilation: tuple):
    """Returns (input, symmetric padding): string paddings become numbers; the odd extra element of
    'same' with an even effective kernel is padded onto the input's right side."""
    n = len(kernel)
    if not isinstance(padding, str):
        return input, _tuple(op, "padding", padding, n)
    if padding == "valid":
        return input, (0,) * n
    if padding != "same":
        raise ValueError(f"[{op}] Invalid padding string '{padding}', should be one of ('valid', 'same')")
    left, right = _same_padding(op, kernel, stride, dilation)
    extra = [r - l for l, r in zip(left, right)]
    if any(extra):
        amounts = []
        for e in reversed(extra):  # F.pad lists the last dim first
            amounts += [0, e]
        input = pad(input, amounts)
    return input, tuple(left)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    _check_dims("conv2d", input, (3, 4), "3D (unbatched) or 4D (batched)")
    if weight.dim() != 4:
        raise RuntimeError(f"[conv2d] Expected 4-dimensional weight, but got weight of size {list(weight.shape)}")
    stride, dilation = _tuple("conv2d", "stride", stride, 2), _tuple("conv2d", "dilation", dilation, 2)
    input, padding = _resolve_padding("conv2d", input, padding, tuple(weight.shape[2:]), stride, dilation)
    return _C._conv2d(input, weight, bias, list(stride), list(padding), list(dilation), groups)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    _check_dims("conv1d", input, (2, 3), "2D (unbatched) or 3D (batched)")
    if weight.dim() != 3:
        raise RuntimeError(f"[conv1d] Expected 3-dimensional weight, but got weight of size {list(weight.shape)}")
    stride, dilation = _tuple("conv1d", "stride", stride, 1), _tuple("conv1d", "dilation", dilation, 1)
    input, padding = _resolve_padding("conv1d", input, padding, tuple(weight.shape[2:]), stride, dilation)
    span = dilation[0] * (weight.shape[2] - 1) + 1
    if input.shape[-1] + 2 * padding[0] < span:
        raise RuntimeError(f"[conv1d] Calculated padded input size per channel: ({input.shape[-1] + 2 * padding[0]}). "
                           f"Kernel size: ({span}). Kernel size can't be greater than actual input size (input "
                           f"{list(input.shape)}, weight {list(weight.shape)})")
    out = _C._conv2d(input.unsqueeze(-2), weight.unsqueeze(2), bias, [1, stride[0]], [0, padding[0]],
                        [1, dilation[0]], groups)
    return out.squeeze(-2)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    _check_dims("conv_transpose2d", input, (3, 4), "3D (unbatched) or 4D (batched)")
    t = lambda name, v: list(_tuple("conv_transpose2d", name, v, 2))  # noqa: E731
    return _C._conv_transpose2d(input, weight, bias, t("stride", stride), t("padding", padding),
                                   t("output_padding", output_padding), groups, t("dilation", dilation))


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    _check_dims("conv_transpose1d", input, (2, 3), "2D (unbatched) or 3D (batched)")
    if weight.dim() != 3:
        raise RuntimeError(f"[conv_transpose1d] Expected 3-dimensional weight, but got weight of size "
                           f"{list(weight.shape)}")
    one = lambda name, v: _tuple("conv_transpose1d", name, v, 1)[0]  # noqa: E731
    out = _C._conv_transpose2d(input.unsqueeze(-2), weight.unsqueeze(2), bias, [1, one("stride", stride)],
                                  [0, one("padding", padding)], [0, one("output_padding", output_padding)], groups,
                                  [1, one("dilation", dilation)])
    return out.squeeze(-2)


def _blocks(size: tuple, kernel: list, dilation: list, padding: list, stride: list) -> int:
    """Number of sliding blocks over a 2-d size (0 when the kernel does not fit)."""
    n = 1
    for s, k, d, p, st in zip(size, kernel, dilation, padding, stride):
        span = s + 2 * p - d * (k - 1) - 1
        n *= span // st + 1 if span >= 0 else 0
    return n


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """[N, C, H, W] -> [N, C*kh*kw, L] sliding blocks (a 3-D input is one unbatched image)."""
    _check_dims("unfold", input, (3, 4), "3D (unbatched) or 4D (batched)")
    x = input.unsqueeze(0) if input.dim() == 3 else input
    t = lambda name, v: list(_tuple("unfold", name, v, 2))  # noqa: E731
    k, d, p, s = t("kernel_size", kernel_size), t("dilation", dilation), t("padding", padding), t("stride", stride)
    cols = _C._im2col(x, k, d, p, s)  # [C*kh*kw, N*L]
    n, blocks = x.shape[0], _blocks(tuple(x.shape[2:]), k, d, p, s)
    out = cols.reshape(cols.shape[0], n, blocks).permute(1, 0, 2).contiguous()
    return out.squeeze(0) if input.dim() == 3 else out


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """The adjoint of unfold: [N, C*kh*kw, L] blocks summed into [N, C, H, W]."""
    _check_dims("fold", input, (2, 3), "2D (unbatched) or 3D (batched)")
    x = input.unsqueeze(0) if input.dim() == 2 else input
    t = lambda name, v: list(_tuple("fold", name, v, 2))  # noqa: E731
    size, k = t("output_size", output_size), t("kernel_size", kernel_size)
    d, p, s = t("dilation", dilation), t("padding", padding), t("stride", stride)
    blocks = _blocks(tuple(size), k, d, p, s)
    if x.shape[1] % (k[0] * k[1]) != 0 or x.shape[2] != blocks:
        raise RuntimeError(f"[fold] Expected size of input's dimension 1 to be divisible by the product of "
                           f"kernel_size {k} and its dimension 2 to match the {blocks} sliding blocks of "
                           f"output_size={size} (dilation={d}, padding={p}, stride={s}), but got input of size "
                           f"{list(input.shape)}")
    cols = x.permute(1, 0, 2).reshape(x.shape[1], x.shape[0] * x.shape[2])
    out = _C._col2im(cols, size, k, d, p, s)
    return out.squeeze(0) if input.dim() == 2 else out


# ---- pooling -----------------------------------------------------------------------------------------

def max_pool2d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    _check_dims("max_pool2d", input, (3, 4), "3D (unbatched) or 4D (batched)")
    t = lambda name, v: list(_tuple("max_pool2d", name, v, 2))  # noqa: E731
    stride = [] if stride is None or (not isinstance(stride, int) and len(stride) == 0) else t("stride", stride)
    return _C._max_pool2d_with_indices(input, t("kernel_size", kernel_size), stride, t("padding", padding),
                                          t("dilation", dilation), bool(ceil_mode))


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    values, indices = max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return (values, indices) if return_indices else values


def max_pool1d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    _check_dims("max_pool1d", input, (2, 3), "2D (unbatched) or 3D (batched)")
    one = lambda name, v: _tuple("max_pool1d", name, v, 1)[0]  # noqa: E731
    stride = [] if stride is None or (not isinstance(stride, int) and len(stride) == 0) else [1, one("stride", stride)]
    values, indices = _C._max_pool2d_with_indices(input.unsqueeze(-2), [1, one("kernel_size", kernel_size)],
                                                     stride, [0, one("padding", padding)],
                                                     [1, one("dilation", dilation)], bool(ceil_mode))
    return values.squeeze(-2), indices.squeeze(-2)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    values, indices = max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return (values, indices) if return_indices else values


def _pool_out(op: str, size: int, k: int, p: int, s: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape (dilation 1)."""
    o = (size + 2 * p - k + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= size + p:
        o -= 1
    return o


def _tiled_mean(x: Tensor, kernel: tuple) -> Tensor:
    """Means over non-overlapping windows of the last len(kernel) dims (each divisible by its kernel): the
    k strided slices of each dim are added, elementwise adds being much faster here than reducing the
    small window dims of a reshaped view. Half types add in float32, like torch's kernels."""
    dtype = x.dtype
    if dtype in (ember.float16, ember.bfloat16):
        x = x.to(ember.float32)
    for i, k in enumerate(kernel):
        dim = x.dim() - len(kernel) + i
        lead = (slice(None),) * dim
        out = x[lead + (slice(0, None, k),)]
        for j in range(1, k):
            out = out + x[lead + (slice(j, None, k),)]
        x = out
    return (x * (1.0 / math.prod(kernel))).to(dtype)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None) -> Tensor:
    """Window sums from im2col of the (padded) planes, divided by each window's element count, which is
    itself the im2col sum of a ones mask: every padding/ceil_mode/count_include_pad case is one rule."""
    op = "avg_pool2d"
    _check_dims(op, input, (3, 4), "3D (unbatched) or 4D (batched)")
    k = _tuple(op, "kernel_size", kernel_size, 2)
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _tuple(op, "stride", stride, 2)
    p = _tuple(op, "padding", padding, 2)
    if not input.is_floating_point():
        raise NotImplementedError(f"[{op}] not implemented for '{str(input.dtype).replace('ember.', '')}'")
    if min(k) < 1 or min(s) < 1 or min(p) < 0:
        raise RuntimeError(f"[{op}] kernel_size and stride must be positive and padding non-negative, got "
                           f"kernel_size={k}, stride={s}, padding={p}")
    if any(pi * 2 > ki for pi, ki in zip(p, k)):
        raise RuntimeError(f"[{op}] pad should be at most half of effective kernel size, but got pad={p}, "
                           f"kernel_size={k}")
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError(f"[{op}] divisor must be not zero")
    *lead, h, w = input.shape
    out = [_pool_out(op, n, ki, pi, si, ceil_mode) for n, ki, pi, si in zip((h, w), k, p, s)]
    if min(out) < 1 or h < 1 or w < 1:
        raise RuntimeError(f"[{op}] Given input size: ({'x'.join(map(str, input.shape[-3:]))}). Calculated output "
                           f"size: ({'x'.join(map(str, list(input.shape[-3:-2]) + out))}). Output size is too small")
    planes = 1
    for d in lead:
        planes *= d
    if p == (0, 0) and k == s and h % k[0] == 0 and w % k[1] == 0 and divisor_override is None:
        return _tiled_mean(input, k)
    extra = [max(0, (o - 1) * si + ki - (n + 2 * pi)) for o, si, ki, n, pi in zip(out, s, k, (h, w), p)]
    x = pad(input.reshape(planes, 1, h, w), [p[1], p[1] + extra[1], p[0], p[0] + extra[0]])
    sums = _C._im2col(x, list(k), [1, 1], [0, 0], list(s)).sum(0).reshape(*lead, out[0], out[1])
    if divisor_override is not None:
        return sums / divisor_override
    # Element counts: include_pad counts positions inside the padded input, else inside the input.
    grid = (h + 2 * p[0], w + 2 * p[1]) if count_include_pad else (h, w)
    margin = [0, extra[1], 0, extra[0]] if count_include_pad else [p[1], p[1] + extra[1], p[0], p[0] + extra[0]]
    ones = pad(ember.ones((1, 1) + grid, dtype=input.dtype, device=input.device), margin)
    counts = _C._im2col(ones, list(k), [1, 1], [0, 0], list(s)).sum(0).reshape(out[0], out[1])
    return sums / counts


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True) -> Tensor:
    _check_dims("avg_pool1d", input, (2, 3), "2D (unbatched) or 3D (batched)")
    one = lambda name, v: _tuple("avg_pool1d", name, v, 1)[0]  # noqa: E731
    stride = one("kernel_size", kernel_size) if stride is None else one("stride", stride)
    return avg_pool2d(input.unsqueeze(-2), (1, one("kernel_size", kernel_size)), (1, stride),
                      (0, one("padding", padding)), ceil_mode, count_include_pad).squeeze(-2)


def _adaptive_mean(x: Tensor, dim: int, n_out: int) -> Tensor:
    """Means over torch's adaptive windows [floor(i*n/o), ceil((i+1)*n/o)) along dim. The windows' k-th
    elements are added tap by tap, only into windows that long, so an inf or NaN stays in its own
    windows (an averaging matrix would multiply it by the zeros of every other window)."""
    n_in = x.shape[dim]
    i = np.arange(n_out)
    start, length = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out) - (i * n_in) // n_out
    index = lambda a: ember.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(x.device)  # noqa: E731
    out = x.index_select(dim, index(start))
    for k in range(1, int(length.max(initial=1))):
        rows = np.nonzero(length > k)[0]
        out = out.index_add(dim, index(rows), x.index_select(dim, index(start[rows] + k)))
    counts = ember.from_numpy(length.astype(np.float64)).to(x.device).to(x.dtype)
    return out / counts.reshape(n_out, *([1] * (x.dim() - dim - 1)))


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Separable: window means along H, then along W; global and evenly dividing output sizes are plain
    means."""
    op = "adaptive_avg_pool2d"
    _check_dims(op, input, (3, 4), "3D (unbatched) or 4D (batched)")
    h, w = input.shape[-2:]
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if len(size) != 2:
        raise ValueError(f"[{op}] output_size must be an int or a pair, got {output_size!r}")
    oh, ow = (h if size[0] is None else int(size[0])), (w if size[1] is None else int(size[1]))
    if oh < 0 or ow < 0:
        raise ValueError(f"[{op}] output_size must be non-negative, got {output_size!r}")
    if any(d == 0 for d in input.shape[1:]):
        raise RuntimeError(f"[{op}] Expected input to have non-zero size for non-batch dimensions, but input has "
                           f"sizes {list(input.shape)} with dimension {list(input.shape).index(0)} being empty")
    if not input.is_floating_point():
        raise NotImplementedError(f"[{op}] not implemented for '{str(input.dtype).replace('ember.', '')}'")
    if (oh, ow) == (1, 1):
        return input.mean((-2, -1), keepdim=True)
    if oh > 0 and ow > 0 and h % oh == 0 and w % ow == 0:
        return _tiled_mean(input, (h // oh, w // ow))
    return _adaptive_mean(_adaptive_mean(input, input.dim() - 2, oh), input.dim() - 1, ow)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    _check_dims("adaptive_avg_pool1d", input, (2, 3), "2D (unbatched) or 3D (batched)")
    size = _tuple("adaptive_avg_pool1d", "output_size", output_size, 1)[0]
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, size)).squeeze(-2)


def _argmax_last_nan(picked: Tensor, dim: int) -> Tensor:
    """torch's pooling argmax along dim: the first maximum, or the last NaN if there is one."""
    dim = dim % picked.dim()
    first_max = picked.max(dim)[1]
    nan = picked.isnan()
    k = picked.shape[dim]
    order = ember.arange(1, k + 1, device=picked.device).reshape(k, *([1] * (picked.dim() - dim - 1)))
    last_nan = (nan.to(ember.int64) * order).amax(dim) - 1
    return ember.where(last_nan >= 0, last_nan, first_max).unsqueeze(dim)


def _adaptive_taps(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, K] positions of torch's adaptive windows [floor(i*n/o), ceil((i+1)*n/o)), each padded to the
    longest window by repeating its last position (a repeat never wins a first-maximum search)."""
    i = np.arange(n_out)
    start, end = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
    k = int((end - start).max()) if n_out else 1
    return np.minimum(start[:, None] + np.arange(k)[None, :], end[:, None] - 1)


def _adaptive_max_pool(input: Tensor, sizes: list) -> tuple[Tensor, Tensor]:
    """Max over each output's window of the (H, W) plane: the windows' elements are gathered from the
    flattened plane ([..., oh, ow, Kh*Kw]) and reduced; indices are flat within the plane, like torch's."""
    h, w = input.shape[-2:]
    oh, ow = sizes
    if oh == 0 or ow == 0:
        lead = tuple(input.shape[:-2])
        empty = ember.empty(lead + (oh, ow), dtype=input.dtype, device=input.device)
        return empty, ember.empty(lead + (oh, ow), dtype=ember.int64, device=input.device)
    rows, cols = _adaptive_taps(h, oh), _adaptive_taps(w, ow)
    flat = rows[:, None, :, None] * w + cols[None, :, None, :]        # [oh, ow, Kh, Kw]
    k = flat.shape[2] * flat.shape[3]
    table = ember.from_numpy(np.ascontiguousarray(flat.reshape(oh, ow, k))).to(input.device)
    lead = tuple(input.shape[:-2])
    picked = input.reshape(*lead, h * w).index_select(-1, table.reshape(-1)).reshape(*lead, oh, ow, k)
    # torch's kernels keep the first maximum, or the last NaN of a window that has one.
    arg = _argmax_last_nan(picked.detach(), -1)
    values = picked.gather(-1, arg).squeeze(-1)
    indices = table.expand(*lead, oh, ow, k).gather(-1, arg).squeeze(-1)
    return values, indices


def _adaptive_max_sizes(op: str, input: Tensor, output_size, n: int) -> list[int]:
    """The output sizes of n-d adaptive max pooling (None keeps the input's size), after torch's checks."""
    _check_dims(op, input, (n + 1, n + 2), f"{n + 1}D (unbatched) or {n + 2}D (batched)")
    size = (output_size,) * n if isinstance(output_size, int) else tuple(output_size)
    if len(size) != n:
        raise ValueError(f"[{op}] output_size must be an int or a {('pair', 'triple')[n - 2]}, got {output_size!r}")
    sizes = [int(d) if s is None else int(s) for d, s in zip(input.shape[-n:], size)]
    if min(sizes) < 0:
        raise ValueError(f"[{op}] output_size must be non-negative, got {output_size!r}")
    if any(d == 0 for d in input.shape[1:]):
        raise RuntimeError(f"[{op}] Expected input to have non-zero size for non-batch dimensions, but input has "
                           f"sizes {list(input.shape)} with dimension {list(input.shape).index(0, 1)} being empty")
    if not input.is_floating_point():
        raise NotImplementedError(f"[{op}] not implemented for '{str(input.dtype).replace('ember.', '')}' (input "
                                  f"{list(input.shape)})")
    return sizes


def adaptive_max_pool2d_with_indices(input: Tensor, output_size, return_indices: bool = True):
    sizes = _adaptive_max_sizes("adaptive_max_pool2d", input, output_size, 2)
    (h, w), (oh, ow) = input.shape[-2:], sizes
    if oh > 0 and ow > 0 and h % oh == 0 and w % ow == 0:  # equal tiling windows: the max_pool2d op
        return max_pool2d_with_indices(input, (h // oh, w // ow))
    return _adaptive_max_pool(input, sizes)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    values, indices = adaptive_max_pool2d_with_indices(input, output_size)
    return (values, indices) if return_indices else values


def adaptive_max_pool1d_with_indices(input: Tensor, output_size, return_indices: bool = True):
    op = "adaptive_max_pool1d"
    _check_dims(op, input, (2, 3), "2D (unbatched) or 3D (batched)")
    size = _tuple(op, "output_size", output_size, 1)[0]
    if size < 0:
        raise ValueError(f"[{op}] output_size must be non-negative, got {output_size!r}")
    if any(d == 0 for d in input.shape[1:]):
        raise RuntimeError(f"[{op}] Expected input to have non-zero size for non-batch dimensions, but input has "
                           f"sizes {list(input.shape)}")
    if not input.is_floating_point():
        raise NotImplementedError(f"[{op}] not implemented for '{str(input.dtype).replace('ember.', '')}' (input "
                                  f"{list(input.shape)})")
    values, indices = _adaptive_max_pool(input.unsqueeze(-2), [1, size])
    return values.squeeze(-2), indices.squeeze(-2)


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    values, indices = adaptive_max_pool1d_with_indices(input, output_size)
    return (values, indices) if return_indices else values


# ---- normalization -------------------------------------------------------------------------------

def _stats_dtype(dtype):
    return ember.float32 if dtype in (ember.float16, ember.bfloat16) else dtype


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """y = x * scale + shift with per-channel scale = weight / sqrt(var + eps), shift = bias - mean * scale
    (two passes over x); batch statistics in training, running ones in eval. Statistics of half types
    are computed in float32, like torch."""
    op = "batch_norm"
    if input.dim() < 2:
        raise ValueError(f"[{op}] expected at least 2D input (got {input.dim()}D input)")
    c = input.shape[1]
    for t, name in ((running_mean, "running_mean"), (running_var, "running_var"), (weight, "weight"),
                    (bias, "bias")):
        if t is not None and tuple(t.shape) != (c,):
            raise RuntimeError(f"[{op}] expected {name} of shape [{c}] (the input's channels), got {list(t.shape)} "
                               f"for input of size {list(input.shape)}")
    shape = (1, c) + (1,) * (input.dim() - 2)
    if training:
        count = input.numel() // max(c, 1)
        if count <= 1:
            raise ValueError(f"[{op}] Expected more than 1 value per channel when training, got input size "
                             f"{list(input.shape)}")
        dims = [0] + list(range(2, input.dim()))
        stats_in = input.to(_stats_dtype(input.dtype))
        var, mean = ember.var_mean(stats_in, dims, correction=0)
        if running_mean is not None or running_var is not None:
            with ember.no_grad():
                if running_mean is not None:
                    running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype) * momentum)
                if running_var is not None:
                    unbiased = var * (count / (count - 1))
                    running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype) * momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError(f"[{op}] running_mean and running_var must be defined in evaluation mode")
        mean, var = running_mean, running_var
    scale = (var + eps).rsqrt()
    if weight is not None:
        scale = scale * weight
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias
    return input * scale.to(input.dtype).reshape(shape) + shift.to(input.dtype).reshape(shape)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    op = "group_norm"
    if input.dim() < 2:
        raise RuntimeError(f"[{op}] Expected at least 2 dimensions for input tensor but received {input.dim()}")
    n, c = input.shape[0], input.shape[1]
    if num_groups <= 0 or c % num_groups != 0:
        raise RuntimeError(f"[{op}] Expected number of channels in input to be divisible by num_groups, but got "
                           f"input of shape {list(input.shape)} and num_groups={num_groups}")
    for t, name in ((weight, "weight"), (bias, "bias")):
        if t is not None and tuple(t.shape) != (c,):
            raise RuntimeError(f"[{op}] Expected {name} to be a vector of size equal to the number of channels in "
                               f"input, but got {name} of shape {list(t.shape)} and input of shape {list(input.shape)}")
    x = input.reshape(n, num_groups, -1) if input.numel() else input.reshape(n, num_groups, 0)
    xs = x.to(_stats_dtype(input.dtype))
    var, mean = ember.var_mean(xs, [2], correction=0, keepdim=True)
    y = ((xs - mean) * (var + eps).rsqrt()).to(input.dtype).reshape(input.shape)
    shape = (1, c) + (1,) * (input.dim() - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


# ---- channel dropout -------------------------------------------------------------------------------

def _channel_dropout(op: str, input: Tensor, p: float, training: bool, unbatched_dim: int | None) -> Tensor:
    """Zeroes whole channels: a Bernoulli(1 - p) mask over (N, C) broadcast over the other dims, scaled
    by 1 / (1 - p). An input of unbatched_dim dims is one sample (its mask is over C only)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"[{op}] dropout probability has to be between 0 and 1, but got {p}")
    if input.dim() < 2:
        raise RuntimeError(f"[{op}] Expected an input with a channel dimension, but got input of size: "
                           f"{list(input.shape)}")
    if not training or p == 0.0:
        return input
    lead = 1 if input.dim() == unbatched_dim else 2
    mask_shape = tuple(input.shape[:lead]) + (1,) * (input.dim() - lead)
    if p == 1.0:
        return input * ember.zeros(mask_shape, dtype=input.dtype, device=input.device)
    mask = ember.empty(mask_shape, dtype=input.dtype, device=input.device).bernoulli_(1.0 - p)
    return input * (mask / (1.0 - p))


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    return _channel_dropout("dropout1d", input, p, training, 2)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    # Like torch, a 3-D input is (N, C, L) here, not an unbatched (C, H, W) (pytorch issue 77081).
    return _channel_dropout("dropout2d", input, p, training, None)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    return _channel_dropout("dropout3d", input, p, training, 4)
