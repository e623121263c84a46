#pragma once
// Math for the shared pointwise functors (pointwise/functors.h), usable on host and device. CPU
// builds route float32 exp/log/tanh/erf to the vectorizable versions of cpu/elementwise_math.h
// (glibc's are scalar calls that stop `omp simd`); CUDA builds use CUDA's libm. Either way each
// formula is written once, in functors.h.
#include <cmath>
#include <initializer_list>
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
EMBER_PM_UNARY(asin, std::asin)
EMBER_PM_UNARY(acos, std::acos)
EMBER_PM_UNARY(atan, std::atan)
EMBER_PM_UNARY(sinh, std::sinh)
EMBER_PM_UNARY(cosh, std::cosh)
EMBER_PM_UNARY(asinh, std::asinh)
EMBER_PM_UNARY(acosh, std::acosh)
EMBER_PM_UNARY(atanh, std::atanh)
EMBER_PM_UNARY(log10, std::log10)
EMBER_PM_UNARY(erfc, std::erfc)
#undef EMBER_PM_UNARY

#ifdef __CUDACC__
template <typename T> EMBER_HD T pow(T x, T y) { return ::pow(x, y); }
template <typename T> EMBER_HD T fmod(T x, T y) { return ::fmod(x, y); }
template <typename T> EMBER_HD T copysign(T x, T y) { return ::copysign(x, y); }
template <typename T> EMBER_HD T atan2(T y, T x) { return ::atan2(y, x); }
template <typename T> EMBER_HD T hypot(T x, T y) { return ::hypot(x, y); }
template <typename T> EMBER_HD T erfinv(T x) { return ::erfinv(x); }
// erf(x) given exp(-x^2) (the CPU float path reuses it; CUDA's erf is one instruction sequence anyway).
template <typename T> EMBER_HD T erf_with_exp(T x, T) { return ::erf(x); }
#else
template <typename T> EMBER_HD T pow(T x, T y) { return std::pow(x, y); }
template <typename T> EMBER_HD T fmod(T x, T y) { return std::fmod(x, y); }
template <typename T> EMBER_HD T copysign(T x, T y) { return std::copysign(x, y); }
template <typename T> EMBER_HD T atan2(T y, T x) { return std::atan2(y, x); }
template <typename T> EMBER_HD T hypot(T x, T y) { return std::hypot(x, y); }
// The C library has no erfinv: Giles' single-precision approximation ("Approximating the erfinv
// function", GPU Computing Gems, 2011) refined by two Newton steps on erf, all in double.
template <typename T> T erfinv(T x) {
  const double v = static_cast<double>(x);
  if (!(v > -1.0 && v < 1.0)) return static_cast<T>(v == 1.0 ? HUGE_VAL : v == -1.0 ? -HUGE_VAL : NAN);
  double w = -std::log((1.0 - v) * (1.0 + v)), p;
  if (w < 5.0) {
    w -= 2.5;
    p = 2.81022636e-08;
    for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                     -0.00417768164, 0.246640727, 1.50140941})
      p = c + p * w;
  } else {
    w = std::sqrt(w) - 3.0;
    p = -0.000200214257;
    for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                     0.00943887047, 1.00167406, 2.83297682})
      p = c + p * w;
  }
  double y = p * v;
  for (int i = 0; i < 2; ++i) y -= (std::erf(y) - v) / (1.1283791670955126 * std::exp(-y * y));
  return static_cast<T>(y);
}
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
