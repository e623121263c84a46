// CPU rotary_embedding (Note [Rotary embedding], ops/rotary.cpp): x contiguous [rows, D], cos/sin
// [*lead, D/2] views read through RotaryRows; rows run in parallel, math in float (double for double).
#include "core/parallel.h"
#include "generated/kernels_nn.h"
#include "ops/rotary.h"

namespace ember::cpu {
namespace {

// Calls body.template operator()<T, W>() for x's dtype T and cos/sin's dtype W (W == T, or float with
// a float16/bfloat16 x).
template <typename F>
void dispatch_rotary_types(ScalarType t, ScalarType w, F&& body) {
  EMBER_DISPATCH_FLOAT(t, "rotary_embedding", ([&]<typename T>() {
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      if (w == ScalarType::Float32) return body.template operator()<T, float>();
    }
    return body.template operator()<T, T>();
  }));
}

}  // namespace

// in: x [rows, D], cos [*lead, D/2], sin [*lead, D/2]; out: y [rows, D].
void rotary_embedding(const KernelArgs& a, const RotaryEmbeddingAttrs& attrs) {
  const Tensor& x = a.in[0];
  const int64_t d = x.sizes().back(), half = d / 2;
  if (x.numel() == 0) return;
  const int64_t rows = x.numel() / d;
  const RotaryRows idx = RotaryRows::of(a.in[1], a.in[2]);
  const bool interleaved = attrs.interleaved;
  dispatch_rotary_types(x.dtype(), a.in[1].dtype(), [&]<typename T, typename W>() {
    using Acc = opmath_t<T>;
    const T* x_base = x.data<T>();
    T* y_base = a.out[0].data<T>();
    const W* cos_base = a.in[1].data<W>();
    const W* sin_base = a.in[2].data<W>();
    const Acc sign = attrs.inverse ? Acc(-1) : Acc(1);
    // One row; the pair members are (j, j + D/2) or (2j, 2j + 1). Fixed strides let the loops vectorize.
    auto rotate_row = [&]<bool kInterleaved>(const T* __restrict xr, T* __restrict yr, const W* cr, const W* sr) {
      const T* xa_p = xr;
      const T* xb_p = kInterleaved ? xr + 1 : xr + half;
      T* ya_p = yr;
      T* yb_p = kInterleaved ? yr + 1 : yr + half;
      constexpr int64_t kStep = kInterleaved ? 2 : 1;
      for (int64_t j = 0; j < half; ++j) {
        const Acc c = static_cast<Acc>(cr[j]), s = sign * static_cast<Acc>(sr[j]);
        const Acc xa = static_cast<Acc>(xa_p[j * kStep]), xb = static_cast<Acc>(xb_p[j * kStep]);
        ya_p[j * kStep] = static_cast<T>(xa * c - xb * s);
        yb_p[j * kStep] = static_cast<T>(xb * c + xa * s);
      }
    };
    parallel_for(0, rows, std::max<int64_t>(1, kGrainSize / d), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        int64_t co = 0, so = 0;
        idx.offsets(r, co, so);
        if (interleaved) {
          rotate_row.template operator()<true>(x_base + r * d, y_base + r * d, cos_base + co, sin_base + so);
        } else {
          rotate_row.template operator()<false>(x_base + r * d, y_base + r * d, cos_base + co, sin_base + so);
        }
      }
    });
  });
}

}  // namespace ember::cpu
