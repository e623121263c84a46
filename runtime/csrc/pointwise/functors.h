#pragma once
// Note [Pointwise functors]
// One definition of each elementwise formula, compiled for CPU (cpu/pointwise.h loops) and CUDA
// (cuda/pointwise.cuh launcher). An op whose spec entry says `functor: Exp` gets both kernels
// generated from `Exp` below. A functor is a class template on the stored type T whose call
// operator takes and returns the compute type (opmath_t<T>: float for half types). Parameters come
// from the op's attrs: a functor either has a constructor taking them, or a static `visit` that
// picks one of several functors (so the element loop has no branch on an attr).
#include <type_traits>

#include "core/dtype.h"
#include "generated/op_attrs_elementwise.h"
#include "pointwise/math.h"

namespace ember::pw {

template <typename T> using O_t = opmath_t<T>;

// ---- arithmetic -------------------------------------------------------------------------------------
template <typename T> struct AddPlain {
  template <typename O> EMBER_HD O operator()(O x, O y) const { return x + y; }
};
template <typename T> struct AddScaled {
  O_t<T> alpha;
  template <typename O> EMBER_HD O operator()(O x, O y) const { return x + alpha * y; }
};
template <typename T> struct Add {  // alpha == 1 (the common case) skips the multiply
  template <typename Run> static void visit(const AlphaAttrs& a, Run&& run) {
    if (a.alpha.to_double() == 1.0) run(AddPlain<T>{});
    else run(AddScaled<T>{a.alpha.to<O_t<T>>()});
  }
};
template <typename T> struct Sub {
  O_t<T> alpha;
  explicit Sub(const AlphaAttrs& a) : alpha(a.alpha.to<O_t<T>>()) {}
  template <typename O> EMBER_HD O operator()(O x, O y) const { return x - alpha * y; }
};
template <typename T> struct Mul {
  template <typename O> EMBER_HD O operator()(O x, O y) const { return x * y; }
};
template <typename T> struct Div {
  template <typename O> EMBER_HD O operator()(O x, O y) const { return x / y; }
};
// Rounds the quotient toward -inf. Integer division by zero is rejected by the CPU kernel before
// the loop; on CUDA (no cheap check) it gives -1, as torch's result there is unspecified.
template <typename T> struct FloorDivide {
  template <typename O> EMBER_HD O operator()(O x, O y) const {
    if constexpr (std::is_integral_v<O>) {
      if (y == 0) return O(-1);
      O q = x / y;
      if constexpr (std::is_signed_v<O>) {
        if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
      }
      return q;
    } else {
      // torch's div_floor: the floor of the true quotient, via fmod to stay exact.
      if (y == 0) return x / y;
      const O mod = pm::fmod(x, y);
      O div = (x - mod) / y;
      if (mod != 0 && ((y < 0) != (mod < 0))) div -= 1;
      if (div == 0) return pm::copysign(O(0), x / y);
      O floordiv = pm::floor(div);
      if (div - floordiv > O(0.5)) floordiv += 1;
      return floordiv;
    }
  }
};
// Integer powers by squaring; negative exponents give 0 except for bases 1 and -1 (the frontend
// rejects negative number exponents, as torch does, so only tensor exponents get here).
template <typename T> struct Pow {
  template <typename O> EMBER_HD O operator()(O base, O e) const {
    if constexpr (std::is_integral_v<O>) {
      if constexpr (std::is_signed_v<O>) {
        if (e < 0) return base == 1 ? O(1) : base == -1 ? ((e & 1) ? O(-1) : O(1)) : O(0);
      }
      O result = 1;
      while (e > 0) {
        if (e & 1) result *= base;
        base *= base;
        e >>= 1;
      }
      return result;
    } else {
      return pm::pow(base, e);
    }
  }
};
// NaN propagates: a NaN y fails the comparison and is picked, a NaN x is selected afterwards. Two
// selects vectorize better on CPU than one select on an OR-ed mask.
template <typename T> struct Maximum {
  template <typename O> EMBER_HD O operator()(O x, O y) const {
    const O m = x > y ? x : y;
    return pm::isnan(x) ? x : m;
  }
};
template <typename T> struct Minimum {
  template <typename O> EMBER_HD O operator()(O x, O y) const {
    const O m = x < y ? x : y;
    return pm::isnan(x) ? x : m;
  }
};
// torch's two-sided formula keeps lerp exact at weight 0 and 1.
template <typename T> struct Lerp {
  template <typename O> EMBER_HD O operator()(O x, O y, O w) const {
    return (w < O(0.5)) ? x + w * (y - x) : y - (y - x) * (O(1) - w);
  }
};

// ---- unary math -------------------------------------------------------------------------------------
template <typename T> struct Neg {
  template <typename O> EMBER_HD O operator()(O v) const { return -v; }
};
template <typename T> struct Abs {
  template <typename O> EMBER_HD O operator()(O v) const { return v < O(0) ? -v : v; }
};
template <typename T> struct Sign {
  template <typename O> EMBER_HD O operator()(O v) const { return static_cast<O>((O(0) < v) - (v < O(0))); }
};
template <typename T> struct Exp {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::exp(v); }
};
template <typename T> struct Exp2 {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::exp2(v); }
};
template <typename T> struct Expm1 {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::expm1(v); }
};
template <typename T> struct Log {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::log(v); }
};
template <typename T> struct Log2 {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::log2(v); }
};
template <typename T> struct Log1p {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::log1p(v); }
};
template <typename T> struct Sqrt {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::sqrt(v); }
};
template <typename T> struct Rsqrt {
  template <typename O> EMBER_HD O operator()(O v) const { return O(1) / pm::sqrt(v); }
};
template <typename T> struct Sin {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::sin(v); }
};
template <typename T> struct Cos {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::cos(v); }
};
template <typename T> struct Tan {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::tan(v); }
};
template <typename T> struct Tanh {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::tanh(v); }
};
template <typename T> struct Sigmoid {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::sigmoid(v); }
};
template <typename T> struct Erf {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::erf(v); }
};
// Rounding is the identity on integers; round is half-to-even, like torch.
template <typename T> struct Floor {
  template <typename O> EMBER_HD O operator()(O v) const {
    if constexpr (std::is_integral_v<O>) return v; else return pm::floor(v);
  }
};
template <typename T> struct Ceil {
  template <typename O> EMBER_HD O operator()(O v) const {
    if constexpr (std::is_integral_v<O>) return v; else return pm::ceil(v);
  }
};
template <typename T> struct Round {
  template <typename O> EMBER_HD O operator()(O v) const {
    if constexpr (std::is_integral_v<O>) return v; else return pm::nearbyint(v);
  }
};
template <typename T> struct Trunc {
  template <typename O> EMBER_HD O operator()(O v) const {
    if constexpr (std::is_integral_v<O>) return v; else return pm::trunc(v);
  }
};
// The replacements (already clipped to the dtype's range by the frontend) round through T, so half
// types get the representable value.
template <typename T> struct NanToNum {
  O_t<T> nan = 0, posinf = 0, neginf = 0;
  explicit NanToNum(const NanToNumAttrs& a) {
    if constexpr (!std::is_integral_v<T>) {
      nan = static_cast<O_t<T>>(static_cast<T>(static_cast<O_t<T>>(a.nan)));
      posinf = static_cast<O_t<T>>(static_cast<T>(static_cast<O_t<T>>(a.posinf)));
      neginf = static_cast<O_t<T>>(static_cast<T>(static_cast<O_t<T>>(a.neginf)));
    }
  }
  template <typename O> EMBER_HD O operator()(O v) const {
    if constexpr (std::is_integral_v<O>) return v;
    else return v != v ? nan : (pm::isinf(v) ? (v > O(0) ? posinf : neginf) : v);
  }
};
// Absent bounds are absent (not +-inf): NaN inputs stay NaN; min > max gives max, like torch.
template <typename T> struct ClampBoth {
  O_t<T> lo, hi;
  template <typename O> EMBER_HD O operator()(O v) const {
    return v != v ? v : (v < lo ? (lo > hi ? hi : lo) : (v > hi ? hi : v));
  }
};
template <typename T> struct ClampMin {
  O_t<T> lo;
  template <typename O> EMBER_HD O operator()(O v) const { return v != v ? v : (v < lo ? lo : v); }
};
template <typename T> struct ClampMax {
  O_t<T> hi;
  template <typename O> EMBER_HD O operator()(O v) const { return v != v ? v : (v > hi ? hi : v); }
};
template <typename T> struct Clamp {
  template <typename Run> static void visit(const ClampAttrs& a, Run&& run) {
    using O = O_t<T>;
    if (a.min && a.max) run(ClampBoth<T>{a.min->to<O>(), a.max->to<O>()});
    else if (a.min) run(ClampMin<T>{a.min->to<O>()});
    else run(ClampMax<T>{a.max->to<O>()});
  }
};

