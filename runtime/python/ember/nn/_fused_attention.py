"""The fused path of scaled_dot_product_attention: the op-table row `fused_attention`
(runtime/spec/attention.yaml; ember._C._fused_attention), whose CPU kernel is a FlashAttention-2
reference on OpenBLAS blocks and whose CUDA kernel is cuDNN's flash attention. Its backward rule
(ops/attention.cpp) reads only the saved logsumexp and the dropout rng state.

Note [SDPA dispatch]
functional.scaled_dot_product_attention calls `fused_attention` first; it returns None, and the
composite path (bmm + fused softmax + bmm) runs, unless: no attn_mask (is_causal is fine),
query/key/value of one floating dtype on one device with the same leading (batch, heads) dims,
dropout_p < 1, and per device
  * CPU: always (every float dtype, 0-size included; float64 for gradcheck);
  * CUDA: all float16 or all bfloat16, non-empty, head dims multiples of 8 up to 256, cuDNN loaded
    and ember.cuda.cudnn.enabled. float32 keeps the composite path (cuBLAS fp32/TF32 GEMMs + fused
    softmax) on purpose: cuDNN's SDPA takes only 16-bit inputs, and rounding fp32 inputs to them
    would silently drop the precision the caller asked for. A configuration cuDNN itself rejects
    (NotImplementedError from the kernel, with cuDNN's reason; with gradients the backward graph is
    checked in the forward) also falls back. Each fallback that is not the caller's choice (no
    cuDNN, a rejected configuration) is reported once per process as a RuntimeWarning.
"""
from __future__ import annotations

import warnings

import ember
from ember import Tensor

from .. import _C
from ..cuda import cudnn

_noted: set[str] = set()


def _note_once(key: str, message: str) -> None:
    if key not in _noted:
        _noted.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _as_4d(t: Tensor) -> Tensor:
    if t.dim() == 4:
        return t
    if t.dim() < 4:  # leading unit dims: always a view
        return t.reshape((1,) * (4 - t.dim()) + tuple(t.shape))
    return t.reshape(-1, *t.shape[-3:])


def _eligible(query: Tensor, key: Tensor, value: Tensor, attn_mask, dropout_p: float) -> bool:
    dtype = query.dtype
    if attn_mask is not None or not dtype.is_floating_point or key.dtype != dtype or value.dtype != dtype:
        return False
    if key.device != query.device or value.device != query.device or not 0.0 <= dropout_p < 1.0:
        return False
    qs, ks, vs = query.shape, key.shape, value.shape
    if ks[:-2] != qs[:-2] or vs[:-2] != qs[:-2]:
        return False  # broadcast batches keep the composite path
    if not query.is_cuda:
        return True
    if dtype != ember.bfloat16 and dtype != ember.float16:
        return False
    if 0 in qs or 0 in ks or 0 in vs:
        return False
    return qs[-1] % 8 == 0 and vs[-1] % 8 == 0 and qs[-1] <= 256 and vs[-1] <= 256


def fused_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask, dropout_p: float, is_causal: bool,
                    scale: float) -> Tensor | None:
    """The fused result, or None when the composite path must run (Note [SDPA dispatch])."""
    if not _eligible(query, key, value, attn_mask, dropout_p):
        return None
    if query.is_cuda:
        reason = cudnn.fused_attention_unavailable_reason()
        if reason:
            if cudnn.enabled:
                _note_once("unavailable", f"[scaled_dot_product_attention] fused CUDA attention is unavailable "
                                          f"({reason}); using the composite path (bmm + softmax + bmm)")
            return None
    lead = tuple(query.shape[:-2])
    try:
        out = _C._fused_attention(_as_4d(query), _as_4d(key), _as_4d(value), float(scale), bool(is_causal),
                                  float(dropout_p))[0]  # (out, logsumexp, rng_state)
    except NotImplementedError as e:  # cuDNN rejected this configuration
        if not query.is_cuda:
            raise
        shape_key = f"{query.dtype}-{query.shape[-1]}-{value.shape[-1]}-{is_causal}-{dropout_p > 0}"
        _note_once(shape_key, f"{e}; using the composite path for this configuration")
        return None
    return out if len(lead) == 2 else out.reshape(*lead, out.shape[-2], out.shape[-1])
