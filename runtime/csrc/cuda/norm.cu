// layer_norm / rms_norm and their backward kernels on CUDA. Inputs are contiguous [rows, N] (frontend,
// ops/norm.cpp). rms_norm is layer_norm with the mean fixed at 0 and no bias: every kernel takes
// kRms, which drops the mean pass (forward: one pass over the row for the mean of squares).
//   forward, N <= 1024: one warp per row; the row is held in registers (32 values per lane) and
//     loaded with 16-byte vectors when N and the pointers allow; two-pass mean / variance;
//   forward, N > 1024: one block per row (16-byte vectors when aligned), the row cached in shared
//     memory when it fits;
//   backward grad_input: the same split (warp per row with registers, or block per row);
//   backward grad_weight / grad_bias: Note [Deterministic parameter gradients on CUDA].
// Accumulation in float (double for double); every launch goes to the current stream.
#include <cmath>

#include "cuda/block_reduce.cuh"
#include "cuda/loops.cuh"
#include "generated/kernels_nn.h"

namespace ember::cuda {
namespace {


constexpr int kWarpMaxN = 1024;            // the warp kernels hold kWarpMaxN / 32 values per lane
constexpr int kPerLane = kWarpMaxN / 32;
constexpr int kRowBlock = 512;             // threads of the block-per-row kernels
constexpr int kSmemRowBytes = 40 * 1024;   // rows up to this many Acc bytes are cached in shared memory

template <typename A> __device__ __forceinline__ A inv_sqrt(A v) {
  if constexpr (std::is_same_v<A, double>) return 1.0 / ::sqrt(v);
  else return rsqrtf(v);
}

// VEC contiguous elements of `p` at `i` as Acc (one 16-byte load when VEC > 1).
template <int VEC, typename T, typename A>
__device__ __forceinline__ void load_vec(const T* p, int64_t i, A* dst) {
  if constexpr (VEC == 1) {
    dst[0] = cvt<A>(p[i]);
  } else {
    const VecT<T, VEC> v = *reinterpret_cast<const VecT<T, VEC>*>(p + i);
#pragma unroll
    for (int e = 0; e < VEC; ++e) dst[e] = cvt<A>(v.v[e]);
  }
}
template <int VEC, typename T, typename A>
__device__ __forceinline__ void store_vec(T* p, int64_t i, const A* src) {
  if constexpr (VEC == 1) {
    p[i] = cvt<T>(src[0]);
  } else {
    VecT<T, VEC> v;
#pragma unroll
    for (int e = 0; e < VEC; ++e) v.v[e] = cvt<T>(src[e]);
    *reinterpret_cast<VecT<T, VEC>*>(p + i) = v;
  }
}

// ---- forward -------------------------------------------------------------------------------------

// Lane `lane` owns chunks c = lane + 32 k of VEC elements (k < kPerLane / VEC); VEC > 1 requires
// N % VEC == 0 and 16-byte aligned rows, so a chunk starting below N lies entirely inside the row.
template <typename T, typename W, int VEC, bool kRms>
__global__ void layer_norm_warp_kernel(const T* x, const W* weight, const W* bias, T* y, acc_t<T>* mean,
                                       acc_t<T>* rstd, int64_t rows, int n, acc_t<T> eps) {
  using A = acc_t<T>;
  constexpr int K = kPerLane / VEC;
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;  // row is uniform across the warp: whole warps leave together
  const T* xr = x + row * n;
  A v[kPerLane];
  A s = 0;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int c = (lane + 32 * k) * VEC;
    if (c < n) {
      load_vec<VEC>(xr, c, v + k * VEC);
#pragma unroll
      for (int e = 0; e < VEC; ++e) s += v[k * VEC + e];
    }
  }
  const A mu = kRms ? A(0) : warp_sum(s) / static_cast<A>(n);
  A q = 0;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int c = (lane + 32 * k) * VEC;
    if (c < n) {
#pragma unroll
      for (int e = 0; e < VEC; ++e) { const A d = v[k * VEC + e] - mu; q += d * d; }
    }
  }
  const A rs = inv_sqrt(warp_sum(q) / static_cast<A>(n) + eps);
  if (lane == 0) {
    if constexpr (!kRms) mean[row] = mu;
    rstd[row] = rs;
  }
  T* yr = y + row * n;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int c = (lane + 32 * k) * VEC;
    if (c < n) {
      A o[VEC];
#pragma unroll
      for (int e = 0; e < VEC; ++e) {
        o[e] = (v[k * VEC + e] - mu) * rs;
        if (weight) o[e] *= cvt<A>(weight[c + e]);
        if (bias) o[e] += cvt<A>(bias[c + e]);
      }
      store_vec<VEC>(yr, c, o);
    }
  }
}

