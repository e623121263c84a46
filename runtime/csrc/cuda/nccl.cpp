// NCCL communicators for ember.distributed's "nccl" backend (nccl_shim.h). The Python layer owns
// the rendezvous (the unique id travels through its TCP store), streams and events; this file
// loads the library and turns tensors into NCCL calls with checked arguments.
#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "cuda/cuda_common.h"
#include "cuda/nccl_shim.h"

namespace ember::cuda::nccl {
namespace {

struct Loaded {
  Api api{};
  std::string error;  // empty when loaded
};

Loaded load() {
  Loaded out;
  const char* env = std::getenv("EMBER_NCCL_PATH");
  const std::string candidates[] = {env ? env : "", "libnccl.so.2", "libnccl.so",
                                    "/usr/local/cuda/lib64/libnccl.so.2", "/usr/lib/x86_64-linux-gnu/libnccl.so.2"};
  void* lib = nullptr;
  std::string tried;
  for (const auto& name : candidates) {
    if (name.empty()) continue;
    lib = dlopen(name.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (lib) break;
    tried += (tried.empty() ? "" : ", ") + name;
  }
  if (!lib) {
    out.error = "could not load NCCL (tried " + tried + "); set EMBER_NCCL_PATH to libnccl.so.2's path";
    return out;
  }
  Api& a = out.api;
  auto sym = [&](const char* name) -> void* {
    void* p = dlsym(lib, name);
    if (!p && out.error.empty()) out.error = std::string("NCCL has no symbol ") + name;
    return p;
  };
  a.get_version = reinterpret_cast<decltype(a.get_version)>(sym("ncclGetVersion"));
  a.get_unique_id = reinterpret_cast<decltype(a.get_unique_id)>(sym("ncclGetUniqueId"));
  a.comm_init_rank = reinterpret_cast<decltype(a.comm_init_rank)>(sym("ncclCommInitRank"));
  a.comm_abort = reinterpret_cast<decltype(a.comm_abort)>(sym("ncclCommAbort"));
  a.comm_destroy = reinterpret_cast<decltype(a.comm_destroy)>(sym("ncclCommDestroy"));
  a.comm_get_async_error = reinterpret_cast<decltype(a.comm_get_async_error)>(sym("ncclCommGetAsyncError"));
  a.get_error_string = reinterpret_cast<decltype(a.get_error_string)>(sym("ncclGetErrorString"));
  a.all_reduce = reinterpret_cast<decltype(a.all_reduce)>(sym("ncclAllReduce"));
  a.broadcast = reinterpret_cast<decltype(a.broadcast)>(sym("ncclBroadcast"));
  a.all_gather = reinterpret_cast<decltype(a.all_gather)>(sym("ncclAllGather"));
  a.reduce_scatter = reinterpret_cast<decltype(a.reduce_scatter)>(sym("ncclReduceScatter"));
  a.group_start = reinterpret_cast<decltype(a.group_start)>(sym("ncclGroupStart"));
  a.group_end = reinterpret_cast<decltype(a.group_end)>(sym("ncclGroupEnd"));
  return out;
}

const Loaded& loaded() {
  static const Loaded l = load();
  return l;
}

// ncclDataType_t for an ember dtype (bool travels as uint8: NCCL has no bool type).
int data_type(ScalarType t, const char* op) {
  switch (t) {
    case ScalarType::Bool:
    case ScalarType::UInt8: return 1;
    case ScalarType::Int8: return 0;
    case ScalarType::Int32: return 2;
    case ScalarType::Int64: return 4;
    case ScalarType::Float16: return 6;
    case ScalarType::Float32: return 7;
    case ScalarType::Float64: return 8;
    case ScalarType::BFloat16: return 9;
  }
  fail(ErrorKind::Type, "[distributed.", op, "] NCCL does not support dtype ", dtype_name(t));
}

void check(Result r, const char* op) {
  if (r == kSuccess || r == kInProgress) return;
  fail(ErrorKind::Runtime, "[distributed.", op, "] NCCL error ", r, ": ", api().get_error_string(r));
}

}  // namespace

bool available() { return loaded().error.empty(); }
std::string load_error() { return loaded().error; }

const Api& api() {
  const Loaded& l = loaded();
  EMBER_CHECK(l.error.empty(), "[distributed] ", l.error);
  return l.api;
}

int version() {
  int v = 0;
  check(api().get_version(&v), "nccl_version");
  return v;
}

Communicator::Communicator(const UniqueId& id, int world_size, int rank, int device)
    : world_size_(world_size), rank_(rank), device_(device) {
  EMBER_CHECK_VALUE(world_size > 0 && rank >= 0 && rank < world_size, "[distributed.init_process_group] rank ",
                    rank, " is out of range for world size ", world_size);
  DeviceGuard guard(device);
  check(api().comm_init_rank(&comm_, world_size, id, rank), "init_process_group");
}

Communicator::~Communicator() {
  if (comm_) api().comm_destroy(comm_);
}

void Communicator::check_tensor(const Tensor& t, const char* op, const char* what) const {
  EMBER_CHECK(comm_ != nullptr, "[distributed.", op, "] the NCCL communicator was destroyed or aborted");
  EMBER_CHECK_VALUE(t.device().is_cuda() && t.device().index == device_, "[distributed.", op, "] ", what,
                    " must be on cuda:", device_, " (this rank's NCCL device), got ", describe(t));
  EMBER_CHECK_VALUE(t.is_contiguous(), "[distributed.", op, "] ", what, " must be contiguous, got ", describe(t));
}

void Communicator::all_reduce(const Tensor& in, const Tensor& out, RedOp op, cudaStream_t stream) {
  check_tensor(in, "all_reduce", "input");
  check_tensor(out, "all_reduce", "output");
  EMBER_CHECK_VALUE(in.numel() == out.numel() && in.dtype() == out.dtype(), "[distributed.all_reduce] input ",
                    describe(in), " and output ", describe(out), " differ");
  DeviceGuard guard(device_);
  check(api().all_reduce(in.data_ptr(), out.data_ptr(), in.numel(), data_type(in.dtype(), "all_reduce"), op,
                         comm_, stream), "all_reduce");
}

void Communicator::broadcast(const Tensor& in, const Tensor& out, int root, cudaStream_t stream) {
  check_tensor(in, "broadcast", "input");
  check_tensor(out, "broadcast", "output");
  EMBER_CHECK_VALUE(root >= 0 && root < world_size_, "[distributed.broadcast] root ", root,
                    " is out of range for world size ", world_size_);
  DeviceGuard guard(device_);
  check(api().broadcast(in.data_ptr(), out.data_ptr(), out.numel(), data_type(out.dtype(), "broadcast"), root,
                        comm_, stream), "broadcast");
}

void Communicator::all_gather(const Tensor& in, const Tensor& out, cudaStream_t stream) {
  check_tensor(in, "all_gather", "input");
  check_tensor(out, "all_gather", "output");
  EMBER_CHECK_VALUE(out.numel() == in.numel() * world_size_ && in.dtype() == out.dtype(),
                    "[distributed.all_gather] output ", describe(out), " must hold world_size (", world_size_,
                    ") x input ", describe(in));
  DeviceGuard guard(device_);
  check(api().all_gather(in.data_ptr(), out.data_ptr(), in.numel(), data_type(in.dtype(), "all_gather"), comm_,
                         stream), "all_gather");
}

void Communicator::reduce_scatter(const Tensor& in, const Tensor& out, RedOp op, cudaStream_t stream) {
  check_tensor(in, "reduce_scatter", "input");
  check_tensor(out, "reduce_scatter", "output");
  EMBER_CHECK_VALUE(in.numel() == out.numel() * world_size_ && in.dtype() == out.dtype(),
                    "[distributed.reduce_scatter] input ", describe(in), " must hold world_size (", world_size_,
                    ") x output ", describe(out));
  DeviceGuard guard(device_);
  check(api().reduce_scatter(in.data_ptr(), out.data_ptr(), out.numel(), data_type(in.dtype(), "reduce_scatter"),
                             op, comm_, stream), "reduce_scatter");
}

std::string Communicator::async_error() {
  if (!comm_) return "";
  Result r = kSuccess;
  Result q = api().comm_get_async_error(comm_, &r);
  if (q != kSuccess) return std::string("ncclCommGetAsyncError failed: ") + api().get_error_string(q);
  if (r == kSuccess || r == kInProgress) return "";
  return std::string("NCCL error ") + std::to_string(r) + ": " + api().get_error_string(r);
}

void Communicator::abort() {
  if (!comm_) return;
  Comm c = comm_;
  comm_ = nullptr;
  api().comm_abort(c);
}

void Communicator::destroy() {
  if (!comm_) return;
  Comm c = comm_;
  comm_ = nullptr;
  DeviceGuard guard(device_);
  check(api().comm_destroy(c), "destroy_process_group");
}

}  // namespace ember::cuda::nccl
