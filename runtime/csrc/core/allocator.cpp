#include "allocator.h"

#include <cstdlib>
#include <new>

namespace ember {
namespace {

// 64-byte alignment keeps AVX-512 loads aligned and matches what BLAS prefers.
constexpr size_t kCpuAlignment = 64;

class CpuAllocator final : public Allocator {
 public:
  DataPtr allocate(size_t nbytes, Device device) override {
    void* p = nullptr;
    if (nbytes > 0) {
      size_t rounded = (nbytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
      p = std::aligned_alloc(kCpuAlignment, rounded);
      EMBER_CHECK(p != nullptr, "[cpu allocator] out of memory allocating ", nbytes, " bytes");
    }
    return DataPtr(p, p, &std::free, device);
  }
};

CpuAllocator g_cpu_allocator;
Allocator* g_allocators[kNumDeviceTypes] = {&g_cpu_allocator, nullptr};

}  // namespace

Allocator* get_allocator(DeviceType type) {
  Allocator* a = g_allocators[static_cast<int>(type)];
  EMBER_CHECK(a != nullptr, "[allocator] no allocator for device type ",
              type == DeviceType::CUDA ? "cuda (ember was built without CUDA or no GPU is present)" : "cpu");
  return a;
}

void set_allocator(DeviceType type, Allocator* allocator) { g_allocators[static_cast<int>(type)] = allocator; }

}  // namespace ember
