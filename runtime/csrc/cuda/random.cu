// CUDA kernels of the random ops. They draw exactly the CPU kernels' Philox streams (Note [Philox
// streams], core/generator.h): element i of a op takes block offset + i / per_block, so a given
// seed gives the same numbers on both devices.
// Graph-safe RNG: while a CUDA graph is being captured on a device, kernels read their base offset
// from a device slot (random.cu keeps it per capture) instead of baking the host offset into the
// graph; replay() reserves a fresh range from the generator and writes it to the slot first.
#include <cmath>
#include <mutex>

#include "core/generator.h"
#include "cuda/graph.h"
#include "cuda/loops.cuh"
#include "cuda/internal.h"
#include "generated/kernels_random.h"

namespace ember::cuda {
namespace {

struct PhiloxCuda {
  uint64_t seed, offset;
  const uint64_t* slot;    // non-null during graph capture
  uint64_t capture_base;   // generator offset when the capture began

  __device__ __forceinline__ Philox4x32 block(uint64_t b) const {
    const uint64_t base = slot ? *slot + (offset - capture_base) : offset;
    return Philox4x32(seed, base + b);
  }
};

struct CaptureState {
  bool active = false;
  uint64_t* slot = nullptr;
  uint64_t base = 0;
};
std::mutex g_mutex;
CaptureState g_capture[64];

PhiloxCuda philox_for(uint64_t seed, uint64_t offset, int device) {
  PhiloxCuda p{seed, offset, nullptr, 0};
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_capture[device].active) {
    p.slot = g_capture[device].slot;
    p.capture_base = g_capture[device].base;
  }
  return p;
}

template <typename A>
PhiloxCuda philox_of(const A& attrs, int device) {
  return philox_for(attrs.seed, attrs.offset, device);
}

__global__ void set_u64_kernel(uint64_t* p, uint64_t v) { *p = v; }

template <typename T>
__global__ void uniform_kernel(T* dst, int64_t n, PhiloxCuda ph, double from, double to) {
  constexpr int kPer = std::is_same_v<T, double> ? 2 : 4;
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b * kPer >= n) return;
  Philox4x32 r = ph.block(static_cast<uint64_t>(b));
  if constexpr (std::is_same_v<T, double>) {
    for (int j = 0; j < 2 && b * 2 + j < n; ++j) dst[b * 2 + j] = from + (to - from) * uniform_double(r.v[2 * j], r.v[2 * j + 1]);
  } else {
    const float f = static_cast<float>(from), range = static_cast<float>(to - from);
    for (int j = 0; j < 4 && b * 4 + j < n; ++j) dst[b * 4 + j] = cvt<T>(f + range * uniform_float(r.v[j]));
  }
}

template <typename T>
__global__ void normal_kernel(T* dst, int64_t n, PhiloxCuda ph, double mean, double stdev) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  constexpr double two_pi = 6.283185307179586;
  if constexpr (std::is_same_v<T, double>) {
    if (2 * b >= n) return;
    Philox4x32 r = ph.block(static_cast<uint64_t>(b));
    const double u1 = 1.0 - uniform_double(r.v[0], r.v[1]), u2 = uniform_double(r.v[2], r.v[3]);
    const double radius = ::sqrt(-2.0 * ::log(u1));
    dst[2 * b] = mean + stdev * radius * ::cos(two_pi * u2);
    if (2 * b + 1 < n) dst[2 * b + 1] = mean + stdev * radius * ::sin(two_pi * u2);
  } else {
    if (4 * b >= n) return;
    Philox4x32 r = ph.block(static_cast<uint64_t>(b));
    const float m = static_cast<float>(mean), s = static_cast<float>(stdev);
    for (int pair = 0; pair < 2; ++pair) {
      const int64_t i = 4 * b + 2 * pair;
      if (i >= n) break;
      const float u1 = 1.0f - uniform_float(r.v[2 * pair]), u2 = uniform_float(r.v[2 * pair + 1]);
      const float radius = sqrtf(-2.0f * logf(u1));
      const float angle = static_cast<float>(two_pi) * u2;
      dst[i] = cvt<T>(m + s * radius * cosf(angle));
      if (i + 1 < n) dst[i + 1] = cvt<T>(m + s * radius * sinf(angle));
    }
  }
}

