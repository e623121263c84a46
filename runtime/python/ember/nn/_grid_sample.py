"""affine_grid and grid_sample (spatial transformer networks), composed from gathers.

Note [grid_sample as gathers]
grid_sample reads, for every output location, the input at a continuous position given by the grid
(x, y[, z] in [-1, 1], x indexing the last dim). Each position is unnormalised to pixel units, moved
inside the image by the padding mode (border: clipped; reflection: mirrored, then clipped), then read
by taps: 2^d corners weighted by their distance products (bilinear/trilinear), the nearest pixel
(round half to even), or 4x4 cubic-convolution taps (bicubic, A = -0.75, each integer tap moved by the
padding mode). Every tap is one `gather` over the flattened spatial dims of (N, C, L), and taps outside
the image read 0 (padding "zeros"). Gradients come from the ops: to the input through gather's
scatter-add, to the grid through the tap weights. The clip and reflection follow torch's gradient
conventions (0 on and beyond a border, the mirror's sign), so grid gradients match torch's kernels.
"""
from __future__ import annotations

import itertools
import math
import warnings

import ember
from ember import Tensor

__all__ = ["affine_grid", "grid_sample"]

_ALIGN_WARNING = ("Default grid_sample and affine_grid behavior has changed to align_corners=False since 1.3.0. Please "
                  "specify align_corners=True if the old behavior is desired. See the documentation of grid_sample "
                  "for details.")
_CUBIC_A = -0.75


def _base_coords(n: int, align_corners: bool, like: Tensor) -> Tensor:
    """torch's linspace_from_neg_one: pixel centres (or corners) in [-1, 1]."""
    if n <= 1:
        return ember.zeros((n,), dtype=like.dtype, device=like.device)
    steps = ember.linspace(-1.0, 1.0, n, dtype=like.dtype, device=like.device)
    return steps if align_corners else steps * (n - 1) / n


def affine_grid(theta: Tensor, size, align_corners: bool | None = None) -> Tensor:
    """The sampling grid (N, H, W, 2) (or (N, D, H, W, 3)) of the affine maps theta (N, 2, 3) (or (N, 3, 4))
    applied to the output pixels' normalised coordinates."""
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=2)
        align_corners = False
    if not theta.is_floating_point():
        raise ValueError(f"[affine_grid] Expected theta to have floating point type, but got {theta.dtype}")
    size = [int(s) for s in size]
    if len(size) not in (4, 5):
        raise NotImplementedError(f"[affine_grid] affine_grid only supports 4D and 5D sizes, for 2D and 3D affine "
                                  f"transforms, respectively. Got size {size}.")
    d = len(size) - 2
    if theta.dim() != 3 or tuple(theta.shape[1:]) != (d, d + 1):
        raise ValueError(f"[affine_grid] Expected a batch of {d}D affine matrices of shape Nx{d}x{d + 1} for size "
                         f"{size}. Got {list(theta.shape)}.")
    spatial = size[2:]
    if align_corners and min(spatial) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the documentation of "
                      "affine_grid for details.", stacklevel=2)
    elif min(size) <= 0:
        raise ValueError(f"[affine_grid] Expected non-zero, positive output size. Got {size}")
    if theta.shape[0] != size[0]:
        raise RuntimeError(f"[affine_grid] theta has {theta.shape[0]} matrices but size asks for a batch of {size[0]}")
    # base[(d, h, w)] = (x_w, y_h[, z_d], 1): the last spatial dim varies fastest
    axes = [_base_coords(n, align_corners, theta) for n in reversed(spatial)]  # x, y[, z]
    columns = []
    for k, axis in enumerate(axes):
        shape = [1] * d
        shape[d - 1 - k] = spatial[d - 1 - k]
        columns.append(axis.reshape(shape).expand(*spatial))
    columns.append(ember.ones(tuple(spatial), dtype=theta.dtype, device=theta.device))
    base = ember.stack(columns, -1).reshape(1, -1, d + 1)
    points = base.expand(size[0], base.shape[1], d + 1)
    return ember.bmm(points, theta.transpose(1, 2)).reshape(size[0], *spatial, d)


def _unnormalize(coord: Tensor, size: int, align_corners: bool) -> Tensor:
    if align_corners:
        return ((coord + 1) / 2) * (size - 1)
    return ((coord + 1) * size - 1) / 2


def _clip(x: Tensor, size: int) -> Tensor:
    """x clamped to [0, size - 1], with torch's gradient: 0 on the borders and beyond."""
    hi = float(size - 1)
    inside = (x > 0).logical_and(x < hi)
    return ember.where(inside, x, x.detach().clamp(0.0, hi))


def _reflect(x: Tensor, twice_low: int, twice_high: int) -> Tensor:
    """x mirrored into [twice_low / 2, twice_high / 2] (torch's reflect_coordinates, its gradient signs)."""
    if twice_low == twice_high:
        return x * 0
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    dist = ember.where(x < low, low - x, x - low)
    flips = ember.floor(dist.detach() / span)
    extra = dist - flips * span
    even = ember.remainder(flips, 2.0) == 0
    return ember.where(even, extra + low, span - extra + low)


def _move_inside(x: Tensor, size: int, padding_mode: str, align_corners: bool) -> Tensor:
    """torch's compute_coordinates: where a padding mode moves a source coordinate."""
    if padding_mode == "border":
        return _clip(x, size)
    if padding_mode == "reflection":
        x = _reflect(x, 0, 2 * (size - 1)) if align_corners else _reflect(x, -1, 2 * size - 1)
        return _clip(x, size)
    return x


