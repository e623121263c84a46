// Python bindings of the fused optimizer ops (ember.optim calls them; they are not public API).
#include "ops/ops.h"
#include "python/bindings.h"

namespace ember::python {

void bind_optim(py::module_& m) {
  m.def("_adam_step_",
        [](Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& step, double lr,
           double beta1, double beta2, double eps, double weight_decay, bool decoupled, bool maximize) {
          adam_step_(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, decoupled, maximize);
        },
        py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("step"), py::kw_only(),
        py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
        py::arg("decoupled"), py::arg("maximize"),
        "One fused Adam (decoupled=False) or AdamW (decoupled=True) step of one parameter, in place on param, "
        "exp_avg, exp_avg_sq and the 0-dim float32 step count (incremented by the kernel).");
}

}  // namespace ember::python
