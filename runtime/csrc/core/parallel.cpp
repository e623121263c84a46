#include "parallel.h"

#include <thread>

namespace ember {
namespace {
int default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}
int g_num_threads = default_threads();
}  // namespace

int get_num_threads() { return g_num_threads; }
void set_num_threads(int n) { g_num_threads = std::max(1, n); }
bool in_parallel_region() {
#ifdef _OPENMP
  return omp_in_parallel();
#else
  return false;
#endif
}

}  // namespace ember
