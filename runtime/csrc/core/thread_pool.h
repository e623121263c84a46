#pragma once
// ember's CPU thread pool: the caller plus (num_threads - 1) workers run the chunks of a parallel
// region, claiming them one at a time. See Note [Parallel regions under load] in thread_pool.cpp.
#include <cstdint>
#include <string>

namespace ember {

// How idle workers wait for the next region (EMBER_WAIT_POLICY, or OMP_WAIT_POLICY's two values).
enum class WaitPolicy {
  kPassive,  // sleep at once (futex)
  kBounded,  // spin up to EMBER_SPIN_US, then sleep; no spinning while the machine is oversubscribed
  kActive,   // spin up to 100 ms even when oversubscribed, then sleep
};

inline const char* wait_policy_name(WaitPolicy p) {
  return p == WaitPolicy::kPassive ? "passive" : p == WaitPolicy::kActive ? "active" : "bounded";
}

struct ParallelSettings {
  int num_threads;           // threads per region, the caller included
  WaitPolicy wait_policy;
  int64_t spin_us;           // how long an idle worker spins before it sleeps
  int workers_started;       // live worker threads
  int64_t regions;           // regions run on the pool (not inline) since start
  int64_t contention_events; // times a thread saw that it had been descheduled (Note [...])
  bool contended;            // spinning is off right now because of a recent event
};

// The wait policy: from the environment at first use (core/parallel.cpp), or set here.
struct WaitConfig {
  WaitPolicy policy;
  int64_t spin_us;
};
WaitConfig wait_config();
void set_wait_config(WaitConfig config);

// True while the pool has recently seen that its threads wait for cores (Note [Parallel regions
// under load]): work that needs all its threads running at once should not start a gang now.
bool machine_contended();

ParallelSettings parallel_settings();
std::string parallel_info();  // a readable summary of parallel_settings(), like torch's

namespace detail {
// Stops workers beyond num_threads - 1 now if the pool is idle (growing waits for the next region).
void shrink_pool_to(int num_threads);
using ChunkFn = void (*)(const void* ctx, int64_t lo, int64_t hi);
// Calls fn(ctx, lo, hi) for the chunks [begin + i*chunk, ...) of [begin, end) on the pool and the
// caller. Returns when every chunk ran; the first exception a chunk threw is rethrown here (the
// chunks not yet started are skipped).
void run_chunks(int64_t begin, int64_t end, int64_t chunk, ChunkFn fn, const void* ctx);
// Runs job(ctx, i) for i in [0, n) on n different threads at the same time (jobs that wait on each
// other, like OpenBLAS's): the caller runs job 0.
void run_gang(int n, void (*job)(const void* ctx, int i), const void* ctx);
}  // namespace detail

}  // namespace ember
