// Multi-tensor optimizer steps (spec: runtime/spec/nn.yaml): adam_multi_step_ and sgd_multi_step_
// update every parameter of a list and its state in place.
#include <algorithm>
#include <vector>

#include "autograd/grad_mode.h"
#include "dispatch/dispatcher.h"
#include "ops/ops.h"

namespace ember {

// Note [Multi-tensor optimizer steps]
// One call updates a whole list of parameters: on CUDA a few launches for all of them (the
// multi-tensor apply of cuda/multi_tensor.cuh), on the CPU one parallel region over all their
// elements. The math is torch.optim's in torch's single-tensor operation order, computed in float
// for half types and in double for double (ops/optim.h); state has the param's dtype, as torch's.
//   * Steps: adam's per-parameter counts are 0-dim float32 tensors on the params' device; the
//     kernels increment them and read them back on the device, so nothing waits on the host and a
//     captured CUDA graph computes each replay's bias corrections from that replay's counts.
//   * lr: a number (frozen into the call's attrs, and so into a captured graph) or a one-element
//     tensor that the kernels read when they run, so a graph replay uses whatever an LR scheduler
//     last wrote into it (torch's capturable semantics). A tensor on another device or of another
//     floating dtype is first copied to a float32 one on the params' device (not capturable).
//   * Lists may mix devices and dtypes: the op runs once per (device, dtype) group of params, in order
//     (ember/optim calls it once per param group).
//   * Layouts: contiguous tensors go straight to the kernels; any other is updated through a
//     contiguous copy that is written back after the step (rare for parameters and their state).
// The ops are not differentiable.

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

// One named list of an op's arguments.
struct NamedList {
  const TensorList* tensors;
  const char* name;
  bool written;
};

// Argument checks shared by both ops: entry i of every list has param i's shape, dtype and device;
// params are floating; written tensors can be updated in place.
void check_lists(const char* op, std::span<const NamedList> lists) {
  const TensorList& params = *lists[0].tensors;
  const bool grad_mode = GradMode::is_enabled();
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    EMBER_CHECK(p.defined(), "[", op, "] params[", i, "] is undefined");
    EMBER_CHECK_TYPE(is_floating(p.dtype()), "[", op, "] expected floating point params, got params[", i, "] = ",
                     describe(p));
    for (const NamedList& l : lists.subspan(1)) {
      const Tensor& t = (*l.tensors)[i];
      EMBER_CHECK(t.defined(), "[", op, "] ", l.name, "[", i, "] is undefined");
      EMBER_CHECK(t.device() == p.device(), "[", op, "] expected ", l.name, "[", i, "] on the param's device (",
                  describe(p), "), got ", describe(t));
      EMBER_CHECK_TYPE(t.dtype() == p.dtype(), "[", op, "] expected ", l.name, "[", i, "] of the param's dtype (",
                       describe(p), "), got ", describe(t));
      EMBER_CHECK(t.sizes() == p.sizes(), "[", op, "] expected ", l.name, "[", i, "] of the param's shape (",
                  describe(p), "), got ", describe(t));
    }
    for (size_t a = 0; a < lists.size(); ++a) {
      if (!lists[a].written) continue;
      const Tensor& t = (*lists[a].tensors)[i];
      EMBER_CHECK(!(grad_mode && t.requires_grad()), "[", op, "_] ", lists[a].name, "[", i, "] requires grad (",
                  describe(t), ") and can't be updated in place while grad mode is on; call the op under no_grad");
      EMBER_CHECK(!has_repeated_elements(t), "[", op, "] ", lists[a].name, "[", i, "] has overlapping elements (an "
                  "expanded tensor) and can't be updated in place: ", describe(t));
      for (size_t b = a + 1; b < lists.size(); ++b)
        EMBER_CHECK(!(lists[b].written && memory_overlaps(t, (*lists[b].tensors)[i])), "[", op, "] ", lists[a].name,
                    "[", i, "] and ", lists[b].name, "[", i, "] share memory (", describe(t), ", ",
                    describe((*lists[b].tensors)[i]), "); each must be its own tensor");
    }
  }
}

void check_lengths(const char* op, const TensorList& params, std::span<const NamedList> lists) {
  for (const NamedList& l : lists)
    EMBER_CHECK_VALUE(l.tensors->size() == params.size(), "[", op, "] expected ", params.size(), " ", l.name,
                      " (one per param), got ", l.tensors->size());
}

