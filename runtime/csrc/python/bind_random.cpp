// ember.manual_seed/seed/initial_seed/get_rng_state/set_rng_state and ember.Generator. The random ops
// themselves are bound from runtime/spec/random.yaml.
#include <cstring>

#include "core/generator.h"
#include "ops/ops.h"
#include "python/bindings.h"

namespace ember::python {
namespace {

Device device_or(const py::object& device, Device fallback) {
  return device.is_none() ? fallback : device.cast<Device>();
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
}

}  // namespace ember::python
