#pragma once
// Random number generation state: one default Generator per device, holding (seed, offset) for a
// counter-based Philox4x32-10 stream.
//
// Note [Philox streams]
// A random op reserves a range of 128-bit Philox counters [offset, offset + n) under the lock and
// advances the offset; block i of its output is philox(key = seed, counter = offset + i). Values
// therefore depend only on (seed, offset, element index): parallel CPU generation gives the same
// result for any thread count, and a CUDA kernel can reproduce the stream from (seed, offset)
// without host state (graph-safe). get_rng_state/set_rng_state save and restore exactly this pair.
#include <cstdint>
#include <mutex>

#include "core/device.h"
#include "core/half.h"

namespace ember {

struct PhiloxState {
  uint64_t seed = 0;
  uint64_t offset = 0;  // in 128-bit counter blocks
};

class Generator {
 public:
  explicit Generator(Device device, uint64_t seed = kDefaultSeed) : device_(device), state_{seed, 0} {}
  static constexpr uint64_t kDefaultSeed = 67280421310721ull;  // torch's default_rng_seed_val

  Device device() const { return device_; }
  void manual_seed(uint64_t seed);
  uint64_t seed();  // reseeds from a nondeterministic source and returns the new seed
  uint64_t initial_seed() const;
  PhiloxState state() const;
  void set_state(PhiloxState s);
  // Reserves `blocks` counter blocks and returns the (seed, offset) to generate them from.
  PhiloxState reserve(uint64_t blocks);

 private:
  Device device_;
  mutable std::mutex mutex_;
  PhiloxState state_;
};

// The default generator of `device` (created on first use with the last global seed).
Generator& default_generator(Device device = Device());
// Seeds every device's default generator, including ones created later (torch.manual_seed).
void manual_seed_all(uint64_t seed);

// The generator random ops of `device` draw from on this thread: the innermost GeneratorGuard's
// (an explicit `generator=` argument) when it matches the device, else the default one.
Generator& current_generator(Device device);
class GeneratorGuard {
 public:
  explicit GeneratorGuard(Generator* g);
  ~GeneratorGuard();
  GeneratorGuard(const GeneratorGuard&) = delete;
  GeneratorGuard& operator=(const GeneratorGuard&) = delete;

 private:
  Generator* previous_;
};

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
struct Philox4x32 {
  uint32_t v[4];
  EMBER_HOST_DEVICE Philox4x32(uint64_t seed, uint64_t counter_lo, uint64_t counter_hi = 0) {
    uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
    uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
    for (int round = 0; round < 10; ++round) {
      const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
      const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
      c1 = static_cast<uint32_t>(p1);
      c3 = static_cast<uint32_t>(p0);
      c0 = n0;
      c2 = n2;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    v[0] = c0; v[1] = c1; v[2] = c2; v[3] = c3;
  }
};

// Uniform floats in [0, 1) from random bits (24 / 53 mantissa bits).
EMBER_HOST_DEVICE inline float uniform_float(uint32_t x) { return static_cast<float>(x >> 8) * 0x1.0p-24f; }
EMBER_HOST_DEVICE inline double uniform_double(uint32_t hi, uint32_t lo) {
  const uint64_t bits = (static_cast<uint64_t>(hi) << 32) | lo;
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

}  // namespace ember
