// Backward rules of the elementwise ops, written with ember ops so they run on any device (and are
// themselves differentiable). OpNode::apply sums broadcast gradients back to each input's shape and
// casts them to its dtype, so rules return full-shape, promoted-dtype gradients.
#include <cmath>

#include "autograd/node.h"
#include "ops/elementwise.h"

namespace ember::backward {
namespace {

constexpr double kLn2 = 0.6931471805599453;

// 1.0 where mask holds, else 0.0, in dtype of `like`.
Tensor mask_as(const Tensor& mask, const Tensor& like) { return to_dtype(mask, like.dtype()); }

Tensor zeros_for(const BackwardCtx& ctx, size_t i) {
  const OutputMeta& m = ctx.input_meta(i);
  return zeros(m.sizes, m.dtype, m.device);
}

}  // namespace

void add(BackwardCtx& ctx) {
  Tensor g = ctx.grad();
  if (ctx.needs_grad(0)) ctx.set_grad(0, g);
  if (ctx.needs_grad(1)) {
    const Scalar alpha = ctx.attrs.alpha;
    ctx.set_grad(1, (alpha.to_double() == 1.0) ? g : mul(g, alpha));
  }
}

void sub(BackwardCtx& ctx) {
  Tensor g = ctx.grad();
  if (ctx.needs_grad(0)) ctx.set_grad(0, g);
  if (ctx.needs_grad(1)) {
    const Scalar alpha = ctx.attrs.alpha;
    ctx.set_grad(1, (alpha.to_double() == 1.0) ? neg(g) : mul(g, Scalar(-alpha.to_double())));
  }
}

void mul(BackwardCtx& ctx) {
  Tensor g = ctx.grad();
  if (ctx.needs_grad(0)) ctx.set_grad(0, mul(g, ctx.input(1)));
  if (ctx.needs_grad(1)) ctx.set_grad(1, mul(g, ctx.input(0)));
}

void div(BackwardCtx& ctx) {
  Tensor g = ctx.grad();
  Tensor b = ctx.input(1);
  if (ctx.needs_grad(0)) ctx.set_grad(0, div(g, b));
  if (ctx.needs_grad(1)) ctx.set_grad(1, neg(div(mul(g, ctx.input(0)), mul(b, b))));
}

// d/da a^b = b a^(b-1) (0 where b == 0); d/db a^b = a^b log(a) (0 where a == 0 and b >= 0).
void pow(BackwardCtx& ctx) {
  Tensor g = ctx.grad();
  Tensor a = ctx.input(0), b = ctx.input(1);
  if (ctx.needs_grad(0)) {
    Tensor d = mul(mul(g, b), pow(a, sub(b, Scalar(int64_t{1}))));
    ctx.set_grad(0, where(eq(b, zeros({}, b.dtype(), b.device())), zeros({}, d.dtype(), d.device()), d));
  }
  if (ctx.needs_grad(1)) {
    Tensor d = mul(mul(g, ctx.output(0)), log(a));
    Tensor zero_base = logical_and(eq(a, zeros({}, a.dtype(), a.device())), ge(b, zeros({}, b.dtype(), b.device())));
    ctx.set_grad(1, where(zero_base, zeros({}, d.dtype(), d.device()), d));
  }
}

// Ties split the gradient evenly between the two inputs, like torch.
static void max_min_backward(BackwardCtx& ctx, bool is_max) {
  Tensor g = ctx.grad();
  Tensor a = ctx.input(0), b = ctx.input(1);
  Tensor tie = mul(mask_as(eq(a, b), g), Scalar(0.5));
  if (ctx.needs_grad(0)) ctx.set_grad(0, mul(g, add(mask_as(is_max ? gt(a, b) : lt(a, b), g), tie)));
  if (ctx.needs_grad(1)) ctx.set_grad(1, mul(g, add(mask_as(is_max ? lt(a, b) : gt(a, b), g), tie)));
}
void maximum(BackwardCtx& ctx) { max_min_backward(ctx, true); }
void minimum(BackwardCtx& ctx) { max_min_backward(ctx, false); }

void lerp(BackwardCtx& ctx) {
  Tensor g = ctx.grad();
  Tensor a = ctx.input(0), end = ctx.input(1), w = ctx.input(2);
  if (ctx.needs_grad(0)) ctx.set_grad(0, mul(g, ew::sub(Scalar(int64_t{1}), w)));
  if (ctx.needs_grad(1)) ctx.set_grad(1, mul(g, w));
  if (ctx.needs_grad(2)) ctx.set_grad(2, mul(g, sub(end, a)));
}

void where(BackwardCtx& ctx) {
  Tensor g = ctx.grad();
  Tensor cond = ctx.input(0);
  if (ctx.needs_grad(1)) ctx.set_grad(1, where(cond, g, Scalar(0.0)));
  if (ctx.needs_grad(2)) ctx.set_grad(2, ew::where(cond, Scalar(0.0), g));
}

// Gradient passes where min <= x <= max (bounds that are absent always pass).
void clamp(BackwardCtx& ctx) {
  Tensor g = ctx.grad();
  Tensor x = ctx.input(0);
  Tensor pass;
  if (ctx.attrs.has_scalar) pass = ew::binary(OpId::ge, x, ctx.attrs.scalar);
  if (ctx.attrs.has_scalar2) {
    Tensor hi = ew::binary(OpId::le, x, ctx.attrs.scalar2);
    pass = pass.defined() ? logical_and(pass, hi) : hi;
  }
  ctx.set_grad(0, where(pass, g, Scalar(0.0)));
}

void neg(BackwardCtx& ctx) { ctx.set_grad(0, neg(ctx.grad())); }
void abs(BackwardCtx& ctx) { ctx.set_grad(0, mul(ctx.grad(), sign(ctx.input(0)))); }
void zero_grad(BackwardCtx& ctx) { ctx.set_grad(0, zeros_for(ctx, 0)); }
void exp(BackwardCtx& ctx) { ctx.set_grad(0, mul(ctx.grad(), ctx.output(0))); }
void exp2(BackwardCtx& ctx) { ctx.set_grad(0, mul(mul(ctx.grad(), ctx.output(0)), Scalar(kLn2))); }
void expm1(BackwardCtx& ctx) { ctx.set_grad(0, mul(ctx.grad(), add(ctx.output(0), Scalar(int64_t{1})))); }
void log(BackwardCtx& ctx) { ctx.set_grad(0, div(ctx.grad(), ctx.input(0))); }
void log2(BackwardCtx& ctx) { ctx.set_grad(0, div(ctx.grad(), mul(ctx.input(0), Scalar(kLn2)))); }
void log1p(BackwardCtx& ctx) { ctx.set_grad(0, div(ctx.grad(), add(ctx.input(0), Scalar(int64_t{1})))); }
void sqrt(BackwardCtx& ctx) { ctx.set_grad(0, div(ctx.grad(), mul(ctx.output(0), Scalar(int64_t{2})))); }
void rsqrt(BackwardCtx& ctx) {
  Tensor y = ctx.output(0);
  ctx.set_grad(0, mul(mul(ctx.grad(), mul(y, mul(y, y))), Scalar(-0.5)));
}
void sin(BackwardCtx& ctx) { ctx.set_grad(0, mul(ctx.grad(), cos(ctx.input(0)))); }
void cos(BackwardCtx& ctx) { ctx.set_grad(0, neg(mul(ctx.grad(), sin(ctx.input(0))))); }
void tan(BackwardCtx& ctx) {
  Tensor y = ctx.output(0);
  ctx.set_grad(0, mul(ctx.grad(), add(mul(y, y), Scalar(int64_t{1}))));
}
// Activations take the fused single-pass kernel (CPU or CUDA) when no graph is recorded (Note [Fused
// activation backward], elementwise_unary.cpp); the composite formulas stay for create_graph.
static bool try_fused(BackwardCtx& ctx, OpId id, const Tensor& saved, bool tanh_approximation = false) {
  Tensor g = ctx.grad();
  if (!ew::can_fuse_activation_backward(g, saved)) return false;
  ctx.set_grad(0, ew::activation_backward(id, g, saved, tanh_approximation));
  return true;
}

void tanh(BackwardCtx& ctx) {
  Tensor y = ctx.output(0);
  if (try_fused(ctx, OpId::tanh_backward, y)) return;
  ctx.set_grad(0, mul(ctx.grad(), ew::sub(Scalar(int64_t{1}), mul(y, y))));
}
void sigmoid(BackwardCtx& ctx) {
  Tensor y = ctx.output(0);
  if (try_fused(ctx, OpId::sigmoid_backward, y)) return;
  ctx.set_grad(0, mul(ctx.grad(), mul(y, ew::sub(Scalar(int64_t{1}), y))));
}
void relu(BackwardCtx& ctx) {
  Tensor y = ctx.output(0);
  if (try_fused(ctx, OpId::relu_backward, y)) return;
  // Like torch (threshold_backward): zero where y <= 0, so a NaN output passes the gradient.
  ctx.set_grad(0, ew::where(ew::binary(OpId::le, y, Scalar(int64_t{0})), Scalar(0.0), ctx.grad()));
}
void erf(BackwardCtx& ctx) {
  Tensor x = ctx.input(0);
  ctx.set_grad(0, mul(ctx.grad(), mul(exp(neg(mul(x, x))), Scalar(1.1283791670955126))));
}

// Exact: d/dx x Phi(x) = Phi(x) + x phi(x). Tanh: differentiate 0.5 x (1 + tanh(k0 (x + k1 x^3))).
void gelu(BackwardCtx& ctx) {
  Tensor g = ctx.grad();
  Tensor x = ctx.input(0);
  if (try_fused(ctx, OpId::gelu_backward, x, ctx.attrs.flag)) return;
  if (ctx.attrs.flag) {
    const double k0 = 0.7978845608028654, k1 = 0.044715;
    Tensor x2 = mul(x, x);
    Tensor inner = mul(mul(x, add(mul(x2, Scalar(k1)), Scalar(int64_t{1}))), Scalar(k0));
    Tensor t = tanh(inner);
    Tensor left = mul(add(t, Scalar(int64_t{1})), Scalar(0.5));
    Tensor dinner = mul(add(mul(x2, Scalar(3 * k1)), Scalar(int64_t{1})), Scalar(k0));
    Tensor right = mul(mul(mul(x, Scalar(0.5)), ew::sub(Scalar(int64_t{1}), mul(t, t))), dinner);
    ctx.set_grad(0, mul(g, add(left, right)));
  } else {
    Tensor cdf = mul(add(erf(mul(x, Scalar(0.7071067811865476))), Scalar(int64_t{1})), Scalar(0.5));
    Tensor pdf = mul(exp(mul(mul(x, x), Scalar(-0.5))), Scalar(0.3989422804014327));
    ctx.set_grad(0, mul(g, add(cdf, mul(x, pdf))));
  }
}

void silu(BackwardCtx& ctx) {
  Tensor x = ctx.input(0);
  if (try_fused(ctx, OpId::silu_backward, x)) return;
  Tensor s = sigmoid(x);
  Tensor d = mul(s, add(mul(x, ew::sub(Scalar(int64_t{1}), s)), Scalar(int64_t{1})));
  ctx.set_grad(0, mul(ctx.grad(), d));
}

// softplus'(x) = sigmoid(beta x), or 1 where beta x > threshold (the linear region).
void softplus(BackwardCtx& ctx) {
  Tensor x = ctx.input(0);
  Tensor bx = mul(x, ctx.attrs.scalar);
  Tensor d = ew::where(ew::binary(OpId::gt, bx, ctx.attrs.scalar2), Scalar(1.0), sigmoid(bx));
  ctx.set_grad(0, mul(ctx.grad(), d));
}

// grad where x > 0, else grad * slope: computed in grad's dtype (a where() of two Scalars would
// be float32 and round the slope for float64 inputs).
void leaky_relu(BackwardCtx& ctx) {
  Tensor g = ctx.grad();
  ctx.set_grad(0, where(ew::binary(OpId::gt, ctx.input(0), Scalar(int64_t{0})), g, mul(g, ctx.attrs.scalar)));
}

void nan_to_num(BackwardCtx& ctx) {
  ctx.set_grad(0, where(isfinite(ctx.input(0)), ctx.grad(), Scalar(0.0)));
}

// copy: the destination's old values get no gradient; the source gets the incoming one (cast back
// to its dtype by OpNode). in = (src) for clone/to/contiguous, (self, src) for copy_.
void copy(BackwardCtx& ctx) {
  const size_t src = ctx.num_inputs() - 1;
  if (ctx.needs_grad(src)) ctx.set_grad(src, ctx.grad());
  if (src == 1 && ctx.needs_grad(0)) ctx.set_grad(0, zeros_for(ctx, 0));
}

}  // namespace ember::backward