// ---- activations ------------------------------------------------------------------------------------
template <typename T> struct Relu {  // a NaN input stays NaN
  template <typename O> EMBER_HD O operator()(O v) const { return v > O(0) ? v : (v != v ? v : O(0)); }
};
template <typename T> struct Silu {
  template <typename O> EMBER_HD O operator()(O v) const { return v * pm::sigmoid(v); }
};
constexpr double kGeluK0 = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kGeluK1 = 0.044715;
constexpr double kSqrtHalf = 0.7071067811865476;
constexpr double kInvSqrt2Pi = 0.3989422804014327;
template <typename T> struct GeluErf {  // x * Phi(x)
  template <typename O> EMBER_HD O operator()(O v) const { return O(0.5) * v * (O(1) + pm::erf(v * O(kSqrtHalf))); }
};
template <typename T> struct GeluTanh {
  template <typename O> EMBER_HD O operator()(O v) const {
    return O(0.5) * v * (O(1) + pm::tanh(O(kGeluK0) * (v + O(kGeluK1) * v * v * v)));
  }
};
template <typename T> struct Gelu {
  template <typename Run> static void visit(const GeluAttrs& a, Run&& run) {
    if (a.tanh) run(GeluTanh<T>{}); else run(GeluErf<T>{});
  }
};
// torch: x * beta > threshold ? x : log1p(exp(x * beta)) / beta.
template <typename T> struct Softplus {
  O_t<T> beta, threshold;
  explicit Softplus(const SoftplusAttrs& a) : beta(a.beta.to<O_t<T>>()), threshold(a.threshold.to<O_t<T>>()) {}
  template <typename O> EMBER_HD O operator()(O v) const {
    return v * beta > threshold ? v : pm::log1p(pm::exp(v * beta)) / beta;
  }
};
template <typename T> struct LeakyRelu {
  O_t<T> slope;
  explicit LeakyRelu(const LeakyReluAttrs& a) : slope(a.negative_slope.to<O_t<T>>()) {}
  template <typename O> EMBER_HD O operator()(O v) const { return v > O(0) ? v : v * slope; }
};

