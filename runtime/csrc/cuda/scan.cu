// CUDA kernels of the scans (cumprod and its backward, cummax/cummin, logcumsumexp) and of
// searchsorted; same semantics as cpu/scan.cpp. Scans see the contiguous input as [outer, D, inner]
// and run one thread per (outer, inner) line, adjacent threads on adjacent memory, accumulating in
// float (double for double; int64 for integers). searchsorted runs one thread per value.
#include <cmath>

#include "cuda/block_reduce.cuh"
#include "cuda/loops.cuh"
#include "generated/kernels_scan.h"

namespace ember::cuda {
namespace {

struct Lines {
  int64_t outer = 1, D = 1, inner = 1;
  __host__ __device__ int64_t count() const { return outer * inner; }
  // Offset of element 0 of line `idx`; element j is at base + j * inner.
  __device__ int64_t base(int64_t idx) const { return (idx / inner) * D * inner + idx % inner; }
};

Lines lines_of(const Tensor& x, int64_t dim) {
  Lines r;
  if (x.dim() == 0) return r;
  r.D = x.sizes()[dim];
  for (int64_t d = 0; d < dim; ++d) r.outer *= x.sizes()[d];
  for (int64_t d = dim + 1; d < x.dim(); ++d) r.inner *= x.sizes()[d];
  return r;
}

template <typename T, typename Acc, typename Out>
__global__ void cumprod_kernel(const T* in, Out* out, Lines L) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= L.count()) return;
  const int64_t b = L.base(idx);
  Acc acc = 1;
  for (int64_t j = 0; j < L.D; ++j) {
    acc *= cvt<Acc>(in[b + j * L.inner]);
    out[b + j * L.inner] = cvt<Out>(acc);
  }
}

// Note [cumprod backward] (ops/scan.cpp); the exclusive prefix products are stored in out first.
template <typename T>
__global__ void cumprod_backward_kernel(const T* g, const T* x, T* out, Lines L) {
  using A = acc_t<cuda_opmath_t<T>>;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= L.count()) return;
  const int64_t b = L.base(idx), s = L.inner;
  A p = 1;
  for (int64_t j = 0; j < L.D; ++j) {
    out[b + j * s] = cvt<T>(p);
    p *= cvt<A>(x[b + j * s]);
  }
  A r = 0;
  for (int64_t k = L.D - 1; k >= 0; --k) {
    r = cvt<A>(g[b + k * s]) + (k + 1 < L.D ? cvt<A>(x[b + (k + 1) * s]) * r : A(0));
    out[b + k * s] = cvt<T>(cvt<A>(out[b + k * s]) * r);
  }
}

template <typename T, bool IsMax>
__global__ void cum_extremum_kernel(const T* in, T* values, int64_t* indices, Lines L) {
  using O = cuda_opmath_t<T>;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= L.count()) return;
  const int64_t b = L.base(idx);
  O best = cvt<O>(in[b]);
  int64_t at = 0;
  for (int64_t j = 0; j < L.D; ++j) {
    const O v = cvt<O>(in[b + j * L.inner]);
    const bool take = IsMax ? v >= best : v <= best;
    if (v != v || (best == best && take)) { best = v; at = j; }
    values[b + j * L.inner] = cvt<T>(best);
    indices[b + j * L.inner] = at;
  }
}

template <typename T>
__global__ void logcumsumexp_kernel(const T* in, T* out, Lines L) {
  using A = acc_t<cuda_opmath_t<T>>;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= L.count()) return;
  const int64_t b = L.base(idx);
  A acc = -INFINITY;
  for (int64_t j = 0; j < L.D; ++j) {
    const A v = cvt<A>(in[b + j * L.inner]);
    const A lo = v != v ? v : (acc < v ? acc : v), hi = v != v ? v : (acc > v ? acc : v);
    if (lo != hi || isfinite(lo)) acc = hi + ::log1p(::exp(lo - hi));
    out[b + j * L.inner] = cvt<T>(acc);
  }
}

template <typename T, typename Idx>
__global__ void searchsorted_kernel(const T* seq, const T* values, const int64_t* sorter, Idx* out, int64_t count,
                                    int64_t n, int64_t row_len, bool per_row, bool right) {
  using O = cuda_opmath_t<T>;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= count) return;
  const int64_t base = per_row ? (i / row_len) * n : 0;
  const O v = cvt<O>(values[i]);
  int64_t start = 0, end = n;
  while (start < end) {
    const int64_t mid = start + ((end - start) >> 1);
    const O m = cvt<O>(seq[base + (sorter ? sorter[base + mid] : mid)]);
    if (right ? !(m > v) : !(m >= v)) start = mid + 1;
    else end = mid;
  }
  out[i] = static_cast<Idx>(start);
}

// The output is fresh and contiguous (frontends); the input is made contiguous.
struct ScanSetup {
  Tensor x;
  Lines lines;
  cudaStream_t stream;
};

