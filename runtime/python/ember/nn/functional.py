"""ember.nn.functional: layers as functions, composed from ember ops (autograd comes from the ops).
Some are single fused ops with CPU and CUDA kernels (layer_norm, cross_entropy, attention softmax); the semantics follow torch.nn.functional."""
from __future__ import annotations

import math
import warnings

import ember
from ember import Tensor

from . import _fused_attention
from ._losses import (_check_index_range, binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: F401
                      _broadcast_shape, cross_entropy, gaussian_nll_loss, huber_loss, kl_div, l1_loss, mse_loss,
                      nll_loss, poisson_nll_loss, smooth_l1_loss)
from ._margin_losses import (cosine_embedding_loss, hinge_embedding_loss, margin_ranking_loss,  # noqa: F401
                             multi_margin_loss, multilabel_margin_loss, multilabel_soft_margin_loss, soft_margin_loss,
                             triplet_margin_loss, triplet_margin_with_distance_loss)
from ._conv import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d,  # noqa: F401
                    adaptive_max_pool1d_with_indices, adaptive_max_pool2d, adaptive_max_pool2d_with_indices, avg_pool1d,
                    avg_pool2d, batch_norm, conv1d, conv2d, conv_transpose1d, conv_transpose2d, dropout1d, dropout2d,
                    dropout3d, fold, group_norm, max_pool1d, max_pool1d_with_indices, max_pool2d,
                    max_pool2d_with_indices, unfold)
from ._conv3d import (adaptive_avg_pool3d, avg_pool3d, conv3d, conv_transpose3d, max_pool3d,  # noqa: F401
                      max_pool3d_with_indices)
from ._interpolate import interpolate, upsample, upsample_bilinear, upsample_nearest  # noqa: F401
from ._padding import pad  # noqa: F401
from ._ctc import ctc_loss  # noqa: F401
from ._distance import pairwise_distance, pdist  # noqa: F401
from ._embedding_bag import embedding_bag  # noqa: F401
from ._grid_sample import affine_grid, grid_sample  # noqa: F401
from ._multihead import multi_head_attention_forward  # noqa: F401
from ._pooling import (adaptive_max_pool3d, adaptive_max_pool3d_with_indices, lp_pool1d, lp_pool2d,  # noqa: F401
                       lp_pool3d, max_unpool1d, max_unpool2d, max_unpool3d)
from ._normalization import instance_norm, local_response_norm  # noqa: F401
from ._shuffle import channel_shuffle, pixel_shuffle, pixel_unshuffle  # noqa: F401
from ._activations import (celu, celu_, elu, elu_, glu, hardshrink, hardsigmoid, hardswish, hardtanh,  # noqa: F401
                           hardtanh_, leaky_relu_, logsigmoid, mish, prelu, relu6, rrelu, rrelu_, selu, selu_,
                           softmin, softshrink, softsign, tanhshrink, threshold, threshold_)


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


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y_o = x1^T W_o x2 + b_o over the last dims (leading dims are batch dims): one GEMM of x1 with W
    laid out (in1, out * in2), then a product with x2 summed over in2."""
    op = "bilinear"
    if input1.dim() != input2.dim():
        raise RuntimeError(f"[{op}] bilinear(): input dimensions do not match: got {input1.dim()} and {input2.dim()}")
    for i in range(input1.dim() - 1):
        if input1.shape[i] != input2.shape[i]:
            raise RuntimeError(f"[{op}] bilinear(): input batch dimensions do not match: got {input1.shape[i]} and "
                               f"{input2.shape[i]}")
    if weight.dim() != 3:
        raise RuntimeError(f"[{op}] bilinear(): weight must be 3-dimensional (out, in1, in2), got {list(weight.shape)}")
    out, in1, in2 = weight.shape
    if input1.shape[-1] != in1:
        raise RuntimeError(f"[{op}] bilinear(): input1 size does not match weight size: got {input1.shape[-1]} but "
                           f"expected {in1}")
    if input2.shape[-1] != in2:
        raise RuntimeError(f"[{op}] bilinear(): input2 size does not match weight size: got {input2.shape[-1]} but "
                           f"expected {in2}")
    if bias is not None and bias.shape[0] != out:
        raise RuntimeError(f"[{op}] bilinear(): bias size does not match weight size: got {bias.shape[0]} but "
                           f"expected {out}")
    lead = tuple(input1.shape[:-1])
    x1, x2 = input1.reshape(-1, in1), input2.reshape(-1, in2)
    left = ember.mm(x1, weight.permute(1, 0, 2).reshape(in1, out * in2)).reshape(x1.shape[0], out, in2)
    y = (left * x2.unsqueeze(1)).sum(-1)
    if bias is not None:
        y = y + bias
    return y.reshape(*lead, out)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return input.relu_() if inplace else ember.relu(input)


def relu_(input: Tensor) -> Tensor:
    return input.relu_()


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return leaky_relu_(input, negative_slope) if inplace else ember.leaky_relu(input, negative_slope)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:  # noqa: F811 (torch's name)
    return ember.softplus(input, beta, threshold)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"[gelu] approximate must be 'none' or 'tanh', got '{approximate}'")
    return ember.gelu(input, approximate=approximate) if approximate == "tanh" else ember.gelu(input)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return input.silu_() if inplace else ember.silu(input)


def sigmoid(input: Tensor) -> Tensor:
    return ember.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return ember.tanh(input)


def _softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    """torch's implicit softmax dim (deprecated there too): 0 for 0-, 1- and 3-d inputs, else 1."""
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X "
                  "as an argument.", stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim("softmax", input.dim(), _stacklevel)
    if dtype is not None:
        input = input.to(dtype)
    return ember.softmax(input, dim)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim("log_softmax", input.dim(), _stacklevel)
    if dtype is not None:
        input = input.to(dtype)
    return ember.log_softmax(input, dim)


