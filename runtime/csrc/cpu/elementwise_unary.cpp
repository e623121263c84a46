// CPU kernels of the unary elementwise ops (Note [Elementwise compute dtype]: the input is
// converted to attrs.dtype; the output has that dtype, or bool for predicates).
// Float32 exp/log/tanh/sigmoid/gelu... use the vectorizable approximations of cpu/elementwise_math.h.
#include <atomic>
#include <cmath>

#include "cpu/loops.h"
#include "cpu/elementwise_math.h"
#include "dispatch/op_def.h"

namespace ember::cpu {
namespace {

// Whether every |x| < limit (NaN counts as not below): picks the fast trig path.
template <typename T>
bool all_abs_below(const Tensor& x, float limit) {
  auto g = make_geometry<1>(x, {});
  std::atomic<bool> ok{true};
  for_each_row(g, [&](char** p, const int64_t* s, int64_t n) {
    bool row_ok = true;
    if (s[0] == sizeof(T)) {
      const T* v = reinterpret_cast<const T*>(p[0]);
#pragma omp simd reduction(&& : row_ok)
      for (int64_t i = 0; i < n; ++i) row_ok = row_ok && (std::fabs(static_cast<float>(v[i])) < limit);
    } else {
      for (int64_t i = 0; i < n; ++i)
        row_ok = row_ok && (std::fabs(static_cast<float>(*reinterpret_cast<const T*>(p[0] + i * s[0]))) < limit);
    }
    if (!row_ok) ok.store(false, std::memory_order_relaxed);
  });
  return ok.load();
}

}  // namespace

#define EMBER_UNARY_KERNEL(name, DISPATCH, ...)                                                     \
  void name(const KernelArgs& args) {                                                              \
    const ScalarType ct = args.attrs.dtype;                                                        \
    const Tensor x = as_dtype(args.in[0], ct);                                                     \
    const Attrs& attrs = args.attrs;                                                               \
    (void)attrs;                                                                                   \
    DISPATCH(ct, #name, ([&]<typename T>() {                                                        \
      using O = opmath_t<T>;                                                                       \
      __VA_ARGS__                                                                                  \
    }));                                                                                            \
  }
// Shorthand for a kernel that maps v -> expr.
#define EMBER_MAP(expr) unary_loop<T, T>(args.out[0], x, [=](O v) -> O { return expr; });

EMBER_UNARY_KERNEL(neg, EMBER_DISPATCH_NUMERIC, EMBER_MAP(-v))
EMBER_UNARY_KERNEL(abs, EMBER_DISPATCH_NUMERIC, EMBER_MAP(v < O(0) ? -v : v))
EMBER_UNARY_KERNEL(sign, EMBER_DISPATCH_ALL, EMBER_MAP(static_cast<O>((O(0) < v) - (v < O(0)))))
EMBER_UNARY_KERNEL(relu, EMBER_DISPATCH_NUMERIC, EMBER_MAP(v > O(0) ? v : (v != v ? v : O(0))))
EMBER_UNARY_KERNEL(bitwise_not, EMBER_DISPATCH_INTEGRAL,
                   if constexpr (std::is_same_v<T, bool>) { EMBER_MAP(!v) } else { EMBER_MAP(~v) })
EMBER_UNARY_KERNEL(floor, EMBER_DISPATCH_NUMERIC,
                   if constexpr (std::is_integral_v<T>) { EMBER_MAP(v) } else { EMBER_MAP(std::floor(v)) })
EMBER_UNARY_KERNEL(ceil, EMBER_DISPATCH_NUMERIC,
                   if constexpr (std::is_integral_v<T>) { EMBER_MAP(v) } else { EMBER_MAP(std::ceil(v)) })
EMBER_UNARY_KERNEL(round, EMBER_DISPATCH_NUMERIC,
                   if constexpr (std::is_integral_v<T>) { EMBER_MAP(v) } else { EMBER_MAP(std::nearbyint(v)) })
EMBER_UNARY_KERNEL(trunc, EMBER_DISPATCH_NUMERIC,
                   if constexpr (std::is_integral_v<T>) { EMBER_MAP(v) } else { EMBER_MAP(std::trunc(v)) })

