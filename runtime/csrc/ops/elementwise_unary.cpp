// Unary elementwise frontends (math, activations, predicates) and clamp / nan_to_num.
// Dtype rules follow torch: float-valued math on integer inputs computes in float32; activations
// (gelu, silu, softplus, leaky_relu) need float inputs; predicates return bool.
#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "dispatch/dispatcher.h"
#include "ops/elementwise.h"

namespace ember {
namespace ew {
namespace {

using S = ScalarType;

enum class UnaryKind {
  Same,        // result has the input's dtype (numeric, no bool)
  SameAny,     // result has the input's dtype, bool allowed
  ToFloat,     // integer inputs compute in float32
  FloatOnly,   // float inputs only
  Integral,    // int/bool inputs only, same dtype
  Predicate,   // bool result
};

UnaryKind kind_of(OpId id) {
  switch (id) {
    case OpId::neg: case OpId::abs: case OpId::relu: case OpId::floor: case OpId::ceil: case OpId::round:
    case OpId::trunc: case OpId::nan_to_num:
      return UnaryKind::Same;
    case OpId::sign: return UnaryKind::SameAny;
    case OpId::gelu: case OpId::silu: case OpId::softplus: case OpId::leaky_relu: return UnaryKind::FloatOnly;
    case OpId::bitwise_not: return UnaryKind::Integral;
    case OpId::isnan: case OpId::isinf: case OpId::isfinite: case OpId::logical_not: return UnaryKind::Predicate;
    default: return UnaryKind::ToFloat;
  }
}

// (compute dtype, output dtype) of a unary op on `in`.
std::pair<S, S> unary_types(OpId id, S in) {
  const char* name = op_def(id).name;
  switch (kind_of(id)) {
    case UnaryKind::Same:
      if (id == OpId::neg)
        EMBER_CHECK(in != S::Bool, "[neg] Negation, the `-` operator, on a bool tensor is not supported. If you "
                    "are trying to invert a mask, use the `~` or `logical_not()` operator instead.");
      EMBER_CHECK_TYPE(in != S::Bool, "[", name, "] not implemented for 'Bool'");
      return {in, in};
    case UnaryKind::SameAny: return {in, in};
    case UnaryKind::ToFloat: return {to_float_type(in), to_float_type(in)};
    case UnaryKind::FloatOnly:
      EMBER_CHECK_TYPE(is_floating(in), "[", name, "] not implemented for '", torch_type_name(in),
                       "' (expected a floating point tensor)");
      return {in, in};
    case UnaryKind::Integral:
      EMBER_CHECK_TYPE(is_integral(in, true), "[", name, "] not implemented for '", torch_type_name(in),
                       "' (bitwise ops need integer or bool tensors)");
      return {in, in};
    case UnaryKind::Predicate: return {in, S::Bool};
  }
  return {in, in};
}

}  // namespace

Tensor unary(OpId id, const Tensor& x, const Attrs& attrs_in) {
  const auto [ct, ot] = unary_types(id, x.dtype());
  Attrs attrs = attrs_in;
  attrs.dtype = ct;
  Tensor out = Tensor::empty(x.sizes(), ot, x.device());
  return dispatch1(id, {x}, out, attrs);
}

Tensor& unary_inplace(OpId id, Tensor& self, const Attrs& attrs_in) {
  const auto [ct, ot] = unary_types(id, self.dtype());
  EMBER_CHECK(can_cast(ot, self.dtype()), "[", op_def(id).name, "_] result type ", torch_type_name(ot),
              " can't be cast to the desired output type ", torch_type_name(self.dtype()));
  Attrs attrs = attrs_in;
  attrs.dtype = self.dtype();
  Tensor out = self;
  dispatch(id, std::span<const Tensor>(&self, 1), std::span<Tensor>(&out, 1), attrs);
  return self;
}

Tensor clamp(const Tensor& x, const std::optional<Operand>& min, const std::optional<Operand>& max) {
  EMBER_CHECK(min || max, "[clamp] At least one of 'min' or 'max' must not be None");
  if ((min && !min->is_number()) || (max && !max->is_number())) {
    // Tensor bounds: compose (autograd flows to the bounds too, as in torch).
    Tensor r = x;
    if (min) r = maximum(r, *min);
    if (max) r = minimum(r, *max);
    return r;
  }
  const Operand xo(x);
  S rt;
  if (min && max) rt = result_type({&xo, &*min, &*max});
  else rt = result_type({&xo, min ? &*min : &*max});
  EMBER_CHECK_TYPE(rt != S::Bool, "[clamp] not implemented for 'Bool'");
  Attrs attrs;
  attrs.dtype = rt;
  if (min) { attrs.scalar = min->scalar; attrs.has_scalar = true; }
  if (max) { attrs.scalar2 = max->scalar; attrs.has_scalar2 = true; }
  Tensor out = Tensor::empty(x.sizes(), rt, x.device());
  return dispatch1(OpId::clamp, {x}, out, attrs);
}

// Note [Fused activation backward]
// tanh/sigmoid/relu/gelu/silu_backward compute an activation's input gradient in one pass (CPU
// kernels and CUDA kernels in cuda/elementwise_backward.cu; not differentiable themselves). The
// backward rules use them only when no graph is being recorded (create_graph=False) and grad and
// the saved tensor share shape, float dtype and device; otherwise they run the composite
// (differentiable) formula.
bool can_fuse_activation_backward(const Tensor& grad, const Tensor& saved) {
  return !GradMode::is_enabled() && grad.defined() && saved.defined() && grad.device() == saved.device() &&
         grad.dtype() == saved.dtype() && is_floating(saved.dtype()) && grad.sizes() == saved.sizes();
}

Tensor activation_backward(OpId id, const Tensor& grad, const Tensor& saved, bool tanh_approximation) {
  EMBER_CHECK(can_fuse_activation_backward(grad, saved), "[", op_def(id).name,
              "] expects grad and saved tensors of one shape, float dtype and device, outside grad mode; got ",
              describe(grad), " and ", describe(saved));
  Attrs attrs;
  attrs.flag = tanh_approximation;
  attrs.dtype = saved.dtype();
  Tensor out = Tensor::empty(saved.sizes(), saved.dtype(), saved.device());
  return dispatch1(id, {grad, saved}, out, attrs);
}

}  // namespace ew

using ew::unary;

Tensor neg(const Tensor& x) { return unary(OpId::neg, x); }
Tensor abs(const Tensor& x) { return unary(OpId::abs, x); }
Tensor sign(const Tensor& x) { return unary(OpId::sign, x); }
Tensor exp(const Tensor& x) { return unary(OpId::exp, x); }
Tensor exp2(const Tensor& x) { return unary(OpId::exp2, x); }
Tensor expm1(const Tensor& x) { return unary(OpId::expm1, x); }
Tensor log(const Tensor& x) { return unary(OpId::log, x); }
Tensor log2(const Tensor& x) { return unary(OpId::log2, x); }
Tensor log1p(const Tensor& x) { return unary(OpId::log1p, x); }
Tensor sqrt(const Tensor& x) { return unary(OpId::sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary(OpId::rsqrt, x); }
Tensor sin(const Tensor& x) { return unary(OpId::sin, x); }
Tensor cos(const Tensor& x) { return unary(OpId::cos, x); }
Tensor tan(const Tensor& x) { return unary(OpId::tan, x); }
Tensor tanh(const Tensor& x) { return unary(OpId::tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary(OpId::sigmoid, x); }
Tensor relu(const Tensor& x) { return unary(OpId::relu, x); }
Tensor erf(const Tensor& x) { return unary(OpId::erf, x); }
Tensor floor(const Tensor& x) { return unary(OpId::floor, x); }
Tensor ceil(const Tensor& x) { return unary(OpId::ceil, x); }
Tensor round(const Tensor& x) { return unary(OpId::round, x); }
Tensor trunc(const Tensor& x) { return unary(OpId::trunc, x); }
Tensor silu(const Tensor& x) { return unary(OpId::silu, x); }
Tensor isnan(const Tensor& x) { return unary(OpId::isnan, x); }
Tensor isinf(const Tensor& x) { return unary(OpId::isinf, x); }
Tensor isfinite(const Tensor& x) { return unary(OpId::isfinite, x); }
Tensor logical_not(const Tensor& x) { return unary(OpId::logical_not, x); }
Tensor bitwise_not(const Tensor& x) { return unary(OpId::bitwise_not, x); }

Tensor gelu(const Tensor& x, bool tanh_approximation) {
  Attrs attrs;
  attrs.flag = tanh_approximation;
  return unary(OpId::gelu, x, attrs);
}

Tensor softplus(const Tensor& x, Scalar beta, Scalar threshold) {
  Attrs attrs;
  attrs.scalar = beta;
  attrs.scalar2 = threshold;
  return unary(OpId::softplus, x, attrs);
}

Tensor leaky_relu(const Tensor& x, Scalar negative_slope) {
  Attrs attrs;
  attrs.scalar = negative_slope;
  return unary(OpId::leaky_relu, x, attrs);
}

Tensor nan_to_num(const Tensor& x, std::optional<double> nan, std::optional<double> posinf,
                  std::optional<double> neginf) {
  double hi = std::numeric_limits<double>::max();
  switch (x.dtype()) {
    case ScalarType::Float16: hi = 65504.0; break;
    case ScalarType::BFloat16: hi = static_cast<float>(std::numeric_limits<BFloat16>::max()); break;
    case ScalarType::Float32: hi = std::numeric_limits<float>::max(); break;
    default: break;
  }
  Attrs attrs;
  attrs.scalar = Scalar(nan.value_or(0.0));
  attrs.scalar2 = Scalar(posinf.value_or(hi));
  attrs.alpha = Scalar(neginf.value_or(-hi));
  if (x.dtype() == ScalarType::Bool) return clone(x);
  return unary(OpId::nan_to_num, x, attrs);
}

Tensor square(const Tensor& x) { return ew::pow(x, Scalar(int64_t{2})); }
Tensor reciprocal(const Tensor& x) { return ew::div(Scalar(int64_t{1}), x); }

Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max) {
  std::optional<ew::Operand> lo, hi;
  if (min) lo.emplace(*min);
  if (max) hi.emplace(*max);
  return ew::clamp(x, lo, hi);
}
Tensor clamp_min(const Tensor& x, Scalar min) { return clamp(x, min, std::nullopt); }
Tensor clamp_max(const Tensor& x, Scalar max) { return clamp(x, std::nullopt, max); }

Tensor& clamp_(Tensor& self, std::optional<Scalar> min, std::optional<Scalar> max) {
  EMBER_CHECK(min || max, "[clamp_] At least one of 'min' or 'max' must not be None");
  const ew::Operand so(self);
  std::optional<ew::Operand> lo, hi;
  if (min) lo.emplace(*min);
  if (max) hi.emplace(*max);
  ScalarType rt = lo && hi ? ew::result_type({&so, &*lo, &*hi}) : ew::result_type({&so, lo ? &*lo : &*hi});
  EMBER_CHECK(ew::can_cast(rt, self.dtype()), "[clamp_] result type ", ew::torch_type_name(rt),
              " can't be cast to the desired output type ", ew::torch_type_name(self.dtype()));
  EMBER_CHECK_TYPE(rt != ScalarType::Bool, "[clamp_] not implemented for 'Bool'");
  Attrs attrs;
  attrs.dtype = self.dtype();
  if (min) { attrs.scalar = *min; attrs.has_scalar = true; }
  if (max) { attrs.scalar2 = *max; attrs.has_scalar2 = true; }
  Tensor out = self;
  dispatch(OpId::clamp, std::span<const Tensor>(&self, 1), std::span<Tensor>(&out, 1), attrs);
  return self;
}

}  // namespace ember
