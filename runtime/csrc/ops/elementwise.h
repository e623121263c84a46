#pragma once
// Elementwise frontends that accept Python numbers as operands. A number is a "wrapped number" for
// type promotion (Note [Type promotion] in elementwise.cpp): `int_tensor + 2.5` is float32 and
// `uint8_tensor + 1000` stays uint8. The bindings and C++ callers that hold a number use these;
// ops.h's Tensor-only frontends forward here.
#include <optional>

#include "dispatch/op_table.h"
#include "ops/ops.h"

namespace ember::ew {

// A tensor or a Python number (materialized as a 0-dim tensor of the compute dtype, on the
// device of the tensor operands, only when the op runs).
struct Operand {
  Tensor tensor;  // undefined for a number
  Scalar scalar;
  Operand(const Tensor& t) : tensor(t) {}  // NOLINT: implicit on purpose
  Operand(Scalar s) : scalar(s) {}         // NOLINT
  bool is_number() const { return !tensor.defined(); }
};

// torch.result_type over tensors (dimensioned beat 0-dim within a category) and numbers.
ScalarType result_type(std::initializer_list<const Operand*> operands);

Tensor add(const Operand& a, const Operand& b, Scalar alpha = int64_t{1});
Tensor sub(const Operand& a, const Operand& b, Scalar alpha = int64_t{1});
Tensor mul(const Operand& a, const Operand& b);
Tensor div(const Operand& a, const Operand& b);
Tensor floor_divide(const Operand& a, const Operand& b);
Tensor remainder(const Operand& a, const Operand& b);
Tensor pow(const Operand& a, const Operand& b);
Tensor maximum(const Operand& a, const Operand& b);
Tensor minimum(const Operand& a, const Operand& b);
Tensor lerp(const Tensor& a, const Tensor& end, const Operand& weight);
Tensor where(const Tensor& cond, const Operand& a, const Operand& b);
// Comparison/logical/bitwise ops by OpId (eq ne lt le gt ge logical_and/or/xor bitwise_and/or/xor).
Tensor binary(OpId id, const Operand& a, const Operand& b);

// In-place: self op= other; the result type must be castable to self's dtype.
Tensor& inplace(OpId id, Tensor& self, const Operand& other, Scalar alpha = int64_t{1});

// Unary ops by OpId with their attrs (gelu flag, softplus beta/threshold, clamp bounds, ...);
// unary_inplace errors when the result can't be cast to self's dtype (exp_ on an int tensor).
Tensor unary(OpId id, const Tensor& x, const Attrs& attrs = Attrs());
Tensor& unary_inplace(OpId id, Tensor& self, const Attrs& attrs = Attrs());
Tensor clamp(const Tensor& x, const std::optional<Operand>& min, const std::optional<Operand>& max);
// Fused single-pass activation backward (Note [Fused activation backward], elementwise_unary.cpp):
// id is one of tanh/sigmoid/relu_backward (saved = output) or gelu/silu_backward (saved = input).
bool can_fuse_activation_backward(const Tensor& grad, const Tensor& saved);
Tensor activation_backward(OpId id, const Tensor& grad, const Tensor& saved, bool tanh_approximation = false);

// torch's short dtype names ("Float", "Long") for messages that match torch's.
const char* torch_type_name(ScalarType t);
bool can_cast(ScalarType from, ScalarType to);

}  // namespace ember::ew
