// Native CUDA kernels of the indexing ops used in training (gather, scatter_add, index_select /
// embedding, index_add / embedding backward, masked_fill, tril/triu) and arange. Semantics follow
// cpu/index.cpp and cpu/layout.cpp.
// Note [CUDA index validation]: indices are range-checked with one min/max pass and a host sync
// before the kernel (same error kinds and messages as the CPU). During CUDA graph capture the host
// check is impossible; kernels then skip out-of-range indices instead of touching wild memory.
// Accumulating kernels (scatter_add, index_add) use atomics: duplicate targets sum in an
// unspecified order, as in torch's CUDA kernels.
#include "cuda/index_common.cuh"
#include "generated/kernels_factory.h"
#include "generated/kernels_index.h"

namespace ember::cuda {
namespace {

__global__ void minmax_kernel(const int64_t* idx, NdIter<1> it, unsigned long long* out) {
  // out[0] = min (biased to unsigned order), out[1] = max
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= it.numel) return;
  int64_t off[1];
  it.offsets(i, off);
  const unsigned long long v = static_cast<unsigned long long>(idx[off[0]]) ^ (1ull << 63);
  atomicMin(&out[0], v);
  atomicMax(&out[1], v);
}

}  // namespace

void check_index_range(const Tensor& idx, int64_t size, bool allow_negative, ErrorKind kind, const char* op,
                       int64_t dim) {
  if (idx.numel() == 0) return;
  cudaStream_t stream = current_stream();
  if (is_capturing(stream)) return;  // see Note [CUDA index validation]
  Tensor buf = Tensor::empty(DimVector{2}, ScalarType::Int64, idx.device());
  unsigned long long init[2] = {~0ull, 0ull};
  EMBER_CUDA_CHECK(cudaMemcpyAsync(buf.data_ptr(), init, sizeof(init), cudaMemcpyHostToDevice, stream));
  auto it = make_iter<1>(sizes1(idx), {strides1(idx)});
  minmax_kernel<<<blocks_for(it.numel), kBlock, 0, stream>>>(idx.data<int64_t>(), it,
                                                              static_cast<unsigned long long*>(buf.data_ptr()));
  EMBER_CUDA_KERNEL_CHECK();
  unsigned long long res[2];
  EMBER_CUDA_CHECK(cudaMemcpyAsync(res, buf.data_ptr(), sizeof(res), cudaMemcpyDeviceToHost, stream));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream));
  const int64_t lo = static_cast<int64_t>(res[0] ^ (1ull << 63)), hi = static_cast<int64_t>(res[1] ^ (1ull << 63));
  const int64_t min_ok = allow_negative ? -size : 0;
  if (lo < min_ok) fail(kind, "[", op, "] index ", lo, " is out of bounds for dimension ", dim, " with size ", size);
  if (hi >= size) fail(kind, "[", op, "] index ", hi, " is out of bounds for dimension ", dim, " with size ", size);
}

namespace {

template <typename B>
__global__ void gather_kernel(B* out, const B* x, const int64_t* idx, NdIter<3> it, int64_t xsize, int64_t xstride) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= it.numel) return;
  int64_t off[3];
  it.offsets(i, off);
  const int64_t v = idx[off[1]];
  if (v < 0 || v >= xsize) return;
  out[off[0]] = x[off[2] + v * xstride];
}

template <typename T>
__global__ void scatter_add_kernel(T* out, const T* src, const int64_t* idx, NdIter<3> it, int64_t osize,
                                   int64_t ostride) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= it.numel) return;
  int64_t off[3];
  it.offsets(i, off);
  const int64_t v = idx[off[1]];
  if (v < 0 || v >= osize) return;
  atomic_add(out + off[0] + v * ostride, cvt<cuda_opmath_t<T>>(src[off[2]]));
}

template <typename B>
__global__ void index_select_kernel(B* out, const B* x, const int64_t* idx, NdIter<3> it, int64_t xsize,
                                    int64_t xstride) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= it.numel) return;
  int64_t off[3];
  it.offsets(i, off);
  const int64_t v = idx[off[2]];
  if (v < 0 || v >= xsize) return;
  out[off[0]] = x[off[1] + v * xstride];
}

// Embedding-style rows: out[r, :] = x[idx[r], :] for contiguous 2-D x and out (vectorized copy).
template <typename B>
__global__ void gather_rows_kernel(B* out, const B* x, const int64_t* idx, int64_t istride, int64_t rows,
                                   int64_t row_len, int64_t xrows) {
  const int64_t r = blockIdx.x;
  if (r >= rows) return;
  const int64_t v = idx[r * istride];
  if (v < 0 || v >= xrows) return;
  const B* src = x + v * row_len;
  B* dst = out + r * row_len;
  for (int64_t c = threadIdx.x; c < row_len; c += blockDim.x) dst[c] = src[c];
}

