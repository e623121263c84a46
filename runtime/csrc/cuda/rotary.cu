// rotary_embedding on CUDA (Note [Rotary embedding], ops/rotary.cpp). x is contiguous [rows, D]; a
// block of kBlock threads covers rows_per_block rows, threadIdx.x walking a row's chunks. A chunk is P
// pairs: x_a and x_b as two P-element vectors (pairs (j, j + D/2)) or one 2P-element vector (pairs
// (2j, 2j + 1)), 16-byte loads when D, the pointers and cos/sin's row offsets allow; otherwise one pair
// per thread with scalar loads. cos/sin rows come from RotaryRows (once per thread and row).
#include "cuda/block_reduce.cuh"
#include "cuda/loops.cuh"
#include "generated/kernels_nn.h"
#include "ops/rotary.h"

namespace ember::cuda {
namespace {

// N contiguous elements of p at i as A: one VecT load when kVector (the caller checked alignment).
template <int N, bool kVector, typename T, typename A>
__device__ __forceinline__ void load_n(const T* p, int64_t i, A* dst) {
  if constexpr (kVector && N > 1) {
    const VecT<T, N> v = *reinterpret_cast<const VecT<T, N>*>(p + i);
#pragma unroll
    for (int e = 0; e < N; ++e) dst[e] = cvt<A>(v.v[e]);
  } else {
#pragma unroll
    for (int e = 0; e < N; ++e) dst[e] = cvt<A>(p[i + e]);
  }
}
template <int N, bool kVector, typename T, typename A>
__device__ __forceinline__ void store_n(T* p, int64_t i, const A* src) {
  if constexpr (kVector && N > 1) {
    VecT<T, N> v;
#pragma unroll
    for (int e = 0; e < N; ++e) v.v[e] = cvt<T>(src[e]);
    *reinterpret_cast<VecT<T, N>*>(p + i) = v;
  } else {
#pragma unroll
    for (int e = 0; e < N; ++e) p[i + e] = cvt<T>(src[e]);
  }
}

// P pairs per chunk; kVecX: x/y vector loads, kVecCs: cos/sin vector loads; sign = -1 for inverse.
template <typename T, typename W, int P, bool kInterleaved, bool kVecX, bool kVecCs>
__global__ void rotary_kernel(const T* __restrict__ x, const W* __restrict__ cos_p, const W* __restrict__ sin_p,
                              T* __restrict__ y, int64_t rows, int64_t d, RotaryRows idx, acc_t<T> sign) {
  using A = acc_t<T>;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  if (row >= rows) return;
  const int64_t half = d / 2, chunks = half / P;
  int64_t co = 0, so = 0;
  idx.offsets(row, co, so);
  const T* xr = x + row * d;
  T* yr = y + row * d;
  for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x) {
    const int64_t j0 = c * P;  // first pair of the chunk
    A cs[P], sn[P];
    load_n<P, kVecCs>(cos_p + co, j0, cs);
    load_n<P, kVecCs>(sin_p + so, j0, sn);
    if constexpr (kInterleaved) {
      A v[2 * P];
      load_n<2 * P, kVecX>(xr, 2 * j0, v);
#pragma unroll
      for (int p = 0; p < P; ++p) {
        const A xa = v[2 * p], xb = v[2 * p + 1], s = sign * sn[p];
        v[2 * p] = xa * cs[p] - xb * s;
        v[2 * p + 1] = xb * cs[p] + xa * s;
      }
      store_n<2 * P, kVecX>(yr, 2 * j0, v);
    } else {
      A va[P], vb[P];
      load_n<P, kVecX>(xr, j0, va);
      load_n<P, kVecX>(xr, half + j0, vb);
#pragma unroll
      for (int p = 0; p < P; ++p) {
        const A xa = va[p], xb = vb[p], s = sign * sn[p];
        va[p] = xa * cs[p] - xb * s;
        vb[p] = xb * cs[p] + xa * s;
      }
      store_n<P, kVecX>(yr, j0, va);
      store_n<P, kVecX>(yr, half + j0, vb);
    }
  }
}

template <typename F>
void dispatch_rotary_types(ScalarType t, ScalarType w, F&& body) {
  EMBER_CUDA_DISPATCH_FLOAT(t, "rotary_embedding", [&]<typename T>() {
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      if (w == ScalarType::Float32) return body.template operator()<T, float>();
    }
    return body.template operator()<T, T>();
  });
}

