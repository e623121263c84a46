"""3-d convolution and pooling (torch.nn.functional's conv3d, max/avg/adaptive-avg pool3d), composed from
the 2-d ops of nn/_conv.py, so autograd (double backward for conv3d included) and every device come
from those.

Note [3-d as 2-d plus depth]
conv3d: the KD depth slices each output depth reads are stacked into channels (group by group), so one
conv2d over an (N*OD)-image batch with a [O, KD*C/g, KH, KW] weight computes every output: one GEMM per
group, like im2col in depth. Pooling is separable into the H*W planes (the 2-d op) and then depth:
max over depth windows of the per-plane maxima picks torch's element (the first maximum in d, h, w
order), and average pooling's divisor is a product of per-dim counts in every torch mode, so averaging
depth windows of 2-d averages is exact."""
from __future__ import annotations

import numpy as np

import ember
from ember import Tensor

from . import _conv
from ._conv import _argmax_last_nan, _check_dims, _tuple
from ._padding import pad

__all__ = ["conv3d", "conv_transpose3d", "max_pool3d", "max_pool3d_with_indices", "avg_pool3d", "adaptive_avg_pool3d"]


def _batched(input: Tensor) -> tuple[Tensor, bool]:
    return (input, False) if input.dim() == 5 else (input.unsqueeze(0), True)


