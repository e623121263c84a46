"""The fused CUDA path of scaled_dot_product_attention: cuDNN's flash attention (forward and
backward kernels; runtime/csrc/cuda/attention_cudnn.cpp, Note [Fused attention through cuDNN]).

Note [SDPA dispatch]
functional.scaled_dot_product_attention calls `fused_attention` first; it returns None, and the
composite path (bmm + fused softmax + bmm) runs, unless every condition holds: query/key/value on
one CUDA device, all float16 or all bfloat16, no attn_mask (is_causal is fine), the same leading
(batch, heads) dims, non-empty, head dims multiples of 8 up to 256, cuDNN loaded and
ember.cuda.cudnn.enabled. float32 keeps the composite path (cuBLAS fp32/TF32 GEMMs + fused
softmax) on purpose: cuDNN's SDPA takes only 16-bit inputs, and rounding fp32 inputs to them would
silently drop the precision the caller asked for. A configuration cuDNN itself rejects
(NotImplementedError from the binding, with cuDNN's reason; with gradients, the backward graph is
checked before the forward runs) also falls back. Each fallback that is not the caller's choice
(no cuDNN, a rejected configuration) is reported once per process as a RuntimeWarning.
"""
from __future__ import annotations

import warnings

import ember
from ember import Tensor

from .. import _C
from ..autograd.function import Function
from ..cuda import cudnn

_noted: set[str] = set()


def _note_once(key: str, message: str) -> None:
    if key not in _noted:
        _noted.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


class FlashAttention(Function):
    """out = softmax(q @ k^T * scale [causal]) [dropout] @ v on 4-D [B, H, T, D] CUDA tensors."""

    @staticmethod
    def forward(ctx, q, k, v, scale, is_causal, dropout_p):
        out, stats, rng = _C._cuda_flash_attention_fwd(q, k, v, scale, is_causal, dropout_p, True)
        ctx.save_for_backward(q, k, v, out, stats)
        ctx.rng = rng  # the dropout mask's Philox (seed, offset) on the device, or None
        ctx.attrs = (scale, is_causal, dropout_p)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        if ember.is_grad_enabled():  # create_graph=True: cuDNN's backward is not differentiable
            raise RuntimeError("[scaled_dot_product_attention] double backward through the fused CUDA attention is "
                               "not supported; set ember.cuda.cudnn.enabled = False for the composite path")
        q, k, v, out, stats = ctx.saved_tensors
        dq, dk, dv = _C._cuda_flash_attention_bwd(grad_out, q, k, v, out, stats, ctx.rng, *ctx.attrs)
        return dq, dk, dv, None, None, None


def _as_4d(t: Tensor) -> Tensor:
    if t.dim() == 4:
        return t
    if t.dim() < 4:  # leading unit dims: always a view
        return t.reshape((1,) * (4 - t.dim()) + tuple(t.shape))
    return t.reshape(-1, *t.shape[-3:])


def _eligible(query: Tensor, key: Tensor, value: Tensor, attn_mask) -> bool:
    if attn_mask is not None or not query.is_cuda:
        return False
    dtype = query.dtype
    if (dtype != ember.bfloat16 and dtype != ember.float16) or key.dtype != dtype or value.dtype != dtype:
        return False
    if key.device != query.device or value.device != query.device:
        return False
    qs, ks, vs = query.shape, key.shape, value.shape
    if ks[:-2] != qs[:-2] or vs[:-2] != qs[:-2]:
        return False  # broadcast batches and grouped-query heads keep the composite path
    if 0 in qs or 0 in ks or 0 in vs:
        return False
    return qs[-1] % 8 == 0 and vs[-1] % 8 == 0 and qs[-1] <= 256 and vs[-1] <= 256


def fused_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask, dropout_p: float, is_causal: bool,
                    scale: float) -> Tensor | None:
    """The fused result, or None when the composite path must run (Note [SDPA dispatch])."""
    if not _eligible(query, key, value, attn_mask):
        return None
    reason = cudnn.fused_attention_unavailable_reason()
    if reason:
        if cudnn.enabled:
            _note_once("unavailable", f"[scaled_dot_product_attention] fused CUDA attention is unavailable "
                                      f"({reason}); using the composite path (bmm + softmax + bmm)")
        return None
    lead = tuple(query.shape[:-2])
    q4, k4, v4 = _as_4d(query), _as_4d(key), _as_4d(value)
    try:
        if ember.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad):
            out = FlashAttention.apply(q4, k4, v4, float(scale), bool(is_causal), float(dropout_p))
        else:  # nothing to record for autograd: skip the Function machinery (inference latency)
            out = _C._cuda_flash_attention_fwd(q4, k4, v4, float(scale), bool(is_causal), float(dropout_p), False)[0]
    except NotImplementedError as e:
        shape_key = f"{query.dtype}-{query.shape[-1]}-{value.shape[-1]}-{is_causal}-{dropout_p > 0}"
        _note_once(shape_key, f"{e}; using the composite path for this configuration")
        return None
    return out if len(lead) == 2 else out.reshape(*lead, out.shape[-2], out.shape[-1])
