// Note [Parallel regions under load]
// ember runs its parallel regions on its own pool instead of OpenMP, because the machines it runs
// on are often shared: other processes' threads, torch's or numpy's pools in the same process.
// An OpenMP region ends in a barrier that waits for every thread of the team, so one thread that
// the OS has descheduled (or that has not been woken yet) stalls the whole region for a time
// slice; libgomp's default 3 ms of spinning per idle thread then burns the cores the others need.
// Measured on 2 cores beside two busy loops, that made a training step 40-160x slower
// (docs/performance.md). This pool is built so that no region waits for a thread that is not
// running:
//   * a region is cut into several chunks per thread (core/parallel.h) that the caller and the
//     workers claim one at a time; the caller starts at once, and a worker that is asleep or
//     descheduled simply finds no chunks left when it gets to run;
//   * the caller waits only for the chunks that were claimed, never for a team to assemble;
//   * idle workers spin briefly (EMBER_SPIN_US, default 50 us: back-to-back regions then start
//     without a wake-up), then sleep on a futex;
//   * the pool watches for oversubscription: a thread that sees a jump in the clock while it spins
//     (it was descheduled) or a worker that joins a region more than kLateWakeNs after it was
//     published (it waited for a core) marks the machine contended for kContentionBackoffNs.
//     Meanwhile nobody spins (idle workers give their cores away instead of fighting for them)
//     and GEMMs avoid OpenBLAS's own threading, whose jobs wait on each other (cpu/blas.cpp).
#include "core/thread_pool.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "core/parallel.h"

namespace ember {
namespace {

constexpr int64_t kPreemptedNs = 500'000;  // a clock jump this long while spinning = descheduled
constexpr int64_t kLateWakeNs = 1'000'000;  // a worker joining this late was waiting for a core
constexpr int64_t kContentionBackoffNs = 1'000'000'000;  // how long one event counts
constexpr int64_t kActiveSpinNs = 100'000'000;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Sleeps while *word == expected (spurious returns are fine: callers loop).
void futex_wait(std::atomic<uint32_t>& word, uint32_t expected) {
#ifdef __linux__
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
#else
  word.wait(expected);
#endif
}

void futex_wake(std::atomic<uint32_t>& word, int count) {
#ifdef __linux__
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
#else
  (void)count;
  word.notify_all();
#endif
}

// Process-wide record of oversubscription (see the Note): spinning stops until `calm_after_`.
class Contention {
 public:
  void note(int64_t now) {
    calm_after_.store(now + kContentionBackoffNs, std::memory_order_relaxed);
    events_.fetch_add(1, std::memory_order_relaxed);
  }
  bool active(int64_t now) const { return now < calm_after_.load(std::memory_order_relaxed); }
  int64_t events() const { return events_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> calm_after_{0};
  std::atomic<int64_t> events_{0};
};

Contention g_contention;
thread_local bool t_in_region = false;

struct RegionScope {
  RegionScope() { t_in_region = true; }
  ~RegionScope() { t_in_region = false; }
};

// Spins until `word` differs from `seen` or the budget runs out; returns whether it changed.
bool spin_until_changed(const std::atomic<uint32_t>& word, uint32_t seen, int64_t budget_ns, bool yield_to_load) {
  if (budget_ns <= 0) return word.load(std::memory_order_acquire) != seen;
  const int64_t start = now_ns();
  int64_t last = start;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (word.load(std::memory_order_acquire) != seen) return true;
      cpu_relax();
    }
    const int64_t t = now_ns();
    if (t - last > kPreemptedNs) g_contention.note(t);
    if (t - start >= budget_ns || (yield_to_load && g_contention.active(t))) return false;
    last = t;
  }
}

// One parallel region: the chunk counter the threads claim from, and the first error.
struct Region {
  Region(int64_t begin, int64_t end, int64_t chunk, detail::ChunkFn fn, const void* ctx)
      : begin(begin), end(end), chunk(chunk), num_chunks((end - begin) / chunk + ((end - begin) % chunk != 0)),
        fn(fn), ctx(ctx) {}

  const int64_t begin, end, chunk, num_chunks;
  const detail::ChunkFn fn;
  const void* const ctx;
  const int64_t published_ns = now_ns();
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;

