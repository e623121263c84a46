// Run-time loading of cuDNN and its per-device handles (cudnn_loader.h).
//
// Note [Loading cuDNN]
// ember links neither cuDNN nor its headers into the core build: CI and CPU-only users have no
// cuDNN, and torch/nvidia wheels bring their own copy. The library is dlopen-ed on first use
// (ember.cuda.cudnn.is_available() or the first fused-attention call), from $EMBER_CUDNN_PATH,
// the candidates the Python side found (site-packages/nvidia/cudnn/lib), then the soname. cuDNN 9
// splits into sub-libraries (graph, engines, heuristics) that libcudnn.so.9 loads from its own
// folder, so one dlopen is enough. cudnn-frontend is compiled with NV_CUDNN_FRONTEND_USE_DYNAMIC_
// LOADING: it resolves every backend call through `cudnn_frontend::cudnn_dlhandle`, which we set
// here, so ember and the frontend always talk to the same library. A failed load is remembered
// with its reason; callers fall back to their composite paths (Python notes it once).
#include "cuda/cudnn_loader.h"

#include <dlfcn.h>

#include <array>
#include <cstdlib>

#include "cuda/cuda_common.h"

#ifdef EMBER_WITH_CUDNN
namespace cudnn_frontend {
void* cudnn_dlhandle = nullptr;  // declared by cudnn_frontend_shim.h under dynamic loading
}  // namespace cudnn_frontend
#endif

namespace ember::cuda::cudnn {
namespace {

constexpr size_t kMinVersion = 90000;  // the SDPA graphs need cuDNN 9

struct State {
  std::mutex mutex;
  bool attempted = false;
  void* lib = nullptr;
  Api api{};
  size_t version = 0;
  std::string reason = "cuDNN has not been loaded yet";
};

State& state() {
  static State* s = new State();  // leaked: handles outlive static destruction order
  return *s;
}

bool try_load(State& s, const std::vector<std::string>& candidates) {
  std::vector<std::string> names;
  if (const char* env = std::getenv("EMBER_CUDNN_PATH"); env && *env) names.emplace_back(env);
  names.insert(names.end(), candidates.begin(), candidates.end());
  names.insert(names.end(), {"libcudnn.so.9", "libcudnn.so"});
  std::string tried, last_error;
  for (const auto& name : names) {
    dlerror();
    s.lib = dlopen(name.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (s.lib) break;
    const char* err = dlerror();
    last_error = err ? err : "unknown dlopen error";
    tried += (tried.empty() ? "" : ", ") + name;
  }
  if (!s.lib) {
    s.reason = "could not load cuDNN (tried " + tried + "; last error: " + last_error +
               "); install nvidia-cudnn-cu13 or set EMBER_CUDNN_PATH to libcudnn.so.9";
    return false;
  }
  const char* missing = nullptr;
  auto sym = [&](const char* name) {
    void* p = dlsym(s.lib, name);
    if (!p && !missing) missing = name;
    return p;
  };
  s.api.create = reinterpret_cast<decltype(s.api.create)>(sym("cudnnCreate"));
  s.api.set_stream = reinterpret_cast<decltype(s.api.set_stream)>(sym("cudnnSetStream"));
  s.api.get_version = reinterpret_cast<decltype(s.api.get_version)>(sym("cudnnGetVersion"));
  s.api.get_error_string = reinterpret_cast<decltype(s.api.get_error_string)>(sym("cudnnGetErrorString"));
  if (missing) {
    s.reason = std::string("the loaded cuDNN has no symbol ") + missing;
    s.lib = nullptr;
    return false;
  }
  const size_t v = s.api.get_version();
  if (v < kMinVersion) {
    s.reason = "cuDNN " + std::to_string(v) + " is too old: ember's cuDNN paths need cuDNN 9";
    s.lib = nullptr;
    return false;
  }
  s.version = v;
  s.reason.clear();
#ifdef EMBER_WITH_CUDNN
  cudnn_frontend::cudnn_dlhandle = s.lib;
  // The frontend dlopens libcudart by soname and warns when both .12 and .13 exist; point it at
  // the major ember was built against (already loaded, so the soname resolves to the same copy).
  setenv("CUDNN_FRONTEND_CUDART_LIB_NAME", ("libcudart.so." + std::to_string(CUDART_VERSION / 1000)).c_str(), 0);
#endif
  return true;
}

struct DeviceHandles {
  std::array<std::mutex, 64> mutex;
  std::array<Handle, 64> handle{};
};
DeviceHandles& device_handles() {
  static DeviceHandles* h = new DeviceHandles();  // leaked like cuBLAS's: destroyed with the context
  return *h;
}

}  // namespace

bool load(const std::vector<std::string>& candidates) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.attempted) {
    s.attempted = true;
    try_load(s, candidates);
  }
  return s.lib != nullptr;
}

bool is_loaded() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.lib != nullptr;
}

std::string unavailable_reason() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.reason;
}

size_t version() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.version;
}

const Api& api() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  EMBER_CHECK(s.lib != nullptr, "[cudnn] cuDNN is not available: ", s.reason);
  return s.api;
}

void* library() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.lib;
}

std::string status_string(Status st) {
  const Api& a = api();
  const char* msg = a.get_error_string ? a.get_error_string(st) : nullptr;
  return msg ? std::string(msg) : "cuDNN status " + std::to_string(st);
}

HandleLease::HandleLease() {
  const Api& a = api();
  const int dev = current_device();
  DeviceHandles& h = device_handles();
  lock_ = std::unique_lock<std::mutex>(h.mutex[dev]);
  if (!h.handle[dev]) {
    Handle nh = nullptr;
    const Status st = a.create(&nh);
    EMBER_CHECK(st == 0, "[cudnn] cudnnCreate failed on cuda:", dev, ": ", status_string(st));
    h.handle[dev] = nh;
  }
  handle_ = h.handle[dev];
  const Status st = a.set_stream(handle_, current_stream(dev));
  EMBER_CHECK(st == 0, "[cudnn] cudnnSetStream failed: ", status_string(st));
}

}  // namespace ember::cuda::cudnn
