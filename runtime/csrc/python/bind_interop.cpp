// NumPy interop (zero-copy both ways), Python-value extraction (item, tolist) and the
// ember.tensor / ember.as_tensor constructors. DLPack lives in interop_dlpack.cpp.
#include <pybind11/numpy.h>

#include "autograd/grad_mode.h"
#include "ops/ops.h"
#include "python/bindings.h"
#include "python/interop.h"

namespace ember::python {
namespace {

py::dtype numpy_dtype(ScalarType t) {
  switch (t) {
    case ScalarType::Bool: return py::dtype("bool");
    case ScalarType::UInt8: return py::dtype("uint8");
    case ScalarType::Int8: return py::dtype("int8");
    case ScalarType::Int32: return py::dtype("int32");
    case ScalarType::Int64: return py::dtype("int64");
    case ScalarType::Float16: return py::dtype("float16");
    case ScalarType::Float32: return py::dtype("float32");
    case ScalarType::Float64: return py::dtype("float64");
    case ScalarType::BFloat16: break;
  }
  fail(ErrorKind::Type, "[numpy] NumPy has no bfloat16; convert with .float() first");
}

ScalarType from_numpy_dtype(const py::dtype& d) {
  const char kind = d.kind();
  const auto size = d.itemsize();
  if (kind == 'b') return ScalarType::Bool;
  if (kind == 'u' && size == 1) return ScalarType::UInt8;
  if (kind == 'i' && size == 1) return ScalarType::Int8;
  if (kind == 'i' && size == 4) return ScalarType::Int32;
  if (kind == 'i' && size == 8) return ScalarType::Int64;
  if (kind == 'f' && size == 2) return ScalarType::Float16;
  if (kind == 'f' && size == 4) return ScalarType::Float32;
  if (kind == 'f' && size == 8) return ScalarType::Float64;
  fail(ErrorKind::Type, "[from_numpy] can't convert np.ndarray of type ", std::string(py::str(d)),
       ". The only supported types are: float64, float32, float16, int64, int32, int8, uint8, and bool.");
}

void decref_pyobject(void* obj) {
  py::gil_scoped_acquire gil;
  Py_DECREF(static_cast<PyObject*>(obj));
}

}  // namespace

// Zero-copy: the tensor's storage keeps the array alive.
Tensor tensor_from_numpy(py::array arr) {
  ScalarType dtype = from_numpy_dtype(arr.dtype());
  const int64_t esize = element_size(dtype);
  DimVector sizes, strides;
  for (py::ssize_t i = 0; i < arr.ndim(); ++i) {
    sizes.push_back(arr.shape(i));
    EMBER_CHECK_VALUE(arr.strides(i) % esize == 0 && arr.strides(i) >= 0, "[from_numpy] strides ",
                      std::vector<py::ssize_t>(arr.strides(), arr.strides() + arr.ndim()),
                      " are negative or not a multiple of the element size ", esize,
                      "; copy the array first (np.ascontiguousarray)");
    strides.push_back(arr.strides(i) / esize);
  }
  int64_t extent = 1;
  for (size_t i = 0; i < sizes.size(); ++i) extent += sizes[i] == 0 ? 0 : (sizes[i] - 1) * strides[i];
  if (numel_of(sizes) == 0) extent = 0;
  PyObject* owner = arr.ptr();
  Py_INCREF(owner);
  DataPtr data(const_cast<void*>(arr.data()), owner, &decref_pyobject, Device());
  auto storage = std::make_shared<StorageImpl>(std::move(data), static_cast<size_t>(extent * esize));
  return Tensor::make(std::move(storage), std::move(sizes), std::move(strides), 0, dtype);
}

py::array tensor_to_numpy(const Tensor& t) {
  EMBER_CHECK_TYPE(t.device().is_cpu(), "[numpy] can't convert ", t.device(),
                   " tensor to numpy. Use Tensor.cpu() to copy the tensor to host memory first.");
  EMBER_CHECK(!t.requires_grad(), "[numpy] Can't call numpy() on Tensor that requires grad. Use "
              "tensor.detach().numpy() instead.");
  std::vector<py::ssize_t> shape(t.sizes().begin(), t.sizes().end());
  std::vector<py::ssize_t> strides;
  for (int64_t s : t.strides()) strides.push_back(s * t.element_size());
  // The capsule owns a Tensor handle, keeping the storage alive as long as the array lives.
  auto* keep = new Tensor(t);
  py::capsule base(keep, [](void* p) { delete static_cast<Tensor*>(p); });
  return py::array(numpy_dtype(t.dtype()), shape, strides, t.data_ptr(), base);
}

namespace {

// ---- Python values out of tensors -----------------------------------------------------------------

py::object element_to_py(const char* p, ScalarType t) {
  switch (t) {
    case ScalarType::Bool: return py::bool_(*reinterpret_cast<const bool*>(p));
    case ScalarType::UInt8: return py::int_(*reinterpret_cast<const uint8_t*>(p));
    case ScalarType::Int8: return py::int_(*reinterpret_cast<const int8_t*>(p));
    case ScalarType::Int32: return py::int_(*reinterpret_cast<const int32_t*>(p));
    case ScalarType::Int64: return py::int_(*reinterpret_cast<const int64_t*>(p));
    case ScalarType::Float16: return py::float_(static_cast<float>(*reinterpret_cast<const Half*>(p)));
    case ScalarType::BFloat16: return py::float_(static_cast<float>(*reinterpret_cast<const BFloat16*>(p)));
    case ScalarType::Float32: return py::float_(*reinterpret_cast<const float*>(p));
    case ScalarType::Float64: return py::float_(*reinterpret_cast<const double*>(p));
  }
  return py::none();
}

Tensor on_cpu(const Tensor& t) {
  if (t.device().is_cpu()) return t;
  GradModeGuard no_grad(false);
  return to_device(t, Device());
}

py::object tolist_rec(const char* p, const Tensor& t, int64_t d) {
  if (d == t.dim()) return element_to_py(p, t.dtype());
  const int64_t n = t.sizes()[d], step = t.strides()[d] * t.element_size();
  py::list out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = tolist_rec(p + i * step, t, d + 1);
  return out;
}

py::object tensor_tolist(const Tensor& x) {
  Tensor t = on_cpu(x);
  return tolist_rec(static_cast<const char*>(t.data_ptr()), t, 0);
}

py::object tensor_item(const Tensor& x) {
  EMBER_CHECK(x.numel() == 1, "[item] a Tensor with ", x.numel(), " elements cannot be converted to Scalar");
  Tensor t = on_cpu(x);
  return element_to_py(static_cast<const char*>(t.data_ptr()), t.dtype());
}

// ---- ember.tensor(data): nested sequences of Python numbers ----------------------------------------

enum class Kind { Bool = 0, Int = 1, Float = 2 };

bool is_sequence_like(py::handle o) {
  return PyList_Check(o.ptr()) || PyTuple_Check(o.ptr());
}

// Tensors and arrays nested inside lists become Python lists/numbers first.
py::object normalize_element(py::handle o) {
  if (py::isinstance<Tensor>(o)) return tensor_tolist(o.cast<Tensor>());
  if (py::isinstance<py::array>(o)) return o.attr("tolist")();
  return py::reinterpret_borrow<py::object>(o);
}

struct Collector {
  DimVector sizes;
  std::vector<Scalar> values;
  Kind kind = Kind::Bool;

