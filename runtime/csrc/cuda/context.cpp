// Devices, current streams and library handles of the CUDA backend.
#include <array>
#include <mutex>
#include <vector>

#include "cuda/cuda_common.h"

namespace ember::cuda {
namespace {

constexpr int kMaxDevices = 64;

int probe_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver / no device: report 0, never throw
    return 0;
  }
  return n;
}

// Thread-local current stream per device; nullptr means the default (legacy) stream.
thread_local std::array<cudaStream_t, kMaxDevices> t_current_streams{};
thread_local std::array<bool, kMaxDevices> t_stream_set{};

bool g_allow_tf32 = false;

void check_index(int index, const char* what) {
  const int n = device_count();
  EMBER_CHECK_INDEX(index >= 0 && index < n, "[", what, "] invalid CUDA device index ", index, " (",
                    n, " device", n == 1 ? "" : "s", " available)");
}

}  // namespace

int device_count() {
  static const int n = probe_device_count();
  return n;
}

bool is_available() { return device_count() > 0; }

int current_device() {
  int d = 0;
  EMBER_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void set_device(int index) {
  check_index(index, "cuda.set_device");
  EMBER_CUDA_CHECK(cudaSetDevice(index));
}

DeviceGuard::DeviceGuard(int index) {
  int cur = current_device();
  if (cur != index) {
    check_index(index, "cuda");
    EMBER_CUDA_CHECK(cudaSetDevice(index));
    prev_ = cur;
  }
}

DeviceGuard::~DeviceGuard() {
  if (prev_ >= 0) cudaSetDevice(prev_);
}

cudaStream_t default_stream(int device) { (void)device; return nullptr; }

cudaStream_t current_stream(int device) {
  if (device < 0) device = current_device();
  return t_stream_set[device] ? t_current_streams[device] : default_stream(device);
}

void set_current_stream(int device, cudaStream_t stream) {
  if (device < 0) device = current_device();
  t_current_streams[device] = stream;
  t_stream_set[device] = true;
}

bool is_capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  EMBER_CUDA_CHECK(cudaStreamIsCapturing(stream, &status));
  return status != cudaStreamCaptureStatusNone;
}

void synchronize_stream(cudaStream_t stream) {
  EMBER_CHECK(!is_capturing(stream), "[cuda] cannot synchronize a stream that is being captured into a CUDA graph "
              "(an op needed a host synchronization; it is not capturable)");
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void device_synchronize(int device) {
  DeviceGuard g(device < 0 ? current_device() : device);
  EMBER_CUDA_CHECK(cudaDeviceSynchronize());
}

int sm_count(int device) {
  static std::array<int, kMaxDevices> counts{};
  if (device < 0) device = current_device();
  if (counts[device] == 0) {
    int n = 0;
    EMBER_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
    counts[device] = n;
  }
  return counts[device];
}

bool allow_tf32() { return g_allow_tf32; }
void set_allow_tf32(bool on) { g_allow_tf32 = on; }

}  // namespace ember::cuda
