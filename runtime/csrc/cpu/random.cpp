// CPU kernels of the random ops. Element i draws from Philox block offset + i / per_block (see
// Note [Philox streams]), so results do not depend on the thread count or on chunking.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "core/generator.h"
#include "core/parallel.h"
#include "cpu/elementwise_math.h"
#include "generated/kernels_random.h"

namespace ember::cpu {
namespace {

struct PhiloxArgs {
  uint64_t seed, offset;
};
template <typename A>
PhiloxArgs philox_of(const A& attrs) {
  return {attrs.seed, attrs.offset};
}

// Maps a linear (row-major) element index to its offset in a strided tensor.
struct StridedIndex {
  const DimVector& sizes;
  const DimVector& strides;
  bool contiguous;
  int64_t operator()(int64_t linear) const {
    if (contiguous) return linear;
    int64_t off = 0;
    for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
      off += (linear % sizes[d]) * strides[d];
      linear /= sizes[d];
    }
    return off;
  }
};
StridedIndex index_of(const Tensor& t) { return {t.sizes(), t.strides(), t.is_contiguous()}; }

// Runs fn(i, words) for every element i, where words are the 32-bit draws of element i: element
// i uses words [(i % per_block) * words_per, ...) of block i / per_block.
template <int PerBlock, typename F>
void for_each_draw(int64_t n, PhiloxArgs ph, const F& fn) {
  const int64_t blocks = (n + PerBlock - 1) / PerBlock;
  parallel_for(0, blocks, kGrainSize / 8, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      Philox4x32 r(ph.seed, ph.offset + static_cast<uint64_t>(b));
      const int64_t first = b * PerBlock, last = std::min(n, first + PerBlock);
      for (int64_t i = first; i < last; ++i) fn(i, r.v + (i - first) * (4 / PerBlock));
    }
  });
}

}  // namespace

void uniform(const KernelArgs& args, const RandomRangeAttrs& attrs) {
  const Tensor& self = args.out[0];
  const PhiloxArgs ph = philox_of(attrs);
  const double from = attrs.low.to_double(), to = attrs.high.to_double();
  const StridedIndex idx = index_of(self);
  EMBER_DISPATCH_FLOAT(self.dtype(), "uniform_", ([&]<typename scalar_t>() {
    scalar_t* dst = self.data<scalar_t>();
    if constexpr (std::is_same_v<scalar_t, double>) {
      for_each_draw<2>(self.numel(), ph, [&](int64_t i, const uint32_t* w) {
        dst[idx(i)] = from + (to - from) * uniform_double(w[0], w[1]);
      });
    } else {
      const float f = static_cast<float>(from), range = static_cast<float>(to - from);
      for_each_draw<4>(self.numel(), ph, [&](int64_t i, const uint32_t* w) {
        dst[idx(i)] = static_cast<scalar_t>(f + range * uniform_float(w[0]));
      });
    }
  }));
}

