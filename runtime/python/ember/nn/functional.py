"""ember.nn.functional: layers as functions, composed from ember ops (autograd comes from the ops).
Some are single fused ops with CPU and CUDA kernels (layer_norm, cross_entropy, attention softmax); the semantics follow torch.nn.functional."""
from __future__ import annotations

import math

import ember
from ember import Tensor

from . import _fused_attention


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    # Flatten leading dims so the product is one GEMM (addmm fuses the bias) whatever the batch shape.
    if input.dim() == 2:
        return ember.addmm(bias, input, weight.t()) if bias is not None else ember.mm(input, weight.t())
    if input.dim() == 1:
        out = ember.mm(input.unsqueeze(0), weight.t()).squeeze(0)
        return out + bias if bias is not None else out
    lead = tuple(input.shape[:-1])
    flat = input.reshape(-1, input.shape[-1])
    out = ember.addmm(bias, flat, weight.t()) if bias is not None else ember.mm(flat, weight.t())
    return out.reshape(*lead, weight.shape[0])


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return ember.relu(input)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"[gelu] approximate must be 'none' or 'tanh', got '{approximate}'")
    return ember.gelu(input, approximate=approximate) if approximate == "tanh" else ember.gelu(input)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return ember.silu(input)


def sigmoid(input: Tensor) -> Tensor:
    return ember.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return ember.tanh(input)


def softmax(input: Tensor, dim: int = -1, dtype=None) -> Tensor:
    if dtype is not None:
        input = input.to(dtype)
    return ember.softmax(input, dim)


def log_softmax(input: Tensor, dim: int = -1, dtype=None) -> Tensor:
    if dtype is not None:
        input = input.to(dtype)
    return ember.log_softmax(input, dim)


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"[{op}] reduction must be 'mean', 'sum' or 'none', got '{reduction}'")


def _class_last(input: Tensor) -> Tensor:
    """(N, C, d1, ...) -> (N, d1, ..., C): the class dim last so per-element losses gather on -1."""
    if input.dim() <= 2:
        return input
    return input.movedim(1, -1)


def _check_targets(op: str, input: Tensor, target: Tensor) -> None:
    if target.dtype not in (ember.int64, ember.int32, ember.int8, ember.uint8):
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


