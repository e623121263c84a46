#pragma once
// Dtypes, their C++ types, PyTorch's promotion lattice and the dtype dispatch macros.
#include <cstdint>
#include <string>

#include "error.h"
#include "half.h"

namespace ember {

enum class ScalarType : int8_t {
  Bool, UInt8, Int8, Int32, Int64, Float16, BFloat16, Float32, Float64,
};
constexpr int kNumScalarTypes = 9;

constexpr int64_t element_size(ScalarType t) {
  switch (t) {
    case ScalarType::Bool: case ScalarType::UInt8: case ScalarType::Int8: return 1;
    case ScalarType::Float16: case ScalarType::BFloat16: return 2;
    case ScalarType::Int32: case ScalarType::Float32: return 4;
    case ScalarType::Int64: case ScalarType::Float64: return 8;
  }
  return 0;
}
constexpr bool is_floating(ScalarType t) {
  return t == ScalarType::Float16 || t == ScalarType::BFloat16 || t == ScalarType::Float32 ||
         t == ScalarType::Float64;
}
constexpr bool is_integral(ScalarType t, bool include_bool) {
  return (include_bool && t == ScalarType::Bool) || t == ScalarType::UInt8 ||
         t == ScalarType::Int8 || t == ScalarType::Int32 || t == ScalarType::Int64;
}
// Torch's name without the "torch." prefix, e.g. "float32".
const char* dtype_name(ScalarType t);
// Torch's C++ type names ("Long", "Float") for torch-compatible error messages.
const char* torch_type_name(ScalarType t);
// promote_types(a, b): the smallest type both convert to (torch.promote_types).
ScalarType promote_types(ScalarType a, ScalarType b);
// Default float dtype for int inputs of float ops (torch.get_default_dtype()).
inline ScalarType default_float_type() { return ScalarType::Float32; }
// Float ops (exp, div, mean) on integer/bool inputs compute in the default float dtype.
inline ScalarType to_float_type(ScalarType t) { return is_floating(t) ? t : default_float_type(); }

template <typename T> struct CppTypeToScalar;
#define EMBER_FORALL_TYPES(_) \
  _(bool, Bool) _(uint8_t, UInt8) _(int8_t, Int8) _(int32_t, Int32) _(int64_t, Int64) \
  _(::ember::Half, Float16) _(::ember::BFloat16, BFloat16) _(float, Float32) _(double, Float64)
#define EMBER_DEFINE_TRAIT(cpp, name) \
  template <> struct CppTypeToScalar<cpp> { static constexpr ScalarType value = ScalarType::name; };
EMBER_FORALL_TYPES(EMBER_DEFINE_TRAIT)
#undef EMBER_DEFINE_TRAIT

// Arithmetic type used to compute on a stored type: half types compute in float.
template <typename T> struct OpMath { using type = T; };
template <> struct OpMath<Half> { using type = float; };
template <> struct OpMath<BFloat16> { using type = float; };
template <typename T> using opmath_t = typename OpMath<T>::type;

}  // namespace ember

// EMBER_DISPATCH_<SET>(dtype, "op", [&]<typename scalar_t>() { ... }) calls the lambda with the
// C++ type of `dtype`, or raises a TypeError naming the op when the dtype is not in the set.
#define EMBER_DTYPE_CASE(cpp, name) \
  case ::ember::ScalarType::name: return fn.template operator()<cpp>();

#define EMBER_DISPATCH_IMPL(dtype, opname, fn_, CASES)                                           \
  [&] {                                                                                          \
    auto&& fn = fn_;                                                                             \
    switch (dtype) {                                                                             \
      CASES(EMBER_DTYPE_CASE)                                                                    \
      default:                                                                                   \
        ::ember::fail(::ember::ErrorKind::Type, "[", opname, "] not implemented for dtype ",      \
                      ::ember::dtype_name(dtype));                                               \
    }                                                                                            \
  }()

#define EMBER_FLOAT_CASES(_) \
  _(float, Float32) _(double, Float64) _(::ember::Half, Float16) _(::ember::BFloat16, BFloat16)
#define EMBER_INT_CASES(_) _(uint8_t, UInt8) _(int8_t, Int8) _(int32_t, Int32) _(int64_t, Int64)
#define EMBER_NUMERIC_CASES(_) EMBER_FLOAT_CASES(_) EMBER_INT_CASES(_)
#define EMBER_INT_AND_BOOL_CASES(_) EMBER_INT_CASES(_) _(bool, Bool)

#define EMBER_DISPATCH_ALL(dtype, opname, fn) EMBER_DISPATCH_IMPL(dtype, opname, fn, EMBER_FORALL_TYPES)
#define EMBER_DISPATCH_NUMERIC(dtype, opname, fn) EMBER_DISPATCH_IMPL(dtype, opname, fn, EMBER_NUMERIC_CASES)
#define EMBER_DISPATCH_FLOAT(dtype, opname, fn) EMBER_DISPATCH_IMPL(dtype, opname, fn, EMBER_FLOAT_CASES)
#define EMBER_DISPATCH_INTEGRAL(dtype, opname, fn) EMBER_DISPATCH_IMPL(dtype, opname, fn, EMBER_INT_AND_BOOL_CASES)
