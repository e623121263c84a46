#pragma once
// Shared pieces of the pybind11 layer: type casters for ember's small value types, the argument
// conversions the generated bindings (generated/python_*.cpp, from runtime/spec) use, and the
// registration hooks of the hand-written bind_*.cpp files.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "core/tensor.h"
#include "ops/operand.h"

namespace py = pybind11;

namespace ember {
class Generator;
}

namespace ember::python {

// ember.dtype: a Python object wrapping a ScalarType (ember.float32, ...).
struct DType { ScalarType type; };
// ember.device.
struct PyDevice { Device device; };

py::object dtype_object(ScalarType t);    // the singleton ember.<name> object
py::class_<Tensor>& tensor_class();       // the ember.Tensor class, for binding methods
DimVector to_dims(py::handle obj, const char* op);  // int, or a sequence of ints

// ---- argument conversions of the generated bindings ----------------------------------------------
// A sequence of tensors (cat, stack), with an error naming the op for anything else.
std::vector<Tensor> tensor_list(py::handle seq, const char* op);
// Index lists (index_put): None entries mean a full slice.
std::vector<Tensor> optional_tensor_list(py::handle seq);
inline IntSpan opt_dims(const std::optional<DimVector>& dims) { return dims ? IntSpan(*dims) : IntSpan(); }
// Sizes from varargs, or from the size= keyword when no varargs are given.
DimVector sizes_or_kw(const py::args& args, py::handle size, const char* op);
// An explicit generator= argument (None: the device's default generator).
Generator* generator_of(py::handle gen);
inline Tensor requires_grad_if(bool requires_grad, Tensor t) {
  if (requires_grad) t.set_requires_grad(true);
  return t;
}
py::tuple to_tuple(const std::vector<Tensor>& ts);
// (values, indices) results as namedtuples like torch.return_types.max.
void register_return_type(py::module_& m, const char* name, const char* fields);
py::object return_tuple(const char* name, const std::pair<Tensor, Tensor>& r);

// Hand-written bindings (module.cpp calls them after the generated ones).
void bind_tensor_core(py::module_& m);   // module.cpp: metadata, conversions (.to, .float())
void bind_index(py::module_& m);         // nonzero(as_tuple=), where(cond), Tensor.__getitem__/__setitem__
void bind_random(py::module_& m);        // seeds, RNG state, ember.Generator
void bind_autograd(py::module_& m);
void bind_interop(py::module_& m);       // numpy, DLPack, tolist/item
void bind_cuda(py::module_& m);          // ember._C._cuda (present even without CUDA)
void bind_attention(py::module_& m);     // cuDNN loading, whether fused CUDA attention can run

}  // namespace ember::python

namespace pybind11::detail {

template <> struct type_caster<ember::Scalar> {
  PYBIND11_TYPE_CASTER(ember::Scalar, const_name("Number"));
  bool load(handle src, bool) {
    if (PyBool_Check(src.ptr())) { value = ember::Scalar(src.ptr() == Py_True); return true; }
    if (PyLong_Check(src.ptr())) {
      int overflow = 0;
      long long v = PyLong_AsLongLongAndOverflow(src.ptr(), &overflow);
      if (overflow) return false;
      value = ember::Scalar(static_cast<int64_t>(v));
      return true;
    }
    if (PyFloat_Check(src.ptr())) { value = ember::Scalar(PyFloat_AsDouble(src.ptr())); return true; }
    // numpy scalars and other numbers
    if (PyObject_HasAttrString(src.ptr(), "__index__") && !PyObject_HasAttrString(src.ptr(), "shape")) {
      value = ember::Scalar(static_cast<int64_t>(PyNumber_AsSsize_t(src.ptr(), nullptr)));
      return !PyErr_Occurred();
    }
    if (PyObject_HasAttrString(src.ptr(), "__float__") && !PyObject_HasAttrString(src.ptr(), "shape")) {
      value = ember::Scalar(PyFloat_AsDouble(src.ptr()));
      return !PyErr_Occurred();
    }
    return false;
  }
  static handle cast(const ember::Scalar& s, return_value_policy, handle) {
    if (s.is_float()) return PyFloat_FromDouble(s.to_double());
    if (s.is_bool()) return PyBool_FromLong(s.to_bool());
    return PyLong_FromLongLong(s.to_int());
  }
};

// Operand: an ember.Tensor or a Python number (tensor first: the common, fast case).
template <> struct type_caster<ember::Operand> {
  PYBIND11_TYPE_CASTER(ember::Operand, const_name("Tensor | Number"));
  type_caster() : value(ember::Scalar()) {}
  bool load(handle src, bool convert) {
    make_caster<ember::Tensor> tc;
    if (tc.load(src, convert)) { value = ember::Operand(cast_op<ember::Tensor&>(tc)); return true; }
    make_caster<ember::Scalar> sc;
    if (sc.load(src, convert)) { value = ember::Operand(cast_op<ember::Scalar&>(sc)); return true; }
    return false;
  }
  static handle cast(const ember::Operand& o, return_value_policy p, handle parent) {
    if (o.is_number()) return make_caster<ember::Scalar>::cast(o.scalar, p, parent);
    return make_caster<ember::Tensor>::cast(o.tensor, p, parent);
  }
};

template <> struct type_caster<ember::ScalarType> {
  PYBIND11_TYPE_CASTER(ember::ScalarType, const_name("ember.dtype"));
  bool load(handle src, bool) {
    if (!isinstance<ember::python::DType>(src)) return false;
    value = src.cast<ember::python::DType>().type;
    return true;
  }
  static handle cast(ember::ScalarType t, return_value_policy, handle) {
    return ember::python::dtype_object(t).release();
  }
};

template <> struct type_caster<ember::Device> {
  PYBIND11_TYPE_CASTER(ember::Device, const_name("ember.device | str"));
  bool load(handle src, bool) {
    if (isinstance<str>(src)) { value = ember::Device::parse(src.cast<std::string>()); return true; }
    if (isinstance<ember::python::PyDevice>(src)) { value = src.cast<ember::python::PyDevice>().device; return true; }
    return false;
  }
  static handle cast(ember::Device d, return_value_policy, handle) {
    return pybind11::cast(ember::python::PyDevice{d}).release();
  }
};

template <> struct type_caster<ember::DimVector> {
  PYBIND11_TYPE_CASTER(ember::DimVector, const_name("Sequence[int]"));
  bool load(handle src, bool) {
    if (PyLong_Check(src.ptr())) { value = ember::DimVector{PyLong_AsLongLong(src.ptr())}; return true; }
    if (!PySequence_Check(src.ptr()) || PyUnicode_Check(src.ptr())) return false;
    if (hasattr(src, "numel")) return false;  // a tensor is not a size list
    sequence seq = reinterpret_borrow<sequence>(src);
    value = ember::DimVector();
    for (auto item : seq) {
      if (!PyLong_Check(item.ptr()) && !PyObject_HasAttrString(item.ptr(), "__index__")) return false;
      value.push_back(PyNumber_AsSsize_t(item.ptr(), nullptr));
    }
    return true;
  }
  static handle cast(const ember::DimVector& v, return_value_policy, handle) {
    tuple t(v.size());
    for (size_t i = 0; i < v.size(); ++i) t[i] = int_(v[i]);
    return t.release();
  }
};

}  // namespace pybind11::detail
