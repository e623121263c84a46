#pragma once
// The per-element Adam/AdamW (amsgrad too) and SGD updates shared by the multi-tensor kernels
// (cpu/optim.cpp, cuda/optim.cu; host and device code), and where each tensor list sits in their
// KernelArgs (Note [Multi-tensor optimizer steps], ops/optim.cpp). Hyperparameters arrive as the
// ops' attrs (runtime/spec/nn.yaml); lr is attrs.lr or, with attrs.lr_tensor, a tensor read by the
// kernel. decoupled (AdamW) scales p by 1 - lr * wd, else (Adam) grad += wd * p.
#include <cmath>
#include <cstdint>
#include <span>

#include "core/half.h"
#include "dispatch/op_def.h"
#include "generated/op_attrs_nn.h"

namespace ember::optim {

// adam_multi_step's lists: in = params, grads, exp_avgs, exp_avg_sqs, [max_exp_avg_sqs], steps, [lr];
// out = params, exp_avgs, exp_avg_sqs, [max_exp_avg_sqs], steps (the same tensors, written).
struct AdamLists {
  std::span<const Tensor> grads;
  std::span<Tensor> params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps;  // max_exp_avg_sqs empty without amsgrad
  const Tensor* lr;                                                          // null: attrs.lr
};

inline AdamLists adam_lists(const KernelArgs& a, const AdamMultiStepAttrs& h) {
  const size_t n = a.out.size() / (h.amsgrad ? 5 : 4);
  const size_t nm = h.amsgrad ? n : 0;
  return {a.in.subspan(n, n), a.out.subspan(0, n), a.out.subspan(n, n), a.out.subspan(2 * n, n),
          a.out.subspan(3 * n, nm), a.out.subspan(3 * n + nm, n), h.lr_tensor ? &a.in.back() : nullptr};
}

// sgd_multi_step's lists: in = params, grads, [momentum_buffers], [lr]; out = params, [momentum_buffers].
struct SgdLists {
  std::span<const Tensor> grads;
  std::span<Tensor> params, momentum_buffers;  // momentum_buffers empty when momentum == 0
  const Tensor* lr;
};

inline SgdLists sgd_lists(const KernelArgs& a, const SgdMultiStepAttrs& h) {
  const size_t n = a.out.size() / (h.momentum != 0.0 ? 2 : 1);
  return {a.in.subspan(n, n), a.out.subspan(0, n), a.out.subspan(n, a.out.size() - n),
          h.lr_tensor ? &a.in.back() : nullptr};
}

// NaN-propagating max (torch.maximum): amsgrad's running max keeps a NaN rather than dropping it.
// `|`, not `||`: no branch, so the CPU loops vectorize.
template <typename O>
EMBER_HOST_DEVICE inline O nan_max(O a, O b) {
  return ((a != a) | (a > b)) ? a : b;
}

// The scalars of one Adam step in the compute type O, rounded from double as torch rounds its Python
// floats (Adam's `step_size = lr / bias_correction1` etc. are doubles cast once per op).
// Uniform choices are numbers (sign, decay 1) rather than bools: a branch on a bool member kept GCC
// from vectorizing the amsgrad loop; multiplying by 1 or -1 is exact.
template <typename O>
struct AdamCoefs {
  O grad_sign;         // -1 with maximize, else 1
  O decay;             // 1 - lr * wd (decoupled), else 1
  O wd;                // coupled weight decay (0: none)
  O avg_weight;        // 1 - beta1: exp_avg.lerp_(grad, 1 - beta1)
  O beta2, sq_weight;  // exp_avg_sq * beta2 + (1 - beta2) * g * g
  O step_size;         // lr / (1 - beta1^step)
  O bc2_sqrt;          // sqrt(1 - beta2^step)
  O eps;
};

// `step` is the count after this update (1 on the first call).
template <typename O>
EMBER_HOST_DEVICE inline AdamCoefs<O> adam_coefs(const AdamMultiStepAttrs& h, double lr, double step) {
  const double bc1 = 1.0 - ::pow(h.beta1, step);
  const double bc2 = 1.0 - ::pow(h.beta2, step);
  AdamCoefs<O> c;
  c.grad_sign = h.maximize ? O(-1) : O(1);
  c.decay = h.decoupled ? static_cast<O>(1.0 - lr * h.weight_decay) : O(1);
  c.wd = h.decoupled ? O(0) : static_cast<O>(h.weight_decay);
  c.avg_weight = static_cast<O>(1.0 - h.beta1);
  c.beta2 = static_cast<O>(h.beta2);
  c.sq_weight = static_cast<O>(1.0 - h.beta2);
  c.step_size = static_cast<O>(lr / bc1);
  c.bc2_sqrt = static_cast<O>(::sqrt(bc2));
  c.eps = static_cast<O>(h.eps);
  return c;
}

// One element, in the operation order of torch's single-tensor Adam (and its fused CPU kernel), so
// float32/float64 results round like torch's: lerp for exp_avg, addcmul for exp_avg_sq, addcdiv.
// With kAmsgrad the denominator uses the running max of exp_avg_sq, kept in vmax.
template <typename O, bool kAmsgrad>
EMBER_HOST_DEVICE inline void adam_update(O& p, O g, O& m, O& v, O& vmax, const AdamCoefs<O>& c) {
  g = g * c.grad_sign;
  p = p * c.decay;
  if (c.wd != O(0)) g = g + c.wd * p;
  // torch's lerp: the formula is picked by the weight's size for accuracy.
  m = c.avg_weight < O(0.5) ? m + c.avg_weight * (g - m) : g - (g - m) * (O(1) - c.avg_weight);
  v = v * c.beta2;
  v = v + c.sq_weight * g * g;
  O second = v;
  if constexpr (kAmsgrad) {
    vmax = nan_max(vmax, v);
    second = vmax;
  }
  const O denom = std::sqrt(second) / c.bc2_sqrt + c.eps;  // float sqrt for float: as torch's
  p = p - c.step_size * m / denom;
}

// One element of a parameter stored as T (loaded into the compute type, stored back rounded once).
// Without kAmsgrad, vmax is not touched.
template <typename T, bool kAmsgrad>
EMBER_HOST_DEVICE inline void adam_element(T& p, T g, T& m, T& v, T& vmax, const AdamCoefs<opmath_t<T>>& c) {
  using O = opmath_t<T>;
  O pv = static_cast<O>(p), mv = static_cast<O>(m), vv = static_cast<O>(v);
  O xv = kAmsgrad ? static_cast<O>(vmax) : O(0);
  adam_update<O, kAmsgrad>(pv, static_cast<O>(g), mv, vv, xv, c);
  p = static_cast<T>(pv);
  m = static_cast<T>(mv);
  v = static_cast<T>(vv);
  if constexpr (kAmsgrad) vmax = static_cast<T>(xv);
}

// The scalars of one SGD step in the compute type O.
template <typename O>
struct SgdCoefs {
  O lr, wd, momentum;
  O damp_weight;  // 1 - dampening
  bool nesterov, maximize, first_step;
};

template <typename O>
EMBER_HOST_DEVICE inline SgdCoefs<O> sgd_coefs(const SgdMultiStepAttrs& h, double lr) {
  return {static_cast<O>(lr), static_cast<O>(h.weight_decay), static_cast<O>(h.momentum),
          static_cast<O>(1.0 - h.dampening), h.nesterov, h.maximize, h.first_step};
}

// One element, in the operation order of torch's single-tensor SGD: grad (+ wd * p), the momentum
// buffer (the gradient itself on the first step), Nesterov's look-ahead, p -= lr * update.
template <typename O, bool kMomentum>
EMBER_HOST_DEVICE inline void sgd_update(O& p, O g, O& buf, const SgdCoefs<O>& c) {
  if (c.maximize) g = -g;
  if (c.wd != O(0)) g = g + c.wd * p;
  if constexpr (kMomentum) {
    buf = c.first_step ? g : buf * c.momentum + c.damp_weight * g;
    g = c.nesterov ? g + c.momentum * buf : buf;
  }
  p = p - c.lr * g;
}

template <typename T, bool kMomentum>
EMBER_HOST_DEVICE inline void sgd_element(T& p, T g, T& buf, const SgdCoefs<opmath_t<T>>& c) {
  using O = opmath_t<T>;
  O pv = static_cast<O>(p);
  O bv = kMomentum ? static_cast<O>(buf) : O(0);
  sgd_update<O, kMomentum>(pv, static_cast<O>(g), bv, c);
  p = static_cast<T>(pv);
  if constexpr (kMomentum) buf = static_cast<T>(bv);
}

}  // namespace ember::optim
