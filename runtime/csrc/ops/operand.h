#pragma once
// A tensor or a Python number as an op argument. A number is a "wrapped number" for type promotion
// (Note [Type promotion], ops/elementwise.cpp): `int_tensor + 2.5` is float32 and `uint8_tensor +
// 1000` stays uint8. It becomes a 0-dim tensor of the compute dtype, on the device of the tensor
// operands, only when the op runs.
#include <type_traits>

#include "core/tensor.h"

namespace ember {

struct Operand {
  Tensor tensor;  // undefined for a number
  Scalar scalar;
  Operand(const Tensor& t) : tensor(t) {}  // NOLINT: implicit on purpose, like torch's Scalar/Tensor args
  Operand(Scalar s) : scalar(s) {}         // NOLINT
  template <typename N, typename = std::enable_if_t<std::is_arithmetic_v<N>>>
  Operand(N n) : scalar(n) {}              // NOLINT: mul(x, 0.5), where(c, g, 0)
  bool is_number() const { return !tensor.defined(); }
};

}  // namespace ember