template <typename T>
__global__ void randint_kernel(T* dst, int64_t n, PhiloxCuda ph, int64_t low, uint64_t range) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool small = range <= (1ull << 32);
  const int per = small ? 4 : 2;
  if (b * per >= n) return;
  Philox4x32 r = ph.block(static_cast<uint64_t>(b));
  for (int j = 0; j < per && b * per + j < n; ++j) {
    const uint64_t x = small ? (static_cast<uint64_t>(r.v[j]) * range) >> 32
                             : ((static_cast<uint64_t>(r.v[2 * j]) << 32) | r.v[2 * j + 1]) % range;
    const int64_t v = static_cast<int64_t>(static_cast<uint64_t>(low) + x);
    dst[b * per + j] = cvt<T>(v);
  }
}

template <typename T, typename P>
__global__ void bernoulli_kernel(T* dst, int64_t n, PhiloxCuda ph, const P* probs, double p_scalar, double hit_value) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b * 2 >= n) return;
  Philox4x32 r = ph.block(static_cast<uint64_t>(b));
  for (int j = 0; j < 2 && b * 2 + j < n; ++j) {
    const int64_t i = b * 2 + j;
    const double p = probs ? static_cast<double>(cvt<cuda_opmath_t<P>>(probs[i])) : p_scalar;
    const bool hit = uniform_double(r.v[2 * j], r.v[2 * j + 1]) < p;
    dst[i] = hit ? cvt<T>(hit_value) : cvt<T>(0.0);
  }
}

// Runs `gen(contiguous_out)` and copies into `self` when self is not contiguous.
template <typename F>
void generate_into(const Tensor& self, const F& gen) {
  if (self.numel() == 0) return;
  if (self.is_contiguous()) { gen(self); return; }
  Tensor tmp = Tensor::empty(self.sizes(), self.dtype(), self.device());
  gen(tmp);
  copy_kernel(self, tmp);
}

}  // namespace

void rng_capture_begin(int device, uint64_t** slot) {
  if (!*slot) EMBER_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(slot), sizeof(uint64_t)));
  const uint64_t base = default_generator(Device(DeviceType::CUDA, device)).state().offset;
  set_u64_kernel<<<1, 1, 0, current_stream(device)>>>(*slot, base);
  EMBER_CUDA_KERNEL_CHECK();
  EMBER_CUDA_CHECK(cudaStreamSynchronize(current_stream(device)));
  std::lock_guard<std::mutex> lock(g_mutex);
  g_capture[device] = {true, *slot, base};
}

uint64_t rng_capture_end(int device) {
  const uint64_t now = default_generator(Device(DeviceType::CUDA, device)).state().offset;
  std::lock_guard<std::mutex> lock(g_mutex);
  const uint64_t used = g_capture[device].active ? now - g_capture[device].base : 0;
  g_capture[device] = {};
  return used;
}

void rng_replay_prologue(int device, uint64_t* slot, uint64_t increment, cudaStream_t stream) {
  const PhiloxState fresh = default_generator(Device(DeviceType::CUDA, device)).reserve(increment);
  set_u64_kernel<<<1, 1, 0, stream>>>(slot, fresh.offset);
  EMBER_CUDA_KERNEL_CHECK();
}

// Note [Philox arguments for library kernels]: cuDNN's fused attention reads its dropout (seed,
// offset) from device memory, so a captured graph can advance them per replay. The offset it takes
// counts 32-bit Philox outputs (curand/torch units); ember's counts 128-bit blocks, hence * 4.
namespace {
__global__ void philox_args_kernel(int64_t* seed, int64_t* offset, PhiloxCuda ph) {
  *seed = static_cast<int64_t>(ph.seed);
  *offset = static_cast<int64_t>(4 * (ph.slot ? *ph.slot + (ph.offset - ph.capture_base) : ph.offset));
}
}  // namespace

void write_philox_args(int64_t* seed, int64_t* offset, const PhiloxState& state, int device) {
  const PhiloxCuda ph = philox_for(state.seed, state.offset, device);
  philox_args_kernel<<<1, 1, 0, current_stream(device)>>>(seed, offset, ph);
  EMBER_CUDA_KERNEL_CHECK();
}

