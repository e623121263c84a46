// CUDA kernels of the binary and ternary elementwise ops. Same convention as cpu/elementwise_binary.cpp
// (Note [Elementwise compute dtype]): inputs are converted to attrs.dtype, the compute dtype, and
// the output has that dtype, except comparisons and logical ops (bool). Here the conversion happens
// as the kernel loads each input (loops.cuh), so mixed-dtype inputs cost no extra pass.
#include "cuda/loops.cuh"
#include "dispatch/op_def.h"

namespace ember::cuda {
namespace {

template <typename T>
__device__ __forceinline__ bool isnan_v(T v) {
  if constexpr (std::is_floating_point_v<T>) return v != v;
  else return false;
}

#define EMBER_CUDA_BINARY_FN(Name, body)                                              \
  template <typename O>                                                               \
  struct Name {                                                                       \
    O alpha;                                                                          \
    __device__ __forceinline__ O operator()(O x, O y) const { body }                  \
  };

EMBER_CUDA_BINARY_FN(AddFn, return x + alpha * y;)
EMBER_CUDA_BINARY_FN(AddNoAlphaFn, return x + y;)
EMBER_CUDA_BINARY_FN(SubFn, return x - alpha * y;)
EMBER_CUDA_BINARY_FN(MulFn, return x * y;)
EMBER_CUDA_BINARY_FN(DivFn, return x / y;)
EMBER_CUDA_BINARY_FN(MaxFn, return isnan_v(x) ? x : isnan_v(y) ? y : (x > y ? x : y);)
EMBER_CUDA_BINARY_FN(MinFn, return isnan_v(x) ? x : isnan_v(y) ? y : (x < y ? x : y);)
EMBER_CUDA_BINARY_FN(AndFn, if constexpr (std::is_integral_v<O>) return x & y; else return x;)
EMBER_CUDA_BINARY_FN(OrFn, if constexpr (std::is_integral_v<O>) return x | y; else return x;)
EMBER_CUDA_BINARY_FN(XorFn, if constexpr (std::is_integral_v<O>) return x ^ y; else return x;)
#undef EMBER_CUDA_BINARY_FN

// Bool "add" is logical or (torch): computing in bool would wrap, so it is done in int.
template <typename T, template <typename> class Fn>
void run_binary(const KernelArgs& args) {
  using O = cuda_opmath_t<T>;
  const Tensor& out = args.out[0];
  DeviceGuard guard(out.device());
  Fn<O> f{args.attrs.alpha.to<O>()};
  launch_elementwise<T, T, O, 2>(out, {&args.in[0], &args.in[1]}, f);
}

template <typename O>
struct FloorDivFn {
  O alpha;
  __device__ __forceinline__ O operator()(O x, O y) const {
    if constexpr (std::is_integral_v<O>) {
      if (y == 0) return O(-1);  // torch's CUDA result for integer division by zero is unspecified
      O q = x / y;
      if constexpr (std::is_signed_v<O>) {
        if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
      }
      return q;
    } else {
      if (y == 0) return x / y;
      O mod = fmod(x, y);
      O div = (x - mod) / y;
      if (mod != 0 && ((y < 0) != (mod < 0))) div -= 1;
      if (div == 0) return copysign(O(0), x / y);
      O floordiv = floor(div);
      if (div - floordiv > O(0.5)) floordiv += 1;
      return floordiv;
    }
  }
};

template <typename O>
struct PowFn {
  O alpha;
  __device__ __forceinline__ O operator()(O base, O e) const {
    if constexpr (std::is_integral_v<O>) {
      if constexpr (std::is_signed_v<O>) {
        if (e < 0) {
          if (base == 1) return 1;
          if (base == -1) return (e & 1) ? O(-1) : O(1);
          return 0;
        }
      }
      O result = 1;
      while (e > 0) {
        if (e & 1) result *= base;
        base *= base;
        e >>= 1;
      }
      return result;
    } else {
      return pow(base, e);
    }
  }
};

#define EMBER_CUDA_COMPARE_FN(Name, expr)                                             \
  struct Name {                                                                       \
    template <typename O> __device__ __forceinline__ bool operator()(O x, O y) const { return expr; } \
  };
EMBER_CUDA_COMPARE_FN(EqFn, x == y)
EMBER_CUDA_COMPARE_FN(NeFn, x != y)
EMBER_CUDA_COMPARE_FN(LtFn, x < y)
EMBER_CUDA_COMPARE_FN(LeFn, x <= y)
EMBER_CUDA_COMPARE_FN(GtFn, x > y)
EMBER_CUDA_COMPARE_FN(GeFn, x >= y)
EMBER_CUDA_COMPARE_FN(LogicalAndFn, (x != O(0)) && (y != O(0)))
EMBER_CUDA_COMPARE_FN(LogicalOrFn, (x != O(0)) || (y != O(0)))
EMBER_CUDA_COMPARE_FN(LogicalXorFn, (x != O(0)) != (y != O(0)))
#undef EMBER_CUDA_COMPARE_FN

template <typename F>
void run_compare(const KernelArgs& args, const char* name) {
  const Tensor& out = args.out[0];
  DeviceGuard guard(out.device());
  EMBER_CUDA_DISPATCH_ALL(args.attrs.dtype, name, [&]<typename T>() {
    using O = cuda_opmath_t<T>;
    launch_elementwise<bool, T, O, 2>(out, {&args.in[0], &args.in[1]}, F{});
  });
}

template <typename O>
struct LerpFn {
  __device__ __forceinline__ O operator()(O x, O y, O t) const {
    return (t < O(0.5)) ? x + t * (y - x) : y - (y - x) * (O(1) - t);
  }
};

template <typename O>
struct WhereFn {
  __device__ __forceinline__ O operator()(O c, O x, O y) const { return c != O(0) ? x : y; }
};

}  // namespace

void add(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_ALL(args.attrs.dtype, "add", [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      const Tensor& out = args.out[0];
      DeviceGuard guard(out.device());
      launch_elementwise<bool, bool, int, 2>(out, {&args.in[0], &args.in[1]}, AddFn<int>{args.attrs.alpha.to<int>()});
    } else if (args.attrs.alpha.to_double() == 1.0) {
      run_binary<T, AddNoAlphaFn>(args);
    } else {
      run_binary<T, AddFn>(args);
    }
  });
}
void sub(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_NUMERIC(args.attrs.dtype, "sub", [&]<typename T>() { run_binary<T, SubFn>(args); });
}
void mul(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_ALL(args.attrs.dtype, "mul", [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      const Tensor& out = args.out[0];
      DeviceGuard guard(out.device());
      launch_elementwise<bool, bool, int, 2>(out, {&args.in[0], &args.in[1]}, MulFn<int>{1});
    } else {
      run_binary<T, MulFn>(args);
    }
  });
}
void div(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_FLOAT(args.attrs.dtype, "div", [&]<typename T>() { run_binary<T, DivFn>(args); });
}
void maximum(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_ALL(args.attrs.dtype, "maximum", [&]<typename T>() { run_binary<T, MaxFn>(args); });
}
void minimum(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_ALL(args.attrs.dtype, "minimum", [&]<typename T>() { run_binary<T, MinFn>(args); });
}
void bitwise_and(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_INTEGRAL(args.attrs.dtype, "bitwise_and", [&]<typename T>() { run_binary<T, AndFn>(args); });
}
void bitwise_or(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_INTEGRAL(args.attrs.dtype, "bitwise_or", [&]<typename T>() { run_binary<T, OrFn>(args); });
}
void bitwise_xor(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_INTEGRAL(args.attrs.dtype, "bitwise_xor", [&]<typename T>() { run_binary<T, XorFn>(args); });
}
void floor_divide(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_NUMERIC(args.attrs.dtype, "floor_divide", [&]<typename T>() { run_binary<T, FloorDivFn>(args); });
}
void pow(const KernelArgs& args) {
  EMBER_CUDA_DISPATCH_NUMERIC(args.attrs.dtype, "pow", [&]<typename T>() {
    run_binary<T, PowFn>(args);
  });
}

