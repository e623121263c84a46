// Tensor's autograd accessors (declared in core/tensor.h).
#include "autograd/node.h"

namespace ember {

Tensor& Tensor::set_requires_grad(bool r) {
  if (r) {
    EMBER_CHECK(is_floating(dtype()), "[requires_grad_] only Tensors of floating point dtype can require "
                "gradients, got ", dtype_name(dtype()));
  } else {
    EMBER_CHECK(is_leaf(), "[requires_grad_] you can only change requires_grad flags of leaf variables. If you "
                "want to use a computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach().");
  }
  if (r || impl_->autograd) impl_->autograd_meta().requires_grad = r;
  return *this;
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<Node> kNone;
  return impl_->autograd ? impl_->autograd->grad_fn : kNone;
}

Tensor Tensor::grad() const {
  if (!impl_->autograd || !impl_->autograd->grad) return Tensor();
  return *impl_->autograd->grad;
}

void Tensor::set_grad(const Tensor& g) const {
  if (g.defined()) {
    EMBER_CHECK(g.sizes() == sizes(), "[grad] assigned grad has shape ", g.sizes(), " but the tensor has shape ",
                sizes());
    EMBER_CHECK(g.dtype() == dtype(), "[grad] assigned grad has dtype ", dtype_name(g.dtype()),
                " but the tensor has dtype ", dtype_name(dtype()));
    EMBER_CHECK(g.device() == device(), "[grad] assigned grad is on ", g.device(), " but the tensor is on ",
                device());
    impl_->autograd_meta().grad = std::make_shared<Tensor>(g);
  } else if (impl_->autograd) {
    impl_->autograd->grad.reset();
  }
}

}  // namespace ember