void uniform(const KernelArgs& args, const RandomRangeAttrs& attrs) {
  const Tensor& self = args.out[0];
  DeviceGuard guard(self.device());
  const PhiloxCuda ph = philox_of(attrs, self.device().index);
  const double from = attrs.low.to_double(), to = attrs.high.to_double();
  EMBER_CUDA_DISPATCH_FLOAT(self.dtype(), "uniform_", [&]<typename T>() {
    generate_into(self, [&](const Tensor& o) {
      const int64_t per = std::is_same_v<T, double> ? 2 : 4;
      uniform_kernel<T><<<blocks_for((o.numel() + per - 1) / per), kBlock, 0, current_stream()>>>(o.data<T>(), o.numel(), ph, from, to);
      EMBER_CUDA_KERNEL_CHECK();
    });
  });
}

void normal(const KernelArgs& args, const RandomRangeAttrs& attrs) {
  const Tensor& self = args.out[0];
  DeviceGuard guard(self.device());
  const PhiloxCuda ph = philox_of(attrs, self.device().index);
  const double mean = attrs.low.to_double(), stdev = attrs.high.to_double();
  EMBER_CUDA_DISPATCH_FLOAT(self.dtype(), "normal_", [&]<typename T>() {
    generate_into(self, [&](const Tensor& o) {
      const int64_t per = std::is_same_v<T, double> ? 2 : 4;
      normal_kernel<T><<<blocks_for((o.numel() + per - 1) / per), kBlock, 0, current_stream()>>>(o.data<T>(), o.numel(), ph, mean, stdev);
      EMBER_CUDA_KERNEL_CHECK();
    });
  });
}

void randint(const KernelArgs& args, const RandomRangeAttrs& attrs) {
  const Tensor& self = args.out[0];
  DeviceGuard guard(self.device());
  const PhiloxCuda ph = philox_of(attrs, self.device().index);
  const int64_t low = attrs.low.to_int(), high = attrs.high.to_int();
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  EMBER_CUDA_DISPATCH_ALL(self.dtype(), "random_", [&]<typename T>() {
    generate_into(self, [&](const Tensor& o) {
      const int64_t per = range <= (1ull << 32) ? 4 : 2;
      randint_kernel<T><<<blocks_for((o.numel() + per - 1) / per), kBlock, 0, current_stream()>>>(o.data<T>(), o.numel(), ph, low, range);
      EMBER_CUDA_KERNEL_CHECK();
    });
  });
}

// Probabilities outside [0, 1] are not validated on the device (that would need a host sync, which
// graph capture forbids); u < p gives 0 for p <= 0 and 1 for p >= 1, as torch's CUDA kernel.
void bernoulli(const KernelArgs& args, const BernoulliAttrs& attrs) {
  const Tensor& out = args.out[0];
  DeviceGuard guard(out.device());
  const PhiloxCuda ph = philox_of(attrs, out.device().index);
  const double p_scalar = attrs.p.value_or(0.0), hit_value = attrs.scale.value_or(1.0);
  Tensor probs;
  if (!attrs.p) probs = contiguous_as(args.in[0], args.in[0].dtype());
  EMBER_CUDA_DISPATCH_ALL(out.dtype(), "bernoulli", [&]<typename T>() {
    generate_into(out, [&](const Tensor& o) {
      const int64_t blocks = blocks_for((o.numel() + 1) / 2);
      if (!probs.defined()) {
        bernoulli_kernel<T, float><<<blocks, kBlock, 0, current_stream()>>>(o.data<T>(), o.numel(), ph, nullptr, p_scalar, hit_value);
      } else {
        EMBER_CUDA_DISPATCH_FLOAT(probs.dtype(), "bernoulli", [&]<typename P>() {
          bernoulli_kernel<T, P><<<blocks, kBlock, 0, current_stream()>>>(o.data<T>(), o.numel(), ph, probs.data<P>(), 0.0, hit_value);
        });
      }
      EMBER_CUDA_KERNEL_CHECK();
    });
  });
}

// randperm and multinomial are sequential algorithms: they run on the CPU with the same Philox
// stream and the result is copied to the device (not capturable in a CUDA graph).
void randperm(const KernelArgs& args, const PhiloxAttrs& attrs) {
  run_on_host(args, [&](const KernelArgs& h) { cpu::randperm(h, attrs); });
}
void multinomial(const KernelArgs& args, const MultinomialAttrs& attrs) {
  run_on_host(args, [&](const KernelArgs& h) { cpu::multinomial(h, attrs); });
}

}  // namespace ember::cuda
