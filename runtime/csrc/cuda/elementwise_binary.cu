// CUDA kernel of `where` (the other elementwise ops' CUDA kernels are generated from their shared
// functors, pointwise/functors.h). Inputs are converted to attrs.dtype as the kernel loads them
// (cuda/loops.cuh); the bool condition loads as the compute type (0 or 1).
#include "cuda/loops.cuh"
#include "generated/kernels_elementwise.h"

namespace ember::cuda {
namespace {

template <typename O>
struct WhereFn {
  __device__ __forceinline__ O operator()(O c, O x, O y) const { return c != O(0) ? x : y; }
};

}  // namespace

// in: (condition: bool, self, other).
void where(const KernelArgs& args, const PointwiseAttrs& attrs) {
  const Tensor& out = args.out[0];
  DeviceGuard guard(out.device());
  EMBER_CUDA_DISPATCH_ALL(attrs.dtype, "where", [&]<typename T>() {
    using O = std::conditional_t<std::is_same_v<T, bool>, int, cuda_opmath_t<T>>;
    launch_elementwise<T, T, O, 3>(out, {&args.in[0], &args.in[1], &args.in[2]}, WhereFn<O>{});
  });
}

}  // namespace ember::cuda
