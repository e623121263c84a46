// CPU im2col / col2im / max_pool2d (frontends: ops/conv.cpp; Note [Convolution as im2col + GEMM]).
// Inputs are contiguous (the frontends guarantee it). im2col runs one task per (image, column row);
// col2im and max_pool2d one task per (image, channel) plane, so no two threads write one element and
// every sum runs in a fixed order (deterministic results whatever the thread count).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "generated/kernels_conv.h"

namespace ember::cpu {
namespace {

struct Grid {  // geometry shared by the three kernels
  int64_t n, c, h, w, oh, ow, kh, kw, dh, dw, ph, pw, sh, sw;
};

Grid make_grid(const DimVector& x_sizes, int64_t oh, int64_t ow, const Window2dAttrs& a) {
  return {x_sizes[0], x_sizes[1], x_sizes[2], x_sizes[3], oh, ow, a.kernel[0], a.kernel[1], a.dilation[0],
          a.dilation[1], a.padding[0], a.padding[1], a.stride[0], a.stride[1]};
}

// Number of window positions along dim i (0: h, 1: w) of an input extent (the frontend checked it is positive).
inline int64_t out_extent(int64_t in, int i, const Window2dAttrs& a) {
  return (in + 2 * a.padding[i] - a.dilation[i] * (a.kernel[i] - 1) - 1) / a.stride[i] + 1;
}

// Output positions ox in [lo, hi) read input columns ix = ox * s + off inside [0, w).
inline void valid_range(int64_t ow, int64_t w, int64_t s, int64_t off, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = off >= w ? 0 : std::min(ow, (w - 1 - off) / s + 1);
  lo = std::min(lo, hi);
}

}  // namespace

// in: x [N, C, H, W]; out: cols [C*kh*kw, N*oh*ow], row (c, ki, kj), column (n, oy, ox).
void im2col(const KernelArgs& args, const Window2dAttrs& attrs) {
  const Tensor& x = args.in[0];
  Tensor& cols = args.out[0];
  const int64_t rows = cols.sizes()[0];
  if (cols.numel() == 0) return;
  const Grid g = make_grid(x.sizes(), out_extent(x.sizes()[2], 0, attrs), out_extent(x.sizes()[3], 1, attrs), attrs);
  const int64_t l = g.oh * g.ow;
  EMBER_DISPATCH_FLOAT(x.dtype(), "im2col", [&]<typename T>() {
    const T* xp = x.data<T>();
    T* cp = cols.data<T>();
    const T zero = static_cast<T>(0.0f);
    parallel_for(0, g.n * rows, std::max<int64_t>(1, kGrainSize / l), [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t img = t / rows, r = t % rows;
        const int64_t ch = r / (g.kh * g.kw), ki = r / g.kw % g.kh, kj = r % g.kw;
        const T* plane = xp + (img * g.c + ch) * g.h * g.w;
        T* dst = cp + r * g.n * l + img * l;
        const int64_t off_x = kj * g.dw - g.pw;
        int64_t xlo, xhi;
        valid_range(g.ow, g.w, g.sw, off_x, xlo, xhi);
        for (int64_t oy = 0; oy < g.oh; ++oy, dst += g.ow) {
          const int64_t iy = oy * g.sh - g.ph + ki * g.dh;
          if (iy < 0 || iy >= g.h) {
            std::fill(dst, dst + g.ow, zero);
            continue;
          }
          const T* src = plane + iy * g.w + off_x;
          std::fill(dst, dst + xlo, zero);
          if (g.sw == 1) {
            std::copy(src + xlo, src + xhi, dst + xlo);
          } else {
            for (int64_t ox = xlo; ox < xhi; ++ox) dst[ox] = src[ox * g.sw];
          }
          std::fill(dst + xhi, dst + g.ow, zero);
        }
      }
    });
  });
}

