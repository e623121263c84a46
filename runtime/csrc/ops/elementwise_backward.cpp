// Backward rules of the elementwise ops that need more than a formula (spec `backward: <file>`):
// the one-line ones are formulas in runtime/spec/elementwise.yaml. Written with ember ops, so they
// run on any device and are themselves differentiable. OpNode::apply sums broadcast gradients back
// to each input's shape and casts them to its dtype, so rules return full-shape gradients.
#include "autograd/node.h"
#include "generated/kernels_elementwise.h"
#include "ops/elementwise.h"
#include "ops/formula.h"

namespace ember::backward {
namespace {

// 1.0 where mask holds, else 0.0, in the dtype of `like`.
Tensor mask_as(const Tensor& mask, const Tensor& like) { return to_dtype(mask, like.dtype()); }

// Ties split the gradient evenly between the two inputs, like torch.
void max_min_backward(BackwardCtx& ctx, bool is_max) {
  const Tensor g = ctx.grad();
  const Tensor a = ctx.input(0), b = ctx.input(1);
  const Tensor tie = mask_as(eq(a, b), g) * 0.5;
  if (ctx.needs_grad(0)) ctx.set_grad(0, g * (mask_as(is_max ? gt(a, b) : lt(a, b), g) + tie));
  if (ctx.needs_grad(1)) ctx.set_grad(1, g * (mask_as(is_max ? lt(a, b) : gt(a, b), g) + tie));
}

// Activations take the fused single-pass kernel when no graph is recorded (Note [Fused activation
// backward], elementwise_unary.cpp); the composite formulas stay for create_graph.
bool fusable(const BackwardCtx& ctx, const Tensor& saved) {
  return ew::can_fuse_activation_backward(ctx.grad(), saved);
}

}  // namespace

// d/da a^b = b a^(b-1) (0 where b == 0); d/db a^b = a^b log(a) (0 where a == 0 and b >= 0).
void pow(BackwardCtx& ctx, const PointwiseAttrs&) {
  const Tensor g = ctx.grad();
  const Tensor a = ctx.input(0), b = ctx.input(1);
  if (ctx.needs_grad(0)) ctx.set_grad(0, where(eq(b, 0), 0.0, g * b * pow(a, b - 1)));
  if (ctx.needs_grad(1)) ctx.set_grad(1, where(logical_and(eq(a, 0), ge(b, 0)), 0.0, g * ctx.output(0) * log(a)));
}

void maximum(BackwardCtx& ctx, const PointwiseAttrs&) { max_min_backward(ctx, true); }
void minimum(BackwardCtx& ctx, const PointwiseAttrs&) { max_min_backward(ctx, false); }

// Gradient passes where min <= x <= max (bounds that are absent always pass).
void clamp(BackwardCtx& ctx, const ClampAttrs& attrs) {
  const Tensor x = ctx.input(0);
  Tensor pass;
  if (attrs.min) pass = ge(x, *attrs.min);
  if (attrs.max) pass = pass.defined() ? logical_and(pass, le(x, *attrs.max)) : le(x, *attrs.max);
  ctx.set_grad(0, where(pass, ctx.grad(), 0.0));
}

void tanh(BackwardCtx& ctx, const PointwiseAttrs&) {
  const Tensor y = ctx.output(0);
  ctx.set_grad(0, fusable(ctx, y) ? tanh_backward(ctx.grad(), y) : ctx.grad() * (1 - y * y));
}

void sigmoid(BackwardCtx& ctx, const PointwiseAttrs&) {
  const Tensor y = ctx.output(0);
  ctx.set_grad(0, fusable(ctx, y) ? sigmoid_backward(ctx.grad(), y) : ctx.grad() * (y * (1 - y)));
}

// Like torch (threshold_backward): zero where y <= 0, so a NaN output passes the gradient.
void relu(BackwardCtx& ctx, const PointwiseAttrs&) {
  const Tensor y = ctx.output(0);
  ctx.set_grad(0, fusable(ctx, y) ? relu_backward(ctx.grad(), y) : where(le(y, 0), 0.0, ctx.grad()));
}

// Exact: d/dx x Phi(x) = Phi(x) + x phi(x). Tanh: differentiate 0.5 x (1 + tanh(k0 (x + k1 x^3))).
void gelu(BackwardCtx& ctx, const GeluAttrs& attrs) {
  const Tensor g = ctx.grad();
  const Tensor x = ctx.input(0);
  if (fusable(ctx, x)) {
    ctx.set_grad(0, gelu_backward(g, x, attrs.tanh ? "tanh" : "none"));
  } else if (attrs.tanh) {
    const double k0 = 0.7978845608028654, k1 = 0.044715;
    const Tensor x2 = x * x;
    const Tensor t = tanh(x * (x2 * k1 + 1) * k0);
    const Tensor dinner = (x2 * (3 * k1) + 1) * k0;
    ctx.set_grad(0, g * ((t + 1) * 0.5 + x * 0.5 * (1 - t * t) * dinner));
  } else {
    const Tensor cdf = (erf(x * 0.7071067811865476) + 1) * 0.5;
    const Tensor pdf = exp(x * x * -0.5) * 0.3989422804014327;
    ctx.set_grad(0, g * (cdf + x * pdf));
  }
}

void silu(BackwardCtx& ctx, const PointwiseAttrs&) {
  const Tensor x = ctx.input(0);
  if (fusable(ctx, x)) return ctx.set_grad(0, silu_backward(ctx.grad(), x));
  const Tensor s = sigmoid(x);
  ctx.set_grad(0, ctx.grad() * (s * (x * (1 - s) + 1)));
}

// copy: the destination's old values get no gradient; the source gets the incoming one (cast back
// to its dtype by OpNode). in = (src) for clone/to/contiguous, (self, src) for copy_.
void copy(BackwardCtx& ctx, const NoAttrs&) {
  const size_t src = ctx.num_inputs() - 1;
  if (ctx.needs_grad(src)) ctx.set_grad(src, ctx.grad());
  if (src == 1 && ctx.needs_grad(0)) {
    const OutputMeta& m = ctx.input_meta(0);
    ctx.set_grad(0, zeros(m.sizes, m.dtype, m.device));
  }
}

}  // namespace ember::backward