template <typename T>
__global__ void index_add_kernel(T* out, const T* src, const int64_t* idx, NdIter<3> it, int64_t osize,
                                 int64_t ostride, cuda_opmath_t<T> alpha) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= it.numel) return;
  int64_t off[3];
  it.offsets(i, off);
  const int64_t v = idx[off[2]];
  if (v < 0 || v >= osize) return;
  if constexpr (std::is_same_v<T, bool>) {
    if (alpha && src[off[1]]) atomic_add(out + off[0] + v * ostride, true);
  } else {
    atomic_add(out + off[0] + v * ostride, alpha * cvt<cuda_opmath_t<T>>(src[off[1]]));
  }
}

template <typename B, bool Lower>
__global__ void triangle_kernel(B* out, const B* x, NdIter<2> it, int64_t rows, int64_t cols, int64_t k) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= it.numel) return;
  int64_t off[2];
  it.offsets(i, off);
  const int64_t c = i % cols, r = (i / cols) % rows;
  const bool keep = Lower ? (c - r <= k) : (c - r >= k);
  out[off[0]] = keep ? x[off[1]] : B(0);
}

template <typename T>
struct MaskedFillFn {
  cuda_opmath_t<T> value;
  __device__ __forceinline__ cuda_opmath_t<T> operator()(cuda_opmath_t<T> x, cuda_opmath_t<T> m) const {
    return m != cuda_opmath_t<T>(0) ? value : x;
  }
};

template <typename T>
__global__ void arange_kernel(T* out, int64_t n, double start, double step, int64_t istart, int64_t istep, bool int_args) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if constexpr (std::is_integral_v<T>) {
    out[i] = int_args ? static_cast<T>(istart + i * istep)
                      : static_cast<T>(static_cast<int64_t>(start + static_cast<double>(i) * step));
  } else {
    out[i] = cvt<T>(static_cast<cuda_opmath_t<T>>(start + static_cast<double>(i) * step));
  }
}

}  // namespace

void gather(const KernelArgs& a, const DimAttrs& attrs) {
  const Tensor &x = a.in[0], &index = a.in[1], &out = a.out[0];
  if (index.numel() == 0) return;
  DeviceGuard guard(out.device());
  const int64_t d = attrs.dim;
  const int64_t xsize = sizes1(x)[d], xstride = strides1(x)[d];
  check_index_range(index, xsize, false, ErrorKind::Runtime, "gather", d);
  auto it = make_iter<3>(sizes1(index), {strides1(out), strides1(index), without_dim(strides1(x), d)});
  dispatch_bytes(x.dtype(), [&]<typename B>() {
    gather_kernel<B><<<blocks_for(it.numel), kBlock, 0, current_stream()>>>(
        out.data<B>(), x.data<B>(), index.data<int64_t>(), it, xsize, xstride);
  });
  EMBER_CUDA_KERNEL_CHECK();
}

void scatter_add(const KernelArgs& a, const DimAttrs& attrs) {
  const Tensor &index = a.in[1], &src = a.in[2], &out = a.out[0];
  if (index.numel() == 0 || src.numel() == 0) return;  // a 0-size source with indices: no blocks to launch
  DeviceGuard guard(out.device());
  const int64_t d = attrs.dim;
  const int64_t osize = sizes1(out)[d], ostride = strides1(out)[d];
  check_index_range(index, osize, false, ErrorKind::Runtime, "scatter_add", d);
  auto it = make_iter<3>(sizes1(index), {without_dim(strides1(out), d), strides1(index), strides1(src)});
  EMBER_CUDA_DISPATCH_ALL(out.dtype(), "scatter_add", [&]<typename T>() {
    scatter_add_kernel<T><<<blocks_for(it.numel), kBlock, 0, current_stream()>>>(
        out.data<T>(), src.data<T>(), index.data<int64_t>(), it, osize, ostride);
  });
  EMBER_CUDA_KERNEL_CHECK();
}

