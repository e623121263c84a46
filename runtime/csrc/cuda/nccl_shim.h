#pragma once
// NCCL, loaded at run time (dlopen) like cuBLAS (cublas_shim.h): the CUDA backend builds without
// NCCL's headers or library, and runs with whichever libnccl.so.2 the process can load (the system
// one, or the nvidia-nccl wheel a torch install brings). Only the entry points ember uses are
// declared; enum values and the 128-byte unique id are NCCL's stable ABI.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace ember::cuda::nccl {

using Comm = struct ncclComm*;
using Result = int;  // ncclResult_t: 0 success, 7 in progress
constexpr Result kSuccess = 0;
constexpr Result kInProgress = 7;
constexpr int kUniqueIdBytes = 128;
struct UniqueId {
  char internal[kUniqueIdBytes];
};
enum RedOp : int { kSum = 0, kProd = 1, kMax = 2, kMin = 3, kAvg = 4 };

struct Api {
  Result (*get_version)(int*);
  Result (*get_unique_id)(UniqueId*);
  Result (*comm_init_rank)(Comm*, int, UniqueId, int);
  Result (*comm_abort)(Comm);
  Result (*comm_destroy)(Comm);
  Result (*comm_get_async_error)(Comm, Result*);
  const char* (*get_error_string)(Result);
  Result (*all_reduce)(const void*, void*, size_t, int, int, Comm, cudaStream_t);
  Result (*broadcast)(const void*, void*, size_t, int, int, Comm, cudaStream_t);
  Result (*all_gather)(const void*, void*, size_t, int, Comm, cudaStream_t);
  Result (*reduce_scatter)(const void*, void*, size_t, int, int, Comm, cudaStream_t);
  Result (*group_start)();
  Result (*group_end)();
};

// True when a libnccl could be loaded (never throws); load_error() says why not.
bool available();
std::string load_error();
// The loaded API; RuntimeError naming the libraries tried when NCCL cannot be loaded.
const Api& api();
int version();  // e.g. 22703 for 2.27.3

// One rank's communicator on one device. Collectives take contiguous CUDA tensors on that device
// and are enqueued on `stream` (the caller orders them against its other streams with events).
class Communicator {
 public:
  Communicator(const UniqueId& id, int world_size, int rank, int device);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  void all_reduce(const Tensor& in, const Tensor& out, RedOp op, cudaStream_t stream);
  void broadcast(const Tensor& in, const Tensor& out, int root, cudaStream_t stream);
  // out holds world_size blocks of in.numel() elements, in rank order.
  void all_gather(const Tensor& in, const Tensor& out, cudaStream_t stream);
  // in holds world_size blocks of out.numel() elements; rank r gets the reduction of block r.
  void reduce_scatter(const Tensor& in, const Tensor& out, RedOp op, cudaStream_t stream);
  // Error recorded by NCCL's asynchronous machinery (a peer died, a network error); "" when none.
  std::string async_error();
  void abort();    // frees the communicator without waiting for outstanding work (unblocks it)
  void destroy();  // frees it after outstanding work completes
  bool valid() const { return comm_ != nullptr; }
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  int device() const { return device_; }

 private:
  void check_tensor(const Tensor& t, const char* op, const char* what) const;
  Comm comm_ = nullptr;
  int world_size_, rank_, device_;
};

}  // namespace ember::cuda::nccl
