"""multi_head_attention_forward: torch's functional multi-head attention (sequence-first (L, N, E)
inputs or unbatched (L, E)), with packed or separate input projections, bias_k/bias_v, add_zero_attn,
static keys/values, bool or float masks and the optional (head-averaged) attention weights.
nn.MultiheadAttention is a thin module over it. Without need_weights the attention runs through
F.scaled_dot_product_attention (its fused kernels where it can); with it, scores are formed explicitly."""
from __future__ import annotations

import math
import warnings

import ember
from ember import Tensor

__all__ = ["multi_head_attention_forward"]


def _mha_shape_check(query: Tensor, key: Tensor, value: Tensor, key_padding_mask, attn_mask, num_heads: int) -> bool:
    """Whether the call is batched; torch's AssertionErrors for inconsistent ranks."""
    if query.dim() == 3:
        if key.dim() != 3 or value.dim() != 3:
            raise AssertionError(f"[multi_head_attention_forward] For batched (3-D) `query`, expected `key` and "
                                 f"`value` to be 3-D but found {key.dim()}-D and {value.dim()}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.dim() != 2:
            raise AssertionError(f"[multi_head_attention_forward] For batched (3-D) `query`, expected "
                                 f"`key_padding_mask` to be `None` or 2-D but found {key_padding_mask.dim()}-D tensor "
                                 f"instead")
        if attn_mask is not None and attn_mask.dim() not in (2, 3):
            raise AssertionError(f"[multi_head_attention_forward] For batched (3-D) `query`, expected `attn_mask` "
                                 f"to be `None`, 2-D or 3-D but found {attn_mask.dim()}-D tensor instead")
        return True
    if query.dim() == 2:
        if key.dim() != 2 or value.dim() != 2:
            raise AssertionError(f"[multi_head_attention_forward] For unbatched (2-D) `query`, expected `key` and "
                                 f"`value` to be 2-D but found {key.dim()}-D and {value.dim()}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.dim() != 1:
            raise AssertionError(f"[multi_head_attention_forward] For unbatched (2-D) `query`, expected "
                                 f"`key_padding_mask` to be `None` or 1-D but found {key_padding_mask.dim()}-D tensor "
                                 f"instead")
        if attn_mask is not None:
            if attn_mask.dim() not in (2, 3):
                raise AssertionError(f"[multi_head_attention_forward] For unbatched (2-D) `query`, expected "
                                     f"`attn_mask` to be `None`, 2-D or 3-D but found {attn_mask.dim()}-D tensor "
                                     f"instead")
            expected = (num_heads, query.shape[0], key.shape[0])
            if attn_mask.dim() == 3 and tuple(attn_mask.shape) != expected:
                raise AssertionError(f"[multi_head_attention_forward] Expected `attn_mask` shape to be {expected} but "
                                     f"got {tuple(attn_mask.shape)}")
        return False
    raise AssertionError(f"[multi_head_attention_forward] query should be unbatched 2D or batched 3D tensor but "
                         f"received {query.dim()}-D query tensor")


def _canonical_mask(mask, name: str, other, other_name: str, dtype):
    """A bool mask (True = masked out) as an additive float mask (-inf where masked); a float one as is."""
    if mask is None:
        return None
    if mask.dtype != ember.bool and not mask.is_floating_point():
        raise AssertionError(f"[multi_head_attention_forward] only bool and floating types of {name} are supported "
                             f"(got {mask.dtype})")
    if other is not None and other.dtype != mask.dtype:
        warnings.warn(f"Support for mismatched {name} and {other_name} is deprecated. Use same type for both instead.",
                      stacklevel=3)
    if mask.dtype == ember.bool:
        return ember.zeros(tuple(mask.shape), dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
    return mask


def _linear(x: Tensor, w: Tensor, b) -> Tensor:
    from .functional import linear
    return linear(x, w, b)


def _in_projection(query, key, value, embed_dim, in_proj_weight, in_proj_bias, separate, q_w, k_w, v_w):
    if separate:
        b_q = b_k = b_v = None
        if in_proj_bias is not None:
            b_q, b_k, b_v = in_proj_bias.chunk(3)
        return _linear(query, q_w, b_q), _linear(key, k_w, b_k), _linear(value, v_w, b_v)
    if key is value and query is key:  # self-attention: one GEMM for q, k and v
        proj = _linear(query, in_proj_weight, in_proj_bias)
        return proj.narrow(-1, 0, embed_dim), proj.narrow(-1, embed_dim, embed_dim), \
            proj.narrow(-1, 2 * embed_dim, embed_dim)
    w_q, w_k, w_v = in_proj_weight.chunk(3)
    b_q = b_k = b_v = None
    if in_proj_bias is not None:
        b_q, b_k, b_v = in_proj_bias.chunk(3)
    return _linear(query, w_q, b_q), _linear(key, w_k, b_k), _linear(value, w_v, b_v)


def _pad_last(mask, amount: int = 1):
    if mask is None:
        return None
    zeros = ember.zeros(tuple(mask.shape[:-1]) + (amount,), dtype=mask.dtype, device=mask.device)
    return ember.cat([mask, zeros], -1)


def multi_head_attention_forward(query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn: bool, dropout_p: float,
                                 out_proj_weight: Tensor, out_proj_bias, training: bool = True, key_padding_mask=None,
                                 need_weights: bool = True, attn_mask=None, use_separate_proj_weight: bool = False,
                                 q_proj_weight=None, k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights: bool = True, is_causal: bool = False):
    op = "multi_head_attention_forward"
    batched = _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", attn_mask, "attn_mask", query.dtype)
    if is_causal and attn_mask is None:
        raise RuntimeError(f"[{op}] Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                           f"module method `generate_square_subsequent_mask` to create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # the causal hint alone drives the fused attention
    else:
        attn_mask = _canonical_mask(attn_mask, "attn_mask", None, "", query.dtype)
        if key_padding_mask is not None:
            is_causal = False
    if embed_dim != embed_dim_to_check:
        raise AssertionError(f"[{op}] was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"[{op}] embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if tuple(key.shape[:2]) != tuple(value.shape[:2]):
            raise AssertionError(f"[{op}] key's sequence and batch dims {list(key.shape[:2])} do not match value's "
                                 f"{list(value.shape[:2])}")
    elif tuple(key.shape) != tuple(value.shape):
        raise AssertionError(f"[{op}] key shape {list(key.shape)} does not match value shape {list(value.shape)}")
    q, k, v = _in_projection(query, key, value, embed_dim, in_proj_weight, in_proj_bias, use_separate_proj_weight,
                             q_proj_weight, k_proj_weight, v_proj_weight)

    if attn_mask is not None:
        if attn_mask.dim() == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise RuntimeError(f"[{op}] The shape of the 2D attn_mask is {list(attn_mask.shape)}, but should be "
                                   f"{[tgt_len, src_len]}.")
            attn_mask = attn_mask.unsqueeze(0)
        elif tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
            raise RuntimeError(f"[{op}] The shape of the 3D attn_mask is {list(attn_mask.shape)}, but should be "
                               f"{[bsz * num_heads, tgt_len, src_len]}.")
    if bias_k is not None and bias_v is not None:
        if static_k is not None or static_v is not None:
            raise AssertionError(f"[{op}] bias cannot be added to static key/value.")
        k = ember.cat([k, bias_k.expand(1, bsz, embed_dim)], 0)
        v = ember.cat([v, bias_v.expand(1, bsz, embed_dim)], 0)
        attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)
    elif bias_k is not None or bias_v is not None:
        raise AssertionError(f"[{op}] bias_k and bias_v must be given together")

    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = (k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1) if static_k is None
         else _check_static(op, "static_k", static_k, bsz * num_heads, head_dim))
    v = (v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1) if static_v is None
         else _check_static(op, "static_v", static_v, bsz * num_heads, head_dim))
    if add_zero_attn:
        zeros = ember.zeros((bsz * num_heads, 1, head_dim), dtype=q.dtype, device=q.device)
        k, v = ember.cat([k, zeros], 1), ember.cat([v, zeros], 1)
        attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)
    src_len = k.shape[1]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            raise AssertionError(f"[{op}] expecting key_padding_mask shape of {(bsz, src_len)}, but got "
                                 f"{tuple(key_padding_mask.shape)}")
        kpm = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len)
        kpm = kpm.reshape(bsz * num_heads, 1, src_len)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm
    if not training:
        dropout_p = 0.0

    from .functional import dropout, scaled_dot_product_attention
    if need_weights:
        scores = ember.bmm(q * math.sqrt(1.0 / float(head_dim)), k.transpose(-2, -1))
        if attn_mask is not None:
            scores = scores + attn_mask
        weights = ember.softmax(scores, -1)
        if dropout_p > 0.0:
            weights = dropout(weights, p=dropout_p)
        out = ember.bmm(weights, v).transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
        out = _linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, -1)
        weights = weights.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            weights = weights.mean(1)
        if not batched:
            out, weights = out.squeeze(1), weights.squeeze(0)
        return out, weights
    if attn_mask is not None:
        attn_mask = (attn_mask.unsqueeze(0) if attn_mask.shape[0] == 1 and attn_mask.dim() == 3
                     else attn_mask.reshape(bsz, num_heads, -1, src_len))
    q = q.reshape(bsz, num_heads, tgt_len, head_dim)
    k = k.reshape(bsz, num_heads, src_len, head_dim)
    v = v.reshape(bsz, num_heads, src_len, head_dim)
    out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    out = out.permute(2, 0, 1, 3).reshape(bsz * tgt_len, embed_dim)
    out = _linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, -1)
    return (out if batched else out.squeeze(1)), None


def _check_static(op: str, name: str, t: Tensor, heads_times_batch: int, head_dim: int) -> Tensor:
    if t.shape[0] != heads_times_batch or t.shape[2] != head_dim:
        raise AssertionError(f"[{op}] expecting {name} of shape ({heads_times_batch}, *, {head_dim}), but got "
                             f"{list(t.shape)}")
    return t
