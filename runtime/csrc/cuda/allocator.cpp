// Note [Caching allocator]
// cudaMalloc/cudaFree synchronize the device and are slow, so freed blocks are cached and reused.
// - Stream-ordered: a block belongs to the stream it was allocated on and is reused only by later
//   allocations on that stream, whose work is ordered after every earlier use of the block.
//   record_stream(t, s) marks a block as also used by stream s; freeing it then records an event on
//   s and the block returns to the cache only once that event has completed.
// - Two pools: small requests (<= 1 MiB) are carved from 2 MiB segments, large ones from 20 MiB
//   segments (requests < 10 MiB) or segments of their own rounded to 2 MiB. Sizes round up to 512 B.
// - Splitting and coalescing: a cached block bigger than needed is split and the remainder stays
//   cached; on free, a block merges with free neighbours of the same segment.
// - OOM: when cudaMalloc fails (or the per-process fraction would be exceeded) the allocator waits
//   for pending events, releases every fully free cached segment and retries once; then it raises a
//   RuntimeError that prints the stats.
// - Graph pools: during CUDA graph capture allocations come from a private pool (see graph.cpp).
#include "cuda/allocator.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <cstdio>
#include <unordered_map>
#include <unordered_set>

#include "core/allocator.h"
#include "cuda/cuda_common.h"

namespace ember::cuda {
namespace {

constexpr size_t kMinBlockSize = 512;
constexpr size_t kSmallSize = 1 << 20;          // largest "small" request
constexpr size_t kSmallBuffer = 2 << 20;        // segment size of the small pool
constexpr size_t kLargeBuffer = 20 << 20;       // segment size for requests in (1, 10) MiB
constexpr size_t kMinLargeAlloc = 10 << 20;
constexpr size_t kRoundLarge = 2 << 20;
constexpr int kMaxDevices = 64;

struct BlockPool;

struct Block {
  int device;
  cudaStream_t stream;
  size_t size;
  size_t requested = 0;
  void* ptr;
  BlockPool* pool;
  bool allocated = false;
  int event_count = 0;  // outstanding record_stream events
  Block* prev = nullptr;
  Block* next = nullptr;
  std::unordered_set<cudaStream_t> stream_uses;
  Block(int d, cudaStream_t s, size_t sz, BlockPool* p, void* ptr_) : device(d), stream(s), size(sz), ptr(ptr_), pool(p) {}
  bool is_split() const { return prev != nullptr || next != nullptr; }
};

struct BlockLess {
  bool operator()(const Block* a, const Block* b) const {
    if (a->stream != b->stream) return reinterpret_cast<uintptr_t>(a->stream) < reinterpret_cast<uintptr_t>(b->stream);
    if (a->size != b->size) return a->size < b->size;
    return reinterpret_cast<uintptr_t>(a->ptr) < reinterpret_cast<uintptr_t>(b->ptr);
  }
};

struct BlockPool {
  std::set<Block*, BlockLess> blocks;
  bool is_small;
  int64_t pool_id;  // 0 for the default pools
  BlockPool(bool small, int64_t id) : is_small(small), pool_id(id) {}
};

struct PrivatePool {
  BlockPool large{false, 0}, small{true, 0};
  int use_count = 1;
  PrivatePool(int64_t id) : large(false, id), small(true, id) {}
};

size_t round_size(size_t n) {
  if (n < kMinBlockSize) return kMinBlockSize;
  return (n + kMinBlockSize - 1) / kMinBlockSize * kMinBlockSize;
}

size_t segment_size(size_t n) {
  if (n <= kSmallSize) return kSmallBuffer;
  if (n < kMinLargeAlloc) return kLargeBuffer;
  return (n + kRoundLarge - 1) / kRoundLarge * kRoundLarge;
}

class DeviceAllocator {
 public:
  explicit DeviceAllocator(int device) : device_(device) {}

