#include "autograd/copy_slices.h"

#include "autograd/grad_mode.h"
#include "ops/ops.h"

namespace ember {

void check_inplace_on_view(const Tensor& view, const char* op) {
  const auto& base = view.impl()->view_base;
  EMBER_CHECK(base != nullptr, "[", op, "_] in-place modification of a view (", describe(view), ") whose base is "
              "unknown (e.g. a view of a detached tensor) while autograd is recording is not supported; use an "
              "out-of-place op instead");
  Tensor b(base);
  EMBER_CHECK(!(b.requires_grad() && b.is_leaf()), "[", op, "_] a view of a leaf Variable that requires grad (",
              describe(b), ") is being used in an in-place operation.");
}

CopySlices::CopySlices(const Tensor& base, const Tensor& view, std::shared_ptr<Node> fn)
    : base_sizes(base.sizes()), base_strides(base.strides()), base_offset(base.storage_offset()),
      view_sizes(view.sizes()), view_strides(view.strides()), view_offset(view.storage_offset()),
      fn(std::move(fn)) {}

std::vector<Tensor> CopySlices::apply(std::vector<Tensor>&& grads) {
  std::vector<Tensor> out(next_edges.size());
  if (grads.empty() || !grads[0].defined()) return out;
  // Grad mode is whatever the engine set (on under create_graph): then the copies below record
  // too, and the in-place write into `slice` itself goes through CopySlices, so the result stays
  // differentiable.
  const Tensor& grad = grads[0];
  // A buffer with the base's geometry, so the view's strides and offset address the same slice.
  Tensor result = Tensor::empty_strided(base_sizes, base_strides, grad.dtype(), grad.device());
  copy_(result, grad);
  Tensor slice = as_strided(result, view_sizes, view_strides, view_offset - base_offset);
  std::vector<Tensor> fn_grads(std::max<size_t>(fn->outputs.size(), 1));
  fn_grads[0] = clone(slice);
  std::vector<Tensor> res = fn->apply(std::move(fn_grads));
  if (!res.empty() && res[0].defined()) copy_(slice, res[0]);
  else if (result.requires_grad()) copy_(slice, zeros_like(slice));  // fill_ is not differentiable
  else zero_(slice);
  out[0] = result;
  for (size_t i = 1; i < res.size() && i < out.size(); ++i) out[i] = std::move(res[i]);
  return out;
}

void rebase_view_history(Tensor& view) {
  Tensor base(view.impl()->view_base);
  std::shared_ptr<Node> fn = view.grad_fn();
  if (!fn) return;  // the op produced no differentiable output
  auto cs = std::make_shared<CopySlices>(base, view, fn);
  cs->next_edges.push_back(gradient_edge(base));  // the base's history before the write
  for (size_t i = 1; i < fn->next_edges.size(); ++i) cs->next_edges.push_back(fn->next_edges[i]);
  set_history(cs, std::span<Tensor>(&base, 1));
  // Re-derive the view from the base's new history.
  Tensor fresh = as_strided(base, view.sizes(), view.strides(), view.storage_offset());
  AutogradMeta& meta = view.impl()->autograd_meta();
  meta.grad_fn = fresh.grad_fn();
  meta.output_nr = 0;
  meta.requires_grad = true;
}

}  // namespace ember
