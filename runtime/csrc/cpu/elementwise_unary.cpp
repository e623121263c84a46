// CPU kernels of sin and cos: a vectorizable float path (vm::sincosf_fast, cpu/elementwise_math.h)
// when every |x| is below its accuracy limit, else the shared functor (pointwise/functors.h).
// The other unary ops' CPU kernels are generated from their functors.
#include <atomic>
#include <cmath>

#include "cpu/pointwise.h"
#include "generated/kernels_elementwise.h"

namespace ember::cpu {
namespace {

// Whether every |x| < limit (NaN counts as not below).
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

// True when the fast path ran. Cos is a template argument so the element loop has no branch on it.
template <bool Cos>
bool fast_trig(const KernelArgs& args, const PointwiseAttrs& attrs) {
  if (!is_floating(attrs.dtype) || attrs.dtype == ScalarType::Float64) return false;
  const Tensor x = as_dtype(args.in[0], attrs.dtype);
  return EMBER_DISPATCH_FLOAT(attrs.dtype, Cos ? "cos" : "sin", ([&]<typename T>() {
    if constexpr (std::is_same_v<opmath_t<T>, float>) {
      if (!all_abs_below<T>(x, vm::kTrigLimit)) return false;
      unary_loop<T, T>(args.out[0], x, [](float v) { return vm::sincosf_fast(v, Cos); });
      return true;
    }
    return false;
  }));
}

}  // namespace

void sin(const KernelArgs& args, const PointwiseAttrs& attrs) {
  if (!fast_trig<false>(args, attrs)) pointwise<pw::Sin, Dtypes::Float, 1, false>(args, attrs, "sin");
}

void cos(const KernelArgs& args, const PointwiseAttrs& attrs) {
  if (!fast_trig<true>(args, attrs)) pointwise<pw::Cos, Dtypes::Float, 1, false>(args, attrs, "cos");
}

}  // namespace ember::cpu
