// The indexing bindings that return different types by argument (so not spec entries):
// nonzero(as_tuple=True) and the one-argument where(condition), plus Tensor.__getitem__/__setitem__
// (indexing.cpp). The index ops themselves are bound from runtime/spec/index.yaml.
#include "ops/ops.h"
#include "python/bindings.h"

namespace ember::python {

void bind_indexing(py::module_& m);  // indexing.cpp

void bind_index(py::module_& m) {
  bind_indexing(m);
  // Registered after the generated nonzero(input), which pybind tries first.
  auto nonzero_as_tuple = [](const Tensor& x, bool as_tuple) -> py::object {
    return as_tuple ? py::object(to_tuple(nonzero_tuple(x))) : py::cast(nonzero(x));
  };
  m.def("nonzero", nonzero_as_tuple, py::arg("input"), py::kw_only(), py::arg("as_tuple"));
  tensor_class().def("nonzero", nonzero_as_tuple, py::kw_only(), py::arg("as_tuple"));
  // ember.where(condition) is nonzero(condition, as_tuple=True); the 3-argument form is generated.
  m.def("where", [](const Tensor& cond) { return to_tuple(nonzero_tuple(cond)); }, py::arg("condition"));
}

}  // namespace ember::python
