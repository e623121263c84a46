#pragma once
// Note [Reduction engine]
// A reduction maps a strided input onto a contiguous output whose element o is the combination of
// every input element with the same kept-dim index. make_reduce_plan() drops size-1 dims, keeps the
// kept dims in logical order (so output index o is the output's memory offset), sorts the reduced
// dims innermost-last by stride and coalesces neighbours. run_reduce() then picks:
//   inner:  the innermost reduced dim has stride 1: each output reduces contiguous rows in blocks
//           of kBlock with independent (vector) accumulators; block results are combined pairwise
//           (cascade summation: float32 sums of 16M elements stay accurate). Many short rows are
//           grouped kVecLen at a time and finished with one transpose-reduce;
//   outer:  the innermost kept dim has stride 1: vectorize across outputs, accumulating in blocks;
//   strided: anything else, rows with a stride.
// A single huge output is split over threads along the outermost reduced dim and combined after.
// A policy P supplies acc_t, identity(), step(acc, x, o), combine(a, b) and write(o, acc); optional
// vstep(V, V) (explicit-vector step, equal to combine: sum, max/min), vstep_nonan + kTracksNan
// (max/min with NaNs tracked on the side) and kFloatBlock + contiguous_block (logsumexp's exp sum).
#include <algorithm>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "core/tensor.h"
#include "cpu/vec_math.h"

namespace ember::cpu {

struct ReducePlan {
  DimVector out_sizes, out_strides;  // kept dims (size > 1), logical order; input strides
  DimVector red_sizes, red_strides;  // reduced dims (size > 1), outermost first; input strides
  int64_t num_out = 1;
  int64_t red_numel = 1;
};

// Appends dim (size, stride) after the dims so far (outermost first), merged into the last one
// when the two address one evenly strided run, so fewer loop levels remain.
inline void push_coalesced(DimVector& sizes, DimVector& strides, int64_t size, int64_t stride) {
  if (!sizes.empty() && strides.back() == stride * size) {
    sizes.back() *= size;
    strides.back() = stride;
  } else {
    sizes.push_back(size);
    strides.push_back(stride);
  }
}

// `dims` lists the reduced dims (wrapped, any order).
inline ReducePlan make_reduce_plan(const Tensor& x, IntSpan dims) {
  ReducePlan p;
  const int64_t nd = x.dim();
  std::vector<bool> reduced(nd, false);
  for (int64_t d : dims) reduced[d] = true;
  std::vector<std::pair<int64_t, int64_t>> red;  // (stride, size)
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t size = x.sizes()[d], stride = x.strides()[d];
    if (reduced[d]) { p.red_numel *= size; if (size != 1) red.push_back({stride, size}); continue; }
    p.num_out *= size;
    if (size == 1) continue;
    push_coalesced(p.out_sizes, p.out_strides, size, stride);
  }
  std::stable_sort(red.begin(), red.end(), [](auto a, auto b) { return a.first > b.first; });
  for (auto [stride, size] : red) push_coalesced(p.red_sizes, p.red_strides, size, stride);
  if (p.red_sizes.empty()) { p.red_sizes.push_back(1); p.red_strides.push_back(1); }
  return p;
}

// Input offset of output o (index over the kept dims).
inline int64_t out_offset(const ReducePlan& p, int64_t o) {
  int64_t off = 0;
  for (int64_t d = static_cast<int64_t>(p.out_sizes.size()) - 1; d >= 0; --d) {
    off += (o % p.out_sizes[d]) * p.out_strides[d];
    o /= p.out_sizes[d];
  }
  return off;
}

template <typename T, typename Acc>
inline Acc load_as(const T* p) {
  if constexpr (std::is_same_v<T, bool>) return static_cast<Acc>(*reinterpret_cast<const uint8_t*>(p) != 0);
  else return static_cast<Acc>(static_cast<opmath_t<T>>(*p));
}

template <typename T, typename P>
class Reducer {
 public:
  using acc_t = typename P::acc_t;
  static constexpr int kLanes = sizeof(acc_t) >= 8 ? 16 : 32;
  static constexpr int64_t kBlock = 4096;

  Reducer(const ReducePlan& plan, const T* base, P& policy) : p_(plan), base_(base), pol_(policy) {}

