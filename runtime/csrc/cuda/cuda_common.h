#pragma once
// Shared pieces of the CUDA backend: error checks, the current device/stream, handles.
// Note [Current stream]: every kernel ember launches goes to current_stream(device), a thread-local
// per device (default: the legacy-free per-device default stream we create lazily). Switching with
// `ember.cuda.stream(s)` changes only the calling thread's current stream, like torch.
#include <cuda_runtime.h>

#include <cstdint>

#include "core/device.h"
#include "core/error.h"

#define EMBER_CUDA_CHECK(expr)                                                                     \
  do {                                                                                             \
    cudaError_t _err = (expr);                                                                     \
    if (_err != cudaSuccess) [[unlikely]] {                                                        \
      cudaGetLastError();                                                                          \
      ::ember::fail(::ember::ErrorKind::Runtime, "[cuda] ", #expr, " failed: ", cudaGetErrorName(_err), \
                    " (", cudaGetErrorString(_err), ")");                                          \
    }                                                                                              \
  } while (0)

// After a kernel launch: reports launch errors (bad configuration) without synchronizing.
#define EMBER_CUDA_KERNEL_CHECK() EMBER_CUDA_CHECK(cudaGetLastError())

namespace ember::cuda {

int device_count();          // 0 when no driver/GPU is usable (never throws)
bool is_available();
int current_device();
void set_device(int index);  // IndexError for an out-of-range index

// RAII: makes `index` current for the scope (no-op when already current).
class DeviceGuard {
 public:
  explicit DeviceGuard(int index);
  explicit DeviceGuard(Device d) : DeviceGuard(static_cast<int>(d.index)) {}
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = -1;
};

// The calling thread's current stream for `device` (-1: current device).
cudaStream_t current_stream(int device = -1);
void set_current_stream(int device, cudaStream_t stream);
// The per-device default stream ember uses when no stream was set (created non-blocking once).
cudaStream_t default_stream(int device);
// True when `stream` is being captured into a CUDA graph (then no host synchronization is allowed).
bool is_capturing(cudaStream_t stream);
// Waits for the current stream of `device` (cudaStreamSynchronize); used by blocking copies.
void synchronize_stream(cudaStream_t stream);
void device_synchronize(int device);

// torch.backends.cuda.matmul.allow_tf32: fp32 matrix products may use TF32 tensor cores.
bool allow_tf32();
void set_allow_tf32(bool on);

// Launch geometry helpers.
constexpr int kBlock = 256;
inline int64_t blocks_for(int64_t n, int64_t per_block = kBlock) { return (n + per_block - 1) / per_block; }
int sm_count(int device = -1);

}  // namespace ember::cuda
