// Python bindings of the elementwise family: ember.<op> functions, Tensor methods, operators
// (+ - * / // % ** unary - abs == != < <= > >= & | ^ ~, reflected and in-place forms) and the
// conversions (.to, .float(), .clone(), .copy_(), ...). Python numbers become ew::Operand numbers,
// so promotion treats them as torch's wrapped numbers.
#include "ops/elementwise.h"
#include "python/bindings.h"

namespace pybind11::detail {
// ew::Operand from an ember.Tensor or a Python number (tensor first: the common, fast case).
template <> struct type_caster<ember::ew::Operand> {
  PYBIND11_TYPE_CASTER(ember::ew::Operand, const_name("Tensor | Number"));
  type_caster() : value(ember::Scalar()) {}
  bool load(handle src, bool convert) {
    make_caster<ember::Tensor> tc;
    if (tc.load(src, convert)) { value = ember::ew::Operand(cast_op<ember::Tensor&>(tc)); return true; }
    make_caster<ember::Scalar> sc;
    if (sc.load(src, convert)) { value = ember::ew::Operand(cast_op<ember::Scalar&>(sc)); return true; }
    return false;
  }
  static handle cast(const ember::ew::Operand& o, return_value_policy p, handle parent) {
    if (o.is_number()) return make_caster<ember::Scalar>::cast(o.scalar, p, parent);
    return make_caster<ember::Tensor>::cast(o.tensor, p, parent);
  }
};
}  // namespace pybind11::detail

