#pragma once
// The language-neutral half of custom autograd Functions (ember.autograd.Function; the Python
// callables are in python/bind_autograd.cpp, Note [PyNode]): wiring a Function's node into the
// graph and fixing up the gradients its backward returns.
#include <vector>

#include "autograd/node.h"

namespace ember {

// A Function's node: one next_edge per forward argument (invalid for a non-tensor argument).
struct FunctionNode : Node {
  // The gradient for forward argument i as the graph needs it: summed down to the argument's shape
  // when the backward returned it broadcast (an error when it cannot be), cast to its dtype.
  Tensor input_grad(size_t i, Tensor g) const;

  std::vector<bool> is_tensor_arg;
  std::vector<OutputMeta> input_meta;
};

// Records `node` as the producer of `outputs`, given the forward's arguments (undefined: not a
// tensor). An output that is one of the inputs becomes an alias (the input keeps its own history,
// as in torch); outputs in `non_differentiable` get no history. Returns the outputs.
std::vector<Tensor> wrap_function_outputs(const std::shared_ptr<FunctionNode>& node, const std::vector<Tensor>& args,
                                          std::vector<Tensor> outputs, const std::vector<Tensor>& non_differentiable);

}  // namespace ember
