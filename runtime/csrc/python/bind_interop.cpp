// NumPy interop (zero-copy both ways) and Python-value extraction (item, tolist).
#include <pybind11/numpy.h>

#include "ops/ops.h"
#include "python/bindings.h"

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

void bind_interop(py::module_& m) {
  m.def("from_numpy", &tensor_from_numpy, py::arg("ndarray"));
  tensor_class().def("numpy", &tensor_to_numpy);
}

}  // namespace ember::python
