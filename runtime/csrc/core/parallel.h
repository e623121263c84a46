#pragma once
// parallel_for over [begin, end) in chunks of at least `grain` elements, on OpenMP threads.
// Small ranges run inline: thread wake-up costs ~2-5 us, more than a small kernel.
#include <algorithm>
#include <cstdint>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace ember {

constexpr int64_t kGrainSize = 32768;

int get_num_threads();
void set_num_threads(int n);
bool in_parallel_region();

template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
#ifdef _OPENMP
  const int threads = get_num_threads();
  if (n > grain && threads > 1 && !in_parallel_region()) {
    const int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
#pragma omp parallel num_threads(static_cast<int>(chunks))
    {
      const int64_t tid = omp_get_thread_num();
      const int64_t per = (n + chunks - 1) / chunks;
      const int64_t lo = begin + tid * per;
      const int64_t hi = std::min(end, lo + per);
      if (lo < hi) fn(lo, hi);
    }
    return;
  }
#endif
  fn(begin, end);
}

}  // namespace ember