// A number lr must not be negative; a tensor lr must be one floating element (its value is read by
// the kernel, never by the host).
void check_lr(const char* op, const Operand& lr) {
  if (lr.is_number()) {
    const double v = lr.scalar.to_double();
    EMBER_CHECK_VALUE(v >= 0.0, "[", op, "] invalid learning rate: ", v);
    return;
  }
  EMBER_CHECK_VALUE(lr.tensor.numel() == 1, "[", op, "] expected a one-element lr tensor, got ", describe(lr.tensor));
  EMBER_CHECK_TYPE(is_floating(lr.tensor.dtype()), "[", op, "] expected a floating point lr tensor, got ",
                   describe(lr.tensor));
}

// The lr tensor as the kernels on `device` read it: float32 or float64, on `device` (copied if need be).
Tensor lr_tensor_on(const Tensor& lr, Device device) {
  const bool readable = lr.dtype() == ScalarType::Float32 || lr.dtype() == ScalarType::Float64;
  const Tensor t = readable ? lr : to_dtype(lr, ScalarType::Float32);
  return t.device() == device ? t : to_device(t, device);
}

// Indices of params grouped by (device, dtype), groups in order of first appearance: one dispatch each.
std::vector<std::vector<size_t>> device_dtype_groups(const TensorList& params) {
  std::vector<std::vector<size_t>> groups;
  std::vector<std::pair<Device, ScalarType>> keys;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::pair<Device, ScalarType> key{params[i].device(), params[i].dtype()};
    const auto it = std::find(keys.begin(), keys.end(), key);
    if (it == keys.end()) {
      keys.push_back(key);
      groups.push_back({i});
    } else {
      groups[it - keys.begin()].push_back(i);
    }
  }
  return groups;
}

TensorList pick(const TensorList& l, const std::vector<size_t>& idx) {
  if (l.empty()) return {};
  TensorList out;
  out.reserve(idx.size());
  for (size_t i : idx) out.push_back(l[i]);
  return out;
}

// Stands in contiguous copies for non-contiguous tensors (kernels need dense memory) and writes
// the written ones back once the step ran.
class ContiguousLists {
 public:
  // Returns the list to hand the kernel: `l` itself, or `l` with copies in place of strided tensors.
  TensorList take(const TensorList& l, bool written) {
    TensorList out = l;
    for (Tensor& t : out) {
      if (t.is_contiguous()) continue;
      Tensor dense = contiguous(t);
      if (written) write_back_.push_back({t, dense});
      t = dense;
    }
    return out;
  }
  void write_back() {
    for (auto& [orig, dense] : write_back_) copy_(orig, dense);
  }

 private:
  std::vector<std::pair<Tensor, Tensor>> write_back_;
};

void append(std::vector<Tensor>& dst, const TensorList& src) { dst.insert(dst.end(), src.begin(), src.end()); }

// The dispatcher bumps out[0]'s version (it is in[0]); the op bumps every other written tensor.
void bump_versions(std::span<Tensor> out) {
  for (size_t i = 1; i < out.size(); ++i) out[i].bump_version();
}

}  // namespace

