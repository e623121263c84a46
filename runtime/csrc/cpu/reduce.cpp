// CPU kernels of the reductions (sum, mean, prod, amax/amin, any/all, var, norm, logsumexp),
// arg-reductions (argmax/argmin, max/min along a dim) and cumsum. The frontends (ops/reduce.cpp)
// have validated dims and allocated contiguous outputs; attrs.dims lists every reduced dim.
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/dim_lines.h"
#include "cpu/reduce_engine.h"
#include "cpu/vec_math.h"
#include "generated/kernels_reduce.h"

namespace ember::cpu {
namespace {

template <typename T> constexpr bool kIsFloat = std::is_floating_point_v<opmath_t<T>>;

template <typename A> inline bool is_nan(A x) {
  if constexpr (std::is_floating_point_v<A>) return x != x;
  else return false;
}

// ---- policies (see Note [Reduction engine]) ----------------------------------------------------

template <typename Acc, typename Out>
struct SumPolicy {
  using acc_t = Acc;
  Out* out;
  acc_t identity() const { return acc_t(0); }
  acc_t step(acc_t a, acc_t x, int64_t) const { return a + x; }
  template <typename V> V vstep(V a, V x) const { return a + x; }
  acc_t combine(acc_t a, acc_t b) const { return a + b; }
  void write(int64_t o, acc_t a) const { out[o] = static_cast<Out>(a); }
};

template <typename Acc, typename Out>
struct MeanPolicy : SumPolicy<Acc, Out> {
  Acc count;
  void write(int64_t o, Acc a) const { this->out[o] = static_cast<Out>(a / count); }
};

template <typename Acc, typename Out>
struct ProdPolicy {
  using acc_t = Acc;
  Out* out;
  acc_t identity() const { return acc_t(1); }
  acc_t step(acc_t a, acc_t x, int64_t) const { return a * x; }
  acc_t combine(acc_t a, acc_t b) const { return a * b; }
  void write(int64_t o, acc_t a) const { out[o] = static_cast<Out>(a); }
};

// NaN wins: once an accumulator holds NaN it keeps it (x > NaN is false).
template <typename Acc, typename Out, bool IsMax>
struct MaxPolicy {
  using acc_t = Acc;
  Out* out;
  acc_t identity() const {
    if constexpr (std::is_same_v<Acc, bool>) return !IsMax;
    else if constexpr (std::numeric_limits<Acc>::has_infinity)
      return IsMax ? -std::numeric_limits<Acc>::infinity() : std::numeric_limits<Acc>::infinity();
    else return IsMax ? std::numeric_limits<Acc>::lowest() : std::numeric_limits<Acc>::max();
  }
  acc_t step(acc_t a, acc_t x, int64_t) const {
    if constexpr (IsMax) return (x > a || is_nan(x)) ? x : a;
    else return (x < a || is_nan(x)) ? x : a;
  }
  template <typename V> V vstep(V a, V x) const {
    if constexpr (IsMax) return ((x > a) | (x != x)) ? x : a;
    else return ((x < a) | (x != x)) ? x : a;
  }
  // NaN-blind step (a single max/min instruction); the engine tracks NaNs on the side.
  static constexpr bool kTracksNan = std::is_floating_point_v<Acc>;
  template <typename V> V vstep_nonan(V a, V x) const {
    if constexpr (IsMax) return x > a ? x : a;
    else return x < a ? x : a;
  }
  acc_t combine(acc_t a, acc_t b) const { return step(a, b, 0); }
  void write(int64_t o, acc_t a) const { out[o] = static_cast<Out>(a); }
};

template <typename Out, bool IsAny>
struct AnyAllPolicy {
  using acc_t = bool;
  Out* out;
  acc_t identity() const { return !IsAny; }
  acc_t step(acc_t a, acc_t x, int64_t) const { return IsAny ? (a || x) : (a && x); }
  acc_t combine(acc_t a, acc_t b) const { return step(a, b, 0); }
  void write(int64_t o, acc_t a) const { out[o] = static_cast<Out>(a); }
};

template <typename Acc>
struct SqDevPolicy {  // second pass of var: sum of squared deviations from the saved mean
  using acc_t = Acc;
  const Acc* mean;
  acc_t identity() const { return acc_t(0); }
  acc_t step(acc_t a, acc_t x, int64_t o) const { acc_t d = x - mean[o]; return a + d * d; }
  acc_t combine(acc_t a, acc_t b) const { return a + b; }
  Acc* sums;
  void write(int64_t o, acc_t a) const { sums[o] = a; }
};

enum class NormKind { L0, L1, L2, Inf, NegInf, P };

template <typename Acc, typename Out, NormKind K>
struct NormPolicy {
  using acc_t = Acc;
  Out* out;
  Acc p = 2;
  acc_t identity() const {
    if constexpr (K == NormKind::NegInf) return std::numeric_limits<Acc>::infinity();
    else return acc_t(0);
  }
  acc_t step(acc_t a, acc_t x, int64_t) const {
    const acc_t ax = std::abs(x);
    if constexpr (K == NormKind::L0) return a + static_cast<acc_t>(x != 0);
    else if constexpr (K == NormKind::L1) return a + ax;
    else if constexpr (K == NormKind::L2) return a + x * x;
    else if constexpr (K == NormKind::Inf) return (ax > a || is_nan(ax)) ? ax : a;
    else if constexpr (K == NormKind::NegInf) return (ax < a || is_nan(ax)) ? ax : a;
    else return a + std::pow(ax, p);
  }
  acc_t combine(acc_t a, acc_t b) const {
    if constexpr (K == NormKind::Inf) return (b > a || is_nan(b)) ? b : a;
    else if constexpr (K == NormKind::NegInf) return (b < a || is_nan(b)) ? b : a;
    else return a + b;
  }
  void write(int64_t o, acc_t a) const {
    if constexpr (K == NormKind::L2) a = std::sqrt(a);
    else if constexpr (K == NormKind::P) a = std::pow(a, acc_t(1) / p);
    out[o] = static_cast<Out>(a);
  }
};

template <typename Acc>
struct StorePolicy : MaxPolicy<Acc, Acc, true> {};  // amax into a scratch buffer

template <typename Acc, typename Out>
struct SumExpPolicy {  // second pass of logsumexp
  using acc_t = Acc;
  const Acc* shift;
  Out* out;
  acc_t identity() const { return acc_t(0); }
  acc_t step(acc_t a, acc_t x, int64_t o) const {
    if constexpr (std::is_same_v<Acc, float>) return a + fast_expf(x - shift[o]);
    else return a + std::exp(x - shift[o]);
  }
  acc_t combine(acc_t a, acc_t b) const { return a + b; }
  void write(int64_t o, acc_t a) const { out[o] = static_cast<Out>(std::log(a) + shift[o]); }
  // float32 rows with stride 1: vectorized exp (the generic lanes loop does not vectorize exp).
  static constexpr bool kFloatBlock = std::is_same_v<Acc, float> && std::is_same_v<Out, float>;
  acc_t contiguous_block(const float* p, int64_t n, int64_t o) const {
    using V = vec_t<float>;
    constexpr int VL = kVecLen<float>;
    const V sh = vsplat(static_cast<float>(shift[o]));
    V s0{}, s1{};
    int64_t i = 0;
    for (; i + 2 * VL <= n; i += 2 * VL) {
      s0 += vexpf(vload(p + i) - sh);
      s1 += vexpf(vload(p + i + VL) - sh);
    }
    for (; i + VL <= n; i += VL) s0 += vexpf(vload(p + i) - sh);
    acc_t acc = vreduce(s0 + s1, [](auto a, auto b) { return a + b; });
    for (; i < n; ++i) acc += fast_expf(p[i] - shift[o]);
    return acc;
  }
};

// Float accumulators: float for float/half types (cascade keeps it accurate), double for double.
template <typename T> using float_acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

}  // namespace

// ---- kernels -------------------------------------------------------------------------------------

void sum(const KernelArgs& a, const ReduceAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& out = a.out[0];
  ReducePlan plan = make_reduce_plan(x, attrs.dims);
  if (x.dtype() == out.dtype()) {
    dispatch_numeric(x.dtype(), "sum", [&]<typename T>() {
      using Acc = std::conditional_t<kIsFloat<T>, float_acc_t<T>, int64_t>;
      SumPolicy<Acc, T> pol{out.data<T>()};
      run_reduce(plan, x.data<T>(), pol);
    });
  } else {
    EMBER_CHECK(out.dtype() == ScalarType::Int64 && is_integral(x.dtype(), true), "[sum] unsupported dtypes ",
                dtype_name(x.dtype()), " -> ", dtype_name(out.dtype()));
    dispatch_integral(x.dtype(), "sum", [&]<typename T>() {
      SumPolicy<int64_t, int64_t> pol{out.data<int64_t>()};
      run_reduce(plan, x.data<T>(), pol);
    });
  }
}

void mean(const KernelArgs& a, const ReduceAttrs& attrs) {
  const Tensor& x = a.in[0];
  ReducePlan plan = make_reduce_plan(x, attrs.dims);
  dispatch_float(x.dtype(), "mean", [&]<typename T>() {
    using Acc = float_acc_t<T>;
    MeanPolicy<Acc, T> pol;
    pol.out = a.out[0].data<T>();
    pol.count = static_cast<Acc>(plan.red_numel);
    run_reduce(plan, x.data<T>(), pol);
  });
}

void prod(const KernelArgs& a, const ReduceAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& out = a.out[0];
  ReducePlan plan = make_reduce_plan(x, attrs.dims);
  if (x.dtype() == out.dtype()) {
    dispatch_numeric(x.dtype(), "prod", [&]<typename T>() {
      using Acc = std::conditional_t<kIsFloat<T>, float_acc_t<T>, int64_t>;
      ProdPolicy<Acc, T> pol{out.data<T>()};
      run_reduce(plan, x.data<T>(), pol);
    });
  } else {
    dispatch_integral(x.dtype(), "prod", [&]<typename T>() {
      ProdPolicy<int64_t, int64_t> pol{out.data<int64_t>()};
      run_reduce(plan, x.data<T>(), pol);
    });
  }
}

template <bool IsMax>
static void minmax_kernel(const KernelArgs& a, IntSpan dims, const char* name) {
  const Tensor& x = a.in[0];
  ReducePlan plan = make_reduce_plan(x, dims);
  dispatch_all(x.dtype(), name, [&]<typename T>() {
    using Acc = opmath_t<T>;
    MaxPolicy<Acc, T, IsMax> pol{a.out[0].data<T>()};
    run_reduce(plan, x.data<T>(), pol);
  });
}
void amax(const KernelArgs& a, const ReduceAttrs& attrs) { minmax_kernel<true>(a, attrs.dims, "amax"); }
void amin(const KernelArgs& a, const ReduceAttrs& attrs) { minmax_kernel<false>(a, attrs.dims, "amin"); }

template <bool IsAny>
static void any_all_kernel(const KernelArgs& a, IntSpan dims, const char* name) {
  const Tensor& x = a.in[0];
  ReducePlan plan = make_reduce_plan(x, dims);
  dispatch_all(x.dtype(), name, [&]<typename T>() {
    if (a.out[0].dtype() == ScalarType::UInt8) {
      AnyAllPolicy<uint8_t, IsAny> pol{a.out[0].data<uint8_t>()};
      run_reduce(plan, x.data<T>(), pol);
    } else {
      AnyAllPolicy<bool, IsAny> pol{a.out[0].data<bool>()};
      run_reduce(plan, x.data<T>(), pol);
    }
  });
}
void any(const KernelArgs& a, const ReduceAttrs& attrs) { any_all_kernel<true>(a, attrs.dims, "any"); }
void all(const KernelArgs& a, const ReduceAttrs& attrs) { any_all_kernel<false>(a, attrs.dims, "all"); }

// Two passes (mean, then squared deviations) in double: as accurate as Welford, simpler.
void var(const KernelArgs& a, const VarAttrs& attrs) {
  const Tensor& x = a.in[0];
  ReducePlan plan = make_reduce_plan(x, attrs.dims);
  const double n = static_cast<double>(plan.red_numel);
  const double divisor = std::max(0.0, n - attrs.correction);
  dispatch_float(x.dtype(), "var", [&]<typename T>() {
    std::vector<double> means(plan.num_out), sums(plan.num_out);
    MeanPolicy<double, double> mp;
    mp.out = means.data();
    mp.count = n;
    run_reduce(plan, x.data<T>(), mp);
    SqDevPolicy<double> sp{means.data(), sums.data()};
    run_reduce(plan, x.data<T>(), sp);
    T* out = a.out[0].data<T>();
    for (int64_t o = 0; o < plan.num_out; ++o) out[o] = static_cast<T>(sums[o] / divisor);
  });
}

void norm(const KernelArgs& a, const NormAttrs& attrs) {
  const Tensor& x = a.in[0];
  ReducePlan plan = make_reduce_plan(x, attrs.dims);
  const double p = attrs.p;
  dispatch_float(x.dtype(), "norm", [&]<typename T>() {
    using Acc = float_acc_t<T>;
    T* out = a.out[0].data<T>();
    auto go = [&]<NormKind K>() {
      NormPolicy<Acc, T, K> pol{out, static_cast<Acc>(p)};
      run_reduce(plan, x.data<T>(), pol);
    };
    if (p == 2) go.template operator()<NormKind::L2>();
    else if (p == 1) go.template operator()<NormKind::L1>();
    else if (p == 0) go.template operator()<NormKind::L0>();
    else if (std::isinf(p) && p > 0) go.template operator()<NormKind::Inf>();
    else if (std::isinf(p)) go.template operator()<NormKind::NegInf>();
    else go.template operator()<NormKind::P>();
  });
}

void logsumexp(const KernelArgs& a, const ReduceAttrs& attrs) {
  const Tensor& x = a.in[0];
  ReducePlan plan = make_reduce_plan(x, attrs.dims);
  dispatch_float(x.dtype(), "logsumexp", [&]<typename T>() {
    using Acc = float_acc_t<T>;
    std::vector<Acc> shift(plan.num_out);
    StorePolicy<Acc> mp;
    mp.out = shift.data();
    run_reduce(plan, x.data<T>(), mp);
    for (Acc& m : shift) if (std::isinf(m)) m = 0;  // all -inf rows give -inf, not nan
    SumExpPolicy<Acc, T> sp{shift.data(), a.out[0].data<T>()};
    run_reduce(plan, x.data<T>(), sp);
  });
}

// ---- arg-reductions --------------------------------------------------------------------------------
// Reduced dims stay in logical order (the index is the row-major position within them); NaN wins,
// and among equal values the first index wins, like torch.

namespace {
struct ArgPlan {
  DimVector out_sizes, out_strides, red_sizes, red_strides;
  int64_t num_out = 1, red_numel = 1;
};

ArgPlan make_arg_plan(const Tensor& x, IntSpan dims) {
  ArgPlan p;
  std::vector<bool> reduced(x.dim(), false);
  for (int64_t d : dims) reduced[d] = true;
  for (int64_t d = 0; d < x.dim(); ++d) {
    const int64_t size = x.sizes()[d], stride = x.strides()[d];
    if (!reduced[d]) { p.num_out *= size; p.out_sizes.push_back(size); p.out_strides.push_back(stride); continue; }
    p.red_numel *= size;
    if (size != 1) push_coalesced(p.red_sizes, p.red_strides, size, stride);
  }
  if (p.red_sizes.empty()) { p.red_sizes.push_back(1); p.red_strides.push_back(0); }
  return p;
}

template <typename T, bool IsMax>
void arg_reduce(const ArgPlan& p, const T* base, T* values, int64_t* indices) {
  using Acc = opmath_t<T>;
  const int64_t nr = static_cast<int64_t>(p.red_sizes.size());
  const int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(p.red_numel, 1));
  parallel_for(0, p.num_out, grain, [&](int64_t lo, int64_t hi) {
    DimVector idx(nr, 0);
    for (int64_t o = lo; o < hi; ++o) {
      int64_t off = 0, rem = o;
      for (int64_t d = static_cast<int64_t>(p.out_sizes.size()) - 1; d >= 0; --d) {
        off += (rem % p.out_sizes[d]) * p.out_strides[d];
        rem /= p.out_sizes[d];
      }
      const T* ptr = base + off;
      Acc best = load_as<T, Acc>(ptr);
      int64_t best_i = 0;
      constexpr bool kVectorizable = std::is_same_v<T, float> || std::is_same_v<T, double> ||
                                     std::is_same_v<T, int32_t> || std::is_same_v<T, int64_t>;
      if constexpr (kVectorizable) {
        if (nr == 1 && p.red_strides[0] == 1 && p.red_sizes[0] >= 2 * kVecLen<T>) {
          // Two passes: the NaN-propagating extremum with vectors, then its first position.
          const int64_t n = p.red_sizes[0];
          constexpr int VL = kVecLen<T>;
          auto op = [](auto a, auto b) { return IsMax ? vmax_nan(a, b) : vmin_nan(a, b); };
          vec_t<T> m = vload(ptr);
          int64_t i = VL;
          for (; i + VL <= n; i += VL) m = op(m, vload(ptr + i));
          T b = vreduce(m, op);
          for (; i < n; ++i) b = IsMax ? ((ptr[i] > b || is_nan(ptr[i])) ? ptr[i] : b) : ((ptr[i] < b || is_nan(ptr[i])) ? ptr[i] : b);
          int64_t at = 0;
          if (is_nan(b)) { while (!is_nan(ptr[at])) ++at; }
          else { while (ptr[at] != b) ++at; }
          if (values) values[o] = b;
          indices[o] = at;
          continue;
        }
      }
      if (nr == 1) {
        const int64_t n = p.red_sizes[0], s = p.red_strides[0];
        for (int64_t i = 1; i < n && !is_nan(best); ++i) {
          const Acc v = load_as<T, Acc>(ptr + i * s);
          if (IsMax ? (v > best || is_nan(v)) : (v < best || is_nan(v))) { best = v; best_i = i; }
        }
      } else {
        std::fill(idx.begin(), idx.end(), 0);
        for (int64_t i = 0; i < p.red_numel && !is_nan(best); ++i) {
          int64_t roff = 0;
          for (int64_t d = 0; d < nr; ++d) roff += idx[d] * p.red_strides[d];
          const Acc v = load_as<T, Acc>(ptr + roff);
          if (IsMax ? (v > best || is_nan(v)) : (v < best || is_nan(v))) { best = v; best_i = i; }
          for (int64_t d = nr - 1; d >= 0; --d) {
            if (++idx[d] < p.red_sizes[d]) break;
            idx[d] = 0;
          }
        }
      }
      if (values) values[o] = static_cast<T>(best);
      indices[o] = best_i;
    }
  });
}

template <bool IsMax>
void arg_kernel(const KernelArgs& a, IntSpan dims, bool with_values, const char* name) {
  const Tensor& x = a.in[0];
  ArgPlan plan = make_arg_plan(x, dims);
  if (plan.num_out == 0) return;
  dispatch_all(x.dtype(), name, [&]<typename T>() {
    if (with_values) arg_reduce<T, IsMax>(plan, x.data<T>(), a.out[0].data<T>(), a.out[1].data<int64_t>());
    else arg_reduce<T, IsMax>(plan, x.data<T>(), nullptr, a.out[0].data<int64_t>());
  });
}
}  // namespace