  void run() {
    if (p_.num_out == 0) return;
    if (p_.red_numel == 0) {
      for (int64_t o = 0; o < p_.num_out; ++o) pol_.write(o, pol_.identity());
      return;
    }
    const int64_t nthreads = get_num_threads();
    const bool inner_contig = p_.red_strides.back() == 1;
    if (p_.num_out == 1 || (p_.num_out < nthreads && p_.red_numel >= 4 * kGrainSize)) {
      split_reduction();
      return;
    }
    if constexpr (kVecPolicy) {
      if (inner_contig && p_.red_sizes.size() == 1 && p_.red_sizes[0] <= 256 && p_.out_sizes.size() == 1 &&
          p_.num_out >= kVecLen<acc_t>) {
        run_short_rows();
        return;
      }
    }
    const bool outer = !inner_contig && !p_.out_sizes.empty() && p_.out_strides.back() == 1 && p_.out_sizes.back() >= 8;
    if (outer) { run_outer(); return; }
    const int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(p_.red_numel, 1));
    parallel_for(0, p_.num_out, grain, [&](int64_t lo, int64_t hi) {
      const bool one_kept = p_.out_sizes.size() == 1;
      for (int64_t o = lo; o < hi; ++o) {
        const T* ptr = base_ + (one_kept ? o * p_.out_strides[0] : out_offset(p_, o));
        pol_.write(o, reduce_range(ptr, 0, p_.red_sizes[0], o));
      }
    });
  }

 private:
  static constexpr bool kVecPolicy = [] {
    if constexpr (std::is_same_v<T, acc_t> && std::is_arithmetic_v<acc_t> && !std::is_same_v<acc_t, bool>)
      return requires(const P& pol, vec_t<acc_t> v) { pol.vstep(v, v); };
    else return false;
  }();

  // Many short contiguous rows: one vector accumulator per row, then one transpose-reduce per group
  // of kVecLen rows instead of a horizontal reduction per row.
  void run_short_rows() {
    if constexpr (kVecPolicy) {
      using V = vec_t<acc_t>;
      constexpr int VL = kVecLen<acc_t>;
      const int64_t n = p_.red_sizes[0], rs = p_.out_strides[0];
      const int64_t groups = p_.num_out / VL;
      const V id = vsplat<acc_t>(pol_.identity());
      auto op = [this](auto a, auto b) { return pol_.vstep(a, b); };
      parallel_for(0, groups, std::max<int64_t>(1, kGrainSize / (n * VL)), [&](int64_t lo, int64_t hi) {
        V v[VL];
        for (int64_t g = lo; g < hi; ++g) {
          for (int r = 0; r < VL; ++r) {
            const T* ptr = base_ + (g * VL + r) * rs;
            V a = id;
            int64_t i = 0;
            for (; i + VL <= n; i += VL) a = pol_.vstep(a, vload(ptr + i));
            if (i < n) {
              acc_t tail[VL];
              for (int j = 0; j < VL; ++j) tail[j] = i + j < n ? ptr[i + j] : pol_.identity();
              a = pol_.vstep(a, vload(tail));
            }
            v[r] = a;
          }
          vtranspose_reduce(v, op);
          for (int r = 0; r < VL; ++r) pol_.write(g * VL + r, v[0][r]);
        }
      });
      for (int64_t o = groups * VL; o < p_.num_out; ++o)
        pol_.write(o, reduce_range(base_ + o * rs, 0, n, o));
    }
  }

  // Reduces a row of n elements with the given stride: blocks of kBlock with independent lane
  // accumulators, block results combined pairwise through a binary counter (cascade summation).
  acc_t reduce_row(const T* ptr, int64_t n, int64_t stride, int64_t o) const {
    if (n <= kBlock) return reduce_block(ptr, n, stride, o);
    acc_t level[64];
    uint64_t count = 0;
    for (int64_t i = 0; i < n; i += kBlock) {
      acc_t v = reduce_block(ptr + i * stride, std::min(kBlock, n - i), stride, o);
      int k = 0;
      for (uint64_t c = count; c & 1; c >>= 1, ++k) v = pol_.combine(level[k], v);
      level[k] = v;
      ++count;
    }
    acc_t acc = pol_.identity();
    bool first = true;
    for (int k = 0; k < 64; ++k)
      if (count >> k & 1) { acc = first ? level[k] : pol_.combine(level[k], acc); first = false; }
    return acc;
  }

  __attribute__((always_inline)) acc_t reduce_block(const T* ptr, int64_t n, int64_t stride, int64_t o) const {
    if constexpr (requires { P::kFloatBlock; }) {  // policy-specific contiguous float32 block (logsumexp)
      if constexpr (P::kFloatBlock && std::is_same_v<T, float>) {
        if (stride == 1) return pol_.contiguous_block(ptr, n, o);
      }
    }
    if constexpr (std::is_same_v<T, acc_t> && std::is_arithmetic_v<acc_t> && !std::is_same_v<acc_t, bool>) {
      if constexpr (requires(const P& pol, vec_t<acc_t> v) { pol.vstep(v, v); }) {
        if (stride == 1) return reduce_block_vec(ptr, n, o);
      }
    }
    acc_t lanes[kLanes];
    for (int j = 0; j < kLanes; ++j) lanes[j] = pol_.identity();
    int64_t i = 0;
    if (stride == 1) {
      for (; i + kLanes <= n; i += kLanes)
        for (int j = 0; j < kLanes; ++j) lanes[j] = pol_.step(lanes[j], load_as<T, acc_t>(ptr + i + j), o);
    } else {
      for (; i + kLanes <= n; i += kLanes)
        for (int j = 0; j < kLanes; ++j) lanes[j] = pol_.step(lanes[j], load_as<T, acc_t>(ptr + (i + j) * stride), o);
    }
    for (; i < n; ++i) lanes[i % kLanes] = pol_.step(lanes[i % kLanes], load_as<T, acc_t>(ptr + i * stride), o);
    for (int w = kLanes / 2; w > 0; w /= 2)
      for (int j = 0; j < w; ++j) lanes[j] = pol_.combine(lanes[j], lanes[j + w]);
    return lanes[0];
  }

  // Contiguous block with explicit vectors and independent accumulators.
  // Only for policies whose vstep is their step and combine (sum, max/min).
  __attribute__((always_inline)) acc_t reduce_block_vec(const T* ptr, int64_t n, int64_t o) const {
    using V = vec_t<acc_t>;
    constexpr int VL = kVecLen<acc_t>;
    constexpr int U = 8;  // independent accumulators: hide the latency of the step chain
    if constexpr (requires { P::kTracksNan; }) {
      if constexpr (P::kTracksNan) return reduce_block_vec_nan(ptr, n, o);
    }
    const V id = vsplat<acc_t>(pol_.identity());
    V v[U];
    for (int k = 0; k < U; ++k) v[k] = id;
    int64_t i = 0;
    for (; i + U * VL <= n; i += U * VL)
      for (int k = 0; k < U; ++k) v[k] = pol_.vstep(v[k], vload(ptr + i + k * VL));
    for (; i + VL <= n; i += VL) v[0] = pol_.vstep(v[0], vload(ptr + i));
    for (int w = U / 2; w > 0; w /= 2)
      for (int k = 0; k < w; ++k) v[k] = pol_.vstep(v[k], v[k + w]);
    V v0 = v[0];
    acc_t acc = vreduce(v0, [this](auto a, auto b) { return pol_.vstep(a, b); });
    for (; i < n; ++i) acc = pol_.step(acc, ptr[i], o);
    return acc;
  }

  // max/min: NaN-blind vector steps (short dependency chains, which matter for short rows) with
  // an independent NaN flag; any NaN makes the result NaN, as torch's max does.
  __attribute__((always_inline)) acc_t reduce_block_vec_nan(const T* ptr, int64_t n, int64_t o) const {
    using V = vec_t<acc_t>;
    using M = decltype(V{} != V{});
    constexpr int VL = kVecLen<acc_t>;
    constexpr int U = 4;
    const V id = vsplat<acc_t>(pol_.identity());
    V v[U];
    M nan{};
    for (int k = 0; k < U; ++k) v[k] = id;
    int64_t i = 0;
    for (; i + U * VL <= n; i += U * VL)
      for (int k = 0; k < U; ++k) {
        const V x = vload(ptr + i + k * VL);
        v[k] = pol_.vstep_nonan(v[k], x);
        nan |= x != x;
      }
    for (; i + VL <= n; i += VL) {
      const V x = vload(ptr + i);
      v[0] = pol_.vstep_nonan(v[0], x);
      nan |= x != x;
    }
    for (int w = U / 2; w > 0; w /= 2)
      for (int k = 0; k < w; ++k) v[k] = pol_.vstep_nonan(v[k], v[k + w]);
    acc_t acc = vreduce(v[0], [this](auto a, auto b) { return pol_.vstep_nonan(a, b); });
    if (vreduce(nan, [](auto a, auto b) { return a | b; }))
      acc = std::numeric_limits<acc_t>::quiet_NaN();
    for (; i < n; ++i) acc = pol_.step(acc, ptr[i], o);
    return acc;
  }

  // Reduces every reduced dim, with the outermost one limited to [lo0, hi0).
  acc_t reduce_range(const T* ptr, int64_t lo0, int64_t hi0, int64_t o) const {
    const int64_t nr = static_cast<int64_t>(p_.red_sizes.size());
    if (nr == 1) return reduce_row(ptr + lo0 * p_.red_strides[0], hi0 - lo0, p_.red_strides[0], o);
    const int64_t row_n = p_.red_sizes[nr - 1], row_s = p_.red_strides[nr - 1];
    acc_t acc = pol_.identity();
    DimVector idx(nr - 1, 0);
    idx[0] = lo0;
    while (idx[0] < hi0) {
      int64_t off = 0;
      for (int64_t d = 0; d < nr - 1; ++d) off += idx[d] * p_.red_strides[d];
      acc = pol_.combine(acc, reduce_row(ptr + off, row_n, row_s, o));
      for (int64_t d = nr - 2; d >= 0; --d) {
        if (++idx[d] < p_.red_sizes[d] || d == 0) break;
        idx[d] = 0;
      }
    }
    return acc;
  }

  // Few outputs, long reductions: threads take slices of the outermost reduced dim.
  void split_reduction() {
    const int64_t n0 = p_.red_sizes[0];
    const int64_t inner = p_.red_numel / std::max<int64_t>(n0, 1);
    const int64_t grain0 = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(inner, 1));
    const int64_t nthreads = get_num_threads();
    for (int64_t o = 0; o < p_.num_out; ++o) {
      const T* ptr = base_ + out_offset(p_, o);
      std::vector<acc_t> partial(nthreads + 1, pol_.identity());
      const int64_t per = std::max<int64_t>(grain0, (n0 + nthreads - 1) / nthreads);
      const int64_t chunks = (n0 + per - 1) / per;
      parallel_for(0, chunks, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t c = lo; c < hi; ++c)
          partial[c] = reduce_range(ptr, c * per, std::min(n0, (c + 1) * per), o);
      });
      acc_t acc = partial[0];
      for (int64_t c = 1; c < chunks; ++c) acc = pol_.combine(acc, partial[c]);
      pol_.write(o, acc);
    }
  }

  // The innermost kept dim is contiguous: vectorize across a tile of outputs.
  void run_outer() {
    constexpr int64_t kTile = 256, kRowBlock = 64;
    const int64_t inner_n = p_.out_sizes.back();
    const int64_t tiles_per_row = (inner_n + kTile - 1) / kTile;
    const int64_t rows = p_.num_out / inner_n;
    const int64_t nr = static_cast<int64_t>(p_.red_sizes.size());
    const int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(p_.red_numel * kTile, 1));
    ReducePlan outer_plan = p_;  // kept dims without the innermost one, to locate each row
    outer_plan.out_sizes.pop_back();
    outer_plan.out_strides.pop_back();
    parallel_for(0, rows * tiles_per_row, grain, [&](int64_t lo, int64_t hi) {
      acc_t acc[kTile], blk[kTile];
      DimVector idx(nr, 0);
      for (int64_t t = lo; t < hi; ++t) {
        const int64_t row = t / tiles_per_row, j0 = (t % tiles_per_row) * kTile;
        const int64_t w = std::min(kTile, inner_n - j0);
        const int64_t o0 = row * inner_n + j0;
        const T* ptr = base_ + out_offset(outer_plan, row) + j0;
        for (int64_t j = 0; j < w; ++j) acc[j] = pol_.identity();
        std::fill(idx.begin(), idx.end(), 0);
        int64_t in_block = 0;
        for (int64_t j = 0; j < w; ++j) blk[j] = pol_.identity();
        for (int64_t r = 0; r < p_.red_numel; ++r) {
          int64_t off = 0;
          for (int64_t d = 0; d < nr; ++d) off += idx[d] * p_.red_strides[d];
          const T* src = ptr + off;
          for (int64_t j = 0; j < w; ++j) blk[j] = pol_.step(blk[j], load_as<T, acc_t>(src + j), o0 + j);
          if (++in_block == kRowBlock) {
            for (int64_t j = 0; j < w; ++j) { acc[j] = pol_.combine(acc[j], blk[j]); blk[j] = pol_.identity(); }
            in_block = 0;
          }
          for (int64_t d = nr - 1; d >= 0; --d) {
            if (++idx[d] < p_.red_sizes[d]) break;
            idx[d] = 0;
          }
        }
        for (int64_t j = 0; j < w; ++j) pol_.write(o0 + j, pol_.combine(acc[j], blk[j]));
      }
    });
  }

  const ReducePlan& p_;
  const T* base_;
  P& pol_;
};

// Function forms of the EMBER_DISPATCH_* macros: a lambda with commas in its body cannot be a macro
// argument, so it goes through a named parameter.
template <typename F> void dispatch_all(ScalarType t, const char* op, F&& f) { EMBER_DISPATCH_ALL(t, op, f); }
template <typename F> void dispatch_numeric(ScalarType t, const char* op, F&& f) { EMBER_DISPATCH_NUMERIC(t, op, f); }
template <typename F> void dispatch_float(ScalarType t, const char* op, F&& f) { EMBER_DISPATCH_FLOAT(t, op, f); }
template <typename F> void dispatch_integral(ScalarType t, const char* op, F&& f) { EMBER_DISPATCH_INTEGRAL(t, op, f); }

template <typename T, typename P>
void run_reduce(const ReducePlan& plan, const T* base, P& policy) {
  Reducer<T, P>(plan, base, policy).run();
}

}  // namespace ember::cpu