// One block per row (N > kWarpMaxN); thread t owns the VEC-element chunks starting at
// (t + blockDim.x k) VEC (same alignment rule as the warp kernel). Cached: the row is kept in shared
// memory as Acc; each thread reads back only the chunks it wrote, so the cache needs no barrier.
template <typename T, typename W, int VEC, bool Cached, bool kRms>
__global__ void layer_norm_block_kernel(const T* x, const W* weight, const W* bias, T* y, acc_t<T>* mean,
                                        acc_t<T>* rstd, int64_t n, acc_t<T> eps) {
  using A = acc_t<T>;
  extern __shared__ __align__(16) unsigned char norm_smem[];
  A* cache = reinterpret_cast<A*>(norm_smem);
  __shared__ A red[32];
  const int64_t row = blockIdx.x;
  const int64_t step = static_cast<int64_t>(blockDim.x) * VEC;
  const T* xr = x + row * n;
  auto load = [&](int64_t c, A* v) {
    if constexpr (Cached) {
#pragma unroll
      for (int e = 0; e < VEC; ++e) v[e] = cache[c + e];
    } else {
      load_vec<VEC>(xr, c, v);
    }
  };
  A s = 0, q = 0;  // kRms: the first pass sums squares (q), layer_norm sums values (s)
  for (int64_t c = static_cast<int64_t>(threadIdx.x) * VEC; c < n; c += step) {
    A v[VEC];
    load_vec<VEC>(xr, c, v);
#pragma unroll
    for (int e = 0; e < VEC; ++e) {
      if constexpr (Cached) cache[c + e] = v[e];
      if constexpr (kRms) q += v[e] * v[e];
      else s += v[e];
    }
  }
  const A mu = kRms ? A(0) : block_sum(s, red) / static_cast<A>(n);
  if constexpr (!kRms) {
    for (int64_t c = static_cast<int64_t>(threadIdx.x) * VEC; c < n; c += step) {
      A v[VEC];
      load(c, v);
#pragma unroll
      for (int e = 0; e < VEC; ++e) { const A d = v[e] - mu; q += d * d; }
    }
  }
  const A rs = inv_sqrt(block_sum(q, red) / static_cast<A>(n) + eps);
  if (threadIdx.x == 0) {
    if constexpr (!kRms) mean[row] = mu;
    rstd[row] = rs;
  }
  T* yr = y + row * n;
  for (int64_t c = static_cast<int64_t>(threadIdx.x) * VEC; c < n; c += step) {
    A v[VEC];
    load(c, v);
#pragma unroll
    for (int e = 0; e < VEC; ++e) {
      v[e] = (v[e] - mu) * rs;
      if (weight) v[e] *= cvt<A>(weight[c + e]);
      if (bias) v[e] += cvt<A>(bias[c + e]);
    }
    store_vec<VEC>(yr, c, v);
  }
}

// torch's values for an empty normalized shape: mean 0, rstd NaN.
template <typename A>
__global__ void layer_norm_empty_stats_kernel(A* mean, A* rstd, int64_t rows) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < rows) {
    if (mean) mean[i] = A(0);
    rstd[i] = A(NAN);
  }
}

// ---- backward: grad_input --------------------------------------------------------------------------

