// Thread count and wait policy, from the environment at first use:
//   EMBER_NUM_THREADS, else OMP_NUM_THREADS (its first entry), else the cores this process may use
//   (its CPU affinity mask, capped by a cgroup v2 CPU quota);
//   EMBER_WAIT_POLICY=passive|bounded|active, else OMP_WAIT_POLICY=passive|active, else bounded;
//   EMBER_SPIN_US: how long an idle worker spins under the bounded policy (default 50).
// A value that does not parse is reported once on stderr and ignored.
#include "core/parallel.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "core/error.h"

namespace ember {
namespace {

constexpr int64_t kDefaultSpinUs = 50;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A positive integer from `name` (for OMP_NUM_THREADS, the first entry of a list such as "4,2").
std::optional<int64_t> env_positive(const char* name, bool allow_zero = false) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  std::string s(v);
  if (auto comma = s.find(','); comma != std::string::npos) s.resize(comma);
  char* endp = nullptr;
  const long long n = std::strtoll(s.c_str(), &endp, 10);
  if (endp == s.c_str() || *endp != '\0' || n < (allow_zero ? 0 : 1) || n > (1 << 20)) {
    std::fprintf(stderr, "ember: ignoring %s=%s (expected a %s integer)\n", name, v,
                 allow_zero ? "non-negative" : "positive");
    return std::nullopt;
  }
  return n;
}

int available_cores() {
  int n = 0;
#ifdef __linux__
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
  // cgroup v2 quota ("max 100000" or "200000 100000"): a container limited to 2 CPUs of 64.
  std::ifstream f("/sys/fs/cgroup/cpu.max");
  std::string quota;
  int64_t period = 0;
  if (f >> quota >> period && quota != "max" && period > 0) {
    const int64_t q = std::atoll(quota.c_str());
    if (q > 0) n = std::min<int64_t>(n > 0 ? n : INT32_MAX, std::max<int64_t>(1, (q + period - 1) / period));
  }
#endif
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(n, 1);
}

int default_num_threads() {
  if (auto n = env_positive("EMBER_NUM_THREADS")) return static_cast<int>(*n);
  if (auto n = env_positive("OMP_NUM_THREADS")) return static_cast<int>(*n);
  return available_cores();
}

WaitConfig read_wait_config() {
  WaitConfig cfg{WaitPolicy::kBounded, kDefaultSpinUs};
  const char* ember_policy = std::getenv("EMBER_WAIT_POLICY");
  const char* omp_policy = std::getenv("OMP_WAIT_POLICY");
  if (ember_policy != nullptr && *ember_policy != '\0') {
    const std::string p = lower(ember_policy);
    if (p == "passive") cfg.policy = WaitPolicy::kPassive;
    else if (p == "active") cfg.policy = WaitPolicy::kActive;
    else if (p == "bounded") cfg.policy = WaitPolicy::kBounded;
    else std::fprintf(stderr, "ember: ignoring EMBER_WAIT_POLICY=%s (expected passive, bounded or active)\n", ember_policy);
  } else if (omp_policy != nullptr && *omp_policy != '\0') {
    const std::string p = lower(omp_policy);
    if (p == "passive") cfg.policy = WaitPolicy::kPassive;
    else if (p == "active") cfg.policy = WaitPolicy::kActive;
  }
  if (auto us = env_positive("EMBER_SPIN_US", /*allow_zero=*/true)) cfg.spin_us = *us;
  return cfg;
}

std::atomic<int>& num_threads_setting() {
  static std::atomic<int> n{default_num_threads()};
  return n;
}

struct WaitState {
  std::atomic<WaitPolicy> policy;
  std::atomic<int64_t> spin_us;
};

WaitState& wait_state() {
  static WaitState state = [] {
    const WaitConfig cfg = read_wait_config();
    return WaitState{cfg.policy, cfg.spin_us};
  }();
  return state;
}

}  // namespace

WaitConfig wait_config() {
  WaitState& s = wait_state();
  return {s.policy.load(std::memory_order_relaxed), s.spin_us.load(std::memory_order_relaxed)};
}

void set_wait_config(WaitConfig config) {
  EMBER_CHECK_VALUE(config.spin_us >= 0, "set_wait_config: spin_us must be >= 0, got ", config.spin_us);
  wait_state().policy.store(config.policy, std::memory_order_relaxed);
  wait_state().spin_us.store(config.spin_us, std::memory_order_relaxed);
}

int get_num_threads() { return num_threads_setting().load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  EMBER_CHECK_VALUE(n >= 1, "set_num_threads: expected a positive number of threads, got ", n);
  num_threads_setting().store(n, std::memory_order_relaxed);
  detail::shrink_pool_to(n);
}

}  // namespace ember
