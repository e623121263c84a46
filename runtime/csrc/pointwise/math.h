#pragma once
// Math for the shared pointwise functors (pointwise/functors.h), usable on host and device. CPU
// builds route float32 exp/log/tanh/erf to the vectorizable versions of cpu/elementwise_math.h
// (glibc's are scalar calls that stop `omp simd`); CUDA builds use CUDA's libm. Either way each
// formula is written once, in functors.h.
#include <cmath>
#include <limits>
#include <type_traits>

#ifdef __CUDACC__
#define EMBER_HD __host__ __device__ __forceinline__
#else
#include "cpu/elementwise_math.h"
#define EMBER_HD __attribute__((always_inline)) inline
#endif

namespace ember::pm {

#ifdef __CUDACC__
#define EMBER_PM_UNARY(name, cpu_impl) \
  template <typename T> EMBER_HD T name(T x) { return ::name(x); }
#else
#define EMBER_PM_UNARY(name, cpu_impl) \
  template <typename T> EMBER_HD T name(T x) { return cpu_impl(x); }
#endif
EMBER_PM_UNARY(exp, cpu::vm::exp)
EMBER_PM_UNARY(log, cpu::vm::log)
EMBER_PM_UNARY(tanh, cpu::vm::tanh)
EMBER_PM_UNARY(erf, cpu::vm::erf)
EMBER_PM_UNARY(exp2, std::exp2)
EMBER_PM_UNARY(expm1, std::expm1)
EMBER_PM_UNARY(log2, std::log2)
EMBER_PM_UNARY(log1p, std::log1p)
EMBER_PM_UNARY(sqrt, std::sqrt)
EMBER_PM_UNARY(sin, std::sin)
EMBER_PM_UNARY(cos, std::cos)
EMBER_PM_UNARY(tan, std::tan)
EMBER_PM_UNARY(floor, std::floor)
EMBER_PM_UNARY(ceil, std::ceil)
EMBER_PM_UNARY(nearbyint, std::nearbyint)
EMBER_PM_UNARY(trunc, std::trunc)
#undef EMBER_PM_UNARY

#ifdef __CUDACC__
template <typename T> EMBER_HD T pow(T x, T y) { return ::pow(x, y); }
template <typename T> EMBER_HD T fmod(T x, T y) { return ::fmod(x, y); }
template <typename T> EMBER_HD T copysign(T x, T y) { return ::copysign(x, y); }
// erf(x) given exp(-x^2) (the CPU float path reuses it; CUDA's erf is one instruction sequence anyway).
template <typename T> EMBER_HD T erf_with_exp(T x, T) { return ::erf(x); }
#else
template <typename T> EMBER_HD T pow(T x, T y) { return std::pow(x, y); }
template <typename T> EMBER_HD T fmod(T x, T y) { return std::fmod(x, y); }
template <typename T> EMBER_HD T copysign(T x, T y) { return std::copysign(x, y); }
template <typename T> EMBER_HD T erf_with_exp(T x, T exp_neg_x2) {
  if constexpr (std::is_same_v<T, float>) return cpu::vm::erff_with_exp(x, exp_neg_x2);
  else return std::erf(x);
}
#endif

template <typename T> EMBER_HD T sigmoid(T x) { return T(1) / (T(1) + exp(-x)); }
template <typename T> EMBER_HD bool isnan(T x) {
  if constexpr (std::is_floating_point_v<T>) return x != x;
  else return false;
}
template <typename T> EMBER_HD bool isinf(T x) {
  if constexpr (std::is_floating_point_v<T>)
    return x == std::numeric_limits<T>::infinity() || x == -std::numeric_limits<T>::infinity();
  else return false;
}

}  // namespace ember::pm
