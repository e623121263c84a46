"""F.interpolate and the Upsample modules' math (torch.nn.functional.interpolate), composed from ember ops.

Note [Interpolation as per-dimension taps]
Every mode but 'area' is separable: each output position along one spatial dim reads K input positions
("taps") and sums them with weights: nearest K=1 (weight 1), linear K=2, cubic K=4 (indices clamped to
the edge, as torch's kernels read them), antialias up to K = 2 * support + 1 (outputs near the edge
use fewer). The taps are computed once per call in numpy, following torch's
CPU/CUDA index arithmetic (float32 or float64 like torch's opmath, so nearest picks the same pixels), and
applied one dim at a time with index_select + a weighted sum over K: autograd and every device come
from those ops. 'area' is adaptive average pooling, as in torch.
"""
from __future__ import annotations

import functools
import math

import numpy as np

import ember
from ember import Tensor

from . import _conv
from ._conv3d import adaptive_avg_pool3d

__all__ = ["interpolate", "upsample", "upsample_nearest", "upsample_bilinear"]

_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
_SPATIAL_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
_CUBIC_A = -0.75  # torch's bicubic convolution constant (Keys' kernel)


def _rank_error(input: Tensor, mode: str) -> NotImplementedError:
    return NotImplementedError(f"[interpolate] Input Error: Only 3D, 4D and 5D input Tensors supported (got "
                               f"{input.dim()}D, input of size {list(input.shape)}) for the modes: nearest | linear | "
                               f"bilinear | bicubic | trilinear | area | nearest-exact (got {mode})")


def _output_and_scales(input: Tensor, size, scale_factor, recompute_scale_factor, mode):
    """torch's rules: (output sizes, the scale factors the kernels map coordinates with, or None)."""
    dim = input.dim() - 2
    spatial = list(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("[interpolate] only one of size or scale_factor should be defined")
    if size is not None:
        if isinstance(size, (list, tuple)):
            if len(size) != dim:
                raise ValueError(f"[interpolate] Input and output must have the same number of spatial dimensions, but "
                                 f"got input with spatial dimensions of {spatial} and output size of {size}. Please "
                                 f"provide input tensor in (N, C, d1, d2, ...,dK) format and output size in (o1, o2, "
                                 f"...,oK) format.")
            if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size):
                raise TypeError(f"[interpolate] expected size to be one of int or Tuple[int] or Tuple[int, int] or "
                                f"Tuple[int, int, int], but got size with types {[type(s) for s in size]}")
            output = [int(s) for s in size]
        else:
            output = [int(size)] * dim
        scales = None
    elif scale_factor is not None:
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != dim:
                raise ValueError(f"[interpolate] Input and scale_factor must have the same number of spatial "
                                 f"dimensions, but got input with spatial dimensions of {spatial} and scale_factor of "
                                 f"shape {scale_factor}. Please provide input tensor in (N, C, d1, d2, ...,dK) format "
                                 f"and scale_factor in (s1, s2, ...,sK) format.")
            scales = [float(s) for s in scale_factor]
        else:
            scales = [float(scale_factor)] * dim
        output = None
    else:
        raise ValueError("[interpolate] either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("[interpolate] recompute_scale_factor is not meaningful with an explicit size.")
    if mode == "area" and output is None:
        recompute_scale_factor = True
    if output is None:  # the kernels' output size: floor(in * scale)
        output = [math.floor(n * s) for n, s in zip(spatial, scales)]
    if recompute_scale_factor:
        scales = None
    return output, scales


def _check_sizes(input: Tensor, output: list) -> None:
    spatial = list(input.shape[2:])
    if min(spatial + output, default=1) <= 0:
        names = "DHW"[3 - len(spatial):]
        show = lambda sizes: ", ".join(f"{n}: {s}" for n, s in zip(names, sizes))  # noqa: E731
        raise RuntimeError(f"[interpolate] Input and output sizes should be greater than 0, but got input "
                           f"({show(spatial)}) output ({show(output)})")
    if input.shape[1] == 0:
        raise RuntimeError(f"[interpolate] Non-empty {input.dim()}D data tensor expected but got a tensor with sizes "
                           f"{list(input.shape)}")


# ---- source positions (torch's aten/src/ATen/native/UpSample.h arithmetic) -------------------------

def _ratio(n_in: int, n_out: int, scale, ft):
    """compute_scales_value: 1/scale_factor when the caller gave one, else in/out, in precision ft."""
    return ft(1.0 / scale) if scale is not None and scale > 0 else ft(n_in) / ft(n_out)


def _area_scale(n_in: int, n_out: int, align_corners: bool, scale, ft):
    if align_corners:
        return ft(n_in - 1) / ft(n_out - 1) if n_out > 1 else ft(0)
    return _ratio(n_in, n_out, scale, ft)


def _source_index(ratio, n_out: int, align_corners: bool, cubic: bool, ft):
    """area_pixel_compute_source_index for every output position (fused multiply-add, as compiled)."""
    i = np.arange(n_out, dtype=np.float64)
    if align_corners:
        return (np.float64(ratio) * i).astype(ft)
    src = (np.float64(ratio) * (i + 0.5) - 0.5).astype(ft)
    return src if cubic else np.maximum(src, ft(0))


def _nearest_taps(n_in: int, n_out: int, scale, exact: bool, kernel: str, ft):
    """[n_out, 1] source index per output position. torch has three index rules for the same mode: the
    separable CPU kernel of 1-d/3-d inputs ("cpu", in opmath precision ft), the 2-d CPU kernel ("cpu2d":
    a float32 ratio, exact copies for x1 and x2) and the CUDA one ("cuda": float32 throughout)."""
    if kernel == "cpu2d" and not exact and n_out in (n_in, 2 * n_in):
        idx = np.arange(n_out) // (n_out // n_in)
    elif kernel in ("cpu2d", "cuda"):
        ratio = _ratio(n_in, n_out, scale, np.float32)
        i = np.arange(n_out, dtype=np.float32)
        if exact and kernel == "cuda":
            pos = (i + np.float32(0.5)) * ratio
        elif exact:  # (i + 0.5) in double times the float ratio, rounded to float
            pos = ((i + 0.5) * np.float64(ratio)).astype(np.float32)
        else:
            pos = i * ratio
        idx = np.floor(pos)
    else:
        ratio = _ratio(n_in, n_out, scale, ft)
        if exact:
            idx = np.floor((_source_index(ratio, n_out, False, False, ft) + ft(0.5)).astype(np.float32))
        else:
            idx = np.floor((np.arange(n_out, dtype=ft) * ratio).astype(np.float32))
    return np.minimum(idx.astype(np.int64), n_in - 1).reshape(n_out, 1)


def _linear_taps(n_in: int, n_out: int, scale, align_corners: bool, ft):
    ratio = _area_scale(n_in, n_out, align_corners, scale, ft)
    src = _source_index(ratio, n_out, align_corners, False, ft)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam = np.clip(src - i0.astype(ft), 0, 1).astype(ft)
    i1 = i0 + (i0 < n_in - 1)
    return np.stack([i0, i1], 1), np.stack([ft(1) - lam, lam], 1)


def _cubic_taps(n_in: int, n_out: int, scale, align_corners: bool, ft):
    ratio = _area_scale(n_in, n_out, align_corners, scale, ft)
    src = _source_index(ratio, n_out, align_corners, True, ft)
    base = np.floor(src)
    t = (src - base).astype(ft)
    a = ft(_CUBIC_A)
    near = lambda x: ((a + 2) * x - (a + 3)) * x * x + 1  # noqa: E731  |x| <= 1
    far = lambda x: ((a * x - 5 * a) * x + 8 * a) * x - 4 * a  # noqa: E731  1 < |x| < 2
    weights = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], 1).astype(ft)
    idx = np.clip(base.astype(np.int64)[:, None] + np.arange(-1, 3), 0, n_in - 1)
    return idx, weights


