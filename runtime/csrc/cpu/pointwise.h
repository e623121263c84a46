#pragma once
// The CPU kernel of a pointwise op from its shared functor (Note [Pointwise functors]): inputs are
// converted to the compute dtype attrs.dtype (Note [Elementwise compute dtype]) and run through
// the strided loops of cpu/loops.h. generated/pointwise_cpu.cpp instantiates it per op.
#include <array>

#include "cpu/loops.h"
#include "dispatch/op_def.h"
#include "pointwise/functors.h"

namespace ember::cpu {

using pw::Dtypes;

template <template <typename> class F, Dtypes D, int N, bool BoolOut, typename A>
void pointwise(const KernelArgs& args, const A& attrs, const char* name) {
  const ScalarType ct = attrs.dtype;
  std::array<Tensor, N> in;
  for (int i = 0; i < N; ++i) in[i] = as_dtype(args.in[i], ct);
  const Tensor& out = args.out[0];
  // Predicates write bool, except in place (x.logical_not_() keeps x's dtype).
  const bool bool_out = BoolOut && out.dtype() == ScalarType::Bool;
  pw::dispatch_dtypes<D>(ct, name, [&]<typename T>() {
    pw::with_functor<F, T>(attrs, [&](const auto& f) {
      auto run = [&]<typename Out>() {
        if constexpr (N == 1) unary_loop<Out, T>(out, in[0], f);
        else if constexpr (N == 2) binary_loop<Out, T, T>(out, in[0], in[1], f);
        else ternary_loop<Out, T, T, T>(out, in[0], in[1], in[2], f);
      };
      if constexpr (BoolOut) {
        if (bool_out) return run.template operator()<bool>();
      }
      run.template operator()<T>();
    });
  });
}

}  // namespace ember::cpu
