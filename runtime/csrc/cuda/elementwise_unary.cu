// CUDA kernels of the unary elementwise ops; same conventions as cpu/elementwise_unary.cpp (the
// input is read as attrs.dtype, the compute dtype; the output has that dtype, or bool for
// predicates). Math runs in float for half types (cuda_opmath_t), with CUDA's accurate libm.
#include <cfloat>
#include <cmath>

#include "cuda/loops.cuh"
#include "dispatch/op_def.h"

namespace ember::cuda {
namespace {

// Functor: v -> expr with access to up to three scalar parameters p0..p2 (already in O).
#define EMBER_CUDA_UNARY_FN(Name, expr)                                              \
  template <typename O>                                                              \
  struct Name {                                                                      \
    O p0, p1, p2;                                                                    \
    __device__ __forceinline__ O operator()(O v) const { return expr; }              \
  };

EMBER_CUDA_UNARY_FN(NegFn, -v)
EMBER_CUDA_UNARY_FN(AbsFn, v < O(0) ? -v : v)
EMBER_CUDA_UNARY_FN(SignFn, static_cast<O>((O(0) < v) - (v < O(0))))
EMBER_CUDA_UNARY_FN(ReluFn, v > O(0) ? v : (v != v ? v : O(0)))
EMBER_CUDA_UNARY_FN(IdFn, v)
EMBER_CUDA_UNARY_FN(FloorFn, floor(v))
EMBER_CUDA_UNARY_FN(CeilFn, ceil(v))
EMBER_CUDA_UNARY_FN(RoundFn, nearbyint(v))
EMBER_CUDA_UNARY_FN(TruncFn, trunc(v))
EMBER_CUDA_UNARY_FN(ExpFn, exp(v))
EMBER_CUDA_UNARY_FN(Exp2Fn, exp2(v))
EMBER_CUDA_UNARY_FN(Expm1Fn, expm1(v))
EMBER_CUDA_UNARY_FN(LogFn, log(v))
EMBER_CUDA_UNARY_FN(Log2Fn, log2(v))
EMBER_CUDA_UNARY_FN(Log1pFn, log1p(v))
EMBER_CUDA_UNARY_FN(SqrtFn, sqrt(v))
EMBER_CUDA_UNARY_FN(RsqrtFn, O(1) / sqrt(v))
EMBER_CUDA_UNARY_FN(SinFn, sin(v))
EMBER_CUDA_UNARY_FN(CosFn, cos(v))
EMBER_CUDA_UNARY_FN(TanFn, tan(v))
EMBER_CUDA_UNARY_FN(TanhFn, tanh(v))
EMBER_CUDA_UNARY_FN(SigmoidFn, O(1) / (O(1) + exp(-v)))
EMBER_CUDA_UNARY_FN(ErfFn, erf(v))
EMBER_CUDA_UNARY_FN(SiluFn, v / (O(1) + exp(-v)))
EMBER_CUDA_UNARY_FN(GeluErfFn, O(0.5) * v * (O(1) + erf(v * O(0.7071067811865476))))
EMBER_CUDA_UNARY_FN(GeluTanhFn, O(0.5) * v * (O(1) + tanh(O(0.7978845608028654) * (v + O(0.044715) * v * v * v))))
// p0 = beta, p1 = threshold.
EMBER_CUDA_UNARY_FN(SoftplusFn, v * p0 > p1 ? v : log1p(exp(v * p0)) / p0)
EMBER_CUDA_UNARY_FN(LeakyReluFn, v > O(0) ? v : v * p0)
// p0 = nan, p1 = +inf, p2 = -inf replacements.
EMBER_CUDA_UNARY_FN(NanToNumFn, v != v ? p0 : (isinf(v) ? (v > O(0) ? p1 : p2) : v))
// p0 = lo, p1 = hi.
EMBER_CUDA_UNARY_FN(ClampBothFn, v != v ? v : (v < p0 ? (p0 > p1 ? p1 : p0) : (v > p1 ? p1 : v)))
EMBER_CUDA_UNARY_FN(ClampLoFn, v != v ? v : (v < p0 ? p0 : v))
EMBER_CUDA_UNARY_FN(ClampHiFn, v != v ? v : (v > p1 ? p1 : v))
#undef EMBER_CUDA_UNARY_FN

template <typename O>
struct BitNotFn {
  O p0, p1, p2;
  __device__ __forceinline__ O operator()(O v) const {
    if constexpr (std::is_same_v<O, bool>) return !v;
    else if constexpr (std::is_integral_v<O>) return ~v;
    else return v;
  }
};

template <typename T, template <typename> class Fn>
void run_unary(const KernelArgs& args, double p0 = 0, double p1 = 0, double p2 = 0) {
  using O = cuda_opmath_t<T>;
  const Tensor& out = args.out[0];
  DeviceGuard guard(out.device());
  Fn<O> f{static_cast<O>(p0), static_cast<O>(p1), static_cast<O>(p2)};
  launch_elementwise<T, T, O, 1>(out, {&args.in[0]}, f);
}

#define EMBER_CUDA_PREDICATE_FN(Name, expr)                                                     \
  struct Name {                                                                                 \
    template <typename O> __device__ __forceinline__ bool operator()(O v) const {               \
      if constexpr (std::is_floating_point_v<O>) { return expr; } else { return Name##Int(v); } \
    }                                                                                           \
  };
template <typename O> __device__ bool IsNanFnInt(O) { return false; }
template <typename O> __device__ bool IsInfFnInt(O) { return false; }
template <typename O> __device__ bool IsFiniteFnInt(O) { return true; }
EMBER_CUDA_PREDICATE_FN(IsNanFn, v != v)
EMBER_CUDA_PREDICATE_FN(IsInfFn, isinf(v))
EMBER_CUDA_PREDICATE_FN(IsFiniteFn, isfinite(v))
#undef EMBER_CUDA_PREDICATE_FN
struct LogicalNotFn {
  template <typename O> __device__ __forceinline__ bool operator()(O v) const { return v == O(0); }
};

template <typename F>
void run_predicate(const KernelArgs& args, const char* name) {
  const Tensor& out = args.out[0];
  DeviceGuard guard(out.device());
  EMBER_CUDA_DISPATCH_ALL(args.attrs.dtype, name, [&]<typename T>() {
    launch_elementwise<bool, T, cuda_opmath_t<T>, 1>(out, {&args.in[0]}, F{});
  });
}

}  // namespace

#define EMBER_CUDA_UNARY(name, DISPATCH, Fn)                                                       \
  void name(const KernelArgs& args) {                                                              \
    DISPATCH(args.attrs.dtype, #name, [&]<typename T>() { run_unary<T, Fn>(args); });              \
  }
// Rounding ops are the identity on integers.
#define EMBER_CUDA_ROUNDING(name, Fn)                                                              \
  void name(const KernelArgs& args) {                                                              \
    EMBER_CUDA_DISPATCH_NUMERIC(args.attrs.dtype, #name, [&]<typename T>() {                      \
      if constexpr (std::is_integral_v<T>) run_unary<T, IdFn>(args);                               \
      else run_unary<T, Fn>(args);                                                                 \
    });                                                                                            \
  }

EMBER_CUDA_UNARY(neg, EMBER_CUDA_DISPATCH_NUMERIC, NegFn)
EMBER_CUDA_UNARY(abs, EMBER_CUDA_DISPATCH_NUMERIC, AbsFn)
EMBER_CUDA_UNARY(relu, EMBER_CUDA_DISPATCH_NUMERIC, ReluFn)
EMBER_CUDA_UNARY(bitwise_not, EMBER_CUDA_DISPATCH_INTEGRAL, BitNotFn)
EMBER_CUDA_ROUNDING(floor, FloorFn)
EMBER_CUDA_ROUNDING(ceil, CeilFn)
EMBER_CUDA_ROUNDING(round, RoundFn)
EMBER_CUDA_ROUNDING(trunc, TruncFn)
EMBER_CUDA_UNARY(exp, EMBER_CUDA_DISPATCH_FLOAT, ExpFn)
EMBER_CUDA_UNARY(exp2, EMBER_CUDA_DISPATCH_FLOAT, Exp2Fn)
EMBER_CUDA_UNARY(expm1, EMBER_CUDA_DISPATCH_FLOAT, Expm1Fn)
EMBER_CUDA_UNARY(log, EMBER_CUDA_DISPATCH_FLOAT, LogFn)
EMBER_CUDA_UNARY(log2, EMBER_CUDA_DISPATCH_FLOAT, Log2Fn)
EMBER_CUDA_UNARY(log1p, EMBER_CUDA_DISPATCH_FLOAT, Log1pFn)
EMBER_CUDA_UNARY(sqrt, EMBER_CUDA_DISPATCH_FLOAT, SqrtFn)
EMBER_CUDA_UNARY(rsqrt, EMBER_CUDA_DISPATCH_FLOAT, RsqrtFn)
EMBER_CUDA_UNARY(sin, EMBER_CUDA_DISPATCH_FLOAT, SinFn)
EMBER_CUDA_UNARY(cos, EMBER_CUDA_DISPATCH_FLOAT, CosFn)
EMBER_CUDA_UNARY(tan, EMBER_CUDA_DISPATCH_FLOAT, TanFn)
EMBER_CUDA_UNARY(tanh, EMBER_CUDA_DISPATCH_FLOAT, TanhFn)
EMBER_CUDA_UNARY(sigmoid, EMBER_CUDA_DISPATCH_FLOAT, SigmoidFn)
EMBER_CUDA_UNARY(erf, EMBER_CUDA_DISPATCH_FLOAT, ErfFn)
EMBER_CUDA_UNARY(silu, EMBER_CUDA_DISPATCH_FLOAT, SiluFn)
#undef EMBER_CUDA_UNARY
#undef EMBER_CUDA_ROUNDING

void sign(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_ALL(args.attrs.dtype, "sign", [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) run_unary<T, IdFn>(args);
    else run_unary<T, SignFn>(args);
  });
}

void gelu(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_FLOAT(args.attrs.dtype, "gelu", [&]<typename T>() {
    if (args.attrs.flag) run_unary<T, GeluTanhFn>(args);
    else run_unary<T, GeluErfFn>(args);
  });
}

void softplus(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_FLOAT(args.attrs.dtype, "softplus", [&]<typename T>() {
    run_unary<T, SoftplusFn>(args, args.attrs.scalar.to_double(), args.attrs.scalar2.to_double());
  });
}

void leaky_relu(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_FLOAT(args.attrs.dtype, "leaky_relu", [&]<typename T>() {
    run_unary<T, LeakyReluFn>(args, args.attrs.scalar.to_double());
  });
}

// attrs: scalar = nan replacement, scalar2 = +inf replacement, alpha = -inf replacement (already
// clipped to the dtype's range by the frontend, as the CPU kernel expects).
void nan_to_num(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_NUMERIC(args.attrs.dtype, "nan_to_num", [&]<typename T>() {
    if constexpr (std::is_integral_v<T>) {
      run_unary<T, IdFn>(args);
    } else {
      using O = cuda_opmath_t<T>;
      // Round the replacements through T so half types get the representable value (as the CPU).
      auto through = [](const Scalar& s) { return static_cast<double>(static_cast<O>(s.to<T>())); };
      run_unary<T, NanToNumFn>(args, through(args.attrs.scalar), through(args.attrs.scalar2), through(args.attrs.alpha));
    }
  });
}

void clamp(const KernelArgs& args) {
  const Attrs& at = args.attrs;
  EMBER_CUDA_DISPATCH_NUMERIC(at.dtype, "clamp", [&]<typename T>() {
    using O = cuda_opmath_t<T>;
    const double lo = at.has_scalar ? static_cast<double>(at.scalar.to<O>()) : 0.0;
    const double hi = at.has_scalar2 ? static_cast<double>(at.scalar2.to<O>()) : 0.0;
    if constexpr (std::is_integral_v<O>) {
      // Integer bounds must not round through double (int64 beyond 2^53): pass them exactly.
      const Tensor& out = args.out[0];
      DeviceGuard guard(out.device());
      const O l = at.has_scalar ? at.scalar.to<O>() : O(0), h = at.has_scalar2 ? at.scalar2.to<O>() : O(0);
      if (at.has_scalar && at.has_scalar2) launch_elementwise<T, T, O, 1>(out, {&args.in[0]}, ClampBothFn<O>{l, h, 0});
      else if (at.has_scalar) launch_elementwise<T, T, O, 1>(out, {&args.in[0]}, ClampLoFn<O>{l, h, 0});
      else launch_elementwise<T, T, O, 1>(out, {&args.in[0]}, ClampHiFn<O>{l, h, 0});
    } else {
      if (at.has_scalar && at.has_scalar2) run_unary<T, ClampBothFn>(args, lo, hi);
      else if (at.has_scalar) run_unary<T, ClampLoFn>(args, lo, hi);
      else run_unary<T, ClampHiFn>(args, lo, hi);
    }
  });
}

void isnan(const KernelArgs& a) { run_predicate<IsNanFn>(a, "isnan"); }
void isinf(const KernelArgs& a) { run_predicate<IsInfFn>(a, "isinf"); }
void isfinite(const KernelArgs& a) { run_predicate<IsFiniteFn>(a, "isfinite"); }
void logical_not(const KernelArgs& a) { run_predicate<LogicalNotFn>(a, "logical_not"); }

}  // namespace ember::cuda
