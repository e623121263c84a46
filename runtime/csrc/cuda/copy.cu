// Copies on CUDA: the `copy` kernel (same device, any dtypes, strided, broadcasting), `fill`, and
// copy_between_devices_ (host <-> device and device <-> device), with pinned host memory.
// Note [Blocking copies]: a device->host copy always waits for the stream (the host reads the
// data next). A host->device copy from pageable memory also waits: the caller may reuse or free
// the host buffer right after. Only pinned host memory with non_blocking=True returns at once
// (the caller keeps the host buffer alive and untouched until the stream reaches the copy).
#include <cstring>

#include "cuda/cuda_common.h"
#include "cuda/internal.h"
#include "cuda/loops.cuh"
#include "generated/kernels_elementwise.h"
#include "ops/ops.h"

namespace ember::cpu {
void copy_into(const Tensor& dst, const Tensor& src);  // cpu/elementwise_copy.cpp
}

namespace ember::cuda {
namespace {

template <typename D>
struct IdentityFn {
  template <typename C> __device__ C operator()(C v) const { return v; }
};

template <typename T>
struct FillFn {
  T value;
  __device__ T operator()() const { return value; }
};

bool same_layout_dense(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.is_contiguous() && b.is_contiguous() && a.sizes() == b.sizes();
}

void free_pinned(void* p) { cudaFreeHost(p); }

}  // namespace

void copy_kernel(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  DeviceGuard guard(dst.device());
  cudaStream_t stream = current_stream(dst.device().index);
  if (same_layout_dense(dst, src)) {
    if (dst.data_ptr() != src.data_ptr())
      EMBER_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), dst.numel() * dst.element_size(),
                                       cudaMemcpyDeviceToDevice, stream));
    return;
  }
  EMBER_CUDA_DISPATCH_ALL(dst.dtype(), "copy", [&]<typename D>() {
    using C = cuda_opmath_t<D>;
    // Same-dtype copies keep the vectorized path (e.g. contiguous from a broadcast scalar).
    launch_elementwise<D, D, C, 1>(dst, {&src}, IdentityFn<D>{});
  });
}

Tensor contiguous_as(const Tensor& t, ScalarType dtype) {
  if (t.is_contiguous() && t.dtype() == dtype) return t;
  Tensor r = Tensor::empty(t.sizes(), dtype, t.device());
  copy_kernel(r, t);
  return r;
}

// in: (src) for clone/to/contiguous, (self, src) for copy_; out[0] is the destination.
void copy(const KernelArgs& args, const NoAttrs&) { copy_kernel(args.out[0], args.in.back()); }

void fill(const KernelArgs& args, const FillAttrs& attrs) {
  const Tensor& out = args.out[0];
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device());
  EMBER_CUDA_DISPATCH_ALL(out.dtype(), "fill_", [&]<typename T>() {
    const T v = attrs.value.to<T>();
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    if (bits == 0 && out.is_contiguous()) {  // zero fill: memset is the fastest path
      EMBER_CUDA_CHECK(cudaMemsetAsync(out.data_ptr(), 0, out.numel() * sizeof(T), current_stream(out.device().index)));
      return;
    }
    launch_elementwise<T, T, T, 0>(out, {}, FillFn<T>{v});
  });
}

bool is_pinned(const Tensor& t) {
  if (!t.device().is_cpu() || !t.storage()->ptr() || !is_available()) return false;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, t.storage()->ptr()) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return attr.type == cudaMemoryTypeHost;
}

