"""embedding_bag: the sum, mean or max of the embedding rows of each bag of indices, without
materialising the (bag, index, dim) tensor for sum and mean (one index_add over the looked-up rows).
Bags are rows of a 2-D input, or runs of a 1-D input starting at `offsets`; entries equal to
padding_idx are left out (and not counted by the mean); empty bags give zeros, as torch."""
from __future__ import annotations

import numpy as np

import ember
from ember import Tensor

from ._losses import _check_index_range

__all__ = ["embedding_bag"]


def _bag_ids(op: str, n_indices: int, offsets: list, include_last_offset: bool) -> tuple[np.ndarray, int]:
    """The bag of every index position (-1: past the last offset, ignored) and the number of bags."""
    if offsets and offsets[0] != 0:
        raise RuntimeError(f"[{op}] offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start "
                           f"from position 0. However, got {offsets[0]}")
    if offsets and offsets[-1] > n_indices:
        raise RuntimeError(f"[{op}] offsets[-1] can not be greater than input's length ({n_indices}), but got "
                           f"offsets[-1] of {offsets[-1]}")
    if any(a > b for a, b in zip(offsets, offsets[1:], strict=False)):
        raise RuntimeError(f"[{op}] offsets must be non-decreasing, got {offsets}")
    bags = len(offsets) - 1 if include_last_offset else len(offsets)
    ends = offsets[1:] if include_last_offset else offsets[1:] + [n_indices]
    bags = max(bags, 0)
    ids = np.full(n_indices, -1, dtype=np.int64)
    if bags:  # the bags tile [0, ends[-1]) in order
        lengths = np.asarray(ends[:bags]) - np.asarray(offsets[:bags])
        ids[:ends[bags - 1]] = np.repeat(np.arange(bags), lengths)
    return ids, bags


def embedding_bag(input: Tensor, weight: Tensor, offsets: Tensor | None = None, max_norm=None, norm_type: float = 2,
                  scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Tensor | None = None, include_last_offset: bool = False,
                  padding_idx: int | None = None) -> Tensor:
    op = "embedding_bag"
    if per_sample_weights is not None and tuple(input.shape) != tuple(per_sample_weights.shape):
        raise ValueError(f"[{op}] If per_sample_weights ({list(per_sample_weights.shape)}) is not None, then it must "
                         f"have the same shape as the input ({list(input.shape)})")
    if weight.dim() != 2:
        raise ValueError(f"[{op}] weight has to be a 2D Tensor, but got Tensor of dimension {weight.dim()}")
    if input.dtype not in (ember.int64, ember.int32):
        raise TypeError(f"[{op}] expected indices of dtype int64 or int32, got {input.dtype}")
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError(f"[{op}] if input is 2D, then offsets has to be None, as input is treated is a mini-batch "
                             f"of fixed length sequences. However, found offsets of type {type(offsets)}")
        if input.shape[1] == 0:  # torch's arange(0, numel, 0) fails the same way
            raise RuntimeError(f"[{op}] a 2D input needs non-empty bags (rows), got input of shape "
                               f"{list(input.shape)}: step must be nonzero")
        offset_list = list(range(0, input.numel(), input.shape[1]))
        include_last_offset = False
        input = input.reshape(-1)
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.reshape(-1)
    elif input.dim() == 1:
        if offsets is None:
            raise ValueError(f"[{op}] offsets has to be a 1D Tensor but got None")
        if offsets.dim() != 1:
            raise ValueError(f"[{op}] offsets has to be a 1D Tensor (got offsets of shape {list(offsets.shape)})")
        offset_list = [int(o) for o in offsets.tolist()]
    else:
        raise ValueError(f"[{op}] input has to be 1D or 2D Tensor, but got Tensor of dimension {input.dim()}")
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"[{op}] mode has to be one of sum, mean or max (got '{mode}')")
    if mode == "max" and scale_grad_by_freq:
        raise ValueError(f"[{op}] max mode does not support scaling the gradient by the frequency")
    if sparse:
        raise NotImplementedError(f"[{op}] sparse=True: ember has no sparse gradients; use sparse=False")
    n, dim = weight.shape
    _check_index_range(op, input, n, "index out of range: indices must be in [0, {n}), got {bad}")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"[{op}] embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                                  f"supported for mode='sum' (got mode='{mode}').")
    if max_norm is not None and input.numel():
        from .functional import _renorm_rows_
        _renorm_rows_(weight, input.to(ember.int64), float(max_norm), float(norm_type))
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"[{op}] padding_idx must be within num_embeddings ({n}), got {padding_idx}")
        padding_idx = padding_idx + n if padding_idx < 0 else padding_idx

    ids, bags = _bag_ids(op, input.numel(), offset_list, include_last_offset)
    idx = input.to(ember.int64)
    counted = ids >= 0
    if padding_idx is not None:
        counted &= input.cpu().numpy().reshape(-1) != padding_idx
    keep = np.nonzero(counted)[0]
    device = weight.device
    idx = idx.index_select(0, ember.from_numpy(keep).to(device))
    bag = ember.from_numpy(ids[keep]).to(device)
    rows = ember.index_select(weight, 0, idx)
    if scale_grad_by_freq and rows.requires_grad:
        freq = np.bincount(input.cpu().numpy().reshape(-1), minlength=n).astype(np.float64)
        inverse = ember.from_numpy(1.0 / freq[input.cpu().numpy()[keep]]).to(weight.dtype).to(device).unsqueeze(-1)
        rows.register_hook(lambda g: g * inverse)
    if mode == "max":
        return _bag_max(rows, ids[keep], bags, dim)
    if per_sample_weights is not None:
        psw = per_sample_weights.index_select(0, ember.from_numpy(keep).to(device))
        rows = rows * psw.unsqueeze(-1)
    out = ember.zeros((bags, dim), dtype=weight.dtype, device=device).index_add(0, bag, rows)
    if mode == "mean":
        counts = np.bincount(ids[keep], minlength=bags).astype(np.float64)
        divisor = ember.from_numpy(np.maximum(counts, 1.0)).to(weight.dtype).to(device).unsqueeze(-1)
        out = out / divisor
    return out


def _bag_max(rows: Tensor, bag_of_row: np.ndarray, bags: int, dim: int) -> Tensor:
    """Per bag, the elementwise max of its rows (zeros for an empty bag): rows padded with -inf into a
    (bags, longest, dim) block and reduced; the gradient reaches each maximum's row."""
    counts = np.bincount(bag_of_row, minlength=bags) if bags else np.zeros(0, dtype=np.int64)
    longest = int(counts.max()) if counts.size and counts.max() > 0 else 1
    table = np.full((bags, longest), rows.shape[0], dtype=np.int64)  # default: the -inf row
    order = np.argsort(bag_of_row, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    sorted_bags = bag_of_row[order]
    table[sorted_bags, np.arange(order.size) - starts[sorted_bags]] = order
    pad = ember.full((1, dim), float("-inf"), dtype=rows.dtype, device=rows.device)
    padded = ember.cat([rows, pad], 0)
    block = ember.index_select(padded, 0, ember.from_numpy(table.reshape(-1)).to(rows.device)).reshape(bags, longest,
                                                                                                       dim)
    out = block.max(1)[0]
    empty = ember.from_numpy(counts == 0).to(rows.device).unsqueeze(-1)
    return ember.where(empty, ember.zeros_like(out), out)