void eq(const KernelArgs& a) { run_compare<EqFn>(a, "eq"); }
void ne(const KernelArgs& a) { run_compare<NeFn>(a, "ne"); }
void lt(const KernelArgs& a) { run_compare<LtFn>(a, "lt"); }
void le(const KernelArgs& a) { run_compare<LeFn>(a, "le"); }
void gt(const KernelArgs& a) { run_compare<GtFn>(a, "gt"); }
void ge(const KernelArgs& a) { run_compare<GeFn>(a, "ge"); }
void logical_and(const KernelArgs& a) { run_compare<LogicalAndFn>(a, "logical_and"); }
void logical_or(const KernelArgs& a) { run_compare<LogicalOrFn>(a, "logical_or"); }
void logical_xor(const KernelArgs& a) { run_compare<LogicalXorFn>(a, "logical_xor"); }

// in: (self, end, weight).
void lerp(const KernelArgs& args) {
  const Tensor& out = args.out[0];
  DeviceGuard guard(out.device());
  EMBER_CUDA_DISPATCH_FLOAT(args.attrs.dtype, "lerp", [&]<typename T>() {
    using O = cuda_opmath_t<T>;
    launch_elementwise<T, T, O, 3>(out, {&args.in[0], &args.in[1], &args.in[2]}, LerpFn<O>{});
  });
}

// in: (condition: bool, self, other). The condition loads as the compute type (0 or 1).
void where(const KernelArgs& args) {
  const Tensor& out = args.out[0];
  DeviceGuard guard(out.device());
  EMBER_CUDA_DISPATCH_ALL(args.attrs.dtype, "where", [&]<typename T>() {
    using O = cuda_opmath_t<T>;
    if constexpr (std::is_same_v<T, bool>) {
      launch_elementwise<T, T, int, 3>(out, {&args.in[0], &args.in[1], &args.in[2]}, WhereFn<int>{});
    } else {
      launch_elementwise<T, T, O, 3>(out, {&args.in[0], &args.in[1], &args.in[2]}, WhereFn<O>{});
    }
  });
}

}  // namespace ember::cuda
