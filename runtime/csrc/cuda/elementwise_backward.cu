// CUDA kernels of the fused activation backward rows (Note [Fused activation backward],
// ops/elementwise_unary.cpp): in = (grad, saved), where saved is the output y for tanh/sigmoid/relu
// and the input x for gelu/silu; out = the input's gradient, in attrs.dtype. Same formulas as the
// CPU kernels (cpu/elementwise_unary.cpp), computed in float for half types (cuda_opmath_t).
#include <cmath>

#include "cuda/loops.cuh"
#include "dispatch/op_def.h"

namespace ember::cuda {
namespace {

template <typename O>
struct TanhBackwardFn {
  __device__ __forceinline__ O operator()(O g, O y) const { return g * (O(1) - y * y); }
};

template <typename O>
struct SigmoidBackwardFn {
  __device__ __forceinline__ O operator()(O g, O y) const { return g * (y * (O(1) - y)); }
};

// torch threshold_backward: zero where y <= 0, so a NaN output passes the gradient through.
template <typename O>
struct ReluBackwardFn {
  __device__ __forceinline__ O operator()(O g, O y) const { return y <= O(0) ? O(0) : g; }
};

template <typename O>
struct SiluBackwardFn {
  __device__ __forceinline__ O operator()(O g, O x) const {
    const O s = O(1) / (O(1) + exp(-x));
    return g * (s * (O(1) + x * (O(1) - s)));
  }
};

// d/dx x Phi(x) = Phi(x) + x phi(x).
template <typename O>
struct GeluErfBackwardFn {
  __device__ __forceinline__ O operator()(O g, O x) const {
    const O cdf = O(0.5) * (O(1) + erf(x * O(0.7071067811865476)));
    const O pdf = exp(O(-0.5) * x * x) * O(0.3989422804014327);
    return g * (cdf + x * pdf);
  }
};

// Derivative of 0.5 x (1 + tanh(k0 (x + k1 x^3))).
template <typename O>
struct GeluTanhBackwardFn {
  __device__ __forceinline__ O operator()(O g, O x) const {
    const O k0 = O(0.7978845608028654), k1 = O(0.044715);
    const O x2 = x * x;
    const O t = tanh(k0 * x * (O(1) + k1 * x2));
    const O dinner = k0 * (O(1) + O(3) * k1 * x2);
    return g * (O(0.5) * (O(1) + t) + O(0.5) * x * (O(1) - t * t) * dinner);
  }
};

template <template <typename> class Fn>
void run_activation_backward(const KernelArgs& args, const char* name) {
  const Tensor& out = args.out[0];
  DeviceGuard guard(out.device());
  EMBER_CUDA_DISPATCH_FLOAT(args.attrs.dtype, name, [&]<typename T>() {
    using O = cuda_opmath_t<T>;
    launch_elementwise<T, T, O, 2>(out, {&args.in[0], &args.in[1]}, Fn<O>{});
  });
}

}  // namespace

void tanh_backward(const KernelArgs& a) { run_activation_backward<TanhBackwardFn>(a, "tanh_backward"); }
void sigmoid_backward(const KernelArgs& a) { run_activation_backward<SigmoidBackwardFn>(a, "sigmoid_backward"); }
void relu_backward(const KernelArgs& a) { run_activation_backward<ReluBackwardFn>(a, "relu_backward"); }
void silu_backward(const KernelArgs& a) { run_activation_backward<SiluBackwardFn>(a, "silu_backward"); }
// attrs.flag: approximate="tanh".
void gelu_backward(const KernelArgs& a) {
  if (a.attrs.flag) run_activation_backward<GeluTanhBackwardFn>(a, "gelu_backward");
  else run_activation_backward<GeluErfBackwardFn>(a, "gelu_backward");
}

}  // namespace ember::cuda
