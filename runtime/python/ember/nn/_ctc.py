"""ctc_loss: connectionist temporal classification (Graves et al. 2006) by the forward-backward
algorithm in log space, vectorised over the batch and the extended label sequence, one step per
time frame.

Note [CTC gradient]
The loss of sample n is nll = -log sum over alignments; its forward pass keeps alpha (T, N, 2S+1).
The backward pass runs beta and returns torch's gradient for log_probs:
    grad[t, n, c] = (exp(lp[t, n, c]) - sum_{s: l'_s = c} exp(alpha + beta - lp + nll)) * g_n
for t < input_length (0 after it). The exp(lp) term is not part of d nll / d lp: torch folds in the
log_softmax that normally produces log_probs (its rows sum to one, so that term cancels in
log_softmax's backward). Matching it keeps gradients equal even when log_probs is a leaf.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import ember
from ember import Tensor

from ._losses import _reduction

__all__ = ["ctc_loss"]

_NEG_INF = float("-inf")


@dataclass
class _Plan:
    """The extended labels (blank, l1, blank, l2, ..., blank) of each sample, padded with blanks."""
    labels: Tensor          # (N, L) int64, L = 2 * max target length + 1
    skip: Tensor            # (N, L) bool: state s may be entered from s - 2
    input_lengths: list
    target_lengths: list
    zero_infinity: bool


def _shift(x: Tensor, k: int) -> Tensor:
    """x moved k states right along the last dim, -inf entering on the left."""
    pad = ember.full(tuple(x.shape[:-1]) + (k,), _NEG_INF, dtype=x.dtype, device=x.device)
    return ember.cat([pad, x.narrow(-1, 0, x.shape[-1] - k)], -1)


def _shift_left(x: Tensor, k: int) -> Tensor:
    pad = ember.full(tuple(x.shape[:-1]) + (k,), _NEG_INF, dtype=x.dtype, device=x.device)
    return ember.cat([x.narrow(-1, k, x.shape[-1] - k), pad], -1)


def _logaddexp(*terms: Tensor) -> Tensor:
    """log(sum(exp(terms))) that stays -inf (not NaN) when every term is -inf."""
    m = terms[0]
    for t in terms[1:]:
        m = ember.maximum(m, t)
    m = ember.where(ember.isinf(m), ember.zeros_like(m), m)
    total = ember.exp(terms[0] - m)
    for t in terms[1:]:
        total = total + ember.exp(t - m)
    return m + ember.log(total)


def _per_frame(lengths: list, t: int, like: Tensor) -> Tensor:
    return ember.tensor([t < n for n in lengths], dtype=ember.bool, device=like.device).unsqueeze(-1)


class _CTC(ember.autograd.Function):
    @staticmethod
    def forward(ctx, log_probs, plan):
        T, N, _ = log_probs.shape
        L = plan.labels.shape[1]
        emit = log_probs.gather(2, plan.labels.unsqueeze(0).expand(T, N, L))  # (T, N, L)
        neg = ember.full((N, L), _NEG_INF, dtype=log_probs.dtype, device=log_probs.device)
        states = ember.arange(L, device=log_probs.device).unsqueeze(0)
        first = (states == 0).logical_or((states == 1).logical_and(
            ember.tensor(plan.target_lengths, device=log_probs.device).unsqueeze(-1) > 0))
        alpha = [ember.where(first, emit[0], neg)]
        for t in range(1, T):
            prev = alpha[-1]
            skip = ember.where(plan.skip, _shift(prev, 2), neg)
            step = _logaddexp(prev, _shift(prev, 1), skip) + emit[t]
            alpha.append(ember.where(_per_frame(plan.input_lengths, t, prev), step, prev))
        alpha = ember.stack(alpha, 0)  # (T, N, L); frozen after each sample's last frame
        last = ember.tensor([max(n - 1, 0) for n in plan.input_lengths], dtype=ember.int64,
                            device=log_probs.device)
        final = alpha.gather(0, last.reshape(1, N, 1).expand(1, N, L)).squeeze(0)  # (N, L)
        end = ember.tensor([2 * s for s in plan.target_lengths], dtype=ember.int64, device=log_probs.device)
        a_end = final.gather(1, end.unsqueeze(1)).squeeze(1)
        a_pre = final.gather(1, (end - 1).clamp_min(0).unsqueeze(1)).squeeze(1)
        has_labels = ember.tensor([s > 0 for s in plan.target_lengths], device=log_probs.device)
        nll = -_logaddexp(a_end, ember.where(has_labels, a_pre, ember.full_like(a_pre, _NEG_INF)))
        empty_input = ember.tensor([n == 0 for n in plan.input_lengths], device=log_probs.device)
        nll = ember.where(empty_input.logical_and(has_labels.logical_not()), ember.zeros_like(nll),
                          ember.where(empty_input, ember.full_like(nll, float("inf")), nll))
        ctx.save_for_backward(log_probs, alpha, emit, nll)
        ctx.plan = plan
        if plan.zero_infinity:
            nll = ember.where(ember.isinf(nll), ember.zeros_like(nll), nll)
        return nll

    @staticmethod
    def backward(ctx, grad):
        log_probs, alpha, emit, nll = ctx.saved_tensors
        plan = ctx.plan
        T, N, C = log_probs.shape
        L = plan.labels.shape[1]
        neg = ember.full((N, L), _NEG_INF, dtype=log_probs.dtype, device=log_probs.device)
        states = ember.arange(L, device=log_probs.device).unsqueeze(0)
        ends = ember.tensor([2 * s for s in plan.target_lengths], device=log_probs.device).unsqueeze(-1)
        at_end = (states == ends).logical_or((states == ends - 1).logical_and(ends > 0))
        skip_next = _shift_left(plan.skip.to(ember.int64), 2) > 0  # s + 2 may be entered from s
        betas = [None] * T
        beta = neg
        for t in range(T - 1, -1, -1):
            is_last = ember.tensor([t == n - 1 for n in plan.input_lengths], device=log_probs.device).unsqueeze(-1)
            inside = _per_frame(plan.input_lengths, t, beta)
            step = _logaddexp(beta, _shift_left(beta, 1), ember.where(skip_next, _shift_left(beta, 2), neg)) + emit[t]
            beta = ember.where(is_last, ember.where(at_end, emit[t], neg), ember.where(inside, step, neg))
            betas[t] = beta
        beta = ember.stack(betas, 0)
        occupancy = ember.exp(alpha + beta - emit + nll.reshape(1, N, 1))  # (T, N, L)
        inside = ember.tensor([[t < n for n in plan.input_lengths] for t in range(T)], device=log_probs.device)
        occupancy = ember.where(inside.unsqueeze(-1), occupancy, ember.zeros_like(occupancy))
        occ = ember.zeros((T, N, C), dtype=log_probs.dtype, device=log_probs.device).scatter_add(
            2, plan.labels.unsqueeze(0).expand(T, N, L), occupancy)
        g = (ember.exp(log_probs) - occ) * grad.reshape(1, N, 1)
        g = ember.where(inside.unsqueeze(-1), g, ember.zeros_like(g))
        impossible = ember.isinf(nll).reshape(1, N, 1)  # no alignment: torch's gradient is 0 or NaN there
        fill = ember.zeros_like(g) if plan.zero_infinity else ember.where(
            inside.unsqueeze(-1), ember.full_like(g, float("nan")), ember.zeros_like(g))
        return ember.where(impossible, fill, g), None


def _as_lengths(op: str, lengths, name: str, batch: int) -> list:
    values = [int(v) for v in (lengths.reshape(-1).tolist() if isinstance(lengths, Tensor) else lengths)]
    if len(values) != batch:
        raise RuntimeError(f"[{op}] {name} must be of size batch_size ({batch}), got {len(values)}")
    return values


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """The CTC loss of log-probabilities (T, N, C) (or unbatched (T, C)) against targets given padded
    (N, S) or concatenated (sum of target_lengths); 'mean' divides each loss by its target length
    before averaging, as torch. Note [CTC gradient]."""
    op = "ctc_loss"
    reduction = _reduction(op, reduction)
    unbatched = log_probs.dim() == 2
    if unbatched:
        log_probs = log_probs.unsqueeze(1)
        targets = targets.unsqueeze(0) if targets.dim() == 1 else targets
    if log_probs.dim() != 3:
        raise RuntimeError(f"[{op}] expected log_probs of shape (T, N, C) or (T, C), got {list(log_probs.shape)}")
    if not log_probs.is_floating_point():
        raise RuntimeError(f"[{op}] expected floating-point log_probs, got {log_probs.dtype}")
    T, N, C = log_probs.shape
    if not 0 <= blank < C:
        raise RuntimeError(f"[{op}] blank must be in label range (got blank={blank} for {C} classes)")
    in_lens = _as_lengths(op, input_lengths, "input_lengths", N)
    tgt_lens = _as_lengths(op, target_lengths, "target_lengths", N)
    for n in in_lens:
        if not 0 <= n <= T:
            raise RuntimeError(f"[{op}] Expected input_lengths to have value at most {T}, but got value {n}")
    if min(tgt_lens, default=0) < 0:
        raise RuntimeError(f"[{op}] target_lengths must be non-negative, got {tgt_lens}")
    flat = targets.to(ember.int64).cpu().numpy()
    rows = []
    if targets.dim() == 1:
        if flat.size < sum(tgt_lens):
            raise RuntimeError(f"[{op}] concatenated targets of length {flat.size} are shorter than the sum of "
                               f"target_lengths ({sum(tgt_lens)})")
        starts = np.concatenate([[0], np.cumsum(tgt_lens)[:-1]]).astype(np.int64)
        rows = [flat[s:s + n] for s, n in zip(starts, tgt_lens, strict=True)]
    else:
        if flat.shape[0] != N or (tgt_lens and flat.shape[1] < max(tgt_lens)):
            raise RuntimeError(f"[{op}] Expected tensor to have size at least {max(tgt_lens, default=0)} at "
                               f"dimension 1, but got size {flat.shape[1] if flat.ndim > 1 else 0} for argument #2 "
                               f"'targets' (targets of shape {list(targets.shape)}, batch {N})")
        rows = [flat[n, :tgt_lens[n]] for n in range(N)]
    for row in rows:
        if row.size and (row.min() < 0 or row.max() >= C or (row == blank).any()):
            raise RuntimeError(f"[{op}] targets must be class indices in [0, {C}) other than blank={blank}, got "
                               f"{row.tolist()}")
    length = 2 * max(tgt_lens, default=0) + 1
    labels = np.full((N, length), blank, dtype=np.int64)
    for n, row in enumerate(rows):
        labels[n, 1:2 * row.size:2] = row
    skip = np.zeros((N, length), dtype=bool)
    skip[:, 2:] = (labels[:, 2:] != blank) & (labels[:, 2:] != labels[:, :-2])
    device = log_probs.device
    plan = _Plan(ember.from_numpy(labels).to(device), ember.from_numpy(skip).to(device), in_lens, tgt_lens,
                 zero_infinity)
    losses = _CTC.apply(log_probs, plan)
    if reduction == "none":
        return losses.squeeze(0) if unbatched else losses
    if reduction == "sum":
        return losses.sum()
    divisor = ember.tensor([max(n, 1) for n in tgt_lens], dtype=losses.dtype, device=device)
    return (losses / divisor).mean()