// grad_input = rstd * (gy - mean(gy) - xhat * mean(gy * xhat)), gy = grad * weight (Note [layer_norm
// backward], ops/norm.cpp; kRms: no mean(gy) term, Note [rms_norm backward]). Same lane layout as
// layer_norm_warp_kernel; x-hat and gy stay in registers.
template <typename T, typename W, int VEC, bool kRms>
__global__ void layer_norm_backward_warp_kernel(const T* grad, const T* x, const acc_t<T>* mean,
                                                const acc_t<T>* rstd, const W* weight, T* grad_input,
                                                int64_t rows, int n) {
  using A = acc_t<T>;
  constexpr int K = kPerLane / VEC;
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const T* xr = x + row * n;
  const T* gr = grad + row * n;
  const A mu = kRms ? A(0) : mean[row], rs = rstd[row];
  A xh[kPerLane], gy[kPerLane];
  A s1 = 0, s2 = 0;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int c = (lane + 32 * k) * VEC;
    if (c < n) {
      load_vec<VEC>(xr, c, xh + k * VEC);
      load_vec<VEC>(gr, c, gy + k * VEC);
#pragma unroll
      for (int e = 0; e < VEC; ++e) {
        const int i = k * VEC + e;
        xh[i] = (xh[i] - mu) * rs;
        if (weight) gy[i] *= cvt<A>(weight[c + e]);
        s1 += gy[i];
        s2 += gy[i] * xh[i];
      }
    }
  }
  const A c1 = kRms ? A(0) : warp_sum(s1) / static_cast<A>(n), c2 = warp_sum(s2) / static_cast<A>(n);
  T* out = grad_input + row * n;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int c = (lane + 32 * k) * VEC;
    if (c < n) {
      A o[VEC];
#pragma unroll
      for (int e = 0; e < VEC; ++e) o[e] = rs * (gy[k * VEC + e] - c1 - xh[k * VEC + e] * c2);
      store_vec<VEC>(out, c, o);
    }
  }
}

template <typename T, typename W, int VEC, bool kRms>
__global__ void layer_norm_backward_block_kernel(const T* grad, const T* x, const acc_t<T>* mean,
                                                 const acc_t<T>* rstd, const W* weight, T* grad_input, int64_t n) {
  using A = acc_t<T>;
  __shared__ A red[32];
  const int64_t row = blockIdx.x;
  const int64_t step = static_cast<int64_t>(blockDim.x) * VEC;
  const T* xr = x + row * n;
  const T* gr = grad + row * n;
  const A mu = kRms ? A(0) : mean[row], rs = rstd[row];
  // x-hat and gy of the chunk at c (two passes re-read the row; it is usually still in L2).
  auto load = [&](int64_t c, A* xh, A* gy) {
    load_vec<VEC>(xr, c, xh);
    load_vec<VEC>(gr, c, gy);
#pragma unroll
    for (int e = 0; e < VEC; ++e) {
      xh[e] = (xh[e] - mu) * rs;
      if (weight) gy[e] *= cvt<A>(weight[c + e]);
    }
  };
  A s1 = 0, s2 = 0;
  for (int64_t c = static_cast<int64_t>(threadIdx.x) * VEC; c < n; c += step) {
    A xh[VEC], gy[VEC];
    load(c, xh, gy);
#pragma unroll
    for (int e = 0; e < VEC; ++e) { s1 += gy[e]; s2 += gy[e] * xh[e]; }
  }
  const A c1 = kRms ? A(0) : block_sum(s1, red) / static_cast<A>(n);
  const A c2 = block_sum(s2, red) / static_cast<A>(n);
  T* out = grad_input + row * n;
  for (int64_t c = static_cast<int64_t>(threadIdx.x) * VEC; c < n; c += step) {
    A xh[VEC], gy[VEC];
    load(c, xh, gy);
#pragma unroll
    for (int e = 0; e < VEC; ++e) xh[e] = rs * (gy[e] - c1 - xh[e] * c2);
    store_vec<VEC>(out, c, xh);
  }
}

// ---- backward: grad_weight / grad_bias ---------------------------------------------------------------

// Note [Deterministic parameter gradients on CUDA]
// grad_weight[j] = sum_r grad[r, j] * xhat[r, j] and grad_bias[j] = sum_r grad[r, j] are column sums.
// Pass 1: block (bx, by) of 32 x 8 threads sums columns [32 bx, 32 bx + 32) over row chunk `by`
// (thread rows strided by 8, then the 8 partials added in a fixed order) into partial[by, j].
// Pass 2: one thread per column adds the chunks' partials in order. No atomics: the result depends
// only on the shape and the device's SM count, and is identical run to run.
constexpr int kColTile = 32, kRowThreads = 8;

