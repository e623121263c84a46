// CUDA kernels of scatter, advanced indexing (index / index_put) and the data-dependent selections
// masked_select / nonzero (frontends: ops/index.cpp), with cpu/index.cpp's semantics.
// Index values are validated as in Note [CUDA index validation] (cuda/index.cu): one host sync
// before the kernel, none during graph capture (out-of-range entries are then skipped). Where
// several targets coincide (scatter, index_put without accumulate) which write lands is
// unspecified, as in torch's CUDA kernels (the CPU keeps the last); accumulation uses atomics.
#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>

#include <limits>

#include "cuda/index_common.cuh"
#include "generated/kernels_index.h"

namespace ember::cuda {
namespace {

constexpr int64_t kInvalidOffset = std::numeric_limits<int64_t>::min();  // an out-of-range index

template <typename B>
__global__ void scatter_kernel(B* out, const B* src, const int64_t* idx, NdIter<3> it, int64_t osize, int64_t ostride) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < it.numel; e += stride) {
    int64_t off[3];
    it.offsets(e, off);
    const int64_t v = idx[off[1]];
    if (v < 0 || v >= osize) continue;
    out[off[0] + v * ostride] = src[off[2]];
  }
}

// ---- advanced indexing (Note [Advanced indexing geometry], cpu/index.cpp) ----------------------
// The result is laid out [P..., B..., Q...]; element (p, b, q) lives at
// pre_offset(p) + offsets[b] + post_offset(q) in the indexed tensor.
struct IndexedSpace {
  int npre = 0, npost = 0;
  int64_t pre_sizes[kMaxDims], pre_strides[kMaxDims], post_sizes[kMaxDims], post_strides[kMaxDims];
  int64_t nb = 1, q = 1, total = 0;

  __device__ __forceinline__ static int64_t walk(int64_t linear, int n, const int64_t* sizes, const int64_t* strides) {
    int64_t off = 0;
    for (int d = n - 1; d >= 0; --d) {
      off += (linear % sizes[d]) * strides[d];
      linear /= sizes[d];
    }
    return off;
  }
  // Offset of result element e in the indexed tensor, or kInvalidOffset.
  __device__ __forceinline__ int64_t offset(int64_t e, const int64_t* offsets) const {
    const int64_t qi = e % q, pb = e / q;
    const int64_t b = pb % nb, p = pb / nb;
    const int64_t ob = offsets[b];
    if (ob == kInvalidOffset) return kInvalidOffset;
    return walk(p, npre, pre_sizes, pre_strides) + ob + walk(qi, npost, post_sizes, post_strides);
  }
};

__device__ __forceinline__ unsigned long long biased(int64_t v) { return static_cast<unsigned long long>(v) ^ (1ull << 63); }

// offsets[b] += wrap(idx[b]) * stride for one indexed dim (kInvalidOffset once any index of b is
// out of range); range[0] / range[1] collect the min / max index (biased to unsigned order).
__global__ void add_index_offsets_kernel(const int64_t* idx, NdIter<1> it, int64_t size, int64_t stride,
                                         int64_t* offsets, unsigned long long* range_min,
                                         unsigned long long* range_max) {
  unsigned long long lo = ~0ull, hi = 0;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < it.numel; b += step) {
    int64_t off[1];
    it.offsets(b, off);
    const int64_t v = idx[off[0]];
    lo = min(lo, biased(v));
    hi = max(hi, biased(v));
    if (offsets[b] == kInvalidOffset) continue;
    offsets[b] = (v < -size || v >= size) ? kInvalidOffset : offsets[b] + (v < 0 ? v + size : v) * stride;
  }
  // Every thread of the warp gets here (no early exit above): reduce, then one atomic per warp.
  for (int s = 16; s > 0; s >>= 1) {
    lo = min(lo, __shfl_down_sync(0xffffffffu, lo, s));
    hi = max(hi, __shfl_down_sync(0xffffffffu, hi, s));
  }
  if ((threadIdx.x & 31) == 0) {
    atomicMin(range_min, lo);
    atomicMax(range_max, hi);
  }
}

// f(offset in the indexed tensor, e) for every result element e whose indices are all in range.
template <typename F>
__global__ void for_each_indexed_kernel(IndexedSpace s, const int64_t* offsets, F f) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < s.total; e += stride) {
    const int64_t o = s.offset(e, offsets);
    if (o != kInvalidOffset) f(o, e);
  }
}