def gumbel_softmax(logits: Tensor, tau: float = 1, hard: bool = False, eps: float = 1e-10, dim: int = -1) -> Tensor:
    """softmax((logits + g) / tau) with g ~ Gumbel(0, 1) drawn from ember's generator; hard=True returns the
    one-hot of the argmax whose gradient is the soft sample's (straight-through)."""
    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    with ember.no_grad():
        gumbels = -ember.log(-ember.log(ember.rand_like(logits)))
    y_soft = ember.softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    index = y_soft.detach().argmax(dim, keepdim=True)
    y_hard = ember.zeros_like(logits).scatter(dim, index, ember.ones_like(index, dtype=logits.dtype))
    return y_hard - y_soft.detach() + y_soft


def layer_norm(input: Tensor, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    # One fused op forward and backward (csrc/ops/norm.cpp); it checks shapes and dtypes like torch.
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    return ember.layer_norm(input, tuple(normalized_shape), weight, bias, eps)


def rms_norm(input: Tensor, normalized_shape, weight=None, eps: float | None = None) -> Tensor:
    # One fused op forward and backward (csrc/ops/norm.cpp); shapes, dtypes and the default eps (the
    # epsilon of the accumulation type: float32's for float16/bfloat16) as torch's.
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    return ember.rms_norm(input, tuple(normalized_shape), weight, eps)


def rotary_embedding(x: Tensor, cos: Tensor, sin: Tensor, interleaved: bool = False) -> Tensor:
    """Rotary position embedding (RoPE) of x of shape (..., T, D), D even: feature pairs are rotated by
    the angles whose cosines and sines are `cos` and `sin`, broadcastable to (..., T, D/2):

        y_a = x_a * cos - x_b * sin,    y_b = x_b * cos + x_a * sin

    With interleaved=False, pair i is (i, i + D/2): GPT-NeoX's and Hugging Face LLaMA's `rotate_half`
    layout (`x * cat(cos, cos) + rotate_half(x) * cat(sin, sin)`). With interleaved=True, pair i is
    (2i, 2i + 1): the original LLaMA / GPT-J layout (complex multiplication by exp(i * angle)).
    One fused op (csrc/ops/rotary.cpp); the output has x's dtype. cos and sin have x's dtype, or float32
    for a float16/bfloat16 x (computed in float32). Gradients flow to x and, when they require grad, to
    cos and sin (summed over the broadcast dims)."""
    return ember.rotary_embedding(x, cos, sin, interleaved)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"[dropout] probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    out = input * 0.0 if p == 1.0 else ember.dropout(input, p, training)
    return input.copy_(out) if inplace else out


_SELU_ALPHA_PRIME = 1.7580993408473766  # -scale * alpha of SELU: the value a dropped unit takes


def _alpha_dropout(op: str, input: Tensor, p: float, training: bool, inplace: bool, feature: bool) -> Tensor:
    """Dropout that keeps SELU's self-normalisation: dropped units take SELU's negative saturation
    value, and an affine map a * x + b restores zero mean and unit variance (torch's formula)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"[{op}] dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if feature and input.dim() < 2:
        raise RuntimeError(f"[{op}] Feature dropout requires at least 2 dimensions in the input (got "
                           f"{list(input.shape)})")
    if p == 1.0:
        out = input * 0.0
    else:
        noise_shape = tuple(input.shape[:2]) + (1,) * (input.dim() - 2) if feature else tuple(input.shape)
        keep = (ember.rand(noise_shape, device=input.device) < 1 - p).to(input.dtype)
        a = 1.0 / math.sqrt((_SELU_ALPHA_PRIME ** 2 * p + 1) * (1 - p))
        b = (keep - 1) * (_SELU_ALPHA_PRIME * a) + _SELU_ALPHA_PRIME * a * p
        out = input * (keep * a) + b
    if inplace:
        input.copy_(out)
        return input
    return out


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    return _alpha_dropout("alpha_dropout", input, p, training, inplace, feature=False)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """alpha_dropout of whole channels (dim 1) of an (N, C, *) input."""
    return _alpha_dropout("feature_alpha_dropout", input, p, training, inplace, feature=True)


def _renorm_rows_(weight: Tensor, flat_indices: Tensor, max_norm: float, norm_type: float) -> None:
    """torch's embedding_renorm_: rows looked up by `flat_indices` whose norm exceeds max_norm are
    scaled in place (outside autograd) to norm max_norm."""
    with ember.no_grad():
        rows = ember.unique(flat_indices) if hasattr(ember, "unique") else flat_indices
        picked = ember.index_select(weight, 0, rows)
        norms = picked.norm(norm_type, -1, keepdim=True)
        scale = ember.where(norms > max_norm, max_norm / (norms + 1e-7), ember.ones_like(norms))
        weight.index_put_((rows,), picked * scale)


def embedding(input: Tensor, weight: Tensor, padding_idx=None, max_norm=None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of `weight` at `input`. max_norm renormalises the looked-up rows of weight in place
    first; scale_grad_by_freq divides each row's gradient by how often its index occurs in `input`."""
    if input.dtype not in (ember.int64, ember.int32):
        raise TypeError(f"[embedding] expected indices of dtype int64 or int32, got {input.dtype}")
    if sparse:
        raise NotImplementedError("[embedding] sparse=True: ember has no sparse gradients; use sparse=False")
    flat = input.reshape(-1)
    n = weight.shape[0]
    _check_index_range("embedding", flat, n, "index out of range: indices must be in [0, {n}), got {bad}")
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"[embedding] padding_idx must be within num_embeddings ({n}), got {padding_idx}")
        padding_idx = padding_idx + n if padding_idx < 0 else padding_idx
    if max_norm is not None and flat.numel():
        _renorm_rows_(weight, flat.to(ember.int64), float(max_norm), float(norm_type))
    rows = ember.index_select(weight, 0, flat)
    if padding_idx is not None and weight.requires_grad:
        # Like torch: the padding row is looked up as-is but receives no gradient.
        rows = ember.where((flat == padding_idx).unsqueeze(-1), rows.detach(), rows)
    if scale_grad_by_freq and rows.requires_grad:
        counts = ember.zeros((n,), dtype=weight.dtype, device=weight.device).index_add(
            0, flat, ember.ones((flat.numel(),), dtype=weight.dtype, device=weight.device))
        inverse = (1.0 / ember.index_select(counts, 0, flat)).unsqueeze(-1)
        rows.register_hook(lambda g: g * inverse)
    return rows.reshape(*input.shape, weight.shape[1])


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    if tensor.dtype != ember.int64:
        raise TypeError(f"[one_hot] one_hot is only applicable to index tensor of dtype int64, got {tensor.dtype}")
    if tensor.numel():
        lo, hi = int(tensor.amin().item()), int(tensor.amax().item())
        if lo < 0:
            raise RuntimeError(f"[one_hot] Class values must be non-negative, got {lo}")
        if num_classes < 0:
            num_classes = hi + 1
        elif hi >= num_classes:
            raise RuntimeError(f"[one_hot] Class values must be smaller than num_classes ({num_classes}), got {hi}")
    elif num_classes < 0:
        raise RuntimeError("[one_hot] Can not infer total number of classes from empty tensor.")
    classes = ember.arange(num_classes, dtype=ember.int64, device=tensor.device)
    return (tensor.unsqueeze(-1) == classes).to(ember.int64)


