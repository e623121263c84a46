// CUDA kernels of the layout ops cat, flip, roll, repeat (frontends: ops/layout.cpp) and of the
// factories eye and linspace (ops/factory.cpp). Each reproduces its CPU kernel (cpu/layout.cpp,
// cpu/factory.cpp) bit for bit: the layout ops move element bits with one gather kernel per copy
// (output position -> input offset); nothing synchronizes, so all are graph-capturable.
#include "cpu/index_loops.h"
#include "cuda/index_common.cuh"
#include "generated/kernels_factory.h"
#include "generated/kernels_index.h"

namespace ember::cuda {
namespace {

// One thread per destination element; byte offsets from the launcher's geometry (loops.cuh).
template <typename B>
__global__ void strided_copy_kernel(Geometry<2> g) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < g.numel; e += stride) {
    int64_t off[2];
    g.offsets(e, off);
    *reinterpret_cast<B*>(g.data[0] + off[0]) = *reinterpret_cast<const B*>(g.data[1] + off[1]);
  }
}

// dst[i] = src[i] over `sizes` for elements of `dtype` (strides in elements; src's may be negative
// or zero), like cpu::copy_strided. Dims are coalesced first; a copy dense in both operands is one
// cudaMemcpyAsync (cudaMemcpy2DAsync measured slower than the kernel for pitched rows), the rest
// goes to the kernel; geometries with more than kMaxDims dims are split on the host along their
// outermost dim.
void strided_copy(ScalarType dtype, void* dst, IntSpan dst_strides, const void* src, IntSpan src_strides,
                  IntSpan sizes_in) {
  DimVector sizes(sizes_in), ds(dst_strides), ss(src_strides);
  cpu::coalesce2(sizes, ds, ss);
  const int64_t numel = numel_of(sizes);
  if (numel == 0) return;
  const int64_t esize = element_size(dtype);
  const int n = static_cast<int>(sizes.size());
  if (n > kMaxDims) {
    const DimVector inner(sizes.begin() + 1, sizes.end()), inner_ds(ds.begin() + 1, ds.end()),
        inner_ss(ss.begin() + 1, ss.end());
    for (int64_t i = 0; i < sizes[0]; ++i)
      strided_copy(dtype, static_cast<char*>(dst) + i * ds[0] * esize, inner_ds,
                   static_cast<const char*>(src) + i * ss[0] * esize, inner_ss, inner);
    return;
  }
  cudaStream_t stream = current_stream();
  if (n == 0 || (n == 1 && ds[0] == 1 && ss[0] == 1)) {  // one dense run
    EMBER_CUDA_CHECK(cudaMemcpyAsync(dst, src, numel * esize, cudaMemcpyDeviceToDevice, stream));
    return;
  }
  Geometry<2> g;
  g.ndim = n;
  g.numel = numel;
  g.use32 = numel < (int64_t{1} << 31);
  g.data[0] = static_cast<char*>(dst);
  g.data[1] = static_cast<char*>(const_cast<void*>(src));
  g.dtypes[0] = g.dtypes[1] = dtype;
  for (int i = 0; i < n; ++i) {  // innermost first, byte strides
    g.sizes[i] = sizes[n - 1 - i];
    g.fdiv[i] = FastDivmod(static_cast<uint32_t>(g.use32 ? sizes[n - 1 - i] : 1));
    g.strides[0][i] = ds[n - 1 - i] * esize;
    g.strides[1][i] = ss[n - 1 - i] * esize;
  }
  dispatch_bytes(dtype, [&]<typename B>() {
    strided_copy_kernel<B><<<elementwise_grid(numel), kBlock, 0, stream>>>(g);
  });
  EMBER_CUDA_KERNEL_CHECK();
}

// Note [CUDA wrap gather]: roll and repeat read, along every dim d, source coordinate
// (c_d + shift_d) mod src_size_d for output coordinate c_d. roll: src_size = size, shift = size - s
// (repeated dims add up, as in torch); repeat: output size = reps * src_size, shift 0 (padded
// leading dims have src_size 1). One launch each, with 32-bit index math when it cannot overflow.
struct WrapGeometry {
  int nd = 0;
  bool use32 = true;
  int64_t numel = 1;
  int64_t out_sizes[kMaxDims], out_strides[kMaxDims], src_sizes[kMaxDims], src_strides[kMaxDims], shift[kMaxDims];
  FastDivmod out_div[kMaxDims], src_div[kMaxDims];

