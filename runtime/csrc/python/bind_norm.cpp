// ember.layer_norm and ember.native_layer_norm (torch's signatures); nn.functional.layer_norm calls the former.
#include "ops/ops.h"
#include "python/bindings.h"

namespace ember::python {

void bind_norm(py::module_& m) {
  m.def("layer_norm", [](const Tensor& x, const DimVector& normalized_shape, std::optional<Tensor> weight,
                         std::optional<Tensor> bias, double eps, bool /*cudnn_enable*/) {
    return layer_norm(x, normalized_shape, weight.value_or(Tensor()), bias.value_or(Tensor()), eps);
  }, py::arg("input"), py::arg("normalized_shape"), py::arg("weight") = py::none(), py::arg("bias") = py::none(),
     py::arg("eps") = 1e-5, py::arg("cudnn_enable") = true);
  m.def("native_layer_norm", [](const Tensor& x, const DimVector& normalized_shape, std::optional<Tensor> weight,
                                std::optional<Tensor> bias, double eps) {
    LayerNormResult r = native_layer_norm(x, normalized_shape, weight.value_or(Tensor()), bias.value_or(Tensor()), eps);
    return py::make_tuple(r.out, r.mean, r.rstd);
  }, py::arg("input"), py::arg("normalized_shape"), py::arg("weight"), py::arg("bias"), py::arg("eps"));
}

}  // namespace ember::python
