"""Variable-length sequences for the recurrent layers (torch.nn.utils.rnn): PackedSequence and the
pack/pad helpers. A packed batch keeps, for each time step t, the rows of the sequences still
running at t (batch_sizes[t] of them, longest sequences first), so a recurrent layer never computes
on padding. All helpers are compositions of differentiable ember ops."""
from __future__ import annotations

from typing import NamedTuple

import ember
from ember import Tensor

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence", "pack_sequence",
           "unpad_sequence", "unpack_sequence"]


class PackedSequence(NamedTuple):
    data: Tensor
    batch_sizes: Tensor                  # int64 on the CPU, one entry per time step
    sorted_indices: Tensor | None = None    # packed order -> original batch index
    unsorted_indices: Tensor | None = None  # original batch index -> packed order

    def to(self, *args, **kwargs) -> "PackedSequence":
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        device = data.device
        move = (lambda t: None if t is None else t.to(device))  # noqa: E731
        return PackedSequence(data, self.batch_sizes, move(self.sorted_indices), move(self.unsorted_indices))

    @property
    def is_cuda(self) -> bool:
        return self.data.device.type == "cuda"


def _invert_permutation(permutation: Tensor) -> Tensor:
    inverse = ember.empty_like(permutation)
    inverse.index_put_((permutation,), ember.arange(permutation.numel(), dtype=ember.int64,
                                                     device=permutation.device))
    return inverse


def _batch_sizes(lengths: list) -> list:
    """batch_sizes[t] = how many of the (descending) lengths exceed t."""
    out, j = [], len(lengths)
    for t in range(lengths[0] if lengths else 0):
        while j and lengths[j - 1] <= t:
            j -= 1
        out.append(j)
    return out


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False, enforce_sorted: bool = True
                         ) -> PackedSequence:
    """Packs a padded batch [T, B, *] ([B, T, *] with batch_first) whose sequence b has lengths[b] steps."""
    if isinstance(lengths, Tensor):
        lengths = lengths.tolist()
    lengths = [int(n) for n in lengths]
    batch_dim = 0 if batch_first else 1
    if len(lengths) != input.shape[batch_dim]:
        raise ValueError(f"[pack_padded_sequence] expected {input.shape[batch_dim]} lengths (the batch size of "
                         f"input {list(input.shape)}), got {len(lengths)}")
    if any(n <= 0 for n in lengths):
        raise RuntimeError("[pack_padded_sequence] Length of all samples has to be greater than 0, but found an "
                           f"element in 'lengths' that is <= 0: {lengths}")
    sorted_indices = unsorted_indices = None
    if enforce_sorted:
        if any(a < b for a, b in zip(lengths, lengths[1:])):
            raise RuntimeError("[pack_padded_sequence] `lengths` array must be sorted in decreasing order when "
                               "`enforce_sorted` is True. You can pass `enforce_sorted=False` to pack_padded_sequence "
                               "and/or pack_sequence to sidestep this requirement if you do not need ONNX "
                               "exportability.")
    else:
        order = sorted(range(len(lengths)), key=lambda b: -lengths[b])  # stable, like torch's sort
        sorted_indices = ember.tensor(order, dtype=ember.int64, device=input.device)
        unsorted_indices = _invert_permutation(sorted_indices)
        input = input.index_select(batch_dim, sorted_indices)
        lengths = [lengths[b] for b in order]
    if batch_first:
        input = input.transpose(0, 1)
    if lengths[0] > input.shape[0]:
        raise RuntimeError(f"[pack_padded_sequence] a length ({lengths[0]}) exceeds the padded sequence length "
                           f"({input.shape[0]})")
    batch_sizes = _batch_sizes(lengths)
    data = ember.cat([input[t, :bs] for t, bs in enumerate(batch_sizes)], 0)
    return PackedSequence(data, ember.tensor(batch_sizes, dtype=ember.int64), sorted_indices, unsorted_indices)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple:
    """The inverse of pack_padded_sequence: (padded [T, B, *] or [B, T, *], lengths int64 tensor)."""
    data, batch_sizes_t, sorted_indices, unsorted_indices = sequence
    batch_sizes = [int(b) for b in batch_sizes_t.tolist()]
    steps, batch = len(batch_sizes), (batch_sizes[0] if batch_sizes else 0)
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"[pad_packed_sequence] Expected total_length to be at least the length of the longest "
                             f"sequence in input, but got total_length={total_length} and max sequence length being "
                             f"{steps}")
    else:
        total_length = steps
    feature = tuple(data.shape[1:])
    rows, offset = [], 0
    for bs in batch_sizes:
        step = data[offset:offset + bs]
        if bs < batch:
            pad = ember.full((batch - bs, *feature), padding_value, dtype=data.dtype, device=data.device)
            step = ember.cat([step, pad], 0)
        rows.append(step)
        offset += bs
    for _ in range(total_length - steps):
        rows.append(ember.full((batch, *feature), padding_value, dtype=data.dtype, device=data.device))
    padded = ember.stack(rows, 0) if rows else ember.empty((0, batch, *feature), dtype=data.dtype,
                                                           device=data.device)
    lengths = [sum(1 for bs in batch_sizes if bs > b) for b in range(batch)]
    lengths_t = ember.tensor(lengths, dtype=ember.int64)
    if unsorted_indices is not None:
        padded = padded.index_select(1, unsorted_indices)
        lengths_t = lengths_t.index_select(0, unsorted_indices.to("cpu"))
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, lengths_t


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0, padding_side: str = "right"
                 ) -> Tensor:
    """Stacks tensors [L_i, *] into [max L, B, *] ([B, max L, *] with batch_first), padded with padding_value."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"[pad_sequence] padding_side must be 'left' or 'right', got {padding_side!r}")
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("[pad_sequence] received an empty list of sequences")
    longest = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        missing = longest - s.shape[0]
        if missing:
            pad = ember.full((missing, *s.shape[1:]), padding_value, dtype=s.dtype, device=s.device)
            s = ember.cat([s, pad] if padding_side == "right" else [pad, s], 0)
        padded.append(s)
    return ember.stack(padded, 0 if batch_first else 1)


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list:
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [padded_sequences[b, :int(n)] for b, n in enumerate(lengths.tolist() if isinstance(lengths, Tensor)
                                                                else lengths)]


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