def _unbatch(out: Tensor, unbatched: bool) -> Tensor:
    return out.squeeze(0) if unbatched else out


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    op = "conv3d"
    _check_dims(op, input, (4, 5), "4D (unbatched) or 5D (batched)")
    if not isinstance(weight, Tensor) or weight.dim() != 5:
        raise RuntimeError(f"[{op}] Expected 5-dimensional weight, but got weight of size "
                           f"{list(getattr(weight, 'shape', []))}")
    stride, dilation = _tuple(op, "stride", stride, 3), _tuple(op, "dilation", dilation, 3)
    if groups < 1:
        raise RuntimeError(f"[{op}] non-positive groups is not supported, got groups={groups}")
    x, unbatched = _batched(input)
    n, c = x.shape[0], x.shape[1]
    o, cg, kd = weight.shape[0], weight.shape[1], weight.shape[2]
    if c != cg * groups or o % groups:
        raise RuntimeError(f"[{op}] Given groups={groups}, weight of size {list(weight.shape)}, expected input"
                           f"{list(input.shape)} to have {cg * groups} channels, but got {c} channels instead")
    x, padding = _conv._resolve_padding(op, x, padding, tuple(weight.shape[2:]), stride, dilation)
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise RuntimeError(f"[{op}] stride and dilation must be positive and padding non-negative, got "
                           f"stride={stride}, padding={padding}, dilation={dilation}")
    padded = [s + 2 * p for s, p in zip(x.shape[2:], padding)]
    spans = [d * (k - 1) + 1 for d, k in zip(dilation, weight.shape[2:])]
    if any(p < s for p, s in zip(padded, spans)):
        raise RuntimeError(f"[{op}] Calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
                           f"Kernel size: ({' x '.join(map(str, spans))}). Kernel size can't be greater than actual "
                           f"input size (input {list(input.shape)}, weight {list(weight.shape)})")
    if padding[0]:
        x = pad(x, [0, 0, 0, 0, padding[0], padding[0]])
    od = (padded[0] - spans[0]) // stride[0] + 1
    sd, dd = stride[0], dilation[0]
    last = (od - 1) * sd + 1
    slices = [x[:, :, k * dd:k * dd + last:sd] for k in range(kd)]   # each [N, C, OD, H, W]
    h, w = x.shape[3], x.shape[4]
    stacked = ember.stack(slices, 2).reshape(n, groups, c // groups, kd, od, h, w)
    cols = stacked.permute(0, 4, 1, 3, 2, 5, 6).reshape(n * od, groups * kd * (c // groups), h, w)
    w2 = weight.permute(0, 2, 1, 3, 4).reshape(o, kd * cg, weight.shape[3], weight.shape[4])
    out = _conv.conv2d(cols, w2, bias, stride[1:], padding[1:], dilation[1:], groups)   # [N*OD, O, OH, OW]
    out = out.reshape(n, od, o, out.shape[2], out.shape[3]).permute(0, 2, 1, 3, 4).contiguous()
    return _unbatch(out, unbatched)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """The adjoint of conv3d: one conv_transpose2d over the (N*D)-image batch computes every (depth
    tap, output plane) pair; input depth d then lands on full-output depth d*stride + k*dilation."""
    op = "conv_transpose3d"
    _check_dims(op, input, (4, 5), "4D (unbatched) or 5D (batched)")
    if not isinstance(weight, Tensor) or weight.dim() != 5:
        raise RuntimeError(f"[{op}] Expected 5-dimensional weight, but got weight of size "
                           f"{list(getattr(weight, 'shape', []))}")
    stride, dilation = _tuple(op, "stride", stride, 3), _tuple(op, "dilation", dilation, 3)
    padding, output_padding = _tuple(op, "padding", padding, 3), _tuple(op, "output_padding", output_padding, 3)
    if groups < 1:
        raise RuntimeError(f"[{op}] non-positive groups is not supported, got groups={groups}")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0 or min(output_padding) < 0:
        raise RuntimeError(f"[{op}] stride and dilation must be positive, padding and output_padding non-negative, "
                           f"got stride={stride}, padding={padding}, output_padding={output_padding}, "
                           f"dilation={dilation}")
    if any(p >= max(s, d) for p, s, d in zip(output_padding, stride, dilation)):
        raise RuntimeError(f"[{op}] output padding must be smaller than either stride or dilation, but got "
                           f"output_padding={output_padding}, stride={stride}, dilation={dilation}")
    x, unbatched = _batched(input)
    n, c, depth = x.shape[0], x.shape[1], x.shape[2]
    cg, kd = weight.shape[1], weight.shape[2]
    if c != weight.shape[0] or c % groups:
        raise RuntimeError(f"[{op}] Given transposed=1, weight of size {list(weight.shape)}, expected input"
                           f"{list(input.shape)} to have {weight.shape[0]} channels, but got {c} channels instead")
    sizes = [(i - 1) * s - 2 * p + d * (k - 1) + q + 1 for i, s, p, d, k, q in
             zip(x.shape[2:], stride, padding, dilation, weight.shape[2:], output_padding)]
    if min(sizes) < 1:
        raise RuntimeError(f"[{op}] Given input size per channel: ({' x '.join(map(str, x.shape[2:]))}). Calculated "
                           f"output size per channel: ({' x '.join(map(str, sizes))}). Output size is too small")
    o = cg * groups
    # Every depth tap's weights side by side in each group's output channels: [C, KD*O/g, KH, KW].
    w2 = weight.permute(0, 2, 1, 3, 4).reshape(c, kd * cg, weight.shape[3], weight.shape[4])
    planes = x.permute(0, 2, 1, 3, 4).reshape(n * depth, c, x.shape[3], x.shape[4])
    y = _conv.conv_transpose2d(planes, w2, None, stride[1:], padding[1:], output_padding[1:], groups, dilation[1:])
    oh, ow = y.shape[2], y.shape[3]
    y = y.reshape(n, depth, groups, kd, cg, oh, ow).permute(3, 0, 2, 4, 1, 5, 6).reshape(kd, n, o, depth, oh, ow)
    sd, dd = stride[0], dilation[0]
    full = (depth - 1) * sd + dd * (kd - 1) + 1
    if sd > 1 and depth > 0:  # zeros between input depths: depth d sits at d*stride
        gaps = ember.zeros((kd, n, o, depth, sd - 1, oh, ow), dtype=y.dtype, device=y.device)
        y = ember.cat([y.unsqueeze(4), gaps], 4).reshape(kd, n, o, depth * sd, oh, ow)[:, :, :, :(depth - 1) * sd + 1]
    spread = (depth - 1) * sd + 1 if depth > 0 else 0
    out = None
    for k in range(kd):
        tap = pad(y[k], [0, 0, 0, 0, k * dd, full - spread - k * dd + output_padding[0]])
        out = tap if out is None else out + tap
    out = out[:, :, padding[0]:out.shape[2] - padding[0]]
    if bias is not None:
        out = out + bias.reshape(1, o, 1, 1, 1)
    return _unbatch(out, unbatched)


# ---- pooling -----------------------------------------------------------------------------------------

def _pool_out(size: int, k: int, p: int, s: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape."""
    o = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= size + p:
        o -= 1
    return o


def _pool_args(op: str, input: Tensor, kernel_size, stride, padding, dilation, ceil_mode: bool):
    """Validated (kernel, stride, padding, dilation, output sizes) of a 3-d pooling call."""
    k = _tuple(op, "kernel_size", kernel_size, 3)
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _tuple(op, "stride", stride, 3)
    p, d = _tuple(op, "padding", padding, 3), _tuple(op, "dilation", dilation, 3)
    if min(k) < 1 or min(s) < 1 or min(d) < 1 or min(p) < 0:
        raise RuntimeError(f"[{op}] kernel_size, stride and dilation must be positive and padding non-negative, got "
                           f"kernel_size={k}, stride={s}, padding={p}, dilation={d}")
    if any(pi * 2 > ki for pi, ki in zip(p, k)):
        raise RuntimeError(f"[{op}] pad should be at most half of effective kernel size, but got pad={p}, "
                           f"kernel_size={k} and dilation={d}")
    if any(dim == 0 for dim in input.shape[1:]):
        raise RuntimeError(f"[{op}] non-empty 4D or 5D (batch mode) tensor expected for input, got input of size "
                           f"{list(input.shape)}")
    spatial = list(input.shape[-3:])
    out = [_pool_out(n, *args, ceil_mode) for n, *args in zip(spatial, k, p, s, d)]
    if min(out) < 1:
        raise RuntimeError(f"[{op}] Given input size: ({'x'.join(map(str, input.shape[-4:]))}). Calculated output "
                           f"size: ({'x'.join(map(str, [input.shape[-4]] + out))}). Output size is too small")
    return k, s, p, d, out


def _depth_taps(depth: int, out: int, k: int, s: int, p: int, d: int) -> np.ndarray:
    """[out, k] input depths each output depth's window reads; `depth` (one past the end) marks padding."""
    pos = np.arange(out)[:, None] * s - p + np.arange(k)[None, :] * d
    return np.where((pos >= 0) & (pos < depth), pos, depth)


def _index(values: np.ndarray, device) -> Tensor:
    return ember.from_numpy(np.ascontiguousarray(values.reshape(-1))).to(device)


def max_pool3d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    op = "max_pool3d"
    _check_dims(op, input, (4, 5), "4D (unbatched) or 5D (batched)")
    if not input.is_floating_point():
        raise NotImplementedError(f"[{op}] not implemented for '{str(input.dtype).replace('ember.', '')}' (input "
                                  f"{list(input.shape)})")
    k, s, p, d, (od, oh, ow) = _pool_args(op, input, kernel_size, stride, padding, dilation, ceil_mode)
    x, unbatched = _batched(input)
    n, c, depth, h, w = x.shape
    planes, plane_idx = _conv.max_pool2d_with_indices(x.reshape(n, c * depth, h, w), k[1:], s[1:], p[1:], d[1:],
                                                      ceil_mode)
    planes, plane_idx = planes.reshape(n, c, depth, oh, ow), plane_idx.reshape(n, c, depth, oh, ow)
    taps = _depth_taps(depth, od, k[0], s[0], p[0], d[0])
    if (taps == depth).any():  # windows reach into the padding: an extra depth slot of -inf stands for it
        filler = ember.full((n, c, 1, oh, ow), float("-inf"), dtype=planes.dtype, device=planes.device)
        planes = ember.cat([planes, filler], 2)
        plane_idx = ember.cat([plane_idx, ember.zeros((n, c, 1, oh, ow), dtype=plane_idx.dtype, device=x.device)], 2)
    index = _index(taps, x.device)
    picked = planes.index_select(2, index).reshape(n, c, od, k[0], oh, ow)
    arg = _argmax_last_nan(picked.detach(), 3)
    values = picked.gather(3, arg).squeeze(3)
    depths = _index(np.minimum(taps, depth - 1), x.device).reshape(1, 1, od, k[0], 1, 1).expand(n, c, od, k[0], oh, ow)
    within = plane_idx.index_select(2, index).reshape(n, c, od, k[0], oh, ow)
    indices = (depths.gather(3, arg) * (h * w) + within.gather(3, arg)).squeeze(3)
    return _unbatch(values, unbatched), _unbatch(indices, unbatched)


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    values, indices = max_pool3d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return (values, indices) if return_indices else values


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None) -> Tensor:
    op = "avg_pool3d"
    _check_dims(op, input, (4, 5), "4D (unbatched) or 5D (batched)")
    if not input.is_floating_point():
        raise NotImplementedError(f"[{op}] not implemented for '{str(input.dtype).replace('ember.', '')}' (input "
                                  f"{list(input.shape)})")
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError(f"[{op}] divisor must be not zero")
    k, s, p, _, (od, oh, ow) = _pool_args(op, input, kernel_size, stride, padding, 1, ceil_mode)
    if any(n < ki for n, ki in zip(input.shape[-3:], k)):  # torch's CPU check ignores the padding here
        t, h, w = input.shape[-3:]
        raise RuntimeError(f"[{op}] input image (T: {t} H: {h} W: {w}) smaller than kernel size (kT: {k[0]} kH: {k[1]} "
                           f"kW: {k[2]})")
    x, unbatched = _batched(input)
    n, c, depth, h, w = x.shape
    if p == (0, 0, 0) and k == s and divisor_override is None and all(
            size % ki == 0 for size, ki in zip((depth, h, w), k)):  # tiling windows
        return _unbatch(_conv._tiled_mean(x, k), unbatched)
    # 2-d sums (divisor 1) when the caller fixes the divisor, else 2-d averages with torch's counts.
    planes = _conv.avg_pool2d(x.reshape(n, c * depth, h, w), k[1:], s[1:], p[1:], ceil_mode, count_include_pad,
                              1 if divisor_override is not None else None).reshape(n, c, depth, oh, ow)
    taps = _depth_taps(depth, od, k[0], s[0], p[0], 1)
    if (taps == depth).any():  # windows reach into the padding: an extra depth slot of zeros stands for it
        planes = ember.cat([planes, ember.zeros((n, c, 1, oh, ow), dtype=planes.dtype, device=x.device)], 2)
    if divisor_override is not None:
        counts = np.full(od, float(divisor_override))
    else:
        start = np.arange(od) * s[0] - p[0]
        end = np.minimum(start + k[0], depth + p[0])
        counts = (end - start) if count_include_pad else (np.minimum(end, depth) - np.maximum(start, 0))
    picked = planes.index_select(2, _index(taps, x.device)).reshape(n, c, od, k[0], oh, ow)
    scale = ember.from_numpy(1.0 / counts.astype(np.float64)).to(x.device).to(x.dtype).reshape(od, 1, 1)
    return _unbatch(picked.sum(3) * scale, unbatched)


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    """2-d adaptive averages of each depth slice, then means over torch's adaptive windows in depth."""
    op = "adaptive_avg_pool3d"
    _check_dims(op, input, (4, 5), "4D (unbatched) or 5D (batched)")
    size = (output_size,) * 3 if isinstance(output_size, int) else tuple(output_size)
    if len(size) != 3:
        raise ValueError(f"[{op}] output_size must be an int or a triple, got {output_size!r}")
    spatial = list(input.shape[-3:])
    od, oh, ow = [n if s is None else int(s) for n, s in zip(spatial, size)]
    if any(dim == 0 for dim in input.shape[1:]):
        raise RuntimeError(f"[{op}] Expected input to have non-zero size for non-batch dimensions, but input has "
                           f"sizes {list(input.shape)}")
    x, unbatched = _batched(input)
    n, c, depth, h, w = x.shape
    planes = _conv.adaptive_avg_pool2d(x.reshape(n, c * depth, h, w), (oh, ow)).reshape(n, c, depth, oh, ow)
    out = _conv._adaptive_mean(planes, 2, od)
    return _unbatch(out, unbatched)
