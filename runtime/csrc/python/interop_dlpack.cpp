// DLPack exchange, zero-copy both ways.
// Note [DLPack ownership]: an exported capsule ("dltensor" or "dltensor_versioned") owns a
// DLManagedTensor whose manager_ctx keeps a Tensor handle (and so the storage) alive. A consumer
// renames the capsule to "used_dltensor[_versioned]" and becomes responsible for calling the
// deleter; an unconsumed capsule calls it from its destructor. When ember consumes, the deleter
// moves into the new storage's DataPtr and runs when the last tensor sharing that memory dies.
#include <vector>

#include "ops/ops.h"
#include "python/dlpack.h"
#include "python/interop.h"

namespace ember::python {
namespace {

constexpr const char* kCapsule = "dltensor";
constexpr const char* kUsedCapsule = "used_dltensor";
constexpr const char* kVersionedCapsule = "dltensor_versioned";
constexpr const char* kUsedVersionedCapsule = "used_dltensor_versioned";

DLDataType to_dl_dtype(ScalarType t) {
  const auto bits = static_cast<uint8_t>(element_size(t) * 8);
  switch (t) {
    case ScalarType::Bool: return {kDLBool, 8, 1};
    case ScalarType::UInt8: return {kDLUInt, bits, 1};
    case ScalarType::Int8: case ScalarType::Int32: case ScalarType::Int64: return {kDLInt, bits, 1};
    case ScalarType::BFloat16: return {kDLBfloat, 16, 1};
    case ScalarType::Float16: case ScalarType::Float32: case ScalarType::Float64: return {kDLFloat, bits, 1};
  }
  return {kDLFloat, bits, 1};
}

ScalarType from_dl_dtype(DLDataType d) {
  EMBER_CHECK_TYPE(d.lanes == 1, "[from_dlpack] vector dtypes (lanes=", d.lanes, ") are not supported");
  switch (d.code) {
    case kDLBool: if (d.bits == 8) return ScalarType::Bool; break;
    case kDLUInt: if (d.bits == 8) return ScalarType::UInt8; break;
    case kDLInt:
      if (d.bits == 8) return ScalarType::Int8;
      if (d.bits == 32) return ScalarType::Int32;
      if (d.bits == 64) return ScalarType::Int64;
      break;
    case kDLFloat:
      if (d.bits == 16) return ScalarType::Float16;
      if (d.bits == 32) return ScalarType::Float32;
      if (d.bits == 64) return ScalarType::Float64;
      break;
    case kDLBfloat: if (d.bits == 16) return ScalarType::BFloat16; break;
    default: break;
  }
  fail(ErrorKind::Type, "[from_dlpack] unsupported DLPack dtype (code ", int(d.code), ", bits ", int(d.bits), ")");
}

// ---- export -----------------------------------------------------------------------------------------

struct ExportCtx {
  Tensor tensor;
  std::vector<int64_t> shape, strides;
};

void fill_dl_tensor(DLTensor& dl, ExportCtx& ctx) {
  const Tensor& t = ctx.tensor;
  ctx.shape.assign(t.sizes().begin(), t.sizes().end());
  ctx.strides.assign(t.strides().begin(), t.strides().end());
  dl.data = t.data_ptr();
  dl.device = t.device().is_cpu() ? DLDevice{kDLCPU, 0} : DLDevice{kDLCUDA, t.device().index};
  dl.ndim = static_cast<int32_t>(t.dim());
  dl.dtype = to_dl_dtype(t.dtype());
  dl.shape = ctx.shape.data();
  dl.strides = ctx.strides.data();
  dl.byte_offset = 0;
}

template <typename Managed>
void delete_exported(Managed* self) {
  delete static_cast<ExportCtx*>(self->manager_ctx);
  delete self;
}

void legacy_capsule_destructor(PyObject* capsule) {
  if (!PyCapsule_IsValid(capsule, kCapsule)) return;  // consumed (renamed) or invalid
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, kCapsule));
  if (m && m->deleter) m->deleter(m);
}

