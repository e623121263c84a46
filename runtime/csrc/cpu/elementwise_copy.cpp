// CPU kernels of copy (same and cross dtype, strided, broadcasting) and fill.
#include <cstring>

#include "cpu/loops.h"
#include "dispatch/op_def.h"

namespace ember::cpu {

void copy_into(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  const ScalarType dt = dst.dtype(), st = src.dtype();
  if (dt == st && dst.is_contiguous() && src.is_contiguous() && dst.numel() == src.numel()) {
    char* d = static_cast<char*>(dst.data_ptr());
    const char* s = static_cast<const char*>(src.data_ptr());
    const int64_t es = dst.element_size();
    parallel_for(0, dst.numel(), 4 * kGrainSize, [&](int64_t lo, int64_t hi) {
      std::memcpy(d + lo * es, s + lo * es, static_cast<size_t>((hi - lo) * es));
    });
    return;
  }
  EMBER_DISPATCH_ALL(dt, "copy", ([&]<typename D>() {
    EMBER_DISPATCH_ALL(st, "copy", ([&]<typename S>() {
      if constexpr (std::is_same_v<D, S>) {
        unary_loop<D, S>(dst, src, [](opmath_t<S> v) { return v; });
      } else {
        unary_loop<D, S>(dst, src, [](opmath_t<S> v) { return convert<D>(v); });
      }
    }));
  }));
}

Tensor as_dtype(const Tensor& t, ScalarType dtype) {
  if (t.dtype() == dtype) return t;
  Tensor r = Tensor::empty(t.sizes(), dtype, t.device());
  copy_into(r, t);
  return r;
}

// in: (src) for clone/to/contiguous, (self, src) for copy_; out[0] is the destination.
void copy(const KernelArgs& args) { copy_into(args.out[0], args.in.back()); }

void fill(const KernelArgs& args) {
  const Tensor& out = args.out[0];
  EMBER_DISPATCH_ALL(out.dtype(), "fill_", ([&]<typename T>() { fill_loop<T>(out, args.attrs.scalar.to<T>()); }));
}

}  // namespace ember::cpu
