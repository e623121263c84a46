#include "core/generator.h"

#include <chrono>
#include <memory>
#include <random>

namespace ember {

void Generator::manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(mutex_);
  state_ = {seed, 0};
}

uint64_t Generator::seed() {
  std::random_device rd;
  uint64_t s = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
               static_cast<uint64_t>(std::chrono::high_resolution_clock::now().time_since_epoch().count());
  manual_seed(s);
  return s;
}

uint64_t Generator::initial_seed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_.seed;
}

PhiloxState Generator::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

void Generator::set_state(PhiloxState s) {
  std::lock_guard<std::mutex> lock(mutex_);
  state_ = s;
}

PhiloxState Generator::reserve(uint64_t blocks) {
  std::lock_guard<std::mutex> lock(mutex_);
  PhiloxState s = state_;
  state_.offset += blocks;
  return s;
}

namespace {
std::mutex g_registry_mutex;
std::unique_ptr<Generator> g_generators[kNumDeviceTypes][64];
uint64_t g_global_seed = Generator::kDefaultSeed;
}  // namespace

void manual_seed_all(uint64_t seed) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  g_global_seed = seed;
  for (auto& per_type : g_generators)
    for (auto& g : per_type)
      if (g) g->manual_seed(seed);
}

Generator& default_generator(Device device) {
  auto& generators = g_generators;
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  const int type = static_cast<int>(device.type);
  const int index = device.is_cpu() ? 0 : device.index;
  EMBER_CHECK_VALUE(index >= 0 && index < 64, "[generator] invalid device index ", index);
  auto& g = generators[type][index];
  if (!g) g = std::make_unique<Generator>(device, g_global_seed);
  return *g;
}

namespace {
thread_local Generator* t_override = nullptr;
}  // namespace

Generator& current_generator(Device device) {
  if (t_override) {
    EMBER_CHECK(t_override->device() == device, "[generator] expected a generator for device ", device,
                ", but got one for ", t_override->device());
    return *t_override;
  }
  return default_generator(device);
}

GeneratorGuard::GeneratorGuard(Generator* g) : previous_(t_override) { if (g) t_override = g; }
GeneratorGuard::~GeneratorGuard() { t_override = previous_; }

}  // namespace ember
