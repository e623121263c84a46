#pragma once
// Note [Multi-tensor apply]
// One launch works on many tensors. The kernel's argument, a MultiTensorBatch passed by value as a
// __grid_constant__ parameter, holds up to kMultiTensorMaxTensors tensors (kDepth pointers each, e.g.
// param, grad, exp_avg, exp_avg_sq, and a per-tensor scalar such as its step count) and, for each of
// up to kMultiTensorMaxBlocks blocks, which tensor and which kMultiTensorChunk-element chunk of it the
// block updates. The host packs tensors and chunks in list order and launches whenever the tensor or
// the block slots run out; a tensor whose chunks do not all fit continues in the next batch. A
// nanoGPT-sized model (~80 tensors, ~11M elements) takes one launch.
// Same scheme as apex's and torch's multi_tensor_apply, whose 4 KB argument limit fits ~36 tensors
// and 320 blocks per launch; ember builds for sm_80+ with CUDA >= 12.1, where kernel arguments may
// take 32 KB, so the batch is larger (about 14 KB at depth 6).
#include <array>
#include <cstdint>
#include <span>

#include "cuda/cuda_common.h"

namespace ember::cuda {

constexpr int64_t kMultiTensorChunk = 65536;  // elements per block
constexpr int kMultiTensorThreads = 512;
constexpr int kMultiTensorMaxTensors = 128;
constexpr int kMultiTensorMaxBlocks = 1024;

template <int kDepth>
struct MultiTensorBatch {
  void* ptr[kDepth][kMultiTensorMaxTensors];  // ptr[d][s]: list d's pointer for the tensor in slot s
  int64_t numel[kMultiTensorMaxTensors];
  bool aligned[kMultiTensorMaxTensors];        // the slot's element pointers are all 16-byte aligned
  uint8_t block_slot[kMultiTensorMaxBlocks];   // the slot block b updates ...
  int32_t block_chunk[kMultiTensorMaxBlocks];  // ... and which of its chunks
};
static_assert(kMultiTensorMaxTensors <= 256, "block_slot is a uint8_t");
static_assert(sizeof(MultiTensorBatch<6>) < 32764, "kernel arguments are limited to 32764 bytes");

// One tensor of a list call: its kDepth pointers, its element count, whether its element pointers
// are 16-byte aligned (vector loads).
template <int kDepth>
struct MultiTensorEntry {
  std::array<void*, kDepth> ptr;
  int64_t numel;
  bool aligned;
};

// Calls op(batch, slot, begin, len) in block b of the launch for the chunk [begin, begin + len) of
// the tensor in `slot`. op is a functor with a __device__ call operator.
template <int kDepth, typename Op>
__global__ void __launch_bounds__(kMultiTensorThreads)
    multi_tensor_kernel(const __grid_constant__ MultiTensorBatch<kDepth> batch, Op op) {
  const int slot = batch.block_slot[blockIdx.x];
  const int64_t begin = static_cast<int64_t>(batch.block_chunk[blockIdx.x]) * kMultiTensorChunk;
  const int64_t len = batch.numel[slot] - begin < kMultiTensorChunk ? batch.numel[slot] - begin : kMultiTensorChunk;
  op(batch, slot, begin, len);
}

// Runs op over every element of `tensors` (empty ones are skipped) on `stream`, in as few launches as
// the batch holds (Note [Multi-tensor apply]).
template <int kDepth, typename Op>
void multi_tensor_apply(std::span<const MultiTensorEntry<kDepth>> tensors, const Op& op, cudaStream_t stream) {
  MultiTensorBatch<kDepth> batch;
  int slots = 0, blocks = 0;
  auto flush = [&] {
    multi_tensor_kernel<kDepth, Op><<<blocks, kMultiTensorThreads, 0, stream>>>(batch, op);
    EMBER_CUDA_KERNEL_CHECK();
    slots = blocks = 0;
  };
  for (const MultiTensorEntry<kDepth>& t : tensors) {
    const int64_t chunks = (t.numel + kMultiTensorChunk - 1) / kMultiTensorChunk;
    int slot = -1;  // t's slot in the current batch, once it has one
    for (int64_t c = 0; c < chunks; ++c) {
      if (slot < 0) {
        if (slots == kMultiTensorMaxTensors) flush();
        slot = slots++;
        for (int d = 0; d < kDepth; ++d) batch.ptr[d][slot] = t.ptr[d];
        batch.numel[slot] = t.numel;
        batch.aligned[slot] = t.aligned;
      }
      batch.block_slot[blocks] = static_cast<uint8_t>(slot);
      batch.block_chunk[blocks] = static_cast<int32_t>(c);
      if (++blocks == kMultiTensorMaxBlocks) {
        flush();
        slot = -1;  // the rest of t's chunks go into the next batch
      }
    }
  }
  if (blocks > 0) flush();
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace ember::cuda
