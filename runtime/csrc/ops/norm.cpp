// Frontends and backward rules of the fused normalization ops (layer_norm, rms_norm). Kernels:
// cpu/norm.cpp, cuda/norm.cu. The input is made contiguous and seen as [rows, N] with N = prod(normalized_shape).
#include <limits>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/dispatcher.h"
#include "generated/kernels_nn.h"
#include "ops/ops.h"
#include "ops/reduce_util.h"

namespace ember {
namespace {

// Statistics (mean, rstd) are kept in the accumulation type: float for half types, double for double.
ScalarType stats_dtype(ScalarType t) { return t == ScalarType::Float64 ? ScalarType::Float64 : ScalarType::Float32; }
bool is_half_type(ScalarType t) { return t == ScalarType::Float16 || t == ScalarType::BFloat16; }

// The shape checks of torch's _check_layer_norm_inputs, shared by layer_norm and rms_norm (`op` names
// the op in messages); `params` are the parameters (weight, bias) with their names, undefined if absent.
void check_normalized_shape(const char* op, const Tensor& x, IntSpan normalized_shape,
                            std::initializer_list<std::pair<const Tensor*, const char*>> params) {
  const DimVector ns(normalized_shape.begin(), normalized_shape.end());
  const int64_t k = static_cast<int64_t>(ns.size());
  EMBER_CHECK(k >= 1, "[", op, "] Expected normalized_shape to be at least 1-dimensional, i.e., containing at "
              "least one element, but got normalized_shape = ", ns);
  for (const auto& [t, what] : params) {
    if (!t->defined()) continue;
    EMBER_CHECK(t->sizes() == ns, "[", op, "] Expected ", what, " to be of same shape as normalized_shape, but got ",
                what, " of shape ", t->sizes(), " and normalized_shape = ", ns);
  }
  const int64_t nd = x.dim();
  bool match = nd >= k;
  for (int64_t i = 0; match && i < k; ++i) match = x.sizes()[nd - k + i] == ns[i];
  if (!match) {
    std::string trailing;
    for (int64_t i = 0; i < k; ++i) trailing += ", " + std::to_string(ns[i]);
    fail(ErrorKind::Runtime, "[", op, "] Given normalized_shape=", ns, ", expected input with shape [*", trailing,
         "], but got input of size", x.sizes());
  }
  EMBER_CHECK_KIND(is_floating(x.dtype()), ErrorKind::NotImplemented, "[", op, "] not implemented for '",
                   torch_type_name(x.dtype()), "' (input ", describe(x), ")");
}

int64_t leading_rows(const Tensor& x, IntSpan normalized_shape) {
  int64_t rows = 1;
  for (int64_t i = 0; i < x.dim() - static_cast<int64_t>(normalized_shape.size()); ++i) rows *= x.sizes()[i];
  return rows;
}

// Statistics come back shaped [*leading dims, 1, ...] and are not differentiable, like torch's:
// detached aliases of the saved ones (an in-place change still trips the version check).
Tensor detached_stats(const Tensor& s, const Tensor& x, IntSpan normalized_shape) {
  DimVector keep(x.sizes().begin(), x.sizes().end());
  for (size_t i = keep.size() - normalized_shape.size(); i < keep.size(); ++i) keep[i] = 1;
  return Tensor::make(s.storage(), keep, contiguous_strides(keep), s.storage_offset(), s.dtype());
}

// Checks the arguments like torch's _check_layer_norm_inputs; returns the number of rows.
int64_t check_layer_norm_args(const Tensor& x, IntSpan normalized_shape, const Tensor& weight, const Tensor& bias) {
  check_normalized_shape("layer_norm", x, normalized_shape, {{&weight, "weight"}, {&bias, "bias"}});
  // Like torch: parameters share the input's dtype, or are float32 for a float16/bfloat16 input.
  const Tensor& p = weight.defined() ? weight : bias;
  if (p.defined()) {
    const ScalarType pt = p.dtype();
    const bool ok = (pt == x.dtype() || (is_half_type(x.dtype()) && pt == ScalarType::Float32)) &&
                    (!weight.defined() || !bias.defined() || weight.dtype() == bias.dtype());
    EMBER_CHECK(ok, "[layer_norm] mixed dtype: expected weight and bias of the input's dtype (or float32 for a "
                "float16/bfloat16 input), got input ", describe(x), ", weight ",
                weight.defined() ? describe(weight) : std::string("None"), ", bias ",
                bias.defined() ? describe(bias) : std::string("None"));
  }
  return leading_rows(x, normalized_shape);
}

struct LayerNormGrads { Tensor input, weight, bias; };

// Note [layer_norm backward]
// With xhat = (x - mean) * rstd and gy = grad * weight, per row of N elements:
//   grad_input  = rstd * (gy - mean(gy) - xhat * mean(gy * xhat))
//   grad_weight = sum over rows of grad * xhat,  grad_bias = sum over rows of grad.
// The fused layer_norm_backward op computes all three in one pass (kernels only, not differentiable).
// Under create_graph the same formulas run as ember ops (recomputing mean/rstd from x), so higher
// order gradients flow through x, weight and grad.
LayerNormGrads layer_norm_backward_composite(const Tensor& grad, const Tensor& x, const Tensor& weight, double eps,
                                             int64_t n, bool need_input, bool need_weight, bool need_bias) {
  const ScalarType acc = stats_dtype(x.dtype());
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  const int64_t shape2d[2] = {rows, n}, one[1] = {1}, zero[1] = {0};
  Tensor xf = reshape(to_dtype(x, acc), shape2d);
  Tensor gf = reshape(to_dtype(grad, acc), shape2d);
  Tensor mu = mean(xf, one, /*keepdim=*/true);
  Tensor xc = sub(xf, mu);
  Tensor rstd = rsqrt(add(mean(mul(xc, xc), one, /*keepdim=*/true), Scalar(eps)));
  Tensor xhat = mul(xc, rstd);
  LayerNormGrads r;
  if (need_input) {
    Tensor gy = weight.defined() ? mul(gf, reshape(to_dtype(weight, acc), IntSpan(&n, 1))) : gf;
    Tensor inner = sub(sub(gy, mean(gy, one, true)), mul(xhat, mean(mul(gy, xhat), one, true)));
    r.input = reshape(mul(rstd, inner), x.sizes());
  }
  if (need_weight) r.weight = sum(mul(gf, xhat), zero);  // [N]; the caller reshapes to the parameter's shape
  if (need_bias) r.bias = sum(gf, zero);
  return r;
}

// Note [rms_norm backward]
// y = x * rstd * weight with rstd = 1 / sqrt(mean(x^2) + eps): layer_norm with the mean fixed at 0 and
// no bias. With xhat = x * rstd and gy = grad * weight, per row of N elements:
//   grad_input = rstd * (gy - xhat * mean(gy * xhat)),  grad_weight = sum over rows of grad * xhat.
// The fused rms_norm_backward op computes both in one pass; under create_graph the same formulas run
// as ember ops (recomputing rstd from x), so higher order gradients flow through x, weight and grad.
struct RmsNormGrads { Tensor input, weight; };

RmsNormGrads rms_norm_backward_composite(const Tensor& grad, const Tensor& x, const Tensor& weight, double eps,
                                         int64_t n, bool need_input, bool need_weight) {
  const ScalarType acc = stats_dtype(x.dtype());
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  const int64_t shape2d[2] = {rows, n}, one[1] = {1}, zero[1] = {0};
  Tensor xf = reshape(to_dtype(x, acc), shape2d);
  Tensor gf = reshape(to_dtype(grad, acc), shape2d);
  Tensor rstd = rsqrt(add(mean(mul(xf, xf), one, /*keepdim=*/true), Scalar(eps)));
  Tensor xhat = mul(xf, rstd);
  RmsNormGrads r;
  if (need_input) {
    Tensor gy = weight.defined() ? mul(gf, reshape(to_dtype(weight, acc), IntSpan(&n, 1))) : gf;
    r.input = reshape(mul(rstd, sub(gy, mul(xhat, mean(mul(gy, xhat), one, true)))), x.sizes());
  }
  if (need_weight) r.weight = sum(mul(gf, xhat), zero);  // [N]; the caller reshapes to the parameter's shape
  return r;
}

// torch's default eps: the epsilon of the accumulation type (float's for float16/bfloat16 too).
double rms_norm_eps(ScalarType t, std::optional<double> eps) {
  if (eps) return *eps;
  return t == ScalarType::Float64 ? std::numeric_limits<double>::epsilon()
                                  : static_cast<double>(std::numeric_limits<float>::epsilon());
}

}  // namespace

std::tuple<Tensor, Tensor, Tensor> native_layer_norm(const Tensor& x, IntSpan normalized_shape, const Tensor& weight,
                                                     const Tensor& bias, double eps) {
  const int64_t rows = check_layer_norm_args(x, normalized_shape, weight, bias);
  int64_t n = 1;
  for (int64_t s : normalized_shape) n *= s;
  const Tensor xc = contiguous(x);
  const Tensor wc = weight.defined() ? contiguous(weight) : Tensor();
  const Tensor bc = bias.defined() ? contiguous(bias) : Tensor();
  const int64_t stat_sizes[1] = {rows};
  Tensor outs[3] = {Tensor::empty(x.sizes(), x.dtype(), x.device()),
                    Tensor::empty(stat_sizes, stats_dtype(x.dtype()), x.device()),
                    Tensor::empty(stat_sizes, stats_dtype(x.dtype()), x.device())};
  const Tensor in[3] = {xc, wc, bc};
  dispatch<OpId::layer_norm>(in, outs, {.eps = eps, .n = n, .has_weight = wc.defined(), .has_bias = bc.defined()});
  return {outs[0], detached_stats(outs[1], x, normalized_shape), detached_stats(outs[2], x, normalized_shape)};
}

Tensor layer_norm(const Tensor& x, IntSpan normalized_shape, const Tensor& weight, const Tensor& bias, double eps) {
  return std::get<0>(native_layer_norm(x, normalized_shape, weight, bias, eps));
}

std::tuple<Tensor, Tensor, Tensor> layer_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& mean,
                                                       const Tensor& rstd, const Tensor& weight, ScalarType param_dtype,
                                                       int64_t n, bool need_input, bool need_weight, bool need_bias) {
  const Tensor g = contiguous(to_dtype(grad, x.dtype()));
  const int64_t none[1] = {0}, cols[1] = {n};
  Tensor outs[3] = {
      Tensor::empty(need_input ? IntSpan(x.sizes()) : IntSpan(none), x.dtype(), x.device()),
      Tensor::empty(need_weight ? IntSpan(cols) : IntSpan(none), param_dtype, x.device()),
      Tensor::empty(need_bias ? IntSpan(cols) : IntSpan(none), param_dtype, x.device()),
  };
  const Tensor in[5] = {g, x, mean, rstd, weight};
  dispatch<OpId::layer_norm_backward>(in, outs, {.n = n, .need_input = need_input, .need_weight = need_weight,
                                                 .need_bias = need_bias, .has_weight = weight.defined()});
  return {outs[0], outs[1], outs[2]};
}