void index_select(const KernelArgs& a, const DimAttrs& attrs) {
  const Tensor &x = a.in[0], &index = a.in[1], &out = a.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  const int64_t d = attrs.dim;
  const int64_t xsize = sizes1(x)[d], xstride = strides1(x)[d];
  check_index_range(index, xsize, false, ErrorKind::Index, "index_select", d);
  if (d == 0 && x.dim() == 2 && x.is_contiguous() && out.is_contiguous()) {
    // embedding: one block per selected row
    const int64_t rows = out.sizes()[0], row_len = x.sizes()[1];
    dispatch_bytes(x.dtype(), [&]<typename B>() {
      gather_rows_kernel<B><<<rows, 128, 0, current_stream()>>>(out.data<B>(), x.data<B>(), index.data<int64_t>(),
                                                                index.strides()[0], rows, row_len, xsize);
    });
    EMBER_CUDA_KERNEL_CHECK();
    return;
  }
  DimVector pos(sizes1(out).size(), 0);
  pos[d] = index.dim() ? index.strides()[0] : 1;
  auto it = make_iter<3>(sizes1(out), {strides1(out), without_dim(strides1(x), d), pos});
  dispatch_bytes(x.dtype(), [&]<typename B>() {
    index_select_kernel<B><<<blocks_for(it.numel), kBlock, 0, current_stream()>>>(
        out.data<B>(), x.data<B>(), index.data<int64_t>(), it, xsize, xstride);
  });
  EMBER_CUDA_KERNEL_CHECK();
}

void index_add(const KernelArgs& a, const IndexAddAttrs& attrs) {
  const Tensor &index = a.in[1], &src = a.in[2], &out = a.out[0];
  if (index.numel() == 0 || src.numel() == 0) return;  // a 0-size source with indices: no blocks to launch
  DeviceGuard guard(out.device());
  const int64_t d = attrs.dim;
  const int64_t osize = sizes1(out)[d], ostride = strides1(out)[d];
  check_index_range(index, osize, false, ErrorKind::Index, "index_add", d);
  DimVector pos(sizes1(src).size(), 0);
  pos[d] = index.dim() ? index.strides()[0] : 1;
  auto it = make_iter<3>(sizes1(src), {without_dim(strides1(out), d), strides1(src), pos});
  EMBER_CUDA_DISPATCH_ALL(out.dtype(), "index_add", [&]<typename T>() {
    const auto alpha = attrs.alpha.template to<cuda_opmath_t<T>>();
    index_add_kernel<T><<<blocks_for(it.numel), kBlock, 0, current_stream()>>>(
        out.data<T>(), src.data<T>(), index.data<int64_t>(), it, osize, ostride, alpha);
  });
  EMBER_CUDA_KERNEL_CHECK();
}

// out (shaped attrs.shape) = mask ? value : x, with x and mask broadcast.
void masked_fill(const KernelArgs& a, const MaskedFillAttrs& attrs) {
  const Tensor &x = a.in[0], &mask = a.in[1], &out = a.out[0];
  DeviceGuard guard(out.device());
  EMBER_CUDA_DISPATCH_ALL(out.dtype(), "masked_fill", [&]<typename T>() {
    using O = cuda_opmath_t<T>;
    launch_elementwise<T, T, O, 2>(out, {&x, &mask}, MaskedFillFn<T>{attrs.value.template to<O>()});
  });
}

template <bool Lower>
static void triangle(const KernelArgs& a, int64_t k) {
  const Tensor &x = a.in[0], &out = a.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  const int64_t nd = x.dim();
  auto it = make_iter<2>(x.sizes(), {out.strides(), x.strides()});
  dispatch_bytes(x.dtype(), [&]<typename B>() {
    triangle_kernel<B, Lower><<<blocks_for(it.numel), kBlock, 0, current_stream()>>>(
        out.data<B>(), x.data<B>(), it, x.sizes()[nd - 2], x.sizes()[nd - 1], k);
  });
  EMBER_CUDA_KERNEL_CHECK();
}
void tril(const KernelArgs& a, const TriangleAttrs& attrs) { triangle<true>(a, attrs.diagonal); }
void triu(const KernelArgs& a, const TriangleAttrs& attrs) { triangle<false>(a, attrs.diagonal); }

void arange(const KernelArgs& a, const ArangeAttrs& attrs) {
  const Tensor& out = a.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  const bool int_args = !attrs.start.is_float() && !attrs.step.is_float();
  EMBER_CUDA_DISPATCH_NUMERIC(out.dtype(), "arange", [&]<typename T>() {
    Tensor dst = out.is_contiguous() ? out : Tensor::empty(out.sizes(), out.dtype(), out.device());
    arange_kernel<T><<<blocks_for(out.numel()), kBlock, 0, current_stream()>>>(
        dst.data<T>(), out.numel(), attrs.start.to_double(), attrs.step.to_double(), attrs.start.to_int(),
        attrs.step.to_int(), int_args);
    EMBER_CUDA_KERNEL_CHECK();
    if (!dst.is_same(out)) copy_kernel(out, dst);
  });
}

}  // namespace ember::cuda