template <typename B>
struct GatherFn {  // index: out[e] = x[o]
  B* out;
  const B* x;
  __device__ __forceinline__ void operator()(int64_t o, int64_t e) const { out[e] = x[o]; }
};
template <typename B>
struct PutFn {  // index_put: out[o] = values[e]
  B* out;
  const B* values;
  __device__ __forceinline__ void operator()(int64_t o, int64_t e) const { out[o] = values[e]; }
};
template <typename T>
struct AccumulateFn {  // index_put(accumulate=True): out[o] += values[e]
  T* out;
  const T* values;
  __device__ __forceinline__ void operator()(int64_t o, int64_t e) const {
    atomic_add(out + o, cvt<cuda_opmath_t<T>>(values[e]));
  }
};

struct IndexPlan {
  IndexedSpace space;
  Tensor offsets;  // int64 [NB]: the combined offset of every broadcast index position
};

// Builds the [P, B, Q] geometry of indexing a tensor of `sizes`/`strides` with `idx` (undefined
// entries: dims taken whole; defined ones all broadcast to one shape by the frontend) and the
// per-position offsets; validates every index with one host sync (IndexError like the CPU).
IndexPlan plan_index(IntSpan sizes, IntSpan strides, std::span<const Tensor> idx, Device device, int64_t total) {
  const int64_t nd = static_cast<int64_t>(sizes.size());
  const int64_t n_idx = static_cast<int64_t>(idx.size());
  auto indexed = [&](int64_t d) { return d < n_idx && idx[d].defined(); };
  int64_t first = -1, last = -1;
  DimVector bshape;
  std::vector<int64_t> dims;  // the indexed dims, in order
  for (int64_t d = 0; d < n_idx; ++d)
    if (indexed(d)) { if (first < 0) { first = d; bshape = idx[d].sizes(); } last = d; dims.push_back(d); }
  bool adjacent = true;
  for (int64_t d = first; d <= last; ++d) adjacent &= indexed(d);

  IndexPlan plan;
  IndexedSpace& s = plan.space;
  s.nb = numel_of(bshape);
  s.total = total;
  cudaStream_t stream = current_stream();
  plan.offsets = Tensor::empty(DimVector{s.nb}, ScalarType::Int64, device);
  const int64_t m = static_cast<int64_t>(dims.size());
  Tensor range = Tensor::empty(DimVector{2 * m}, ScalarType::Int64, device);  // [mins..., maxs...]
  EMBER_CUDA_CHECK(cudaMemsetAsync(plan.offsets.data_ptr(), 0, s.nb * sizeof(int64_t), stream));
  EMBER_CUDA_CHECK(cudaMemsetAsync(range.data_ptr(), 0xff, m * sizeof(int64_t), stream));
  EMBER_CUDA_CHECK(cudaMemsetAsync(range.data<int64_t>() + m, 0, m * sizeof(int64_t), stream));
  auto* range_p = reinterpret_cast<unsigned long long*>(range.data_ptr());
  for (int64_t j = 0; j < m; ++j) {
    const Tensor& t = idx[dims[j]];
    const auto it = make_iter<1>(bshape, {t.strides()});
    add_index_offsets_kernel<<<elementwise_grid(s.nb), kBlock, 0, stream>>>(
        t.data<int64_t>(), it, sizes[dims[j]], strides[dims[j]], plan.offsets.data<int64_t>(), range_p + j,
        range_p + m + j);
    EMBER_CUDA_KERNEL_CHECK();
  }
  if (s.nb > 0 && !is_capturing(stream)) {  // Note [CUDA index validation]
    std::vector<unsigned long long> r(2 * m);
    EMBER_CUDA_CHECK(cudaMemcpyAsync(r.data(), range_p, 2 * m * sizeof(unsigned long long), cudaMemcpyDeviceToHost,
                                     stream));
    EMBER_CUDA_CHECK(cudaStreamSynchronize(stream));
    for (int64_t j = 0; j < m; ++j) {  // first offending dim, like the CPU's dim-by-dim pass
      const int64_t size = sizes[dims[j]];
      const int64_t lo = static_cast<int64_t>(r[j] ^ (1ull << 63)), hi = static_cast<int64_t>(r[m + j] ^ (1ull << 63));
      if (lo < -size) fail(ErrorKind::Index, "[index] index ", lo, " is out of bounds for dimension ", dims[j], " with size ", size);
      if (hi >= size) fail(ErrorKind::Index, "[index] index ", hi, " is out of bounds for dimension ", dims[j], " with size ", size);
    }
  }
  for (int64_t d = 0; d < nd; ++d) {
    if (indexed(d)) continue;
    const bool before = adjacent && d < first;
    int& n = before ? s.npre : s.npost;
    EMBER_CHECK(n < kMaxDims, "[index] more than ", kMaxDims, " non-indexed dims are not supported on CUDA");
    (before ? s.pre_sizes : s.post_sizes)[n] = sizes[d];
    (before ? s.pre_strides : s.post_strides)[n] = strides[d];
    ++n;
    if (!before) s.q *= sizes[d];
  }
  return plan;
}

