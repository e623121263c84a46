// parallel_for and the thread pool under every wait policy and thread count: each index is visited
// exactly once, chunks respect the grain, nested regions run inline, exceptions reach the caller,
// concurrent callers, fork, resizing, and gangs of jobs that wait on each other.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"

using namespace ember;

namespace {

// Restores the thread count and wait policy a test changed.
class ParallelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    threads_ = get_num_threads();
    wait_ = wait_config();
  }
  void TearDown() override {
    set_num_threads(threads_);
    set_wait_config(wait_);
  }

 private:
  int threads_ = 1;
  WaitConfig wait_{};
};

struct Setting {
  WaitPolicy policy;
  int64_t spin_us;
  int threads;
};

std::vector<Setting> all_settings() {
  std::vector<Setting> out;
  for (auto [policy, spin] : {std::pair{WaitPolicy::kPassive, int64_t{0}}, std::pair{WaitPolicy::kBounded, int64_t{50}},
                              std::pair{WaitPolicy::kActive, int64_t{0}}})
    for (int threads : {1, 2, 3, 8}) out.push_back({policy, spin, threads});
  return out;
}

void apply(const Setting& s) {
  set_wait_config({s.policy, s.spin_us});
  set_num_threads(s.threads);
}

// Visits [begin, end) and checks every index was passed to fn exactly once.
void expect_each_index_once(int64_t begin, int64_t end, int64_t grain) {
  const int64_t n = std::max<int64_t>(end - begin, 0);
  std::vector<std::atomic<int>> hits(n);
  parallel_for(begin, end, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) hits[i - begin].fetch_add(1, std::memory_order_relaxed);
  });
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) wrong += hits[i].load() != 1;
  EXPECT_EQ(wrong, 0) << "range [" << begin << ", " << end << ") grain " << grain;
}

// The chunks parallel_for hands out, sorted.
std::vector<std::pair<int64_t, int64_t>> chunks_of(int64_t begin, int64_t end, int64_t grain) {
  std::mutex m;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  parallel_for(begin, end, grain, [&](int64_t lo, int64_t hi) {
    std::lock_guard<std::mutex> lock(m);
    chunks.emplace_back(lo, hi);
  });
  std::sort(chunks.begin(), chunks.end());
  return chunks;
}

}  // namespace

TEST_F(ParallelTest, EveryIndexOnceUnderEveryPolicy) {
  for (const Setting& s : all_settings()) {
    apply(s);
    SCOPED_TRACE(::testing::Message() << "policy " << static_cast<int>(s.policy) << " threads " << s.threads);
    expect_each_index_once(0, 0, 1);
    expect_each_index_once(5, 3, 1);  // empty: end < begin
    expect_each_index_once(0, 1, 1);
    expect_each_index_once(7, 8, 1);
    expect_each_index_once(0, 1000, 1);
    expect_each_index_once(-500, 500, 3);
    expect_each_index_once(0, kGrainSize - 1, kGrainSize);
    expect_each_index_once(0, kGrainSize + 1, kGrainSize);
    expect_each_index_once(0, 1 << 20, 1000);
    expect_each_index_once(0, 1 << 20, 0);  // grain 0 behaves as 1
    for (int rep = 0; rep < 50; ++rep) expect_each_index_once(0, 4096, 16);  // back-to-back regions
  }
}

TEST_F(ParallelTest, ChunksTileTheRangeAndRespectTheGrain) {
  for (const Setting& s : all_settings()) {
    apply(s);
    for (auto [begin, end, grain] : {std::tuple<int64_t, int64_t, int64_t>{0, 100000, 1000}, {3, 10, 2}, {0, 64, 64}}) {
      const auto chunks = chunks_of(begin, end, grain);
      ASSERT_FALSE(chunks.empty());
      EXPECT_EQ(chunks.front().first, begin);
      EXPECT_EQ(chunks.back().second, end);
      for (size_t i = 0; i < chunks.size(); ++i) {
        EXPECT_LT(chunks[i].first, chunks[i].second);
        if (i + 1 < chunks.size()) {
          EXPECT_EQ(chunks[i].second, chunks[i + 1].first);
          EXPECT_GE(chunks[i].second - chunks[i].first, grain);  // only the last chunk may be short
        }
      }
      if (end - begin <= grain || s.threads == 1) {
        EXPECT_EQ(chunks.size(), 1u);
      }
    }
  }
}