  Block* malloc(size_t requested, cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!capturing_now()) process_events();
    const size_t size = round_size(requested);
    BlockPool& pool = pick_pool(size);
    Block* block = take_cached(pool, stream, size);
    if (block) {
      stats_.cache_hits++;
    } else {
      stats_.cache_misses++;
      block = new_segment(pool, stream, size);
      if (!block) {
        // Free what the cache holds (after pending frees complete) and retry once.
        stats_.num_alloc_retries++;
        if (!capturing_now()) synchronize_and_process_events();
        release_cached(/*only_default_pools=*/false);
        block = new_segment(pool, stream, size);
      }
      if (!block) {
        stats_.num_ooms++;
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        cudaGetLastError();
        std::string msg = "[cuda allocator] CUDA out of memory. Tried to allocate " + format_bytes(size) + " on cuda:" +
                          std::to_string(device_) + ". GPU has " + format_bytes(total_b) + " total, " +
                          format_bytes(free_b) + " free" +
                          (limit_ ? "; per-process limit " + format_bytes(limit_) : std::string()) + ". " +
                          format_bytes(stats_.allocated_bytes) + " allocated by ember, " +
                          format_bytes(stats_.reserved_bytes) + " reserved (" +
                          format_bytes(stats_.reserved_bytes - stats_.allocated_bytes) +
                          " reserved but unallocated). Stats: " + format_locked();
        throw Error(ErrorKind::Runtime, std::move(msg));
      }
    }
    // Split off the unused tail when it is worth keeping.
    const size_t remaining = block->size - size;
    if (pool.is_small ? remaining >= kMinBlockSize : remaining > kSmallSize) {
      auto* rest = new Block(device_, stream, remaining, &pool, static_cast<char*>(block->ptr) + size);
      rest->prev = block;
      rest->next = block->next;
      if (rest->next) rest->next->prev = rest;
      block->next = rest;
      block->size = size;
      pool.blocks.insert(rest);
      stats_.num_splits++;
    }
    block->allocated = true;
    block->requested = requested;
    active_.emplace(block->ptr, block);
    stats_.num_allocs++;
    stats_.active_blocks++;
    stats_.allocated_bytes += block->size;
    stats_.requested_bytes += requested;
    stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
    return block;
  }

  void free(Block* block) {
    std::lock_guard<std::mutex> lock(mu_);
    active_.erase(block->ptr);
    block->allocated = false;
    stats_.num_frees++;
    stats_.active_blocks--;
    stats_.allocated_bytes -= block->size;
    stats_.requested_bytes -= block->requested;
    if (!block->stream_uses.empty() && !capturing_now()) {
      // Event-fenced reuse: the block returns to the cache once every recorded stream is past here.
      for (cudaStream_t s : block->stream_uses) {
        cudaEvent_t ev = get_event();
        if (cudaEventRecord(ev, s) != cudaSuccess) { cudaGetLastError(); put_event(ev); continue; }
        block->event_count++;
        events_.emplace_back(ev, block);
      }
      block->stream_uses.clear();
      if (block->event_count > 0) { stats_.pending_event_frees++; return; }
    }
    block->stream_uses.clear();
    free_block(block);
  }

  void record_stream(void* ptr, cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = active_.find(ptr);
    EMBER_CHECK(it != active_.end(), "[cuda.record_stream] the tensor's memory was not allocated by ember's caching allocator");
    Block* b = it->second;
    if (stream != b->stream) b->stream_uses.insert(stream);
  }

  void empty_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    synchronize_and_process_events();
    release_cached(/*only_default_pools=*/true);
  }

