// Python face of the autograd engine: grad_fn objects, tensor hooks, retain_grad, the
// backward/grad entry points, and PyNode, the graph node of a custom ember.autograd.Function.
#include <sstream>

#include "autograd/custom_function.h"
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "ops/ops.h"
#include "python/bindings.h"

namespace ember::python {
namespace {

// Owns a Python object from C++ structures that may die without the GIL held (a tensor freed
// inside a GIL-released region): the decref takes the GIL, and is skipped after finalization.
struct PyRef {
  explicit PyRef(py::object o) : obj(o.release().ptr()) {}
  PyRef(const PyRef&) = delete;
  PyRef& operator=(const PyRef&) = delete;
  ~PyRef() {
    if (!obj || !Py_IsInitialized()) return;
    PyGILState_STATE s = PyGILState_Ensure();
    Py_DECREF(obj);
    PyGILState_Release(s);
  }
  py::handle get() const { return obj; }
  PyObject* obj;
};

std::function<Tensor(const Tensor&)> wrap_hook(py::function fn) {
  auto ref = std::make_shared<PyRef>(std::move(fn));
  return [ref](const Tensor& g) -> Tensor {
    py::gil_scoped_acquire gil;
    py::object r = ref->get()(g);
    if (r.is_none()) return Tensor();
    EMBER_CHECK_TYPE(py::isinstance<Tensor>(r), "[register_hook] hook must return None or a Tensor, got ",
                     std::string(py::str(py::type::of(r).attr("__name__"))));
    Tensor out = r.cast<Tensor>();
    EMBER_CHECK(out.sizes() == g.sizes(), "[register_hook] hook returned a gradient of shape ", out.sizes(),
                " but the gradient has shape ", g.sizes());
    return out;
  };
}

// What register_hook returns: .remove() disables the hook (idempotent).
struct RemovableHandle {
  std::function<void()> remover;
  void remove() {
    if (remover) remover();
    remover = nullptr;
  }
};

// Note [PyNode]: the backward node of a custom Function. It holds the Function's backward (a
// Python callable) and ctx; next_edges has one entry per forward argument (invalid for non-tensor
// arguments or ones not requiring grad), because backward returns one gradient per argument.
struct PyNode final : FunctionNode {
  PyNode(py::object backward, py::object ctx, std::string fn_name, bool materialize)
      : backward_fn(std::move(backward)), ctx(std::move(ctx)), fn_name(std::move(fn_name)),
        materialize_grads(materialize) {}
  std::string name() const override { return fn_name + "Backward"; }

  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    py::gil_scoped_acquire gil;
    py::tuple args(grads.size() + 1);
    args[0] = py::reinterpret_borrow<py::object>(ctx.get());
    for (size_t i = 0; i < grads.size(); ++i) {
      if (grads[i].defined()) args[i + 1] = py::cast(grads[i]);
      else if (materialize_grads) args[i + 1] = py::cast(zeros(outputs[i].sizes, outputs[i].dtype, outputs[i].device));
      else args[i + 1] = py::none();
    }
    py::object result = backward_fn.get()(*args);
    py::tuple res = py::isinstance<py::tuple>(result) ? result.cast<py::tuple>() : py::make_tuple(result);
    const size_t expected = next_edges.size();
    size_t got = res.size();
    // torch tolerates trailing Nones beyond the forward's arity
    while (got > expected && res[got - 1].is_none()) --got;
    EMBER_CHECK(got == expected, "[", name(), "] function ", name(), " returned an incorrect number of gradients "
                "(expected ", expected, ", got ", res.size(), ")");
    std::vector<Tensor> out(expected);
    for (size_t i = 0; i < expected; ++i) {
      py::handle r = res[i];
      if (r.is_none()) continue;
      EMBER_CHECK_TYPE(is_tensor_arg[i], "[", name(), "] function ", name(), " returned a gradient different than "
                       "None at position ", i + 1, ", but the corresponding forward input was not a Tensor");
      EMBER_CHECK_TYPE(py::isinstance<Tensor>(r), "[", name(), "] function ", name(), " returned a ",
                       std::string(py::str(py::type::of(r).attr("__name__"))), " as gradient ", i,
                       "; expected a Tensor or None");
      if (next_edges[i].valid()) out[i] = input_grad(i, r.cast<Tensor>());
    }
    return out;
  }

  void release_saved() override {
    py::gil_scoped_acquire gil;
    if (py::hasattr(ctx.get(), "_release_saved")) ctx.get().attr("_release_saved")();
  }

