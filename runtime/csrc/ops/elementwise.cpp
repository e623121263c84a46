// Elementwise frontends: type promotion, broadcasting, in-place rules, copies and conversions.
// Backward rules live in elementwise_backward.cpp; CPU kernels in cpu/elementwise_*.cpp.
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
#include "dispatch/dispatcher.h"

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

}  // namespace

const char* torch_type_name(S t) {
  switch (t) {
    case S::Bool: return "Bool";
    case S::UInt8: return "Byte";
    case S::Int8: return "Char";
    case S::Int32: return "Int";
    case S::Int64: return "Long";
    case S::Float16: return "Half";
    case S::BFloat16: return "BFloat16";
    case S::Float32: return "Float";
    case S::Float64: return "Double";
  }
  return "?";
}

// torch.can_cast: no float -> integral, no non-bool -> bool.
bool can_cast(S from, S to) {
  if (is_floating(from) && !is_floating(to)) return false;
  if (from != S::Bool && to == S::Bool) return false;
  return true;
}

namespace {

const Tensor* first_tensor(std::initializer_list<const Operand*> ops) {
  for (const Operand* o : ops)
    if (!o->is_number()) return &o->tensor;
  return nullptr;
}

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

Tensor materialize(const Operand& o, S dtype, Device device) {
  return o.is_number() ? number_tensor(o.scalar, dtype, device) : o.tensor;
}

DimVector out_shape(const Tensor& a, const Tensor& b, const char* name) {
  if (a.sizes() == b.sizes()) return a.sizes();
  return broadcast_shapes(a.sizes(), b.sizes(), name);
}

// Runs a binary op: compute dtype `ct`, output dtype `out_dtype`.
Tensor run_binary(OpId id, const Operand& a, const Operand& b, S ct, S out_dtype, Attrs attrs = Attrs()) {
  const Tensor* any = first_tensor({&a, &b});
  EMBER_CHECK(any != nullptr, "[", op_def(id).name, "] expected at least one tensor operand");
  const Device dev = any->device();
  const Tensor ta = materialize(a, ct, dev), tb = materialize(b, ct, dev);
  Tensor out = Tensor::empty(out_shape(ta, tb, op_def(id).name), out_dtype, dev);
  attrs.dtype = ct;
  return dispatch1(id, {ta, tb}, out, attrs);
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

void check_integral(OpId id, S t) {
  EMBER_CHECK_TYPE(is_integral(t, true), "[", op_def(id).name, "] \"", op_def(id).name,
                   "_cpu\" not implemented for '", torch_type_name(t), "' (bitwise ops need integer or bool tensors)");
}

}  // namespace

ScalarType result_type(std::initializer_list<const Operand*> operands) {
  std::optional<S> dim, zero, wrapped;
  for (const Operand* o : operands) {
    if (o->is_number()) wrapped = promote_opt(wrapped, number_type(o->scalar));
    else if (o->tensor.dim() > 0) dim = promote_opt(dim, o->tensor.dtype());
    else zero = promote_opt(zero, o->tensor.dtype());
  }
  return *combine(dim, combine(zero, wrapped));
}

Tensor add(const Operand& a, const Operand& b, Scalar alpha) {
  const S rt = result_type({&a, &b});
  EMBER_CHECK(!(alpha.is_float() && !is_floating(rt)),
              "[add] For integral input tensors, argument alpha must not be a floating point number.");
  Attrs attrs;
  attrs.alpha = alpha;
  return run_binary(OpId::add, a, b, rt, rt, attrs);
}

Tensor sub(const Operand& a, const Operand& b, Scalar alpha) {
  check_not_bool_sub(a, b, "sub");
  const S rt = result_type({&a, &b});
  EMBER_CHECK(!(alpha.is_float() && !is_floating(rt)),
              "[sub] For integral input tensors, argument alpha must not be a floating point number.");
  Attrs attrs;
  attrs.alpha = alpha;
  return run_binary(OpId::sub, a, b, rt, rt, attrs);
}

Tensor mul(const Operand& a, const Operand& b) {
  const S rt = result_type({&a, &b});
  return run_binary(OpId::mul, a, b, rt, rt);
}

Tensor div(const Operand& a, const Operand& b) {
  const S rt = to_float_type(result_type({&a, &b}));
  return run_binary(OpId::div, a, b, rt, rt);
}

Tensor floor_divide(const Operand& a, const Operand& b) {
  const S rt = result_type({&a, &b});
  EMBER_CHECK_TYPE(rt != S::Bool, "[floor_divide] not implemented for 'Bool'");
  return run_binary(OpId::floor_divide, a, b, rt, rt);
}

// a - floor(a / b) * b: the sign follows the divisor, like Python's % and torch.remainder.
Tensor remainder(const Operand& a, const Operand& b) {
  const S rt = result_type({&a, &b});
  const Tensor* any = first_tensor({&a, &b});
  EMBER_CHECK(any != nullptr, "[remainder] expected at least one tensor operand");
  const Tensor ta = materialize(a, rt, any->device()), tb = materialize(b, rt, any->device());
  return ember::sub(ta, ember::mul(floor_divide(Operand(ta), Operand(tb)), tb));
}

Tensor pow(const Operand& a, const Operand& b) {
  const S rt = result_type({&a, &b});
  EMBER_CHECK_TYPE(rt != S::Bool, "[pow] not implemented for 'Bool'");
  if (b.is_number() && !is_floating(rt)) {
    EMBER_CHECK(!(b.scalar.is_int() && b.scalar.to_int() < 0),
                "[pow] Integers to negative integer powers are not allowed.");
  }
  return run_binary(OpId::pow, a, b, rt, rt);
}

Tensor maximum(const Operand& a, const Operand& b) {
  const S rt = result_type({&a, &b});
  return run_binary(OpId::maximum, a, b, rt, rt);
}

Tensor minimum(const Operand& a, const Operand& b) {
  const S rt = result_type({&a, &b});
  return run_binary(OpId::minimum, a, b, rt, rt);
}

Tensor binary(OpId id, const Operand& a, const Operand& b) {
  const S rt = result_type({&a, &b});
  switch (id) {
    case OpId::bitwise_and: case OpId::bitwise_or: case OpId::bitwise_xor:
      check_integral(id, rt);
      return run_binary(id, a, b, rt, rt);
    case OpId::eq: case OpId::ne: case OpId::lt: case OpId::le: case OpId::gt: case OpId::ge:
    case OpId::logical_and: case OpId::logical_or: case OpId::logical_xor:
      return run_binary(id, a, b, rt, S::Bool);
    case OpId::add: return add(a, b);
    case OpId::sub: return sub(a, b);
    case OpId::mul: return mul(a, b);
    case OpId::div: return div(a, b);
    case OpId::floor_divide: return floor_divide(a, b);
    case OpId::pow: return pow(a, b);
    case OpId::maximum: return maximum(a, b);
    case OpId::minimum: return minimum(a, b);
    default: break;
  }
  fail(ErrorKind::Runtime, "[", op_def(id).name, "] is not a binary elementwise op");
}

Tensor lerp(const Tensor& a, const Tensor& end, const Operand& weight) {
  EMBER_CHECK_TYPE(is_floating(a.dtype()) && a.dtype() == end.dtype(), "[lerp] expected self and end to be "
                   "floating tensors of the same dtype, got ", describe(a), " and ", describe(end));
  const S ct = a.dtype();
  if (!weight.is_number())
    EMBER_CHECK_TYPE(weight.tensor.dtype() == ct, "[lerp] expected weight to have dtype ", dtype_name(ct),
                     ", got ", describe(weight.tensor));
  const Tensor w = materialize(weight, ct, a.device());
  DimVector shape = broadcast_shapes(broadcast_shapes(a.sizes(), end.sizes(), "lerp"), w.sizes(), "lerp");
  Tensor out = Tensor::empty(shape, ct, a.device());
  Attrs attrs;
  attrs.dtype = ct;
  return dispatch1(OpId::lerp, {a, end, w}, out, attrs);
}

Tensor where(const Tensor& cond, const Operand& a, const Operand& b) {
  EMBER_CHECK_TYPE(cond.dtype() == S::Bool, "[where] expected condition to be a bool tensor, got ", describe(cond));
  const S rt = result_type({&a, &b});
  const Tensor ta = materialize(a, rt, cond.device()), tb = materialize(b, rt, cond.device());
  DimVector shape = broadcast_shapes(broadcast_shapes(cond.sizes(), ta.sizes(), "where"), tb.sizes(), "where");
  Tensor out = Tensor::empty(shape, rt, cond.device());
  Attrs attrs;
  attrs.dtype = rt;
  return dispatch1(OpId::where, {cond, ta, tb}, out, attrs);
}

Tensor& inplace(OpId id, Tensor& self, const Operand& other, Scalar alpha) {
  const char* name = op_def(id).name;
  const Operand so(self);
  if (id == OpId::sub) check_not_bool_sub(so, other, "sub_");
  S rt = result_type({&so, &other});
  if (id == OpId::div) rt = to_float_type(rt);
  if (id == OpId::bitwise_and || id == OpId::bitwise_or || id == OpId::bitwise_xor) check_integral(id, rt);
  EMBER_CHECK(can_cast(rt, self.dtype()), "[", name, "_] result type ", torch_type_name(rt),
              " can't be cast to the desired output type ", torch_type_name(self.dtype()));
  if (id == OpId::pow && other.is_number() && !is_floating(self.dtype()))
    EMBER_CHECK(!(other.scalar.is_int() && other.scalar.to_int() < 0),
                "[pow_] Integers to negative integer powers are not allowed.");
  const S ct = self.dtype();
  const Tensor t = materialize(other, ct, self.device());
  if (!(t.sizes() == self.sizes())) {
    DimVector shape = broadcast_shapes(self.sizes(), t.sizes(), name);
    EMBER_CHECK(shape == self.sizes(), "[", name, "_] output with shape ", self.sizes(),
                " doesn't match the broadcast shape ", shape);
  }
  Attrs attrs;
  attrs.alpha = alpha;
  attrs.dtype = ct;
  Tensor out = self;
  dispatch(id, std::span<const Tensor>(std::array<Tensor, 2>{self, t}),
           std::span<Tensor>(&out, 1), attrs);
  return self;
}

}  // namespace ew

