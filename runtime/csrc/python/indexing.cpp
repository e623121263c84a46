// Python indexing: Tensor.__getitem__ / __setitem__ with torch's semantics.
// Basic indices (ints, slices, None, Ellipsis) become view ops (select/slice/unsqueeze), so the
// result shares storage. Tensor/list/bool indices are "advanced": they are collected per dim and
// applied in one `index` (read) or `index_put_` (write) call after the basic part.
#include <variant>

#include "ops/ops.h"
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

// One parsed index item.
struct Item {
  enum Kind { Int, Slice, None, Ellipsis, Bool, TensorIdx } kind;
  int64_t value = 0;              // Int; Bool (0/1)
  int64_t start = 0, stop = 0, step = 1;  // Slice
  Tensor tensor;                  // TensorIdx (integer or bool tensor)
};

Item parse_item(py::handle obj, Device device) {
  Item it{Item::None};
  if (obj.is_none()) return it;
  if (obj.ptr() == Py_Ellipsis) { it.kind = Item::Ellipsis; return it; }
  if (PyBool_Check(obj.ptr())) { it.kind = Item::Bool; it.value = obj.ptr() == Py_True; return it; }
  if (PyLong_Check(obj.ptr())) { it.kind = Item::Int; it.value = PyLong_AsLongLong(obj.ptr()); return it; }
  if (PySlice_Check(obj.ptr())) {
    Py_ssize_t start, stop, step;
    if (PySlice_Unpack(obj.ptr(), &start, &stop, &step) < 0) throw py::error_already_set();
    EMBER_CHECK_VALUE(step > 0, "[index] step must be greater than zero");
    it.kind = Item::Slice;
    it.start = start;
    it.stop = stop;
    it.step = step;
    return it;
  }
  if (is_tensor(obj)) {
    Tensor t = obj.cast<Tensor>();
    EMBER_CHECK_INDEX(is_integral(t.dtype(), true), "[index] tensors used as indices must be long, int, byte or "
                      "bool tensors (got ", describe(t), ")");
    it.kind = Item::TensorIdx;
    it.tensor = t;
    return it;
  }
  if (PyList_Check(obj.ptr()) || PyTuple_Check(obj.ptr())) {
    it.kind = Item::TensorIdx;
    it.tensor = tensor_from_list(obj, device);
    return it;
  }
  if (PyObject_HasAttrString(obj.ptr(), "shape") && PyObject_HasAttrString(obj.ptr(), "tolist")) {
    // numpy arrays (and 0-d numpy scalars): index with their values, like torch does.
    py::object values = obj.attr("tolist")();
    if (PyList_Check(values.ptr())) {
      it.kind = Item::TensorIdx;
      it.tensor = tensor_from_list(values, device);
      return it;
    }
    return parse_item(values, device);
  }
  if (PyObject_HasAttrString(obj.ptr(), "__index__")) {  // other integer-like objects
    it.kind = Item::Int;
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

std::vector<Item> parse_index(py::handle index, Device device) {
  std::vector<Item> items;
  if (treat_list_as_tuple(index)) {
    for (auto obj : py::reinterpret_borrow<py::list>(index)) items.push_back(parse_item(obj, device));
  } else if (PyTuple_Check(index.ptr())) {
    for (auto obj : py::reinterpret_borrow<py::tuple>(index)) items.push_back(parse_item(obj, device));
  } else {
    items.push_back(parse_item(index, device));
  }
  return items;
}

bool is_bool_tensor(const Tensor& t) { return t.dtype() == ScalarType::Bool || t.dtype() == ScalarType::UInt8; }

// Reads a 0-dim integer CPU tensor (torch selects with it instead of advanced indexing).
std::optional<int64_t> cpu_scalar_index(const Tensor& t) {
  if (t.dim() != 0 || !t.device().is_cpu() || is_bool_tensor(t)) return std::nullopt;
  return EMBER_DISPATCH_INTEGRAL(t.dtype(), "index", [&]<typename T>() { return static_cast<int64_t>(t.data<T>()[0]); });
}

// The result of the basic part of an index plus the advanced indices per dim of that result.
struct Applied {
  Tensor result;
  TensorList indices;  // one per dim of `result` (undefined: not indexed), trimmed; empty: none
};

Applied apply_indexing(const Tensor& x, py::handle index) {
  std::vector<Item> items = parse_index(index, x.device());
  int64_t specified = 0;
  bool seen_ellipsis = false;
  for (const Item& it : items) {
    if (it.kind == Item::Ellipsis) {
      EMBER_CHECK_INDEX(!seen_ellipsis, "[index] an index can only have a single ellipsis ('...')");
      seen_ellipsis = true;
    } else if (it.kind == Item::TensorIdx && is_bool_tensor(it.tensor)) {
      specified += it.tensor.dim();
    } else if (it.kind != Item::None && it.kind != Item::Bool) {
      specified += 1;
    }
  }
  EMBER_CHECK_INDEX(specified <= x.dim(), "[index] too many indices for tensor of dimension ", x.dim(),
                    " (got ", specified, ")");
  Tensor result = x;
  int64_t dim = 0;
  std::vector<std::pair<int64_t, Tensor>> advanced;
  auto add_advanced = [&](int64_t d, Tensor t) { advanced.emplace_back(d, std::move(t)); };
  auto select_int = [&](int64_t i) {
    const int64_t size = result.sizes()[dim];
    EMBER_CHECK_INDEX(i >= -size && i < size, "[index] index ", i, " is out of bounds for dimension ", dim,
                      " with size ", size);
    result = select(result, dim, i);
  };
  for (const Item& it : items) {
    switch (it.kind) {
      case Item::Int: select_int(it.value); break;
      case Item::Slice: result = slice(result, dim, it.start, it.stop, it.step); ++dim; break;
      case Item::None: result = unsqueeze(result, dim); ++dim; break;
      case Item::Ellipsis: dim += x.dim() - specified; break;
      case Item::Bool: {
        // x[True] adds a dim of size 1, x[False] one of size 0 (numpy semantics).
        result = unsqueeze(result, dim);
        Tensor idx = Tensor::empty(DimVector{it.value ? 1 : 0}, ScalarType::Int64);
        if (it.value) idx.data<int64_t>()[0] = 0;
        add_advanced(dim, x.device().is_cpu() ? idx : to_device(idx, x.device()));
        ++dim;
        break;
      }
      case Item::TensorIdx: {
        const Tensor& t = it.tensor;
        if (is_bool_tensor(t)) {
          if (t.dim() == 0) {  // a 0-dim mask behaves like a Python bool, but keeps the selection lazy
            result = unsqueeze(result, dim);
            Tensor nz = nonzero(unsqueeze(t, 0));  // [0 or 1, 1]
            add_advanced(dim, select(nz, 1, 0));
            ++dim;
            break;
          }
          for (int64_t j = 0; j < t.dim(); ++j) {
            EMBER_CHECK_INDEX(dim + j < result.dim() && t.sizes()[j] == result.sizes()[dim + j],
                              "[index] The shape of the mask ", t.sizes(), " at index ", j,
                              " does not match the shape of the indexed tensor ", result.sizes(), " at index ", dim + j);
          }
          Tensor nz = nonzero(t);  // [n, t.dim()]
          for (int64_t j = 0; j < t.dim(); ++j) add_advanced(dim + j, select(nz, 1, j));
          dim += t.dim();
        } else if (auto i = cpu_scalar_index(t)) {
          select_int(*i);
        } else {
          add_advanced(dim, t);
          ++dim;
        }
        break;
      }
    }
  }
  Applied out;
  out.result = result;
  if (!advanced.empty()) {
    int64_t last = 0;
    for (auto& [d, t] : advanced) last = std::max(last, d);
    out.indices.resize(last + 1);
    for (auto& [d, t] : advanced) out.indices[d] = t;
  }
  return out;
}

Tensor getitem(const Tensor& x, py::handle index) {
  Applied a = apply_indexing(x, index);
  if (!a.indices.empty()) return ember::index(a.result, a.indices);
  // x[...] and x[()] still return a new tensor object (a view), like torch.
  if (a.result.is_same(x)) return view(x, x.sizes());
  return a.result;
}

// A value assigned through an index, as a tensor of x's dtype on x's device.
Tensor value_tensor(const Tensor& x, py::handle value) {
  if (is_tensor(value)) return to_dtype(value.cast<Tensor>(), x.dtype());
  if (PyList_Check(value.ptr()) || PyTuple_Check(value.ptr())) {
    // Only lists of numbers: route through ember.tensor (the factory family's binding).
    py::object t = py::module_::import("ember").attr("tensor")(value, py::arg("dtype") = dtype_object(x.dtype()));
    Tensor v = t.cast<Tensor>();
    return x.device().is_cpu() ? v : to_device(v, x.device());
  }
  Scalar s = value.cast<Scalar>();
  return scalar_tensor(s, x.dtype(), x.device());
}

// torch drops leading size-1 dims of the value so x[0] = ones(1, 3) works for x of shape [2, 3].
Tensor strip_leading_ones(Tensor v, int64_t target_dim) {
  while (v.dim() > target_dim && v.sizes()[0] == 1) v = squeeze(v, std::optional<int64_t>(0));
  return v;
}

void setitem(Tensor& x, py::handle index, py::handle value) {
  Applied a = apply_indexing(x, index);
  if (a.indices.empty()) {
    Tensor dst = a.result;
    if (!is_tensor(value) && !PyList_Check(value.ptr()) && !PyTuple_Check(value.ptr())) {
      fill_(dst, value.cast<Scalar>());
      return;
    }
    Tensor v = strip_leading_ones(value_tensor(x, value), dst.dim());
    copy_(dst, v);
    return;
  }
  Tensor v = value_tensor(x, value);
  Tensor dst = a.result;
  index_put_(dst, a.indices, v, false);
}

}  // namespace

void bind_indexing(py::module_& m) {
  (void)m;
  tensor_class()
      .def("__getitem__", [](const Tensor& x, py::object index) { return getitem(x, index); })
      .def("__setitem__", [](Tensor& x, py::object index, py::object value) { setitem(x, index, value); });
}

}  // namespace ember::python
