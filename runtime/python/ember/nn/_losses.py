"""Loss functions of ember.nn.functional, composed from ember ops (autograd comes from the ops).

Semantics follow torch.nn.functional, including the reductions' denominators: class-weighted
nll/cross-entropy means divide by the summed weights of the counted targets, probability-target
cross-entropy means divide by the number of rows, elementwise-weighted (`weight=`) mse/l1 means by
the summed weights (huber's by the element count, as torch does), kl_div's "batchmean" by the batch
size. The legacy size_average/reduce arguments map to a reduction as torch's
`_Reduction.legacy_get_string` does.
"""
from __future__ import annotations

import math
import warnings

import ember
from ember import Tensor

__all__ = ["nll_loss", "cross_entropy", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "kl_div", "poisson_nll_loss", "gaussian_nll_loss"]

_INDEX_DTYPES = (ember.int64, ember.int32, ember.int8, ember.uint8)


def _broadcast_shape(op: str, a, b) -> tuple:
    """The shape two tensors of shapes a and b broadcast to (numpy/torch rules)."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
        raise RuntimeError(f"[{op}] shapes {list(a)} and {list(b)} are not broadcastable")
    return tuple(y if x == 1 else x for x, y in zip(a, b))


def _reduction(op: str, reduction: str, size_average=None, reduce=None) -> str:
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "mean" if size_average and reduce else "sum" if reduce else "none"
        warnings.warn("size_average and reduce args will be deprecated, please use reduction='"
                      f"{reduction}' instead.", stacklevel=3)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"[{op}] reduction must be 'mean', 'sum' or 'none', got '{reduction}'")
    return reduction


def _reduce(losses: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def _class_last(input: Tensor) -> Tensor:
    """(N, C, d1, ...) -> (N, d1, ..., C): the class dim last so per-element losses gather on -1."""
    return input.movedim(1, -1) if input.dim() > 2 else input


def _check_targets(op: str, input: Tensor, target: Tensor) -> None:
    if target.dtype not in _INDEX_DTYPES:
        raise TypeError(f"[{op}] expected class-index targets of an integer dtype, got {target.dtype}")
    expected = tuple(input.shape[:1]) + tuple(input.shape[2:]) if input.dim() >= 2 else ()
    if tuple(target.shape) != expected:
        raise ValueError(f"[{op}] expected target of shape {list(expected)} for input of shape "
                         f"{list(input.shape)}, got {list(target.shape)}")


def _check_index_range(op: str, index: Tensor, n: int, message: str) -> None:
    """Clear IndexError for indices outside [0, n). CPU only: on an accelerator the .item() would
    force a device sync every step, and the gather/index kernels validate indices themselves."""
    if index.numel() == 0 or index.device.type != "cpu":
        return
    hi, lo = int(index.amax().item()), int(index.amin().item())
    if hi >= n or lo < 0:
        raise IndexError(f"[{op}] " + message.format(bad=hi if hi >= n else lo, n=n))


def _check_class_weight(op: str, weight, n_classes: int, input: Tensor) -> None:
    if weight is None:
        return
    if weight.dim() != 1 or weight.shape[0] != n_classes:
        raise ValueError(f"[{op}] weight tensor should be defined either for all {n_classes} classes or no classes "
                         f"but got weight tensor of shape: {list(weight.shape)}")
    if weight.dtype != input.dtype:
        raise TypeError(f"[{op}] expected weight of dtype {input.dtype} (the input's), got {weight.dtype}")


def _nll_terms(logp: Tensor, target: Tensor, weight, ignore_index: int, op: str):
    """Per-element weighted negative log-likelihoods and the per-element weights counted by the mean
    (zero where the target is ignore_index). `logp` has the class dim last."""
    tgt = target.to(ember.int64)
    valid = tgt != ignore_index
    safe = ember.where(valid, tgt, ember.zeros_like(tgt))
    n_classes = logp.shape[-1]
    _check_index_range(op, safe, n_classes, "target {bad} is out of bounds for {n} classes")
    picked = ember.gather(logp, -1, safe.unsqueeze(-1)).squeeze(-1)
    w = valid.to(logp.dtype)
    if weight is not None:
        w = w * ember.index_select(weight, 0, safe.reshape(-1)).reshape(tuple(safe.shape))
    return -(picked * w), w


def nll_loss(input: Tensor, target: Tensor, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices (class dim 1, or 0 for an unbatched input); targets
    equal to ignore_index contribute nothing and are excluded from the mean's denominator."""
    reduction = _reduction("nll_loss", reduction, size_average, reduce)
    _check_targets("nll_loss", input, target)
    logp = _class_last(input)
    _check_class_weight("nll_loss", weight, logp.shape[-1] if logp.dim() else 0, input)
    losses, w = _nll_terms(logp, target, weight, ignore_index, "nll_loss")
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / w.sum()