// Box-Muller: the pair of uniforms of block lanes (0, 1) gives normals for lanes 0 and 1 (cos and
// sin); lanes (2, 3) likewise. float64 uses two 53-bit uniforms per block for its two lanes.
void normal(const KernelArgs& args, const RandomRangeAttrs& attrs) {
  const Tensor& self = args.out[0];
  const PhiloxArgs ph = philox_of(attrs);
  const double mean = attrs.low.to_double(), stdev = attrs.high.to_double();
  const StridedIndex idx = index_of(self);
  constexpr double two_pi = 2.0 * std::numbers::pi;
  EMBER_DISPATCH_FLOAT(self.dtype(), "normal_", ([&]<typename scalar_t>() {
    scalar_t* dst = self.data<scalar_t>();
    const int64_t n = self.numel();
    if constexpr (std::is_same_v<scalar_t, double>) {
      parallel_for(0, (n + 1) / 2, kGrainSize / 8, [&](int64_t lo, int64_t hi) {
        for (int64_t b = lo; b < hi; ++b) {
          Philox4x32 r(ph.seed, ph.offset + static_cast<uint64_t>(b));
          const double u1 = 1.0 - uniform_double(r.v[0], r.v[1]), u2 = uniform_double(r.v[2], r.v[3]);
          const double radius = std::sqrt(-2.0 * std::log(u1));
          dst[idx(2 * b)] = mean + stdev * radius * std::cos(two_pi * u2);
          if (2 * b + 1 < n) dst[idx(2 * b + 1)] = mean + stdev * radius * std::sin(two_pi * u2);
        }
      });
    } else {
      // Draw a batch of blocks, then run Box-Muller over the batch in a loop that vectorizes.
      const float m = static_cast<float>(mean), s = static_cast<float>(stdev);
      constexpr int64_t kBatch = 128;  // blocks per batch (4 outputs each)
      parallel_for(0, (n + 3) / 4, kGrainSize / 8, [&](int64_t lo, int64_t hi) {
        float u1[2 * kBatch], u2[2 * kBatch], z[4 * kBatch];
        for (int64_t b0 = lo; b0 < hi; b0 += kBatch) {
          const int64_t nb = std::min(kBatch, hi - b0);
          for (int64_t j = 0; j < nb; ++j) {
            Philox4x32 r(ph.seed, ph.offset + static_cast<uint64_t>(b0 + j));
            u1[2 * j] = 1.0f - uniform_float(r.v[0]);
            u2[2 * j] = uniform_float(r.v[1]);
            u1[2 * j + 1] = 1.0f - uniform_float(r.v[2]);
            u2[2 * j + 1] = uniform_float(r.v[3]);
          }
          _Pragma("omp simd")
          for (int64_t p = 0; p < 2 * nb; ++p) {
            const float radius = std::sqrt(-2.0f * vm::logf_fast(u1[p]));
            const float angle = static_cast<float>(two_pi) * u2[p];
            z[2 * p] = m + s * radius * vm::sincosf_fast(angle, true);
            z[2 * p + 1] = m + s * radius * vm::sincosf_fast(angle, false);
          }
          const int64_t first = 4 * b0, last = std::min(n, 4 * (b0 + nb));
          for (int64_t i = first; i < last; ++i) dst[idx(i)] = static_cast<scalar_t>(z[i - first]);
        }
      });
    }
  }));
}

// Integers in [low, high): ranges up to 2^32 map one 32-bit word by multiply-shift (Lemire),
// larger ranges take 64 bits modulo the range (bias < range / 2^64).
void randint(const KernelArgs& args, const RandomRangeAttrs& attrs) {
  const Tensor& self = args.out[0];
  const PhiloxArgs ph = philox_of(attrs);
  const int64_t low = attrs.low.to_int(), high = attrs.high.to_int();
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  const StridedIndex idx = index_of(self);
  EMBER_DISPATCH_ALL(self.dtype(), "random_", ([&]<typename scalar_t>() {
    scalar_t* dst = self.data<scalar_t>();
    auto store = [&](int64_t i, uint64_t r) {
      const int64_t v = static_cast<int64_t>(static_cast<uint64_t>(low) + r);
      if constexpr (std::is_integral_v<scalar_t>) dst[idx(i)] = static_cast<scalar_t>(v);
      else dst[idx(i)] = static_cast<scalar_t>(static_cast<opmath_t<scalar_t>>(v));
    };
    if (range <= (1ull << 32)) {
      for_each_draw<4>(self.numel(), ph, [&](int64_t i, const uint32_t* w) {
        store(i, (static_cast<uint64_t>(w[0]) * range) >> 32);
      });
    } else {
      for_each_draw<2>(self.numel(), ph, [&](int64_t i, const uint32_t* w) {
        store(i, ((static_cast<uint64_t>(w[0]) << 32) | w[1]) % range);
      });
    }
  }));
}