def nll_loss(input: Tensor, target: Tensor, weight=None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices; targets equal to ignore_index contribute nothing
    and are excluded from the mean's denominator."""
    _check_reduction("nll_loss", reduction)
    if weight is not None:
        raise NotImplementedError("[nll_loss] class weights are not supported yet")
    _check_targets("nll_loss", input, target)
    logp = _class_last(input)
    tgt = target.to(ember.int64)
    valid = tgt != ignore_index
    safe = ember.where(valid, tgt, ember.zeros_like(tgt))
    n_classes = logp.shape[-1]
    _check_index_range("nll_loss", safe, n_classes, "target {bad} is out of bounds for {n} classes")
    picked = ember.gather(logp, -1, safe.unsqueeze(-1)).squeeze(-1)
    losses = -(picked * valid.to(picked.dtype))
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / valid.sum().to(losses.dtype)


def cross_entropy(input: Tensor, target: Tensor, weight=None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over dim 1 then nll; with label smoothing e the loss is
    (1 - e) * nll + e * mean_over_classes(-log p), as in torch (ignored targets excluded).
    Class-index targets without weights run the fused op (Note [Fused cross-entropy],
    csrc/ops/loss.cpp: one row kernel plus one reduction); other cases use the composite."""
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"[cross_entropy] label_smoothing must be in [0, 1], got {label_smoothing}")
    if target.is_floating_point():
        raise NotImplementedError("[cross_entropy] class-probability targets are not supported; pass class indices")
    if weight is None and input.dim() >= 1 and input.is_floating_point():
        # Same checks and messages as the composite (torch, too, reports target errors from nll_loss).
        _check_targets("nll_loss", input, target)
        logits = _class_last(input) if input.dim() >= 2 else input.unsqueeze(0)
        rows = logits.reshape(target.numel(), logits.shape[-1])  # explicit: reshape(-1, 0) is ambiguous
        loss = ember._C._cross_entropy_loss(rows, target.reshape(-1).to(ember.int64), int(ignore_index),
                                            float(label_smoothing), reduction)
        unflatten = reduction == "none" and tuple(loss.shape) != tuple(target.shape)
        return loss.reshape(tuple(target.shape)) if unflatten else loss
    class_dim = 1 if input.dim() >= 2 else 0
    logp = log_softmax(input, class_dim)
    nll = nll_loss(logp, target, weight, ignore_index, reduction)
    if label_smoothing == 0.0:
        return nll
    logp_last = _class_last(logp) if logp.dim() >= 2 else logp
    valid = (target.to(ember.int64) != ignore_index).to(logp.dtype)
    smooth = -(logp_last.mean(-1) * valid)
    if reduction == "sum":
        smooth = smooth.sum()
    elif reduction == "mean":
        smooth = smooth.sum() / valid.sum()
    return nll * (1.0 - label_smoothing) + smooth * label_smoothing


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    _check_reduction("mse_loss", reduction)
    diff = input - target
    sq = diff * diff
    if reduction == "none":
        return sq
    return sq.sum() if reduction == "sum" else sq.mean()


def _normalized_dims(op: str, input: Tensor, normalized_shape) -> list:
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if k == 0 or tuple(input.shape[input.dim() - k:]) != normalized_shape or input.dim() < k:
        raise ValueError(f"[{op}] normalized_shape {list(normalized_shape)} does not match the trailing "
                         f"dims of input of shape {list(input.shape)}")
    return list(range(input.dim() - k, input.dim()))


def layer_norm(input: Tensor, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    # One fused op forward and backward (csrc/ops/norm.cpp); it checks shapes and dtypes like torch.
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    return ember.layer_norm(input, tuple(normalized_shape), weight, bias, eps)


def rms_norm(input: Tensor, normalized_shape, weight=None, eps: float | None = None) -> Tensor:
    dims = _normalized_dims("rms_norm", input, normalized_shape)
    if eps is None:
        eps = {ember.float64: 2.220446049250313e-16, ember.float16: 0.0009765625,
               ember.bfloat16: 0.0078125}.get(input.dtype, 1.1920928955078125e-07)
    out = input * ember.rsqrt((input * input).mean(dims, keepdim=True) + eps)
    return out * weight if weight is not None else out


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"[dropout] probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return ember.dropout(input, p, training)


def embedding(input: Tensor, weight: Tensor, padding_idx=None, max_norm=None, scale_grad_by_freq=False,
              sparse=False) -> Tensor:
    if input.dtype not in (ember.int64, ember.int32):
        raise TypeError(f"[embedding] expected indices of dtype int64 or int32, got {input.dtype}")
    flat = input.reshape(-1)
    n = weight.shape[0]
    _check_index_range("embedding", flat, n, "index out of range: indices must be in [0, {n}), got {bad}")
    rows = ember.index_select(weight, 0, flat)
    if padding_idx is not None and weight.requires_grad:
        # Like torch: the padding row is looked up as-is but receives no gradient.
        padding_idx = padding_idx + n if padding_idx < 0 else padding_idx
        rows = ember.where((flat == padding_idx).unsqueeze(-1), rows.detach(), rows)
    return rows.reshape(*input.shape, weight.shape[1])


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    if tensor.dtype != ember.int64:
        raise TypeError(f"[one_hot] one_hot is only applicable to index tensor of dtype int64, got {tensor.dtype}")
    if num_classes < 0:
        num_classes = int(tensor.amax().item()) + 1 if tensor.numel() else 0
    classes = ember.arange(num_classes, dtype=ember.int64, device=tensor.device)
    return (tensor.unsqueeze(-1) == classes).to(ember.int64)


def _batched_matmul(a: Tensor, b: Tensor) -> Tensor:
    """(..., L, E) @ (..., E, S) as one bmm over the flattened batch dims."""
    lead = tuple(a.shape[:-2])
    if len(lead) == 1:
        return ember.bmm(a, b)
    if len(lead) == 0:
        return ember.mm(a, b)
    a3 = a.reshape(-1, a.shape[-2], a.shape[-1])
    b3 = b.reshape(-1, b.shape[-2], b.shape[-1])
    return ember.bmm(a3, b3).reshape(*lead, a.shape[-2], b.shape[-1])


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(q @ k^T * scale + mask) @ v. A bool attn_mask marks positions that take part (True)
    like torch; a float mask is added to the scores; is_causal applies a lower-triangular mask.
    float16/bfloat16 CUDA inputs without attn_mask run cuDNN's fused flash attention when cuDNN is
    available (nn/_fused_attention.py, Note [SDPA dispatch]); everything else the composite path."""
    if query.dim() < 2 or key.dim() != query.dim() or value.dim() != query.dim():
        raise ValueError(f"[scaled_dot_product_attention] query/key/value must have the same rank >= 2, got "
                         f"{list(query.shape)}, {list(key.shape)}, {list(value.shape)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"[scaled_dot_product_attention] incompatible shapes q {list(query.shape)}, "
                         f"k {list(key.shape)}, v {list(value.shape)}")
    if is_causal and attn_mask is not None:
        raise ValueError("[scaled_dot_product_attention] pass either attn_mask or is_causal, not both")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    fused = _fused_attention.fused_attention(query, key, value, attn_mask, dropout_p, is_causal, scale)
    if fused is not None:  # cuDNN's flash attention on CUDA (Note [SDPA dispatch])
        return fused
    if attn_mask is None:  # scale, causal mask and softmax in one fused kernel (and one for backward)
        # k made contiguous first: k.T then folds into a bmm operand (a cuBLAS transpose) for free,
        # where reshaping a transposed strided k would copy with uncoalesced reads.
        key_t = key.contiguous().transpose(-2, -1)
        weights = ember._C._scaled_softmax(_batched_matmul(query, key_t), scale, is_causal)
    else:
        scores = _batched_matmul(query * scale, key.transpose(-2, -1))
        if attn_mask.dtype == ember.bool:
            scores = scores.masked_fill(attn_mask.logical_not(), float("-inf"))
        else:
            scores = scores + attn_mask
        weights = ember.softmax(scores, -1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, True)
    return _batched_matmul(weights, value)