std::pair<Tensor, Tensor> _fused_rms_norm(const Tensor& x, IntSpan normalized_shape, const Tensor& weight,
                                          std::optional<double> eps) {
  check_normalized_shape("rms_norm", x, normalized_shape, {{&weight, "weight"}});
  const int64_t rows = leading_rows(x, normalized_shape);
  int64_t n = 1;
  for (int64_t s : normalized_shape) n *= s;
  // torch accepts any floating weight and returns the input's dtype. The kernels take the input's
  // dtype, or float32 parameters for a float16/bfloat16 input; other weights are cast (exactly, or as
  // torch rounds the product) before the op, and their gradient is cast back by autograd.
  Tensor w;
  if (weight.defined()) {
    EMBER_CHECK(is_floating(weight.dtype()), "[rms_norm] expected a floating-point weight, got weight ",
                describe(weight), " for input ", describe(x));
    const ScalarType wt = weight.dtype() == x.dtype() ? x.dtype()
                          : is_half_type(x.dtype())   ? ScalarType::Float32
                                                      : x.dtype();
    w = contiguous(to_dtype(weight, wt));
  }
  const Tensor xc = contiguous(x);
  const int64_t stat_sizes[1] = {rows};
  Tensor outs[2] = {Tensor::empty(x.sizes(), x.dtype(), x.device()),
                    Tensor::empty(stat_sizes, stats_dtype(x.dtype()), x.device())};
  const Tensor in[2] = {xc, w};
  dispatch<OpId::rms_norm>(in, outs, {.eps = rms_norm_eps(x.dtype(), eps), .n = n, .has_weight = w.defined()});
  return {outs[0], detached_stats(outs[1], x, normalized_shape)};
}

