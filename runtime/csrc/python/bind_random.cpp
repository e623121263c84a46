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

// An explicit generator= argument (None: the device's default generator).
Generator* generator_of(const py::object& gen) {
  if (gen.is_none()) return nullptr;
  return gen.cast<std::shared_ptr<Generator>>().get();
}

// The RNG state as torch-style bytes: a uint8 tensor of 16 bytes (seed, offset; little-endian).
Tensor state_tensor(const Generator& g) {
  PhiloxState s = g.state();
  Tensor t = Tensor::empty(DimVector{16}, ScalarType::UInt8, Device());
  std::memcpy(t.data<uint8_t>(), &s.seed, 8);
  std::memcpy(t.data<uint8_t>() + 8, &s.offset, 8);
  return t;
}
void set_state_tensor(Generator& g, const Tensor& t) {
  EMBER_CHECK_TYPE(t.dtype() == ScalarType::UInt8 && t.dim() == 1 && t.numel() == 16 && t.device().is_cpu(),
                   "[set_rng_state] expected a CPU uint8 tensor of 16 bytes (from get_rng_state), got ", describe(t));
  Tensor c = contiguous(t);
  PhiloxState s;
  std::memcpy(&s.seed, c.data<uint8_t>(), 8);
  std::memcpy(&s.offset, c.data<uint8_t>() + 8, 8);
  g.set_state(s);
}

}  // namespace

