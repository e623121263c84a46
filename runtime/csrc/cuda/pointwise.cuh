#pragma once
// The CUDA kernel of a pointwise op from its shared functor (Note [Pointwise functors]): inputs are
// converted to the compute type as they load (Note [CUDA elementwise launcher]).
// generated/pointwise_cuda.cu instantiates it per op.
#include <array>

#include "cuda/loops.cuh"
#include "dispatch/op_def.h"
#include "pointwise/functors.h"

namespace ember::cuda {

using pw::Dtypes;

template <template <typename> class F, Dtypes D, int N, bool BoolOut, typename A>
void pointwise(const KernelArgs& args, const A& attrs, const char* name) {
  const Tensor& out = args.out[0];
  DeviceGuard guard(out.device());
  std::array<const Tensor*, N> ins;
  for (int i = 0; i < N; ++i) ins[i] = &args.in[i];
  // Predicates write bool, except in place (x.logical_not_() keeps x's dtype).
  const bool bool_out = BoolOut && out.dtype() == ScalarType::Bool;
  pw::dispatch_dtypes<D>(attrs.dtype, name, [&]<typename T>() {
    pw::with_functor<F, T>(attrs, [&](const auto& f) {
      if constexpr (BoolOut) {
        if (bool_out) return launch_elementwise<bool, T, cuda_opmath_t<T>, N>(out, ins, f);
      }
      launch_elementwise<T, T, cuda_opmath_t<T>, N>(out, ins, f);
    });
  });
}

}  // namespace ember::cuda
