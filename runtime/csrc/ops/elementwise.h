#pragma once
// The dtype rules of the elementwise frontends (Note [Type promotion], Note [Elementwise compute
// dtype] in elementwise.cpp) and the generic frontends that apply them. Spec entries with
// `unary: <rule>` / `binary: <rule>` get generated frontends calling unary/binary below; the
// hand-written ones (add, div, pow, ...) use the same pieces.
#include <initializer_list>
#include <utility>

#include "dispatch/dispatcher.h"
#include "ops/ops.h"

namespace ember::ew {

enum class Unary {
  Same,       // result has the input's dtype (numeric, no bool)
  SameAny,    // result has the input's dtype, bool allowed
  ToFloat,    // integer inputs compute in float32
  FloatOnly,  // float inputs only
  Integral,   // int/bool inputs only, same dtype
  Predicate,  // bool result
};

enum class Binary {
  ResultType,  // torch.result_type of the operands
  NoBool,      // result_type, bool rejected
  ToFloat,     // result_type, integers computed in float32 (true division)
  BoolOut,     // computed in result_type, bool result (comparisons, logical ops)
  Integral,    // result_type, integer or bool only (bitwise ops)
  FloatOnly,   // result_type, which must be floating (torch's NotImplementedError otherwise)
};

// torch.result_type over tensors (dimensioned beat 0-dim within a category) and numbers.
ScalarType result_type(std::initializer_list<const Operand*> operands);
bool can_cast(ScalarType from, ScalarType to);

// (compute dtype, output dtype) of an op under a rule; raises a TypeError naming `op` when the
// rule rejects the dtype.
std::pair<ScalarType, ScalarType> unary_types(const char* op, Unary rule, ScalarType in);
std::pair<ScalarType, ScalarType> binary_types(const char* op, Binary rule, const Operand& a, const Operand& b);
// In place, self's dtype computes: checks that the rule's result type can be cast to it.
void check_inplace_cast(const char* op, ScalarType result, ScalarType self);

// A number as a 0-dim tensor of `dtype` on `device`; a tensor as itself.
Tensor materialize(const Operand& o, ScalarType dtype, Device device);
// The device of the first tensor operand (one must be a tensor).
Device operand_device(const char* op, const Operand& a, const Operand& b);
// The broadcast output shape of a binary op.
DimVector out_shape(const Tensor& a, const Tensor& b, const char* op);
// self op= other needs other broadcastable to self's shape, never the other way round.
void check_inplace_shape(const char* op, const Tensor& self, const Tensor& other);

template <OpId id>
Tensor unary(const Tensor& x, Unary rule, AttrsOf<id> attrs) {
  const auto [ct, ot] = unary_types(op_def(id).name, rule, x.dtype());
  attrs.dtype = ct;
  return dispatch1<id>({x}, Tensor::empty(x.sizes(), ot, x.device()), attrs);
}

template <OpId id>
Tensor& unary_(Tensor& self, Unary rule, AttrsOf<id> attrs) {
  const auto [ct, ot] = unary_types(op_def(id).name, rule, self.dtype());
  check_inplace_cast(op_def(id).name, ot, self.dtype());
  attrs.dtype = self.dtype();
  Tensor out = self;
  dispatch<id>(std::span<const Tensor>(&self, 1), std::span<Tensor>(&out, 1), attrs);
  return self;
}

// Runs a binary op computing in `ct` with an output of `out_dtype`.
template <OpId id>
Tensor run_binary(const Operand& a, const Operand& b, ScalarType ct, ScalarType out_dtype, AttrsOf<id> attrs) {
  const char* name = op_def(id).name;
  const Device dev = operand_device(name, a, b);
  const Tensor ta = materialize(a, ct, dev), tb = materialize(b, ct, dev);
  attrs.dtype = ct;
  return dispatch1<id>({ta, tb}, Tensor::empty(out_shape(ta, tb, name), out_dtype, dev), attrs);
}

template <OpId id>
Tensor binary(const Operand& a, const Operand& b, Binary rule, AttrsOf<id> attrs) {
  const auto [ct, ot] = binary_types(op_def(id).name, rule, a, b);
  return run_binary<id>(a, b, ct, ot, attrs);
}

// self op= other, computed in self's dtype; `result` is the type the out-of-place op would give.
template <OpId id>
Tensor& run_inplace(Tensor& self, const Operand& other, ScalarType result, AttrsOf<id> attrs) {
  const char* name = op_def(id).name;
  check_inplace_cast(name, result, self.dtype());
  const Tensor t = materialize(other, self.dtype(), self.device());
  check_inplace_shape(name, self, t);
  attrs.dtype = self.dtype();
  Tensor out = self;
  dispatch<id>(std::array<Tensor, 2>{self, t}, std::span<Tensor>(&out, 1), attrs);
  return self;
}

template <OpId id>
Tensor& binary_(Tensor& self, const Operand& other, Binary rule, AttrsOf<id> attrs) {
  const auto [ct, ot] = binary_types(op_def(id).name, rule, Operand(self), other);
  return run_inplace<id>(self, other, ot, attrs);
}

// Note [Fused activation backward] (elementwise_unary.cpp): whether the single-pass kernel may run.
bool can_fuse_activation_backward(const Tensor& grad, const Tensor& saved);

template <OpId id>
Tensor activation_backward(const Tensor& grad, const Tensor& saved, AttrsOf<id> attrs) {
  EMBER_CHECK(can_fuse_activation_backward(grad, saved), "[", op_def(id).name,
              "] expects grad and saved tensors of one shape, float dtype and device, outside grad mode; got ",
              describe(grad), " and ", describe(saved));
  attrs.dtype = saved.dtype();
  return dispatch1<id>({grad, saved}, Tensor::empty(saved.sizes(), saved.dtype(), saved.device()), attrs);
}

}  // namespace ember::ew
