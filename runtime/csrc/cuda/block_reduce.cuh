#pragma once
// Warp- and block-wide reductions shared by the row kernels (softmax, cross-entropy, LayerNorm).
// Max propagates NaN (like torch's max). Block forms: blockDim.x a multiple of 32 and <= 1024,
// `red` a __shared__ array of 32; every thread gets the result, and the trailing __syncthreads
// lets the caller reuse `red` right away.
#include <cuda_runtime.h>

#include <type_traits>

namespace ember::cuda {

// Accumulation type of the row kernels: float for half types and float, double for double.
template <typename T> using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename A>
__device__ __forceinline__ A warp_max(A v) {
  for (int o = 16; o > 0; o >>= 1) { A w = __shfl_xor_sync(0xffffffffu, v, o); v = w > v || w != w ? w : v; }
  return v;
}

template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename A>
__device__ __forceinline__ A block_max(A v, A* red) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  v = warp_max(v);
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < nwarps ? red[lane] : A(-INFINITY);
  v = warp_max(v);
  __syncthreads();
  return v;
}

template <typename A>
__device__ __forceinline__ A block_sum(A v, A* red) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  v = warp_sum(v);
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < nwarps ? red[lane] : A(0);
  v = warp_sum(v);
  __syncthreads();
  return v;
}

}  // namespace ember::cuda
