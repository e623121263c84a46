#pragma once
// parallel_for over [begin, end) on ember's thread pool (core/thread_pool.h). The range is cut into
// chunks of at least `grain` elements, a few per thread, that the threads claim as they go, so a
// thread the OS has descheduled holds up at most the chunk it is running
// (Note [Parallel regions under load] in thread_pool.cpp). Small ranges run inline: waking a
// thread costs microseconds, more than a small kernel. Inside a region, parallel_for runs inline.
// `fn(lo, hi)` may throw: the first exception is rethrown to the caller once the region is over.
#include <algorithm>
#include <cstdint>

#include "core/thread_pool.h"

namespace ember {

constexpr int64_t kGrainSize = 32768;
constexpr int64_t kChunksPerThread = 4;  // more: a descheduled thread holds up less; fewer: less claiming

int get_num_threads();
void set_num_threads(int n);  // n >= 1; also the thread count OpenBLAS uses (cpu/blas.cpp)
bool in_parallel_region();

// Elements per chunk for a region of n elements: at least `grain`, about kChunksPerThread per thread.
inline int64_t parallel_chunk_size(int64_t n, int64_t grain, int threads) {
  const int64_t parts = int64_t{threads} * kChunksPerThread;
  const int64_t per = n / parts + (n % parts != 0);  // no overflow for ranges up to INT64_MAX
  return std::max(std::max<int64_t>(grain, 1), per);
}

template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  const int threads = get_num_threads();
  if (n <= grain || threads <= 1 || in_parallel_region()) {
    fn(begin, end);
    return;
  }
  const int64_t chunk = parallel_chunk_size(n, grain, threads);
  if (chunk >= n) {
    fn(begin, end);
    return;
  }
  detail::run_chunks(begin, end, chunk, [](const void* ctx, int64_t lo, int64_t hi) { (*static_cast<const F*>(ctx))(lo, hi); },
                     &fn);
}

}  // namespace ember