template <typename T, bool kRms>
__global__ void layer_norm_param_partial_kernel(const T* grad, const T* x, const acc_t<T>* mean,
                                                const acc_t<T>* rstd, acc_t<T>* partial_w, acc_t<T>* partial_b,
                                                int64_t rows, int64_t n, int64_t rows_per_chunk) {
  using A = acc_t<T>;
  __shared__ A sw[kRowThreads][kColTile + 1], sb[kRowThreads][kColTile + 1];
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kColTile + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_chunk;
  const int64_t r1 = min(rows, r0 + rows_per_chunk);
  A acc_w = 0, acc_b = 0;
  if (col < n) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowThreads) {
      const A g = cvt<A>(grad[r * n + col]);
      acc_b += g;
      const A mu = kRms ? A(0) : mean[r];
      if (partial_w) acc_w += g * ((cvt<A>(x[r * n + col]) - mu) * rstd[r]);
    }
  }
  sw[threadIdx.y][threadIdx.x] = acc_w;
  sb[threadIdx.y][threadIdx.x] = acc_b;
  __syncthreads();
  if (threadIdx.y == 0 && col < n) {
    A tw = 0, tb = 0;
#pragma unroll
    for (int k = 0; k < kRowThreads; ++k) { tw += sw[k][threadIdx.x]; tb += sb[k][threadIdx.x]; }
    const int64_t o = static_cast<int64_t>(blockIdx.y) * n + col;
    if (partial_w) partial_w[o] = tw;
    if (partial_b) partial_b[o] = tb;
  }
}

template <typename A, typename W>
__global__ void layer_norm_param_final_kernel(const A* partial_w, const A* partial_b, W* grad_weight, W* grad_bias,
                                              int64_t chunks, int64_t n) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= n) return;
  A tw = 0, tb = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    if (grad_weight) tw += partial_w[c * n + col];
    if (grad_bias) tb += partial_b[c * n + col];
  }
  if (grad_weight) grad_weight[col] = cvt<W>(tw);
  if (grad_bias) grad_bias[col] = cvt<W>(tb);
}

// ---- host side -----------------------------------------------------------------------------------

// Calls fn.template operator()<T, W>() (W == T, or float parameters for a half/bfloat16 input).
template <typename F>
void dispatch_norm_types(ScalarType t, ScalarType w, const char* op, F&& body) {
  EMBER_CUDA_DISPATCH_FLOAT(t, op, [&]<typename T>() {
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      if (w == ScalarType::Float32) return body.template operator()<T, float>();
    }
    return body.template operator()<T, T>();
  });
}