TEST_F(ParallelTest, HugeRangesDoNotOverflow) {
  for (int threads : {1, 2, 8}) {
    set_num_threads(threads);
    for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, INT64_MAX}, {INT64_MIN / 2, INT64_MAX / 2}, {INT64_MAX - 5, INT64_MAX}}) {
      const int64_t grain = std::max<int64_t>(1, (end - begin) / 64);
      const auto chunks = chunks_of(begin, end, grain);
      ASSERT_FALSE(chunks.empty());
      EXPECT_EQ(chunks.front().first, begin);
      EXPECT_EQ(chunks.back().second, end);
      for (size_t i = 0; i + 1 < chunks.size(); ++i) EXPECT_EQ(chunks[i].second, chunks[i + 1].first);
    }
  }
}

TEST_F(ParallelTest, NestedRegionsRunInline) {
  for (const Setting& s : all_settings()) {
    apply(s);
    constexpr int64_t kOuter = 64, kInner = 5000;
    std::vector<std::atomic<int>> hits(kOuter * kInner);
    std::atomic<int> inner_calls_outside_region{0};
    EXPECT_FALSE(in_parallel_region());
    parallel_for(0, kOuter, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; ++o) {
        if (s.threads > 1 && !in_parallel_region()) inner_calls_outside_region++;
        int calls = 0;
        parallel_for(0, kInner, 1, [&](int64_t ilo, int64_t ihi) {
          ++calls;  // inline: one call, on this thread, for the whole inner range
          for (int64_t i = ilo; i < ihi; ++i) hits[o * kInner + i]++;
        });
        EXPECT_EQ(calls, 1);
      }
    });
    EXPECT_FALSE(in_parallel_region());
    EXPECT_EQ(inner_calls_outside_region.load(), 0);
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  }
}

TEST_F(ParallelTest, ExceptionsReachTheCallerAndThePoolKeepsWorking) {
  for (const Setting& s : all_settings()) {
    apply(s);
    std::atomic<int64_t> ran{0};
    try {
      parallel_for(0, 1 << 16, 64, [&](int64_t lo, int64_t hi) {
        ran += hi - lo;
        if (lo <= 4096 && 4096 < hi) throw std::out_of_range("chunk with 4096");
      });
      ADD_FAILURE() << "no exception";
    } catch (const std::out_of_range& e) {
      EXPECT_STREQ(e.what(), "chunk with 4096");
    }
    EXPECT_FALSE(in_parallel_region());
    EXPECT_GT(ran.load(), 0);
    expect_each_index_once(0, 1 << 16, 64);  // the next region is complete
    EXPECT_THROW(parallel_for(0, 10, 100, [](int64_t, int64_t) { throw Error(ErrorKind::Value, "inline"); }), Error);
  }
}

TEST_F(ParallelTest, ConcurrentCallersEachSeeTheirWholeRange) {
  set_num_threads(3);
  std::atomic<int64_t> wrong{0};
  auto caller = [&] {
    for (int rep = 0; rep < 200; ++rep) {
      std::vector<int> hits(20000, 0);  // chunks are disjoint: no atomics needed
      parallel_for(0, 20000, 100, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) hits[i]++;
      });
      wrong += std::count_if(hits.begin(), hits.end(), [](int h) { return h != 1; });
    }
  };
  std::thread a(caller), b(caller);
  caller();
  a.join();
  b.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(ParallelTest, ThreadCountChangesTakeEffect) {
  set_num_threads(4);
  expect_each_index_once(0, 1 << 16, 16);
  EXPECT_EQ(parallel_settings().workers_started, 3);
  set_num_threads(2);
  EXPECT_EQ(parallel_settings().workers_started, 1);  // shrinking is immediate when idle
  expect_each_index_once(0, 1 << 16, 16);
  set_num_threads(1);
  EXPECT_EQ(parallel_settings().workers_started, 0);
  std::thread::id caller = std::this_thread::get_id(), seen;
  parallel_for(0, 1 << 16, 1, [&](int64_t, int64_t) { seen = std::this_thread::get_id(); });
  EXPECT_EQ(seen, caller);
  EXPECT_THROW(set_num_threads(0), Error);
  EXPECT_THROW(set_num_threads(-3), Error);
  EXPECT_EQ(get_num_threads(), 1);
}