// ---- masked_select / nonzero ---------------------------------------------------------------------
template <typename T>
__global__ void nonzero_flags_kernel(const T* x, NdIter<1> it, bool* flags) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < it.numel; e += stride) {
    int64_t off[1];
    it.offsets(e, off);
    flags[e] = cvt<cuda_opmath_t<T>>(x[off[0]]) != cuda_opmath_t<T>(0);
  }
}

// The flat positions (row-major over `it`'s shape) whose flag is set, in order, into `selected`;
// the count lands in `count` on the device.
void select_flagged(const bool* flags, int64_t total, int64_t* selected, int64_t* count, Device device,
                    cudaStream_t stream) {
  thrust::counting_iterator<int64_t> positions(0);
  size_t temp_bytes = 0;
  EMBER_CUDA_CHECK(cub::DeviceSelect::Flagged(nullptr, temp_bytes, positions, flags, selected, count, total, stream));
  Tensor temp = Tensor::empty(DimVector{static_cast<int64_t>(std::max<size_t>(temp_bytes, 1))}, ScalarType::UInt8,
                              device);
  EMBER_CUDA_CHECK(
      cub::DeviceSelect::Flagged(temp.data_ptr(), temp_bytes, positions, flags, selected, count, total, stream));
}

// out[k] = x[selected[k]] for k < min(limit, count) (count: the device-side number selected).
template <typename B>
__global__ void gather_selected_kernel(B* out, const B* x, NdIter<1> it, const int64_t* selected, const int64_t* count,
                                       int64_t limit) {
  const int64_t n = *count < limit ? *count : limit;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    int64_t off[1];
    it.offsets(selected[k], off);
    out[k] = x[off[0]];
  }
}

// out[k, :] = coordinates of flat position selected[k] in a tensor of `it`'s sizes.
__global__ void coordinates_kernel(int64_t* out, NdIter<1> it, const int64_t* selected, const int64_t* count,
                                   int64_t limit) {
  const int64_t n = *count < limit ? *count : limit;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    int64_t linear = selected[k];
    for (int d = it.nd - 1; d >= 0; --d) {
      out[k * it.nd + d] = linear % it.sizes[d];
      linear /= it.sizes[d];
    }
  }
}

__global__ void mask_flags_kernel(const bool* mask, NdIter<1> it, bool* flags) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < it.numel; e += stride) {
    int64_t off[1];
    it.offsets(e, off);
    flags[e] = mask[off[0]];
  }
}

// masked_select / nonzero get their output size from the frontend's host count: not capturable.
void check_not_capturing(const char* op, cudaStream_t stream) {
  EMBER_CHECK(!is_capturing(stream), "[", op, "] is not CUDA graph-capturable: its output size depends on the data "
              "(the frontend counts on the host)");
}

}  // namespace

void scatter(const KernelArgs& a, const DimAttrs& attrs) {
  const Tensor &index = a.in[1], &src = a.in[2], &out = a.out[0];
  if (index.numel() == 0) return;
  DeviceGuard guard(out.device());
  const int64_t d = attrs.dim;
  const int64_t osize = sizes1(out)[d], ostride = strides1(out)[d];
  check_index_range(index, osize, false, ErrorKind::Runtime, "scatter", d);
  const auto it = make_iter<3>(sizes1(index), {without_dim(strides1(out), d), strides1(index), strides1(src)});
  dispatch_bytes(out.dtype(), [&]<typename B>() {
    scatter_kernel<B><<<elementwise_grid(it.numel), kBlock, 0, current_stream()>>>(
        out.data<B>(), src.data<B>(), index.data<int64_t>(), it, osize, ostride);
  });
  EMBER_CUDA_KERNEL_CHECK();
}

void index(const KernelArgs& a, const IndexAttrs& attrs) {
  const Tensor &x = a.in[0], &out = a.out[0];  // out: contiguous, laid out [P, B, Q]
  if (out.numel() == 0) return;  // like torch, indices are not validated when nothing is read
  DeviceGuard guard(out.device());
  const IndexPlan plan = plan_index(x.sizes(), x.strides(), a.in.subspan(1), out.device(), out.numel());
  dispatch_bytes(x.dtype(), [&]<typename B>() {
    for_each_indexed_kernel<<<elementwise_grid(plan.space.total), kBlock, 0, current_stream()>>>(
        plan.space, plan.offsets.data<int64_t>(), GatherFn<B>{out.data<B>(), x.data<B>()});
  });
  EMBER_CUDA_KERNEL_CHECK();
}

