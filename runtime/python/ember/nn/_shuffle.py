"""pixel_shuffle, pixel_unshuffle and channel_shuffle: pure reshapes and permutes (their backward is
the inverse permutation, from the view ops)."""
from __future__ import annotations

from ember import Tensor

__all__ = ["pixel_shuffle", "pixel_unshuffle", "channel_shuffle"]


def _check(op: str, input: Tensor, factor: int, name: str) -> None:
    if factor <= 0:
        raise RuntimeError(f"[{op}] {op} expects a positive {name}, but got {factor}")
    if input.dim() < 3:
        raise RuntimeError(f"[{op}] {op} expects input to have at least 3 dimensions, but got input with "
                           f"{input.dim()} dimension(s)")


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r): sub-pixel convolution's rearrangement."""
    r = int(upscale_factor)
    _check("pixel_shuffle", input, r, "upscale_factor")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(f"[pixel_shuffle] pixel_shuffle expects its input's 'channel' dimension to be divisible by "
                           f"the square of upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    b = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(b), b, b + 3, b + 1, b + 4, b + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W), the inverse of pixel_shuffle."""
    r = int(downscale_factor)
    _check("pixel_unshuffle", input, r, "downscale_factor")
    *lead, c, h, w = input.shape
    if h % r or w % r:
        which, n = ("height", h) if h % r else ("width", w)
        raise RuntimeError(f"[pixel_unshuffle] pixel_unshuffle expects {which} to be divisible by downscale_factor, "
                           f"but input.size({-2 if which == 'height' else -1})={n} is not divisible by {r}")
    b = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(b), b, b + 2, b + 4, b + 1, b + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """(N, C, *) with channels g-major -> channels interleaved across the g groups (ShuffleNet)."""
    if groups <= 0:
        raise ValueError(f"[channel_shuffle] Number of groups to divide channels in must be positive. Value of groups:"
                         f"{groups}")
    if input.dim() < 3:
        raise RuntimeError(f"[channel_shuffle] channel_shuffle expects input to have at least 3 dimensions, but got "
                           f"input with sizes {list(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    if c % groups:
        raise RuntimeError(f"[channel_shuffle] Number of channels must be divisible by groups. Got {c} channels and "
                           f"{groups} groups.")
    rest = tuple(input.shape[2:])
    return input.reshape(n, groups, c // groups, *rest).transpose(1, 2).reshape(n, c, *rest)
