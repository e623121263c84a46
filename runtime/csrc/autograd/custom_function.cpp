#include "autograd/custom_function.h"

#include "ops/ops.h"

namespace ember {

Tensor FunctionNode::input_grad(size_t i, Tensor g) const {
  const OutputMeta& m = input_meta[i];
  if (!(g.sizes() == m.sizes)) {
    bool expandable = g.dim() >= static_cast<int64_t>(m.sizes.size());
    for (size_t d = 0; expandable && d < m.sizes.size(); ++d) {
      const int64_t gs = g.sizes()[g.dim() - m.sizes.size() + d];
      expandable = m.sizes[d] == gs || m.sizes[d] == 1;
    }
    EMBER_CHECK(expandable, "[", name(), "] function ", name(), " returned an invalid gradient at index ", i,
                " - got ", g.sizes(), " but expected shape compatible with ", m.sizes);
    g = sum_to_size(g, m.sizes);
  }
  return g.dtype() == m.dtype ? g : to_dtype(g, m.dtype);
}

std::vector<Tensor> wrap_function_outputs(const std::shared_ptr<FunctionNode>& node, const std::vector<Tensor>& args,
                                          std::vector<Tensor> outputs, const std::vector<Tensor>& non_differentiable) {
  for (const Tensor& a : args) {
    node->is_tensor_arg.push_back(a.defined());
    node->next_edges.push_back(a.defined() ? gradient_edge(a) : Edge{});
    node->input_meta.push_back(a.defined() ? OutputMeta{a.sizes(), a.dtype(), a.device()}
                                           : OutputMeta{DimVector(), ScalarType::Float32, Device()});
  }
  for (Tensor& o : outputs)
    for (const Tensor& a : args)
      if (a.defined() && a.is_same(o)) { o = o.alias(); break; }
  set_history(node, std::span<Tensor>(outputs));
  for (const Tensor& x : non_differentiable)
    for (Tensor& o : outputs)
      if ((o.is_same(x) || (o.data_ptr() == x.data_ptr() && o.sizes() == x.sizes())) && o.impl()->autograd) o.detach_();
  return outputs;
}

}  // namespace ember