// out[i] = (u_i < p_i) with p from the input tensor (same shape as out), or the scalar attrs.scalar
// for bernoulli_(p: float). u_i is one 32-bit word: hit when word < p * 2^32. Hits store 1, or
// attrs.scale when given (dropout's pre-scaled mask). Probabilities are validated first.
void bernoulli(const KernelArgs& args, const BernoulliAttrs& attrs) {
  const Tensor& out = args.out[0];
  const PhiloxArgs ph = philox_of(attrs);
  const StridedIndex oidx = index_of(out);
  const int64_t n = out.numel();
  constexpr double kTwo32 = 4294967296.0;
  std::vector<double> thresholds;  // p_i * 2^32 per element, or empty when p is one number
  const double scalar_threshold = attrs.p.value_or(0.0) * kTwo32;
  if (!attrs.p) {
    const Tensor& p = args.in[0];
    const StridedIndex pidx = index_of(p);
    thresholds.resize(n);
    EMBER_DISPATCH_FLOAT(p.dtype(), "bernoulli", ([&]<typename T>() {
      const T* src = p.data<T>();
      for (int64_t i = 0; i < n; ++i) thresholds[i] = static_cast<double>(static_cast<opmath_t<T>>(src[pidx(i)]));
    }));
    for (int64_t i = 0; i < n; ++i) {
      EMBER_CHECK(thresholds[i] >= 0.0 && thresholds[i] <= 1.0, "[bernoulli] expects 0 <= p <= 1, but found p=",
                  thresholds[i], " at flat index ", i);
      thresholds[i] *= kTwo32;
    }
  }
  const double hit_value = attrs.scale.value_or(1.0);
  EMBER_DISPATCH_ALL(out.dtype(), "bernoulli", ([&]<typename scalar_t>() {
    scalar_t* dst = out.data<scalar_t>();
    scalar_t hit, miss;
    if constexpr (std::is_same_v<scalar_t, bool>) { hit = hit_value != 0; miss = false; }
    else {
      hit = static_cast<scalar_t>(static_cast<opmath_t<scalar_t>>(hit_value));
      miss = static_cast<scalar_t>(static_cast<opmath_t<scalar_t>>(0));
    }
    for_each_draw<4>(n, ph, [&](int64_t i, const uint32_t* w) {
      const double threshold = thresholds.empty() ? scalar_threshold : thresholds[i];
      dst[oidx(i)] = static_cast<double>(w[0]) < threshold ? hit : miss;
    });
  }));
}

