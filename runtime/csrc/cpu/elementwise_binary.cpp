// CPU kernels of the binary and ternary elementwise ops. Convention (Note [Elementwise compute
// dtype], ops/elementwise.cpp): inputs are converted to attrs.dtype, the compute dtype; the output
// has that dtype too, except for comparisons and logical ops, whose output is bool.
#include <cmath>

#include "cpu/loops.h"
#include "dispatch/op_def.h"

namespace ember::cpu {
namespace {

template <typename T>
inline bool is_nan_value(T v) {
  if constexpr (std::is_floating_point_v<T>) return v != v;
  else return false;
}

// Scans an integral tensor for a value; used to reject integer division by zero before the loop.
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

}  // namespace

#define EMBER_BINARY_KERNEL(name, DISPATCH, ...)                                                    \
  void name(const KernelArgs& args) {                                                              \
    const ScalarType ct = args.attrs.dtype;                                                        \
    const Tensor a = as_dtype(args.in[0], ct), b = as_dtype(args.in[1], ct);                       \
    const Tensor& out = args.out[0];                                                               \
    DISPATCH(ct, #name, ([&]<typename T>() {                                                        \
      using O = opmath_t<T>;                                                                       \
      [[maybe_unused]] const O alpha = args.attrs.alpha.to<O>();                                   \
      binary_loop<T, T, T>(out, a, b, [=](O x, O y) -> O { __VA_ARGS__ });                         \
    }));                                                                                            \
  }

EMBER_BINARY_KERNEL(add, EMBER_DISPATCH_ALL, return x + alpha * y;)
EMBER_BINARY_KERNEL(sub, EMBER_DISPATCH_NUMERIC, return x - alpha * y;)
EMBER_BINARY_KERNEL(mul, EMBER_DISPATCH_ALL, return x * y;)
EMBER_BINARY_KERNEL(div, EMBER_DISPATCH_FLOAT, return x / y;)
// NaN propagates: a NaN y fails the comparison and is picked; a NaN x is selected afterwards. Two
// selects (compare -> vmaxps-shaped select, then a NaN blend) run ~2x faster than one select on an
// OR-ed mask, which made GCC reload both operands per vector.
EMBER_BINARY_KERNEL(maximum, EMBER_DISPATCH_ALL, const O m = x > y ? x : y; return is_nan_value(x) ? x : m;)
EMBER_BINARY_KERNEL(minimum, EMBER_DISPATCH_ALL, const O m = x < y ? x : y; return is_nan_value(x) ? x : m;)
EMBER_BINARY_KERNEL(bitwise_and, EMBER_DISPATCH_INTEGRAL, return x & y;)
EMBER_BINARY_KERNEL(bitwise_or, EMBER_DISPATCH_INTEGRAL, return x | y;)
EMBER_BINARY_KERNEL(bitwise_xor, EMBER_DISPATCH_INTEGRAL, return x ^ y;)
#undef EMBER_BINARY_KERNEL

void floor_divide(const KernelArgs& args) {
  const ScalarType ct = args.attrs.dtype;
  const Tensor a = as_dtype(args.in[0], ct), b = as_dtype(args.in[1], ct);
  const Tensor& out = args.out[0];
  EMBER_DISPATCH_NUMERIC(ct, "floor_divide", ([&]<typename T>() {
    using O = opmath_t<T>;
    if constexpr (std::is_integral_v<T>) {
      EMBER_CHECK_KIND(!contains_zero(b), ErrorKind::Runtime, "[floor_divide] ZeroDivisionError");
      binary_loop<T, T, T>(out, a, b, [](O x, O y) -> O {
        O q = x / y;
        if constexpr (std::is_signed_v<O>) { if ((x % y != 0) && ((x < 0) != (y < 0))) --q; }
        return q;
      });
    } else {
      // torch's div_floor: floor of the true quotient, computed via fmod to stay exact.
      binary_loop<T, T, T>(out, a, b, [](O x, O y) -> O {
        if (y == 0) return x / y;
        O mod = std::fmod(x, y);
        O div = (x - mod) / y;
        if (mod != 0 && ((y < 0) != (mod < 0))) div -= 1;
        if (div == 0) return std::copysign(O(0), x / y);
        O floordiv = std::floor(div);
        if (div - floordiv > O(0.5)) floordiv += 1;
        return floordiv;
      });
    }
  }));
}