void max_dim(const KernelArgs& a, const ReduceDimAttrs& attrs) { arg_kernel<true>(a, attrs.dims, true, "max"); }
void min_dim(const KernelArgs& a, const ReduceDimAttrs& attrs) { arg_kernel<false>(a, attrs.dims, true, "min"); }
void argmax(const KernelArgs& a, const ReduceAttrs& attrs) { arg_kernel<true>(a, attrs.dims, false, "argmax"); }
void argmin(const KernelArgs& a, const ReduceAttrs& attrs) { arg_kernel<false>(a, attrs.dims, false, "argmin"); }

// ---- cumsum ----------------------------------------------------------------------------------------
// One line along `dim` at a time, accumulated in double (floats) or int64 (integers).

void cumsum(const KernelArgs& a, const CumsumAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& out = a.out[0];
  if (x.numel() == 0) return;
  const DimLines lines(x, attrs.dim, x.sizes());
  const int64_t n = lines.length, xs = lines.in_stride, os = lines.out_stride;
  auto run = [&]<typename T, typename O>() {
    using Acc = std::conditional_t<kIsFloat<O>, double, int64_t>;
    const T* xb = x.data<T>();
    O* ob = out.data<O>();
    parallel_for(0, lines.count, std::max<int64_t>(1, kGrainSize / n), [&](int64_t lo, int64_t hi) {
      for (int64_t l = lo; l < hi; ++l) {
        const auto [xo, oo] = lines.offsets(l);
        Acc acc = 0;
        for (int64_t i = 0; i < n; ++i) {
          acc += load_as<T, Acc>(xb + xo + i * xs);
          ob[oo + i * os] = static_cast<O>(acc);
        }
      }
    });
  };
  if (x.dtype() == out.dtype()) {
    dispatch_numeric(x.dtype(), "cumsum", [&]<typename T>() { run.template operator()<T, T>(); });
  } else {
    dispatch_integral(x.dtype(), "cumsum", [&]<typename T>() { run.template operator()<T, int64_t>(); });
  }
}

}  // namespace ember::cpu