namespace ember::python {
namespace {

using ew::Operand;
using Opt = std::optional<Operand>;

struct UnaryName { const char* name; OpId id; };
constexpr UnaryName kUnary[] = {
    {"neg", OpId::neg}, {"negative", OpId::neg}, {"abs", OpId::abs}, {"sign", OpId::sign}, {"exp", OpId::exp},
    {"exp2", OpId::exp2}, {"expm1", OpId::expm1}, {"log", OpId::log}, {"log2", OpId::log2},
    {"log1p", OpId::log1p}, {"sqrt", OpId::sqrt}, {"rsqrt", OpId::rsqrt}, {"sin", OpId::sin},
    {"cos", OpId::cos}, {"tan", OpId::tan}, {"tanh", OpId::tanh}, {"sigmoid", OpId::sigmoid},
    {"relu", OpId::relu}, {"silu", OpId::silu}, {"erf", OpId::erf}, {"floor", OpId::floor},
    {"ceil", OpId::ceil}, {"round", OpId::round}, {"trunc", OpId::trunc}, {"isnan", OpId::isnan},
    {"isinf", OpId::isinf}, {"isfinite", OpId::isfinite}, {"logical_not", OpId::logical_not},
    {"bitwise_not", OpId::bitwise_not},
};
// Unary ops that have an in-place method (x.exp_()).
constexpr UnaryName kUnaryInplace[] = {
    {"neg_", OpId::neg}, {"negative_", OpId::neg}, {"abs_", OpId::abs}, {"sign_", OpId::sign},
    {"exp_", OpId::exp}, {"exp2_", OpId::exp2}, {"expm1_", OpId::expm1}, {"log_", OpId::log},
    {"log2_", OpId::log2}, {"log1p_", OpId::log1p}, {"sqrt_", OpId::sqrt}, {"rsqrt_", OpId::rsqrt},
    {"sin_", OpId::sin}, {"cos_", OpId::cos}, {"tan_", OpId::tan}, {"tanh_", OpId::tanh},
    {"sigmoid_", OpId::sigmoid}, {"relu_", OpId::relu}, {"silu_", OpId::silu}, {"erf_", OpId::erf},
    {"floor_", OpId::floor}, {"ceil_", OpId::ceil}, {"round_", OpId::round}, {"trunc_", OpId::trunc},
    {"logical_not_", OpId::logical_not}, {"bitwise_not_", OpId::bitwise_not},
};
struct BinaryName { const char* name; OpId id; };
constexpr BinaryName kBinary[] = {
    {"mul", OpId::mul}, {"multiply", OpId::mul}, {"true_divide", OpId::div}, {"floor_divide", OpId::floor_divide},
    {"pow", OpId::pow}, {"maximum", OpId::maximum}, {"minimum", OpId::minimum}, {"eq", OpId::eq},
    {"ne", OpId::ne}, {"not_equal", OpId::ne}, {"lt", OpId::lt}, {"less", OpId::lt}, {"le", OpId::le},
    {"less_equal", OpId::le}, {"gt", OpId::gt}, {"greater", OpId::gt}, {"ge", OpId::ge},
    {"greater_equal", OpId::ge}, {"logical_and", OpId::logical_and}, {"logical_or", OpId::logical_or},
    {"logical_xor", OpId::logical_xor}, {"bitwise_and", OpId::bitwise_and}, {"bitwise_or", OpId::bitwise_or},
    {"bitwise_xor", OpId::bitwise_xor},
};
constexpr BinaryName kBinaryInplace[] = {
    {"mul_", OpId::mul}, {"multiply_", OpId::mul}, {"floor_divide_", OpId::floor_divide}, {"pow_", OpId::pow},
    {"bitwise_and_", OpId::bitwise_and}, {"bitwise_or_", OpId::bitwise_or}, {"bitwise_xor_", OpId::bitwise_xor},
};

// torch.div's rounding_mode: None (true division), "trunc" or "floor".
Tensor div_mode(const Operand& a, const Operand& b, const py::object& mode) {
  if (mode.is_none()) return ew::div(a, b);
  const std::string m = mode.cast<std::string>();
  if (m == "floor") return ew::floor_divide(a, b);
  EMBER_CHECK_VALUE(m == "trunc", "[div] expected rounding_mode to be one of None, 'trunc', or 'floor' but found '",
                    m, "'");
  const ScalarType rt = ew::result_type({&a, &b});
  Tensor q = ew::div(a, b);
  return is_floating(rt) ? trunc(q) : to_dtype(trunc(q), rt);
}

Tensor& inplace_result(Tensor& self, const Tensor& r) {
  // Composite in-place ops (trunc division, clamp with tensor bounds) copy their result back.
  return copy_(self, r);
}

Tensor to_any(const Tensor& x, const py::args& args, const py::kwargs& kwargs) {
  std::optional<ScalarType> dtype;
  std::optional<Device> device;
  bool copy = false, non_blocking = false;
  for (auto a : args) {
    if (py::isinstance<DType>(a)) dtype = a.cast<ScalarType>();
    else if (py::isinstance<py::str>(a) || py::isinstance<PyDevice>(a)) device = a.cast<Device>();
    else if (py::isinstance<Tensor>(a)) { const Tensor& o = a.cast<const Tensor&>(); dtype = o.dtype(); device = o.device(); }
    else if (py::isinstance<py::bool_>(a)) non_blocking = a.cast<bool>();  // to(device, non_blocking)
    else fail(ErrorKind::Type, "[to] expected a dtype, device or tensor, got ",
              std::string(py::str(py::type::of(a).attr("__name__"))));
  }
  for (auto kv : kwargs) {
    const std::string k = kv.first.cast<std::string>();
    if (k == "dtype") { if (!kv.second.is_none()) dtype = kv.second.cast<ScalarType>(); }
    else if (k == "device") { if (!kv.second.is_none()) device = kv.second.cast<Device>(); }
    else if (k == "copy") copy = kv.second.cast<bool>();
    else if (k == "non_blocking") non_blocking = kv.second.cast<bool>();
    else if (k == "memory_format") {}
    else fail(ErrorKind::Type, "[to] got an unexpected keyword argument '", k, "'");
  }
  Tensor r = x;
  // non_blocking: a pinned-host <-> device copy stays asynchronous on the current stream.
  if (device && *device != r.device()) r = to_device(r, *device, non_blocking);
  if (dtype) r = to_dtype(r, *dtype, copy && r.is_same(x));
  else if (copy && r.is_same(x)) r = clone(r);
  return r;
}

void bind_conversions(py::class_<Tensor>& t) {
  t.def("to", &to_any);
  const std::pair<const char*, ScalarType> casts[] = {
      {"float", ScalarType::Float32}, {"double", ScalarType::Float64}, {"half", ScalarType::Float16},
      {"bfloat16", ScalarType::BFloat16}, {"long", ScalarType::Int64}, {"int", ScalarType::Int32},
      {"char", ScalarType::Int8}, {"byte", ScalarType::UInt8}, {"bool", ScalarType::Bool}};
  for (const auto& [name, dt] : casts) {
    const ScalarType d = dt;
    t.def(name, [d](const Tensor& x) { return to_dtype(x, d); });
  }
  t.def("type_as", [](const Tensor& x, const Tensor& o) { return to_dtype(x, o.dtype()); });
  t.def("cpu", [](const Tensor& x) { return to_device(x, Device()); });
  t.def("clone", [](const Tensor& x, py::object) { return clone(x); }, py::arg("memory_format") = py::none());
  t.def("contiguous", [](const Tensor& x, py::object) { return contiguous(x); }, py::arg("memory_format") = py::none());
  t.def("copy_", [](Tensor& x, const Tensor& src, bool) -> Tensor { return copy_(x, src); }, py::arg("src"),
        py::arg("non_blocking") = false);
  t.def("fill_", [](Tensor& x, Scalar v) -> Tensor { return fill_(x, v); });
  t.def("fill_", [](Tensor& x, const Tensor& v) -> Tensor {
    EMBER_CHECK(v.dim() == 0, "[fill_] only supports 0-dimension value tensor but got tensor with ", v.dim(),
                " dimensions.");
    return copy_(x, v);
  });
  t.def("zero_", [](Tensor& x) -> Tensor { return zero_(x); });
}

void bind_functions(py::module_& m) {
  m.def("add", [](const Operand& a, const Operand& b, Scalar alpha) { return ew::add(a, b, alpha); },
        py::arg("input"), py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  m.def("sub", [](const Operand& a, const Operand& b, Scalar alpha) { return ew::sub(a, b, alpha); },
        py::arg("input"), py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  m.def("subtract", [](const Operand& a, const Operand& b, Scalar alpha) { return ew::sub(a, b, alpha); },
        py::arg("input"), py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  m.def("rsub", [](const Operand& a, const Operand& b, Scalar alpha) { return ew::sub(b, a, alpha); },
        py::arg("input"), py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  for (const char* name : {"div", "divide"})
    m.def(name, &div_mode, py::arg("input"), py::arg("other"), py::kw_only(), py::arg("rounding_mode") = py::none());
  m.def("remainder", [](const Operand& a, const Operand& b) { return ew::remainder(a, b); });
  for (const auto& [name, id] : kBinary) {
    const OpId op = id;
    m.def(name, [op](const Operand& a, const Operand& b) { return ew::binary(op, a, b); },
          py::arg("input"), py::arg("other"));
  }
  m.def("result_type", [](const Operand& a, const Operand& b) { return ew::result_type({&a, &b}); });
  m.def("lerp", [](const Tensor& a, const Tensor& end, const Operand& w) { return ew::lerp(a, end, w); },
        py::arg("input"), py::arg("end"), py::arg("weight"));
  m.def("where", [](const Tensor& c, const Operand& a, const Operand& b) { return ew::where(c, a, b); },
        py::arg("condition"), py::arg("input"), py::arg("other"));
  m.def("clamp", [](const Tensor& x, const Opt& lo, const Opt& hi) { return ew::clamp(x, lo, hi); },
        py::arg("input"), py::arg("min") = py::none(), py::arg("max") = py::none());
  m.def("clip", [](const Tensor& x, const Opt& lo, const Opt& hi) { return ew::clamp(x, lo, hi); },
        py::arg("input"), py::arg("min") = py::none(), py::arg("max") = py::none());
  m.def("clamp_min", [](const Tensor& x, const Operand& lo) { return ew::clamp(x, lo, std::nullopt); });
  m.def("clamp_max", [](const Tensor& x, const Operand& hi) { return ew::clamp(x, std::nullopt, hi); });
  for (const auto& [name, id] : kUnary) {
    const OpId op = id;
    m.def(name, [op](const Tensor& x) { return ew::unary(op, x); }, py::arg("input"));
  }
  m.def("gelu", [](const Tensor& x, const std::string& approximate) {
    EMBER_CHECK_VALUE(approximate == "none" || approximate == "tanh", "[gelu] approximate argument must be either "
                      "none or tanh, got '", approximate, "'");
    return gelu(x, approximate == "tanh");
  }, py::arg("input"), py::arg("approximate") = "none");
  m.def("softplus", [](const Tensor& x, Scalar beta, Scalar threshold) { return softplus(x, beta, threshold); },
        py::arg("input"), py::arg("beta") = 1, py::arg("threshold") = 20);
  m.def("leaky_relu", [](const Tensor& x, Scalar slope) { return leaky_relu(x, slope); },
        py::arg("input"), py::arg("negative_slope") = 0.01);
  m.def("nan_to_num", [](const Tensor& x, std::optional<double> nan, std::optional<double> posinf,
                         std::optional<double> neginf) { return nan_to_num(x, nan, posinf, neginf); },
        py::arg("input"), py::arg("nan") = 0.0, py::arg("posinf") = py::none(), py::arg("neginf") = py::none());
  m.def("square", [](const Tensor& x) { return square(x); });
  m.def("reciprocal", [](const Tensor& x) { return reciprocal(x); });
  m.def("clone", [](const Tensor& x) { return clone(x); });
}

void bind_methods(py::class_<Tensor>& t) {
  // Arithmetic methods with alpha.
  t.def("add", [](const Tensor& a, const Operand& b, Scalar alpha) { return ew::add(a, b, alpha); },
        py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  t.def("sub", [](const Tensor& a, const Operand& b, Scalar alpha) { return ew::sub(a, b, alpha); },
        py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  t.def("subtract", [](const Tensor& a, const Operand& b, Scalar alpha) { return ew::sub(a, b, alpha); },
        py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  t.def("add_", [](Tensor& a, const Operand& b, Scalar alpha) -> Tensor { return ew::inplace(OpId::add, a, b, alpha); },
        py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  t.def("sub_", [](Tensor& a, const Operand& b, Scalar alpha) -> Tensor { return ew::inplace(OpId::sub, a, b, alpha); },
        py::arg("other"), py::kw_only(), py::arg("alpha") = 1);
  for (const char* name : {"div", "divide"})
    t.def(name, [](const Tensor& a, const Operand& b, py::object mode) { return div_mode(a, b, mode); },
          py::arg("other"), py::kw_only(), py::arg("rounding_mode") = py::none());
  t.def("div_", [](Tensor& a, const Operand& b, py::object mode) -> Tensor {
    if (mode.is_none()) return ew::inplace(OpId::div, a, b);
    if (mode.cast<std::string>() == "floor") return ew::inplace(OpId::floor_divide, a, b);
    return inplace_result(a, div_mode(a, b, mode));
  }, py::arg("other"), py::kw_only(), py::arg("rounding_mode") = py::none());
  t.def("remainder", [](const Tensor& a, const Operand& b) { return ew::remainder(a, b); });
  for (const auto& [name, id] : kBinary) {
    const OpId op = id;
    t.def(name, [op](const Tensor& a, const Operand& b) { return ew::binary(op, a, b); }, py::arg("other"));
  }
  for (const auto& [name, id] : kBinaryInplace) {
    const OpId op = id;
    t.def(name, [op](Tensor& a, const Operand& b) -> Tensor { return ew::inplace(op, a, b); }, py::arg("other"));
  }
  t.def("lerp", [](const Tensor& a, const Tensor& end, const Operand& w) { return ew::lerp(a, end, w); });
  t.def("lerp_", [](Tensor& a, const Tensor& end, const Operand& w) -> Tensor {
    return inplace_result(a, ew::lerp(a, end, w));
  });
  t.def("where", [](const Tensor& x, const Tensor& c, const Operand& o) { return ew::where(c, x, o); });
  t.def("clamp", [](const Tensor& x, const Opt& lo, const Opt& hi) { return ew::clamp(x, lo, hi); },
        py::arg("min") = py::none(), py::arg("max") = py::none());
  t.def("clip", [](const Tensor& x, const Opt& lo, const Opt& hi) { return ew::clamp(x, lo, hi); },
        py::arg("min") = py::none(), py::arg("max") = py::none());
  t.def("clamp_min", [](const Tensor& x, const Operand& lo) { return ew::clamp(x, lo, std::nullopt); });
  t.def("clamp_max", [](const Tensor& x, const Operand& hi) { return ew::clamp(x, std::nullopt, hi); });
  t.def("clamp_", [](Tensor& x, const Opt& lo, const Opt& hi) -> Tensor {
    if ((lo && lo->is_number()) || (hi && hi->is_number()) || (!lo && !hi)) {
      if ((!lo || lo->is_number()) && (!hi || hi->is_number()))
        return clamp_(x, lo ? std::optional<Scalar>(lo->scalar) : std::nullopt,
                      hi ? std::optional<Scalar>(hi->scalar) : std::nullopt);
    }
    return inplace_result(x, ew::clamp(x, lo, hi));
  }, py::arg("min") = py::none(), py::arg("max") = py::none());
  t.def("clamp_min_", [](Tensor& x, Scalar lo) -> Tensor { return clamp_(x, lo, std::nullopt); });
  t.def("clamp_max_", [](Tensor& x, Scalar hi) -> Tensor { return clamp_(x, std::nullopt, hi); });
  for (const auto& [name, id] : kUnary) {
    const OpId op = id;
    t.def(name, [op](const Tensor& x) { return ew::unary(op, x); });
  }
  for (const auto& [name, id] : kUnaryInplace) {
    const OpId op = id;
    t.def(name, [op](Tensor& x) -> Tensor { return ew::unary_inplace(op, x); });
  }
  t.def("gelu", [](const Tensor& x, const std::string& approximate) { return gelu(x, approximate == "tanh"); },
        py::arg("approximate") = "none");
  t.def("softplus", [](const Tensor& x, Scalar beta, Scalar threshold) { return softplus(x, beta, threshold); },
        py::arg("beta") = 1, py::arg("threshold") = 20);
  t.def("nan_to_num", [](const Tensor& x, std::optional<double> nan, std::optional<double> posinf,
                         std::optional<double> neginf) { return nan_to_num(x, nan, posinf, neginf); },
        py::arg("nan") = 0.0, py::arg("posinf") = py::none(), py::arg("neginf") = py::none());
  t.def("square", [](const Tensor& x) { return square(x); });
  t.def("reciprocal", [](const Tensor& x) { return reciprocal(x); });
}

void bind_operators(py::class_<Tensor>& t) {
  // Tensor-Tensor overloads first: the common case resolves without trying the number caster.
  t.def("__add__", [](const Tensor& a, const Tensor& b) { return add(a, b); }, py::is_operator());
  t.def("__add__", [](const Tensor& a, const Operand& b) { return ew::add(a, b); }, py::is_operator());
  t.def("__radd__", [](const Tensor& a, const Operand& b) { return ew::add(b, a); }, py::is_operator());
  t.def("__sub__", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, py::is_operator());
  t.def("__sub__", [](const Tensor& a, const Operand& b) { return ew::sub(a, b); }, py::is_operator());
  t.def("__rsub__", [](const Tensor& a, const Operand& b) { return ew::sub(b, a); }, py::is_operator());
  t.def("__mul__", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, py::is_operator());
  t.def("__mul__", [](const Tensor& a, const Operand& b) { return ew::mul(a, b); }, py::is_operator());
  t.def("__rmul__", [](const Tensor& a, const Operand& b) { return ew::mul(b, a); }, py::is_operator());
  t.def("__truediv__", [](const Tensor& a, const Tensor& b) { return div(a, b); }, py::is_operator());
  t.def("__truediv__", [](const Tensor& a, const Operand& b) { return ew::div(a, b); }, py::is_operator());
  t.def("__rtruediv__", [](const Tensor& a, const Operand& b) { return ew::div(b, a); }, py::is_operator());
  t.def("__floordiv__", [](const Tensor& a, const Operand& b) { return ew::floor_divide(a, b); }, py::is_operator());
  t.def("__rfloordiv__", [](const Tensor& a, const Operand& b) { return ew::floor_divide(b, a); }, py::is_operator());
  t.def("__mod__", [](const Tensor& a, const Operand& b) { return ew::remainder(a, b); }, py::is_operator());
  t.def("__rmod__", [](const Tensor& a, const Operand& b) { return ew::remainder(b, a); }, py::is_operator());
  t.def("__pow__", [](const Tensor& a, const Operand& b) { return ew::pow(a, b); }, py::is_operator());
  t.def("__rpow__", [](const Tensor& a, const Operand& b) { return ew::pow(b, a); }, py::is_operator());
  const std::pair<const char*, OpId> cmp[] = {
      {"__eq__", OpId::eq}, {"__ne__", OpId::ne}, {"__lt__", OpId::lt}, {"__le__", OpId::le},
      {"__gt__", OpId::gt}, {"__ge__", OpId::ge}, {"__and__", OpId::bitwise_and}, {"__or__", OpId::bitwise_or},
      {"__xor__", OpId::bitwise_xor}, {"__rand__", OpId::bitwise_and}, {"__ror__", OpId::bitwise_or},
      {"__rxor__", OpId::bitwise_xor}};
  for (const auto& [name, id] : cmp) {
    const OpId op = id;
    t.def(name, [op](const Tensor& a, const Operand& b) { return ew::binary(op, a, b); }, py::is_operator());
  }
  t.def("__neg__", [](const Tensor& a) { return neg(a); });
  t.def("__abs__", [](const Tensor& a) { return abs(a); });
  t.def("__invert__", [](const Tensor& a) { return bitwise_not(a); });
  t.def("__pos__", [](const Tensor& a) { return a; });
  // In-place operators return self (Python rebinds the name to the result).
  const std::pair<const char*, OpId> iops[] = {
      {"__iadd__", OpId::add}, {"__isub__", OpId::sub}, {"__imul__", OpId::mul}, {"__itruediv__", OpId::div},
      {"__ifloordiv__", OpId::floor_divide}, {"__ipow__", OpId::pow}, {"__iand__", OpId::bitwise_and},
      {"__ior__", OpId::bitwise_or}, {"__ixor__", OpId::bitwise_xor}};
  for (const auto& [name, id] : iops) {
    const OpId op = id;
    t.def(name, [op](Tensor& a, const Operand& b) -> Tensor { return ew::inplace(op, a, b); }, py::is_operator());
  }
  // __eq__ makes Python drop the default hash; tensors hash by identity like torch's.
  t.def("__hash__", [](const Tensor& a) { return reinterpret_cast<intptr_t>(a.impl()); });
}

}  // namespace

void bind_elementwise(py::module_& m) {
  auto& t = tensor_class();
  bind_conversions(t);
  bind_functions(m);
  bind_methods(t);
  bind_operators(t);
}

}  // namespace ember::python