def _smoothing_term(logp_last: Tensor, target: Tensor, weight, ignore_index: int) -> Tensor:
    """Per-element -sum_c w_c log p_c (zero for ignored targets), the label-smoothing part of torch's loss."""
    weighted = logp_last * weight if weight is not None else logp_last
    valid = (target.to(ember.int64) != ignore_index).to(logp_last.dtype)
    return -(weighted.sum(-1) * valid)


def _cross_entropy_probabilities(input: Tensor, target: Tensor, weight, reduction: str, label_smoothing: float,
                                 class_dim: int) -> Tensor:
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"[cross_entropy] class-probability targets must have the input's shape "
                         f"{list(input.shape)}, got {list(target.shape)}")
    n_classes = input.shape[class_dim]
    _check_class_weight("cross_entropy", weight, n_classes, input)
    logp = ember.log_softmax(input, class_dim)
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / n_classes
    terms = logp * target
    if weight is not None:
        shape = [1] * input.dim()
        shape[class_dim] = n_classes
        terms = terms * weight.reshape(shape)
    losses = -terms.sum(class_dim)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / (input.numel() // n_classes if n_classes else 0)


def cross_entropy(input: Tensor, target: Tensor, weight=None, size_average=None, ignore_index: int = -100,
                  reduce=None, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over the class dim, then nll (class-index targets) or -sum(p * log q) (class
    probabilities, a float target of the input's shape). With label smoothing e the index loss is
    (1 - e) * nll + e / C * sum_c(-w_c log p_c), torch's formula. Unweighted class-index targets run
    the fused op (Note [Fused cross-entropy], csrc/ops/loss.cpp)."""
    reduction = _reduction("cross_entropy", reduction, size_average, reduce)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"[cross_entropy] label_smoothing must be in [0, 1], got {label_smoothing}")
    class_dim = 1 if input.dim() >= 2 else 0
    if target.is_floating_point():
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing, class_dim)
    if weight is None and input.dim() >= 1 and input.is_floating_point():
        # Same checks and messages as the composite (torch, too, reports target errors from nll_loss).
        _check_targets("nll_loss", input, target)
        logits = _class_last(input) if input.dim() >= 2 else input.unsqueeze(0)
        rows = logits.reshape(target.numel(), logits.shape[-1])  # explicit: reshape(-1, 0) is ambiguous
        loss = ember._C._cross_entropy_loss(rows, target.reshape(-1).to(ember.int64), int(ignore_index),
                                            float(label_smoothing), reduction)
        unflatten = reduction == "none" and tuple(loss.shape) != tuple(target.shape)
        return loss.reshape(tuple(target.shape)) if unflatten else loss
    logp = ember.log_softmax(input, class_dim)
    _check_targets("nll_loss", input, target)
    logp_last = _class_last(logp)
    n_classes = logp_last.shape[-1] if logp_last.dim() else 0
    _check_class_weight("cross_entropy", weight, n_classes, input)
    losses, w = _nll_terms(logp_last, target, weight, ignore_index, "nll_loss")
    if label_smoothing > 0.0:
        smooth = _smoothing_term(logp_last, target, weight, ignore_index)
        losses = losses * (1.0 - label_smoothing) + smooth * (label_smoothing / n_classes)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / w.sum()


# ---- regression losses ---------------------------------------------------------------------------

def _broadcast_pair(op: str, input: Tensor, target: Tensor):
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"[{op}] Using a target size ({list(target.shape)}) that is different to the input size "
                      f"({list(input.shape)}). This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", stacklevel=3)
        shape = _broadcast_shape(op, input.shape, target.shape)
        input, target = input.expand(*shape), target.expand(*shape)
    return input, target


def _weighted_reduce(op: str, losses: Tensor, weight, input: Tensor, reduction: str, mean_over_weights=True) -> Tensor:
    """torch's `weight=` for mse/l1/huber: elementwise weights of the input's shape. torch's 'mean'
    is sum(w * l) / sum(w) for mse and l1 but the plain mean of w * l for huber (mean_over_weights)."""
    if weight is None:
        return _reduce(losses, reduction)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"[{op}] Weights and input must have the same size (weight {list(weight.shape)}, input "
                         f"{list(input.shape)})")
    losses = losses * weight
    if reduction == "mean" and mean_over_weights:
        return losses.sum() / weight.sum()
    return _reduce(losses, reduction)


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
             weight=None) -> Tensor:
    reduction = _reduction("mse_loss", reduction, size_average, reduce)
    x, t = _broadcast_pair("mse_loss", input, target)
    diff = x - t
    return _weighted_reduce("mse_loss", diff * diff, weight, input, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
            weight=None) -> Tensor:
    reduction = _reduction("l1_loss", reduction, size_average, reduce)
    x, t = _broadcast_pair("l1_loss", input, target)
    return _weighted_reduce("l1_loss", (x - t).abs(), weight, input, reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, |d| - beta / 2 elsewhere (plain L1 for beta = 0)."""
    reduction = _reduction("smooth_l1_loss", reduction, size_average, reduce)
    if beta < 0:
        raise ValueError(f"[smooth_l1_loss] beta must be non-negative, got {beta}")
    x, t = _broadcast_pair("smooth_l1_loss", input, target)
    ad = (x - t).abs()
    if beta == 0.0:
        return _reduce(ad, reduction)
    d = x - t
    losses = ember.where(ad < beta, (d * d) * (0.5 / beta), ad - 0.5 * beta)
    return _reduce(losses, reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0, weight=None) -> Tensor:
    """0.5 d^2 where |d| < delta, delta * (|d| - delta / 2) elsewhere."""
    reduction = _reduction("huber_loss", reduction)
    if delta <= 0:
        raise ValueError(f"[huber_loss] delta must be positive, got {delta}")
    x, t = _broadcast_pair("huber_loss", input, target)
    d = x - t
    ad = d.abs()
    losses = ember.where(ad < delta, (d * d) * 0.5, (ad - 0.5 * delta) * delta)
    return _weighted_reduce("huber_loss", losses, weight, input, reduction, mean_over_weights=False)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False, size_average=None,
                     eps: float = 1e-8, reduce=None, reduction: str = "mean") -> Tensor:
    """exp(x) - t x (log_input) or x - t log(x + eps); full adds Stirling's t log t - t + log(2 pi t) / 2
    where t > 1."""
    reduction = _reduction("poisson_nll_loss", reduction, size_average, reduce)
    if log_input:
        loss = ember.exp(input) - target * input
    else:
        loss = input - target * ember.log(input + eps)
    if full:
        big = target > 1
        safe = ember.where(big, target, ember.full_like(target, 2.0))  # no log(0) in the unused branch's gradient
        stirling = safe * ember.log(safe) - safe + 0.5 * ember.log(2 * math.pi * safe)
        loss = loss + ember.where(big, stirling, ember.zeros_like(stirling))
    return _reduce(loss, reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """(log(max(var, eps)) + (input - target)^2 / max(var, eps)) / 2 (+ log(2 pi) / 2 when full). var
    matches input's shape, or lacks its last dim, or differs in one dim of size 1 (homoscedastic); the
    clamp does not reach the gradient, as in torch."""
    op = "gaussian_nll_loss"
    if isinstance(var, (int, float)):
        if var < 0:
            raise ValueError(f"[{op}] var has negative entry/entries (got var={var})")
        var = ember.full_like(input, float(var))
    elif input.device.type == "cpu" and var.numel() and bool((var < 0).any().item()):
        raise ValueError(f"[{op}] var has negative entry/entries")
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (input.dim() == var.dim()
                  and sum(v for i, v in zip(input.shape, var.shape, strict=True) if i != v) == 1):
            raise ValueError(f"[{op}] var is of incorrect size (var {list(var.shape)} for input {list(input.shape)})")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"[{op}] {reduction} is not valid")
    var = var + (var.detach().clamp_min(eps) - var.detach())
    loss = 0.5 * (ember.log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


# ---- binary cross-entropy ------------------------------------------------------------------------

# torch's EPSILON for the BCE gradient is the float 1e-12 (rounded to float32), not the double.
_BCE_EPSILON = 9.999999960041972e-13


class _BinaryCrossEntropy(ember.autograd.Function):
    """-w (t log x + (1 - t) log(1 - x)) with each log clamped to >= -100 and torch's gradients:
    d/dx = w (x - t) / max(x (1 - x), eps), d/dt = w (log(1 - x) - log x) (clamped logs), which
    stay finite at x = 0 and x = 1 where differentiating the clamped logs would give NaN."""

    @staticmethod
    def forward(ctx, x, t, w):
        log_x = x.log().clamp_min(-100.0)
        log_1mx = (1.0 - x).log().clamp_min(-100.0)
        loss = -(t * log_x + (1.0 - t) * log_1mx)
        if w is not None:
            loss = loss * w
        ctx.save_for_backward(x, t, w)
        return loss

    @staticmethod
    def backward(ctx, grad):
        x, t, w = ctx.saved_tensors
        gx = gt = None
        scale = grad * w if w is not None else grad
        if ctx.needs_input_grad[0]:
            gx = scale * (x - t) / (x * (1.0 - x)).clamp_min(_BCE_EPSILON)
        if ctx.needs_input_grad[1]:
            gt = scale * ((1.0 - x).log().clamp_min(-100.0) - x.log().clamp_min(-100.0))
        return gx, gt, None


def binary_cross_entropy(input: Tensor, target: Tensor, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    reduction = _reduction("binary_cross_entropy", reduction, size_average, reduce)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"[binary_cross_entropy] Using a target size ({list(target.shape)}) that is different to "
                         f"the input size ({list(input.shape)}) is deprecated. Please ensure they have the same size.")
    if input.numel() and input.device.type == "cpu":
        lo, hi = float(input.detach().amin().item()), float(input.detach().amax().item())
        if not (0.0 <= lo and hi <= 1.0):
            raise RuntimeError(f"[binary_cross_entropy] all elements of input should be between 0 and 1 "
                               f"(got values in [{lo}, {hi}])")
    if weight is not None:
        weight = weight.expand(*input.shape)
    return _reduce(_BinaryCrossEntropy.apply(input, target, weight), reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """(1 - t) x + (1 + (pos_weight - 1) t) softplus(-x): log-sum-exp stable, exact gradients at 0."""
    reduction = _reduction("binary_cross_entropy_with_logits", reduction, size_average, reduce)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"[binary_cross_entropy_with_logits] Target size ({list(target.shape)}) must be the same as "
                         f"input size ({list(input.shape)})")
    softplus_neg = ember.softplus(-input, 1, 20)
    if pos_weight is not None:
        losses = (1.0 - target) * input + (1.0 + (pos_weight - 1.0) * target) * softplus_neg
    else:
        losses = (1.0 - target) * input + softplus_neg
    if weight is not None:
        losses = losses * weight
    return _reduce(losses, reduction)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """target * (log target - input) pointwise (input holds log-probabilities; target too when
    log_target). 'batchmean' divides the sum by the batch size, the mathematically right mean."""
    if size_average is not None or reduce is not None:
        reduction = _reduction("kl_div", reduction, size_average, reduce)
    if reduction not in ("mean", "sum", "none", "batchmean"):
        raise ValueError(f"[kl_div] reduction must be 'mean', 'batchmean', 'sum' or 'none', got '{reduction}'")
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      stacklevel=2)
    if log_target:
        losses = target.exp() * (target - input)
    else:
        positive = target > 0
        safe = ember.where(positive, target, ember.ones_like(target))  # no 0 * log(0) = NaN, even in backward
        losses = ember.where(positive, target * safe.log(), ember.zeros_like(target)) - target * input
    if reduction == "batchmean":
        return losses.sum() / input.shape[0] if input.dim() else losses.sum()
    return _reduce(losses, reduction)
