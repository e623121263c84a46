// Tensor's autograd accessors (declared in core/tensor.h).
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/ops.h"

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

Tensor Tensor::detach() const {
  Tensor d = alias();
  d.impl()->is_view = impl_->is_view;
  return d;
}

Tensor& Tensor::detach_() {
  if (impl_->autograd) {
    impl_->autograd->grad_fn.reset();
    impl_->autograd->requires_grad = false;
  }
  return *this;
}

std::function<void()> Tensor::register_hook(std::function<Tensor(const Tensor&)> hook) const {
  EMBER_CHECK(requires_grad(), "[register_hook] cannot register a hook on a tensor that doesn't require "
              "gradient (", describe(*this), ")");
  if (is_leaf()) {
    auto& hooks = impl_->autograd_meta().hooks;
    hooks.push_back(std::move(hook));
    std::weak_ptr<TensorImpl> weak = impl_;
    return [weak, idx = hooks.size() - 1] {
      if (auto impl = weak.lock(); impl && impl->autograd && idx < impl->autograd->hooks.size())
        impl->autograd->hooks[idx] = nullptr;
    };
  }
  const std::shared_ptr<Node>& node = grad_fn();
  node->pre_hooks.push_back({output_nr(), std::move(hook)});
  std::weak_ptr<Node> weak = node;
  return [weak, idx = node->pre_hooks.size() - 1] {
    if (auto n = weak.lock(); n && idx < n->pre_hooks.size()) n->pre_hooks[idx].second = nullptr;
  };
}

std::function<void()> Tensor::register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const {
  EMBER_CHECK(requires_grad(), "[register_post_accumulate_grad_hook] cannot register a hook on a tensor that "
              "doesn't require gradient (", describe(*this), ")");
  EMBER_CHECK(is_leaf(), "[register_post_accumulate_grad_hook] post accumulate grad hooks cannot be registered "
              "on non-leaf tensors (", describe(*this), ")");
  auto& hooks = impl_->autograd_meta().post_accumulate_grad_hooks;
  hooks.push_back(std::move(hook));
  std::weak_ptr<TensorImpl> weak = impl_;
  return [weak, idx = hooks.size() - 1] {
    if (auto impl = weak.lock(); impl && impl->autograd && idx < impl->autograd->post_accumulate_grad_hooks.size())
      impl->autograd->post_accumulate_grad_hooks[idx] = nullptr;
  };
}

void Tensor::retain_grad() const {
  EMBER_CHECK(requires_grad(), "[retain_grad] can't retain_grad on Tensor that has requires_grad=False");
  if (is_leaf() || impl_->autograd->retains_grad) return;  // leaves keep .grad anyway
  impl_->autograd->retains_grad = true;
  std::weak_ptr<TensorImpl> weak = impl_;
  grad_fn()->retains_grad_hooks.push_back({output_nr(), [weak](const Tensor& g) {
    auto impl = weak.lock();
    if (!impl || !impl->autograd || !impl->autograd->retains_grad) return;
    auto& grad = impl->autograd->grad;
    if (grad && grad->defined()) *grad = add(*grad, g);
    else grad = std::make_shared<Tensor>(GradMode::is_enabled() ? clone(g) : clone(g).alias());
  }});
}

}  // namespace ember