  void work() {
    RegionScope scope;
    for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < num_chunks;) {
      const int64_t lo = begin + c * chunk;
      try {
        fn(ctx, lo, lo + std::min(chunk, end - lo));
      } catch (...) {
        if (!failed.exchange(true)) error = std::current_exception();
        next.store(num_chunks, std::memory_order_relaxed);  // skip the chunks nobody started
      }
    }
  }
};

class ThreadPool {
 public:
  static ThreadPool& get() {
    // Leaked on purpose: workers may still sleep in it while static destructors run at exit.
    static ThreadPool* pool = [] {
      auto* p = new ThreadPool();
      pthread_atfork(nullptr, nullptr, [] { ThreadPool::get().reset_after_fork(); });
      return p;
    }();
    return *pool;
  }

  // Runs the region on the pool, or returns false if another thread is using it.
  bool run(Region& region) {
    if (busy_.exchange(true, std::memory_order_acquire)) return false;
    resize(get_num_threads() - 1);
    regions_.fetch_add(1, std::memory_order_relaxed);
    current_.store(&region, std::memory_order_seq_cst);
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    const int sleeping = sleepers_.load(std::memory_order_seq_cst);
    if (sleeping > 0) futex_wake(epoch_, static_cast<int>(std::min<int64_t>(sleeping, region.num_chunks - 1)));
    region.work();
    current_.store(nullptr, std::memory_order_seq_cst);
    wait_for_workers();
    busy_.store(false, std::memory_order_release);
    return true;
  }

  void shrink_to(int want) {
    if (want >= live_workers_.load(std::memory_order_relaxed)) return;
    if (busy_.exchange(true, std::memory_order_acquire)) return;  // the running region's caller resizes
    resize(want);
    busy_.store(false, std::memory_order_release);
  }

  int workers_started() {
    std::lock_guard<std::mutex> lock(resize_mutex_);
    return static_cast<int>(workers_->size());
  }
  int64_t regions() const { return regions_.load(std::memory_order_relaxed); }

 private:
  ThreadPool() : workers_(new std::vector<std::thread>()) {}

  int64_t spin_budget_ns() const {
    const WaitConfig cfg = wait_config();
    switch (cfg.policy) {
      case WaitPolicy::kPassive: return 0;
      case WaitPolicy::kActive: return kActiveSpinNs;
      case WaitPolicy::kBounded: return cfg.spin_us * 1000;
    }
    return 0;
  }

  // `seen`: the epoch when the worker was created (it may start running only after later epochs).
  void worker_loop(int index, uint32_t seen) {
    for (;;) {
      const bool yield = wait_config().policy != WaitPolicy::kActive;
      if (!spin_until_changed(epoch_, seen, spin_budget_ns(), yield)) {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        while (epoch_.load(std::memory_order_seq_cst) == seen) futex_wait(epoch_, seen);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
      }
      seen = epoch_.load(std::memory_order_acquire);
      if (index >= live_workers_.load(std::memory_order_acquire)) return;
      active_.fetch_add(1, std::memory_order_seq_cst);
      if (Region* r = current_.load(std::memory_order_seq_cst)) {
        if (const int64_t t = now_ns(); t - r->published_ns > kLateWakeNs) g_contention.note(t);
        r->work();
      }
      if (active_.fetch_sub(1, std::memory_order_seq_cst) == 1 && caller_sleeping_.load(std::memory_order_seq_cst))
        futex_wake(active_, 1);
    }
  }

