#pragma once
// The per-element Adam/AdamW update shared by adam_step's kernels (cpu/optim.cpp, cuda/optim.cu;
// host and device code). The hyperparameters arrive as the op's AdamStepAttrs (runtime/spec/nn.yaml);
// decoupled (AdamW) scales p by 1 - lr * wd, else (Adam) grad += wd * p.
#include <cmath>
#include <cstdint>

#include "core/half.h"
#include "generated/op_attrs_nn.h"

namespace ember::optim {

// The scalars of one step in the compute type O, rounded from double as torch rounds its Python
// floats (Adam's `step_size = lr / bias_correction1` etc. are doubles cast once per op).
template <typename O>
struct AdamCoefs {
  O decay;         // 1 - lr * wd (decoupled)
  O wd;            // coupled weight decay (0: none)
  O avg_weight;    // 1 - beta1: exp_avg.lerp_(grad, 1 - beta1)
  O beta2, sq_weight;  // exp_avg_sq * beta2 + (1 - beta2) * g * g
  O step_size;     // lr / (1 - beta1^step)
  O bc2_sqrt;      // sqrt(1 - beta2^step)
  O eps;
  bool decoupled, maximize;
};

// `step` is the count after this update (1 on the first call).
template <typename O>
EMBER_HOST_DEVICE inline AdamCoefs<O> adam_coefs(const AdamStepAttrs& h, double step) {
  const double bc1 = 1.0 - ::pow(h.beta1, step);
  const double bc2 = 1.0 - ::pow(h.beta2, step);
  AdamCoefs<O> c;
  c.decay = static_cast<O>(1.0 - h.lr * h.weight_decay);
  c.wd = h.decoupled ? O(0) : static_cast<O>(h.weight_decay);
  c.avg_weight = static_cast<O>(1.0 - h.beta1);
  c.beta2 = static_cast<O>(h.beta2);
  c.sq_weight = static_cast<O>(1.0 - h.beta2);
  c.step_size = static_cast<O>(h.lr / bc1);
  c.bc2_sqrt = static_cast<O>(::sqrt(bc2));
  c.eps = static_cast<O>(h.eps);
  c.decoupled = h.decoupled && h.weight_decay != 0.0;
  c.maximize = h.maximize;
  return c;
}

// One element, in the operation order of torch's single-tensor Adam (and its fused CPU kernel), so
// float32/float64 results round like torch's: lerp for exp_avg, addcmul for exp_avg_sq, addcdiv.
template <typename O>
EMBER_HOST_DEVICE inline void adam_update(O& p, O g, O& m, O& v, const AdamCoefs<O>& c) {
  if (c.maximize) g = -g;
  if (c.decoupled) p = p * c.decay;
  else if (c.wd != O(0)) g = g + c.wd * p;
  // torch's lerp: the formula is picked by the weight's size for accuracy.
  m = c.avg_weight < O(0.5) ? m + c.avg_weight * (g - m) : g - (g - m) * (O(1) - c.avg_weight);
  v = v * c.beta2;
  v = v + c.sq_weight * g * g;
  const O denom = std::sqrt(v) / c.bc2_sqrt + c.eps;  // float sqrt for float: as torch's
  p = p - c.step_size * m / denom;
}

// One element of a parameter stored as T (loaded into the compute type, stored back rounded once).
template <typename T>
EMBER_HOST_DEVICE inline void adam_element(T& p, T g, T& m, T& v, const AdamCoefs<opmath_t<T>>& c) {
  using O = opmath_t<T>;
  O pv = static_cast<O>(p), mv = static_cast<O>(m), vv = static_cast<O>(v);
  adam_update<O>(pv, static_cast<O>(g), mv, vv, c);
  p = static_cast<T>(pv);
  m = static_cast<T>(mv);
  v = static_cast<T>(vv);
}

}  // namespace ember::optim
