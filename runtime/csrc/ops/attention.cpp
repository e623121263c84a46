// Frontends and backward rule of fused scaled-dot-product attention (op-table rows fused_attention and
// fused_attention_backward, spec/attention.yaml; kernels in cpu/attention.cpp and
// cuda/attention_cudnn.cpp).
//
// Note [Fused attention op]
// q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv] (any strides) give
//   out = softmax(q @ k^T * scale, causal) * Z @ v,   lse_i = logsumexp_j(scale * q_i . k_j)
// with Z the dropout mask scaled by 1 / (1 - p) and the causal mask top-left aligned (key j is seen
// by query i when j <= i, torch's is_causal). The backward needs q, k, v, out, lse and the dropout
// state only (FlashAttention-2): it recomputes the weights block by block. Dropout draws from the
// device's current generator inside the kernel, after cuDNN has accepted the configuration, so a
// configuration that falls back to the composite path consumes no random numbers; the kernel
// records (seed, offset) in rng_state (device memory, so a captured CUDA graph replays fresh
// masks), and the backward regenerates the same mask from it. Outputs and gradients are dense in
// their input's dim order (attention_strides_like). The logsumexp output is not differentiable.
#include "ops/attention.h"

#include <algorithm>
#include <array>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/dispatcher.h"
#include "generated/kernels_attention.h"
#include "ops/ops.h"

namespace ember {
namespace {

void check_attention_inputs(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, double dropout_p) {
  EMBER_CHECK_VALUE(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "[", op,
                    "] takes 4-D [batch, heads, seq, head_dim] query/key/value, got ", describe(q), ", ",
                    describe(k), ", ", describe(v));
  EMBER_CHECK_TYPE(is_floating(q.dtype()) && q.dtype() == k.dtype() && q.dtype() == v.dtype(), "[", op,
                   "] query, key and value must have one floating dtype, got ", describe(q), ", ", describe(k),
                   ", ", describe(v));
  const auto &qs = q.sizes(), &ks = k.sizes(), &vs = v.sizes();
  EMBER_CHECK_VALUE(ks[0] == qs[0] && vs[0] == qs[0] && ks[1] == qs[1] && vs[1] == qs[1] && ks[2] == vs[2] &&
                        ks[3] == qs[3],
                    "[", op, "] incompatible shapes q ", describe(q), ", k ", describe(k), ", v ", describe(v),
                    " (expected q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv])");
  EMBER_CHECK_VALUE(dropout_p >= 0.0 && dropout_p < 1.0, "[", op, "] dropout_p must be in [0, 1), got ", dropout_p);
}

ScalarType lse_dtype_for(ScalarType dtype) {
  return dtype == ScalarType::Float64 ? ScalarType::Float64 : ScalarType::Float32;
}

Tensor empty_like_attention(IntSpan sizes, const Tensor& like) {
  return Tensor::empty_strided(sizes, attention_strides_like(sizes, like), like.dtype(), like.device());
}

}  // namespace

DimVector attention_strides_like(IntSpan sizes, const Tensor& like) {
  const auto& ls = like.strides();
  std::array<int, 3> order{0, 1, 2};
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return ls[a] > ls[b]; });
  DimVector strides{0, 0, 0, 1};
  int64_t step = sizes[3];
  for (int i = 2; i >= 0; --i) {
    strides[order[i]] = step;
    step *= sizes[order[i]];
  }
  return strides;
}

std::tuple<Tensor, Tensor, Tensor> fused_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                                                   bool is_causal, double dropout_p) {
  check_attention_inputs("fused_attention", q, k, v, dropout_p);
  const auto &qs = q.sizes();
  const bool records = GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
  const AttentionAttrs attrs{.scale = scale, .is_causal = is_causal, .dropout_p = dropout_p,
                             .prepare_backward = records};
  const Tensor in[3] = {q, k, v};
  Tensor out[3] = {empty_like_attention(DimVector{qs[0], qs[1], qs[2], v.sizes()[3]}, q),
                   Tensor::empty(DimVector{qs[0], qs[1], qs[2]}, lse_dtype_for(q.dtype()), q.device()),
                   Tensor::empty(DimVector{dropout_p > 0.0 ? 4 : 0}, ScalarType::Int64, q.device())};
  dispatch<OpId::fused_attention>(in, out, attrs);
  return {out[0], out[1], out[2]};
}

