// Unary elementwise frontends that need more than a dtype rule (clamp, gelu, nan_to_num), the
// composites square/reciprocal, and the fused activation backward ops. The uniform unary ops
// (exp, sin, relu, ...) have generated frontends (spec `unary:`, ops/elementwise.h).
#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "ops/elementwise.h"

namespace ember {

// ---- clamp -----------------------------------------------------------------------------------------

namespace {

// Result type of clamp's operands (torch's promotion over self and the given bounds).
ScalarType clamp_type(const Tensor& x, const std::optional<Operand>& min, const std::optional<Operand>& max,
                      const char* op) {
  EMBER_CHECK(min || max, "[", op, "] At least one of 'min' or 'max' must not be None");
  const Operand xo(x);
  const ScalarType rt = min && max ? ew::result_type({&xo, &*min, &*max}) : ew::result_type({&xo, min ? &*min : &*max});
  EMBER_CHECK_TYPE(rt != ScalarType::Bool, "[", op, "] not implemented for 'Bool'");
  return rt;
}

bool tensor_bound(const std::optional<Operand>& b) { return b && !b->is_number(); }
std::optional<Scalar> number_of(const std::optional<Operand>& b) {
  return b ? std::optional<Scalar>(b->scalar) : std::nullopt;
}

}  // namespace

Tensor clamp(const Tensor& self, const std::optional<Operand>& min, const std::optional<Operand>& max) {
  EMBER_CHECK(min || max, "[clamp] At least one of 'min' or 'max' must not be None");
  if (tensor_bound(min) || tensor_bound(max)) {
    // Tensor bounds: compose (autograd flows to the bounds too, as in torch).
    Tensor r = self;
    if (min) r = maximum(r, *min);
    if (max) r = minimum(r, *max);
    return r;
  }
  const ScalarType rt = clamp_type(self, min, max, "clamp");
  return dispatch1<OpId::clamp>({self}, Tensor::empty(self.sizes(), rt, self.device()),
                                {.dtype = rt, .min = number_of(min), .max = number_of(max)});
}

Tensor& clamp_(Tensor& self, const std::optional<Operand>& min, const std::optional<Operand>& max) {
  if (tensor_bound(min) || tensor_bound(max)) return copy_(self, clamp(self, min, max));
  const ScalarType rt = clamp_type(self, min, max, "clamp_");
  ew::check_inplace_cast("clamp", rt, self.dtype());
  Tensor out = self;
  dispatch<OpId::clamp>(std::span<const Tensor>(&self, 1), std::span<Tensor>(&out, 1),
                        {.dtype = self.dtype(), .min = number_of(min), .max = number_of(max)});
  return self;
}

Tensor clamp_min(const Tensor& self, const Operand& min) { return clamp(self, min, std::nullopt); }
Tensor clamp_max(const Tensor& self, const Operand& max) { return clamp(self, std::nullopt, max); }
Tensor& clamp_min_(Tensor& self, const Operand& min) { return clamp_(self, min, std::nullopt); }
Tensor& clamp_max_(Tensor& self, const Operand& max) { return clamp_(self, std::nullopt, max); }

// ---- gelu, nan_to_num, composites ---------------------------------------------------------------------

namespace {
bool gelu_tanh(std::string_view approximate) {
  EMBER_CHECK_VALUE(approximate == "none" || approximate == "tanh", "[gelu] approximate argument must be either "
                    "none or tanh, got '", approximate, "'");
  return approximate == "tanh";
}
}  // namespace

Tensor gelu(const Tensor& self, std::string_view approximate) {
  return ew::unary<OpId::gelu>(self, ew::Unary::FloatOnly, {.tanh = gelu_tanh(approximate)});
}

Tensor nan_to_num(const Tensor& self, std::optional<double> nan, std::optional<double> posinf,
                  std::optional<double> neginf) {
  if (self.dtype() == ScalarType::Bool) return clone(self);
  double hi = std::numeric_limits<double>::max();
  switch (self.dtype()) {
    case ScalarType::Float16: hi = 65504.0; break;
    case ScalarType::BFloat16: hi = static_cast<float>(std::numeric_limits<BFloat16>::max()); break;
    case ScalarType::Float32: hi = std::numeric_limits<float>::max(); break;
    default: break;
  }
  return ew::unary<OpId::nan_to_num>(
      self, ew::Unary::Same, {.nan = nan.value_or(0.0), .posinf = posinf.value_or(hi), .neginf = neginf.value_or(-hi)});
}

Tensor square(const Tensor& self) { return pow(self, int64_t{2}); }
Tensor reciprocal(const Tensor& self) { return div(int64_t{1}, self); }

// ---- fused activation backward -----------------------------------------------------------------------

// Note [Fused activation backward]
// tanh/sigmoid/relu/gelu/silu_backward compute an activation's input gradient in one pass (kernels
// generated from pointwise/functors.h; not differentiable themselves). The backward rules use them
// only when no graph is being recorded (create_graph=False) and grad and the saved tensor share
// shape, float dtype and device; otherwise they run the composite (differentiable) formula.
bool ew::can_fuse_activation_backward(const Tensor& grad, const Tensor& saved) {
  return !GradMode::is_enabled() && grad.defined() && saved.defined() && grad.device() == saved.device() &&
         grad.dtype() == saved.dtype() && is_floating(saved.dtype()) && grad.sizes() == saved.sizes();
}

Tensor tanh_backward(const Tensor& grad, const Tensor& output) {
  return ew::activation_backward<OpId::tanh_backward>(grad, output, {});
}
Tensor sigmoid_backward(const Tensor& grad, const Tensor& output) {
  return ew::activation_backward<OpId::sigmoid_backward>(grad, output, {});
}
Tensor relu_backward(const Tensor& grad, const Tensor& output) {
  return ew::activation_backward<OpId::relu_backward>(grad, output, {});
}
Tensor silu_backward(const Tensor& grad, const Tensor& self) {
  return ew::activation_backward<OpId::silu_backward>(grad, self, {});
}
Tensor gelu_backward(const Tensor& grad, const Tensor& self, std::string_view approximate) {
  return ew::activation_backward<OpId::gelu_backward>(grad, self, {.tanh = gelu_tanh(approximate)});
}

}  // namespace ember