void bind_random(py::module_& m) {

  m.def("seed", []() { return static_cast<int64_t>(seed()); });
  m.def("initial_seed", []() { return static_cast<int64_t>(initial_seed()); });
  m.def("get_rng_state", [](py::object device) { return state_tensor(default_generator(device_or(device, Device()))); },
        py::arg("device") = py::none());
  m.def("set_rng_state", [](const Tensor& state, py::object device) {
    set_state_tensor(default_generator(device_or(device, Device())), state);
  }, py::arg("new_state"), py::arg("device") = py::none());

  py::class_<Generator, std::shared_ptr<Generator>>(m, "Generator")
      .def(py::init([](py::object device) { return std::make_shared<Generator>(device_or(device, Device())); }),
           py::arg("device") = py::none())
      .def("manual_seed", [](std::shared_ptr<Generator> g, int64_t seed) {
        g->manual_seed(static_cast<uint64_t>(seed));
        return g;
      }, py::arg("seed"))
      .def("seed", [](Generator& g) { return static_cast<int64_t>(g.seed()); })
      .def("initial_seed", [](const Generator& g) { return static_cast<int64_t>(g.initial_seed()); })
      .def("get_state", [](const Generator& g) { return state_tensor(g); })
      .def("set_state", [](std::shared_ptr<Generator> g, const Tensor& t) {
        set_state_tensor(*g, t);
        return g;
      }, py::arg("new_state"))
      .def_property_readonly("device", &Generator::device);
  // The CPU default generator as an ember.Generator (non-owning: it lives for the whole process).
  auto default_cpu = [] { return std::shared_ptr<Generator>(&default_generator(Device()), [](Generator*) {}); };
  m.attr("default_generator") = default_cpu();
  m.def("manual_seed", [default_cpu](int64_t seed) {
    manual_seed(static_cast<uint64_t>(seed));
    return default_cpu();
  }, py::arg("seed"));

  for (const char* name : {"rand", "randn"}) {
    const bool normal = std::string(name) == "randn";
    m.def(name, [normal, name](py::args args, py::object size, py::object generator, py::object dtype,
                               py::object device, bool requires_grad) {
      DimVector sizes = sizes_or_kw(args, size, name);
      ScalarType dt = opt_dtype(dtype).value_or(default_float_type());
      Device dev = device_or(device, Device());
      GeneratorGuard guard(generator_of(generator));
      return finish(normal ? randn(sizes, dt, dev) : rand(sizes, dt, dev), requires_grad);
    }, py::kw_only(), py::arg("size") = py::none(), py::arg("generator") = py::none(), py::arg("dtype") = py::none(),
       py::arg("device") = py::none(), py::arg("requires_grad") = false);
    const std::string like = std::string(name) + "_like";
    m.def(like.c_str(), [normal](const Tensor& x, py::object dtype, py::object device, bool requires_grad) {
      ScalarType dt = opt_dtype(dtype).value_or(x.dtype());
      Device dev = device_or(device, x.device());
      return finish(normal ? randn(x.sizes(), dt, dev) : rand(x.sizes(), dt, dev), requires_grad);
    }, py::arg("input"), py::kw_only(), py::arg("dtype") = py::none(), py::arg("device") = py::none(),
       py::arg("requires_grad") = false);
  }

  // randint(high, size) or randint(low, high, size); low/high/size also as keywords.
  m.def("randint", [](py::args args, py::object low, py::object high, py::object size, py::object generator,
                      py::object dtype, py::object device, bool requires_grad) {
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
    GeneratorGuard guard(generator_of(generator));
    return finish(randint(lo, hi, to_dims(sz, "randint"), opt_dtype(dtype).value_or(ScalarType::Int64),
                          device_or(device, Device())), requires_grad);
  }, py::kw_only(), py::arg("low") = py::none(), py::arg("high") = py::none(), py::arg("size") = py::none(),
     py::arg("generator") = py::none(), py::arg("dtype") = py::none(), py::arg("device") = py::none(),
     py::arg("requires_grad") = false);
  m.def("randint_like", [](const Tensor& x, int64_t a, py::object b, py::object dtype, py::object device) {
    const int64_t lo = b.is_none() ? 0 : a, hi = b.is_none() ? a : b.cast<int64_t>();
    return randint(lo, hi, x.sizes(), opt_dtype(dtype).value_or(x.dtype()), device_or(device, x.device()));
  }, py::arg("input"), py::arg("low"), py::arg("high") = py::none(), py::kw_only(), py::arg("dtype") = py::none(),
     py::arg("device") = py::none());
  m.def("randperm", [](int64_t n, py::object generator, py::object dtype, py::object device, bool requires_grad) {
    GeneratorGuard guard(generator_of(generator));
    return finish(randperm(n, opt_dtype(dtype).value_or(ScalarType::Int64), device_or(device, Device())),
                  requires_grad);
  }, py::arg("n"), py::kw_only(), py::arg("generator") = py::none(), py::arg("dtype") = py::none(),
     py::arg("device") = py::none(), py::arg("requires_grad") = false);

  // normal(mean, std, size) with numbers; normal(mean, std) with tensors (broadcast) is a composite.
  m.def("normal", [](double mean, double stdev, py::object size, py::object generator, py::object dtype,
                     py::object device, bool requires_grad) {
    Tensor t = Tensor::empty(to_dims(size, "normal"), opt_dtype(dtype).value_or(default_float_type()),
                             device_or(device, Device()));
    GeneratorGuard guard(generator_of(generator));
    return finish(normal_(t, mean, stdev), requires_grad);
  }, py::arg("mean"), py::arg("std"), py::arg("size"), py::kw_only(), py::arg("generator") = py::none(),
     py::arg("dtype") = py::none(), py::arg("device") = py::none(), py::arg("requires_grad") = false);
  m.def("normal", [](py::object mean, py::object stdev, py::object generator) {
    const bool mt = py::isinstance<Tensor>(mean), st = py::isinstance<Tensor>(stdev);
    EMBER_CHECK_TYPE(mt || st, "[normal] expected normal(mean, std, size) with numbers or a tensor mean/std");
    Tensor m_t = mt ? mean.cast<Tensor>() : Tensor(), s_t = st ? stdev.cast<Tensor>() : Tensor();
    const Tensor& ref = mt ? m_t : s_t;
    if (!mt) m_t = scalar_tensor(mean.cast<double>(), ref.dtype(), ref.device());
    if (!st) s_t = scalar_tensor(stdev.cast<double>(), ref.dtype(), ref.device());
    DimVector shape = broadcast_shapes(m_t.sizes(), s_t.sizes(), "normal");
    Tensor z = Tensor::empty(shape, to_float_type(ref.dtype()), ref.device());
    GeneratorGuard guard(generator_of(generator));
    normal_(z, 0.0, 1.0);
    return add(m_t, mul(s_t, z));
  }, py::arg("mean"), py::arg("std"), py::kw_only(), py::arg("generator") = py::none());

  // bernoulli(input): input holds the probabilities; bernoulli(input, p): shape of input, probability p.
  auto bernoulli_fn = [](const Tensor& x, py::object p, py::object generator) {
    GeneratorGuard guard(generator_of(generator));
    return p.is_none() ? bernoulli(x) : bernoulli(x, p.cast<double>());
  };
  m.def("bernoulli", bernoulli_fn, py::arg("input"), py::arg("p") = py::none(), py::kw_only(),
        py::arg("generator") = py::none());
  auto multinomial_fn = [](const Tensor& probs, int64_t n, bool replacement, py::object generator) {
    GeneratorGuard guard(generator_of(generator));
    return multinomial(probs, n, replacement);
  };
  m.def("multinomial", multinomial_fn, py::arg("input"), py::arg("num_samples"), py::arg("replacement") = false,
        py::kw_only(), py::arg("generator") = py::none());
  m.def("dropout", &dropout, py::arg("input"), py::arg("p") = 0.5, py::arg("train") = true);

  auto& t = tensor_class();
  t.def("uniform_", [](Tensor& self, double from, double to, py::object generator) {
     GeneratorGuard guard(generator_of(generator));
     return uniform_(self, from, to);
   }, py::arg("from") = 0.0, py::arg("to") = 1.0, py::kw_only(), py::arg("generator") = py::none())
      .def("normal_", [](Tensor& self, double mean, double std, py::object generator) {
        GeneratorGuard guard(generator_of(generator));
        return normal_(self, mean, std);
      }, py::arg("mean") = 0.0, py::arg("std") = 1.0, py::kw_only(), py::arg("generator") = py::none())
      .def("random_", [](Tensor& self, int64_t a, py::object b, py::object generator) {
        GeneratorGuard guard(generator_of(generator));
        if (b.is_none()) return random_(self, 0, a);
        return random_(self, a, b.cast<int64_t>());
      }, py::arg("from"), py::arg("to") = py::none(), py::kw_only(), py::arg("generator") = py::none())
      .def("bernoulli_", [](Tensor& self, const Tensor& p, py::object generator) {
        GeneratorGuard guard(generator_of(generator));
        return bernoulli_(self, p);
      }, py::arg("p"), py::kw_only(), py::arg("generator") = py::none())
      .def("bernoulli_", [](Tensor& self, double p, py::object generator) {
        GeneratorGuard guard(generator_of(generator));
        return bernoulli_(self, p);
      }, py::arg("p") = 0.5, py::kw_only(), py::arg("generator") = py::none())
      .def("bernoulli", bernoulli_fn, py::arg("p") = py::none(), py::kw_only(), py::arg("generator") = py::none())
      .def("multinomial", multinomial_fn, py::arg("num_samples"), py::arg("replacement") = false, py::kw_only(),
           py::arg("generator") = py::none());
}

}  // namespace ember::python