// ---- Tensor-only frontends (ops.h) --------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b, Scalar alpha) { return ew::add(a, b, alpha); }
Tensor sub(const Tensor& a, const Tensor& b, Scalar alpha) { return ew::sub(a, b, alpha); }
Tensor mul(const Tensor& a, const Tensor& b) { return ew::mul(a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return ew::div(a, b); }
Tensor add(const Tensor& a, Scalar b, Scalar alpha) { return ew::add(a, b, alpha); }
Tensor sub(const Tensor& a, Scalar b, Scalar alpha) { return ew::sub(a, b, alpha); }
Tensor mul(const Tensor& a, Scalar b) { return ew::mul(a, b); }
Tensor div(const Tensor& a, Scalar b) { return ew::div(a, b); }
Tensor floor_divide(const Tensor& a, const Tensor& b) { return ew::floor_divide(a, b); }
Tensor remainder(const Tensor& a, const Tensor& b) { return ew::remainder(a, b); }
Tensor pow(const Tensor& a, const Tensor& b) { return ew::pow(a, b); }
Tensor pow(const Tensor& a, Scalar exponent) { return ew::pow(a, exponent); }
Tensor maximum(const Tensor& a, const Tensor& b) { return ew::maximum(a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return ew::minimum(a, b); }
Tensor lerp(const Tensor& a, const Tensor& end, const Tensor& weight) { return ew::lerp(a, end, weight); }
Tensor lerp(const Tensor& a, const Tensor& end, Scalar weight) { return ew::lerp(a, end, weight); }
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) { return ew::where(cond, a, b); }
Tensor where(const Tensor& cond, const Tensor& a, Scalar b) { return ew::where(cond, a, b); }
Tensor eq(const Tensor& a, const Tensor& b) { return ew::binary(OpId::eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return ew::binary(OpId::ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return ew::binary(OpId::lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return ew::binary(OpId::le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return ew::binary(OpId::gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return ew::binary(OpId::ge, a, b); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return ew::binary(OpId::logical_and, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return ew::binary(OpId::logical_or, a, b); }
Tensor logical_xor(const Tensor& a, const Tensor& b) { return ew::binary(OpId::logical_xor, a, b); }
Tensor bitwise_and(const Tensor& a, const Tensor& b) { return ew::binary(OpId::bitwise_and, a, b); }
Tensor bitwise_or(const Tensor& a, const Tensor& b) { return ew::binary(OpId::bitwise_or, a, b); }
Tensor bitwise_xor(const Tensor& a, const Tensor& b) { return ew::binary(OpId::bitwise_xor, a, b); }

Tensor& add_(Tensor& self, const Tensor& other, Scalar alpha) { return ew::inplace(OpId::add, self, other, alpha); }
Tensor& add_(Tensor& self, Scalar other, Scalar alpha) { return ew::inplace(OpId::add, self, other, alpha); }
Tensor& sub_(Tensor& self, const Tensor& other, Scalar alpha) { return ew::inplace(OpId::sub, self, other, alpha); }
Tensor& mul_(Tensor& self, const Tensor& other) { return ew::inplace(OpId::mul, self, other); }
Tensor& mul_(Tensor& self, Scalar other) { return ew::inplace(OpId::mul, self, other); }
Tensor& div_(Tensor& self, const Tensor& other) { return ew::inplace(OpId::div, self, other); }

// ---- copies and conversions ---------------------------------------------------------------------

Tensor& copy_(Tensor& self, const Tensor& src) {
  if (self.device() != src.device()) {
    // With autograd involved, move first (to_device records ToDeviceBackward), then a same-device
    // copy_ records the copy, so gradients reach a source on the other device.
    if (GradMode::is_enabled() && (src.requires_grad() || self.requires_grad()))
      return copy_(self, to_device(src, self.device()));
    return copy_between_devices_(self, src);
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
  dispatch(OpId::copy, std::span<const Tensor>(std::array<Tensor, 2>{self, source}), std::span<Tensor>(&out, 1),
           Attrs());
  return self;
}

Tensor& fill_(Tensor& self, Scalar value) {
  Attrs attrs;
  attrs.scalar = value;
  Tensor out = self;
  dispatch(OpId::fill, std::span<const Tensor>(&self, 1), std::span<Tensor>(&out, 1), attrs);
  return self;
}

Tensor& zero_(Tensor& self) { return fill_(self, int64_t{0}); }

Tensor clone(const Tensor& x) {
  Tensor out = Tensor::empty(x.sizes(), x.dtype(), x.device());
  return dispatch1(OpId::copy, {x}, out);
}

Tensor contiguous(const Tensor& x) { return x.is_contiguous() ? x : clone(x); }

Tensor to_dtype(const Tensor& x, ScalarType dtype, bool copy) {
  if (dtype == x.dtype() && !copy) return x;
  Tensor out = Tensor::empty(x.sizes(), dtype, x.device());
  return dispatch1(OpId::copy, {x}, out);
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
Tensor& copy_between_devices_(Tensor& dst, const Tensor& src) { return copy_between_devices_(dst, src, false); }
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