  // After the caller ran out of chunks: waits for the workers still inside the region (a worker
  // that joins now finds current_ == nullptr and leaves at once).
  void wait_for_workers() {
    if (active_.load(std::memory_order_seq_cst) == 0) return;
    const bool yield = wait_config().policy != WaitPolicy::kActive;
    const int64_t start = now_ns();
    int64_t last = start;
    const int64_t budget = spin_budget_ns();
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        if (active_.load(std::memory_order_seq_cst) == 0) return;
        cpu_relax();
      }
      const int64_t t = now_ns();
      if (t - last > kPreemptedNs) g_contention.note(t);
      if (t - start >= budget || (yield && g_contention.active(t))) break;
      last = t;
    }
    caller_sleeping_.store(true, std::memory_order_seq_cst);
    for (uint32_t a; (a = active_.load(std::memory_order_seq_cst)) != 0;) futex_wait(active_, a);
    caller_sleeping_.store(false, std::memory_order_relaxed);
  }

  // Starts or stops workers; only called by the thread holding busy_, so no region is running.
  void resize(int want) {
    want = std::max(want, 0);
    if (want == live_workers_.load(std::memory_order_relaxed)) return;
    std::lock_guard<std::mutex> lock(resize_mutex_);
    auto& workers = *workers_;
    if (want < static_cast<int>(workers.size())) {
      live_workers_.store(want, std::memory_order_release);
      epoch_.fetch_add(1, std::memory_order_seq_cst);
      futex_wake(epoch_, INT32_MAX);
      for (size_t i = want; i < workers.size(); ++i) workers[i].join();
      workers.resize(want);
      return;
    }
    live_workers_.store(want, std::memory_order_release);
    // Workers block every signal: they go to the threads that run Python (Ctrl-C stays prompt).
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    const uint32_t epoch = epoch_.load(std::memory_order_seq_cst);
    for (int i = static_cast<int>(workers.size()); i < want; ++i) {
      workers.emplace_back([this, i, epoch] {
        pthread_setname_np(pthread_self(), "ember-worker");
        worker_loop(i, epoch);
      });
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  // The child of fork() has none of the workers: forget them (their std::thread objects are leaked,
  // destroying them would terminate) and start fresh ones on the next region.
  void reset_after_fork() {
    workers_ = new std::vector<std::thread>();
    new (&resize_mutex_) std::mutex();
    live_workers_.store(0);
    current_.store(nullptr);
    active_.store(0);
    sleepers_.store(0);
    caller_sleeping_.store(false);
    busy_.store(false);
  }

  std::vector<std::thread>* workers_;
  std::mutex resize_mutex_;
  std::atomic<int> live_workers_{0};
  std::atomic<Region*> current_{nullptr};
  std::atomic<uint32_t> epoch_{0};    // futex word: bumped to start a region or stop workers
  std::atomic<uint32_t> active_{0};   // futex word: workers inside the current region
  std::atomic<int> sleepers_{0};      // workers sleeping on epoch_
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> busy_{false};     // a caller owns the pool
  std::atomic<int64_t> regions_{0};
};

}  // namespace

bool in_parallel_region() { return t_in_region; }

bool machine_contended() { return g_contention.active(now_ns()); }

namespace detail {

void shrink_pool_to(int num_threads) { ThreadPool::get().shrink_to(num_threads - 1); }

void run_chunks(int64_t begin, int64_t end, int64_t chunk, ChunkFn fn, const void* ctx) {
  Region region(begin, end, chunk, fn, ctx);
  if (!ThreadPool::get().run(region)) region.work();  // pool in use by another thread: run here
  if (region.error) std::rethrow_exception(region.error);
}

void run_gang(int n, void (*job)(const void* ctx, int i), const void* ctx) {
  struct Job {
    void (*job)(const void*, int);
    const void* ctx;
  } j{job, ctx};
  auto one = [](const void* p, int64_t lo, int64_t) {
    auto* jp = static_cast<const Job*>(p);
    jp->job(jp->ctx, static_cast<int>(lo));
  };
  Region region(0, n, 1, one, &j);
  // The pool has num_threads - 1 workers and all of them are woken, so n <= num_threads jobs run at once.
  if (n <= get_num_threads() && !t_in_region && ThreadPool::get().run(region)) {
    if (region.error) std::rethrow_exception(region.error);
    return;
  }
  std::vector<std::thread> extra;
  for (int i = 1; i < n; ++i) extra.emplace_back(job, ctx, i);
  job(ctx, 0);
  for (auto& t : extra) t.join();
}

}  // namespace detail

ParallelSettings parallel_settings() {
  const WaitConfig cfg = wait_config();
  ThreadPool& pool = ThreadPool::get();
  return {get_num_threads(), cfg.policy, cfg.spin_us, pool.workers_started(), pool.regions(),
          g_contention.events(), g_contention.active(now_ns())};
}

std::string parallel_info() {
  const ParallelSettings s = parallel_settings();
  std::ostringstream os;
  os << "ember thread pool: " << s.num_threads << " threads (" << s.workers_started << " workers started), wait policy "
     << wait_policy_name(s.wait_policy) << ", spin " << s.spin_us << " us, " << s.regions << " regions run, " << s.contention_events
     << " contention events" << (s.contended ? " (spinning paused)" : "") << "\nOpenBLAS: threads run on this pool";
  return os.str();
}

}  // namespace ember
