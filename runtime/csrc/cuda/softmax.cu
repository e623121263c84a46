// softmax / log_softmax along a dim, and cumsum. The input is made contiguous first, then seen as
// [outer, D, inner]:
//   * inner == 1, D <= 1024: one warp per row (three passes: max, sum of exp, write);
//   * inner == 1, larger D: one block per row;
//   * inner > 1: one thread per (outer, inner) column, adjacent threads on adjacent memory.
// Accumulation in float (double for double); -inf rows give NaN like torch.
#include <cmath>

#include "cuda/block_reduce.cuh"
#include "cuda/loops.cuh"
#include "generated/kernels_reduce.h"

namespace ember::cuda {
namespace {

template <typename T, bool Log>
__device__ __forceinline__ void write_row(const T* x, T* y, int64_t D, int64_t start, int64_t step, acc_t<T> m, acc_t<T> s) {
  using A = acc_t<T>;
  if constexpr (Log) {
    const A lse = m + ::log(s);
    for (int64_t j = start; j < D; j += step) y[j] = cvt<T>(cvt<A>(x[j]) - lse);
  } else {
    const A inv = A(1) / s;
    for (int64_t j = start; j < D; j += step) y[j] = cvt<T>(::exp(cvt<A>(x[j]) - m) * inv);
  }
}

template <typename T, bool Log>
__global__ void softmax_warp_kernel(const T* in, T* out, int64_t rows, int64_t D) {
  using A = acc_t<T>;
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const T* x = in + row * D;
  A m = -INFINITY;
  for (int64_t j = lane; j < D; j += 32) { A v = cvt<A>(x[j]); m = (v > m || v != v) ? v : m; }
  m = warp_max(m);
  A s = 0;
  for (int64_t j = lane; j < D; j += 32) s += ::exp(cvt<A>(x[j]) - m);
  s = warp_sum(s);
  write_row<T, Log>(x, out + row * D, D, lane, 32, m, s);
}

// One block per row. The row is read from global memory once into shared memory (as A) when it
// fits (Cached), so the max / sum / write passes re-read shared memory instead of L2.
template <typename T, bool Log, bool Cached>
__global__ void softmax_block_kernel(const T* in, T* out, int64_t D) {
  using A = acc_t<T>;
  extern __shared__ unsigned char smem_raw[];
  A* row = reinterpret_cast<A*>(smem_raw);
  __shared__ A red[32];
  const T* x = in + static_cast<int64_t>(blockIdx.x) * D;
  T* y = out + static_cast<int64_t>(blockIdx.x) * D;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  auto load = [&](int64_t j) -> A { return Cached ? row[j] : cvt<A>(x[j]); };
  A m = -INFINITY;
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) {
    A v = cvt<A>(x[j]);
    if constexpr (Cached) row[j] = v;
    m = (v > m || v != v) ? v : m;
  }
  m = warp_max(m);
  if (lane == 0) red[warp] = m;
  __syncthreads();
  m = lane < nwarps ? red[lane] : A(-INFINITY);
  m = warp_max(m);
  __syncthreads();
  A s = 0;
  for (int64_t j = threadIdx.x; j < D; j += blockDim.x) s += ::exp(load(j) - m);
  s = warp_sum(s);
  if (lane == 0) red[warp] = s;
  __syncthreads();
  s = lane < nwarps ? red[lane] : A(0);
  s = warp_sum(s);
  if constexpr (Log) {
    const A lse = m + ::log(s);
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) y[j] = cvt<T>(load(j) - lse);
  } else {
    const A inv = A(1) / s;
    for (int64_t j = threadIdx.x; j < D; j += blockDim.x) y[j] = cvt<T>(::exp(load(j) - m) * inv);
  }
}

template <typename T, bool Log>
__global__ void softmax_inner_kernel(const T* in, T* out, int64_t outer, int64_t D, int64_t inner) {
  using A = acc_t<T>;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= outer * inner) return;
  const int64_t o = idx / inner, i = idx % inner;
  const T* x = in + o * D * inner + i;
  T* y = out + o * D * inner + i;
  A m = -INFINITY;
  for (int64_t j = 0; j < D; ++j) { A v = cvt<A>(x[j * inner]); m = (v > m || v != v) ? v : m; }
  A s = 0;
  for (int64_t j = 0; j < D; ++j) s += ::exp(cvt<A>(x[j * inner]) - m);
  if constexpr (Log) {
    const A lse = m + ::log(s);
    for (int64_t j = 0; j < D; ++j) y[j * inner] = cvt<T>(cvt<A>(x[j * inner]) - lse);
  } else {
    const A inv = A(1) / s;
    for (int64_t j = 0; j < D; ++j) y[j * inner] = cvt<T>(::exp(cvt<A>(x[j * inner]) - m) * inv);
  }
}

