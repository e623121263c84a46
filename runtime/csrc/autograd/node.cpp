#include "autograd/node.h"

#include <atomic>

#include "autograd/grad_mode.h"
#include "dispatch/op_table.h"
#include "ops/ops.h"

namespace ember {
namespace {
std::atomic<uint64_t> g_next_sequence_nr{0};
}  // namespace

Node::Node() : sequence_nr(g_next_sequence_nr.fetch_add(1, std::memory_order_relaxed)) {}

AccumulateGrad::AccumulateGrad(Tensor v) : variable(std::move(v)) {
  outputs.push_back({variable.sizes(), variable.dtype(), variable.device()});
}

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>&& grads) {
  Tensor g = std::move(grads[0]);
  if (!g.defined()) return {};
  AutogradMeta& meta = variable.impl()->autograd_meta();
  if (!meta.grad || !meta.grad->defined()) {
    // Steal the incoming buffer only when nobody else can see it; otherwise copy (Note [Grad aliasing]:
    // one gradient tensor often feeds several leaves, e.g. both inputs of an add).
    bool sole_owner = g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 && !g.requires_grad();
    Tensor stored = sole_owner ? g : clone(g);
    if (!(GradMode::is_enabled() && g.requires_grad())) stored = stored.alias();  // drop history
    meta.grad = std::make_shared<Tensor>(stored);
  } else if (GradMode::is_enabled() && g.requires_grad()) {
    *meta.grad = add(*meta.grad, g);  // create_graph: keep the accumulation differentiable
  } else {
    add_(*meta.grad, g);
  }
  return {};
}

std::string OpNode::name() const {
  std::string n = op_def(op).name;
  n[0] = static_cast<char>(std::toupper(n[0]));
  return n + "Backward";
}

std::vector<Tensor> OpNode::apply(std::vector<Tensor>&& grads) {
  EMBER_CHECK(!released, "[backward] Trying to backward through the graph a second time (or directly "
              "access saved tensors after they have already been freed) at ", name(),
              ". Specify retain_graph=True if you need to backward through the graph a second time.");
  std::vector<Tensor> grads_in(inputs.size());
  BackwardCtx ctx(*this, grads, grads_in);
  op_def(op).backward(ctx, attrs());
  // Generic fix-ups so rules can ignore broadcasting and type promotion of their inputs.
  for (size_t i = 0; i < grads_in.size(); ++i) {
    Tensor& g = grads_in[i];
    if (!g.defined() || !next_edges[i].valid()) { g = Tensor(); continue; }
    if (!(g.sizes() == inputs[i].sizes)) g = sum_to_size(g, inputs[i].sizes);
    if (g.dtype() != inputs[i].dtype) g = to_dtype(g, inputs[i].dtype);
  }
  return grads_in;
}

Tensor BackwardCtx::unpack(const SavedTensor& s, size_t i, const char* what) const {
  EMBER_CHECK(!node_.released && s.tensor.defined(), "[backward] ", node_.name(), ": saved ", what, " ", i,
              " is not available (the graph was freed by a previous backward; pass retain_graph=True)");
  uint32_t now = s.tensor.version();
  EMBER_CHECK(now == s.version, "[", op_def(node_.op).name, "] one of the variables needed for gradient "
              "computation has been modified by an inplace operation: saved ", what, " ", i, " (",
              describe(s.tensor), ") of ", node_.name(), " is at version ", now, "; expected version ",
              s.version, " instead.");
  // Note [Saved outputs and double backward]: outputs are saved without history (the node must not
  // own itself). Under create_graph, re-attach this node as their grad_fn so the backward formula
  // (e.g. exp's grad * out) is itself differentiable through the output, as torch's SavedVariable does.
  if (s.was_output && GradMode::is_enabled() && is_floating(s.tensor.dtype())) {
    Tensor out = s.tensor.alias();
    AutogradMeta& meta = out.impl()->autograd_meta();
    meta.requires_grad = true;
    meta.grad_fn = node_.shared_from_this();
    meta.output_nr = static_cast<uint32_t>(i);
    return out;
  }
  return s.tensor;
}

Tensor BackwardCtx::input(size_t i) const {
  EMBER_CHECK(i < node_.saved_inputs.size(), "[backward] ", node_.name(), " did not save input ", i,
              " (its spec entry must say `save: inputs` or `both`)");
  return unpack(node_.saved_inputs[i], i, "input");
}

Tensor BackwardCtx::output(size_t i) const {
  EMBER_CHECK(i < node_.saved_outputs.size(), "[backward] ", node_.name(), " did not save output ", i,
              " (its spec entry must say `save: outputs` or `both`)");
  return unpack(node_.saved_outputs[i], i, "output");
}

Tensor BackwardCtx::grad(size_t i) const {
  if (grads_out_[i].defined()) return grads_out_[i];
  const OutputMeta& m = node_.outputs[i];
  return zeros(m.sizes, m.dtype, m.device);
}

bool BackwardCtx::needs_grad(size_t i) const { return i < node_.next_edges.size() && node_.next_edges[i].valid(); }

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  AutogradMeta& meta = *t.impl()->autograd;
  if (meta.grad_fn) return {meta.grad_fn, meta.output_nr};
  std::shared_ptr<Node> acc = meta.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t);
    meta.grad_accumulator = acc;
  }
  return {acc, 0};
}

void set_history(const std::shared_ptr<Node>& node, std::span<Tensor> outputs) {
  node->outputs.clear();
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor& out = outputs[i];
    node->outputs.push_back({out.sizes(), out.dtype(), out.device()});
    if (!is_floating(out.dtype())) continue;  // integer outputs (indices) are not differentiable
    AutogradMeta& meta = out.impl()->autograd_meta();
    meta.requires_grad = true;
    meta.grad_fn = node;
    meta.output_nr = static_cast<uint32_t>(i);
  }
}

}  // namespace ember
