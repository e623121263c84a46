#pragma once
// Tensor: a refcounted handle to a TensorImpl (sizes, strides, offset into a shared Storage).
// Ops are free functions in ember:: (see ops/*.h); this class holds only metadata accessors.
#include <functional>
#include <memory>
#include <vector>

#include "dim_vector.h"
#include "dtype.h"
#include "scalar.h"
#include "storage.h"

namespace ember {

struct Node;
class Tensor;

// Autograd state, allocated only for tensors that take part in autograd.
struct AutogradMeta {
  bool requires_grad = false;
  bool retains_grad = false;
  std::shared_ptr<Tensor> grad;              // .grad of a leaf (or a retained non-leaf)
  std::shared_ptr<Node> grad_fn;             // null for leaves
  std::weak_ptr<Node> grad_accumulator;      // leaves: the AccumulateGrad node, made lazily
  uint32_t output_nr = 0;                    // which output of grad_fn this tensor is
  std::vector<std::function<Tensor(const Tensor&)>> hooks;  // tensor.register_hook
  // register_post_accumulate_grad_hook (leaves): run with the tensor after .grad was accumulated
  std::vector<std::function<void(const Tensor&)>> post_accumulate_grad_hooks;
};

struct TensorImpl {
  Storage storage;
  DimVector sizes;
  DimVector strides;  // in elements
  int64_t offset = 0; // in elements
  ScalarType dtype = ScalarType::Float32;
  bool is_contiguous = true;  // cached by refresh_metadata()
  bool is_view = false;       // made by a view op: shares storage with another tensor
  std::shared_ptr<TensorImpl> view_base;  // set by make_view: the non-view tensor it views (CopySlices)
  int64_t numel = 0;
  std::unique_ptr<AutogradMeta> autograd;

  void refresh_metadata();  // recomputes numel and is_contiguous after sizes/strides change
  AutogradMeta& autograd_meta() {
    if (!autograd) autograd = std::make_unique<AutogradMeta>();
    return *autograd;
  }
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Creates a tensor over `storage` (no copy). Strides default to contiguous.
  static Tensor make(Storage storage, DimVector sizes, DimVector strides, int64_t offset, ScalarType dtype);
  static Tensor empty(IntSpan sizes, ScalarType dtype, Device device = Device());
  static Tensor empty_strided(IntSpan sizes, IntSpan strides, ScalarType dtype, Device device = Device());

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

  const DimVector& sizes() const { return impl_->sizes; }
  const DimVector& strides() const { return impl_->strides; }
  int64_t size(int64_t dim) const;   // wraps negative dims, IndexError when out of range
  int64_t stride(int64_t dim) const;
  int64_t dim() const { return static_cast<int64_t>(impl_->sizes.size()); }
  int64_t numel() const { return impl_->numel; }
  int64_t storage_offset() const { return impl_->offset; }
  ScalarType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device(); }
  int64_t element_size() const { return ::ember::element_size(impl_->dtype); }
  bool is_contiguous() const { return impl_->is_contiguous; }
  const Storage& storage() const { return impl_->storage; }
  void* data_ptr() const {
    return static_cast<char*>(impl_->storage->ptr()) + impl_->offset * element_size();
  }
  template <typename T> T* data() const { return static_cast<T*>(data_ptr()); }
  uint32_t version() const { return impl_->storage->version.load(std::memory_order_relaxed); }
  void bump_version() const { impl_->storage->bump_version(); }

  // Autograd accessors (defined in autograd/variable.cpp).
  bool requires_grad() const { return impl_->autograd && impl_->autograd->requires_grad; }
  Tensor& set_requires_grad(bool r);   // ValueError for non-float dtypes, RuntimeError for non-leaves
  const std::shared_ptr<Node>& grad_fn() const;
  bool is_leaf() const { return !impl_->autograd || !impl_->autograd->grad_fn; }
  Tensor grad() const;                  // undefined when unset
  void set_grad(const Tensor& g) const;
  uint32_t output_nr() const { return impl_->autograd ? impl_->autograd->output_nr : 0; }
  // Tensor.detach(): shares storage (and the view flag), not the autograd history; detach_() in place.
  Tensor detach() const;
  Tensor& detach_();
  // Runs `hook` on this tensor's gradient (a leaf's before it accumulates, a non-leaf's before its
  // node runs); the returned function disables it.
  std::function<void()> register_hook(std::function<Tensor(const Tensor&)> hook) const;
  // Runs `hook` with this leaf after its .grad was accumulated (DDP's bucketing); same handle.
  std::function<void()> register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const;
  // A non-leaf keeps its gradient in .grad too (leaves always do).
  void retain_grad() const;
  bool retains_grad() const { return impl_->autograd && impl_->autograd->retains_grad && !is_leaf(); }

  // An alias sharing storage and metadata but not autograd state.
  Tensor alias() const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Contiguous strides for `sizes` (row-major, in elements).
DimVector contiguous_strides(IntSpan sizes);
// Strides (in elements) of `t` seen broadcast to `shape`: 0 on broadcast dims.
DimVector broadcast_strides(const Tensor& t, IntSpan shape);
int64_t numel_of(IntSpan sizes);
// Wraps a possibly negative dim into [0, ndim); IndexError naming the op otherwise.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
// torch.broadcast_shapes; RuntimeError naming the op and both shapes when incompatible.
DimVector broadcast_shapes(IntSpan a, IntSpan b, const char* op);
// "float32[2, 3]" for error messages.
std::string describe(const Tensor& t);

}  // namespace ember
