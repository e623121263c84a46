"""Pooling beyond nn/_conv.py and nn/_conv3d.py: adaptive max pooling in 3-d, max unpooling (1-3 d)
and power-average (LP) pooling, composed from ember ops with torch's shapes, indices and errors."""
from __future__ import annotations

import numpy as np

import ember
from ember import Tensor

from . import _conv, _conv3d
from ._conv import _adaptive_taps, _argmax_last_nan, _check_dims, _tuple

__all__ = ["adaptive_max_pool3d", "adaptive_max_pool3d_with_indices", "max_unpool1d", "max_unpool2d", "max_unpool3d",
           "lp_pool1d", "lp_pool2d", "lp_pool3d"]


def adaptive_max_pool3d_with_indices(input: Tensor, output_size, return_indices: bool = True):
    """Max over torch's adaptive windows [floor(i n / o), ceil((i + 1) n / o)) of each volume; indices are
    flat within the D*H*W volume (the first maximum in d, h, w order, or the last NaN)."""
    sizes = _conv._adaptive_max_sizes("adaptive_max_pool3d", input, output_size, 3)
    spatial = [int(n) for n in input.shape[-3:]]
    lead = tuple(input.shape[:-3])
    if min(sizes) == 0:
        empty = ember.empty(lead + tuple(sizes), dtype=input.dtype, device=input.device)
        return empty, ember.empty(lead + tuple(sizes), dtype=ember.int64, device=input.device)
    (d, h, w), (od, oh, ow) = spatial, sizes
    taps_d, taps_h, taps_w = (_adaptive_taps(n, o) for n, o in zip(spatial, sizes, strict=True))
    flat = (taps_d[:, None, None, :, None, None] * (h * w) + taps_h[None, :, None, None, :, None] * w
            + taps_w[None, None, :, None, None, :])  # [od, oh, ow, Kd, Kh, Kw]
    k = flat.shape[3] * flat.shape[4] * flat.shape[5]
    table = ember.from_numpy(np.ascontiguousarray(flat.reshape(od, oh, ow, k))).to(input.device)
    picked = input.reshape(*lead, d * h * w).index_select(-1, table.reshape(-1)).reshape(*lead, od, oh, ow, k)
    arg = _argmax_last_nan(picked.detach(), -1)
    values = picked.gather(-1, arg).squeeze(-1)
    indices = table.expand(*lead, od, oh, ow, k).gather(-1, arg).squeeze(-1)
    return values, indices


def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False):
    values, indices = adaptive_max_pool3d_with_indices(input, output_size)
    return (values, indices) if return_indices else values


# ---- max unpooling -----------------------------------------------------------------------------------

def _unpool_output_size(op: str, input: Tensor, kernel: tuple, stride: tuple, padding: tuple, output_size) -> list:
    """torch's rule: (in - 1) * stride + kernel - 2 * padding per dim, or output_size within a stride of it."""
    n = len(kernel)
    default = [(input.shape[-n + k] - 1) * stride[k] + kernel[k] - 2 * padding[k] for k in range(n)]
    if output_size is None:
        return default
    output_size = [int(s) for s in output_size]
    if len(output_size) == n + 2:
        output_size = output_size[2:]
    if len(output_size) != n:
        raise ValueError(f"[{op}] output_size should be a sequence containing {n} or {n + 2} elements, but it has a "
                         f"length of '{len(output_size)}'")
    for k in range(n):
        lo, hi = default[k] - stride[k], default[k] + stride[k]
        if not lo < output_size[k] < hi:
            raise ValueError(f'[{op}] invalid output_size "{output_size}" (dim {k} must be between {lo} and {hi})')
    return output_size


def _max_unpool(op: str, n: int, input: Tensor, indices: Tensor, kernel_size, stride, padding, output_size) -> Tensor:
    """Scatters each input value to its flat position `indices` (within its plane/volume) of a zero output."""
    _check_dims(op, input, (n + 1, n + 2), f"{n + 1}D (unbatched) or {n + 2}D (batched)")
    kernel = _tuple(op, "kernel_size", kernel_size, n)
    stride = kernel if stride is None else _tuple(op, "stride", stride, n)
    padding = _tuple(op, "padding", padding, n)
    out_size = _unpool_output_size(op, input, kernel, stride, padding, output_size)
    if indices.dtype != ember.int64:
        raise RuntimeError(f"[{op}] elements in indices should be type int64 but got: {indices.dtype}")
    if tuple(indices.shape) != tuple(input.shape):
        raise RuntimeError(f"[{op}] Expected shape of indices to be same as that of the input tensor "
                           f"({list(input.shape)}) but got indices tensor with shape: {list(indices.shape)}")
    lead = tuple(input.shape[:-n])
    volume = int(np.prod(out_size))
    flat_in = input.reshape(*lead, -1) if input.numel() else input.reshape(*lead, int(np.prod(input.shape[-n:])))
    flat_idx = indices.reshape(tuple(flat_in.shape))
    if flat_idx.numel() and flat_idx.device.type == "cpu":
        lo, hi = int(flat_idx.amin().item()), int(flat_idx.amax().item())
        if lo < 0 or hi >= volume:
            bad = hi if hi >= volume else lo
            raise RuntimeError(f"[{op}] Found an invalid max index: {bad} (output volumes are of size "
                               f"{'x'.join(map(str, out_size))})")
    out = ember.zeros(lead + (volume,), dtype=input.dtype, device=input.device)
    return out.scatter(-1, flat_idx, flat_in).reshape(*lead, *out_size)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    return _max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    return _max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    return _max_unpool("max_unpool3d", 3, input, indices, kernel_size, stride, padding, output_size)


# ---- power-average pooling ---------------------------------------------------------------------------

def _lp_from_average(out: Tensor, window: int, norm_type: float) -> Tensor:
    """torch's (sign(avg) * relu(|avg|) * window)^(1/p): the p-norm of each window from its mean of x^p."""
    return (ember.sign(out) * ember.relu(out.abs()) * window) ** (1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """(sum over each window of x^p)^(1/p)."""
    k = _tuple("lp_pool1d", "kernel_size", kernel_size, 1)[0]
    out = _conv.avg_pool1d(input.pow(norm_type), k, stride if stride is not None else None, 0, ceil_mode)
    return _lp_from_average(out, k, float(norm_type))


def lp_pool2d(input: Tensor, norm_type, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    kh, kw = _tuple("lp_pool2d", "kernel_size", kernel_size, 2)
    out = _conv.avg_pool2d(input.pow(norm_type), (kh, kw), stride, 0, ceil_mode)
    return _lp_from_average(out, kh * kw, float(norm_type))


def lp_pool3d(input: Tensor, norm_type, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    kd, kh, kw = _tuple("lp_pool3d", "kernel_size", kernel_size, 3)
    out = _conv3d.avg_pool3d(input.pow(norm_type), (kd, kh, kw), stride, 0, ceil_mode)
    return _lp_from_average(out, kd * kh * kw, float(norm_type))
