// CPU kernels of the binary elementwise ops that need more than their shared functor
// (pointwise/functors.h): floor_divide rejects integer division by zero first, pow has fast paths
// for common scalar exponents, and where reads a bool condition as is. The other binary ops' CPU
// kernels are generated from their functors.
#include <cmath>

#include "cpu/pointwise.h"
#include "generated/kernels_elementwise.h"

namespace ember::cpu {
namespace {

// Scans an integral tensor for a zero; used to reject integer division by zero before the loop.
bool contains_zero(const Tensor& t) {
  bool found = false;
  EMBER_DISPATCH_ALL(t.dtype(), "contains_zero", ([&]<typename T>() {
    if constexpr (std::is_integral_v<T>) {
      Tensor probe = Tensor::empty(t.sizes(), ScalarType::Bool, t.device());
      unary_loop<bool, T>(probe, t, [](T v) { return v == 0; });
      const bool* p = probe.data<bool>();
      for (int64_t i = 0; i < probe.numel() && !found; ++i) found = p[i];
    }
  }));
  return found;
}

// x ** e for a 0-dim float exponent that has a cheaper form; false when it has none.
bool pow_scalar_fast_path(const KernelArgs& args, const PointwiseAttrs& attrs) {
  const Tensor& e = args.in[1];
  if (!is_floating(attrs.dtype) || e.dim() != 0) return false;
  const Tensor a = as_dtype(args.in[0], attrs.dtype), b = as_dtype(e, attrs.dtype);
  return EMBER_DISPATCH_FLOAT(attrs.dtype, "pow", ([&]<typename T>() {
    using O = opmath_t<T>;
    const O v = static_cast<O>(*b.data<T>());
    const Tensor& out = args.out[0];
    if (v == O(2)) binary_loop<T, T, T>(out, a, b, [](O x, O) -> O { return x * x; });
    else if (v == O(0.5)) binary_loop<T, T, T>(out, a, b, [](O x, O) -> O { return std::sqrt(x); });
    else if (v == O(1)) binary_loop<T, T, T>(out, a, b, [](O x, O) -> O { return x; });
    else if (v == O(3)) binary_loop<T, T, T>(out, a, b, [](O x, O) -> O { return x * x * x; });
    else if (v == O(-1)) binary_loop<T, T, T>(out, a, b, [](O x, O) -> O { return O(1) / x; });
    else return false;
    return true;
  }));
}

}  // namespace

void floor_divide(const KernelArgs& args, const PointwiseAttrs& attrs) {
  if (is_integral(attrs.dtype, true))
    EMBER_CHECK_KIND(!contains_zero(as_dtype(args.in[1], attrs.dtype)), ErrorKind::Runtime,
                     "[floor_divide] ZeroDivisionError");
  pointwise<pw::FloorDivide, Dtypes::Numeric, 2, false>(args, attrs, "floor_divide");
}

void pow(const KernelArgs& args, const PointwiseAttrs& attrs) {
  if (!pow_scalar_fast_path(args, attrs)) pointwise<pw::Pow, Dtypes::Numeric, 2, false>(args, attrs, "pow");
}

// in: (condition: bool, self, other).
void where(const KernelArgs& args, const PointwiseAttrs& attrs) {
  const ScalarType ct = attrs.dtype;
  const Tensor a = as_dtype(args.in[1], ct), b = as_dtype(args.in[2], ct);
  EMBER_DISPATCH_ALL(ct, "where", ([&]<typename T>() {
    ternary_loop<T, bool, T, T>(args.out[0], args.in[0], a, b,
                                [](bool c, opmath_t<T> x, opmath_t<T> y) { return c ? x : y; });
  }));
}

}  // namespace ember::cpu
