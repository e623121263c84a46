#pragma once
// Vectorizable float32 math for the elementwise kernels. glibc's expf/logf/tanhf are scalar calls
// unless -ffast-math is on (libmvec is only declared then), which would stall the `omp simd` loops
// of cpu/loops.h; these branch-free Cephes-style versions (about 1-2 ulp) vectorize instead.
// Half/BFloat16 compute in float and take the same path; double goes to libm.
#include <cmath>
#include <cstdint>
#include <cstring>

// Forced inline: in a TU with hundreds of kernel instantiations GCC's inliner budget runs out,
// and a call left inside an `omp simd` loop stops it from vectorizing.
#define EMBER_VM_INLINE __attribute__((always_inline)) inline

namespace ember::cpu::vm {

EMBER_VM_INLINE float bits_to_float(int32_t b) { float f; std::memcpy(&f, &b, 4); return f; }
inline int32_t float_to_bits(float f) { int32_t b; std::memcpy(&b, &f, 4); return b; }

// exp(xc - n ln2) for a clamped xc and n = round(xc / ln2): a two-part ln2 and a
// degree-6 polynomial. F is float or a GCC float vector, so vec_math.h's vexpf* share this core.
template <typename F> EMBER_VM_INLINE F expf_reduced(F xc, F n) {
  F r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  F p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return p * r * r + r + 1.0f;
}

// exp: range reduction x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial, scale by 2^n.
EMBER_VM_INLINE float expf_fast(float x) {
  const float hi = 88.7228f, lo = -87.3f;
  const float xc = x > hi ? hi : (x < lo ? lo : x);
  const float n = std::nearbyint(xc * 1.44269504088896341f);
  const float p = expf_reduced(xc, n);
  // 2^(n-1) * 2 keeps n = 128 representable.
  const float scale = bits_to_float((static_cast<int32_t>(n) + 126) << 23);
  float y = p * scale * 2.0f;
  y = x > hi ? INFINITY : y;
  y = x < lo ? 0.0f : y;
  return y;
}

EMBER_VM_INLINE float logf_fast(float x) {
  int32_t b = float_to_bits(x);
  float e = static_cast<float>((b >> 23) - 126);
  float m = bits_to_float((b & 0x007fffff) | 0x3f000000);  // mantissa in [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e = small ? e - 1.0f : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  y += -2.12194440e-4f * e;
  y += -0.5f * z;
  float r = m + y + 0.693359375f * e;
  r = x == INFINITY ? INFINITY : r;
  r = x == 0.0f ? -INFINITY : r;
  r = (x < 0.0f || x != x) ? NAN : r;
  return r;
}

EMBER_VM_INLINE float tanhf_fast(float x) {
  const float ax = std::fabs(x);
  const float z = x * x;
  float small = -5.70498872745e-3f;
  small = small * z + 2.06390887954e-2f;
  small = small * z - 5.37397155531e-2f;
  small = small * z + 1.33314422036e-1f;
  small = small * z - 3.33332819422e-1f;
  small = small * z * x + x;
  float large = 1.0f - 2.0f / (expf_fast(2.0f * ax) + 1.0f);
  large = std::copysign(large, x);
  return ax < 0.625f ? small : large;
}

// Abramowitz & Stegun 7.1.26 refined: |error| < 1.5e-7, enough for float32.
// erff_with_exp takes exp(-x^2) from the caller (gelu's backward already has it: one exp, not two).
EMBER_VM_INLINE float erff_with_exp(float x, float exp_neg_x2) {
  const float ax = std::fabs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * ax);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  p = p * t;
  const float y = 1.0f - p * exp_neg_x2;
  // Near 0 the series x * 2/sqrt(pi) * (1 - x^2/3) keeps the relative error small.
  const float series = x * 1.1283791670955126f * (1.0f - x * x / 3.0f);
  return ax < 1e-3f ? series : std::copysign(y, x);
}
EMBER_VM_INLINE float erff_fast(float x) { return erff_with_exp(x, expf_fast(-x * x)); }

// sin/cos (Cephes sinf/cosf): octant reduction with a 3-part pi/4, accurate for |x| < kTrigLimit;
// callers route larger inputs to libm.
constexpr float kTrigLimit = 8192.0f;
EMBER_VM_INLINE float sincosf_fast(float x, bool want_cos) {
  const float ax = std::fabs(x);
  int32_t j = static_cast<int32_t>(ax * 1.27323954473516f);
  j += j & 1;
  const float y = static_cast<float>(j);
  j &= 7;
  const int32_t jm = j > 3 ? j - 4 : j;
  // sin: negative for octants 4-7 xor negative x; cos: octants 4-7 xor (reduced octant > 1).
  const float sign = ((j > 3) != (want_cos ? (jm > 1) : (x < 0.0f))) ? -1.0f : 1.0f;
  const float r = ((ax - y * 0.78515625f) - y * 2.4187564849853515625e-4f) - y * 3.77489497744594108e-8f;
  const float z = r * r;
  const float c = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z -
                  0.5f * z + 1.0f;
  const float sn = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * r + r;
  const bool use_cos_poly = want_cos ? !(jm == 1 || jm == 2) : (jm == 1 || jm == 2);
  return sign * (use_cos_poly ? c : sn);
}

template <typename T> EMBER_VM_INLINE T exp(T x) { if constexpr (std::is_same_v<T, float>) return expf_fast(x); else return std::exp(x); }
template <typename T> EMBER_VM_INLINE T log(T x) { if constexpr (std::is_same_v<T, float>) return logf_fast(x); else return std::log(x); }
template <typename T> EMBER_VM_INLINE T tanh(T x) { if constexpr (std::is_same_v<T, float>) return tanhf_fast(x); else return std::tanh(x); }
template <typename T> EMBER_VM_INLINE T erf(T x) { if constexpr (std::is_same_v<T, float>) return erff_fast(x); else return std::erf(x); }
template <typename T> EMBER_VM_INLINE T sigmoid(T x) { return T(1) / (T(1) + exp(-x)); }

}  // namespace ember::cpu::vm
