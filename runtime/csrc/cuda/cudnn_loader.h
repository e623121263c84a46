#pragma once
// cuDNN, loaded at run time (dlopen) like cuBLAS (cublas_shim.h): ember builds and imports without
// it, and the cuDNN paths (fused attention, later convolutions) report "unavailable" instead of
// failing to load. See Note [Loading cuDNN] in cudnn_loader.cpp.
//
// Only the entry points ember calls directly are declared here, with cuDNN's stable ABI types, so
// this header needs no cuDNN headers; graphs go through cudnn-frontend (cudnn_graph.h), which
// resolves the rest of the API from the same library handle.
#include <cuda_runtime.h>

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace ember::cuda::cudnn {

using Handle = struct cudnnContext*;  // cudnnHandle_t
using Status = int;                   // cudnnStatus_t (0 = CUDNN_STATUS_SUCCESS)

struct Api {
  Status (*create)(Handle*);
  Status (*set_stream)(Handle, cudaStream_t);
  size_t (*get_version)();
  const char* (*get_error_string)(Status);
};

// Loads libcudnn once: $EMBER_CUDNN_PATH, then `candidates` (the Python side passes the nvidia
// wheel's copy), then the default names. Later calls return the first call's result.
bool load(const std::vector<std::string>& candidates = {});
bool is_loaded();
// Why cuDNN is unavailable ("" when loaded): the libraries tried and dlopen's last error.
std::string unavailable_reason();
// The loaded library's version as cuDNN encodes it (9.8.1 -> 90801); 0 when not loaded.
size_t version();
// The loaded API and dlopen handle; RuntimeError naming the reason when cuDNN is not loaded.
const Api& api();
void* library();
std::string status_string(Status s);

// The current device's cuDNN handle bound to the current stream, held exclusively for the lease's
// lifetime (a cuDNN handle must not be used by two host threads at once).
class HandleLease {
 public:
  HandleLease();
  Handle get() const { return handle_; }

 private:
  std::unique_lock<std::mutex> lock_;
  Handle handle_ = nullptr;
};

}  // namespace ember::cuda::cudnn