class _Taps:
    """Reads the input flattened to (N, C, L_in) at integer positions (per spatial dim, (N, L_out))."""

    def __init__(self, input: Tensor, out_len: int):
        self.n, self.c = input.shape[0], input.shape[1]
        self.sizes = list(input.shape[2:])
        self.flat = input.reshape(self.n, self.c, math.prod(self.sizes))
        self.out_len = out_len

    def read(self, positions: list) -> Tensor:
        """(N, C, L_out): the input at the given (detached, integral) positions, 0 outside the image."""
        valid = None
        linear = None
        for pos, size in zip(positions, self.sizes, strict=True):
            ok = (pos >= 0).logical_and(pos <= size - 1)
            valid = ok if valid is None else valid.logical_and(ok)
            index = pos.clamp(0, size - 1).to(ember.int64)
            linear = index if linear is None else linear * size + index
        values = ember.gather(self.flat, 2, linear.unsqueeze(1).expand(self.n, self.c, self.out_len))
        return values * valid.unsqueeze(1).to(values.dtype)


def _cubic_coefficients(t: Tensor) -> list:
    a = _CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]


def _check_grid_sample(input: Tensor, grid: Tensor, mode: str, padding_mode: str) -> None:
    op = "grid_sample"
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"[{op}] nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or "
                         f"'bicubic', but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"[{op}] nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    sizes = f"input with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}"
    if input.dim() not in (4, 5) or grid.dim() != input.dim():
        raise RuntimeError(f"[{op}] grid_sampler(): expected 4D or 5D input and grid with same number of dimensions, "
                           f"but got {sizes}")
    if input.dtype != grid.dtype:
        raise RuntimeError(f"[{op}] grid_sampler(): expected input and grid to have same dtype, but input has "
                           f"{input.dtype} and grid has {grid.dtype}")
    if not input.is_floating_point():
        raise RuntimeError(f"[{op}] grid_sampler(): expected a floating-point input, got {input.dtype}")
    if input.shape[0] != grid.shape[0]:
        raise RuntimeError(f"[{op}] grid_sampler(): expected grid and input to have same batch size, but got {sizes}")
    d = input.dim() - 2
    if grid.shape[-1] != d:
        raise RuntimeError(f"[{op}] grid_sampler(): expected grid to have size {d} in last dimension, but got grid "
                           f"with sizes {list(grid.shape)}")
    for k in range(2, input.dim()):
        if input.shape[k] == 0:
            raise RuntimeError(f"[{op}] grid_sampler(): expected input to have non-empty spatial dimensions, but "
                               f"input has sizes {list(input.shape)} with dimension {k} being empty")
    if mode == "bicubic" and d != 2:
        raise RuntimeError(f"[{op}] grid_sampler(): bicubic interpolation only supports 4D input (got {sizes})")


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool | None = None) -> Tensor:
    """input (N, C, H, W) (or (N, C, D, H, W)) sampled at grid (N, H_out, W_out, 2) (or (..., 3)) positions
    in [-1, 1]: (N, C, H_out, W_out). Note [grid_sample as gathers]."""
    _check_grid_sample(input, grid, mode, padding_mode)
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=2)
        align_corners = False
    d = input.dim() - 2
    n, c = input.shape[0], input.shape[1]
    out_sizes = list(grid.shape[1:-1])
    out_len = math.prod(out_sizes)
    taps = _Taps(input, out_len)
    flat_grid = grid.reshape(n, out_len, d)
    # coordinate of input dim k (dims ordered as the input's: D, H, W) in pixel units
    coords = [_unnormalize(flat_grid[:, :, d - 1 - k], taps.sizes[k], align_corners) for k in range(d)]
    if mode == "bicubic":
        out = _bicubic(taps, coords, padding_mode, align_corners)
    else:
        coords = [_move_inside(x, n, padding_mode, align_corners) for x, n in zip(coords, taps.sizes, strict=True)]
        if mode == "nearest":
            # the grid's gradient is zero, as torch's (not absent)
            out = taps.read([ember.round(x.detach()) for x in coords]) + (flat_grid.sum(-1) * 0).unsqueeze(1)
        else:
            low = [ember.floor(x.detach()) for x in coords]
            frac = [x - lo for x, lo in zip(coords, low, strict=True)]
            out = None
            for corner in itertools.product((0, 1), repeat=d):
                weight = None
                for bit, f in zip(corner, frac, strict=True):
                    w = f if bit else 1 - f
                    weight = w if weight is None else weight * w
                term = taps.read([lo + bit for lo, bit in zip(low, corner, strict=True)]) * weight.unsqueeze(1)
                out = term if out is None else out + term
    return out.reshape(n, c, *out_sizes)


def _bicubic(taps: _Taps, coords: list, padding_mode: str, align_corners: bool) -> Tensor:
    (y, x) = coords
    (h, w) = taps.sizes
    y0, x0 = ember.floor(y.detach()), ember.floor(x.detach())
    cy, cx = _cubic_coefficients(y - y0), _cubic_coefficients(x - x0)
    with ember.no_grad():
        ys = [_move_inside(y0 + (i - 1), h, padding_mode, align_corners) for i in range(4)]
        xs = [_move_inside(x0 + (j - 1), w, padding_mode, align_corners) for j in range(4)]
        ys, xs = [ember.floor(t) for t in ys], [ember.floor(t) for t in xs]
    out = None
    for i in range(4):
        row = None
        for j in range(4):
            term = taps.read([ys[i], xs[j]]) * cx[j].unsqueeze(1)
            row = term if row is None else row + term
        term = row * cy[i].unsqueeze(1)
        out = term if out is None else out + term
    return out
