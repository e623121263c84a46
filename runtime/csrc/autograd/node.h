#pragma once
// Backward graph: a Node consumes the gradients of its forward outputs and produces gradients for
// its forward inputs, which flow along next_edges to the nodes that produced those inputs.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "dispatch/op_def.h"

namespace ember {

struct Node;

struct Edge {
  std::shared_ptr<Node> fn;  // null: the input does not require grad
  uint32_t input_nr = 0;     // which output of the forward op (= input slot of fn) it feeds
  bool valid() const { return fn != nullptr; }
};

struct OutputMeta {
  DimVector sizes;
  ScalarType dtype;
  Device device;
};

struct Node : std::enable_shared_from_this<Node> {
  Node();
  virtual ~Node() = default;
  // grads[i] is the gradient of forward output i (undefined when it received none).
  // Returns one gradient per next_edge (undefined allowed).
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grads) = 0;
  virtual std::string name() const = 0;
  virtual void release_saved() {}

  std::vector<Edge> next_edges;
  std::vector<OutputMeta> outputs;  // forward outputs, to materialize zero grads
  // Tensor hooks on forward output i, run on its grad before apply (register_hook on a non-leaf).
  // A removed hook is left as an empty std::function so handles keep their index.
  std::vector<std::pair<uint32_t, std::function<Tensor(const Tensor&)>>> pre_hooks;
  // retain_grad() on output i: runs after every pre_hook (torch: retains_grad hooks run last).
  std::vector<std::pair<uint32_t, std::function<void(const Tensor&)>>> retains_grad_hooks;
  uint64_t sequence_nr;  // creation order: later nodes run first among ready ones
};

// Accumulates into a leaf's .grad. The engine runs the leaf's tensor hooks (AutogradMeta::hooks)
// before apply, so autograd.grad also sees hooked gradients.
struct AccumulateGrad final : Node {
  explicit AccumulateGrad(Tensor variable);
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  std::string name() const override { return "AccumulateGrad"; }
  Tensor variable;
};

// Holds what an op-table backward rule needs: the op, its attrs (TypedOpNode), saved tensors and
// input metadata.
struct SavedTensor {
  Tensor tensor;
  uint32_t version = 0;
  bool was_output = false;
};

struct OpNode : Node {
  explicit OpNode(OpId op) : op(op) {}
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  std::string name() const override;
  // Note [Freed graphs]: like torch, only a node that saved tensors refuses a second backward.
  void release_saved() override {
    released = released || !saved_inputs.empty() || !saved_outputs.empty();
    saved_inputs.clear();
    saved_outputs.clear();
  }

  virtual const void* attrs() const = 0;  // the op's AttrsOf<op>, as the forward saw them

  OpId op;
  std::vector<SavedTensor> saved_inputs;   // empty unless the op's flags ask for them
  std::vector<SavedTensor> saved_outputs;
  std::vector<OutputMeta> inputs;          // forward input metadata (sizes, dtype, device)
  bool released = false;
};

// The node of an op whose attrs type is A (generated/op_table.cpp makes them).
template <class A>
struct TypedOpNode final : OpNode {
  TypedOpNode(OpId op, const A& attrs) : OpNode(op), attrs_(attrs) {}
  const void* attrs() const override { return &attrs_; }
  A attrs_;
};

// The view a backward rule gets of its node (its attrs arrive as the rule's second, typed argument).
class BackwardCtx {
 public:
  BackwardCtx(OpNode& node, std::vector<Tensor>& grads_out, std::vector<Tensor>& grads_in)
      : node_(node), grads_out_(grads_out), grads_in_(grads_in) {}
  Tensor input(size_t i) const;   // saved input i; error if modified in place since the forward
  Tensor output(size_t i) const;  // saved output i; same check
  const OutputMeta& input_meta(size_t i) const { return node_.inputs[i]; }
  size_t num_inputs() const { return node_.inputs.size(); }
  size_t num_outputs() const { return grads_out_.size(); }
  bool has_grad(size_t i) const { return grads_out_[i].defined(); }
  Tensor grad(size_t i = 0) const;  // gradient of output i; zeros when none flowed in
  bool needs_grad(size_t i) const;  // input i requires grad
  void set_grad(size_t i, Tensor g) { grads_in_[i] = std::move(g); }

 private:
  Tensor unpack(const SavedTensor& s, size_t i, const char* what) const;
  OpNode& node_;
  std::vector<Tensor>& grads_out_;
  std::vector<Tensor>& grads_in_;
};

// The edge a gradient for `t` must flow into: its grad_fn, or its leaf accumulator.
Edge gradient_edge(const Tensor& t);

// Records `node` as the producer of `outputs` (called by the dispatcher and custom Functions).
void set_history(const std::shared_ptr<Node>& node, std::span<Tensor> outputs);

}  // namespace ember