void pow(const KernelArgs& args) {
  const ScalarType ct = args.attrs.dtype;
  const Tensor a = as_dtype(args.in[0], ct), b = as_dtype(args.in[1], ct);
  const Tensor& out = args.out[0];
  EMBER_DISPATCH_NUMERIC(ct, "pow", ([&]<typename T>() {
    using O = opmath_t<T>;
    if constexpr (std::is_integral_v<T>) {
      // Negative exponents (only reachable with tensor exponents: the frontend rejects number
      // ones, like torch) give 0 except for bases 1 and -1.
      binary_loop<T, T, T>(out, a, b, [](O base, O e) -> O {
        if constexpr (std::is_signed_v<O>) {
          if (e < 0) return base == 1 ? O(1) : base == -1 ? ((e & 1) ? O(-1) : O(1)) : O(0);
        }
        O result = 1;
        while (e > 0) { if (e & 1) result *= base; base *= base; e >>= 1; }
        return result;
      });
    } else {
      const Tensor& bb = b;
      if (bb.numel() == 1 && bb.dim() == 0) {
        const O e = static_cast<O>(*bb.data<T>());
        if (e == O(2)) { binary_loop<T, T, T>(out, a, b, [](O x, O) -> O { return x * x; }); return; }
        if (e == O(0.5)) { binary_loop<T, T, T>(out, a, b, [](O x, O) -> O { return std::sqrt(x); }); return; }
        if (e == O(1)) { binary_loop<T, T, T>(out, a, b, [](O x, O) -> O { return x; }); return; }
        if (e == O(3)) { binary_loop<T, T, T>(out, a, b, [](O x, O) -> O { return x * x * x; }); return; }
        if (e == O(-1)) { binary_loop<T, T, T>(out, a, b, [](O x, O) -> O { return O(1) / x; }); return; }
      }
      binary_loop<T, T, T>(out, a, b, [](O x, O y) -> O { return std::pow(x, y); });
    }
  }));
}

#define EMBER_COMPARE_KERNEL(name, op)                                                              \
  void name(const KernelArgs& args) {                                                              \
    const ScalarType ct = args.attrs.dtype;                                                        \
    const Tensor a = as_dtype(args.in[0], ct), b = as_dtype(args.in[1], ct);                       \
    EMBER_DISPATCH_ALL(ct, #name, ([&]<typename T>() {                                              \
      using O = opmath_t<T>;                                                                       \
      binary_loop<bool, T, T>(args.out[0], a, b, [](O x, O y) -> bool { return op; });             \
    }));                                                                                            \
  }
EMBER_COMPARE_KERNEL(eq, x == y)
EMBER_COMPARE_KERNEL(ne, x != y)
EMBER_COMPARE_KERNEL(lt, x < y)
EMBER_COMPARE_KERNEL(le, x <= y)
EMBER_COMPARE_KERNEL(gt, x > y)
EMBER_COMPARE_KERNEL(ge, x >= y)
EMBER_COMPARE_KERNEL(logical_and, (x != O(0)) && (y != O(0)))
EMBER_COMPARE_KERNEL(logical_or, (x != O(0)) || (y != O(0)))
EMBER_COMPARE_KERNEL(logical_xor, (x != O(0)) != (y != O(0)))
#undef EMBER_COMPARE_KERNEL

// in: (self, end, weight); torch's two-sided formula keeps lerp exact at weight 0 and 1.
void lerp(const KernelArgs& args) {
  const ScalarType ct = args.attrs.dtype;
  const Tensor a = as_dtype(args.in[0], ct), b = as_dtype(args.in[1], ct), w = as_dtype(args.in[2], ct);
  EMBER_DISPATCH_FLOAT(ct, "lerp", ([&]<typename T>() {
    using O = opmath_t<T>;
    ternary_loop<T, T, T, T>(args.out[0], a, b, w, [](O x, O y, O t) -> O {
      return (t < O(0.5)) ? x + t * (y - x) : y - (y - x) * (O(1) - t);
    });
  }));
}

// in: (condition: bool, self, other).
void where(const KernelArgs& args) {
  const ScalarType ct = args.attrs.dtype;
  const Tensor a = as_dtype(args.in[1], ct), b = as_dtype(args.in[2], ct);
  EMBER_DISPATCH_ALL(ct, "where", ([&]<typename T>() {
    ternary_loop<T, bool, T, T>(args.out[0], args.in[0], a, b,
                                [](bool c, opmath_t<T> x, opmath_t<T> y) { return c ? x : y; });
  }));
}

}  // namespace ember::cpu