// A contiguous x seen as [outer, D, inner] around `dim` (a 0-d tensor is [1, 1, 1]).
struct DimSplit { int64_t outer = 1, D = 1, inner = 1; };
DimSplit split_at_dim(const Tensor& x, int64_t dim) {
  DimSplit r;
  if (x.dim() == 0) return r;
  r.D = x.sizes()[dim];
  for (int64_t d = 0; d < dim; ++d) r.outer *= x.sizes()[d];
  for (int64_t d = dim + 1; d < x.dim(); ++d) r.inner *= x.sizes()[d];
  return r;
}

template <bool Log>
void softmax_impl(const KernelArgs& args, int64_t dim, const char* name) {
  const Tensor& out = args.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  const Tensor x = contiguous_as(args.in[0], out.dtype());
  const DimSplit split = split_at_dim(x, dim);
  const int64_t outer = split.outer, D = split.D, inner = split.inner;
  // The output is freshly allocated and contiguous (frontend); write into it directly.
  Tensor y = out.is_contiguous() ? out : Tensor::empty(out.sizes(), out.dtype(), out.device());
  cudaStream_t stream = current_stream();
  EMBER_CUDA_DISPATCH_FLOAT(x.dtype(), name, [&]<typename T>() {
    const T* in = x.data<T>();
    T* o = y.data<T>();
    if (inner == 1 && D <= 1024) {
      softmax_warp_kernel<T, Log><<<blocks_for(outer * 32), kBlock, 0, stream>>>(in, o, outer, D);
    } else if (inner == 1 && D * static_cast<int64_t>(sizeof(acc_t<T>)) <= 40 * 1024) {
      softmax_block_kernel<T, Log, true><<<outer, 512, D * sizeof(acc_t<T>), stream>>>(in, o, D);
    } else if (inner == 1) {
      softmax_block_kernel<T, Log, false><<<outer, 512, 0, stream>>>(in, o, D);
    } else {
      softmax_inner_kernel<T, Log><<<blocks_for(outer * inner), kBlock, 0, stream>>>(in, o, outer, D, inner);
    }
    EMBER_CUDA_KERNEL_CHECK();
  });
  if (!y.is_same(out)) copy_kernel(out, y);
}

template <typename T, typename Acc, typename Out>
__global__ void cumsum_kernel(const T* in, Out* out, int64_t outer, int64_t D, int64_t inner) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= outer * inner) return;
  const int64_t o = idx / inner, i = idx % inner;
  const int64_t base = o * D * inner + i;
  Acc acc = 0;
  for (int64_t j = 0; j < D; ++j) {
    acc += cvt<Acc>(in[base + j * inner]);
    out[base + j * inner] = cvt<Out>(acc);
  }
}

}  // namespace

void softmax(const KernelArgs& args, const DimAttrs& attrs) { softmax_impl<false>(args, attrs.dim, "softmax"); }
void log_softmax(const KernelArgs& args, const DimAttrs& attrs) { softmax_impl<true>(args, attrs.dim, "log_softmax"); }

// out has attrs.dtype (int64 for integer inputs unless a dtype was given); the input keeps its own.
void cumsum(const KernelArgs& args, const CumsumAttrs& attrs) {
  const Tensor& out = args.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  const Tensor x = contiguous_as(args.in[0], args.in[0].dtype());
  const DimSplit split = split_at_dim(x, attrs.dim);
  const int64_t outer = split.outer, D = split.D, inner = split.inner;
  Tensor y = out.is_contiguous() ? out : Tensor::empty(out.sizes(), out.dtype(), out.device());
  cudaStream_t stream = current_stream();
  EMBER_CUDA_DISPATCH_ALL(x.dtype(), "cumsum", [&]<typename T>() {
    if (y.dtype() == x.dtype()) {
      if constexpr (!std::is_same_v<T, bool>) {
        using Acc = std::conditional_t<std::is_integral_v<T>, int64_t, acc_t<cuda_opmath_t<T>>>;
        cumsum_kernel<T, Acc, T><<<blocks_for(outer * inner), kBlock, 0, stream>>>(x.data<T>(), y.data<T>(), outer, D, inner);
      } else {
        fail(ErrorKind::Type, "[cumsum] bool output is not supported");
      }
    } else {
      EMBER_CHECK(y.dtype() == ScalarType::Int64 && is_integral(x.dtype(), true), "[cumsum] unsupported dtypes ",
                  dtype_name(x.dtype()), " -> ", dtype_name(y.dtype()));
      if constexpr (std::is_integral_v<T> || std::is_same_v<T, bool>)
        cumsum_kernel<T, int64_t, int64_t><<<blocks_for(outer * inner), kBlock, 0, stream>>>(x.data<T>(), y.data<int64_t>(), outer, D, inner);
    }
    EMBER_CUDA_KERNEL_CHECK();
  });
  if (!y.is_same(out)) copy_kernel(out, y);
}

}  // namespace ember::cuda

