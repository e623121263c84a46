// Frontends and backward rules of the fused normalization ops (layer_norm). Kernels: cpu/norm.cpp,
// cuda/norm.cu. The input is made contiguous and seen as [rows, N] with N = prod(normalized_shape).
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

// Checks the arguments like torch's _check_layer_norm_inputs; returns the number of rows.
int64_t check_layer_norm_args(const Tensor& x, IntSpan normalized_shape, const Tensor& weight, const Tensor& bias) {
  const DimVector ns(normalized_shape.begin(), normalized_shape.end());
  const int64_t k = static_cast<int64_t>(ns.size());
  EMBER_CHECK(k >= 1, "[layer_norm] Expected normalized_shape to be at least 1-dimensional, i.e., containing at "
              "least one element, but got normalized_shape = ", ns);
  for (const auto& [t, what] : {std::pair{&weight, "weight"}, std::pair{&bias, "bias"}}) {
    if (!t->defined()) continue;
    EMBER_CHECK(t->sizes() == ns, "[layer_norm] Expected ", what, " to be of same shape as normalized_shape, but got ",
                what, " of shape ", t->sizes(), " and normalized_shape = ", ns);
  }
  const int64_t nd = x.dim();
  bool match = nd >= k;
  for (int64_t i = 0; match && i < k; ++i) match = x.sizes()[nd - k + i] == ns[i];
  if (!match) {
    std::string trailing;
    for (int64_t i = 0; i < k; ++i) trailing += ", " + std::to_string(ns[i]);
    fail(ErrorKind::Runtime, "[layer_norm] Given normalized_shape=", ns, ", expected input with shape [*", trailing,
         "], but got input of size", x.sizes());
  }
  EMBER_CHECK_KIND(is_floating(x.dtype()), ErrorKind::NotImplemented, "[layer_norm] not implemented for '",
                   torch_type_name(x.dtype()), "' (input ", describe(x), ")");
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
  int64_t rows = 1;
  for (int64_t i = 0; i < nd - k; ++i) rows *= x.sizes()[i];
  return rows;
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
  // Like torch, mean/rstd come back shaped [*leading dims, 1, ...] and are not differentiable:
  // detached aliases of the saved statistics (an in-place change still trips the version check).
  DimVector keep(x.sizes().begin(), x.sizes().end());
  for (size_t i = keep.size() - normalized_shape.size(); i < keep.size(); ++i) keep[i] = 1;
  auto detached = [&](const Tensor& s) {
    return Tensor::make(s.storage(), keep, contiguous_strides(keep), s.storage_offset(), s.dtype());
  };
  return {outs[0], detached(outs[1]), detached(outs[2])};
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

}  // namespace backward
}  // namespace ember
