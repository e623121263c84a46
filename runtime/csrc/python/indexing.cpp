// Python indexing: Tensor.__getitem__ / __setitem__ with torch's semantics. Parses the Python index
// (ints, slices, None, Ellipsis, bools, tensors, lists, numpy arrays) into TensorIndex items that
// ops/indexing.cpp applies.
#include <variant>

#include "ops/indexing.h"
#include "python/bindings.h"

namespace ember::python {
namespace {

std::string type_name(py::handle obj) { return std::string(py::str(py::type::of(obj).attr("__name__"))); }

bool is_tensor(py::handle obj) { return py::isinstance<Tensor>(obj); }

// Flattens a nested list of Python ints/bools, recording its shape and whether it is all bools.
void flatten_list(py::handle obj, size_t depth, DimVector& shape, std::vector<int64_t>& values, int& kind) {
  if (PyList_Check(obj.ptr()) || PyTuple_Check(obj.ptr())) {
    py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
    const int64_t n = static_cast<int64_t>(seq.size());
    if (shape.size() == depth) shape.push_back(n);
    else EMBER_CHECK_INDEX(shape[depth] == n, "[index] nested index lists have ragged lengths");
    for (auto item : seq) flatten_list(item, depth + 1, shape, values, kind);
    return;
  }
  EMBER_CHECK_INDEX(shape.size() == depth, "[index] nested index lists have ragged depths");
  if (PyBool_Check(obj.ptr())) {
    EMBER_CHECK_INDEX(kind != 1, "[index] index lists must not mix bools and ints");
    kind = 2;
    values.push_back(obj.ptr() == Py_True);
    return;
  }
  if (PyLong_Check(obj.ptr()) || (PyObject_HasAttrString(obj.ptr(), "__index__") && !is_tensor(obj))) {
    EMBER_CHECK_INDEX(kind != 2, "[index] index lists must not mix bools and ints");
    kind = 1;
    values.push_back(PyNumber_AsSsize_t(obj.ptr(), nullptr));
    return;
  }
  fail(ErrorKind::Index, "[index] only integers, slices (`:`), ellipsis (`...`), None and long or byte "
       "Variables are valid indices (got a list containing ", type_name(obj), ")");
}

// A list index ([0, 2], [[True, False]]) as an int64 or bool tensor on `device`.
Tensor tensor_from_list(py::handle obj, Device device) {
  DimVector shape;
  std::vector<int64_t> values;
  int kind = 0;  // 0 unknown (empty list), 1 ints, 2 bools
  flatten_list(obj, 0, shape, values, kind);
  const ScalarType dtype = kind == 2 ? ScalarType::Bool : ScalarType::Int64;
  Tensor t = Tensor::empty(shape, dtype);
  for (size_t i = 0; i < values.size(); ++i) {
    if (kind == 2) t.data<bool>()[i] = values[i] != 0;
    else t.data<int64_t>()[i] = values[i];
  }
  return device.is_cpu() ? t : to_device(t, device);
}


TensorIndex parse_item(py::handle obj, Device device) {
  TensorIndex it{TensorIndex::None};
  if (obj.is_none()) return it;
  if (obj.ptr() == Py_Ellipsis) { it.kind = TensorIndex::Ellipsis; return it; }
  if (PyBool_Check(obj.ptr())) { it.kind = TensorIndex::Bool; it.value = obj.ptr() == Py_True; return it; }
  if (PyLong_Check(obj.ptr())) { it.kind = TensorIndex::Int; it.value = PyLong_AsLongLong(obj.ptr()); return it; }
  if (PySlice_Check(obj.ptr())) {
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(obj.ptr(), &start, &stop, &step) < 0) throw py::error_already_set();
    EMBER_CHECK_VALUE(step > 0, "[index] step must be greater than zero");
    it.kind = TensorIndex::Slice;
    it.start = start;
    it.stop = stop;
    it.step = step;
    return it;
  }
  if (is_tensor(obj)) {
    Tensor t = obj.cast<Tensor>();
    EMBER_CHECK_INDEX(is_integral(t.dtype(), true), "[index] tensors used as indices must be long, int, byte or "
                      "bool tensors (got ", describe(t), ")");
    it.kind = TensorIndex::TensorIdx;
    it.tensor = t;
    return it;
  }
  if (PyList_Check(obj.ptr()) || PyTuple_Check(obj.ptr())) {
    it.kind = TensorIndex::TensorIdx;
    it.tensor = tensor_from_list(obj, device);
    return it;
  }
  if (PyObject_HasAttrString(obj.ptr(), "shape") && PyObject_HasAttrString(obj.ptr(), "tolist")) {
    // numpy arrays (and 0-d numpy scalars): index with their values, like torch does.
    py::object values = obj.attr("tolist")();
    if (PyList_Check(values.ptr())) {
      it.kind = TensorIndex::TensorIdx;
      it.tensor = tensor_from_list(values, device);
      return it;
    }
    return parse_item(values, device);
  }
  if (PyObject_HasAttrString(obj.ptr(), "__index__")) {  // other integer-like objects
    it.kind = TensorIndex::Int;
    it.value = PyNumber_AsSsize_t(obj.ptr(), nullptr);
    if (PyErr_Occurred()) throw py::error_already_set();
    return it;
  }
  fail(ErrorKind::Index, "[index] only integers, slices (`:`), ellipsis (`...`), None and long or byte "
       "Variables are valid indices (got ", type_name(obj), ")");
}

// numpy's legacy rule (kept by torch): a short list holding sequences, slices, None, Ellipsis or
// tensors is a tuple of indices, so x[[[0, 1], [2, 3]]] means x[[0, 1], [2, 3]].
bool treat_list_as_tuple(py::handle index) {
  if (!PyList_Check(index.ptr())) return false;
  py::list lst = py::reinterpret_borrow<py::list>(index);
  if (lst.size() >= 32) return false;
  for (auto obj : lst)
    if (obj.is_none() || obj.ptr() == Py_Ellipsis || PySlice_Check(obj.ptr()) || is_tensor(obj) ||
        (PySequence_Check(obj.ptr()) && !PyUnicode_Check(obj.ptr())))
      return true;
  return false;
}

std::vector<TensorIndex> parse_index(py::handle index, Device device) {
  std::vector<TensorIndex> items;
  if (treat_list_as_tuple(index)) {
    for (auto obj : py::reinterpret_borrow<py::list>(index)) items.push_back(parse_item(obj, device));
  } else if (PyTuple_Check(index.ptr())) {
    for (auto obj : py::reinterpret_borrow<py::tuple>(index)) items.push_back(parse_item(obj, device));
  } else {
    items.push_back(parse_item(index, device));
  }
  return items;
}

// A value assigned through an index: a number, or a tensor of x's dtype on x's device.
Operand value_operand(const Tensor& x, py::handle value) {
  if (is_tensor(value)) return to_dtype(value.cast<Tensor>(), x.dtype());
  if (PyList_Check(value.ptr()) || PyTuple_Check(value.ptr())) {
    // Only lists of numbers: route through ember.tensor (the factory family's binding).
    py::object t = py::module_::import("ember").attr("tensor")(value, py::arg("dtype") = dtype_object(x.dtype()));
    Tensor v = t.cast<Tensor>();
    return x.device().is_cpu() ? v : to_device(v, x.device());
  }
  return value.cast<Scalar>();
}

}  // namespace

void bind_indexing(py::module_& m) {
  (void)m;
  tensor_class()
      .def("__getitem__", [](const Tensor& x, py::object index) {
        return ember::index(x, parse_index(index, x.device()));
      })
      .def("__setitem__", [](Tensor& x, py::object index, py::object value) {
        ember::index_put_(x, parse_index(index, x.device()), value_operand(x, value));
      });
}

}  // namespace ember::python