void versioned_capsule_destructor(PyObject* capsule) {
  if (!PyCapsule_IsValid(capsule, kVersionedCapsule)) return;
  auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(capsule, kVersionedCapsule));
  if (m && m->deleter) m->deleter(m);
}

py::capsule to_dlpack(const Tensor& x, bool versioned, bool copy) {
  EMBER_CHECK(!x.requires_grad(), "[__dlpack__] Can't export tensors that require gradient, use tensor.detach() ("
              , describe(x), ")");
  auto* ctx = new ExportCtx{copy ? clone(x).alias() : x.alias(), {}, {}};
  if (versioned) {
    auto* m = new DLManagedTensorVersioned{};
    m->version = {1, 0};
    m->manager_ctx = ctx;
    m->deleter = &delete_exported<DLManagedTensorVersioned>;
    m->flags = copy ? DLPACK_FLAG_BITMASK_IS_COPIED : 0;
    fill_dl_tensor(m->dl_tensor, *ctx);
    PyObject* cap = PyCapsule_New(m, kVersionedCapsule, &versioned_capsule_destructor);
    if (!cap) { delete_exported(m); throw py::error_already_set(); }
    return py::reinterpret_steal<py::capsule>(cap);
  }
  auto* m = new DLManagedTensor{};
  m->manager_ctx = ctx;
  m->deleter = &delete_exported<DLManagedTensor>;
  fill_dl_tensor(m->dl_tensor, *ctx);
  PyObject* cap = PyCapsule_New(m, kCapsule, &legacy_capsule_destructor);
  if (!cap) { delete_exported(m); throw py::error_already_set(); }
  return py::reinterpret_steal<py::capsule>(cap);
}

// ---- import -----------------------------------------------------------------------------------------

// Calls the producer's deleter when the storage dies; producers' deleters may touch Python objects.
template <typename Managed>
void call_producer_deleter(void* ctx) {
  auto* m = static_cast<Managed*>(ctx);
  if (!m || !m->deleter) return;
  if (!Py_IsInitialized()) return;  // interpreter gone: leak rather than crash
  PyGILState_STATE s = PyGILState_Ensure();
  m->deleter(m);
  PyGILState_Release(s);
}

Tensor tensor_from_dl(const DLTensor& dl, void* managed, DataPtr::Deleter deleter) {
  ScalarType dtype = from_dl_dtype(dl.dtype);
  Device device;
  switch (dl.device.device_type) {
    case kDLCPU: case kDLCUDAHost: device = Device(); break;
    case kDLCUDA: case kDLCUDAManaged: device = Device(DeviceType::CUDA, dl.device.device_id); break;
    default: fail(ErrorKind::Type, "[from_dlpack] unsupported device type ", dl.device.device_type);
  }
  EMBER_CHECK_VALUE(dl.ndim >= 0, "[from_dlpack] negative ndim ", dl.ndim);
  DimVector sizes(dl.shape, dl.shape + dl.ndim);
  DimVector strides = dl.strides ? DimVector(dl.strides, dl.strides + dl.ndim) : contiguous_strides(sizes);
  const int64_t n = numel_of(sizes);
  int64_t extent = n == 0 ? 0 : 1;
  for (int32_t i = 0; i < dl.ndim; ++i) {
    EMBER_CHECK_VALUE(sizes[i] >= 0, "[from_dlpack] negative size in shape ", sizes);
    EMBER_CHECK_VALUE(strides[i] >= 0 || sizes[i] <= 1, "[from_dlpack] negative strides ", strides,
                      " are not supported; copy the tensor first");
    if (strides[i] < 0) strides[i] = 0;
    if (n > 0) extent += (sizes[i] - 1) * strides[i];
  }
  void* data = static_cast<char*>(dl.data) + dl.byte_offset;
  DataPtr ptr(data, managed, deleter, device);
  auto storage = std::make_shared<StorageImpl>(std::move(ptr), static_cast<size_t>(extent * element_size(dtype)));
  return Tensor::make(std::move(storage), std::move(sizes), std::move(strides), 0, dtype);
}

