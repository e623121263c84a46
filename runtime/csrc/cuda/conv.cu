// CUDA im2col / col2im / max_pool2d (frontends: ops/conv.cpp; CPU twins: cpu/conv.cpp). The GEMMs of
// a convolution go through bmm (cuBLAS). One thread per element written, grid-stride loops:
//   im2col: per column element (coalesced writes); col2im: per input element, gathering the column
//   entries of the windows that cover it (no atomics, deterministic); max_pool2d: per output.
// Sums accumulate in float (double for double); everything runs on the current stream.
#include <cmath>

#include "cuda/block_reduce.cuh"
#include "cuda/loops.cuh"
#include "generated/kernels_conv.h"

namespace ember::cuda {
namespace {

struct Grid {
  int64_t n, c, h, w, oh, ow, kh, kw, dh, dw, ph, pw, sh, sw;
};

int64_t out_extent(int64_t in, int i, const Window2dAttrs& a) {
  return (in + 2 * a.padding[i] - a.dilation[i] * (a.kernel[i] - 1) - 1) / a.stride[i] + 1;
}

Grid make_grid(const DimVector& x, int64_t oh, int64_t ow, const Window2dAttrs& a) {
  return {x[0], x[1], x[2], x[3], oh, ow, a.kernel[0], a.kernel[1], a.dilation[0], a.dilation[1],
          a.padding[0], a.padding[1], a.stride[0], a.stride[1]};
}

#define EMBER_GRID_STRIDE(i, total)                                                                 \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (total);       \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

template <typename T>
__global__ void im2col_kernel(const T* __restrict__ x, T* __restrict__ cols, Grid g) {
  const int64_t l = g.oh * g.ow, nl = g.n * l, total = g.c * g.kh * g.kw * nl;
  EMBER_GRID_STRIDE(e, total) {
    const int64_t r = e / nl, col = e % nl;
    const int64_t img = col / l, rem = col % l, oy = rem / g.ow, ox = rem % g.ow;
    const int64_t ch = r / (g.kh * g.kw), ki = r / g.kw % g.kh, kj = r % g.kw;
    const int64_t iy = oy * g.sh - g.ph + ki * g.dh, ix = ox * g.sw - g.pw + kj * g.dw;
    const bool inside = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w;
    cols[e] = inside ? x[((img * g.c + ch) * g.h + iy) * g.w + ix] : cvt<T>(0.0f);
  }
}

template <typename T>
__global__ void col2im_kernel(const T* __restrict__ cols, T* __restrict__ x, Grid g) {
  using A = acc_t<T>;
  const int64_t l = g.oh * g.ow, nl = g.n * l, total = g.n * g.c * g.h * g.w;
  EMBER_GRID_STRIDE(e, total) {
    const int64_t ix = e % g.w, iy = e / g.w % g.h, ch = e / (g.w * g.h) % g.c, img = e / (g.w * g.h * g.c);
    A acc = 0;
    for (int64_t ki = 0; ki < g.kh; ++ki) {
      const int64_t ty = iy + g.ph - ki * g.dh;
      if (ty < 0 || ty % g.sh != 0 || ty / g.sh >= g.oh) continue;
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        const int64_t tx = ix + g.pw - kj * g.dw;
        if (tx < 0 || tx % g.sw != 0 || tx / g.sw >= g.ow) continue;
        const int64_t r = (ch * g.kh + ki) * g.kw + kj;
        acc += cvt<A>(cols[r * nl + img * l + (ty / g.sh) * g.ow + tx / g.sw]);
      }
    }
    x[e] = cvt<T>(acc);
  }
}

// Same selection rule as the CPU kernel (torch's): a NaN wins, ties keep the first.
template <typename T>
__global__ void max_pool2d_kernel(const T* __restrict__ x, T* __restrict__ values, int64_t* __restrict__ indices,
                                  Grid g) {
  using A = acc_t<T>;
  const int64_t total = g.n * g.c * g.oh * g.ow;
  EMBER_GRID_STRIDE(e, total) {
    const int64_t ox = e % g.ow, oy = e / g.ow % g.oh, p = e / (g.ow * g.oh);
    const T* plane = x + p * g.h * g.w;
    int64_t y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
    const int64_t y1 = min(y0 + (g.kh - 1) * g.dh + 1, g.h), x1 = min(x0 + (g.kw - 1) * g.dw + 1, g.w);
    while (y0 < 0) y0 += g.dh;
    while (x0 < 0) x0 += g.dw;
    A best = -INFINITY;
    int64_t best_i = y0 * g.w + x0;
    for (int64_t iy = y0; iy < y1; iy += g.dh) {
      for (int64_t ix = x0; ix < x1; ix += g.dw) {
        const A v = cvt<A>(plane[iy * g.w + ix]);
        if (v > best || ::isnan(v)) {
          best = v;
          best_i = iy * g.w + ix;
        }
      }
    }
    values[e] = cvt<T>(best);
    indices[e] = best_i;
  }
}

}  // namespace

void im2col(const KernelArgs& args, const Window2dAttrs& attrs) {
  const Tensor& x = args.in[0];
  Tensor& cols = args.out[0];
  const int64_t total = cols.numel();
  if (total == 0) return;
  const Grid g = make_grid(x.sizes(), out_extent(x.sizes()[2], 0, attrs), out_extent(x.sizes()[3], 1, attrs), attrs);
  cudaStream_t stream = current_stream();
  EMBER_CUDA_DISPATCH_FLOAT(x.dtype(), "im2col", [&]<typename T>() {
    im2col_kernel<T><<<elementwise_grid(total), kBlock, 0, stream>>>(x.data<T>(), cols.data<T>(), g);
  });
  EMBER_CUDA_KERNEL_CHECK();
}

void col2im(const KernelArgs& args, const Window2dAttrs& attrs) {
  const Tensor& cols = args.in[0];
  Tensor& x = args.out[0];
  const int64_t total = x.numel();
  if (total == 0) return;
  const Grid g = make_grid(x.sizes(), out_extent(x.sizes()[2], 0, attrs), out_extent(x.sizes()[3], 1, attrs), attrs);
  cudaStream_t stream = current_stream();
  EMBER_CUDA_DISPATCH_FLOAT(x.dtype(), "col2im", [&]<typename T>() {
    col2im_kernel<T><<<elementwise_grid(total), kBlock, 0, stream>>>(cols.data<T>(), x.data<T>(), g);
  });
  EMBER_CUDA_KERNEL_CHECK();
}

void max_pool2d_with_indices(const KernelArgs& args, const Window2dAttrs& attrs) {
  const Tensor& x = args.in[0];
  Tensor& values = args.out[0];
  const int64_t total = values.numel();
  if (total == 0) return;
  const Grid g = make_grid(x.sizes(), values.sizes()[2], values.sizes()[3], attrs);
  cudaStream_t stream = current_stream();
  EMBER_CUDA_DISPATCH_FLOAT(x.dtype(), "max_pool2d", [&]<typename T>() {
    max_pool2d_kernel<T><<<elementwise_grid(total), kBlock, 0, stream>>>(x.data<T>(), values.data<T>(),
                                                                         args.out[1].data<int64_t>(), g);
  });
  EMBER_CUDA_KERNEL_CHECK();
}

}  // namespace ember::cuda
