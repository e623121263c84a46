// Note [CUDA graphs]
// capture_begin: waits for the device (so no earlier work races with the capture), routes this
// device's allocations to a private pool (allocator.h) and begins a thread-local capture of the
// current stream (relaxed mode: the allocator may cudaMalloc new pool segments while capturing). Tensors allocated during capture live in that pool, whose memory is never handed
// to other allocations while the graph exists, so replays can rewrite it. Ops that synchronize the
// host (blocking copies, index validation) are not capturable and raise. RNG kernels captured in
// the graph read their Philox offset from a device slot that replay() advances first.
#include "cuda/graph.h"

#include <vector>

#include "cuda/allocator.h"
#include "cuda/cuda_common.h"

namespace ember::cuda {

CUDAGraph::~CUDAGraph() {
  try {
    reset();
  } catch (...) {
  }
}

void CUDAGraph::capture_begin(int64_t pool) {
  EMBER_CHECK(!capturing_ && exec_ == nullptr, "[cuda.CUDAGraph] capture_begin on a graph that already holds a "
              "capture; call reset() first");
  device_ = current_device();
  capture_stream_ = current_stream(device_);
  EMBER_CHECK(capture_stream_ != nullptr, "[cuda.CUDAGraph] cannot capture the default stream; capture on a side "
              "stream (ember.cuda.graph(...) does this for you)");
  EMBER_CUDA_CHECK(cudaDeviceSynchronize());
  pool_ = pool != 0 ? pool : create_graph_pool();
  begin_allocate_to_pool(device_, pool_);
  rng_capture_begin(device_, &rng_offset_slot_);
  cudaError_t err = cudaStreamBeginCapture(capture_stream_, cudaStreamCaptureModeRelaxed);
  if (err != cudaSuccess) {
    end_allocate_to_pool(device_);
    rng_capture_end(device_);
    EMBER_CUDA_CHECK(err);
  }
  capturing_ = true;
}

void CUDAGraph::capture_end() {
  EMBER_CHECK(capturing_, "[cuda.CUDAGraph] capture_end without capture_begin");
  capturing_ = false;
  cudaError_t err = cudaStreamEndCapture(capture_stream_, &graph_);
  end_allocate_to_pool(device_);
  rng_offset_increment_ = rng_capture_end(device_);
  EMBER_CUDA_CHECK(err);
  EMBER_CHECK(graph_ != nullptr, "[cuda.CUDAGraph] capture produced no graph (was the capture invalidated by "
              "another stream or a synchronizing call?)");
  EMBER_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
}

void CUDAGraph::replay() {
  EMBER_CHECK(exec_ != nullptr, "[cuda.CUDAGraph] replay() before a successful capture");
  DeviceGuard guard(device_);
  cudaStream_t stream = current_stream(device_);
  if (rng_offset_increment_ > 0) rng_replay_prologue(device_, rng_offset_slot_, rng_offset_increment_, stream);
  EMBER_CUDA_CHECK(cudaGraphLaunch(exec_, stream));
}

int64_t CUDAGraph::num_kernel_nodes() const {
  EMBER_CHECK(graph_ != nullptr, "[cuda.CUDAGraph] num_kernel_nodes() before a successful capture");
  size_t n = 0;
  EMBER_CUDA_CHECK(cudaGraphGetNodes(graph_, nullptr, &n));
  std::vector<cudaGraphNode_t> nodes(n);
  EMBER_CUDA_CHECK(cudaGraphGetNodes(graph_, nodes.data(), &n));
  int64_t kernels = 0;
  for (cudaGraphNode_t node : nodes) {
    cudaGraphNodeType type;
    EMBER_CUDA_CHECK(cudaGraphNodeGetType(node, &type));
    kernels += type == cudaGraphNodeTypeKernel;
  }
  return kernels;
}

void CUDAGraph::reset() {
  if (capturing_) {
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(capture_stream_, &g);
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
    end_allocate_to_pool(device_);
    rng_capture_end(device_);
    capturing_ = false;
  }
  if (exec_) { cudaGraphExecDestroy(exec_); exec_ = nullptr; }
  if (graph_) { cudaGraphDestroy(graph_); graph_ = nullptr; }
  if (pool_ != 0) {
    release_graph_pool(device_, pool_);
    pool_ = 0;
  }
  if (rng_offset_slot_) { cudaFree(rng_offset_slot_); rng_offset_slot_ = nullptr; }
}

}  // namespace ember::cuda
