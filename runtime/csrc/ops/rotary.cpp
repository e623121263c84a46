// Frontend and backward rule of rotary_embedding. Kernels: cpu/rotary.cpp, cuda/rotary.cu.
#include "autograd/node.h"
#include "dispatch/dispatcher.h"
#include "generated/kernels_nn.h"
#include "ops/ops.h"
#include "ops/rotary.h"

namespace ember {
namespace {
bool is_half_type(ScalarType t) { return t == ScalarType::Float16 || t == ScalarType::BFloat16; }
}  // namespace

// Note [Rotary embedding]
// x (..., T, D), D even, is rotated pair by pair by angles whose cos/sin broadcast to (..., T, D/2):
//   y_a = x_a * cos - x_b * sin,   y_b = x_b * cos + x_a * sin,
// pair i being (i, i + D/2) with interleaved=False (GPT-NeoX / HF LLaMA's rotate_half) or (2i, 2i + 1)
// with interleaved=True (the original LLaMA, GPT-J). inverse=True rotates by the opposite angle
// (sin -> -sin), the transpose: that is the gradient for x. The kernels see x contiguous as [rows, D]
// and cos/sin as [*lead, D/2] views (stride 0 where broadcast) read through RotaryRows; the output
// has x's dtype. cos/sin share x's dtype, or are float32 for a float16/bfloat16 x (computed in float).
Tensor rotary_embedding(const Tensor& x, const Tensor& cos, const Tensor& sin, bool interleaved, bool inverse) {
  EMBER_CHECK(x.dim() >= 1 && x.sizes().back() % 2 == 0, "[rotary_embedding] expected x of shape (..., T, D) with "
              "an even D (pairs of features are rotated), got x ", describe(x));
  EMBER_CHECK_KIND(is_floating(x.dtype()), ErrorKind::NotImplemented, "[rotary_embedding] not implemented for '",
                   torch_type_name(x.dtype()), "' (x ", describe(x), ")");
  const bool half_x = is_half_type(x.dtype());
  const bool dtypes_ok = cos.dtype() == sin.dtype() &&
                         (cos.dtype() == x.dtype() || (half_x && cos.dtype() == ScalarType::Float32));
  EMBER_CHECK(dtypes_ok, "[rotary_embedding] expected cos and sin of x's dtype (or float32 for a float16/bfloat16 "
              "x), got x ", describe(x), ", cos ", describe(cos), ", sin ", describe(sin));
  DimVector target(x.sizes().begin(), x.sizes().end());
  target.back() /= 2;
  for (const auto& [t, what] : {std::pair{&cos, "cos"}, std::pair{&sin, "sin"}}) {
    bool ok = t->dim() >= 1 && t->dim() <= static_cast<int64_t>(target.size());
    for (int64_t i = 1; ok && i <= t->dim(); ++i) {
      const int64_t s = t->sizes()[t->dim() - i], want = target[target.size() - i];
      ok = s == want || (s == 1 && i > 1);
    }
    EMBER_CHECK(ok, "[rotary_embedding] ", what, " of shape ", t->sizes(), " does not broadcast to (..., T, D/2) = ",
                target, " for x of shape ", x.sizes(), " (its last dim must be D/2 = ", target.back(), ")");
  }
  const Tensor xc = contiguous(x);
  // Views [*lead, D/2] with a unit last stride; contiguous copies when the strides do not merge into
  // RotaryRows::kMaxDims dims (a rare layout: then one dim).
  auto as_rows = [&](const Tensor& t) {
    const bool unit_last = t.sizes().back() <= 1 || t.strides().back() == 1;
    return expand(unit_last ? t : contiguous(t), target);
  };
  Tensor ce = as_rows(cos), se = as_rows(sin);
  if (!RotaryRows::of(ce, se).ok()) {
    ce = contiguous(ce);
    se = contiguous(se);
  }
  Tensor outs[1] = {Tensor::empty(x.sizes(), x.dtype(), x.device())};
  const Tensor in[3] = {xc, ce, se};
  dispatch<OpId::rotary_embedding>(in, outs, {.interleaved = interleaved, .inverse = inverse});
  return outs[0];
}

namespace backward {

// Inputs (x, cos, sin) as the kernel saw them. grad x is the opposite rotation of grad (the same op);
// grad cos / sin, of the views' shape [*lead, D/2] (OpNode sums them to the inputs' shapes):
//   grad_cos = g_a x_a + g_b x_b,   grad_sin = s (g_b x_a - g_a x_b),  s = -1 if inverse else 1.
// Written with ember ops, so create_graph gives higher derivatives.
void rotary_embedding(BackwardCtx& ctx, const RotaryEmbeddingAttrs& attrs) {
  const Tensor g = ctx.grad(0);
  if (ctx.needs_grad(0))
    ctx.set_grad(0, ember::rotary_embedding(g, ctx.input(1), ctx.input(2), attrs.interleaved, !attrs.inverse));
  const bool need_cos = ctx.needs_grad(1), need_sin = ctx.needs_grad(2);
  if (!need_cos && !need_sin) return;
  // In float for float16/bfloat16 (like the kernels); OpNode sums and casts to the tables' dtype.
  const ScalarType acc = is_half_type(ctx.input_meta(1).dtype) ? ScalarType::Float32 : ctx.input_meta(1).dtype;
  const Tensor x = to_dtype(ctx.input(0), acc), gc = to_dtype(g, acc);
  const int64_t half = x.sizes().back() / 2;
  auto halves = [&](const Tensor& t) -> std::pair<Tensor, Tensor> {
    if (!attrs.interleaved) return {narrow(t, -1, 0, half), narrow(t, -1, half, half)};
    const int64_t split[2] = {half, 2};
    const Tensor p = unflatten(t, -1, split);
    return {select(p, -1, 0), select(p, -1, 1)};
  };
  const auto [xa, xb] = halves(x);
  const auto [ga, gb] = halves(gc);
  if (need_cos) ctx.set_grad(1, add(mul(ga, xa), mul(gb, xb)));
  if (need_sin) ctx.set_grad(2, attrs.inverse ? sub(mul(ga, xb), mul(gb, xa)) : sub(mul(gb, xa), mul(ga, xb)));
}

}  // namespace backward
}  // namespace ember
