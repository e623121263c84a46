// Python bindings of the view ops: ember.<op> functions and Tensor methods (x.view(2, 3), x.T, ...).
#include "ops/ops.h"
#include "python/bindings.h"

namespace ember::python {
namespace {

// dims given as varargs or one sequence: x.permute(1, 0) and x.permute((1, 0)).
DimVector dims_from_args(const py::args& args, const char* op) { return sizes_from_args(args, op); }

py::list to_list(const TensorList& ts) {
  py::list out;
  for (const Tensor& t : ts) out.append(py::cast(t));
  return out;
}

py::tuple to_tuple(const TensorList& ts) { return py::tuple(to_list(ts)); }

TensorList split_any(const Tensor& x, py::handle split, int64_t dim) {
  if (PyLong_Check(split.ptr())) return ember::split(x, split.cast<int64_t>(), dim);
  return split_with_sizes(x, to_dims(split, "split"), dim);
}

Tensor squeeze_any(const Tensor& x, py::object dim) {
  if (dim.is_none()) return ember::squeeze(x, std::nullopt);
  if (PyLong_Check(dim.ptr())) return ember::squeeze(x, std::optional<int64_t>(dim.cast<int64_t>()));
  return ember::squeeze(x, IntSpan(to_dims(dim, "squeeze")));
}

}  // namespace

void bind_views(py::module_& m) {
  m.def("as_strided", [](const Tensor& x, const DimVector& size, const DimVector& stride, std::optional<int64_t> offset) {
    return ember::as_strided(x, size, stride, offset);
  }, py::arg("input"), py::arg("size"), py::arg("stride"), py::arg("storage_offset") = py::none());
  m.def("reshape", [](const Tensor& x, const DimVector& shape) { return ember::reshape(x, shape); },
        py::arg("input"), py::arg("shape"));
  m.def("permute", [](const Tensor& x, const DimVector& dims) { return ember::permute(x, dims); },
        py::arg("input"), py::arg("dims"));
  m.def("transpose", &ember::transpose, py::arg("input"), py::arg("dim0"), py::arg("dim1"));
  m.def("swapaxes", &ember::transpose, py::arg("input"), py::arg("axis0"), py::arg("axis1"));
  m.def("swapdims", &ember::transpose, py::arg("input"), py::arg("dim0"), py::arg("dim1"));
  m.def("t", &ember::t, py::arg("input"));
  m.def("broadcast_to", [](const Tensor& x, const DimVector& size) { return ember::expand(x, size); },
        py::arg("input"), py::arg("size"));
  m.def("narrow", &ember::narrow, py::arg("input"), py::arg("dim"), py::arg("start"), py::arg("length"));
  m.def("select", &ember::select, py::arg("input"), py::arg("dim"), py::arg("index"));
  m.def("squeeze", &squeeze_any, py::arg("input"), py::arg("dim") = py::none());
  m.def("unsqueeze", &ember::unsqueeze, py::arg("input"), py::arg("dim"));
  m.def("flatten", &ember::flatten, py::arg("input"), py::arg("start_dim") = 0, py::arg("end_dim") = -1);
  m.def("unflatten", [](const Tensor& x, int64_t dim, const DimVector& sizes) { return ember::unflatten(x, dim, sizes); },
        py::arg("input"), py::arg("dim"), py::arg("sizes"));
  m.def("diagonal", &ember::diagonal, py::arg("input"), py::arg("offset") = 0, py::arg("dim1") = 0, py::arg("dim2") = 1);
  m.def("split", [](const Tensor& x, py::object s, int64_t dim) { return to_tuple(split_any(x, s, dim)); },
        py::arg("tensor"), py::arg("split_size_or_sections"), py::arg("dim") = 0);
  m.def("chunk", [](const Tensor& x, int64_t chunks, int64_t dim) { return to_tuple(ember::chunk(x, chunks, dim)); },
        py::arg("input"), py::arg("chunks"), py::arg("dim") = 0);
  m.def("unbind", [](const Tensor& x, int64_t dim) { return to_tuple(ember::unbind(x, dim)); },
        py::arg("input"), py::arg("dim") = 0);
  m.def("movedim", [](const Tensor& x, const DimVector& src, const DimVector& dst) { return ember::movedim(x, src, dst); },
        py::arg("input"), py::arg("source"), py::arg("destination"));
  m.def("moveaxis", [](const Tensor& x, const DimVector& src, const DimVector& dst) { return ember::movedim(x, src, dst); },
        py::arg("input"), py::arg("source"), py::arg("destination"));

  auto& t = tensor_class();
  t.def("as_strided", [](const Tensor& x, const DimVector& size, const DimVector& stride, std::optional<int64_t> offset) {
     return ember::as_strided(x, size, stride, offset);
   }, py::arg("size"), py::arg("stride"), py::arg("storage_offset") = py::none())
      .def("view", [](const Tensor& x, py::args args) { return ember::view(x, sizes_from_args(args, "view")); })
      .def("reshape", [](const Tensor& x, py::args args) { return ember::reshape(x, sizes_from_args(args, "reshape")); })
      .def("view_as", [](const Tensor& x, const Tensor& other) { return ember::view(x, other.sizes()); }, py::arg("other"))
      .def("reshape_as", [](const Tensor& x, const Tensor& other) { return ember::reshape(x, other.sizes()); }, py::arg("other"))
      .def("permute", [](const Tensor& x, py::args args) { return ember::permute(x, dims_from_args(args, "permute")); })
      .def("transpose", &ember::transpose, py::arg("dim0"), py::arg("dim1"))
      .def("swapaxes", &ember::transpose, py::arg("axis0"), py::arg("axis1"))
      .def("swapdims", &ember::transpose, py::arg("dim0"), py::arg("dim1"))
      .def("t", &ember::t)
      .def_property_readonly("T", &ember::reverse_dims)
      .def_property_readonly("mT", &ember::matrix_transpose)
      .def("expand", [](const Tensor& x, py::args args) { return ember::expand(x, sizes_from_args(args, "expand")); })
      .def("expand_as", [](const Tensor& x, const Tensor& other) { return ember::expand(x, other.sizes()); }, py::arg("other"))
      .def("broadcast_to", [](const Tensor& x, const DimVector& size) { return ember::expand(x, size); }, py::arg("size"))
      .def("narrow", &ember::narrow, py::arg("dim"), py::arg("start"), py::arg("length"))
      .def("select", &ember::select, py::arg("dim"), py::arg("index"))
      .def("squeeze", &squeeze_any, py::arg("dim") = py::none())
      .def("unsqueeze", &ember::unsqueeze, py::arg("dim"))
      .def("flatten", &ember::flatten, py::arg("start_dim") = 0, py::arg("end_dim") = -1)
      .def("unflatten", [](const Tensor& x, int64_t dim, const DimVector& sizes) { return ember::unflatten(x, dim, sizes); },
           py::arg("dim"), py::arg("sizes"))
      .def("diagonal", &ember::diagonal, py::arg("offset") = 0, py::arg("dim1") = 0, py::arg("dim2") = 1)
      .def("split", [](const Tensor& x, py::object s, int64_t dim) { return to_tuple(split_any(x, s, dim)); },
           py::arg("split_size"), py::arg("dim") = 0)
      .def("chunk", [](const Tensor& x, int64_t chunks, int64_t dim) { return to_tuple(ember::chunk(x, chunks, dim)); },
           py::arg("chunks"), py::arg("dim") = 0)
      .def("unbind", [](const Tensor& x, int64_t dim) { return to_tuple(ember::unbind(x, dim)); }, py::arg("dim") = 0)
      .def("movedim", [](const Tensor& x, const DimVector& src, const DimVector& dst) { return ember::movedim(x, src, dst); },
           py::arg("source"), py::arg("destination"))
      .def("moveaxis", [](const Tensor& x, const DimVector& src, const DimVector& dst) { return ember::movedim(x, src, dst); },
           py::arg("source"), py::arg("destination"));
}

}  // namespace ember::python