// in: cols [C*kh*kw, N*oh*ow]; out: x [N, C, H, W] = sum of the columns over the windows covering
// each element (accumulated in float for half types).
void col2im(const KernelArgs& args, const Window2dAttrs& attrs) {
  const Tensor& cols = args.in[0];
  Tensor& x = args.out[0];
  if (x.numel() == 0) return;
  const Grid g = make_grid(x.sizes(), out_extent(x.sizes()[2], 0, attrs), out_extent(x.sizes()[3], 1, attrs), attrs);
  const int64_t l = g.oh * g.ow, hw = g.h * g.w;
  EMBER_DISPATCH_FLOAT(x.dtype(), "col2im", [&]<typename T>() {
    using Acc = opmath_t<T>;
    const T* cp = cols.data<T>();
    T* xp = x.data<T>();
    parallel_for(0, g.n * g.c, std::max<int64_t>(1, kGrainSize / (l * g.kh * g.kw)), [&](int64_t lo, int64_t hi) {
      std::vector<Acc> buf(std::is_same_v<T, Acc> ? 0 : hw);
      for (int64_t p = lo; p < hi; ++p) {
        const int64_t img = p / g.c, ch = p % g.c;
        Acc* acc = std::is_same_v<T, Acc> ? reinterpret_cast<Acc*>(xp + p * hw) : buf.data();
        std::fill(acc, acc + hw, Acc(0));
        for (int64_t ki = 0; ki < g.kh; ++ki) {
          for (int64_t kj = 0; kj < g.kw; ++kj) {
            const int64_t r = (ch * g.kh + ki) * g.kw + kj;
            const T* src = cp + r * g.n * l + img * l;
            const int64_t off_x = kj * g.dw - g.pw;
            int64_t xlo, xhi;
            valid_range(g.ow, g.w, g.sw, off_x, xlo, xhi);
            for (int64_t oy = 0; oy < g.oh; ++oy, src += g.ow) {
              const int64_t iy = oy * g.sh - g.ph + ki * g.dh;
              if (iy < 0 || iy >= g.h) continue;
              Acc* row = acc + iy * g.w + off_x;
              for (int64_t ox = xlo; ox < xhi; ++ox) row[ox * g.sw] += static_cast<Acc>(src[ox]);
            }
          }
        }
        if constexpr (!std::is_same_v<T, Acc>) {
          T* out = xp + p * hw;
          for (int64_t i = 0; i < hw; ++i) out[i] = static_cast<T>(acc[i]);
        }
      }
    });
  });
}

// in: x [N, C, H, W]; out: values, indices [N, C, oh, ow]. Like torch, a NaN wins (the last NaN of the
// window), and an all -inf window reports its first in-bounds element.
void max_pool2d_with_indices(const KernelArgs& args, const Window2dAttrs& attrs) {
  const Tensor& x = args.in[0];
  Tensor& values = args.out[0];
  int64_t* ip = args.out[1].data<int64_t>();
  if (values.numel() == 0) return;
  const Grid g = make_grid(x.sizes(), values.sizes()[2], values.sizes()[3], attrs);
  const int64_t l = g.oh * g.ow;
  EMBER_DISPATCH_FLOAT(x.dtype(), "max_pool2d", [&]<typename T>() {
    using Acc = opmath_t<T>;
    const T* xp = x.data<T>();
    T* vp = values.data<T>();
    parallel_for(0, g.n * g.c, std::max<int64_t>(1, kGrainSize / (l * g.kh * g.kw)), [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        const T* plane = xp + p * g.h * g.w;
        for (int64_t oy = 0; oy < g.oh; ++oy) {
          int64_t y0 = oy * g.sh - g.ph;
          const int64_t y1 = std::min(y0 + (g.kh - 1) * g.dh + 1, g.h);
          while (y0 < 0) y0 += g.dh;
          for (int64_t ox = 0; ox < g.ow; ++ox) {
            int64_t x0 = ox * g.sw - g.pw;
            const int64_t x1 = std::min(x0 + (g.kw - 1) * g.dw + 1, g.w);
            while (x0 < 0) x0 += g.dw;
            Acc best = -std::numeric_limits<Acc>::infinity();
            int64_t best_i = y0 * g.w + x0;
            for (int64_t iy = y0; iy < y1; iy += g.dh) {
              for (int64_t ix = x0; ix < x1; ix += g.dw) {
                const Acc v = static_cast<Acc>(plane[iy * g.w + ix]);
                if (v > best || std::isnan(v)) {
                  best = v;
                  best_i = iy * g.w + ix;
                }
              }
            }
            vp[p * l + oy * g.ow + ox] = static_cast<T>(best);
            ip[p * l + oy * g.ow + ox] = best_i;
          }
        }
      }
    });
  });
}

}  // namespace ember::cpu
