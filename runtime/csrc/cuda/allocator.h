#pragma once
// The CUDA caching allocator (allocator.cpp). See Note [Caching allocator] there.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ember::cuda {

struct MemoryStats {
  int64_t allocated_bytes = 0, peak_allocated_bytes = 0;   // in blocks handed to tensors (rounded sizes)
  int64_t requested_bytes = 0;                              // bytes asked for (unrounded)
  int64_t reserved_bytes = 0, peak_reserved_bytes = 0;      // in segments obtained with cudaMalloc
  int64_t active_blocks = 0, segments = 0;
  int64_t num_allocs = 0, num_frees = 0;
  int64_t cache_hits = 0, cache_misses = 0;                 // miss = a cudaMalloc was needed
  int64_t num_splits = 0, num_merges = 0;
  int64_t num_ooms = 0, num_alloc_retries = 0, num_device_frees = 0;
  int64_t inactive_split_bytes = 0;                         // free bytes inside partly used segments
  int64_t pending_event_frees = 0;                          // blocks waiting on record_stream events
};

struct BlockInfo {
  int64_t size;
  int64_t requested;
  bool allocated;
  bool pending;  // freed but waiting on a cross-stream event
};
struct SegmentInfo {
  int device;
  uintptr_t address;
  int64_t total_size;
  int64_t allocated_size;
  bool is_large;
  uintptr_t stream;
  int64_t pool_id;  // 0: the default pools; else a graph's private pool
  std::vector<BlockInfo> blocks;
};

MemoryStats memory_stats(int device);
void reset_peak_memory_stats(int device);
void reset_accumulated_memory_stats(int device);
std::vector<SegmentInfo> memory_snapshot();
void empty_cache();
void set_memory_fraction(double fraction, int device);
std::string format_memory_stats(int device);

// Marks the memory of `t` as used by `stream`: its block is not reused until the work queued on
// `stream` at the time of the free has finished (event-fenced).
void record_stream(const Tensor& t, cudaStream_t stream);

// Graph private pools: between begin/end, allocations on `device` come from pool `id` (never from
// or to the default pools), so a captured graph's memory stays reserved for its replays.
int64_t create_graph_pool();
void begin_allocate_to_pool(int device, int64_t pool_id);
void end_allocate_to_pool(int device);
void release_graph_pool(int device, int64_t pool_id);

}  // namespace ember::cuda