Tensor rms_norm(const Tensor& x, IntSpan normalized_shape, const Tensor& weight, std::optional<double> eps) {
  return _fused_rms_norm(x, normalized_shape, weight, eps).first;
}

std::pair<Tensor, Tensor> rms_norm_backward(const Tensor& grad, const Tensor& x, const Tensor& rstd,
                                            const Tensor& weight, ScalarType param_dtype, int64_t n, bool need_input,
                                            bool need_weight) {
  const Tensor g = contiguous(to_dtype(grad, x.dtype()));
  const int64_t none[1] = {0}, cols[1] = {n};
  Tensor outs[2] = {
      Tensor::empty(need_input ? IntSpan(x.sizes()) : IntSpan(none), x.dtype(), x.device()),
      Tensor::empty(need_weight ? IntSpan(cols) : IntSpan(none), param_dtype, x.device()),
  };
  const Tensor in[4] = {g, x, rstd, weight};
  dispatch<OpId::rms_norm_backward>(
      in, outs, {.n = n, .need_input = need_input, .need_weight = need_weight, .has_weight = weight.defined()});
  return {outs[0], outs[1]};
}

namespace backward {

// Inputs (x, weight?, bias?), outputs (out, mean, rstd). Gradients reaching mean/rstd are ignored:
// they are exposed detached.
void layer_norm(BackwardCtx& ctx, const LayerNormAttrs& attrs) {
  const bool has_weight = attrs.has_weight, has_bias = attrs.has_bias;
  const bool need_input = ctx.needs_grad(0);
  const bool need_weight = has_weight && ctx.needs_grad(1);
  const bool need_bias = has_bias && ctx.needs_grad(2);
  if (!need_input && !need_weight && !need_bias) return;
  const int64_t n = attrs.n;
  const Tensor g = ctx.grad(0);
  const Tensor x = ctx.input(0);
  const Tensor w = has_weight ? ctx.input(1) : Tensor();
  LayerNormGrads r;
  if (GradMode::is_enabled()) {
    r = layer_norm_backward_composite(g, x, w, attrs.eps, n, need_input, need_weight, need_bias);
  } else {
    const ScalarType param_dtype =
        has_weight ? ctx.input_meta(1).dtype : has_bias ? ctx.input_meta(2).dtype : x.dtype();
    std::tie(r.input, r.weight, r.bias) = layer_norm_backward(g, x, ctx.output(1), ctx.output(2), w, param_dtype, n,
                                                              need_input, need_weight, need_bias);
  }
  if (need_input) ctx.set_grad(0, r.input);
  if (need_weight) ctx.set_grad(1, reshape(r.weight, ctx.input_meta(1).sizes));
  if (need_bias) ctx.set_grad(2, reshape(r.bias, ctx.input_meta(2).sizes));
}


// Inputs (x, weight?), outputs (out, rstd); rstd is exposed detached, so its gradient is ignored.
void rms_norm(BackwardCtx& ctx, const RmsNormAttrs& attrs) {
  const bool need_input = ctx.needs_grad(0);
  const bool need_weight = attrs.has_weight && ctx.needs_grad(1);
  if (!need_input && !need_weight) return;
  const Tensor g = ctx.grad(0);
  const Tensor x = ctx.input(0);
  const Tensor w = attrs.has_weight ? ctx.input(1) : Tensor();
  RmsNormGrads r;
  if (GradMode::is_enabled()) {
    r = rms_norm_backward_composite(g, x, w, attrs.eps, attrs.n, need_input, need_weight);
  } else {
    const ScalarType param_dtype = attrs.has_weight ? ctx.input_meta(1).dtype : x.dtype();
    std::tie(r.input, r.weight) = rms_norm_backward(g, x, ctx.output(1), w, param_dtype, attrs.n, need_input,
                                                    need_weight);
  }
  if (need_input) ctx.set_grad(0, r.input);
  if (need_weight) ctx.set_grad(1, reshape(r.weight, ctx.input_meta(1).sizes));
}

}  // namespace backward
}  // namespace ember