  void add_scalar(py::handle o, size_t depth) {
    EMBER_CHECK_VALUE(depth == sizes.size(), "[tensor] expected sequence of length ", sizes.size() > depth ?
                      sizes[depth] : 0, " at dim ", depth, " (got a scalar)");
    PyObject* p = o.ptr();
    if (PyBool_Check(p)) { values.emplace_back(p == Py_True); return; }
    if (PyLong_Check(p) || (!PyFloat_Check(p) && PyObject_HasAttrString(p, "__index__"))) {
      int overflow = 0;
      long long v = PyLong_Check(p) ? PyLong_AsLongLongAndOverflow(p, &overflow)
                                    : static_cast<long long>(PyNumber_AsSsize_t(p, nullptr));
      if (PyErr_Occurred()) throw py::error_already_set();
      EMBER_CHECK(!overflow, "[tensor] Overflow when unpacking long: ", std::string(py::str(o)),
                  " does not fit in int64");
      values.emplace_back(static_cast<int64_t>(v));
      kind = std::max(kind, Kind::Int);
      return;
    }
    if (PyFloat_Check(p) || PyObject_HasAttrString(p, "__float__")) {
      double v = PyFloat_AsDouble(p);
      if (PyErr_Occurred()) throw py::error_already_set();
      values.emplace_back(v);
      kind = Kind::Float;
      return;
    }
    fail(ErrorKind::Type, "[tensor] new(): invalid data type '", std::string(py::str(py::type::of(o).attr("__name__"))),
         "'");
  }