Tensor from_capsule(py::handle capsule) {
  PyObject* cap = capsule.ptr();
  if (PyCapsule_IsValid(cap, kVersionedCapsule)) {
    auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(cap, kVersionedCapsule));
    EMBER_CHECK_VALUE(m->version.major == 1, "[from_dlpack] unsupported DLPack major version ", m->version.major);
    // Build first: if it throws, the capsule still owns the memory.
    Tensor t = tensor_from_dl(m->dl_tensor, m, &call_producer_deleter<DLManagedTensorVersioned>);
    PyCapsule_SetName(cap, kUsedVersionedCapsule);
    return t;
  }
  if (PyCapsule_IsValid(cap, kCapsule)) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, kCapsule));
    Tensor t = tensor_from_dl(m->dl_tensor, m, &call_producer_deleter<DLManagedTensor>);
    PyCapsule_SetName(cap, kUsedCapsule);
    return t;
  }
  const char* name = PyCapsule_CheckExact(cap) ? PyCapsule_GetName(cap) : nullptr;
  fail(ErrorKind::Value, "[from_dlpack] expected a 'dltensor' capsule, got ",
       name ? std::string("a capsule named '") + name + "' (a DLPack capsule can be consumed only once)"
            : std::string("a non-capsule object"));
}

Tensor from_dlpack(py::object obj) {
  if (PyCapsule_CheckExact(obj.ptr())) return from_capsule(obj);
  if (py::isinstance<Tensor>(obj)) return obj.cast<Tensor>().alias();
  EMBER_CHECK_TYPE(py::hasattr(obj, "__dlpack__"), "[from_dlpack] expected an object implementing __dlpack__ or a "
                   "DLPack capsule, got ", std::string(py::str(py::type::of(obj).attr("__name__"))));
  py::object cap;
  try {
    cap = obj.attr("__dlpack__")(py::arg("max_version") = py::make_tuple(1, 0));
  } catch (py::error_already_set& e) {
    if (!e.matches(PyExc_TypeError)) throw;
    cap = obj.attr("__dlpack__")();  // producer predates DLPack 1.0
  }
  return from_capsule(cap);
}

}  // namespace

void bind_dlpack(py::module_& m) {
  m.def("from_dlpack", &from_dlpack, py::arg("ext_tensor"));
  tensor_class()
      .def("__dlpack__", [](const Tensor& t, py::object stream, py::object max_version, py::object dl_device,
                            py::object copy) {
        (void)stream;  // ember's CUDA work is synchronous on the default stream
        bool versioned = false;
        if (!max_version.is_none()) versioned = max_version.cast<py::tuple>()[0].cast<int>() >= 1;
        if (!dl_device.is_none()) {
          auto dev = dl_device.cast<py::tuple>();
          int type = dev[0].cast<int>();
          bool matches = t.device().is_cpu() ? type == kDLCPU : type == kDLCUDA;
          EMBER_CHECK_KIND(matches, ErrorKind::Value, "[__dlpack__] cross-device export to device type ", type,
                           " is not supported for a tensor on ", t.device());
        }
        bool do_copy = !copy.is_none() && copy.cast<bool>();
        return to_dlpack(t, versioned, do_copy);
      }, py::kw_only(), py::arg("stream") = py::none(), py::arg("max_version") = py::none(),
         py::arg("dl_device") = py::none(), py::arg("copy") = py::none())
      .def("__dlpack_device__", [](const Tensor& t) {
        return t.device().is_cpu() ? py::make_tuple(int(kDLCPU), 0) : py::make_tuple(int(kDLCUDA), int(t.device().index));
      });
}

}  // namespace ember::python
