"""Margin (hinge-type) losses of ember.nn.functional: ranking, embedding, triplet, soft-margin and the
multi-class / multi-label margin losses, composed from ember ops with torch's formulas, shape rules,
reductions and the legacy size_average/reduce arguments."""
from __future__ import annotations

import ember
from ember import Tensor

from ._distance import pairwise_distance
from ._losses import _broadcast_shape, _check_index_range, _reduce, _reduction

__all__ = ["margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss", "triplet_margin_loss",
           "triplet_margin_with_distance_loss", "soft_margin_loss", "multilabel_soft_margin_loss",
           "multi_margin_loss", "multilabel_margin_loss"]

_COSINE_EPSILON = 1e-12  # torch's EPSILON in cosine_embedding_loss


def _logsigmoid(x: Tensor) -> Tensor:
    return -ember.softplus(-x, 1, 20)


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:
    """max(0, -target * (input1 - input2) + margin), target in {1, -1}."""
    reduction = _reduction("margin_ranking_loss", reduction, size_average, reduce)
    if not input1.dim() == input2.dim() == target.dim():
        raise RuntimeError(f"[margin_ranking_loss] All input tensors should have same dimension but got sizes: "
                           f"input1: {list(input1.shape)}, input2: {list(input2.shape)}, target: {list(target.shape)}")
    _broadcast_shape("margin_ranking_loss", _broadcast_shape("margin_ranking_loss", input1.shape, input2.shape),
                     target.shape)
    return _reduce((-target * (input1 - input2) + margin).clamp_min(0.0), reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """x where target is 1, max(0, margin - x) where target is -1 (torch adds both terms for other targets)."""
    reduction = _reduction("hinge_embedding_loss", reduction, size_average, reduce)
    shape = _broadcast_shape("hinge_embedding_loss", input.shape, target.shape)
    x = input.expand(*shape)
    zeros = ember.zeros_like(x)
    margin_term = ember.where(target != 1, (margin - x).clamp_min(0.0), zeros)
    self_term = ember.where(target != -1, x, zeros)
    return _reduce(margin_term + self_term, reduction)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0, size_average=None,
                          reduce=None, reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) where target is 1, max(0, cos(x1, x2) - margin) where target is -1."""
    op = "cosine_embedding_loss"
    reduction = _reduction(op, reduction, size_average, reduce)
    if target.dim() not in (0, 1):
        raise RuntimeError(f"[{op}] 0D or 1D target tensor expected, multi-target not supported (got target of "
                           f"size {list(target.shape)})")
    want = target.dim() + 1
    if input1.dim() != want or input2.dim() != want:
        raise RuntimeError(f"[{op}] {target.dim()}D target tensor expects {want}D input tensors, but found inputs "
                           f"with sizes {list(input1.shape)} and {list(input2.shape)}.")
    d = target.dim()
    prod = (input1 * input2).sum(d)
    mag1 = (input1 * input1).sum(d) + _COSINE_EPSILON
    mag2 = (input2 * input2).sum(d) + _COSINE_EPSILON
    cos = prod / (mag1 * mag2).sqrt()
    zeros = ember.zeros_like(cos)
    loss = ember.where(target == 1, 1 - cos, zeros) + ember.where(target == -1, (cos - margin).clamp_min(0.0), zeros)
    return _reduce(loss, reduction)


def _check_triplet_dims(op: str, anchor: Tensor, positive: Tensor, negative: Tensor, margin: float) -> None:
    if margin <= 0:
        raise ValueError(f"[{op}] margin must be greater than 0, got {margin}")
    if not anchor.dim() == positive.dim() == negative.dim():
        raise RuntimeError(f"[{op}] The anchor, positive, and negative tensors are expected to have the same number "
                           f"of dimensions, but got: anchor {anchor.dim()}D, positive {positive.dim()}D, and negative "
                           f"{negative.dim()}D inputs")


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """max(0, margin + d(a, p) - d(a, n)) with d the pairwise p-distance; swap uses min(d(a, n), d(p, n))."""
    reduction = _reduction("triplet_margin_loss", reduction, size_average, reduce)
    _check_triplet_dims("triplet_margin_loss", anchor, positive, negative, margin)
    dist_pos = pairwise_distance(anchor, positive, p, eps)
    dist_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        dist_neg = ember.minimum(dist_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce((margin + dist_pos - dist_neg).clamp_min(0.0), reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *, distance_function=None,
                                      margin: float = 1.0, swap: bool = False, reduction: str = "mean") -> Tensor:
    """triplet_margin_loss with any distance function (default pairwise_distance)."""
    reduction = _reduction("triplet_margin_with_distance_loss", reduction)
    _check_triplet_dims("triplet_margin_with_distance_loss", anchor, positive, negative, margin)
    distance = distance_function if distance_function is not None else pairwise_distance
    dist_pos = distance(anchor, positive)
    dist_neg = distance(anchor, negative)
    if swap:
        dist_neg = ember.minimum(dist_neg, distance(positive, negative))
    return _reduce((margin + dist_pos - dist_neg).clamp_min(0.0), reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """log(1 + exp(-target * input)), the logistic loss of +-1 targets."""
    reduction = _reduction("soft_margin_loss", reduction, size_average, reduce)
    _broadcast_shape("soft_margin_loss", input.shape, target.shape)
    return _reduce(ember.log1p(ember.exp(-input * target)), reduction)


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight=None, size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:
    """Per-sample mean over classes of -(t log sigmoid(x) + (1 - t) log sigmoid(-x)), optionally weighted."""
    reduction = _reduction("multilabel_soft_margin_loss", reduction, size_average, reduce)
    loss = -(target * _logsigmoid(input) + (1 - target) * _logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    class_dim = input.dim() - 1
    loss = loss.sum(class_dim) / input.shape[class_dim]
    return _reduce(loss, reduction)


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0, weight=None, size_average=None,
                      reduce=None, reduction: str = "mean") -> Tensor:
    """Per sample, sum over classes c != y of max(0, margin - x[y] + x[c])^p (times weight[y]), divided by
    the number of classes: the multi-class hinge loss."""
    op = "multi_margin_loss"
    reduction = _reduction(op, reduction, size_average, reduce)
    if p not in (1, 2):
        raise ValueError(f"[{op}] only p == 1 and p == 2 supported (got p={p})")
    if weight is not None and weight.dim() != 1:
        raise ValueError(f"[{op}] weight must be one-dimensional (got weight of size {list(weight.shape)})")
    nd = input.dim()
    if not ((nd == 2 and input.shape[1] != 0) or (nd == 1 and input.shape[0] != 0) or nd == 0):
        raise RuntimeError(f"[{op}] Expected non-empty vector or matrix with optional 0-dim batch size, but got: "
                           f"{list(input.shape)}")
    frames = 1 if nd <= 1 else input.shape[0]
    classes = 1 if nd == 0 else input.shape[-1]
    if target.dim() > 1 or target.numel() != frames:
        raise RuntimeError(f"[{op}] inconsistent target size, expected {frames} but got {list(target.shape)}")
    if weight is not None and weight.numel() != classes:
        raise RuntimeError(f"[{op}] inconsistent weight size, expected {classes} but got {list(weight.shape)}")
    x = input.reshape(frames, classes)
    t = target.reshape(frames).to(ember.int64)
    _check_index_range(op, t, classes, "target out of range (got {bad} for {n} classes)")
    picked = ember.gather(x, 1, t.unsqueeze(1))
    z = ember.relu(margin - picked + x)  # zero gradient at z = 0: torch counts only z > 0
    h = z * z if p == 2 else z
    if weight is not None:
        h = h * ember.index_select(weight, 0, t).unsqueeze(1)
    other = (ember.arange(classes, device=input.device).unsqueeze(0) != t.unsqueeze(1)).to(h.dtype)
    loss = (h * other).sum(1) / classes
    if reduction == "none":
        return loss if target.dim() > 0 else loss.reshape(())
    return _reduce(loss, reduction)


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    """Per sample, sum over its target classes j and non-target classes k of max(0, 1 - (x[j] - x[k])),
    divided by the number of classes. A row of target lists class indices, ended by the first -1."""
    op = "multilabel_margin_loss"
    reduction = _reduction(op, reduction, size_average, reduce)
    nd = input.dim()
    if nd > 2:
        raise RuntimeError(f"[{op}] Expected non-empty vector or matrix with optional 0-dim batch size, but got: "
                           f"{list(input.shape)}")
    if tuple(target.shape) != tuple(input.shape) and not (nd == 0 and target.numel() == 1):
        raise RuntimeError(f"[{op}] inconsistent target size: {list(target.shape)} for input of size: "
                           f"{list(input.shape)}")
    if target.dtype != ember.int64:
        raise RuntimeError(f"[{op}] expected target of dtype int64, got {target.dtype}")
    frames = 1 if nd <= 1 else input.shape[0]
    classes = 1 if nd == 0 else input.shape[-1]
    x = input.reshape(frames, classes)
    t = target.reshape(frames, classes)
    valid = ember.cumsum((t == -1).to(ember.int64), 1) == 0  # targets before the first -1
    _check_index_range(op, ember.where(valid, t, ember.zeros_like(t)), classes,
                       "target {bad} is out of bounds for {n} classes")
    safe = ember.where(valid, t, ember.zeros_like(t))
    classes_row = ember.arange(classes, device=input.device)
    is_target = ((safe.unsqueeze(-1) == classes_row).logical_and(valid.unsqueeze(-1))).any(1)  # (N, C)
    x_target = ember.gather(x, 1, safe)  # (N, J)
    z = ember.relu(1 - x_target.unsqueeze(-1) + x.unsqueeze(1))  # (N, J, K); torch counts only z > 0
    pairs = valid.unsqueeze(-1).logical_and(is_target.logical_not().unsqueeze(1)).to(z.dtype)
    loss = (z * pairs).sum((1, 2)) / classes
    if reduction == "none":
        return loss if nd == 2 else loss.reshape(())
    return _reduce(loss, reduction)