bool aligned_to(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// Block shape for `chunks` chunks per row: x threads (a power of two up to kBlock) along the row,
// the rest of the block's kBlock threads over rows.
template <typename T, typename W, int P, bool kInterleaved, bool kVecX, bool kVecCs>
void launch(const T* x, const W* cos_p, const W* sin_p, T* y, int64_t rows, int64_t d, const RotaryRows& idx,
            acc_t<T> sign, cudaStream_t stream) {
  const int64_t chunks = d / 2 / P;
  int tx = 1;
  while (tx < chunks && tx < kBlock) tx *= 2;
  const int ty = kBlock / tx;
  const dim3 block(tx, ty);
  const int64_t grid = (rows + ty - 1) / ty;
  rotary_kernel<T, W, P, kInterleaved, kVecX, kVecCs>
      <<<grid, block, 0, stream>>>(x, cos_p, sin_p, y, rows, d, idx, sign);
  EMBER_CUDA_KERNEL_CHECK();
}

}  // namespace

// in: x [rows, D], cos [*lead, D/2], sin [*lead, D/2]; out: y [rows, D].
void rotary_embedding(const KernelArgs& a, const RotaryEmbeddingAttrs& attrs) {
  const Tensor& x = a.in[0];
  if (x.numel() == 0) return;
  const int64_t d = x.sizes().back(), half = d / 2, rows = x.numel() / d;
  const RotaryRows idx = RotaryRows::of(a.in[1], a.in[2]);
  DeviceGuard guard(x.device());
  cudaStream_t stream = current_stream();
  dispatch_rotary_types(x.dtype(), a.in[1].dtype(), [&]<typename T, typename W>() {
    using A = acc_t<T>;
    const T* xp = x.data<T>();
    T* yp = a.out[0].data<T>();
    const W* cp = a.in[1].data<W>();
    const W* sp = a.in[2].data<W>();
    const A sign = attrs.inverse ? A(-1) : A(1);
    // P pairs per chunk: 16 bytes of x per vector (non-interleaved: P elements; interleaved: 2P).
    constexpr int kP = 16 / sizeof(T);
    constexpr int kPi = kP / 2;
    const bool x_aligned = aligned_to(xp, 16) && aligned_to(yp, 16);
    // cos/sin vectors of P elements: aligned bases and every row offset a multiple of P.
    auto cs_vec = [&](int p) {
      return aligned_to(cp, sizeof(W) * p) && aligned_to(sp, sizeof(W) * p) && idx.strides_multiple_of(p);
    };
    if (!attrs.interleaved && x_aligned && half % kP == 0) {
      if (cs_vec(kP)) launch<T, W, kP, false, true, true>(xp, cp, sp, yp, rows, d, idx, sign, stream);
      else launch<T, W, kP, false, true, false>(xp, cp, sp, yp, rows, d, idx, sign, stream);
    } else if (attrs.interleaved && x_aligned && half % kPi == 0) {
      if (cs_vec(kPi)) launch<T, W, kPi, true, true, true>(xp, cp, sp, yp, rows, d, idx, sign, stream);
      else launch<T, W, kPi, true, true, false>(xp, cp, sp, yp, rows, d, idx, sign, stream);
    } else if (attrs.interleaved) {
      launch<T, W, 1, true, false, false>(xp, cp, sp, yp, rows, d, idx, sign, stream);
    } else {
      launch<T, W, 1, false, false, false>(xp, cp, sp, yp, rows, d, idx, sign, stream);
    }
  });
}

}  // namespace ember::cuda