TEST_F(ParallelTest, WorkersShareTheLoad) {
  // Not a timing check: with chunks that block until a second thread has arrived, a region can
  // only finish if another thread takes part (the pool wakes its workers for every region).
  set_num_threads(2);
  for (auto policy : {WaitPolicy::kPassive, WaitPolicy::kBounded, WaitPolicy::kActive}) {
    set_wait_config({policy, 50});
    std::atomic<int> arrived{0};
    std::mutex m;
    std::vector<std::thread::id> ids;
    parallel_for(0, 2, 1, [&](int64_t lo, int64_t hi) {
      {
        std::lock_guard<std::mutex> lock(m);
        ids.push_back(std::this_thread::get_id());
      }
      arrived++;
      while (arrived.load() < 2) std::this_thread::yield();
    });
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_NE(ids[0], ids[1]);
  }
}

TEST_F(ParallelTest, CorrectWhileOversubscribed) {
  // More threads than cores, beside busy threads of this process that keep every core taken:
  // regions still visit each index once and gangs still meet, under every wait policy.
  std::atomic<bool> stop{false};
  std::vector<std::thread> hogs;
  for (unsigned i = 0; i < std::max(2u, std::thread::hardware_concurrency()); ++i)
    hogs.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  for (auto policy : {WaitPolicy::kPassive, WaitPolicy::kBounded, WaitPolicy::kActive}) {
    set_wait_config({policy, 50});
    for (int threads : {2, 8}) {
      set_num_threads(threads);
      for (int rep = 0; rep < 20; ++rep) expect_each_index_once(0, 1 << 14, 64);
      std::atomic<int> arrived{0};
      struct Ctx {
        std::atomic<int>* arrived;
        int n;
      } ctx{&arrived, threads};
      detail::run_gang(threads, [](const void* p, int) {  // each job waits for all the others
        auto* c = static_cast<const Ctx*>(p);
        c->arrived->fetch_add(1);
        while (c->arrived->load() < c->n) std::this_thread::yield();
      }, &ctx);
      EXPECT_EQ(arrived.load(), threads);
    }
  }
  stop = true;
  for (auto& t : hogs) t.join();
}

TEST_F(ParallelTest, GangJobsRunConcurrently) {
  for (int threads : {1, 2, 4}) {
    set_num_threads(threads);
    for (int n : {1, 2, 3, 5}) {  // n > threads falls back to extra threads; every job must still meet
      std::atomic<int> arrived{0};
      struct Ctx {
        std::atomic<int>* arrived;
        int n;
      } ctx{&arrived, n};
      detail::run_gang(n, [](const void* p, int) {
        auto* c = static_cast<const Ctx*>(p);
        c->arrived->fetch_add(1);
        while (c->arrived->load() < c->n) std::this_thread::yield();
      }, &ctx);
      EXPECT_EQ(arrived.load(), n);
    }
  }
}

TEST_F(ParallelTest, ForkedChildGetsAFreshPool) {
  set_num_threads(3);
  expect_each_index_once(0, 1 << 16, 16);  // workers exist in the parent
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(60);  // a hang fails the test instead of blocking it
    std::vector<std::atomic<int>> hits(1 << 16);
    parallel_for(0, 1 << 16, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) hits[i]++;
    });
    for (auto& h : hits)
      if (h.load() != 1) _exit(1);
    _exit(parallel_settings().workers_started == 2 ? 0 : 2);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died (signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0) << ")";
  EXPECT_EQ(WEXITSTATUS(status), 0);
  expect_each_index_once(0, 1 << 16, 16);  // and the parent's pool still works
}

TEST_F(ParallelTest, SettingsReportTheConfiguration) {
  set_wait_config({WaitPolicy::kPassive, 7});
  set_num_threads(2);
  const ParallelSettings s = parallel_settings();
  EXPECT_EQ(s.num_threads, 2);
  EXPECT_EQ(s.wait_policy, WaitPolicy::kPassive);
  EXPECT_EQ(s.spin_us, 7);
  EXPECT_NE(parallel_info().find("passive"), std::string::npos);
  EXPECT_THROW(set_wait_config({WaitPolicy::kBounded, -1}), Error);
}
