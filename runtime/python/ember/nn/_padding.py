"""F.pad: constant padding of any trailing dims (negative amounts crop), and reflect / replicate /
circular padding of the last 1, 2 or 3 dims of a (batched or unbatched) input, as torch allows.
Non-constant modes gather along each padded dim with an index vector, so the backward is
index_select's (gradients of reflected/replicated positions accumulate into their sources)."""
from __future__ import annotations

import ember
from ember import Tensor

__all__ = ["pad"]

_MODES = ("constant", "reflect", "replicate", "circular")


def _source_index(mode: str, n: int, left: int, right: int) -> list:
    """For each output position along a dim of size n padded by (left, right): the input index it reads.
    Negative amounts crop; circular padding wraps around the cropped part, as torch does."""
    if mode == "circular":
        start, stop = max(-left, 0), n - max(-right, 0)
        return [start + (j - max(left, 0)) % (stop - start) for j in range(n + left + right)]
    out = []
    for i in range(-left, n + right):
        if mode == "reflect":
            period = 2 * (n - 1)
            j = abs(i) % period if period else 0
            out.append(j if j < n else period - j)
        else:  # replicate
            out.append(min(max(i, 0), n - 1))
    return out


def _check_pad_amounts(mode: str, n: int, left: int, right: int, dim: int, shape) -> None:
    if mode == "reflect" and (left >= n or right >= n):
        raise RuntimeError(f"[pad] reflect: padding size should be less than the corresponding input dimension, but "
                           f"got padding ({left}, {right}) at dimension {dim} of input {list(shape)}")
    if mode == "circular" and (left > n or right > n):
        raise RuntimeError(f"[pad] circular: padding value causes wrapping around more than once (padding "
                           f"({left}, {right}) at dimension {dim} of input {list(shape)})")
    if n == 0:
        raise RuntimeError(f"[pad] {mode}: dimension {dim} of input {list(shape)} is empty; non-constant padding "
                           f"needs non-zero sizes in the padded dimensions")
    if n + left + right < 1:
        raise RuntimeError(f"[pad] {mode}: input size {n} at dimension {dim} is too small for padding ({left}, "
                           f"{right}): the output would have size {n + left + right}")


def _pad_constant(input: Tensor, amounts, value: float) -> Tensor:
    out = input
    for dim, (left, right) in amounts:
        n = out.shape[dim]
        if n + left + right < 0:
            raise RuntimeError(f"[pad] The input size {n}, plus negative padding {left} and {right} resulted in a "
                               f"negative output size, which is invalid. Check dimension {dim} of your input.")
        start, stop = max(-left, 0), n - max(-right, 0)
        if start > 0 or stop < n:
            out = out.narrow(dim, start, max(stop - start, 0)) if stop > start else out.narrow(dim, 0, 0)
        pieces = []
        for amount in (left, right):
            shape = list(out.shape)
            shape[dim] = max(amount, 0)
            pieces.append(ember.full(tuple(shape), value, dtype=out.dtype, device=out.device))
        if left > 0 or right > 0:
            out = ember.cat([pieces[0], out, pieces[1]], dim)
    return out


def pad(input: Tensor, pad, mode: str = "constant", value=None) -> Tensor:
    """torch.nn.functional.pad: `pad` lists (left, right) amounts from the last dim backwards."""
    pad = [int(p) for p in pad]
    if len(pad) % 2:
        raise RuntimeError(f"[pad] Padding length must be divisible by 2, got {len(pad)}")
    if len(pad) > 2 * input.dim():
        raise RuntimeError(f"[pad] Padding length should be less than or equal to two times the input dimension but "
                           f"got padding length {len(pad)} and input of dimension {input.dim()}")
    if mode not in _MODES:
        raise NotImplementedError(f"[pad] unknown padding mode '{mode}'; expected one of {_MODES}")
    amounts = [(input.dim() - 1 - k, (pad[2 * k], pad[2 * k + 1])) for k in range(len(pad) // 2)]
    if mode == "constant":
        return _pad_constant(input, amounts, 0.0 if value is None else value)
    if value is not None and value != 0:
        raise ValueError(f'[pad] Padding mode "{mode}" doesn\'t take in value argument')
    k = len(pad) // 2
    if not (1 <= k <= 3 and input.dim() in (k + 1, k + 2)):
        raise NotImplementedError(f"[pad] Only 2D, 3D, 4D, 5D padding with non-constant padding are supported for now "
                                  f"(got padding of {k} dims for an input of shape {list(input.shape)})")
    out = input
    for dim, (left, right) in amounts:
        n = input.shape[dim]
        _check_pad_amounts(mode, n, left, right, dim, input.shape)
        index = ember.tensor(_source_index(mode, n, left, right), dtype=ember.int64, device=input.device)
        out = ember.index_select(out, dim, index)
    return out