def _antialias_taps(n_in: int, n_out: int, scale, align_corners: bool, ft, cubic: bool):
    """torch's antialiased (PIL-style) weights: a triangle (bilinear) or Keys a=-0.5 (bicubic) filter
    stretched by the downscale factor, over the input positions in reach, normalised to sum 1.
    Returns (idx [n_out, K], weights [n_out, K], taps per output <= K)."""
    ratio = _area_scale(n_in, n_out, align_corners, scale, ft)
    support = ft((2.0 if cubic else 1.0) * (ratio if ratio >= 1 else 1.0))
    center = ratio * (np.arange(n_out, dtype=ft) + ft(0.5))
    invscale = ft(1.0 / ratio) if ratio >= 1 else ft(1.0)
    lo = np.maximum(np.trunc(center - support + ft(0.5)).astype(np.int64), 0)
    count = np.minimum(np.trunc(center + support + ft(0.5)).astype(np.int64), n_in) - lo
    k = int(count.max())
    idx = lo[:, None] + np.arange(k)[None, :]
    dist = np.abs((idx - center[:, None] + ft(0.5)) * invscale).astype(ft)
    if cubic:
        a = ft(-0.5)
        w = np.where(dist < 1, ((a + 2) * dist - (a + 3)) * dist * dist + 1,
                     np.where(dist < 2, ((a * dist - 5 * a) * dist + 8 * a) * dist - 4 * a, ft(0)))
    else:
        w = np.maximum(ft(1) - dist, ft(0))
    w = np.where(np.arange(k)[None, :] < count[:, None], w, ft(0)).astype(ft)
    total = w.sum(1, keepdims=True)
    w = np.where(total != 0, w / np.where(total != 0, total, ft(1)), w).astype(ft)
    return np.minimum(idx, n_in - 1), w, count