// With replacement: inverse-CDF lookups (binary search on the row's cumulative sums). Without:
// the exponential race (keys -log(u) / p_c; the num_samples smallest win), which samples
// proportionally without replacement and needs one draw per category.
void multinomial(const KernelArgs& args, const MultinomialAttrs& attrs) {
  const Tensor& probs = args.in[0];
  const Tensor& out = args.out[0];
  const PhiloxArgs ph = philox_of(attrs);
  const int64_t num_samples = attrs.num_samples;
  const bool replacement = attrs.replacement;
  const int64_t rows = probs.dim() == 2 ? probs.sizes()[0] : 1;
  const int64_t cats = probs.sizes()[probs.dim() - 1];
  const int64_t rs = probs.dim() == 2 ? probs.strides()[0] : 0, cs = probs.strides()[probs.dim() - 1];
  std::vector<double> w(rows * cats);
  EMBER_DISPATCH_FLOAT(probs.dtype(), "multinomial", ([&]<typename T>() {
    const T* src = probs.data<T>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cats; ++c)
        w[r * cats + c] = static_cast<double>(static_cast<opmath_t<T>>(src[r * rs + c * cs]));
  }));
  for (int64_t r = 0; r < rows; ++r) {
    double total = 0;
    int64_t nonzero = 0;
    for (int64_t c = 0; c < cats; ++c) {
      const double v = w[r * cats + c];
      EMBER_CHECK(std::isfinite(v) && v >= 0, "[multinomial] probability tensor contains either inf, nan or element "
                  "< 0 (found ", v, " in row ", r, ")");
      total += v;
      nonzero += v > 0;
    }
    EMBER_CHECK(total > 0, "[multinomial] invalid multinomial distribution (sum of probabilities <= 0) in row ", r);
    EMBER_CHECK(replacement || nonzero >= num_samples, "[multinomial] invalid multinomial distribution (with "
                "replacement=False, not enough non-negative category to sample): row ", r, " has ", nonzero,
                " categories with p > 0 but num_samples=", num_samples);
  }
  int64_t* dst = out.data<int64_t>();
  parallel_for(0, rows, 1, [&](int64_t lo, int64_t hi) {
    std::vector<double> cdf(cats);
    std::vector<std::pair<double, int64_t>> keys(cats);
    for (int64_t r = lo; r < hi; ++r) {
      const double* row = w.data() + r * cats;
      if (replacement) {
        double acc = 0;
        for (int64_t c = 0; c < cats; ++c) cdf[c] = acc += row[c];
        for (int64_t s = 0; s < num_samples; ++s) {
          Philox4x32 g(ph.seed, ph.offset + static_cast<uint64_t>(r * num_samples + s));
          const double u = uniform_double(g.v[0], g.v[1]) * acc;
          int64_t c = std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
          c = std::min(c, cats - 1);
          while (c > 0 && row[c] == 0) --c;  // never land on a zero-probability category at the edge
          dst[r * num_samples + s] = c;
        }
      } else {
        for (int64_t c = 0; c < cats; ++c) {
          Philox4x32 g(ph.seed, ph.offset + static_cast<uint64_t>(r * cats + c));
          const double u = 1.0 - uniform_double(g.v[0], g.v[1]);  // (0, 1]
          keys[c] = {row[c] > 0 ? -std::log(u) / row[c] : INFINITY, c};
        }
        std::partial_sort(keys.begin(), keys.begin() + num_samples, keys.end());
        for (int64_t s = 0; s < num_samples; ++s) dst[r * num_samples + s] = keys[s].second;
      }
    }
  });
}

// Fisher-Yates: step i (n-1 down to 1) swaps with j uniform in [0, i]; step i draws word i % 4 of
// block i / 4 (multiply-shift; n beyond 2^32 uses a 64-bit draw from block i).
void randperm(const KernelArgs& args, const PhiloxAttrs& attrs) {
  const Tensor& out = args.out[0];
  const PhiloxArgs ph = philox_of(attrs);
  const int64_t n = out.numel();
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  if (n <= (int64_t{1} << 32)) {
    for (int64_t i = n - 1; i > 0;) {
      Philox4x32 g(ph.seed, ph.offset + static_cast<uint64_t>(i / 4));
      for (int64_t lane = i % 4; lane >= 0 && i > 0; --lane, --i) {
        const uint64_t j = (static_cast<uint64_t>(g.v[lane]) * static_cast<uint64_t>(i + 1)) >> 32;
        std::swap(perm[i], perm[static_cast<int64_t>(j)]);
      }
    }
  } else {
    for (int64_t i = n - 1; i > 0; --i) {
      Philox4x32 g(ph.seed, ph.offset + static_cast<uint64_t>(i));
      const uint64_t bits = (static_cast<uint64_t>(g.v[0]) << 32) | g.v[1];
      std::swap(perm[i], perm[static_cast<int64_t>(bits % static_cast<uint64_t>(i + 1))]);
    }
  }
  EMBER_DISPATCH_NUMERIC(out.dtype(), "randperm", ([&]<typename scalar_t>() {
    scalar_t* dst = out.data<scalar_t>();
    for (int64_t i = 0; i < n; ++i) {
      if constexpr (std::is_integral_v<scalar_t>) dst[i] = static_cast<scalar_t>(perm[i]);
      else dst[i] = static_cast<scalar_t>(static_cast<opmath_t<scalar_t>>(perm[i]));
    }
  }));
}

}  // namespace ember::cpu
