// Python bindings of layout and indexing ops (cat, gather, index_select, ...), plus the
// Tensor.__getitem__/__setitem__ implemented in indexing.cpp.
#include "ops/ops.h"
#include "python/bindings.h"

namespace ember::python {

void bind_indexing(py::module_& m);  // indexing.cpp

namespace {

TensorList to_tensor_list(py::handle seq, const char* op) {
  EMBER_CHECK_TYPE(py::isinstance<py::sequence>(seq) && !py::isinstance<Tensor>(seq), "[", op,
                   "] expected a sequence of Tensors");
  TensorList out;
  for (auto item : py::reinterpret_borrow<py::sequence>(seq)) {
    EMBER_CHECK_TYPE(py::isinstance<Tensor>(item), "[", op, "] expected Tensor as element ", out.size(),
                     " in argument 0, but got ", std::string(py::str(py::type::of(item).attr("__name__"))));
    out.push_back(item.cast<Tensor>());
  }
  return out;
}

// Index lists for index/index_put: None entries mean a full slice.
TensorList optional_tensor_list(py::handle seq) {
  TensorList out;
  for (auto item : py::reinterpret_borrow<py::sequence>(seq))
    out.push_back(item.is_none() ? Tensor() : item.cast<Tensor>());
  return out;
}

py::object nonzero_py(const Tensor& x, bool as_tuple) {
  Tensor nz = ember::nonzero(x);
  if (!as_tuple) return py::cast(nz);
  py::list parts;
  if (x.dim() == 0) {  // torch: a 0-dim input behaves like a 1-element vector
    parts.append(py::cast(select(nz, 1, 0)));
    return py::tuple(parts);
  }
  for (int64_t j = 0; j < x.dim(); ++j) parts.append(py::cast(select(nz, 1, j)));
  return py::tuple(parts);
}

Tensor masked_fill_any(const Tensor& x, const Tensor& mask, py::object value) {
  if (py::isinstance<Tensor>(value)) return ember::masked_fill(x, mask, value.cast<Tensor>());
  return ember::masked_fill(x, mask, value.cast<Scalar>());
}

Tensor scatter_any(const Tensor& x, int64_t dim, const Tensor& index, py::object src, py::object value) {
  py::object v = src.is_none() ? value : src;
  EMBER_CHECK_TYPE(!v.is_none(), "[scatter] expected `src` (a Tensor) or `value` (a number)");
  if (py::isinstance<Tensor>(v)) return ember::scatter(x, dim, index, v.cast<Tensor>());
  return ember::scatter(x, dim, index, v.cast<Scalar>());
}

Tensor roll_any(const Tensor& x, const DimVector& shifts, py::object dims) {
  return ember::roll(x, shifts, dims.is_none() ? DimVector() : to_dims(dims, "roll"));
}

// In-place forms write the out-of-place result back (one extra copy; keeps a single kernel).
Tensor& assign(Tensor& self, const Tensor& result) {
  copy_(self, result);
  return self;
}

}  // namespace

void bind_index(py::module_& m) {
  bind_indexing(m);

  m.def("cat", [](py::object ts, int64_t dim) { return ember::cat(to_tensor_list(ts, "cat"), dim); },
        py::arg("tensors"), py::arg("dim") = 0);
  m.def("concat", [](py::object ts, int64_t dim) { return ember::cat(to_tensor_list(ts, "cat"), dim); },
        py::arg("tensors"), py::arg("dim") = 0);
  m.def("concatenate", [](py::object ts, int64_t dim) { return ember::cat(to_tensor_list(ts, "cat"), dim); },
        py::arg("tensors"), py::arg("axis") = 0);
  m.def("stack", [](py::object ts, int64_t dim) { return ember::stack(to_tensor_list(ts, "stack"), dim); },
        py::arg("tensors"), py::arg("dim") = 0);
  m.def("flip", [](const Tensor& x, const DimVector& dims) { return ember::flip(x, dims); }, py::arg("input"), py::arg("dims"));
  m.def("roll", &roll_any, py::arg("input"), py::arg("shifts"), py::arg("dims") = py::none());
  m.def("tril", &ember::tril, py::arg("input"), py::arg("diagonal") = 0);
  m.def("triu", &ember::triu, py::arg("input"), py::arg("diagonal") = 0);
  m.def("gather", &ember::gather, py::arg("input"), py::arg("dim"), py::arg("index"));
  m.def("scatter", &scatter_any, py::arg("input"), py::arg("dim"), py::arg("index"), py::arg("src") = py::none(),
        py::arg("value") = py::none());
  m.def("scatter_add", &ember::scatter_add, py::arg("input"), py::arg("dim"), py::arg("index"), py::arg("src"));
  m.def("index_select", &ember::index_select, py::arg("input"), py::arg("dim"), py::arg("index"));
  m.def("index_add", &ember::index_add, py::arg("input"), py::arg("dim"), py::arg("index"), py::arg("source"),
        py::kw_only(), py::arg("alpha") = Scalar(int64_t{1}));
  m.def("masked_fill", &masked_fill_any, py::arg("input"), py::arg("mask"), py::arg("value"));
  m.def("masked_select", &ember::masked_select, py::arg("input"), py::arg("mask"));
  m.def("take_along_dim", &ember::take_along_dim, py::arg("input"), py::arg("indices"), py::arg("dim") = py::none());
  m.def("embedding", [](const Tensor& weight, const Tensor& input) { return ember::embedding(weight, input); },
        py::arg("weight"), py::arg("input"));
  m.def("one_hot", &ember::one_hot, py::arg("tensor"), py::arg("num_classes") = -1);
  m.def("nonzero", &nonzero_py, py::arg("input"), py::kw_only(), py::arg("as_tuple") = false);
  m.def("index_put", [](const Tensor& x, py::object idx, const Tensor& v, bool acc) {
    return ember::index_put(x, optional_tensor_list(idx), v, acc);
  }, py::arg("input"), py::arg("indices"), py::arg("values"), py::arg("accumulate") = false);
  m.def("_index", [](const Tensor& x, py::object idx) { return ember::index(x, optional_tensor_list(idx)); });
  // ember.where(cond) with one argument is nonzero(cond, as_tuple=True); the 3-argument form is the
  // elementwise family's (registered before this overload, so pybind tries it first).
  m.def("where", [](const Tensor& cond) { return nonzero_py(cond, true); }, py::arg("condition"));

  auto& t = tensor_class();
  t.def("flip", [](const Tensor& x, py::args dims) { return ember::flip(x, sizes_from_args(dims, "flip")); })
      .def("roll", &roll_any, py::arg("shifts"), py::arg("dims") = py::none())
      .def("repeat", [](const Tensor& x, py::args reps) { return ember::repeat(x, sizes_from_args(reps, "repeat")); })
      .def("tril", &ember::tril, py::arg("diagonal") = 0)
      .def("triu", &ember::triu, py::arg("diagonal") = 0)
      .def("tril_", [](Tensor& x, int64_t k) { return assign(x, ember::tril(x, k)); }, py::arg("diagonal") = 0)
      .def("triu_", [](Tensor& x, int64_t k) { return assign(x, ember::triu(x, k)); }, py::arg("diagonal") = 0)
      .def("gather", &ember::gather, py::arg("dim"), py::arg("index"))
      .def("scatter", [](const Tensor& x, int64_t dim, const Tensor& index, py::object src, py::object value) {
        return scatter_any(x, dim, index, src, value);
      }, py::arg("dim"), py::arg("index"), py::arg("src") = py::none(), py::arg("value") = py::none())
      .def("scatter_", [](Tensor& x, int64_t dim, const Tensor& index, py::object src, py::object value) {
        return assign(x, scatter_any(x, dim, index, src, value));
      }, py::arg("dim"), py::arg("index"), py::arg("src") = py::none(), py::arg("value") = py::none())
      .def("scatter_add", &ember::scatter_add, py::arg("dim"), py::arg("index"), py::arg("src"))
      .def("scatter_add_", [](Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
        return assign(x, ember::scatter_add(x, dim, index, src));
      }, py::arg("dim"), py::arg("index"), py::arg("src"))
      .def("index_select", &ember::index_select, py::arg("dim"), py::arg("index"))
      .def("index_add", &ember::index_add, py::arg("dim"), py::arg("index"), py::arg("source"), py::kw_only(),
           py::arg("alpha") = Scalar(int64_t{1}))
      .def("index_add_", [](Tensor& x, int64_t dim, const Tensor& index, const Tensor& source, Scalar alpha) {
        return assign(x, ember::index_add(x, dim, index, source, alpha));
      }, py::arg("dim"), py::arg("index"), py::arg("source"), py::kw_only(), py::arg("alpha") = Scalar(int64_t{1}))
      .def("masked_fill", &masked_fill_any, py::arg("mask"), py::arg("value"))
      .def("masked_fill_", [](Tensor& x, const Tensor& mask, py::object value) {
        Tensor r = masked_fill_any(x, mask, value);
        EMBER_CHECK(r.sizes() == x.sizes(), "[masked_fill_] mask ", mask.sizes(), " is not broadcastable to the "
                    "in-place target ", describe(x));
        return assign(x, r);
      }, py::arg("mask"), py::arg("value"))
      .def("masked_select", &ember::masked_select, py::arg("mask"))
      .def("take_along_dim", &ember::take_along_dim, py::arg("indices"), py::arg("dim") = py::none())
      .def("nonzero", &nonzero_py, py::kw_only(), py::arg("as_tuple") = false)
      .def("index_put", [](const Tensor& x, py::object idx, const Tensor& v, bool acc) {
        return ember::index_put(x, optional_tensor_list(idx), v, acc);
      }, py::arg("indices"), py::arg("values"), py::arg("accumulate") = false)
      .def("index_put_", [](Tensor& x, py::object idx, const Tensor& v, bool acc) {
        return ember::index_put_(x, optional_tensor_list(idx), v, acc);
      }, py::arg("indices"), py::arg("values"), py::arg("accumulate") = false);
}

}  // namespace ember::python
