// ember.empty/zeros/ones/full/*_like/arange/linspace/eye and Tensor.new_* (torch-style signatures:
// sizes as varargs or one sequence; keyword-only dtype=, device=, requires_grad=).
#include "ops/ops.h"
#include "python/bindings.h"

namespace ember::python {
namespace {

std::optional<ScalarType> opt_dtype(const py::object& dtype) {
  if (dtype.is_none()) return std::nullopt;
  return dtype.cast<ScalarType>();
}
std::optional<Device> opt_device(const py::object& device) {
  if (device.is_none()) return std::nullopt;
  return device.cast<Device>();
}
Tensor finish(Tensor t, bool requires_grad) {
  if (requires_grad) t.set_requires_grad(true);
  return t;
}
// Sizes from varargs, or from the size= keyword when no varargs are given.
DimVector factory_sizes(const py::args& args, const py::object& size, const char* op) {
  if (!size.is_none()) {
    EMBER_CHECK_TYPE(args.size() == 0, "[", op, "] got sizes both positionally and as size=");
    return to_dims(size, op);
  }
  return sizes_from_args(args, op);
}
// torch.full's dtype inference from the fill value: bool, int64 or the default float dtype.
ScalarType dtype_of_fill(const Scalar& v) {
  return v.is_bool() ? ScalarType::Bool : v.is_int() ? ScalarType::Int64 : default_float_type();
}

using SizedFactory = Tensor (*)(IntSpan, ScalarType, Device);

void def_sized(py::module_& m, const char* name, SizedFactory fn) {
  m.def(name, [fn, name](py::args args, py::object size, py::object dtype, py::object device, bool requires_grad) {
    DimVector sizes = factory_sizes(args, size, name);
    return finish(fn(sizes, opt_dtype(dtype).value_or(default_float_type()), opt_device(device).value_or(Device())),
                  requires_grad);
  }, py::kw_only(), py::arg("size") = py::none(), py::arg("dtype") = py::none(), py::arg("device") = py::none(),
     py::arg("requires_grad") = false);
}

void def_like(py::module_& m, const char* name, SizedFactory fn) {
  m.def(name, [fn](const Tensor& x, py::object dtype, py::object device, bool requires_grad) {
    return finish(fn(x.sizes(), opt_dtype(dtype).value_or(x.dtype()), opt_device(device).value_or(x.device())),
                  requires_grad);
  }, py::arg("input"), py::kw_only(), py::arg("dtype") = py::none(), py::arg("device") = py::none(),
     py::arg("requires_grad") = false);
}

void def_new(const char* name, SizedFactory fn) {
  tensor_class().def(name, [fn, name](const Tensor& x, py::args args, py::object size, py::object dtype,
                                      py::object device, bool requires_grad) {
    DimVector sizes = factory_sizes(args, size, name);
    return finish(fn(sizes, opt_dtype(dtype).value_or(x.dtype()), opt_device(device).value_or(x.device())),
                  requires_grad);
  }, py::kw_only(), py::arg("size") = py::none(), py::arg("dtype") = py::none(), py::arg("device") = py::none(),
     py::arg("requires_grad") = false);
}

Tensor full_any(IntSpan sizes, const Scalar& value, const py::object& dtype, const py::object& device) {
  return full(sizes, value, opt_dtype(dtype).value_or(dtype_of_fill(value)), opt_device(device).value_or(Device()));
}

}  // namespace

void bind_factory(py::module_& m) {
  def_sized(m, "empty", &empty);
  def_sized(m, "zeros", &zeros);
  def_sized(m, "ones", &ones);
  def_like(m, "empty_like", &empty);
  def_like(m, "zeros_like", &zeros);
  def_like(m, "ones_like", &ones);
  def_new("new_empty", &empty);
  def_new("new_zeros", &zeros);
  def_new("new_ones", &ones);

  m.def("full", [](py::object size, Scalar value, py::object dtype, py::object device, bool requires_grad) {
    return finish(full_any(to_dims(size, "full"), value, dtype, device), requires_grad);
  }, py::arg("size"), py::arg("fill_value"), py::kw_only(), py::arg("dtype") = py::none(),
     py::arg("device") = py::none(), py::arg("requires_grad") = false);
  m.def("full_like", [](const Tensor& x, Scalar value, py::object dtype, py::object device, bool requires_grad) {
    return finish(full(x.sizes(), value, opt_dtype(dtype).value_or(x.dtype()), opt_device(device).value_or(x.device())),
                  requires_grad);
  }, py::arg("input"), py::arg("fill_value"), py::kw_only(), py::arg("dtype") = py::none(),
     py::arg("device") = py::none(), py::arg("requires_grad") = false);
  tensor_class().def("new_full", [](const Tensor& x, py::object size, Scalar value, py::object dtype,
                                    py::object device, bool requires_grad) {
    return finish(full(to_dims(size, "new_full"), value, opt_dtype(dtype).value_or(x.dtype()),
                       opt_device(device).value_or(x.device())), requires_grad);
  }, py::arg("size"), py::arg("fill_value"), py::kw_only(), py::arg("dtype") = py::none(),
     py::arg("device") = py::none(), py::arg("requires_grad") = false);
  m.def("empty_strided", [](py::object size, py::object stride, py::object dtype, py::object device,
                            bool requires_grad) {
    return finish(Tensor::empty_strided(to_dims(size, "empty_strided"), to_dims(stride, "empty_strided"),
                                        opt_dtype(dtype).value_or(default_float_type()),
                                        opt_device(device).value_or(Device())), requires_grad);
  }, py::arg("size"), py::arg("stride"), py::kw_only(), py::arg("dtype") = py::none(),
     py::arg("device") = py::none(), py::arg("requires_grad") = false);
  m.def("scalar_tensor", [](Scalar value, py::object dtype, py::object device, bool requires_grad) {
    return finish(scalar_tensor(value, opt_dtype(dtype).value_or(default_float_type()),
                                opt_device(device).value_or(Device())), requires_grad);
  }, py::arg("s"), py::kw_only(), py::arg("dtype") = py::none(), py::arg("device") = py::none(),
     py::arg("requires_grad") = false);

  // arange(end), arange(start, end), arange(start, end, step); start/end/step also as keywords.
  m.def("arange", [](py::args args, py::object start, py::object end, py::object step, py::object dtype,
                     py::object device, bool requires_grad) {
    EMBER_CHECK_TYPE(args.size() <= 3, "[arange] takes at most 3 positional arguments, got ", args.size());
    std::vector<Scalar> pos;
    for (auto a : args) pos.push_back(a.cast<Scalar>());
    Scalar s = int64_t{0}, e, st = int64_t{1};
    if (pos.size() == 1) e = pos[0];
    if (pos.size() >= 2) { s = pos[0]; e = pos[1]; }
    if (pos.size() == 3) st = pos[2];
    if (!start.is_none()) s = start.cast<Scalar>();
    if (!end.is_none()) e = end.cast<Scalar>();
    if (!step.is_none()) st = step.cast<Scalar>();
    EMBER_CHECK_TYPE(!pos.empty() || !end.is_none(), "[arange] missing required argument 'end'");
    return finish(arange(s, e, st, opt_dtype(dtype), opt_device(device).value_or(Device())), requires_grad);
  }, py::kw_only(), py::arg("start") = py::none(), py::arg("end") = py::none(), py::arg("step") = py::none(),
     py::arg("dtype") = py::none(), py::arg("device") = py::none(), py::arg("requires_grad") = false);
  m.def("linspace", [](Scalar start, Scalar end, int64_t steps, py::object dtype, py::object device,
                       bool requires_grad) {
    return finish(linspace(start, end, steps, opt_dtype(dtype).value_or(default_float_type()),
                           opt_device(device).value_or(Device())), requires_grad);
  }, py::arg("start"), py::arg("end"), py::arg("steps"), py::kw_only(), py::arg("dtype") = py::none(),
     py::arg("device") = py::none(), py::arg("requires_grad") = false);
  m.def("eye", [](int64_t n, py::object mobj, py::object dtype, py::object device, bool requires_grad) {
    int64_t cols = mobj.is_none() ? n : mobj.cast<int64_t>();
    return finish(eye(n, cols, opt_dtype(dtype).value_or(default_float_type()), opt_device(device).value_or(Device())),
                  requires_grad);
  }, py::arg("n"), py::arg("m") = py::none(), py::kw_only(), py::arg("dtype") = py::none(),
     py::arg("device") = py::none(), py::arg("requires_grad") = false);
}

}  // namespace ember::python
