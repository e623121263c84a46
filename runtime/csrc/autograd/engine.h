#pragma once
// The backward engine: runs the graph behind `roots` in dependency order.
#include <vector>

#include "autograd/node.h"

namespace ember {

// tensor.backward(): accumulates into leaves' .grad. `grad_roots[i]` may be undefined only for
// scalar roots (then it is 1).
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots, bool retain_graph,
              bool create_graph);

// ember.autograd.grad(): returns d(roots)/d(inputs) without touching .grad.
std::vector<Tensor> grad(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
                         const std::vector<Tensor>& inputs, bool retain_graph, bool create_graph,
                         bool allow_unused);

}  // namespace ember
