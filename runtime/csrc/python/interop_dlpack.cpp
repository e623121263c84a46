// DLPack capsules for ember.from_dlpack and Tensor.__dlpack__ (the conversions: core/dlpack.cpp).
// Note [DLPack ownership]: an exported capsule ("dltensor" or "dltensor_versioned") owns a
// DLManagedTensor whose manager_ctx keeps a Tensor handle (and so the storage) alive. A consumer
// renames the capsule to "used_dltensor[_versioned]" and becomes responsible for calling the
// deleter; an unconsumed capsule calls it from its destructor. When ember consumes, the deleter
// moves into the new storage's DataPtr and runs when the last tensor sharing that memory dies.
#include "core/dlpack.h"
#include "ops/ops.h"
#include "python/interop.h"

namespace ember::python {
namespace {

constexpr const char* kCapsule = "dltensor";
constexpr const char* kUsedCapsule = "used_dltensor";
constexpr const char* kVersionedCapsule = "dltensor_versioned";
constexpr const char* kUsedVersionedCapsule = "used_dltensor_versioned";

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

template <typename Managed>
py::capsule make_capsule(Managed* m, const char* name, PyCapsule_Destructor destructor) {
  PyObject* cap = PyCapsule_New(m, name, destructor);
  if (!cap) { m->deleter(m); throw py::error_already_set(); }
  return py::reinterpret_steal<py::capsule>(cap);
}

py::capsule export_capsule(const Tensor& x, bool versioned, bool copy) {
  EMBER_CHECK(!x.requires_grad(), "[__dlpack__] Can't export tensors that require gradient, use tensor.detach() ("
              , describe(x), ")");
  const Tensor t = copy ? clone(x) : x;
  if (versioned) return make_capsule(to_dlpack_versioned(t, copy), kVersionedCapsule, &versioned_capsule_destructor);
  return make_capsule(to_dlpack(t), kCapsule, &legacy_capsule_destructor);
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

Tensor from_capsule(py::handle capsule) {
  PyObject* cap = capsule.ptr();
  if (PyCapsule_IsValid(cap, kVersionedCapsule)) {
    auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(cap, kVersionedCapsule));
    EMBER_CHECK_VALUE(m->version.major == 1, "[from_dlpack] unsupported DLPack major version ", m->version.major);
    // Build first: if it throws, the capsule still owns the memory.
    Tensor t = from_dlpack(m->dl_tensor, m, &call_producer_deleter<DLManagedTensorVersioned>);
    PyCapsule_SetName(cap, kUsedVersionedCapsule);
    return t;
  }
  if (PyCapsule_IsValid(cap, kCapsule)) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, kCapsule));
    Tensor t = from_dlpack(m->dl_tensor, m, &call_producer_deleter<DLManagedTensor>);
    PyCapsule_SetName(cap, kUsedCapsule);
    return t;
  }
  const char* name = PyCapsule_CheckExact(cap) ? PyCapsule_GetName(cap) : nullptr;
  fail(ErrorKind::Value, "[from_dlpack] expected a 'dltensor' capsule, got ",
       name ? std::string("a capsule named '") + name + "' (a DLPack capsule can be consumed only once)"
            : std::string("a non-capsule object"));
}

Tensor from_dlpack_object(py::object obj) {
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
  m.def("from_dlpack", &from_dlpack_object, py::arg("ext_tensor"));
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
        return export_capsule(t, versioned, do_copy);
      }, py::kw_only(), py::arg("stream") = py::none(), py::arg("max_version") = py::none(),
         py::arg("dl_device") = py::none(), py::arg("copy") = py::none())
      .def("__dlpack_device__", [](const Tensor& t) {
        return t.device().is_cpu() ? py::make_tuple(int(kDLCPU), 0) : py::make_tuple(int(kDLCUDA), int(t.device().index));
      });
}

}  // namespace ember::python
