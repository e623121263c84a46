// Python bindings of the fused losses. Private (underscored): ember.nn.functional.cross_entropy calls
// them after flattening its input to [N, C] rows and checking targets as torch does.
#include <string>

#include "ops/ops.h"
#include "python/bindings.h"

namespace ember::python {
namespace {

LossReduction reduction_from(const std::string& name, const char* op) {
  if (name == "none") return LossReduction::None;
  if (name == "sum") return LossReduction::Sum;
  if (name == "mean") return LossReduction::Mean;
  fail(ErrorKind::Value, "[", op, "] reduction must be 'mean', 'sum' or 'none', got '", name, "'");
}

}  // namespace

void bind_loss(py::module_& m) {
  // Returns the loss only; the per-row logsumexp stays saved in the autograd node.
  m.def("_cross_entropy_loss", [](const Tensor& logits, const Tensor& target, int64_t ignore_index,
                                  double label_smoothing, const std::string& reduction) {
    return cross_entropy_loss(logits, target, ignore_index, label_smoothing,
                              reduction_from(reduction, "cross_entropy_loss")).first;
  }, py::arg("input"), py::arg("target"), py::arg("ignore_index") = -100, py::arg("label_smoothing") = 0.0,
     py::arg("reduction") = "mean");
}

}  // namespace ember::python