  void set_fraction(double fraction) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t free_b = 0, total_b = 0;
    EMBER_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    limit_ = static_cast<size_t>(fraction * static_cast<double>(total_b));
  }

  MemoryStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    MemoryStats s = stats_;
    s.inactive_split_bytes = inactive_split_bytes();
    return s;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
    stats_.peak_reserved_bytes = stats_.reserved_bytes;
  }
  void reset_accumulated() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.num_allocs = stats_.num_frees = stats_.cache_hits = stats_.cache_misses = 0;
    stats_.num_splits = stats_.num_merges = stats_.num_ooms = stats_.num_alloc_retries = stats_.num_device_frees = 0;
  }
  std::string format() {
    std::lock_guard<std::mutex> lock(mu_);
    return format_locked();
  }

  void snapshot(std::vector<SegmentInfo>& out) {
    std::lock_guard<std::mutex> lock(mu_);
    for (Block* head : segments_) {
      SegmentInfo seg{device_, reinterpret_cast<uintptr_t>(head->ptr), 0, 0, !head->pool->is_small,
                      reinterpret_cast<uintptr_t>(head->stream), head->pool->pool_id, {}};
      for (Block* b = head; b; b = b->next) {
        seg.total_size += static_cast<int64_t>(b->size);
        if (b->allocated) seg.allocated_size += static_cast<int64_t>(b->size);
        seg.blocks.push_back({static_cast<int64_t>(b->size), static_cast<int64_t>(b->requested), b->allocated,
                              !b->allocated && b->event_count > 0});
      }
      out.push_back(std::move(seg));
    }
  }

  // Graph pools.
  void begin_pool(int64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = private_pools_.find(id);
    if (it == private_pools_.end()) private_pools_.emplace(id, std::make_unique<PrivatePool>(id));
    else it->second->use_count++;
    capture_pool_ = id;
  }
  void end_pool() {
    std::lock_guard<std::mutex> lock(mu_);
    capture_pool_ = 0;
  }
  void release_pool(int64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = private_pools_.find(id);
    if (it == private_pools_.end()) return;
    if (--it->second->use_count > 0) return;
    // Free the pool's fully free segments; blocks still held by tensors return here when freed and
    // are released by a later empty_cache (their pool is then marked dead).
    release_pool_blocks(it->second->large);
    release_pool_blocks(it->second->small);
    dead_pools_.push_back(std::move(it->second));
    private_pools_.erase(it);
  }

 private:
  bool capturing_now() const { return capture_pool_ != 0; }

  BlockPool& pick_pool(size_t size) {
    if (capture_pool_ != 0) {
      PrivatePool& p = *private_pools_.at(capture_pool_);
      return size <= kSmallSize ? p.small : p.large;
    }
    return size <= kSmallSize ? small_ : large_;
  }

  Block* take_cached(BlockPool& pool, cudaStream_t stream, size_t size) {
    Block key(device_, stream, size, &pool, nullptr);
    auto it = pool.blocks.lower_bound(&key);
    if (it == pool.blocks.end() || (*it)->stream != stream) return nullptr;
    Block* b = *it;
    pool.blocks.erase(it);
    return b;
  }

  Block* new_segment(BlockPool& pool, cudaStream_t stream, size_t size) {
    const size_t seg = segment_size(size);
    if (limit_ && static_cast<size_t>(stats_.reserved_bytes) + seg > limit_) return nullptr;
    void* ptr = nullptr;
    DeviceGuard guard(device_);
    if (cudaMalloc(&ptr, seg) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    stats_.reserved_bytes += seg;
    stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
    stats_.segments++;
    auto* b = new Block(device_, stream, seg, &pool, ptr);
    segments_.insert(b);
    return b;
  }

  // Returns a free block to its pool, merging it with free neighbours of the same segment (a block
  // merges into its predecessor, so the segment's head block never changes).
  void free_block(Block* block) {
    BlockPool& pool = *block->pool;
    Block* prev = block->prev;
    if (prev && !prev->allocated && prev->event_count == 0) {
      pool.blocks.erase(prev);
      prev->size += block->size;
      prev->next = block->next;
      if (prev->next) prev->next->prev = prev;
      delete block;
      block = prev;
      stats_.num_merges++;
    }
    Block* next = block->next;
    if (next && !next->allocated && next->event_count == 0) {
      pool.blocks.erase(next);
      block->size += next->size;
      block->next = next->next;
      if (block->next) block->next->prev = block;
      delete next;
      stats_.num_merges++;
    }
    pool.blocks.insert(block);
  }

  void process_events() {
    while (!events_.empty()) {
      auto [ev, block] = events_.front();
      cudaError_t st = cudaEventQuery(ev);
      if (st == cudaErrorNotReady) { cudaGetLastError(); break; }
      if (st != cudaSuccess) cudaGetLastError();
      events_.pop_front();
      put_event(ev);
      if (--block->event_count == 0) {
        stats_.pending_event_frees--;
        free_block(block);
      }
    }
  }

  void synchronize_and_process_events() {
    for (auto& [ev, block] : events_) cudaEventSynchronize(ev);
    cudaGetLastError();
    process_events();
  }

  // Frees every cached segment that is entirely free (one unsplit block).
  void release_cached(bool only_default_pools) {
    release_pool_blocks(large_);
    release_pool_blocks(small_);
    (void)only_default_pools;  // live graphs' private pools keep their memory until released
    for (auto& p : dead_pools_) { release_pool_blocks(p->large); release_pool_blocks(p->small); }
  }

  void release_pool_blocks(BlockPool& pool) {
    for (auto it = pool.blocks.begin(); it != pool.blocks.end();) {
      Block* b = *it;
      if (b->is_split()) { ++it; continue; }
      it = pool.blocks.erase(it);
      DeviceGuard guard(device_);
      cudaFree(b->ptr);
      cudaGetLastError();
      stats_.reserved_bytes -= static_cast<int64_t>(b->size);
      stats_.segments--;
      stats_.num_device_frees++;
      segments_.erase(b);
      delete b;
    }
  }

  int64_t inactive_split_bytes() const {
    int64_t n = 0;
    for (const BlockPool* p : {&large_, &small_})
      for (const Block* b : p->blocks)
        if (b->is_split()) n += static_cast<int64_t>(b->size);
    return n;
  }

  cudaEvent_t get_event() {
    if (!free_events_.empty()) { cudaEvent_t e = free_events_.back(); free_events_.pop_back(); return e; }
    cudaEvent_t e;
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
  }
  void put_event(cudaEvent_t e) { free_events_.push_back(e); }

  // snprintf rather than iostreams: the allocator's messages must not depend on locale machinery.
  static std::string format_bytes(size_t n) {
    char buf[64];
    if (n >= (size_t{1} << 30)) std::snprintf(buf, sizeof(buf), "%.2f GiB", static_cast<double>(n) / (1 << 30));
    else if (n >= (size_t{1} << 20)) std::snprintf(buf, sizeof(buf), "%.2f MiB", static_cast<double>(n) / (1 << 20));
    else std::snprintf(buf, sizeof(buf), "%zu B", n);
    return buf;
  }

  std::string format_locked() const {
    char buf[512];
    std::snprintf(buf, sizeof(buf),
                  "allocated=%s (peak %s), reserved=%s (peak %s), segments=%lld, active_blocks=%lld, allocs=%lld, "
                  "frees=%lld, cache_hits=%lld, cache_misses=%lld, splits=%lld, inactive_split=%s, ooms=%lld",
                  format_bytes(stats_.allocated_bytes).c_str(), format_bytes(stats_.peak_allocated_bytes).c_str(),
                  format_bytes(stats_.reserved_bytes).c_str(), format_bytes(stats_.peak_reserved_bytes).c_str(),
                  static_cast<long long>(stats_.segments), static_cast<long long>(stats_.active_blocks),
                  static_cast<long long>(stats_.num_allocs), static_cast<long long>(stats_.num_frees),
                  static_cast<long long>(stats_.cache_hits), static_cast<long long>(stats_.cache_misses),
                  static_cast<long long>(stats_.num_splits), format_bytes(inactive_split_bytes()).c_str(),
                  static_cast<long long>(stats_.num_ooms));
    return buf;
  }

  int device_;
  std::mutex mu_;
  BlockPool large_{false, 0}, small_{true, 0};
  std::set<Block*> segments_;  // first block of each segment
  std::unordered_map<void*, Block*> active_;
  std::deque<std::pair<cudaEvent_t, Block*>> events_;
  std::vector<cudaEvent_t> free_events_;
  std::map<int64_t, std::unique_ptr<PrivatePool>> private_pools_;
  std::vector<std::unique_ptr<PrivatePool>> dead_pools_;
  int64_t capture_pool_ = 0;
  size_t limit_ = 0;
  MemoryStats stats_;
};

