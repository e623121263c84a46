// ember._C: the extension module. Registers dtype/device/Tensor types, maps ember::Error to the
// Python exception torch would raise, and calls the generated bindings of every spec file, then the
// hand-written bind_* functions (what is not an op: autograd, interop, CUDA runtime, indexing).
#include "python/bindings.h"

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "core/generator.h"
#include "core/parallel.h"
#include "generated/python_bindings.h"
#include "ops/ops.h"

namespace ember::python {
namespace {

py::class_<Tensor>* g_tensor_class = nullptr;
py::object* g_dtype_objects = new py::object[kNumScalarTypes];  // leaked: outlives the interpreter
py::object* g_return_types = new py::object();                  // ember.return_types; leaked likewise

void register_exceptions(py::module_& m) {
  // ember.linalg.LinAlgError (torch._C._LinAlgError): leaked like the module's other globals.
  static PyObject* linalg_error = PyErr_NewException("ember._C._LinAlgError", PyExc_RuntimeError, nullptr);
  m.attr("_LinAlgError") = py::handle(linalg_error);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      PyObject* type = PyExc_RuntimeError;
      switch (e.kind()) {
        case ErrorKind::Value: type = PyExc_ValueError; break;
        case ErrorKind::Index: type = PyExc_IndexError; break;
        case ErrorKind::Type: type = PyExc_TypeError; break;
        case ErrorKind::NotImplemented: type = PyExc_NotImplementedError; break;
        case ErrorKind::LinAlg: type = linalg_error; break;
        case ErrorKind::Runtime: break;
      }
      PyErr_SetString(type, e.what());
    }
  });
}

void bind_dtypes(py::module_& m) {
  py::class_<DType>(m, "dtype")
      .def_property_readonly("is_floating_point", [](const DType& d) { return is_floating(d.type); })
      .def_property_readonly("itemsize", [](const DType& d) { return element_size(d.type); })
      .def("__repr__", [](const DType& d) { return std::string("ember.") + dtype_name(d.type); })
      .def("__eq__", [](const DType& a, py::object b) {
        return py::isinstance<DType>(b) && a.type == b.cast<DType>().type;
      })
      .def("__hash__", [](const DType& d) { return static_cast<int>(d.type); })
      .def("__reduce__", [](const DType& d) {
        return py::make_tuple(py::module_::import("ember").attr("_dtype_from_name"), py::make_tuple(dtype_name(d.type)));
      });
  for (int i = 0; i < kNumScalarTypes; ++i) {
    auto t = static_cast<ScalarType>(i);
    g_dtype_objects[i] = py::cast(DType{t});
    m.attr(dtype_name(t)) = g_dtype_objects[i];
  }
}

void bind_devices(py::module_& m) {
  py::class_<PyDevice>(m, "device")
      .def(py::init([](const std::string& s) { return PyDevice{Device::parse(s)}; }))
      .def(py::init([](const std::string& type, int index) {
        Device d = Device::parse(type);
        return PyDevice{Device(d.type, index)};
      }))
      .def(py::init([](const PyDevice& d) { return d; }))
      .def_property_readonly("type", [](const PyDevice& d) { return d.device.is_cpu() ? "cpu" : "cuda"; })
      .def_property_readonly("index", [](const PyDevice& d) -> py::object {
        return d.device.is_cpu() ? py::object(py::none()) : py::object(py::int_(d.device.index));
      })
      .def("__str__", [](const PyDevice& d) { return d.device.str(); })
      .def("__repr__", [](const PyDevice& d) {
        return d.device.is_cpu() ? std::string("device(type='cpu')")
                                 : "device(type='cuda', index=" + std::to_string(d.device.index) + ")";
      })
      .def("__eq__", [](const PyDevice& a, py::object b) {
        if (py::isinstance<py::str>(b)) return a.device == Device::parse(b.cast<std::string>());
        return py::isinstance<PyDevice>(b) && a.device == b.cast<PyDevice>().device;
      })
      .def("__hash__", [](const PyDevice& d) { return static_cast<int>(d.device.type) * 64 + d.device.index; });
}

}  // namespace

py::object dtype_object(ScalarType t) { return g_dtype_objects[static_cast<int>(t)]; }
py::class_<Tensor>& tensor_class() { return *g_tensor_class; }