Tensor pin_memory(const Tensor& t) {
  EMBER_CHECK(t.device().is_cpu(), "[pin_memory] expected a CPU tensor, got ", describe(t), " on ", t.device());
  EMBER_CHECK(is_available(), "[pin_memory] pinned memory needs a CUDA device (none is available)");
  if (is_pinned(t)) return t;
  const size_t nbytes = static_cast<size_t>(t.numel() * t.element_size());
  void* p = nullptr;
  if (nbytes > 0) EMBER_CUDA_CHECK(cudaHostAlloc(&p, nbytes, cudaHostAllocDefault));
  auto storage = std::make_shared<StorageImpl>(DataPtr(p, p, &free_pinned, Device()), nbytes);
  Tensor r = Tensor::make(storage, t.sizes(), contiguous_strides(t.sizes()), 0, t.dtype());
  if (nbytes > 0) cpu::copy_into(r, t);
  return r;
}

Tensor& copy_between_devices(Tensor& dst, const Tensor& src, bool non_blocking) {
  if (dst.numel() == 0) return dst;
  const Device dd = dst.device(), sd = src.device();
  if (sd.is_cpu() && dd.is_cuda()) {
    DeviceGuard guard(dd);
    cudaStream_t stream = current_stream(dd.index);
    // Host side: a contiguous buffer of src's dtype (src's own when it already is one).
    Tensor host = src;
    if (!src.is_contiguous()) {
      host = Tensor::empty(src.sizes(), src.dtype(), Device());
      cpu::copy_into(host, src);
    }
    const bool direct = same_layout_dense(dst, host);
    Tensor dev = direct ? dst : Tensor::empty(host.sizes(), host.dtype(), dd);
    EMBER_CUDA_CHECK(cudaMemcpyAsync(dev.data_ptr(), host.data_ptr(), host.numel() * host.element_size(),
                                     cudaMemcpyHostToDevice, stream));
    if (!direct) copy_kernel(dst, dev);
    if (!(non_blocking && host.is_same(src) && is_pinned(host))) synchronize_stream(stream);
    return dst;
  }
  if (sd.is_cuda() && dd.is_cpu()) {
    DeviceGuard guard(sd);
    cudaStream_t stream = current_stream(sd.index);
    // Device side: src broadcast and converted to dst's dtype, contiguous.
    Tensor dev = src;
    if (!same_layout_dense(dst, src)) {
      dev = Tensor::empty(dst.sizes(), dst.dtype(), sd);
      copy_kernel(dev, src);
    }
    const bool direct = dst.is_contiguous();
    Tensor host = direct ? dst : Tensor::empty(dst.sizes(), dst.dtype(), Device());
    EMBER_CUDA_CHECK(cudaMemcpyAsync(host.data_ptr(), dev.data_ptr(), dev.numel() * dev.element_size(),
                                     cudaMemcpyDeviceToHost, stream));
    if (!(non_blocking && direct && is_pinned(dst))) synchronize_stream(stream);
    if (!direct) cpu::copy_into(dst, host);
    return dst;
  }
  if (sd.is_cuda() && dd.is_cuda()) {
    // Peer copy: make a contiguous dst-dtype copy on the source device, then move the bytes.
    Tensor staged;
    {
      DeviceGuard guard(sd);
      staged = Tensor::empty(dst.sizes(), dst.dtype(), sd);
      copy_kernel(staged, src);
      synchronize_stream(current_stream(sd.index));
    }
    DeviceGuard guard(dd);
    Tensor landing = dst.is_contiguous() ? dst : Tensor::empty(dst.sizes(), dst.dtype(), dd);
    EMBER_CUDA_CHECK(cudaMemcpyPeerAsync(landing.data_ptr(), dd.index, staged.data_ptr(), sd.index,
                                         staged.numel() * staged.element_size(), current_stream(dd.index)));
    if (!landing.is_same(dst)) copy_kernel(dst, landing);
    synchronize_stream(current_stream(dd.index));
    return dst;
  }
  cpu::copy_into(dst, src);
  return dst;
}

}  // namespace ember::cuda

namespace ember {

Tensor& copy_between_devices_(Tensor& dst, const Tensor& src, bool non_blocking) {
  return cuda::copy_between_devices(dst, src, non_blocking);
}

}  // namespace ember