void index_put(const KernelArgs& a, const IndexAttrs& attrs) {
  const Tensor& values = a.in[1];  // contiguous, shaped like the indexing result [P, B, Q]
  const Tensor& out = a.out[0];
  if (values.numel() == 0) return;
  DeviceGuard guard(out.device());
  const IndexPlan plan = plan_index(out.sizes(), out.strides(), a.in.subspan(2), out.device(), values.numel());
  const int grid = elementwise_grid(plan.space.total);
  const int64_t* offsets = plan.offsets.data<int64_t>();
  if (!attrs.accumulate) {
    dispatch_bytes(out.dtype(), [&]<typename B>() {
      for_each_indexed_kernel<<<grid, kBlock, 0, current_stream()>>>(plan.space, offsets,
                                                                     PutFn<B>{out.data<B>(), values.data<B>()});
    });
  } else {
    EMBER_CUDA_DISPATCH_ALL(out.dtype(), "index_put", [&]<typename T>() {
      for_each_indexed_kernel<<<grid, kBlock, 0, current_stream()>>>(plan.space, offsets,
                                                                     AccumulateFn<T>{out.data<T>(), values.data<T>()});
    });
  }
  EMBER_CUDA_KERNEL_CHECK();
}

void masked_select(const KernelArgs& a, const MaskedSelectAttrs& attrs) {
  const Tensor &x = a.in[0], &mask = a.in[1], &out = a.out[0];
  const DimVector& shape = attrs.shape;
  const int64_t limit = out.numel(), total = numel_of(shape);
  if (limit == 0 || total == 0) return;
  DeviceGuard guard(out.device());
  cudaStream_t stream = current_stream();
  check_not_capturing("masked_select", stream);
  Tensor flags = Tensor::empty(DimVector{total}, ScalarType::Bool, out.device());
  Tensor selected = Tensor::empty(DimVector{total}, ScalarType::Int64, out.device());
  Tensor count = Tensor::empty(DimVector{1}, ScalarType::Int64, out.device());
  mask_flags_kernel<<<elementwise_grid(total), kBlock, 0, stream>>>(
      mask.data<bool>(), make_iter<1>(shape, {broadcast_strides(mask, shape)}), flags.data<bool>());
  EMBER_CUDA_KERNEL_CHECK();
  select_flagged(flags.data<bool>(), total, selected.data<int64_t>(), count.data<int64_t>(), out.device(), stream);
  const auto x_it = make_iter<1>(shape, {broadcast_strides(x, shape)});
  dispatch_bytes(x.dtype(), [&]<typename B>() {
    gather_selected_kernel<B><<<elementwise_grid(limit), kBlock, 0, stream>>>(
        out.data<B>(), x.data<B>(), x_it, selected.data<int64_t>(), count.data<int64_t>(), limit);
  });
  EMBER_CUDA_KERNEL_CHECK();
}

void nonzero(const KernelArgs& a, const NoAttrs& attrs) {
  const Tensor &x = a.in[0], &out = a.out[0];  // out: contiguous int64 [n, x.dim()]
  const int64_t limit = out.sizes()[0];
  if (x.numel() == 0 || limit == 0 || x.dim() == 0) return;  // a 0-dim x has no coordinates to write
  DeviceGuard guard(out.device());
  cudaStream_t stream = current_stream();
  check_not_capturing("nonzero", stream);
  const int64_t total = x.numel();
  Tensor flags = Tensor::empty(DimVector{total}, ScalarType::Bool, out.device());
  Tensor selected = Tensor::empty(DimVector{total}, ScalarType::Int64, out.device());
  Tensor count = Tensor::empty(DimVector{1}, ScalarType::Int64, out.device());
  const auto it = make_iter<1>(x.sizes(), {x.strides()});
  EMBER_CUDA_DISPATCH_ALL(x.dtype(), "nonzero", [&]<typename T>() {
    nonzero_flags_kernel<T><<<elementwise_grid(total), kBlock, 0, stream>>>(x.data<T>(), it, flags.data<bool>());
  });
  EMBER_CUDA_KERNEL_CHECK();
  select_flagged(flags.data<bool>(), total, selected.data<int64_t>(), count.data<int64_t>(), out.device(), stream);
  coordinates_kernel<<<elementwise_grid(limit), kBlock, 0, stream>>>(out.data<int64_t>(), it, selected.data<int64_t>(),
                                                                     count.data<int64_t>(), limit);
  EMBER_CUDA_KERNEL_CHECK();
}

}  // namespace ember::cuda
