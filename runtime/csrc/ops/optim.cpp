// Fused optimizer steps (spec: runtime/spec/nn.yaml). adam_step_: one Adam/AdamW update of one
// parameter and its state in a single kernel pass.
#include "dispatch/dispatcher.h"
#include "ops/ops.h"

namespace ember {

// Note [Fused Adam step]
// adam_step_ updates param, exp_avg, exp_avg_sq and the step count in place in one pass over memory
// (the Python loop it replaces ran ~11 ops per parameter). The math is torch.optim.Adam/AdamW's
// (no amsgrad) in torch's operation order, computed in float for half types (ops/optim.h). `step`
// is a 0-dim float32 tensor on the param's device that the kernel itself reads and increments: the
// bias corrections come from device memory, so a captured CUDA graph uses each replay's own count
// (Note [adam_step on CUDA: the step count], cuda/optim.cu). Not differentiable.

namespace {

// The bytes [first, second) that t's elements span (non-empty t).
std::pair<uintptr_t, uintptr_t> byte_span(const Tensor& t) {
  int64_t lo = 0, hi = 0;
  for (int64_t d = 0; d < t.dim(); ++d) {
    const int64_t reach = t.strides()[d] * (t.sizes()[d] - 1);
    (reach < 0 ? lo : hi) += reach;
  }
  const auto base = reinterpret_cast<uintptr_t>(t.data_ptr());
  const auto es = static_cast<int64_t>(t.element_size());
  return {base + lo * es, base + (hi + 1) * es};
}

bool memory_overlaps(const Tensor& a, const Tensor& b) {
  if (a.numel() == 0 || b.numel() == 0) return false;
  const auto [a0, a1] = byte_span(a);
  const auto [b0, b1] = byte_span(b);
  return a0 < b1 && b0 < a1;
}

bool has_repeated_elements(const Tensor& t) {  // expanded (stride-0) dims: one element written twice
  if (t.numel() == 0) return false;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.sizes()[d] > 1 && t.strides()[d] == 0) return true;
  return false;
}

}  // namespace

void adam_step_(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& step, double lr,
                double beta1, double beta2, double eps, double weight_decay, bool decoupled, bool maximize) {
  EMBER_CHECK_TYPE(is_floating(param.dtype()), "[adam_step] expected a floating point param, got ", describe(param));
  const std::pair<const Tensor*, const char*> state[] = {{&grad, "grad"}, {&exp_avg, "exp_avg"},
                                                          {&exp_avg_sq, "exp_avg_sq"}};
  for (const auto& [t, what] : state) {
    EMBER_CHECK(t->device() == param.device(), "[adam_step] expected ", what, " on the param's device (",
                describe(param), "), got ", describe(*t));
    EMBER_CHECK_TYPE(t->dtype() == param.dtype(), "[adam_step] expected ", what, " of the param's dtype (",
                     describe(param), "), got ", describe(*t));
    EMBER_CHECK(t->sizes() == param.sizes(), "[adam_step] expected ", what, " of the param's shape (",
                describe(param), "), got ", describe(*t));
  }
  EMBER_CHECK(step.dim() == 0 && step.dtype() == ScalarType::Float32, "[adam_step] expected step to be a 0-dim "
              "float32 tensor, got ", describe(step));
  EMBER_CHECK(step.device() == param.device(), "[adam_step] expected step on the param's device (",
              describe(param), "), got ", describe(step));
  EMBER_CHECK_VALUE(lr >= 0.0, "[adam_step] invalid learning rate: ", lr);
  EMBER_CHECK_VALUE(eps >= 0.0, "[adam_step] invalid epsilon value: ", eps);
  EMBER_CHECK_VALUE(beta1 >= 0.0 && beta1 < 1.0 && beta2 >= 0.0 && beta2 < 1.0,
                    "[adam_step] invalid beta parameters: (", beta1, ", ", beta2, ")");
  EMBER_CHECK_VALUE(weight_decay >= 0.0, "[adam_step] invalid weight_decay value: ", weight_decay);
  const std::pair<const Tensor*, const char*> written[] = {{&param, "param"}, {&exp_avg, "exp_avg"},
                                                            {&exp_avg_sq, "exp_avg_sq"}, {&step, "step"}};
  for (size_t i = 0; i < 4; ++i) {
    EMBER_CHECK(!has_repeated_elements(*written[i].first), "[adam_step] ", written[i].second,
                " has overlapping elements (an expanded tensor) and can't be updated in place: ",
                describe(*written[i].first));
    for (size_t j = i + 1; j < 4; ++j)
      EMBER_CHECK(!memory_overlaps(*written[i].first, *written[j].first), "[adam_step] ", written[i].second, " and ",
                  written[j].second, " share memory (", describe(*written[i].first), ", ",
                  describe(*written[j].first), "); each must be its own tensor");
  }

  const Tensor in[] = {param, grad, exp_avg, exp_avg_sq, step};
  Tensor out[] = {param, exp_avg, exp_avg_sq, step};
  // Bumps param's version (out[0] is in[0]); the other state tensors are bumped below.
  dispatch<OpId::adam_step>(in, out, {lr, beta1, beta2, eps, weight_decay, decoupled, maximize});
  exp_avg.bump_version();
  exp_avg_sq.bump_version();
  step.bump_version();
}

}  // namespace ember