  __device__ __forceinline__ void offsets(int64_t linear, int64_t& out_off, int64_t& src_off) const {
    out_off = src_off = 0;
    if (use32) {
      uint32_t rem = static_cast<uint32_t>(linear);
      for (int d = nd - 1; d >= 0; --d) {
        const uint32_t q = out_div[d].div(rem), c = rem - q * out_div[d].divisor;
        rem = q;
        const uint32_t v = c + static_cast<uint32_t>(shift[d]);
        out_off += static_cast<int64_t>(c) * out_strides[d];
        src_off += static_cast<int64_t>(v - src_div[d].div(v) * src_div[d].divisor) * src_strides[d];
      }
    } else {
      for (int d = nd - 1; d >= 0; --d) {
        const int64_t c = linear % out_sizes[d];
        linear /= out_sizes[d];
        out_off += c * out_strides[d];
        src_off += ((c + shift[d]) % src_sizes[d]) * src_strides[d];
      }
    }
  }
};

template <typename B>
__global__ void wrap_gather_kernel(B* out, const B* x, WrapGeometry g) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < g.numel; e += stride) {
    int64_t o, s;
    g.offsets(e, o, s);
    out[o] = x[s];
  }
}

// out = x read through Note [CUDA wrap gather]; src_* and shift have out.dim() entries.
void wrap_gather(const Tensor& out, const Tensor& x, IntSpan src_sizes, IntSpan src_strides, IntSpan shift,
                 const char* op) {
  WrapGeometry g;
  g.nd = static_cast<int>(out.dim());
  EMBER_CHECK(g.nd <= kMaxDims, "[", op, "] tensors with more than ", kMaxDims, " dimensions are not supported on "
              "CUDA (got ", describe(out), ")");
  g.numel = out.numel();
  g.use32 = g.numel < (int64_t{1} << 30);  // c + shift < 2 * numel stays below FastDivmod's 2^31
  for (int d = 0; d < g.nd; ++d) {
    g.out_sizes[d] = out.sizes()[d];
    g.out_strides[d] = out.strides()[d];
    g.src_sizes[d] = src_sizes[d];
    g.src_strides[d] = src_strides[d];
    g.shift[d] = shift[d];
    g.out_div[d] = FastDivmod(static_cast<uint32_t>(g.use32 ? out.sizes()[d] : 1));
    g.src_div[d] = FastDivmod(static_cast<uint32_t>(g.use32 ? src_sizes[d] : 1));
  }
  dispatch_bytes(x.dtype(), [&]<typename B>() {
    wrap_gather_kernel<B><<<elementwise_grid(g.numel), kBlock, 0, current_stream()>>>(out.data<B>(), x.data<B>(), g);
  });
  EMBER_CUDA_KERNEL_CHECK();
}

template <typename T>
__global__ void eye_kernel(T* out, int64_t n, int64_t m, int64_t row_stride, int64_t col_stride, T zero, T one) {
  const int64_t total = n * m;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const int64_t i = e / m, j = e - i * m;
    out[i * row_stride + j * col_stride] = i == j ? one : zero;
  }
}

// Note [linspace rounding]: the CPU kernel is built with -march=native, where GCC contracts
// `start + step * i` into one fused multiply-add; the explicit __fma_rn reproduces it bit for bit
// (a CPU build without FMA would differ in the last bit).
template <typename T>
__global__ void linspace_kernel(T* out, int64_t out_stride, int64_t steps, double start, double end, double step) {
  const int64_t halfway = steps / 2;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < steps; i += stride) {
    const double v = steps == 1     ? start
                     : i < halfway ? __fma_rn(step, static_cast<double>(i), start)
                                   : __fma_rn(-step, static_cast<double>(steps - i - 1), end);
    if constexpr (std::is_integral_v<T>) out[i * out_stride] = static_cast<T>(static_cast<int64_t>(v));
    else out[i * out_stride] = static_cast<T>(static_cast<cuda_opmath_t<T>>(v));
  }
}

}  // namespace

