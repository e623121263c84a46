#pragma once
// Storage: a refcounted block of device memory shared by a tensor and all of its views.
// Note [Version counter]: the counter lives on the storage, so every view (and detach()) of the
// same memory sees each in-place write; autograd compares it against saved tensors' versions.
#include <atomic>
#include <memory>

#include "allocator.h"

namespace ember {

struct StorageImpl {
  StorageImpl(DataPtr data, size_t nbytes) : data(std::move(data)), nbytes(nbytes) {}
  DataPtr data;
  size_t nbytes;
  std::atomic<uint32_t> version{0};

  Device device() const { return data.device(); }
  void* ptr() const { return data.get(); }
  void bump_version() { version.fetch_add(1, std::memory_order_relaxed); }
};

using Storage = std::shared_ptr<StorageImpl>;

inline Storage make_storage(size_t nbytes, Device device) {
  return std::make_shared<StorageImpl>(get_allocator(device.type)->allocate(nbytes, device), nbytes);
}

}  // namespace ember