EMBER_UNARY_KERNEL(exp, EMBER_DISPATCH_FLOAT, EMBER_MAP(vm::exp(v)))
EMBER_UNARY_KERNEL(exp2, EMBER_DISPATCH_FLOAT, EMBER_MAP(std::exp2(v)))
EMBER_UNARY_KERNEL(expm1, EMBER_DISPATCH_FLOAT, EMBER_MAP(std::expm1(v)))
EMBER_UNARY_KERNEL(log, EMBER_DISPATCH_FLOAT, EMBER_MAP(vm::log(v)))
EMBER_UNARY_KERNEL(log2, EMBER_DISPATCH_FLOAT, EMBER_MAP(std::log2(v)))
EMBER_UNARY_KERNEL(log1p, EMBER_DISPATCH_FLOAT, EMBER_MAP(std::log1p(v)))
EMBER_UNARY_KERNEL(sqrt, EMBER_DISPATCH_FLOAT, EMBER_MAP(std::sqrt(v)))
EMBER_UNARY_KERNEL(rsqrt, EMBER_DISPATCH_FLOAT, EMBER_MAP(O(1) / std::sqrt(v)))
EMBER_UNARY_KERNEL(sin, EMBER_DISPATCH_FLOAT,
  if constexpr (std::is_same_v<O, float>) {
    if (all_abs_below<T>(x, vm::kTrigLimit)) { EMBER_MAP(vm::sincosf_fast(v, false)) return; }
  }
  EMBER_MAP(std::sin(v)))
EMBER_UNARY_KERNEL(cos, EMBER_DISPATCH_FLOAT,
  if constexpr (std::is_same_v<O, float>) {
    if (all_abs_below<T>(x, vm::kTrigLimit)) { EMBER_MAP(vm::sincosf_fast(v, true)) return; }
  }
  EMBER_MAP(std::cos(v)))
EMBER_UNARY_KERNEL(tan, EMBER_DISPATCH_FLOAT, EMBER_MAP(std::tan(v)))
EMBER_UNARY_KERNEL(tanh, EMBER_DISPATCH_FLOAT, EMBER_MAP(vm::tanh(v)))
EMBER_UNARY_KERNEL(sigmoid, EMBER_DISPATCH_FLOAT, EMBER_MAP(vm::sigmoid(v)))
EMBER_UNARY_KERNEL(erf, EMBER_DISPATCH_FLOAT, EMBER_MAP(vm::erf(v)))
EMBER_UNARY_KERNEL(silu, EMBER_DISPATCH_FLOAT, EMBER_MAP(v * vm::sigmoid(v)))

EMBER_UNARY_KERNEL(gelu, EMBER_DISPATCH_FLOAT,
  if (attrs.flag) {
    const O k0 = O(0.7978845608028654), k1 = O(0.044715);
    EMBER_MAP(O(0.5) * v * (O(1) + vm::tanh(k0 * (v + k1 * v * v * v))))
  } else {
    EMBER_MAP(O(0.5) * v * (O(1) + vm::erf(v * O(0.7071067811865476))))
  })

// torch: x * beta > threshold ? x : log1p(exp(x * beta)) / beta.
EMBER_UNARY_KERNEL(softplus, EMBER_DISPATCH_FLOAT,
  const O beta = attrs.scalar.to<O>(), threshold = attrs.scalar2.to<O>();
  EMBER_MAP(v * beta > threshold ? v : std::log1p(vm::exp(v * beta)) / beta))

EMBER_UNARY_KERNEL(leaky_relu, EMBER_DISPATCH_FLOAT,
  const O slope = attrs.scalar.to<O>();
  EMBER_MAP(v > O(0) ? v : v * slope))

// attrs: scalar = nan replacement, scalar2 = +inf replacement, alpha = -inf replacement.
EMBER_UNARY_KERNEL(nan_to_num, EMBER_DISPATCH_NUMERIC,
  if constexpr (std::is_integral_v<T>) {
    EMBER_MAP(v)
  } else {
    const O nan = attrs.scalar.to<T>(), pos = attrs.scalar2.to<T>(), negv = attrs.alpha.to<T>();
    EMBER_MAP(v != v ? nan : (v == std::numeric_limits<O>::infinity() ? pos
                           : (v == -std::numeric_limits<O>::infinity() ? negv : v)))
  })

// Clamp bounds are optional (attrs.has_scalar / has_scalar2); NaN inputs stay NaN.
EMBER_UNARY_KERNEL(clamp, EMBER_DISPATCH_NUMERIC,
  const bool has_lo = attrs.has_scalar, has_hi = attrs.has_scalar2;
  const O lo = has_lo ? attrs.scalar.to<O>() : O(0), hi = has_hi ? attrs.scalar2.to<O>() : O(0);
  if (has_lo && has_hi) {
    EMBER_MAP(v != v ? v : (v < lo ? (lo > hi ? hi : lo) : (v > hi ? hi : v)))
  } else if (has_lo) {
    EMBER_MAP(v != v ? v : (v < lo ? lo : v))
  } else {
    EMBER_MAP(v != v ? v : (v > hi ? hi : v))
  })