  PyRef backward_fn;
  PyRef ctx;
  std::string fn_name;
  bool materialize_grads;
};

std::vector<Tensor> tensors_or_undefined(const py::sequence& seq) {
  std::vector<Tensor> out;
  for (auto item : seq) out.push_back(item.is_none() ? Tensor() : item.cast<Tensor>());
  return out;
}

py::object node_object(const std::shared_ptr<Node>& n) { return n ? py::cast(n) : py::none(); }

}  // namespace

void bind_autograd(py::module_& m) {
  py::class_<Node, std::shared_ptr<Node>>(m, "_Node")
      .def("name", &Node::name)
      .def_property_readonly("next_functions", [](const Node& n) {
        py::tuple t(n.next_edges.size());
        for (size_t i = 0; i < n.next_edges.size(); ++i)
          t[i] = py::make_tuple(node_object(n.next_edges[i].fn), n.next_edges[i].input_nr);
        return t;
      })
      .def_property_readonly("variable", [](const Node& n) -> py::object {
        auto* acc = dynamic_cast<const AccumulateGrad*>(&n);
        EMBER_CHECK_KIND(acc != nullptr, ErrorKind::Type, "[grad_fn] only AccumulateGrad nodes have .variable, not ",
                         n.name());
        return py::cast(acc->variable);
      })
      .def("__repr__", [](const Node& n) {
        std::ostringstream os;
        os << "<" << n.name() << " object at " << static_cast<const void*>(&n) << ">";
        return os.str();
      });

  py::class_<RemovableHandle>(m, "_RemovableHandle")
      .def("remove", &RemovableHandle::remove)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](RemovableHandle& h, py::args) { h.remove(); });

  auto& t = tensor_class();
  t.def_property_readonly("grad_fn", [](const Tensor& x) { return node_object(x.grad_fn()); })
      .def_property_readonly("output_nr", &Tensor::output_nr)
      .def("register_hook", [](const Tensor& x, py::function fn) {
        return RemovableHandle{x.register_hook(wrap_hook(std::move(fn)))};
      }, py::arg("hook"))
      .def("register_post_accumulate_grad_hook", [](const Tensor& x, py::function fn) {
        auto ref = std::make_shared<PyRef>(std::move(fn));
        return RemovableHandle{x.register_post_accumulate_grad_hook([ref](const Tensor& variable) {
          py::gil_scoped_acquire gil;
          ref->get()(variable);
        })};
      }, py::arg("hook"))
      .def("retain_grad", &Tensor::retain_grad)
      .def_property_readonly("retains_grad", &Tensor::retains_grad);

  m.def("_autograd_backward", [](const py::sequence& tensors, const py::sequence& grads, bool retain_graph,
                                  bool create_graph) {
    ember::backward(tensors_or_undefined(tensors), tensors_or_undefined(grads), retain_graph, create_graph);
  });
  m.def("_autograd_grad", [](const py::sequence& outputs, const py::sequence& grad_outputs,
                              const py::sequence& inputs, bool retain_graph, bool create_graph, bool allow_unused) {
    std::vector<Tensor> res = ember::grad(tensors_or_undefined(outputs), tensors_or_undefined(grad_outputs),
                                          tensors_or_undefined(inputs), retain_graph, create_graph, allow_unused);
    py::list out;
    for (auto& r : res) out.append(r.defined() ? py::cast(r) : py::none());
    return out;
  });

  // Records a custom Function's node as the producer of `outputs` (see Note [PyNode]). Returns the
  // outputs, with any output that is one of the inputs replaced by an alias (the input keeps its
  // own history; torch does the same).
  m.def("_create_function_node", [](py::object backward_fn, py::object ctx, const std::string& fn_name,
                                     const py::sequence& args, const py::sequence& outputs,
                                     const py::sequence& non_differentiable, bool materialize_grads) {
    auto node = std::make_shared<PyNode>(backward_fn, ctx, fn_name, materialize_grads);
    std::vector<Tensor> in;
    for (auto a : args) in.push_back(py::isinstance<Tensor>(a) ? a.cast<Tensor>() : Tensor());
    std::vector<Tensor> outs = wrap_function_outputs(node, in, tensors_or_undefined(outputs),
                                                     tensors_or_undefined(non_differentiable));
    py::list result;
    for (auto& o : outs) result.append(py::cast(o));
    return result;
  });
}

}  // namespace ember::python
