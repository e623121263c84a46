// Python bindings of the reductions, scans, softmax and sorting: ember.sum(...) and x.sum(...).
// (values, indices) results are namedtuples like torch.return_types.max.
#include <cmath>

#include "ops/ops.h"
#include "python/bindings.h"

namespace ember::python {
namespace {

py::object* g_return_types = new py::object();  // ember.return_types; leaked: outlives the interpreter

py::object make_pair_result(const char* name, const Tensor& a, const Tensor& b) {
  return g_return_types->attr(name)(py::cast(a), py::cast(b));
}

DimVector opt_dims(const py::object& dim, const char* op) {
  if (dim.is_none()) return {};
  return to_dims(dim, op);
}

std::optional<int64_t> opt_dim(const py::object& dim) {
  if (dim.is_none()) return std::nullopt;
  return dim.cast<int64_t>();
}

std::optional<ScalarType> opt_dtype(const py::object& dtype) {
  if (dtype.is_none()) return std::nullopt;
  return dtype.cast<ScalarType>();
}

// var/std accept var(x, dim, unbiased, keepdim), var(x, unbiased) and var(x, dim, correction=c).
double resolve_correction(py::object& dim, const py::object& unbiased, const py::object& correction, const char* op) {
  if (py::isinstance<py::bool_>(dim)) {
    EMBER_CHECK_TYPE(unbiased.is_none(), "[", op, "] unbiased given twice");
    const bool u = dim.cast<bool>();
    dim = py::none();
    return u ? 1.0 : 0.0;
  }
  if (!correction.is_none()) {
    EMBER_CHECK_TYPE(unbiased.is_none(), "[", op, "] cannot specify both unbiased and correction");
    return correction.cast<double>();
  }
  if (!unbiased.is_none()) return unbiased.cast<bool>() ? 1.0 : 0.0;
  return 1.0;
}

double norm_p(const py::object& p) {
  if (p.is_none()) return 2.0;
  if (py::isinstance<py::str>(p)) {
    const std::string s = p.cast<std::string>();
    EMBER_CHECK_VALUE(s == "fro", "[norm] unsupported norm type '", s, "' (vector norms take 'fro' or a number)");
    return 2.0;
  }
  return p.cast<double>();
}

}  // namespace

void bind_reduce(py::module_& m) {
  auto& t = tensor_class();
  py::module_ rt = m.def_submodule("return_types", "namedtuple result types of (values, indices) ops");
  py::object namedtuple = py::module_::import("collections").attr("namedtuple");
  for (const char* name : {"max", "min", "sort", "topk", "var_mean", "std_mean"}) {
    const bool mean_pair = std::string(name).find("mean") != std::string::npos;
    py::object type = namedtuple(name, mean_pair ? "var mean" : "values indices");
    type.attr("__module__") = "ember.return_types";
    rt.attr(name) = type;
  }
  *g_return_types = rt;

  // Every op below is both a module function and a Tensor method with the same signature.
  auto both = [&](const char* name, auto fn, auto... extra) {
    m.def(name, fn, py::arg("input"), extra...);
    t.def(name, fn, extra...);
  };

  both("sum", [](const Tensor& x, py::object dim, bool keepdim, py::object dtype) {
    return sum(x, opt_dims(dim, "sum"), keepdim, opt_dtype(dtype));
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false, py::kw_only(), py::arg("dtype") = py::none());
  both("mean", [](const Tensor& x, py::object dim, bool keepdim, py::object dtype) {
    return mean(x, opt_dims(dim, "mean"), keepdim, opt_dtype(dtype));
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false, py::kw_only(), py::arg("dtype") = py::none());
  both("prod", [](const Tensor& x, py::object dim, bool keepdim, py::object dtype) {
    return prod(x, opt_dims(dim, "prod"), keepdim, opt_dtype(dtype));
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false, py::kw_only(), py::arg("dtype") = py::none());
  both("amax", [](const Tensor& x, py::object dim, bool keepdim) {
    return amax(x, opt_dims(dim, "amax"), keepdim);
  }, py::arg("dim") = py::tuple(), py::arg("keepdim") = false);
  both("amin", [](const Tensor& x, py::object dim, bool keepdim) {
    return amin(x, opt_dims(dim, "amin"), keepdim);
  }, py::arg("dim") = py::tuple(), py::arg("keepdim") = false);
  // max(x) -> value; max(x, dim, keepdim) -> (values, indices); max(x, other) -> maximum.
  both("max", [](const Tensor& x, py::object dim, bool keepdim) -> py::object {
    if (dim.is_none()) return py::cast(max_all(x));
    if (py::isinstance<Tensor>(dim)) return py::cast(maximum(x, dim.cast<Tensor>()));
    auto [v, i] = max_dim(x, dim.cast<int64_t>(), keepdim);
    return make_pair_result("max", v, i);
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both("min", [](const Tensor& x, py::object dim, bool keepdim) -> py::object {
    if (dim.is_none()) return py::cast(min_all(x));
    if (py::isinstance<Tensor>(dim)) return py::cast(minimum(x, dim.cast<Tensor>()));
    auto [v, i] = min_dim(x, dim.cast<int64_t>(), keepdim);
    return make_pair_result("min", v, i);
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both("argmax", [](const Tensor& x, py::object dim, bool keepdim) {
    return argmax(x, opt_dim(dim), keepdim);
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both("argmin", [](const Tensor& x, py::object dim, bool keepdim) {
    return argmin(x, opt_dim(dim), keepdim);
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false);

  both("var", [](const Tensor& x, py::object dim, py::object unbiased, bool keepdim, py::object correction) {
    const double c = resolve_correction(dim, unbiased, correction, "var");
    return var(x, opt_dims(dim, "var"), c, keepdim);
  }, py::arg("dim") = py::none(), py::arg("unbiased") = py::none(), py::arg("keepdim") = false,
     py::kw_only(), py::arg("correction") = py::none());
  both("std", [](const Tensor& x, py::object dim, py::object unbiased, bool keepdim, py::object correction) {
    const double c = resolve_correction(dim, unbiased, correction, "std");
    return std_dev(x, opt_dims(dim, "std"), c, keepdim);
  }, py::arg("dim") = py::none(), py::arg("unbiased") = py::none(), py::arg("keepdim") = false,
     py::kw_only(), py::arg("correction") = py::none());
  m.def("var_mean", [](const Tensor& x, py::object dim, py::object unbiased, bool keepdim, py::object correction) {
    const double c = resolve_correction(dim, unbiased, correction, "var_mean");
    auto [v, mu] = var_mean(x, opt_dims(dim, "var_mean"), c, keepdim);
    return py::make_tuple(v, mu);
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("unbiased") = py::none(), py::arg("keepdim") = false,
     py::kw_only(), py::arg("correction") = py::none());
  m.def("std_mean", [](const Tensor& x, py::object dim, py::object unbiased, bool keepdim, py::object correction) {
    const double c = resolve_correction(dim, unbiased, correction, "std_mean");
    auto [s, mu] = std_mean(x, opt_dims(dim, "std_mean"), c, keepdim);
    return py::make_tuple(s, mu);
  }, py::arg("input"), py::arg("dim") = py::none(), py::arg("unbiased") = py::none(), py::arg("keepdim") = false,
     py::kw_only(), py::arg("correction") = py::none());
  both("norm", [](const Tensor& x, py::object p, py::object dim, bool keepdim, py::object dtype) {
    Tensor in = dtype.is_none() ? x : to_dtype(x, dtype.cast<ScalarType>());
    return norm(in, norm_p(p), opt_dims(dim, "norm"), keepdim);
  }, py::arg("p") = "fro", py::arg("dim") = py::none(), py::arg("keepdim") = false,
     py::arg("dtype") = py::none());
  both("logsumexp", [](const Tensor& x, py::object dim, bool keepdim) {
    return logsumexp(x, opt_dims(dim, "logsumexp"), keepdim);
  }, py::arg("dim"), py::arg("keepdim") = false);
  both("any", [](const Tensor& x, py::object dim, bool keepdim) {
    return any(x, opt_dims(dim, "any"), keepdim);
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both("all", [](const Tensor& x, py::object dim, bool keepdim) {
    return all(x, opt_dims(dim, "all"), keepdim);
  }, py::arg("dim") = py::none(), py::arg("keepdim") = false);
  both("cumsum", [](const Tensor& x, int64_t dim, py::object dtype) {
    return cumsum(x, dim, opt_dtype(dtype));
  }, py::arg("dim"), py::kw_only(), py::arg("dtype") = py::none());
  both("softmax", [](const Tensor& x, int64_t dim, py::object dtype) {
    return softmax(x, dim, opt_dtype(dtype));
  }, py::arg("dim"), py::arg("dtype") = py::none());
  m.def("_scaled_softmax", &scaled_softmax, py::arg("input"), py::arg("scale"), py::arg("causal") = false);
  both("log_softmax", [](const Tensor& x, int64_t dim, py::object dtype) {
    return log_softmax(x, dim, opt_dtype(dtype));
  }, py::arg("dim"), py::arg("dtype") = py::none());
  both("sort", [](const Tensor& x, int64_t dim, bool descending, bool stable) {
    auto [v, i] = sort(x, dim, descending, stable);
    return make_pair_result("sort", v, i);
  }, py::arg("dim") = -1, py::arg("descending") = false, py::kw_only(), py::arg("stable") = false);
  both("argsort", [](const Tensor& x, int64_t dim, bool descending, bool stable) {
    return argsort(x, dim, descending, stable);
  }, py::arg("dim") = -1, py::arg("descending") = false, py::kw_only(), py::arg("stable") = false);
  both("topk", [](const Tensor& x, int64_t k, int64_t dim, bool largest, bool sorted) {
    auto [v, i] = topk(x, k, dim, largest, sorted);
    return make_pair_result("topk", v, i);
  }, py::arg("k"), py::arg("dim") = -1, py::arg("largest") = true, py::arg("sorted") = true);
  both("sum_to_size", [](const Tensor& x, py::args sizes) {
    return sum_to_size(x, sizes_from_args(sizes, "sum_to_size"));
  });
}

}  // namespace ember::python
