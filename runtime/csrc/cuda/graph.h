#pragma once
// CUDA graph capture/replay with a private memory pool (graph.cpp). See Note [CUDA graphs].
#include <cuda_runtime.h>

#include <cstdint>

#include "core/generator.h"

namespace ember::cuda {

class CUDAGraph {
 public:
  CUDAGraph() = default;
  ~CUDAGraph();
  CUDAGraph(const CUDAGraph&) = delete;
  CUDAGraph& operator=(const CUDAGraph&) = delete;

  // Starts capturing the current stream (must not be the default stream). `pool` shares another
  // graph's private pool (0: a new pool).
  void capture_begin(int64_t pool = 0);
  void capture_end();
  void replay();
  void reset();
  int64_t pool() const { return pool_; }
  bool has_graph() const { return exec_ != nullptr; }
  // Kernel launches the captured graph holds (tests bound the launches of multi-tensor ops with it).
  int64_t num_kernel_nodes() const;

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  cudaStream_t capture_stream_ = nullptr;
  int device_ = -1;
  int64_t pool_ = 0;
  bool capturing_ = false;
  uint64_t rng_offset_increment_ = 0;  // Philox offsets the captured RNG kernels consume per replay
  uint64_t* rng_offset_slot_ = nullptr;
};

// RNG hooks (random.cu): during capture, RNG kernels read their base offset from a device slot
// that replay() advances, so every replay draws fresh numbers (graph-safe Philox).
void rng_capture_begin(int device, uint64_t** slot);
uint64_t rng_capture_end(int device);
void rng_replay_prologue(int device, uint64_t* slot, uint64_t increment, cudaStream_t stream);
// Writes a reservation's Philox seed and offset (int64 each, device memory) on the current stream,
// for library kernels that read them from the device (graph-safe like the above; random.cu).
void write_philox_args(int64_t* seed, int64_t* offset, const PhiloxState& state, int device);

}  // namespace ember::cuda