// ---- attention softmax (Note [Causal rows] in cpu/softmax.cpp) -----------------------------------
// One warp per row for rows up to 1024 (attention rows: S = key length), one block otherwise.
// The forward reads only the unmasked prefix of a causal row and writes zeros after it.
namespace ember::cuda {
namespace {

// Rows are handled by groups of `width` threads: 32 (a warp) or blockDim.x (a block).
template <typename T, bool Block>
__global__ void scaled_softmax_kernel(const T* in, T* out, int64_t rows, int64_t n, int64_t L, bool causal,
                                      acc_t<T> scale) {
  using A = acc_t<T>;
  __shared__ A red[32];
  const int64_t row = Block ? blockIdx.x : (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int start = Block ? threadIdx.x : threadIdx.x % 32, step = Block ? blockDim.x : 32;
  if (row >= rows) return;  // whole warps/blocks exit together
  const T* x = in + row * n;
  T* y = out + row * n;
  const int64_t valid = causal ? min(n, row % L + 1) : n;
  A m = -INFINITY;
  for (int64_t j = start; j < valid; j += step) { A v = cvt<A>(x[j]) * scale; m = (v > m || v != v) ? v : m; }
  m = Block ? block_max(m, red) : warp_max(m);
  A s = 0;
  for (int64_t j = start; j < valid; j += step) s += ::exp(cvt<A>(x[j]) * scale - m);
  s = Block ? block_sum(s, red) : warp_sum(s);
  const A inv = A(1) / s;
  for (int64_t j = start; j < n; j += step) y[j] = j < valid ? cvt<T>(::exp(cvt<A>(x[j]) * scale - m) * inv) : T(0);
}

template <typename T, bool Block>
__global__ void softmax_backward_kernel(const T* grad, const T* outp, T* gin, int64_t rows, int64_t n, acc_t<T> scale) {
  using A = acc_t<T>;
  __shared__ A red[32];
  const int64_t row = Block ? blockIdx.x : (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int start = Block ? threadIdx.x : threadIdx.x % 32, step = Block ? blockDim.x : 32;
  if (row >= rows) return;
  const T* g = grad + row * n;
  const T* y = outp + row * n;
  A dot = 0;
  for (int64_t j = start; j < n; j += step) dot += cvt<A>(g[j]) * cvt<A>(y[j]);
  dot = Block ? block_sum(dot, red) : warp_sum(dot);
  for (int64_t j = start; j < n; j += step) gin[row * n + j] = cvt<T>(scale * cvt<A>(y[j]) * (cvt<A>(g[j]) - dot));
}

}  // namespace

void scaled_softmax(const KernelArgs& args, const ScaledSoftmaxAttrs& attrs) {
  const Tensor& x = args.in[0];  // contiguous, like out (frontend)
  const Tensor& out = args.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  const int64_t n = x.sizes()[x.dim() - 1], rows = x.numel() / n;
  const bool causal = attrs.causal;
  const int64_t L = causal ? x.sizes()[x.dim() - 2] : 1;
  cudaStream_t stream = current_stream();
  EMBER_CUDA_DISPATCH_FLOAT(x.dtype(), "scaled_softmax", [&]<typename T>() {
    const auto scale = static_cast<acc_t<T>>(attrs.scale);
    if (n <= 1024)
      scaled_softmax_kernel<T, false><<<blocks_for(rows * 32), kBlock, 0, stream>>>(x.data<T>(), out.data<T>(), rows, n, L, causal, scale);
    else
      scaled_softmax_kernel<T, true><<<rows, 512, 0, stream>>>(x.data<T>(), out.data<T>(), rows, n, L, causal, scale);
    EMBER_CUDA_KERNEL_CHECK();
  });
}

void softmax_backward(const KernelArgs& args, const SoftmaxBackwardAttrs& attrs) {
  const Tensor& g = args.in[0];
  const Tensor& y = args.in[1];
  const Tensor& out = args.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  const int64_t n = y.sizes()[y.dim() - 1], rows = y.numel() / n;
  cudaStream_t stream = current_stream();
  EMBER_CUDA_DISPATCH_FLOAT(y.dtype(), "softmax_backward", [&]<typename T>() {
    const auto scale = static_cast<acc_t<T>>(attrs.scale);
    if (n <= 1024)
      softmax_backward_kernel<T, false><<<blocks_for(rows * 32), kBlock, 0, stream>>>(g.data<T>(), y.data<T>(), out.data<T>(), rows, n, scale);
    else
      softmax_backward_kernel<T, true><<<rows, 512, 0, stream>>>(g.data<T>(), y.data<T>(), out.data<T>(), rows, n, scale);
    EMBER_CUDA_KERNEL_CHECK();
  });
}

}  // namespace ember::cuda
