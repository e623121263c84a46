// ember.mm/bmm/addmm/matmul/linear/dot/outer, their Tensor methods and the @ operator.
#include "ops/ops.h"
#include "python/bindings.h"

namespace ember::python {

void bind_linalg(py::module_& m) {
  m.def("mm", &mm, py::arg("input"), py::arg("mat2"));
  m.def("bmm", &bmm, py::arg("input"), py::arg("mat2"));
  m.def("matmul", &matmul, py::arg("input"), py::arg("other"));
  m.def("dot", &dot, py::arg("input"), py::arg("other"));
  m.def("outer", &outer, py::arg("input"), py::arg("vec2"));
  m.def("addmm", [](const Tensor& bias, const Tensor& a, const Tensor& b, Scalar beta, Scalar alpha) {
    return addmm(bias, a, b, beta, alpha);
  }, py::arg("input"), py::arg("mat1"), py::arg("mat2"), py::kw_only(), py::arg("beta") = int64_t{1},
     py::arg("alpha") = int64_t{1});
  m.def("linear", [](const Tensor& x, const Tensor& weight, std::optional<Tensor> bias) {
    return linear(x, weight, bias.value_or(Tensor()));
  }, py::arg("input"), py::arg("weight"), py::arg("bias") = py::none());

  auto& t = tensor_class();
  t.def("mm", &mm, py::arg("mat2"))
      .def("bmm", &bmm, py::arg("mat2"))
      .def("matmul", &matmul, py::arg("other"))
      .def("dot", &dot, py::arg("other"))
      .def("outer", &outer, py::arg("vec2"))
      .def("addmm", [](const Tensor& bias, const Tensor& a, const Tensor& b, Scalar beta, Scalar alpha) {
        return addmm(bias, a, b, beta, alpha);
      }, py::arg("mat1"), py::arg("mat2"), py::kw_only(), py::arg("beta") = int64_t{1}, py::arg("alpha") = int64_t{1})
      .def("__matmul__", &matmul, py::is_operator())
      .def("__rmatmul__", [](const Tensor& self, const Tensor& other) { return matmul(other, self); },
           py::is_operator());
}

}  // namespace ember::python