void adam_multi_step_(const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
                      const TensorList& exp_avg_sqs, const TensorList& max_exp_avg_sqs, const TensorList& steps,
                      const Operand& lr, double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
                      bool decoupled, bool maximize) {
  constexpr const char* op = "adam_multi_step";
  const NamedList state[] = {{&grads, "grads", false}, {&exp_avgs, "exp_avgs", true},
                             {&exp_avg_sqs, "exp_avg_sqs", true}, {&steps, "steps", true}};
  check_lengths(op, params, state);
  EMBER_CHECK_VALUE(max_exp_avg_sqs.size() == (amsgrad ? params.size() : 0), "[", op, "] expected ",
                    amsgrad ? params.size() : 0, " max_exp_avg_sqs (", amsgrad ? "one per param with amsgrad" :
                    "none without amsgrad", "), got ", max_exp_avg_sqs.size());
  check_lr(op, lr);
  EMBER_CHECK_VALUE(eps >= 0.0, "[", op, "] invalid epsilon value: ", eps);
  EMBER_CHECK_VALUE(beta1 >= 0.0 && beta1 < 1.0 && beta2 >= 0.0 && beta2 < 1.0, "[", op,
                    "] invalid beta parameters: (", beta1, ", ", beta2, ")");
  EMBER_CHECK_VALUE(weight_decay >= 0.0, "[", op, "] invalid weight_decay value: ", weight_decay);
  std::vector<NamedList> checked = {{&params, "params", true}, {&grads, "grads", false},
                                    {&exp_avgs, "exp_avgs", true}, {&exp_avg_sqs, "exp_avg_sqs", true}};
  if (amsgrad) checked.push_back({&max_exp_avg_sqs, "max_exp_avg_sqs", true});
  check_lists(op, checked);
  for (size_t i = 0; i < steps.size(); ++i) {  // scalars of their own: no shape or dtype to match
    EMBER_CHECK(steps[i].defined() && steps[i].dim() == 0 && steps[i].dtype() == ScalarType::Float32, "[", op,
                "] expected steps[", i, "] to be a 0-dim float32 tensor, got ", describe(steps[i]));
    EMBER_CHECK(steps[i].device() == params[i].device(), "[", op, "] expected steps[", i,
                "] on the param's device (", describe(params[i]), "), got ", describe(steps[i]));
    for (const NamedList& l : checked)
      EMBER_CHECK(!(l.written && memory_overlaps(steps[i], (*l.tensors)[i])), "[", op, "] steps[", i, "] and ",
                  l.name, "[", i, "] share memory; each must be its own tensor");
  }

  const double lr_value = lr.is_number() ? lr.scalar.to_double() : 0.0;
  for (const std::vector<size_t>& idx : device_dtype_groups(params)) {
    ContiguousLists dense;
    const TensorList p = dense.take(pick(params, idx), true), g = dense.take(pick(grads, idx), false),
                     m = dense.take(pick(exp_avgs, idx), true), v = dense.take(pick(exp_avg_sqs, idx), true),
                     vmax = dense.take(pick(max_exp_avg_sqs, idx), true), s = pick(steps, idx);
    std::vector<Tensor> in, out;
    for (const TensorList* l : {&p, &g, &m, &v, &vmax, &s}) append(in, *l);
    if (!lr.is_number()) in.push_back(lr_tensor_on(lr.tensor, p[0].device()));
    for (const TensorList* l : {&p, &m, &v, &vmax, &s}) append(out, *l);
    dispatch<OpId::adam_multi_step>(in, out, {lr_value, !lr.is_number(), beta1, beta2, eps, weight_decay, amsgrad,
                                              decoupled, maximize});
    bump_versions(out);
    dense.write_back();
  }
}

void sgd_multi_step_(const TensorList& params, const TensorList& grads, const TensorList& momentum_buffers,
                     const Operand& lr, double momentum, double dampening, double weight_decay, bool nesterov,
                     bool maximize, bool first_step) {
  constexpr const char* op = "sgd_multi_step";
  const NamedList state[] = {{&grads, "grads", false}};
  check_lengths(op, params, state);
  EMBER_CHECK_VALUE(momentum_buffers.size() == (momentum != 0.0 ? params.size() : 0), "[", op, "] expected ",
                    momentum != 0.0 ? params.size() : 0, " momentum_buffers (", momentum != 0.0 ?
                    "one per param with momentum" : "none without momentum", "), got ", momentum_buffers.size());
  check_lr(op, lr);
  EMBER_CHECK_VALUE(momentum >= 0.0, "[", op, "] invalid momentum value: ", momentum);
  EMBER_CHECK_VALUE(weight_decay >= 0.0, "[", op, "] invalid weight_decay value: ", weight_decay);
  EMBER_CHECK_VALUE(!nesterov || (momentum > 0.0 && dampening == 0.0), "[", op,
                    "] Nesterov momentum requires a momentum and zero dampening");
  std::vector<NamedList> checked = {{&params, "params", true}, {&grads, "grads", false}};
  if (momentum != 0.0) checked.push_back({&momentum_buffers, "momentum_buffers", true});
  check_lists(op, checked);

  const double lr_value = lr.is_number() ? lr.scalar.to_double() : 0.0;
  for (const std::vector<size_t>& idx : device_dtype_groups(params)) {
    ContiguousLists dense;
    const TensorList p = dense.take(pick(params, idx), true), g = dense.take(pick(grads, idx), false),
                     buf = dense.take(pick(momentum_buffers, idx), true);
    std::vector<Tensor> in, out;
    for (const TensorList* l : {&p, &g, &buf}) append(in, *l);
    if (!lr.is_number()) in.push_back(lr_tensor_on(lr.tensor, p[0].device()));
    for (const TensorList* l : {&p, &buf}) append(out, *l);
    dispatch<OpId::sgd_multi_step>(in, out, {lr_value, !lr.is_number(), momentum, dampening, weight_decay, nesterov,
                                             maximize, first_step});
    bump_versions(out);
    dense.write_back();
  }
}

}  // namespace ember