def _clamp_value_keep_grad(x: Tensor, min_value: float) -> Tensor:
    """x clamped below at min_value in value, with the gradient of x itself (torch clamps these
    norms in place under no_grad, so their gradient ignores the clamp)."""
    return x + (x.detach().clamp_min(min_value) - x.detach())


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None) -> Tensor:
    """input / max(||input||_p along dim, eps)."""
    if out is not None:
        raise NotImplementedError("[normalize] out= is not supported; use the returned tensor")
    denom = input.norm(p, dim, keepdim=True).clamp_min(eps)
    return input / denom


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1/|x1| * x2/|x2|) along dim, each norm floored at eps (torch's stable formulation)."""
    shape = _broadcast_shape("cosine_similarity", x1.shape, x2.shape)
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    n1 = _clamp_value_keep_grad(x1.norm(2, dim, keepdim=True), eps)
    n2 = _clamp_value_keep_grad(x2.norm(2, dim, keepdim=True), eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


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


def _repeat_kv_heads(query: Tensor, kv: Tensor) -> Tensor:
    """kv with each of its heads repeated for its group of query heads (torch's repeat_interleave)."""
    hq, hk = query.shape[-3], kv.shape[-3]
    if hk == 0 or hq % hk:
        raise ValueError(f"[scaled_dot_product_attention] enable_gqa: the number of query heads ({hq}) must be a "
                         f"multiple of the number of key/value heads ({hk})")
    lead, (s, d) = tuple(kv.shape[:-3]), tuple(kv.shape[-2:])
    return kv.unsqueeze(-3).expand(*lead, hk, hq // hk, s, d).reshape(*lead, hq, s, d)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(q @ k^T * scale + mask) @ v. A bool attn_mask marks positions that take part (True)
    like torch; a float mask is added to the scores; is_causal applies a lower-triangular mask.
    enable_gqa lets key/value have fewer heads (dim -3) than query, each serving a group of
    consecutive query heads (grouped-query attention).
    Without attn_mask the fused op runs (ember._C._fused_attention: a FlashAttention-2 kernel on CPU,
    cuDNN's flash attention for float16/bfloat16 on CUDA; nn/_fused_attention.py, Note [SDPA
    dispatch]); everything else the composite path."""
    if query.dim() < 2 or key.dim() != query.dim() or value.dim() != query.dim():
        raise ValueError(f"[scaled_dot_product_attention] query/key/value must have the same rank >= 2, got "
                         f"{list(query.shape)}, {list(key.shape)}, {list(value.shape)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"[scaled_dot_product_attention] incompatible shapes q {list(query.shape)}, "
                         f"k {list(key.shape)}, v {list(value.shape)}")
    if is_causal and attn_mask is not None:
        raise ValueError("[scaled_dot_product_attention] pass either attn_mask or is_causal, not both")
    if enable_gqa and query.dim() >= 3 and key.shape[-3] != query.shape[-3]:
        key, value = _repeat_kv_heads(query, key), _repeat_kv_heads(query, value)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    fused = _fused_attention.fused_attention(query, key, value, attn_mask, dropout_p, is_causal, scale)
    if fused is not None:
        return fused
    return _composite_attention(query, key, value, attn_mask, dropout_p, is_causal, scale)


def _composite_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask, dropout_p: float, is_causal: bool,
                         scale: float) -> Tensor:
    """scaled_dot_product_attention from bmm + softmax + bmm (masks, broadcast batches, CUDA float32)."""
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