DimVector to_dims(py::handle obj, const char* op) {
  try {
    return obj.cast<DimVector>();
  } catch (const py::cast_error&) {
    fail(ErrorKind::Type, "[", op, "] expected an int or a sequence of ints, got ",
         std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
}

DimVector sizes_or_kw(const py::args& args, py::handle size, const char* op) {
  if (!size.is_none()) {
    EMBER_CHECK_TYPE(args.size() == 0, "[", op, "] got sizes both positionally and as size=");
    return to_dims(size, op);
  }
  if (args.size() == 1 && !PyLong_Check(args[0].ptr())) return to_dims(args[0], op);
  DimVector out;
  for (auto a : args) {
    EMBER_CHECK_TYPE(PyLong_Check(a.ptr()) || PyObject_HasAttrString(a.ptr(), "__index__"), "[", op,
                     "] sizes must be ints, got ", std::string(py::str(py::type::of(a).attr("__name__"))));
    out.push_back(PyNumber_AsSsize_t(a.ptr(), nullptr));
  }
  return out;
}

std::vector<Tensor> tensor_list(py::handle seq, const char* op) {
  EMBER_CHECK_TYPE(py::isinstance<py::sequence>(seq) && !py::isinstance<Tensor>(seq), "[", op,
                   "] expected a sequence of Tensors");
  std::vector<Tensor> out;
  for (auto item : py::reinterpret_borrow<py::sequence>(seq)) {
    EMBER_CHECK_TYPE(py::isinstance<Tensor>(item), "[", op, "] expected Tensor as element ", out.size(),
                     " in argument 0, but got ", std::string(py::str(py::type::of(item).attr("__name__"))));
    out.push_back(item.cast<Tensor>());
  }
  return out;
}

std::vector<Tensor> optional_tensor_list(py::handle seq) {
  std::vector<Tensor> out;
  for (auto item : py::reinterpret_borrow<py::sequence>(seq))
    out.push_back(item.is_none() ? Tensor() : item.cast<Tensor>());
  return out;
}

Generator* generator_of(py::handle gen) {
  if (gen.is_none()) return nullptr;
  return gen.cast<std::shared_ptr<Generator>>().get();
}

py::tuple to_tuple(const std::vector<Tensor>& ts) { return py::tuple(py::cast(ts)); }

void register_return_type(py::module_& m, const char* name, const char* fields) {
  if (!py::hasattr(m, "return_types")) *g_return_types = m.def_submodule("return_types", "namedtuple result types");
  py::object type = py::module_::import("collections").attr("namedtuple")(name, fields);
  type.attr("__module__") = "ember.return_types";
  g_return_types->attr(name) = type;
}

py::object return_tuple(const char* name, const std::pair<Tensor, Tensor>& r) {
  return g_return_types->attr(name)(py::cast(r.first), py::cast(r.second));
}

void bind_tensor_core(py::module_& m) {
  auto& t = tensor_class();
  const std::pair<const char*, ScalarType> casts[] = {
      {"float", ScalarType::Float32}, {"double", ScalarType::Float64}, {"half", ScalarType::Float16},
      {"bfloat16", ScalarType::BFloat16}, {"long", ScalarType::Int64}, {"int", ScalarType::Int32},
      {"char", ScalarType::Int8}, {"byte", ScalarType::UInt8}, {"bool", ScalarType::Bool}};
  for (const auto& [name, dt] : casts) {
    const ScalarType d = dt;
    t.def(name, [d](const Tensor& x) { return to_dtype(x, d); });
  }
  t.def_property_readonly("shape", [](const Tensor& x) { return x.sizes(); })
      .def_property_readonly("ndim", &Tensor::dim)
      .def("__len__", [](const Tensor& x) {
        EMBER_CHECK_TYPE(x.dim() > 0, "[len] len() of a 0-d tensor");
        return x.sizes()[0];
      })
      .def_property_readonly("dtype", &Tensor::dtype)
      .def_property_readonly("device", &Tensor::device)
      .def_property_readonly("is_cuda", [](const Tensor& x) { return x.device().is_cuda(); })
      .def_property_readonly("itemsize", &Tensor::element_size)
      .def("data_ptr", [](const Tensor& x) { return reinterpret_cast<uintptr_t>(x.data_ptr()); })
      .def("_storage_ptr", [](const Tensor& x) { return reinterpret_cast<uintptr_t>(x.storage()->ptr()); })
      .def_property_readonly("_version", [](const Tensor& x) { return x.version(); })
      .def_property("requires_grad", &Tensor::requires_grad,
                    [](Tensor& x, bool r) { x.set_requires_grad(r); })
      .def_property_readonly("is_leaf", &Tensor::is_leaf)
      .def_property("grad", [](const Tensor& x) -> py::object {
        Tensor g = x.grad();
        return g.defined() ? py::cast(g) : py::none();
      }, [](const Tensor& x, py::object g) { x.set_grad(g.is_none() ? Tensor() : g.cast<Tensor>()); })
      .def("_is_view", [](const Tensor& x) { return x.impl()->is_view; })
      .def("_is_same", &Tensor::is_same)
      .def("backward", [](const Tensor& x, py::object gradient, py::object retain_graph, bool create_graph) {
        Tensor g = gradient.is_none() ? Tensor() : gradient.cast<Tensor>();
        bool retain = retain_graph.is_none() ? create_graph : retain_graph.cast<bool>();
        py::gil_scoped_acquire gil;
        ember::backward({x}, {g}, retain, create_graph);
      }, py::arg("gradient") = py::none(), py::arg("retain_graph") = py::none(), py::arg("create_graph") = false);

  m.def("is_grad_enabled", &GradMode::is_enabled);
  m.def("_set_grad_enabled", &GradMode::set_enabled);
  m.def("is_inference_mode_enabled", &InferenceMode::is_enabled);
  m.def("_set_inference_mode", &InferenceMode::set_enabled);
  m.def("get_num_threads", &get_num_threads);
  m.def("set_num_threads", &set_num_threads);
  m.def("parallel_info", &parallel_info, "ember's CPU thread pool: threads, wait policy, regions run");
  m.def("_parallel_settings", [] {
    const ParallelSettings s = parallel_settings();
    return py::dict(py::arg("num_threads") = s.num_threads, py::arg("wait_policy") = wait_policy_name(s.wait_policy), py::arg("spin_us") = s.spin_us,
                    py::arg("workers_started") = s.workers_started, py::arg("regions") = s.regions,
                    py::arg("contention_events") = s.contention_events, py::arg("contended") = s.contended);
  });
}

}  // namespace ember::python

PYBIND11_MODULE(_C, m) {
  using namespace ember::python;
  m.doc() = "ember's C++ core";
  register_exceptions(m);
  bind_dtypes(m);
  bind_devices(m);
  // Leaked on purpose: destroying it after interpreter shutdown would touch a dead interpreter.
  g_tensor_class = new py::class_<ember::Tensor>(m, "Tensor", py::dynamic_attr());
  bind_generated(m);
  bind_tensor_core(m);
  bind_index(m);
  bind_random(m);
  bind_autograd(m);
  bind_interop(m);
  bind_cuda(m);
  bind_attention(m);
}