  void walk(py::handle obj, size_t depth) {
    py::object o = normalize_element(obj);
    if (!is_sequence_like(o)) { add_scalar(o, depth); return; }
    const int64_t n = static_cast<int64_t>(py::len(o));
    EMBER_CHECK_VALUE(depth < sizes.size(), "[tensor] expected a number at dim ", depth, " but got a sequence of "
                      "length ", n, " (ragged nested sequence)");
    EMBER_CHECK_VALUE(n == sizes[depth], "[tensor] expected sequence of length ", sizes[depth], " at dim ", depth,
                      " (got ", n, ")");
    py::sequence seq = py::reinterpret_borrow<py::sequence>(o);
    for (int64_t i = 0; i < n; ++i) walk(seq[i], depth + 1);
  }

  void infer_sizes(py::handle obj) {
    py::object o = normalize_element(obj);
    while (is_sequence_like(o)) {
      const int64_t n = static_cast<int64_t>(py::len(o));
      sizes.push_back(n);
      if (n == 0) break;
      o = normalize_element(py::reinterpret_borrow<py::sequence>(o)[0]);
    }
  }
};

ScalarType kind_dtype(Kind k) {
  return k == Kind::Bool ? ScalarType::Bool : k == Kind::Int ? ScalarType::Int64 : default_float_type();
}

Tensor fill_from_scalars(const DimVector& sizes, const std::vector<Scalar>& values, ScalarType dtype) {
  Tensor out = Tensor::empty(sizes, dtype);
  EMBER_DISPATCH_ALL(dtype, "tensor", [&]<typename T>() {
    T* p = out.data<T>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = values[i].to<T>();
  });
  return out;
}

py::dtype numpy_dtype_or_none(ScalarType t, bool& ok) {
  ok = t != ScalarType::BFloat16;
  return ok ? numpy_dtype(t) : py::dtype("float32");
}

// A fresh CPU tensor holding `arr`'s values in `dtype`.
Tensor tensor_from_array_copy(py::array arr, std::optional<ScalarType> dtype) {
  auto np = py::module_::import("numpy");
  ScalarType target = dtype ? *dtype : from_numpy_dtype(arr.dtype());
  bool representable;
  py::dtype npd = numpy_dtype_or_none(target, representable);
  // np.array, not np.ascontiguousarray: the latter turns 0-d arrays into 1-d ones
  py::array copy = np.attr("array")(arr, py::arg("dtype") = npd, py::arg("order") = "C", py::arg("copy") = true);
  Tensor t = tensor_from_numpy(copy);
  if (representable) return t;
  // bfloat16 has no numpy dtype: convert from the float32 copy element by element.
  Tensor out = Tensor::empty(t.sizes(), target);
  const float* src = t.data<float>();
  BFloat16* dst = out.data<BFloat16>();
  for (int64_t i = 0; i < t.numel(); ++i) dst[i] = BFloat16(src[i]);
  return out;
}

Tensor finish(Tensor t, std::optional<Device> device, bool requires_grad) {
  if (device && *device != t.device()) {
    GradModeGuard no_grad(false);
    t = to_device(t, *device);
  }
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

Tensor make_tensor(py::handle data, std::optional<ScalarType> dtype, std::optional<Device> device,
                   bool requires_grad) {
  GradModeGuard no_grad(false);
  if (py::isinstance<Tensor>(data)) {
    Tensor src = data.cast<Tensor>();
    Tensor t = clone(src).alias();
    if (dtype && *dtype != t.dtype()) t = to_dtype(t, *dtype).alias();
    return finish(t, device, requires_grad);
  }
  if (py::isinstance<py::array>(data))
    return finish(tensor_from_array_copy(py::reinterpret_borrow<py::array>(data), dtype), device, requires_grad);
  if (!is_sequence_like(data) && !PyNumber_Check(data.ptr()) && !PyUnicode_Check(data.ptr()) &&
      (py::hasattr(data, "__array__") || py::hasattr(data, "__array_interface__"))) {
    py::array arr = py::module_::import("numpy").attr("asarray")(data);
    return finish(tensor_from_array_copy(arr, dtype), device, requires_grad);
  }
  Collector c;
  c.infer_sizes(data);
  c.walk(data, 0);
  ScalarType target = dtype ? *dtype : c.values.empty() ? default_float_type() : kind_dtype(c.kind);
  return finish(fill_from_scalars(c.sizes, c.values, target), device, requires_grad);
}

Tensor make_as_tensor(py::handle data, std::optional<ScalarType> dtype, std::optional<Device> device) {
  if (py::isinstance<Tensor>(data)) {
    Tensor t = data.cast<Tensor>();
    if (dtype && *dtype != t.dtype()) t = to_dtype(t, *dtype);
    if (device && *device != t.device()) t = to_device(t, *device);
    return t;
  }
  if (py::isinstance<py::array>(data)) {
    py::array arr = py::reinterpret_borrow<py::array>(data);
    bool strides_ok = true;
    for (py::ssize_t i = 0; i < arr.ndim(); ++i)
      strides_ok = strides_ok && arr.strides(i) >= 0 && arr.strides(i) % std::max<py::ssize_t>(arr.itemsize(), 1) == 0;
    bool same_dtype = false;
    try { same_dtype = !dtype || from_numpy_dtype(arr.dtype()) == *dtype; } catch (const Error&) {}
    if (strides_ok && same_dtype) return finish(tensor_from_numpy(arr), device, false);
  }
  return make_tensor(data, dtype, device, false);
}

// The same bytes under an unsigned integer dtype of the same width: how bfloat16 travels through
// numpy (serialization) and how bit patterns are inspected.
py::array tensor_bits(const Tensor& t) {
  EMBER_CHECK_TYPE(t.device().is_cpu(), "[_numpy_bits] expects a CPU tensor, got ", describe(t));
  const char* name = t.element_size() == 1 ? "uint8" : t.element_size() == 2 ? "uint16"
                     : t.element_size() == 4 ? "uint32" : "uint64";
  std::vector<py::ssize_t> shape(t.sizes().begin(), t.sizes().end());
  std::vector<py::ssize_t> strides;
  for (int64_t s : t.strides()) strides.push_back(s * t.element_size());
  auto* keep = new Tensor(t);
  py::capsule base(keep, [](void* p) { delete static_cast<Tensor*>(p); });
  return py::array(py::dtype(name), shape, strides, t.data_ptr(), base);
}

Tensor tensor_from_bits(py::array arr, ScalarType dtype) {
  EMBER_CHECK_VALUE(arr.itemsize() == element_size(dtype), "[_from_numpy_bits] array items are ", arr.itemsize(),
                    " bytes but ", dtype_name(dtype), " needs ", element_size(dtype));
  // reinterpret as a dtype from_numpy accepts, of the same width, then relabel
  py::array as_uint = arr.attr("view")(py::dtype(arr.itemsize() == 1 ? "uint8" : arr.itemsize() == 2 ? "float16"
                                                 : arr.itemsize() == 4 ? "int32" : "int64"));
  Tensor t = tensor_from_numpy(as_uint);
  t.impl()->dtype = dtype;
  return t;
}

}  // namespace

void bind_interop(py::module_& m) {
  m.def("from_numpy", &tensor_from_numpy, py::arg("ndarray"));
  m.def("tensor", [](py::handle data, std::optional<ScalarType> dtype, std::optional<Device> device,
                     bool requires_grad) { return make_tensor(data, dtype, device, requires_grad); },
        py::arg("data"), py::kw_only(), py::arg("dtype") = py::none(), py::arg("device") = py::none(),
        py::arg("requires_grad") = false);
  m.def("as_tensor", [](py::handle data, std::optional<ScalarType> dtype, std::optional<Device> device) {
    return make_as_tensor(data, dtype, device);
  }, py::arg("data"), py::arg("dtype") = py::none(), py::arg("device") = py::none());
  m.def("_from_numpy_bits", &tensor_from_bits, py::arg("array"), py::arg("dtype"));
  tensor_class()
      .def("numpy", [](const Tensor& t, bool force) {
        if (force) {
          Tensor c = on_cpu(t).alias();
          if (c.dtype() == ScalarType::BFloat16) {
            GradModeGuard no_grad(false);
            c = to_dtype(c, ScalarType::Float32).alias();
          }
          return tensor_to_numpy(c);
        }
        return tensor_to_numpy(t);
      }, py::kw_only(), py::arg("force") = false)
      .def("_numpy_bits", &tensor_bits)
      .def("tolist", &tensor_tolist)
      .def("item", &tensor_item);
  bind_dlpack(m);
}

}  // namespace ember::python