bool aligned16(const void* p) { return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Widest vector (16 bytes) the rows allow: N a multiple of it and every row pointer aligned.
template <typename T>
int vec_width(int64_t n, std::initializer_list<const void*> ptrs) {
  constexpr int kVec = 16 / sizeof(T);
  if (n % kVec != 0) return 1;
  for (const void* p : ptrs)
    if (!aligned16(p)) return 1;
  return kVec;
}

template <typename T, typename W>
const W* param_ptr(const Tensor& p) { return p.defined() ? p.data<W>() : nullptr; }

// Forward of one op on [rows, N] (kRms: no mean, no bias): mean? and rstd [rows] in the acc dtype.
template <bool kRms>
void norm_forward(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y,
                  Tensor* mean_t, Tensor& rstd_t, int64_t n, double eps_d) {
  const int64_t rows = rstd_t.numel();
  if (rows == 0) return;
  DeviceGuard guard(x.device());
  cudaStream_t stream = current_stream();
  const ScalarType pt = weight.defined() ? weight.dtype() : bias.defined() ? bias.dtype() : x.dtype();
  dispatch_norm_types(x.dtype(), pt, op, [&]<typename T, typename W>() {
    using A = acc_t<T>;
    A* mean = kRms ? nullptr : mean_t->data<A>();
    A* rstd = rstd_t.data<A>();
    if (n == 0) {
      layer_norm_empty_stats_kernel<A><<<blocks_for(rows), kBlock, 0, stream>>>(mean, rstd, rows);
      EMBER_CUDA_KERNEL_CHECK();
      return;
    }
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const W* wp = param_ptr<T, W>(weight);
    const W* bp = param_ptr<T, W>(bias);
    const A eps = static_cast<A>(eps_d);
    if (n <= kWarpMaxN) {
      const int64_t grid = blocks_for(rows * 32);
      const int ni = static_cast<int>(n);
      if (vec_width<T>(n, {xp, yp}) > 1) {
        layer_norm_warp_kernel<T, W, 16 / sizeof(T), kRms><<<grid, kBlock, 0, stream>>>(xp, wp, bp, yp, mean, rstd, rows, ni, eps);
      } else {
        layer_norm_warp_kernel<T, W, 1, kRms><<<grid, kBlock, 0, stream>>>(xp, wp, bp, yp, mean, rstd, rows, ni, eps);
      }
    } else {
      constexpr int kVec = 16 / sizeof(T);
      const bool vec = vec_width<T>(n, {xp, yp}) > 1;
      const bool cached = n * static_cast<int64_t>(sizeof(A)) <= kSmemRowBytes;
      const size_t smem = cached ? n * sizeof(A) : 0;
      if (vec && cached) {
        layer_norm_block_kernel<T, W, kVec, true, kRms><<<rows, kRowBlock, smem, stream>>>(xp, wp, bp, yp, mean, rstd, n, eps);
      } else if (vec) {
        layer_norm_block_kernel<T, W, kVec, false, kRms><<<rows, kRowBlock, 0, stream>>>(xp, wp, bp, yp, mean, rstd, n, eps);
      } else if (cached) {
        layer_norm_block_kernel<T, W, 1, true, kRms><<<rows, kRowBlock, smem, stream>>>(xp, wp, bp, yp, mean, rstd, n, eps);
      } else {
        layer_norm_block_kernel<T, W, 1, false, kRms><<<rows, kRowBlock, 0, stream>>>(xp, wp, bp, yp, mean, rstd, n, eps);
      }
    }
    EMBER_CUDA_KERNEL_CHECK();
  });
}

// Backward of one op: grad, x [rows, N], mean? and rstd [rows], weight? [N]; writes grad_input,
// grad_weight and grad_bias where given (kRms: no mean, no bias).
template <bool kRms>
void norm_backward(const char* op, const Tensor& grad, const Tensor& x, const Tensor* mean_t, const Tensor& rstd_t,
                   const Tensor& weight, Tensor* grad_input, Tensor* grad_weight, Tensor* grad_bias, int64_t n) {
  const int64_t rows = rstd_t.numel();
  const bool need_input = grad_input != nullptr, need_weight = grad_weight != nullptr, need_bias = grad_bias != nullptr;
  if (n == 0) return;  // every output is empty
  DeviceGuard guard(x.device());
  cudaStream_t stream = current_stream();
  const ScalarType pt = weight.defined() ? weight.dtype() : need_weight ? grad_weight->dtype()
                        : need_bias ? grad_bias->dtype() : x.dtype();
  dispatch_norm_types(x.dtype(), pt, op, [&]<typename T, typename W>() {
    using A = acc_t<T>;
    const T* gp = grad.data<T>();
    const T* xp = x.data<T>();
    const A* mean = kRms ? nullptr : mean_t->data<A>();
    const A* rstd = rstd_t.data<A>();
    const W* wp = param_ptr<T, W>(weight);
    if (need_input && rows > 0) {
      T* gx = grad_input->data<T>();
      if (n <= kWarpMaxN) {
        const int64_t grid = blocks_for(rows * 32);
        const int ni = static_cast<int>(n);
        if (vec_width<T>(n, {gp, xp, gx}) > 1) {
          layer_norm_backward_warp_kernel<T, W, 16 / sizeof(T), kRms><<<grid, kBlock, 0, stream>>>(gp, xp, mean, rstd, wp, gx, rows, ni);
        } else {
          layer_norm_backward_warp_kernel<T, W, 1, kRms><<<grid, kBlock, 0, stream>>>(gp, xp, mean, rstd, wp, gx, rows, ni);
        }
      } else {
        if (vec_width<T>(n, {gp, xp, gx}) > 1) {
          layer_norm_backward_block_kernel<T, W, 16 / sizeof(T), kRms><<<rows, kRowBlock, 0, stream>>>(gp, xp, mean, rstd, wp, gx, n);
        } else {
          layer_norm_backward_block_kernel<T, W, 1, kRms><<<rows, kRowBlock, 0, stream>>>(gp, xp, mean, rstd, wp, gx, n);
        }
      }
      EMBER_CUDA_KERNEL_CHECK();
    }
    if (!need_weight && !need_bias) return;
    // Row chunks: enough blocks to fill the GPU (~8 per SM), at least 32 rows each; gridDim.y <= 65535.
    const int64_t col_tiles = (n + kColTile - 1) / kColTile;
    const int64_t want = std::max<int64_t>(1, (8 * static_cast<int64_t>(sm_count()) + col_tiles - 1) / col_tiles);
    int64_t chunks = std::min<int64_t>({want, std::max<int64_t>(1, (rows + 31) / 32), 65535});
    const int64_t rows_per_chunk = std::max<int64_t>(1, (rows + chunks - 1) / chunks);
    chunks = rows == 0 ? 0 : (rows + rows_per_chunk - 1) / rows_per_chunk;
    const int64_t partial_sizes[2] = {chunks, n};
    const ScalarType acc_dtype = std::is_same_v<A, double> ? ScalarType::Float64 : ScalarType::Float32;
    Tensor partial_w = need_weight ? Tensor::empty(partial_sizes, acc_dtype, x.device()) : Tensor();
    Tensor partial_b = need_bias ? Tensor::empty(partial_sizes, acc_dtype, x.device()) : Tensor();
    A* pw = need_weight ? partial_w.data<A>() : nullptr;
    A* pb = need_bias ? partial_b.data<A>() : nullptr;
    if (chunks > 0) {
      const dim3 grid(static_cast<unsigned>(col_tiles), static_cast<unsigned>(chunks));
      const dim3 block(kColTile, kRowThreads);
      layer_norm_param_partial_kernel<T, kRms><<<grid, block, 0, stream>>>(gp, xp, mean, rstd, pw, pb, rows, n, rows_per_chunk);
      EMBER_CUDA_KERNEL_CHECK();
    }
    W* gw = need_weight ? grad_weight->data<W>() : nullptr;
    W* gb = need_bias ? grad_bias->data<W>() : nullptr;
    layer_norm_param_final_kernel<A, W><<<blocks_for(n), kBlock, 0, stream>>>(pw, pb, gw, gb, chunks, n);
    EMBER_CUDA_KERNEL_CHECK();
  });
}

}  // namespace

