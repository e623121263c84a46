// CPU kernels of adam_multi_step and sgd_multi_step (Note [Multi-tensor optimizer steps],
// ops/optim.cpp). The elements of all the (contiguous) parameters form one index space that a single
// parallel_for cuts into chunks, so many small parameters share threads as well as one large one;
// each chunk runs an `omp simd` loop per parameter it overlaps. Half types compute in float, float64
// in double.
#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "cpu/loops.h"
#include "generated/kernels_nn.h"
#include "ops/optim.h"

namespace ember::cpu {
namespace {

// Offsets of each tensor's first element in the concatenation of `tensors` (size n + 1).
std::vector<int64_t> element_offsets(std::span<const Tensor> tensors) {
  std::vector<int64_t> offsets(tensors.size() + 1, 0);
  for (size_t i = 0; i < tensors.size(); ++i) offsets[i + 1] = offsets[i] + tensors[i].numel();
  return offsets;
}

// Calls f(i, lo, hi) for the element ranges [lo, hi) of tensor i, over threads.
template <typename F>
void for_each_range(const std::vector<int64_t>& offsets, const F& f) {
  parallel_for(0, offsets.back(), kGrainSize, [&](int64_t lo, int64_t hi) {
    // The last tensor starting at or before lo (empty tensors share offsets; this skips them).
    size_t i = std::upper_bound(offsets.begin(), offsets.end(), lo) - offsets.begin() - 1;
    for (; lo < hi; ++i) {
      const int64_t end = std::min(hi, offsets[i + 1]);
      if (end > lo) f(i, lo - offsets[i], end - offsets[i]);
      lo = std::max(lo, end);
    }
  });
}

double read_lr(const Tensor* lr, double attr) {
  if (lr == nullptr) return attr;
  return lr->dtype() == ScalarType::Float64 ? *lr->data<double>() : *lr->data<float>();
}

template <typename T, bool kAmsgrad>
void adam_typed(const optim::AdamLists& l, const AdamMultiStepAttrs& h, double lr) {
  using O = opmath_t<T>;
  std::vector<optim::AdamCoefs<O>> coefs(l.params.size());
  for (size_t i = 0; i < coefs.size(); ++i) coefs[i] = optim::adam_coefs<O>(h, lr, *l.steps[i].data<float>());
  for_each_range(element_offsets(l.params), [&](size_t i, int64_t lo, int64_t hi) EMBER_LOOP_FLATTEN {
    T* p = l.params[i].data<T>();
    const T* g = l.grads[i].data<T>();
    T* m = l.exp_avgs[i].data<T>();
    T* v = l.exp_avg_sqs[i].data<T>();
    const optim::AdamCoefs<O> c = coefs[i];
    if constexpr (kAmsgrad) {
      T* vmax = l.max_exp_avg_sqs[i].data<T>();
#pragma omp simd
      for (int64_t k = lo; k < hi; ++k) optim::adam_element<T, true>(p[k], g[k], m[k], v[k], vmax[k], c);
    } else {
#pragma omp simd
      for (int64_t k = lo; k < hi; ++k) optim::adam_element<T, false>(p[k], g[k], m[k], v[k], v[k], c);
    }
  });
}

template <typename T, bool kMomentum>
void sgd_typed(const optim::SgdLists& l, const SgdMultiStepAttrs& h, double lr) {
  const auto c = optim::sgd_coefs<opmath_t<T>>(h, lr);
  for_each_range(element_offsets(l.params), [&](size_t i, int64_t lo, int64_t hi) EMBER_LOOP_FLATTEN {
    T* p = l.params[i].data<T>();
    const T* g = l.grads[i].data<T>();
    T* buf = kMomentum ? l.momentum_buffers[i].data<T>() : p;  // p: a stand-in never touched without momentum
#pragma omp simd
    for (int64_t k = lo; k < hi; ++k) optim::sgd_element<T, kMomentum>(p[k], g[k], buf[k], c);
  });
}

}  // namespace

void adam_multi_step(const KernelArgs& args, const AdamMultiStepAttrs& h) {
  const optim::AdamLists l = optim::adam_lists(args, h);
  for (Tensor& s : l.steps) *s.data<float>() += 1.0f;  // float32 arithmetic, like torch's `state_steps += 1`
  const double lr = read_lr(l.lr, h.lr);
  EMBER_DISPATCH_FLOAT(l.params[0].dtype(), "adam_multi_step", ([&]<typename T>() {
    if (h.amsgrad) adam_typed<T, true>(l, h, lr);
    else adam_typed<T, false>(l, h, lr);
  }));
}

void sgd_multi_step(const KernelArgs& args, const SgdMultiStepAttrs& h) {
  const optim::SgdLists l = optim::sgd_lists(args, h);
  const double lr = read_lr(l.lr, h.lr);
  EMBER_DISPATCH_FLOAT(l.params[0].dtype(), "sgd_multi_step", ([&]<typename T>() {
    if (h.momentum != 0.0) sgd_typed<T, true>(l, h, lr);
    else sgd_typed<T, false>(l, h, lr);
  }));
}

}  // namespace ember::cpu