#undef EMBER_MAP
#undef EMBER_UNARY_KERNEL

// Fused activation backward (in: grad, saved): one pass instead of the composite rule's several.
// tanh/sigmoid/relu save the output y; gelu/silu save the input x (Note [Fused activation backward]).
#define EMBER_ACT_BACKWARD_KERNEL(name, ...)                                                         \
  void name(const KernelArgs& args) {                                                              \
    const ScalarType ct = args.attrs.dtype;                                                        \
    const Tensor grad = as_dtype(args.in[0], ct), saved = as_dtype(args.in[1], ct);                \
    [[maybe_unused]] const bool tanh_approx = args.attrs.flag;                                     \
    EMBER_DISPATCH_FLOAT(ct, #name, ([&]<typename T>() {                                            \
      using O = opmath_t<T>;                                                                       \
      __VA_ARGS__                                                                                  \
    }));                                                                                            \
  }
#define EMBER_MAP2(expr) binary_loop<T, T, T>(args.out[0], grad, saved, [=](O g, O v) -> O { return expr; });

EMBER_ACT_BACKWARD_KERNEL(tanh_backward, EMBER_MAP2(g * (O(1) - v * v)))
EMBER_ACT_BACKWARD_KERNEL(sigmoid_backward, EMBER_MAP2(g * (v * (O(1) - v))))
// torch threshold_backward: a NaN output passes the gradient through.
EMBER_ACT_BACKWARD_KERNEL(relu_backward, EMBER_MAP2(v <= O(0) ? O(0) : g))
EMBER_ACT_BACKWARD_KERNEL(silu_backward,
  EMBER_MAP2(({ const O s = vm::sigmoid(v); g * (s * (O(1) + v * (O(1) - s))); })))
EMBER_ACT_BACKWARD_KERNEL(gelu_backward,
  if (tanh_approx) {
    const O k0 = O(0.7978845608028654), k1 = O(0.044715);
    EMBER_MAP2(({
      const O x2 = v * v;
      const O t = vm::tanh(k0 * v * (O(1) + k1 * x2));
      const O dinner = k0 * (O(1) + O(3) * k1 * x2);
      g * (O(0.5) * (O(1) + t) + O(0.5) * v * (O(1) - t * t) * dinner);
    }))
  } else {
    EMBER_MAP2(({
      const O e = vm::exp(O(-0.5) * v * v);  // exp(-(x/sqrt2)^2): shared by the pdf and (float) erf
      O erf_v;
      if constexpr (std::is_same_v<O, float>) erf_v = vm::erff_with_exp(v * O(0.7071067811865476), e);
      else erf_v = std::erf(v * O(0.7071067811865476));
      g * (O(0.5) * (O(1) + erf_v) + v * (e * O(0.3989422804014327)));
    }))
  })
#undef EMBER_MAP2
#undef EMBER_ACT_BACKWARD_KERNEL

#define EMBER_PREDICATE_KERNEL(name, expr)                                                          \
  void name(const KernelArgs& args) {                                                              \
    const ScalarType ct = args.attrs.dtype;                                                        \
    const Tensor x = as_dtype(args.in[0], ct);                                                     \
    EMBER_DISPATCH_ALL(ct, #name, ([&]<typename T>() {                                              \
      using O = opmath_t<T>;                                                                       \
      unary_loop<bool, T>(args.out[0], x, [](O v) -> bool { return expr; });                       \
    }));                                                                                            \
  }
EMBER_PREDICATE_KERNEL(isnan, v != v)
EMBER_PREDICATE_KERNEL(isinf, std::is_floating_point_v<O> && (v == std::numeric_limits<O>::infinity() ||
                                                                 v == -std::numeric_limits<O>::infinity()))
EMBER_PREDICATE_KERNEL(isfinite, v == v && !(std::is_floating_point_v<O> &&
                                             (v == std::numeric_limits<O>::infinity() ||
                                              v == -std::numeric_limits<O>::infinity())))
EMBER_PREDICATE_KERNEL(logical_not, v == O(0))
#undef EMBER_PREDICATE_KERNEL

}  // namespace ember::cpu