ScanSetup setup(const Tensor& in, int64_t dim) {
  const Tensor x = contiguous_as(in, in.dtype());
  return {x, lines_of(x, dim), current_stream()};
}

}  // namespace

void cumprod(const KernelArgs& args, const CumprodAttrs& attrs) {
  const Tensor& out = args.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  const ScanSetup s = setup(args.in[0], attrs.dim);
  EMBER_CUDA_DISPATCH_ALL(s.x.dtype(), "cumprod", [&]<typename T>() {
    if (out.dtype() == s.x.dtype()) {
      if constexpr (!std::is_same_v<T, bool>) {
        using Acc = std::conditional_t<std::is_integral_v<T>, int64_t, acc_t<cuda_opmath_t<T>>>;
        cumprod_kernel<T, Acc, T><<<blocks_for(s.lines.count()), kBlock, 0, s.stream>>>(s.x.data<T>(), out.data<T>(),
                                                                                          s.lines);
      }
    } else if constexpr (std::is_integral_v<T> || std::is_same_v<T, bool>) {
      cumprod_kernel<T, int64_t, int64_t><<<blocks_for(s.lines.count()), kBlock, 0, s.stream>>>(
          s.x.data<T>(), out.data<int64_t>(), s.lines);
    }
    EMBER_CUDA_KERNEL_CHECK();
  });
}

void cumprod_backward(const KernelArgs& args, const CumprodBackwardAttrs& attrs) {
  const Tensor& out = args.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  const ScanSetup s = setup(args.in[1], attrs.dim);
  const Tensor g = contiguous_as(args.in[0], out.dtype());
  EMBER_CUDA_DISPATCH_FLOAT(out.dtype(), "cumprod_backward", [&]<typename T>() {
    cumprod_backward_kernel<T><<<blocks_for(s.lines.count()), kBlock, 0, s.stream>>>(g.data<T>(), s.x.data<T>(),
                                                                                      out.data<T>(), s.lines);
    EMBER_CUDA_KERNEL_CHECK();
  });
}

namespace {
template <bool IsMax>
void cum_extremum(const KernelArgs& args, int64_t dim, const char* name) {
  const Tensor &values = args.out[0], &indices = args.out[1];
  if (values.numel() == 0) return;
  DeviceGuard guard(values.device());
  const ScanSetup s = setup(args.in[0], dim);
  EMBER_CUDA_DISPATCH_ALL(s.x.dtype(), name, [&]<typename T>() {
    cum_extremum_kernel<T, IsMax><<<blocks_for(s.lines.count()), kBlock, 0, s.stream>>>(
        s.x.data<T>(), values.data<T>(), indices.data<int64_t>(), s.lines);
    EMBER_CUDA_KERNEL_CHECK();
  });
}
}  // namespace

void cummax(const KernelArgs& args, const CummaxAttrs& attrs) { cum_extremum<true>(args, attrs.dim, "cummax"); }
void cummin(const KernelArgs& args, const CumminAttrs& attrs) { cum_extremum<false>(args, attrs.dim, "cummin"); }

void logcumsumexp(const KernelArgs& args, const LogcumsumexpAttrs& attrs) {
  const Tensor& out = args.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  const ScanSetup s = setup(args.in[0], attrs.dim);
  EMBER_CUDA_DISPATCH_FLOAT(out.dtype(), "logcumsumexp", [&]<typename T>() {
    logcumsumexp_kernel<T><<<blocks_for(s.lines.count()), kBlock, 0, s.stream>>>(s.x.data<T>(), out.data<T>(),
                                                                                  s.lines);
    EMBER_CUDA_KERNEL_CHECK();
  });
}

void searchsorted(const KernelArgs& args, const SearchsortedAttrs& attrs) {
  const Tensor &seq = args.in[0], &values = args.in[1];
  const Tensor& out = args.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  const int64_t* sorter = args.in.size() > 2 ? args.in[2].data<int64_t>() : nullptr;
  const int64_t n = seq.sizes()[seq.dim() - 1];
  const int64_t row_len = values.dim() == 0 ? 1 : values.sizes()[values.dim() - 1];
  const bool per_row = seq.dim() > 1;
  cudaStream_t stream = current_stream();
  EMBER_CUDA_DISPATCH_NUMERIC(seq.dtype(), "searchsorted", [&]<typename T>() {
    const int64_t count = values.numel();
    if (out.dtype() == ScalarType::Int32)
      searchsorted_kernel<T, int32_t><<<blocks_for(count), kBlock, 0, stream>>>(
          seq.data<T>(), values.data<T>(), sorter, out.data<int32_t>(), count, n, row_len, per_row, attrs.right);
    else
      searchsorted_kernel<T, int64_t><<<blocks_for(count), kBlock, 0, stream>>>(
          seq.data<T>(), values.data<T>(), sorter, out.data<int64_t>(), count, n, row_len, per_row, attrs.right);
    EMBER_CUDA_KERNEL_CHECK();
  });
}

}  // namespace ember::cuda
