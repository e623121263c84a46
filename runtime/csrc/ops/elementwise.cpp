// Elementwise frontends: type promotion, broadcasting, in-place rules, copies and conversions.
// Spec: runtime/spec/elementwise.yaml (uniform unary/binary frontends are generated from it);
// backward rules: elementwise_backward.cpp or formulas in the spec; kernels: pointwise/functors.h.
//
// Note [Elementwise compute dtype]
// Frontends put the dtype the op computes in into attrs.dtype. Kernels convert their inputs to it
// (inputs keep their own dtypes in the dispatch call so autograd sees the real inputs), and write
// an output of that dtype -- except comparisons, logical ops and isnan/isinf/isfinite, which write
// bool. In-place ops compute in self's dtype.
//
// Note [Type promotion]
// torch.result_type: operands fall in three priority tiers -- dimensioned tensors, 0-dim tensors,
// Python numbers ("wrapped numbers", whose float kind means the default dtype float32). A lower
// tier only matters when it is of a higher category (bool < integer < floating): int32[3] + 2.5
// -> float32, float16[3] + float32[] -> float16, uint8[3] + 1000 -> uint8, bool[3] + 1 -> int64.
#include "ops/elementwise.h"

#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "autograd/node.h"

namespace ember {
namespace ew {
namespace {

using S = ScalarType;

// The category combination of torch's ResultTypeState (c10 combine_categories).
std::optional<S> combine(std::optional<S> higher, std::optional<S> lower) {
  if (!higher) return lower;
  if (!lower) return higher;
  if (is_floating(*higher)) return higher;
  if (*higher == S::Bool || is_floating(*lower)) return promote_types(*higher, *lower);
  return higher;
}

std::optional<S> promote_opt(std::optional<S> a, S b) { return a ? promote_types(*a, b) : b; }

S number_type(const Scalar& s) { return s.is_float() ? default_float_type() : s.is_int() ? S::Int64 : S::Bool; }

// A 0-dim tensor holding `s` in `dtype` on `device`.
Tensor number_tensor(const Scalar& s, S dtype, Device device) {
  Tensor t = Tensor::empty({}, dtype, device);
  if (device.is_cpu()) {
    EMBER_DISPATCH_ALL(dtype, "scalar", ([&]<typename T>() { *t.data<T>() = s.to<T>(); }));
  } else {
    fill_(t, s);
  }
  return t;
}

void check_integral(const char* op, S t) {
  EMBER_CHECK_TYPE(is_integral(t, true), "[", op, "] \"", op, "_cpu\" not implemented for '", torch_type_name(t),
                   "' (bitwise ops need integer or bool tensors)");
}

// torch's sub_check: no bool operand at all (a bool number counts).
void check_not_bool_sub(const Operand& a, const Operand& b, const char* name) {
  const bool ab = a.is_number() ? a.scalar.is_bool() : a.tensor.dtype() == S::Bool;
  const bool bb = b.is_number() ? b.scalar.is_bool() : b.tensor.dtype() == S::Bool;
  EMBER_CHECK(!(ab && bb), "[", name, "] Subtraction, the `-` operator, with two bool tensors is not supported. "
              "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.");
  EMBER_CHECK(!(ab || bb), "[", name, "] Subtraction, the `-` operator, with a bool tensor is not supported. "
              "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.");
}

void check_alpha(const char* op, const Scalar& alpha, S rt) {
  EMBER_CHECK(!(alpha.is_float() && !is_floating(rt)), "[", op,
              "] For integral input tensors, argument alpha must not be a floating point number.");
}

void check_pow_exponent(const Operand& exponent, S rt, const char* op) {
  EMBER_CHECK_TYPE(rt != S::Bool, "[", op, "] not implemented for 'Bool'");
  if (exponent.is_number() && !is_floating(rt))
    EMBER_CHECK(!(exponent.scalar.is_int() && exponent.scalar.to_int() < 0),
                "[", op, "] Integers to negative integer powers are not allowed.");
}

}  // namespace

// torch.can_cast: no float -> integral, no non-bool -> bool.
bool can_cast(S from, S to) {
  if (is_floating(from) && !is_floating(to)) return false;
  if (from != S::Bool && to == S::Bool) return false;
  return true;
}

ScalarType result_type(std::initializer_list<const Operand*> operands) {
  std::optional<S> dim, zero, wrapped;
  for (const Operand* o : operands) {
    if (o->is_number()) wrapped = promote_opt(wrapped, number_type(o->scalar));
    else if (o->tensor.dim() > 0) dim = promote_opt(dim, o->tensor.dtype());
    else zero = promote_opt(zero, o->tensor.dtype());
  }
  return *combine(dim, combine(zero, wrapped));
}

std::pair<S, S> unary_types(const char* op, Unary rule, S in) {
  switch (rule) {
    case Unary::Same:
      if (std::string_view(op) == "neg")
        EMBER_CHECK(in != S::Bool, "[neg] Negation, the `-` operator, on a bool tensor is not supported. If you "
                    "are trying to invert a mask, use the `~` or `logical_not()` operator instead.");
      EMBER_CHECK_TYPE(in != S::Bool, "[", op, "] not implemented for 'Bool'");
      return {in, in};
    case Unary::SameAny: return {in, in};
    case Unary::ToFloat: return {to_float_type(in), to_float_type(in)};
    case Unary::FloatOnly:
      EMBER_CHECK_TYPE(is_floating(in), "[", op, "] not implemented for '", torch_type_name(in),
                       "' (expected a floating point tensor)");
      return {in, in};
    case Unary::Integral:
      EMBER_CHECK_TYPE(is_integral(in, true), "[", op, "] not implemented for '", torch_type_name(in),
                       "' (bitwise ops need integer or bool tensors)");
      return {in, in};
    case Unary::Predicate: return {in, S::Bool};
  }
  return {in, in};
}

std::pair<S, S> binary_types(const char* op, Binary rule, const Operand& a, const Operand& b) {
  const S rt = result_type({&a, &b});
  switch (rule) {
    case Binary::ResultType: return {rt, rt};
    case Binary::NoBool:
      EMBER_CHECK_TYPE(rt != S::Bool, "[", op, "] not implemented for 'Bool'");
      return {rt, rt};
    case Binary::ToFloat: return {to_float_type(rt), to_float_type(rt)};
    case Binary::BoolOut: return {rt, S::Bool};
    case Binary::Integral: check_integral(op, rt); return {rt, rt};
    case Binary::FloatOnly:
      EMBER_CHECK_KIND(is_floating(rt), ErrorKind::NotImplemented, "[", op, "] not implemented for '",
                       torch_type_name(rt), "' (expected floating point operands)");
      return {rt, rt};
  }
  return {rt, rt};
}

void check_inplace_cast(const char* op, S result, S self) {
  EMBER_CHECK(can_cast(result, self), "[", op, "_] result type ", torch_type_name(result),
              " can't be cast to the desired output type ", torch_type_name(self));
}

Tensor materialize(const Operand& o, S dtype, Device device) {
  return o.is_number() ? number_tensor(o.scalar, dtype, device) : o.tensor;
}

Device operand_device(const char* op, const Operand& a, const Operand& b) {
  EMBER_CHECK(!a.is_number() || !b.is_number(), "[", op, "] expected at least one tensor operand");
  return a.is_number() ? b.tensor.device() : a.tensor.device();
}

DimVector out_shape(const Tensor& a, const Tensor& b, const char* op) {
  if (a.sizes() == b.sizes()) return a.sizes();
  return broadcast_shapes(a.sizes(), b.sizes(), op);
}

void check_inplace_shape(const char* op, const Tensor& self, const Tensor& other) {
  if (other.sizes() == self.sizes()) return;
  DimVector shape = broadcast_shapes(self.sizes(), other.sizes(), op);
  EMBER_CHECK(shape == self.sizes(), "[", op, "_] output with shape ", self.sizes(),
              " doesn't match the broadcast shape ", shape);
}

}  // namespace ew

ScalarType result_type(const Operand& tensor, const Operand& other) { return ew::result_type({&tensor, &other}); }

Tensor add(const Operand& self, const Operand& other, Scalar alpha) {
  const ScalarType rt = ew::result_type({&self, &other});
  ew::check_alpha("add", alpha, rt);
  return ew::run_binary<OpId::add>(self, other, rt, rt, {.alpha = alpha});
}

Tensor& add_(Tensor& self, const Operand& other, Scalar alpha) {
  const Operand so(self);
  const ScalarType rt = ew::result_type({&so, &other});
  ew::check_alpha("add", alpha, rt);
  return ew::run_inplace<OpId::add>(self, other, rt, {.alpha = alpha});
}

Tensor sub(const Operand& self, const Operand& other, Scalar alpha) {
  ew::check_not_bool_sub(self, other, "sub");
  const ScalarType rt = ew::result_type({&self, &other});
  ew::check_alpha("sub", alpha, rt);
  return ew::run_binary<OpId::sub>(self, other, rt, rt, {.alpha = alpha});
}

Tensor& sub_(Tensor& self, const Operand& other, Scalar alpha) {
  const Operand so(self);
  ew::check_not_bool_sub(so, other, "sub_");
  const ScalarType rt = ew::result_type({&so, &other});
  ew::check_alpha("sub", alpha, rt);
  return ew::run_inplace<OpId::sub>(self, other, rt, {.alpha = alpha});
}

// torch.div's rounding_mode: none (true division), "trunc" or "floor".
Tensor div(const Operand& self, const Operand& other, std::optional<std::string_view> rounding_mode) {
  if (!rounding_mode) return ew::binary<OpId::div>(self, other, ew::Binary::ToFloat, {});
  if (*rounding_mode == "floor") return floor_divide(self, other);
  EMBER_CHECK_VALUE(*rounding_mode == "trunc", "[div] expected rounding_mode to be one of None, 'trunc', or "
                    "'floor' but found '", *rounding_mode, "'");
  const ScalarType rt = ew::result_type({&self, &other});
  if (is_floating(rt)) return trunc(div(self, other));
  // Integers: floor division (exact at any magnitude, ZeroDivisionError on a zero divisor, as torch)
  // moved one step toward zero where the division is inexact and the signs differ.
  const Device dev = ew::operand_device("div", self, other);
  const Tensor ta = ew::materialize(self, rt, dev), tb = ew::materialize(other, rt, dev);
  EMBER_CHECK_KIND(rt != ScalarType::Bool, ErrorKind::NotImplemented,
                   "[div] rounding_mode='trunc' not implemented for 'Bool'");
  const Tensor q = floor_divide(ta, tb);
  if (rt == ScalarType::UInt8) return q;
  const Tensor inexact = ne(sub(ta, mul(q, tb)), int64_t{0});
  return add(q, to_dtype(logical_and(inexact, ne(lt(ta, int64_t{0}), lt(tb, int64_t{0}))), rt));
}

Tensor& div_(Tensor& self, const Operand& other, std::optional<std::string_view> rounding_mode) {
  if (!rounding_mode) return ew::binary_<OpId::div>(self, other, ew::Binary::ToFloat, {});
  if (*rounding_mode == "floor") return floor_divide_(self, other);
  return copy_(self, div(self, other, rounding_mode));  // trunc: a composite, written back
}

// a - floor(a / b) * b: the sign follows the divisor, like Python's % and torch.remainder.
Tensor remainder(const Operand& self, const Operand& other) {
  const ScalarType rt = ew::result_type({&self, &other});
  const Device dev = ew::operand_device("remainder", self, other);
  const Tensor ta = ew::materialize(self, rt, dev), tb = ew::materialize(other, rt, dev);
  return sub(ta, mul(floor_divide(ta, tb), tb));
}

Tensor pow(const Operand& self, const Operand& exponent) {
  const ScalarType rt = ew::result_type({&self, &exponent});
  ew::check_pow_exponent(exponent, rt, "pow");
  return ew::run_binary<OpId::pow>(self, exponent, rt, rt, {});
}

Tensor& pow_(Tensor& self, const Operand& exponent) {
  const Operand so(self);
  const ScalarType rt = ew::result_type({&so, &exponent});
  EMBER_CHECK_TYPE(rt != ScalarType::Bool, "[pow_] not implemented for 'Bool'");
  if (!is_floating(self.dtype())) ew::check_pow_exponent(exponent, self.dtype(), "pow_");
  return ew::run_inplace<OpId::pow>(self, exponent, rt, {});
}

Tensor lerp(const Tensor& self, const Tensor& end, const Operand& weight) {
  EMBER_CHECK_TYPE(is_floating(self.dtype()) && self.dtype() == end.dtype(), "[lerp] expected self and end to be "
                   "floating tensors of the same dtype, got ", describe(self), " and ", describe(end));
  const ScalarType ct = self.dtype();
  if (!weight.is_number())
    EMBER_CHECK_TYPE(weight.tensor.dtype() == ct, "[lerp] expected weight to have dtype ", dtype_name(ct),
                     ", got ", describe(weight.tensor));
  const Tensor w = ew::materialize(weight, ct, self.device());
  DimVector shape = broadcast_shapes(broadcast_shapes(self.sizes(), end.sizes(), "lerp"), w.sizes(), "lerp");
  return dispatch1<OpId::lerp>({self, end, w}, Tensor::empty(shape, ct, self.device()), {.dtype = ct});
}

Tensor& lerp_(Tensor& self, const Tensor& end, const Operand& weight) { return copy_(self, lerp(self, end, weight)); }

Tensor where(const Tensor& condition, const Operand& self, const Operand& other) {
  EMBER_CHECK_TYPE(condition.dtype() == ScalarType::Bool, "[where] expected condition to be a bool tensor, got ",
                   describe(condition));
  const ScalarType rt = ew::result_type({&self, &other});
  const Tensor ta = ew::materialize(self, rt, condition.device()), tb = ew::materialize(other, rt, condition.device());
  DimVector shape =
      broadcast_shapes(broadcast_shapes(condition.sizes(), ta.sizes(), "where"), tb.sizes(), "where");
  return dispatch1<OpId::where>({condition, ta, tb}, Tensor::empty(shape, rt, condition.device()), {.dtype = rt});
}

// ---- copies and conversions ---------------------------------------------------------------------

Tensor& copy_(Tensor& self, const Tensor& src, bool non_blocking) {
  if (self.device() != src.device()) {
    // With autograd involved, move first (to_device records ToDeviceBackward), then a same-device
    // copy_ records the copy, so gradients reach a source on the other device.
    if (GradMode::is_enabled() && (src.requires_grad() || self.requires_grad()))
      return copy_(self, to_device(src, self.device(), non_blocking));
    return copy_between_devices_(self, src, non_blocking);
  }
  if (!(src.sizes() == self.sizes())) {
    bool ok = src.dim() <= self.dim();
    for (int64_t i = 0; ok && i < src.dim(); ++i) {
      const int64_t s = src.sizes()[src.dim() - 1 - i];
      ok = s == 1 || s == self.sizes()[self.dim() - 1 - i];
    }
    EMBER_CHECK(ok, "[copy_] source ", describe(src), " is not broadcastable to the destination shape ",
                self.sizes());
  }
  // A source sharing memory with self (x.copy_(x.t())) is read from a private copy first; an
  // identical view is a no-op copy and needs none.
  const bool same_view = src.data_ptr() == self.data_ptr() && src.sizes() == self.sizes() &&
                         src.strides() == self.strides() && src.dtype() == self.dtype();
  const Tensor source = (src.storage() == self.storage() && !same_view) ? clone(src) : src;
  Tensor out = self;
  dispatch<OpId::copy>(std::array<Tensor, 2>{self, source}, std::span<Tensor>(&out, 1));
  return self;
}

// A tensor value must be 0-dim; it is copied (so it may live on another device, as in torch).
Tensor& fill_(Tensor& self, const Operand& value) {
  if (!value.is_number()) {
    EMBER_CHECK(value.tensor.dim() == 0, "[fill_] only supports 0-dimension value tensor but got tensor with ",
                value.tensor.dim(), " dimensions.");
    return copy_(self, value.tensor);
  }
  Tensor out = self;
  dispatch<OpId::fill>(std::span<const Tensor>(&self, 1), std::span<Tensor>(&out, 1), {.value = value.scalar});
  return self;
}

Tensor& zero_(Tensor& self) { return fill_(self, int64_t{0}); }

Tensor clone(const Tensor& x) { return dispatch1<OpId::copy>({x}, Tensor::empty(x.sizes(), x.dtype(), x.device())); }

Tensor contiguous(const Tensor& x) { return x.is_contiguous() ? x : clone(x); }

// non_blocking: a pinned-host <-> device copy stays asynchronous on the current stream.
Tensor to(const Tensor& self, std::optional<Device> device, std::optional<ScalarType> dtype, bool non_blocking,
          bool copy) {
  Tensor r = device && *device != self.device() ? to_device(self, *device, non_blocking) : self;
  if (dtype) return to_dtype(r, *dtype, copy && r.is_same(self));
  return copy && r.is_same(self) ? clone(r) : r;
}

Tensor to_dtype(const Tensor& x, ScalarType dtype, bool copy) {
  if (dtype == x.dtype() && !copy) return x;
  return dispatch1<OpId::copy>({x}, Tensor::empty(x.sizes(), dtype, x.device()));
}

namespace {
// Gradient of a cross-device copy: the incoming gradient copied back to the source's device.
struct ToDeviceBackward final : Node {
  explicit ToDeviceBackward(Device source) : source(source) {}
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    if (!grads[0].defined()) return {Tensor()};
    return {to_device(grads[0], source)};
  }
  std::string name() const override { return "ToCopyBackward"; }
  Device source;
};
}  // namespace

// Cross-device copies go through copy_between_devices_ (the CUDA backend defines it).
#ifndef EMBER_WITH_CUDA
Tensor& copy_between_devices_(Tensor& dst, const Tensor& src, bool) {
  fail(ErrorKind::Runtime, "[copy_] cannot copy ", describe(src), " to ", dst.device(),
       ": ember was built without CUDA");
}
#endif

Tensor to_device(const Tensor& x, Device device, bool non_blocking) {
  if (device == x.device()) return x;
  Tensor out = Tensor::empty(x.sizes(), x.dtype(), device);
  {
    GradModeGuard no_grad(false);
    copy_between_devices_(out, x, non_blocking);
  }
  if (GradMode::is_enabled() && x.requires_grad()) {
    auto node = std::make_shared<ToDeviceBackward>(x.device());
    node->next_edges.push_back(gradient_edge(x));
    set_history(node, std::span<Tensor>(&out, 1));
  }
  return out;
}

}  // namespace ember
