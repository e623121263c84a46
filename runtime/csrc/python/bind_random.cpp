// ember.manual_seed/seed/initial_seed/get_rng_state/set_rng_state and the random ops: rand, randn,
// randint, *_like, randperm, bernoulli, multinomial, dropout, and the in-place Tensor methods.
#include <cstring>

#include "core/generator.h"
#include "ops/ops.h"
#include "python/bindings.h"

namespace ember::python {
namespace {

std::optional<ScalarType> opt_dtype(const py::object& dtype) {
  if (dtype.is_none()) return std::nullopt;
  return dtype.cast<ScalarType>();
}
Device device_or(const py::object& device, Device fallback) {
  return device.is_none() ? fallback : device.cast<Device>();
}
Tensor finish(Tensor t, bool requires_grad) {
  if (requires_grad) t.set_requires_grad(true);
  return t;
}
DimVector sizes_or_kw(const py::args& args, const py::object& size, const char* op) {
  if (!size.is_none()) {
    EMBER_CHECK_TYPE(args.size() == 0, "[", op, "] got sizes both positionally and as size=");
    return to_dims(size, op);
  }
  return sizes_from_args(args, op);
}

// The RNG state as torch-style bytes: a uint8 tensor of 16 bytes (seed, offset; little-endian).
Tensor rng_state_tensor(Device device) {
  PhiloxState s = default_generator(device).state();
  Tensor t = Tensor::empty(DimVector{16}, ScalarType::UInt8, Device());
  std::memcpy(t.data<uint8_t>(), &s.seed, 8);
  std::memcpy(t.data<uint8_t>() + 8, &s.offset, 8);
  return t;
}
void set_rng_state_tensor(const Tensor& t, Device device) {
  EMBER_CHECK_TYPE(t.dtype() == ScalarType::UInt8 && t.dim() == 1 && t.numel() == 16 && t.device().is_cpu(),
                   "[set_rng_state] expected a CPU uint8 tensor of 16 bytes (from get_rng_state), got ", describe(t));
  Tensor c = contiguous(t);
  PhiloxState s;
  std::memcpy(&s.seed, c.data<uint8_t>(), 8);
  std::memcpy(&s.offset, c.data<uint8_t>() + 8, 8);
  default_generator(device).set_state(s);
}

}  // namespace

void bind_random(py::module_& m) {
  m.def("manual_seed", [](int64_t seed) { manual_seed(static_cast<uint64_t>(seed)); }, py::arg("seed"));
  m.def("seed", []() { return static_cast<int64_t>(seed()); });
  m.def("initial_seed", []() { return static_cast<int64_t>(initial_seed()); });
  m.def("get_rng_state", [](py::object device) { return rng_state_tensor(device_or(device, Device())); },
        py::arg("device") = py::none());
  m.def("set_rng_state", [](const Tensor& state, py::object device) {
    set_rng_state_tensor(state, device_or(device, Device()));
  }, py::arg("new_state"), py::arg("device") = py::none());

  for (const char* name : {"rand", "randn"}) {
    const bool normal = std::string(name) == "randn";
    m.def(name, [normal, name](py::args args, py::object size, py::object dtype, py::object device, bool requires_grad) {
      DimVector sizes = sizes_or_kw(args, size, name);
      ScalarType dt = opt_dtype(dtype).value_or(default_float_type());
      Device dev = device_or(device, Device());
      return finish(normal ? randn(sizes, dt, dev) : rand(sizes, dt, dev), requires_grad);
    }, py::kw_only(), py::arg("size") = py::none(), py::arg("dtype") = py::none(), py::arg("device") = py::none(),
       py::arg("requires_grad") = false);
    const std::string like = std::string(name) + "_like";
    m.def(like.c_str(), [normal](const Tensor& x, py::object dtype, py::object device, bool requires_grad) {
      ScalarType dt = opt_dtype(dtype).value_or(x.dtype());
      Device dev = device_or(device, x.device());
      return finish(normal ? randn(x.sizes(), dt, dev) : rand(x.sizes(), dt, dev), requires_grad);
    }, py::arg("input"), py::kw_only(), py::arg("dtype") = py::none(), py::arg("device") = py::none(),
       py::arg("requires_grad") = false);
  }

  // randint(high, size) or randint(low, high, size); low/high/size also as keywords.
  m.def("randint", [](py::args args, py::object low, py::object high, py::object size, py::object dtype,
                      py::object device, bool requires_grad) {
    EMBER_CHECK_TYPE(args.size() <= 3, "[randint] takes at most 3 positional arguments, got ", args.size());
    int64_t lo = 0, hi = 0;
    py::object sz = size;
    std::vector<py::object> pos;
    for (auto a : args) pos.push_back(py::reinterpret_borrow<py::object>(a));
    if (!pos.empty() && size.is_none()) { sz = pos.back(); pos.pop_back(); }
    if (pos.size() == 1) hi = pos[0].cast<int64_t>();
    if (pos.size() == 2) { lo = pos[0].cast<int64_t>(); hi = pos[1].cast<int64_t>(); }
    if (!low.is_none()) lo = low.cast<int64_t>();
    if (!high.is_none()) hi = high.cast<int64_t>();
    EMBER_CHECK_TYPE(!sz.is_none() && (!pos.empty() || !high.is_none()),
                     "[randint] expected randint(high, size) or randint(low, high, size)");
    return finish(randint(lo, hi, to_dims(sz, "randint"), opt_dtype(dtype).value_or(ScalarType::Int64),
                          device_or(device, Device())), requires_grad);
  }, py::kw_only(), py::arg("low") = py::none(), py::arg("high") = py::none(), py::arg("size") = py::none(),
     py::arg("dtype") = py::none(), py::arg("device") = py::none(), py::arg("requires_grad") = false);
  m.def("randint_like", [](const Tensor& x, int64_t a, py::object b, py::object dtype, py::object device) {
    const int64_t lo = b.is_none() ? 0 : a, hi = b.is_none() ? a : b.cast<int64_t>();
    return randint(lo, hi, x.sizes(), opt_dtype(dtype).value_or(x.dtype()), device_or(device, x.device()));
  }, py::arg("input"), py::arg("low"), py::arg("high") = py::none(), py::kw_only(), py::arg("dtype") = py::none(),
     py::arg("device") = py::none());
  m.def("randperm", [](int64_t n, py::object dtype, py::object device, bool requires_grad) {
    return finish(randperm(n, opt_dtype(dtype).value_or(ScalarType::Int64), device_or(device, Device())),
                  requires_grad);
  }, py::arg("n"), py::kw_only(), py::arg("dtype") = py::none(), py::arg("device") = py::none(),
     py::arg("requires_grad") = false);

  // bernoulli(input): input holds the probabilities; bernoulli(input, p): shape of input, probability p.
  m.def("bernoulli", [](const Tensor& x, py::object p) {
    return p.is_none() ? bernoulli(x) : bernoulli(x, p.cast<double>());
  }, py::arg("input"), py::arg("p") = py::none());
  m.def("multinomial", &multinomial, py::arg("input"), py::arg("num_samples"), py::arg("replacement") = false);
  m.def("dropout", &dropout, py::arg("input"), py::arg("p") = 0.5, py::arg("train") = true);

  auto& t = tensor_class();
  t.def("uniform_", [](Tensor& self, double from, double to) { return uniform_(self, from, to); },
        py::arg("from") = 0.0, py::arg("to") = 1.0)
      .def("normal_", [](Tensor& self, double mean, double std) { return normal_(self, mean, std); },
           py::arg("mean") = 0.0, py::arg("std") = 1.0)
      .def("random_", [](Tensor& self, int64_t a, py::object b) {
        if (b.is_none()) return random_(self, 0, a);
        return random_(self, a, b.cast<int64_t>());
      }, py::arg("from"), py::arg("to") = py::none())
      .def("bernoulli_", [](Tensor& self, const Tensor& p) { return bernoulli_(self, p); }, py::arg("p"))
      .def("bernoulli_", [](Tensor& self, double p) { return bernoulli_(self, p); }, py::arg("p") = 0.5)
      .def("bernoulli", [](const Tensor& self, py::object p) {
        return p.is_none() ? bernoulli(self) : bernoulli(self, p.cast<double>());
      }, py::arg("p") = py::none())
      .def("multinomial", &multinomial, py::arg("num_samples"), py::arg("replacement") = false);
}

}  // namespace ember::python