// ---- fused activation backward (grad, saved): Note [Fused activation backward] -----------------------
template <typename T> struct TanhBackward {  // saved = tanh(x)
  template <typename O> EMBER_HD O operator()(O g, O y) const { return g * (O(1) - y * y); }
};
template <typename T> struct SigmoidBackward {  // saved = sigmoid(x)
  template <typename O> EMBER_HD O operator()(O g, O y) const { return g * (y * (O(1) - y)); }
};
// torch's threshold_backward: zero where y <= 0, so a NaN output passes the gradient through.
template <typename T> struct ReluBackward {
  template <typename O> EMBER_HD O operator()(O g, O y) const { return y <= O(0) ? O(0) : g; }
};
template <typename T> struct SiluBackward {  // saved = x
  template <typename O> EMBER_HD O operator()(O g, O x) const {
    const O s = pm::sigmoid(x);
    return g * (s * (O(1) + x * (O(1) - s)));
  }
};
// d/dx x Phi(x) = Phi(x) + x phi(x); exp(-x^2/2) serves both the pdf and (CPU float) the erf.
template <typename T> struct GeluErfBackward {
  template <typename O> EMBER_HD O operator()(O g, O x) const {
    const O e = pm::exp(O(-0.5) * x * x);
    const O cdf = O(0.5) * (O(1) + pm::erf_with_exp(x * O(kSqrtHalf), e));
    return g * (cdf + x * (e * O(kInvSqrt2Pi)));
  }
};
// Derivative of 0.5 x (1 + tanh(k0 (x + k1 x^3))).
template <typename T> struct GeluTanhBackward {
  template <typename O> EMBER_HD O operator()(O g, O x) const {
    const O x2 = x * x;
    const O t = pm::tanh(O(kGeluK0) * x * (O(1) + O(kGeluK1) * x2));
    const O dinner = O(kGeluK0) * (O(1) + O(3) * O(kGeluK1) * x2);
    return g * (O(0.5) * (O(1) + t) + O(0.5) * x * (O(1) - t * t) * dinner);
  }
};
template <typename T> struct GeluBackward {
  template <typename Run> static void visit(const GeluAttrs& a, Run&& run) {
    if (a.tanh) run(GeluTanhBackward<T>{}); else run(GeluErfBackward<T>{});
  }
};