def _apply_taps(x: Tensor, dim: int, idx: np.ndarray, weights: np.ndarray | None,
                count: np.ndarray | None = None) -> Tensor:
    """out[..., o, ...] = sum_k weights[o, k] * x[..., idx[o, k], ...] along dim (only the first count[o]
    taps when given), accumulated in place into the first tap's copy: one full-size temporary per tap
    instead of three (index_select's backward does not read its output and the weights need no
    gradient, so in place is safe for autograd). Outputs with fewer taps never read the others, so an
    inf there cannot turn into 0 * inf."""
    n_out, k = idx.shape
    tensor = lambda a: ember.from_numpy(np.ascontiguousarray(a)).to(x.device)  # noqa: E731
    if weights is None:
        return x.index_select(dim, tensor(idx[:, 0]))
    w = tensor(weights.T).to(x.dtype)   # [K, n_out]
    shape = (n_out,) + (1,) * (x.dim() - dim - 1)
    out = x.index_select(dim, tensor(idx[:, 0])).mul_(w[0].reshape(shape))
    for j in range(1, k):
        rows = None if count is None or (count > j).all() else np.nonzero(count > j)[0]
        if rows is None:
            out = out.add_(x.index_select(dim, tensor(idx[:, j])).mul_(w[j].reshape(shape)))
        else:
            part = x.index_select(dim, tensor(idx[rows, j])) * w[j][tensor(rows)].reshape(len(rows), *shape[1:])
            out = out.index_add(dim, tensor(rows), part)
    return out


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                recompute_scale_factor=None, antialias: bool = False) -> Tensor:
    """Resizes the spatial dims of an (N, C, *spatial) input, torch.nn.functional.interpolate's semantics
    (Note [Interpolation as per-dimension taps])."""
    if not isinstance(input, Tensor):
        raise TypeError(f"[interpolate] expected input to be a Tensor, got {type(input).__name__}")
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("[interpolate] align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    output, scales = _output_and_scales(input, size, scale_factor, recompute_scale_factor, mode)
    if mode == "lanczos":
        raise NotImplementedError("[interpolate] mode 'lanczos' (antialiased Lanczos resampling) is not implemented "
                                  "in ember")
    if antialias and not (mode in ("bilinear", "bicubic") and input.dim() == 4):
        raise ValueError("[interpolate] Anti-alias option is restricted to bilinear and bicubic modes and requires a "
                         f"4-D tensor as input, got mode '{mode}' and input of size {list(input.shape)}")
    if mode not in _MODES or input.dim() not in (3, 4, 5):
        raise _rank_error(input, mode)
    need = _SPATIAL_DIMS.get(mode)
    if need is not None and need != input.dim() - 2:
        raise NotImplementedError(f"[interpolate] Got {input.dim()}D input (size {list(input.shape)}), but {mode} mode "
                                  f"needs {need + 2}D input")
    _check_sizes(input, output)
    if mode == "area":
        pool = {3: _conv.adaptive_avg_pool1d, 4: _conv.adaptive_avg_pool2d, 5: adaptive_avg_pool3d}[input.dim()]
        return pool(input, output if input.dim() > 3 else output[0])
    if not input.is_floating_point() and not (input.dtype == ember.uint8 and mode.startswith("nearest")):
        what = "uint8: nearest modes only" if input.dtype == ember.uint8 else "expected a float input"
        raise NotImplementedError(f"[interpolate] mode '{mode}' not implemented for "
                                  f"'{str(input.dtype).replace('ember.', '')}' ({what})")
    scales = scales or [None] * len(output)
    spatial = list(input.shape[2:])
    ft = np.float64 if input.dtype == ember.float64 else np.float32  # torch's opmath precision
    if mode.startswith("nearest"):
        kernel = "cuda" if input.device.type == "cuda" else "cpu2d" if input.dim() == 4 else "cpu"
        out = input
        for d, (n_in, n_out, s) in enumerate(zip(spatial, output, scales)):
            if n_out != n_in or s is not None:
                taps = _nearest_taps(n_in, n_out, s, mode == "nearest-exact", kernel, ft)
                out = _apply_taps(out, d + 2, taps, None)
        return out.clone() if out is input else out  # a new tensor even when no dim changes, like torch
    # Linear and cubic: computed in float32 for half types (torch's opmath), weights in that precision.
    compute = input if input.dtype in (ember.float32, ember.float64) else input.to(ember.float32)
    if antialias:
        taps = functools.partial(_antialias_taps, cubic=mode == "bicubic")
    else:
        taps = _cubic_taps if mode == "bicubic" else _linear_taps
    out = compute
    for d in reversed(range(len(output))):  # last dim first, like torch's CPU kernels
        out = _apply_taps(out, d + 2, *taps(spatial[d], output[d], scales[d], align_corners, ft))
    return out if out.dtype == input.dtype else out.to(input.dtype)


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None) -> Tensor:
    """Deprecated alias of interpolate (torch.nn.functional.upsample)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