std::mutex g_devices_mutex;
DeviceAllocator* g_devices[kMaxDevices] = {};

DeviceAllocator& device_allocator(int device) {
  EMBER_CHECK_INDEX(device >= 0 && device < device_count(), "[cuda allocator] invalid device cuda:", device);
  std::lock_guard<std::mutex> lock(g_devices_mutex);
  if (!g_devices[device]) g_devices[device] = new DeviceAllocator(device);  // leaked: outlives tensors at exit
  return *g_devices[device];
}

void free_block_ctx(void* ctx) {
  if (!ctx) return;
  auto* b = static_cast<Block*>(ctx);
  device_allocator(b->device).free(b);
}

class CudaAllocator final : public Allocator {
 public:
  DataPtr allocate(size_t nbytes, Device device) override {
    if (nbytes == 0) return DataPtr(nullptr, nullptr, nullptr, device);
    Block* b = device_allocator(device.index).malloc(nbytes, current_stream(device.index));
    return DataPtr(b->ptr, b, &free_block_ctx, device);
  }
};

CudaAllocator g_cuda_allocator;

// Registers the allocator when the extension loads (only if a GPU is usable, so CPU-only machines
// keep the "no allocator for cuda" error).
struct Registrar {
  Registrar() {
    if (is_available()) set_allocator(DeviceType::CUDA, &g_cuda_allocator);
  }
} g_registrar;