// ---- inverse trig, hyperbolic and special functions; two-argument math ---------------------------------
template <typename T> struct Asin {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::asin(v); }
};
template <typename T> struct Acos {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::acos(v); }
};
template <typename T> struct Atan {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::atan(v); }
};
template <typename T> struct Sinh {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::sinh(v); }
};
template <typename T> struct Cosh {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::cosh(v); }
};
template <typename T> struct Asinh {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::asinh(v); }
};
template <typename T> struct Acosh {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::acosh(v); }
};
template <typename T> struct Atanh {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::atanh(v); }
};
template <typename T> struct Log10 {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::log10(v); }
};
template <typename T> struct Erfc {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::erfc(v); }
};
template <typename T> struct Erfinv {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::erfinv(v); }
};
template <typename T> struct Atan2 {
  template <typename O> EMBER_HD O operator()(O y, O x) const { return pm::atan2(y, x); }
};
template <typename T> struct Hypot {
  template <typename O> EMBER_HD O operator()(O x, O y) const { return pm::hypot(x, y); }
};
// torch's form: equal infinities give themselves (not inf - inf = NaN); a NaN operand gives NaN.
template <typename T> struct LogAddExp {
  template <typename O> EMBER_HD O operator()(O a, O b) const {
    if (pm::isinf(a) && a == b) return a;
    const O m = a > b ? a : b;
    return m + pm::log1p(pm::exp(-(a > b ? a - b : b - a)));
  }
};
template <typename T> struct LogAddExp2 {
  template <typename O> EMBER_HD O operator()(O a, O b) const {
    if (pm::isinf(a) && a == b) return a;
    const O m = a > b ? a : b;
    return m + pm::log1p(pm::exp2(-(a > b ? a - b : b - a))) * O(1.4426950408889634);  // 1 / ln 2
  }
};

// ---- comparisons, logical and bitwise (predicates return bool) ----------------------------------------
template <typename T> struct Eq {
  template <typename O> EMBER_HD bool operator()(O x, O y) const { return x == y; }
};
template <typename T> struct Ne {
  template <typename O> EMBER_HD bool operator()(O x, O y) const { return x != y; }
};
template <typename T> struct Lt {
  template <typename O> EMBER_HD bool operator()(O x, O y) const { return x < y; }
};
template <typename T> struct Le {
  template <typename O> EMBER_HD bool operator()(O x, O y) const { return x <= y; }
};
template <typename T> struct Gt {
  template <typename O> EMBER_HD bool operator()(O x, O y) const { return x > y; }
};
template <typename T> struct Ge {
  template <typename O> EMBER_HD bool operator()(O x, O y) const { return x >= y; }
};
template <typename T> struct LogicalAnd {
  template <typename O> EMBER_HD bool operator()(O x, O y) const { return (x != O(0)) && (y != O(0)); }
};
template <typename T> struct LogicalOr {
  template <typename O> EMBER_HD bool operator()(O x, O y) const { return (x != O(0)) || (y != O(0)); }
};
template <typename T> struct LogicalXor {
  template <typename O> EMBER_HD bool operator()(O x, O y) const { return (x != O(0)) != (y != O(0)); }
};
template <typename T> struct LogicalNot {
  template <typename O> EMBER_HD bool operator()(O v) const { return v == O(0); }
};
template <typename T> struct IsNan {
  template <typename O> EMBER_HD bool operator()(O v) const { return pm::isnan(v); }
};
template <typename T> struct IsInf {
  template <typename O> EMBER_HD bool operator()(O v) const { return pm::isinf(v); }
};
template <typename T> struct IsFinite {
  template <typename O> EMBER_HD bool operator()(O v) const { return !pm::isnan(v) && !pm::isinf(v); }
};
template <typename T> struct BitwiseAnd {
  template <typename O> EMBER_HD O operator()(O x, O y) const { return x & y; }
};
template <typename T> struct BitwiseOr {
  template <typename O> EMBER_HD O operator()(O x, O y) const { return x | y; }
};
template <typename T> struct BitwiseXor {
  template <typename O> EMBER_HD O operator()(O x, O y) const { return x ^ y; }
};
template <typename T> struct BitwiseNot {
  template <typename O> EMBER_HD O operator()(O v) const {
    if constexpr (std::is_same_v<O, bool>) return !v; else return ~v;
  }
};

// ---- the generic kernels' plumbing ---------------------------------------------------------------------
enum class Dtypes { All, Numeric, Float, Integral };

// Calls fn.template operator()<T>() for the C++ type of `t`, or raises a TypeError naming the op.
template <Dtypes D, typename Body>
void dispatch_dtypes(ScalarType t, const char* name, Body&& body) {
  if constexpr (D == Dtypes::All) EMBER_DISPATCH_ALL(t, name, body);
  else if constexpr (D == Dtypes::Numeric) EMBER_DISPATCH_NUMERIC(t, name, body);
  else if constexpr (D == Dtypes::Float) EMBER_DISPATCH_FLOAT(t, name, body);
  else EMBER_DISPATCH_INTEGRAL(t, name, body);
}

// run(f) with F<T> made from the op's attrs: by its `visit`, its attrs constructor, or default.
template <template <typename> class F, typename T, typename A, typename Run>
void with_functor(const A& attrs, Run&& run) {
  if constexpr (requires { F<T>::visit(attrs, run); }) F<T>::visit(attrs, run);
  else if constexpr (std::is_constructible_v<F<T>, const A&>) run(F<T>(attrs));
  else run(F<T>{});
}

}  // namespace ember::pw
