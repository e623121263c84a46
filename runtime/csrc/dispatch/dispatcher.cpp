#include "dispatch/dispatcher.h"

#include "autograd/copy_slices.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/ops.h"

namespace ember {
namespace {

[[noreturn]] void device_mismatch(const OpDef& def, const Tensor& a, const Tensor& b) {
  fail(ErrorKind::Runtime, "[", def.name, "] expected all tensors to be on the same device, but found at least "
       "two devices, ", a.device(), " and ", b.device(), " (", describe(a), " vs ", describe(b), ")");
}

bool any_requires_grad(std::span<const Tensor> in) {
  for (const Tensor& t : in)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(OpId id, const OpDef& def, std::span<const Tensor> in, std::span<Tensor> out, const void* attrs,
            std::vector<Tensor>& inputs_to_save) {
  std::shared_ptr<OpNode> node = def.make_node(id, attrs);
  node->next_edges.reserve(in.size());
  node->inputs.reserve(in.size());
  for (const Tensor& t : in) {
    node->next_edges.push_back(gradient_edge(t));
    if (t.defined()) node->inputs.push_back({t.sizes(), t.dtype(), t.device()});
    else node->inputs.push_back({DimVector(), ScalarType::Float32, Device()});
  }
  for (Tensor& t : inputs_to_save) node->saved_inputs.push_back({t, t.defined() ? t.version() : 0, false});
  if (def.flags & kSaveOutputs) {
    // Outputs are saved as aliases without autograd state: the node must not own its own outputs.
    for (Tensor& t : out) node->saved_outputs.push_back({t.alias(), t.version(), true});
  }
  // For in-place ops the mutated tensor's old history is input 0's edge; this node becomes its producer.
  set_history(node, out);
}

}  // namespace

void dispatch_erased(OpId id, std::span<const Tensor> in, std::span<Tensor> out, const void* attrs) {
  const OpDef& def = op_def(id);
  const Tensor* first = !out.empty() ? &out[0] : nullptr;
  for (const Tensor& t : in)
    if (t.defined()) { if (!first) first = &t; else if (t.device() != first->device()) device_mismatch(def, *first, t); }
  for (const Tensor& t : out)
    if (first && t.device() != first->device()) device_mismatch(def, *first, t);
  EMBER_CHECK(first != nullptr, "[", def.name, "] called without tensors");
  const Device device = first->device();
  const KernelFn kernel = def.kernels[static_cast<int>(device.type)];
#ifdef EMBER_WITH_CUDA
  constexpr const char* kNoCudaHint = " (its spec entry has no CUDA kernel yet)";
#else
  constexpr const char* kNoCudaHint = " (ember was built without CUDA)";
#endif
  EMBER_CHECK_KIND(kernel != nullptr || (def.flags & kView), ErrorKind::NotImplemented, "[", def.name,
                   "] has no kernel for device ", device, device.is_cuda() ? kNoCudaHint : "");

  const bool inplace = !out.empty() && !in.empty() && in[0].defined() && out[0].impl() == in[0].impl();
  const bool recording = def.backward != nullptr && GradMode::is_enabled() && any_requires_grad(in);
  if (inplace && out[0].requires_grad() && GradMode::is_enabled()) {
    EMBER_CHECK(!out[0].is_leaf(), "[", def.name, "_] a leaf Variable that requires grad (", describe(out[0]),
                ") is being used in an in-place operation.");
  }
  if (inplace && !recording && GradMode::is_enabled() && out[0].requires_grad() && def.backward == nullptr) {
    fail(ErrorKind::Runtime, "[", def.name, "_] in-place op is not differentiable but the tensor requires grad");
  }

  // An in-place op on a view rewrites its base's history (Note [CopySlices]).
  const bool inplace_on_view = inplace && recording && out[0].impl()->is_view;
  if (inplace_on_view) check_inplace_on_view(out[0], def.name);
  std::vector<Tensor> inputs_to_save;
  if (recording && (def.flags & kSaveInputs)) {
    inputs_to_save.assign(in.begin(), in.end());
    // The kernel is about to overwrite self: save a copy. Cloned with grad mode on, so the copy
    // keeps self's old history and double backward (create_graph) differentiates through it.
    if (inplace) inputs_to_save[0] = clone(in[0]);
  }
  if (!(def.flags & kView)) kernel(KernelArgs{id, in, out}, attrs);
  if (inplace) out[0].bump_version();
  if (recording) {
    record(id, def, in, out, attrs, inputs_to_save);
    if (inplace_on_view) rebase_view_history(out[0]);
  }
}

Tensor make_view(const Tensor& base, DimVector sizes, DimVector strides, int64_t offset) {
  Tensor v = Tensor::make(base.storage(), std::move(sizes), std::move(strides), offset, base.dtype());
  v.impl()->is_view = true;
  v.impl()->view_base = base.impl()->view_base ? base.impl()->view_base : base.impl_ptr();
  return v;
}

}  // namespace ember