std::atomic<int64_t> g_next_pool_id{1};

}  // namespace

MemoryStats memory_stats(int device) { return device_allocator(device).stats(); }
void reset_peak_memory_stats(int device) { device_allocator(device).reset_peak(); }
void reset_accumulated_memory_stats(int device) { device_allocator(device).reset_accumulated(); }
std::string format_memory_stats(int device) { return device_allocator(device).format(); }

std::vector<SegmentInfo> memory_snapshot() {
  std::vector<SegmentInfo> out;
  for (int d = 0; d < device_count(); ++d) device_allocator(d).snapshot(out);
  return out;
}

void empty_cache() {
  for (int d = 0; d < device_count(); ++d) device_allocator(d).empty_cache();
}

void set_memory_fraction(double fraction, int device) {
  EMBER_CHECK_VALUE(fraction > 0.0 && fraction <= 1.0, "[cuda.set_per_process_memory_fraction] fraction must be in "
                    "(0, 1], got ", fraction);
  device_allocator(device).set_fraction(fraction);
}

void record_stream(const Tensor& t, cudaStream_t stream) {
  EMBER_CHECK(t.device().is_cuda(), "[record_stream] expected a CUDA tensor, got ", describe(t), " on ", t.device());
  if (!t.storage()->ptr()) return;
  device_allocator(t.device().index).record_stream(t.storage()->ptr(), stream);
}

int64_t create_graph_pool() { return g_next_pool_id.fetch_add(1); }
void begin_allocate_to_pool(int device, int64_t pool_id) { device_allocator(device).begin_pool(pool_id); }
void end_allocate_to_pool(int device) { device_allocator(device).end_pool(); }
void release_graph_pool(int device, int64_t pool_id) { device_allocator(device).release_pool(pool_id); }

}  // namespace ember::cuda
