#pragma once
// Note [CopySlices]: an in-place op on a view (`base[:, 0].mul_(2)`, `buf[:, 0] = y`) changes the
// base's values too, so the base's history must change. As in torch, the base gets a CopySlices
// node as its new grad_fn: it takes the base-shaped gradient, runs the in-place op's backward on
// the slice the view covers, writes the result (the gradient w.r.t. the view's old values) back
// into that slice and passes the whole buffer to the base's previous history. The view itself is
// then re-derived from the base (an as_strided node), so later uses of it flow through CopySlices.
// Limitation: other views of the same base made before the in-place op keep their old history
// (torch regenerates them lazily from the version counter).
#include "autograd/node.h"

namespace ember {

// dispatch(): before the kernel of an in-place op on `view` runs while autograd records.
void check_inplace_on_view(const Tensor& view, const char* op);
// dispatch(): after the in-place op's node was recorded on `view` (it is view.grad_fn()).
void rebase_view_history(Tensor& view);

struct CopySlices final : Node {
  CopySlices(const Tensor& base, const Tensor& view, std::shared_ptr<Node> fn);
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  std::string name() const override { return "CopySlices"; }
  void release_saved() override { fn->release_saved(); }

  DimVector base_sizes, base_strides;
  int64_t base_offset;
  DimVector view_sizes, view_strides;
  int64_t view_offset;
  std::shared_ptr<Node> fn;  // the in-place op's node; its input 0 is the view's old value
};

}  // namespace ember