std::tuple<Tensor, Tensor, Tensor> fused_attention_backward(const Tensor& grad, const Tensor& q, const Tensor& k,
                                                            const Tensor& v, const Tensor& out, const Tensor& lse,
                                                            const Tensor& rng_state, double scale, bool is_causal,
                                                            double dropout_p) {
  constexpr const char* kOp = "fused_attention_backward";
  check_attention_inputs(kOp, q, k, v, dropout_p);
  const auto &qs = q.sizes();
  const DimVector out_sizes{qs[0], qs[1], qs[2], v.sizes()[3]};
  EMBER_CHECK_VALUE(grad.sizes() == out_sizes && out.sizes() == out_sizes && out.dtype() == q.dtype(), "[", kOp,
                    "] grad ", describe(grad), " and out ", describe(out), " must have the output's shape ",
                    out_sizes, " and out the inputs' dtype");
  const DimVector lse_sizes{qs[0], qs[1], qs[2]};
  EMBER_CHECK_VALUE(lse.sizes() == lse_sizes && lse.dtype() == lse_dtype_for(q.dtype()), "[", kOp,
                    "] expected logsumexp of shape ", lse_sizes, " and dtype ", dtype_name(lse_dtype_for(q.dtype())),
                    ", got ", describe(lse));
  EMBER_CHECK_VALUE(dropout_p == 0.0 || (rng_state.numel() == 4 && rng_state.dtype() == ScalarType::Int64), "[",
                    kOp, "] dropout_p > 0 needs the forward's int64 [4] rng_state, got ", describe(rng_state));
  const Tensor in[7] = {to_dtype(grad, q.dtype()), q, k, v, out, contiguous(lse), contiguous(rng_state)};
  Tensor grads[3] = {empty_like_attention(qs, q), empty_like_attention(k.sizes(), k),
                     empty_like_attention(v.sizes(), v)};
  dispatch<OpId::fused_attention_backward>(
      in, grads, {.scale = scale, .is_causal = is_causal, .dropout_p = dropout_p, .prepare_backward = false});
  return {grads[0], grads[1], grads[2]};
}

namespace backward {

// Inputs (q, k, v), outputs (out, logsumexp, rng_state). Under create_graph the gradients are the
// composite formula in differentiable ember ops (weights recomputed with scaled_softmax).
void fused_attention(BackwardCtx& ctx, const AttentionAttrs& attrs) {
  if (!ctx.needs_grad(0) && !ctx.needs_grad(1) && !ctx.needs_grad(2)) return;
  EMBER_CHECK(!ctx.has_grad(1), "[fused_attention] the logsumexp output is not differentiable");
  const Tensor q = ctx.input(0), k = ctx.input(1), v = ctx.input(2), g = ctx.grad(0);
  Tensor dq, dk, dv;
  if (q.numel() == 0 || k.numel() == 0 || v.numel() == 0 || g.numel() == 0) {
    dq = zeros_like(q), dk = zeros_like(k), dv = zeros_like(v);
  } else if (GradMode::is_enabled()) {
    EMBER_CHECK(attrs.dropout_p == 0.0, "[fused_attention] double backward (create_graph=True) with dropout_p > 0 "
                "is not supported: the dropout mask lives in the kernel");
    const Tensor p = scaled_softmax(matmul(q, transpose(k, -2, -1)), attrs.scale, attrs.is_causal);
    const Tensor dp = matmul(g, transpose(v, -2, -1));
    const Tensor ds = mul(p, sub(dp, sum(mul(dp, p), DimVector{-1}, true)));
    dq = mul(matmul(ds, k), attrs.scale);
    dk = mul(matmul(transpose(ds, -2, -1), q), attrs.scale);
    dv = matmul(transpose(p, -2, -1), g);
  } else {
    std::tie(dq, dk, dv) = ember::fused_attention_backward(g, q, k, v, ctx.output(0), ctx.output(1), ctx.output(2),
                                                           attrs.scale, attrs.is_causal, attrs.dropout_p);
  }
  for (int i = 0; i < 3; ++i)
    if (ctx.needs_grad(i)) ctx.set_grad(i, i == 0 ? dq : i == 1 ? dk : dv);
}

}  // namespace backward
}  // namespace ember