// in: x [rows, N], weight? [N], bias? [N]; out: y [rows, N], mean [rows], rstd [rows] (acc dtype).
void layer_norm(const KernelArgs& a, const LayerNormAttrs& attrs) {
  norm_forward<false>("layer_norm", a.in[0], a.in[1], a.in[2], a.out[0], &a.out[1], a.out[2], attrs.n, attrs.eps);
}

// in: grad, x [rows, N], mean, rstd [rows], weight? [N]; out: grad_input, grad_weight, grad_bias,
// each written when attrs.need_* asks for it.
void layer_norm_backward(const KernelArgs& a, const LayerNormBackwardAttrs& attrs) {
  norm_backward<false>("layer_norm_backward", a.in[0], a.in[1], &a.in[2], a.in[3], a.in[4],
                       attrs.need_input ? &a.out[0] : nullptr, attrs.need_weight ? &a.out[1] : nullptr,
                       attrs.need_bias ? &a.out[2] : nullptr, attrs.n);
}

// in: x [rows, N], weight? [N]; out: y [rows, N], rstd [rows] (acc dtype).
void rms_norm(const KernelArgs& a, const RmsNormAttrs& attrs) {
  norm_forward<true>("rms_norm", a.in[0], a.in[1], Tensor(), a.out[0], nullptr, a.out[1], attrs.n, attrs.eps);
}

// in: grad, x [rows, N], rstd [rows], weight? [N]; out: grad_input, grad_weight (attrs.need_*).
void rms_norm_backward(const KernelArgs& a, const RmsNormBackwardAttrs& attrs) {
  norm_backward<true>("rms_norm_backward", a.in[0], a.in[1], nullptr, a.in[2], a.in[3],
                      attrs.need_input ? &a.out[0] : nullptr, attrs.need_weight ? &a.out[1] : nullptr, nullptr,
                      attrs.n);
}

}  // namespace ember::cuda
