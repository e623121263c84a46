// CPU kernel of adam_step (Note [Fused Adam step], ops/optim.cpp): one parallel pass over param,
// grad, exp_avg and exp_avg_sq (any strides; dense rows take a `omp simd` loop). Half types compute
// in float and round once per stored value; float64 computes in double.
#include "cpu/loops.h"
#include "generated/kernels_nn.h"
#include "ops/optim.h"

namespace ember::cpu {
namespace {

template <typename T>
void adam_step_typed(const KernelArgs& args, const AdamStepAttrs& h, float new_step) {
  using O = opmath_t<T>;
  const optim::AdamCoefs<O> c = optim::adam_coefs<O>(h, static_cast<double>(new_step));
  auto g = make_geometry<4>(args.out[0], {&args.in[1], &args.out[1], &args.out[2]});
  for_each_row(g, [&](char** ptr, const int64_t* s, int64_t n) EMBER_LOOP_FLATTEN {
    if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == sizeof(T) && s[3] == sizeof(T)) {
      T* p = reinterpret_cast<T*>(ptr[0]);
      const T* gr = reinterpret_cast<const T*>(ptr[1]);
      T* m = reinterpret_cast<T*>(ptr[2]);
      T* v = reinterpret_cast<T*>(ptr[3]);
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) optim::adam_element<T>(p[i], gr[i], m[i], v[i], c);
      return;
    }
    for (int64_t i = 0; i < n; ++i)
      optim::adam_element<T>(*reinterpret_cast<T*>(ptr[0] + i * s[0]), *reinterpret_cast<const T*>(ptr[1] + i * s[1]),
                      *reinterpret_cast<T*>(ptr[2] + i * s[2]), *reinterpret_cast<T*>(ptr[3] + i * s[3]), c);
  });
}

}  // namespace

// in: param, grad, exp_avg, exp_avg_sq, step; out: param, exp_avg, exp_avg_sq, step (same tensors).
void adam_step(const KernelArgs& args, const AdamStepAttrs& h) {
  float* step = static_cast<float*>(args.out[3].data_ptr());
  const float new_step = *step + 1.0f;  // float32 arithmetic, like torch's `state_steps += 1`
  EMBER_DISPATCH_FLOAT(args.out[0].dtype(), "adam_step",
                       [&]<typename T>() { adam_step_typed<T>(args, h, new_step); });
  *step = new_step;
}

}  // namespace ember::cpu