void cat(const KernelArgs& a, const DimAttrs& attrs) {
  const Tensor& out = a.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  const int64_t d = attrs.dim;
  const int64_t out_stride = out.strides()[d];
  char* base = static_cast<char*>(out.data_ptr());
  int64_t offset = 0;
  for (const Tensor& t : a.in) {
    if (t.dim() == 1 && t.sizes()[0] == 0) continue;  // legacy: 1-D empty inputs are skipped
    strided_copy(out.dtype(), base + offset * out_stride * out.element_size(), out.strides(), t.data_ptr(),
                 t.strides(), t.sizes());
    offset += t.sizes()[d];
  }
}

void flip(const KernelArgs& a, const FlipAttrs& attrs) {
  const Tensor &x = a.in[0], &out = a.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  // Read x through a mirrored geometry: start at the last element of each flipped dim, negative stride.
  DimVector src_strides = x.strides();
  int64_t start = 0;
  for (int64_t d : attrs.dims) {
    start += (x.sizes()[d] - 1) * x.strides()[d];
    src_strides[d] = -x.strides()[d];
  }
  strided_copy(x.dtype(), out.data_ptr(), out.strides(), static_cast<const char*>(x.data_ptr()) + start * x.element_size(),
               src_strides, x.sizes());
}

void roll(const KernelArgs& a, const RollAttrs& attrs) {
  const Tensor &x = a.in[0], &out = a.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  DimVector shift(x.dim(), 0);
  for (size_t i = 0; i < attrs.dims.size(); ++i) {
    const int64_t d = attrs.dims[i];
    if (d >= x.dim()) continue;  // a 0-dim x: nothing moves
    const int64_t size = x.sizes()[d];
    shift[d] = (shift[d] + size - attrs.shifts[i]) % size;
  }
  wrap_gather(out, x, x.sizes(), x.strides(), shift, "roll");
}

void repeat(const KernelArgs& a, const RepeatAttrs& attrs) {
  const Tensor &x = a.in[0], &out = a.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  const int64_t nd = out.dim(), lead = nd - x.dim();
  DimVector src_sizes(nd, 1), src_strides(nd, 0);
  for (int64_t d = lead; d < nd; ++d) {
    src_sizes[d] = x.sizes()[d - lead];
    src_strides[d] = x.strides()[d - lead];
  }
  wrap_gather(out, x, src_sizes, src_strides, DimVector(nd, 0), "repeat");
}

void eye(const KernelArgs& a, const NoAttrs& attrs) {
  const Tensor& out = a.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  const int64_t n = out.sizes()[0], m = out.sizes()[1];
  EMBER_CUDA_DISPATCH_ALL(out.dtype(), "eye", [&]<typename T>() {
    const T zero = static_cast<T>(0.0f), one = static_cast<T>(1.0f);
    eye_kernel<T><<<elementwise_grid(n * m), kBlock, 0, current_stream()>>>(out.data<T>(), n, m, out.strides()[0],
                                                                           out.strides()[1], zero, one);
  });
  EMBER_CUDA_KERNEL_CHECK();
}

void linspace(const KernelArgs& a, const LinspaceAttrs& attrs) {
  const Tensor& out = a.out[0];
  const int64_t steps = attrs.steps;
  if (steps == 0 || out.numel() == 0) return;
  DeviceGuard guard(out.device());
  const double start = attrs.start.to_double(), end = attrs.end.to_double();
  const double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;  // on the host, as the CPU
  EMBER_CUDA_DISPATCH_NUMERIC(out.dtype(), "linspace", [&]<typename T>() {
    linspace_kernel<T><<<elementwise_grid(steps), kBlock, 0, current_stream()>>>(out.data<T>(), out.strides()[0],
                                                                                steps, start, end, step);
  });
  EMBER_CUDA_KERNEL_CHECK();
}

}  // namespace ember::cuda
