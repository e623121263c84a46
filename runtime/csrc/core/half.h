#pragma once
// Storage types for float16 and bfloat16: arithmetic happens in float (like torch's CPU path).
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__CUDACC__)
#define EMBER_HOST_DEVICE __host__ __device__
#else
#define EMBER_HOST_DEVICE
#endif

namespace ember {

namespace detail {
EMBER_HOST_DEVICE inline uint32_t f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u; std::memcpy(&u, &f, 4); return u;
#endif
}
EMBER_HOST_DEVICE inline float bits_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f; std::memcpy(&f, &u, 4); return f;
#endif
}
}  // namespace detail

struct BFloat16 {
  uint16_t x = 0;
  BFloat16() = default;
  EMBER_HOST_DEVICE BFloat16(float f) {
    uint32_t u = detail::f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) { x = 0x7fc0; return; }  // NaN stays NaN
    u += 0x7fffu + ((u >> 16) & 1u);                               // round to nearest even
    x = static_cast<uint16_t>(u >> 16);
  }
  EMBER_HOST_DEVICE operator float() const { return detail::bits_f32(static_cast<uint32_t>(x) << 16); }
  static BFloat16 from_bits(uint16_t b) { BFloat16 h; h.x = b; return h; }
};

struct Half {
  uint16_t x = 0;
  Half() = default;
  EMBER_HOST_DEVICE Half(float f) { x = from_float(f); }
  EMBER_HOST_DEVICE operator float() const { return to_float(x); }
  static Half from_bits(uint16_t b) { Half h; h.x = b; return h; }

  // IEEE binary16 conversions with round-to-nearest-even; exact for subnormals and inf/NaN.
  EMBER_HOST_DEVICE static uint16_t from_float(float f) {
    uint32_t u = detail::f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
    if (abs < 0x38800000u) {                                               // subnormal or zero
      float af = detail::bits_f32(abs);
      // Adding 0.5 shifts the value into the float's mantissa where rounding happens for free.
      float r = af + 0.5f;
      return static_cast<uint16_t>(sign | (detail::f32_bits(r) - 0x3f000000u));
    }
    uint32_t mant_odd = (abs >> 13) & 1u;
    abs += 0xc8000fffu + mant_odd;  // rebias exponent (-112 << 23) and round
    return static_cast<uint16_t>(sign | (abs >> 13));
  }
  EMBER_HOST_DEVICE static float to_float(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
      float v = static_cast<float>(mant) * 5.9604644775390625e-08f;  // 2^-24
      return detail::bits_f32(detail::f32_bits(v) | sign);
    }
    if (exp == 31) return detail::bits_f32(sign | 0x7f800000u | (mant << 13));
    return detail::bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
  }
};

}  // namespace ember

namespace std {
template <> class numeric_limits<ember::Half> {
 public:
  static constexpr bool is_specialized = true;
  static constexpr bool has_infinity = true;
  static ember::Half lowest() { return ember::Half::from_bits(0xfbff); }
  static ember::Half max() { return ember::Half::from_bits(0x7bff); }
  static ember::Half infinity() { return ember::Half::from_bits(0x7c00); }
  static ember::Half quiet_NaN() { return ember::Half::from_bits(0x7e00); }
  static ember::Half epsilon() { return ember::Half::from_bits(0x1400); }
};
template <> class numeric_limits<ember::BFloat16> {
 public:
  static constexpr bool is_specialized = true;
  static constexpr bool has_infinity = true;
  static ember::BFloat16 lowest() { return ember::BFloat16::from_bits(0xff7f); }
  static ember::BFloat16 max() { return ember::BFloat16::from_bits(0x7f7f); }
  static ember::BFloat16 infinity() { return ember::BFloat16::from_bits(0x7f80); }
  static ember::BFloat16 quiet_NaN() { return ember::BFloat16::from_bits(0x7fc0); }
  static ember::BFloat16 epsilon() { return ember::BFloat16::from_bits(0x3c00); }
};
}  // namespace std
