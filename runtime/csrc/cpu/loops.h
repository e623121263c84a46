#pragma once
// Note [Elementwise loops]
// The CPU elementwise iterator. An op with one output and N-1 inputs becomes a LoopGeometry:
// every input's strides are broadcast to the output's shape (stride 0 on broadcast dims), size-1
// dims are dropped and adjacent dims that are contiguous in every operand are coalesced, so a
// contiguous op of any rank becomes one flat loop. The innermost loop then picks a fast path:
//   * everything dense: a plain pointer loop under `#pragma omp simd` (the compiler vectorizes it),
//   * one input is a scalar (stride 0): the value is hoisted out of the loop,
//   * otherwise a generic strided loop.
// Ranges above kGrainSize elements are split over threads with parallel_for. Nothing in here
// allocates or throws: callers validate (and convert dtypes) before running a loop.
// Values are loaded as opmath_t (Half/BFloat16 compute in float) and stored back converted.
#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>

#include "core/error.h"
#include "core/parallel.h"
#include "core/tensor.h"

namespace ember::cpu {

constexpr int kMaxLoopDims = 16;

// Row lambdas inline the op functor (and what it calls) unconditionally: in TUs with hundreds of
// instantiations GCC's inliner budget runs out, and a call left in an `omp simd` loop blocks
// vectorization (exp ran 10x slower that way).
#define EMBER_LOOP_FLATTEN __attribute__((flatten))

// Converts one value between stored types (bool tests != 0; half types go through float).
template <typename To, typename From>
inline To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<To, bool>) {
    return static_cast<opmath_t<From>>(v) != static_cast<opmath_t<From>>(0);
  } else if constexpr (std::is_same_v<To, Half> || std::is_same_v<To, BFloat16>) {
    return To(static_cast<float>(static_cast<opmath_t<From>>(v)));
  } else {
    return static_cast<To>(static_cast<opmath_t<From>>(v));
  }
}

template <int N>  // N operands: the output first, then the inputs
struct LoopGeometry {
  int ndim = 0;                       // after coalescing; 0 means a single element
  int64_t numel = 0;
  int64_t sizes[kMaxLoopDims];        // outermost first
  int64_t strides[N][kMaxLoopDims];   // in bytes
  char* data[N];
};

// Builds the coalesced geometry of `out` and `ins` (each broadcastable to out's shape; the caller
// checked). Fails (before any loop runs) only for tensors of more than kMaxLoopDims non-trivial dims.
template <int N>
LoopGeometry<N> make_geometry(const Tensor& out, const std::array<const Tensor*, N - 1>& ins) {
  LoopGeometry<N> g;
  const int64_t nd = out.dim();
  g.numel = out.numel();
  g.data[0] = static_cast<char*>(out.data_ptr());
  for (int k = 1; k < N; ++k) g.data[k] = static_cast<char*>(ins[k - 1]->data_ptr());
  const auto& osz = out.sizes();
  int ndim = 0;
  // Walk dims outermost -> innermost, skipping size-1 dims; merge into the previous kept dim when
  // that one is contiguous over this one in every operand.
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t size = osz[d];
    if (size == 1) continue;
    int64_t st[N];
    st[0] = out.strides()[d] * out.element_size();
    for (int k = 1; k < N; ++k) {
      const Tensor& t = *ins[k - 1];
      const int64_t off = nd - t.dim();
      const int64_t td = d - off;
      st[k] = (td < 0 || t.sizes()[td] == 1) ? 0 : t.strides()[td] * t.element_size();
    }
    if (ndim > 0) {
      bool mergeable = true;
      for (int k = 0; k < N; ++k)
        if (g.strides[k][ndim - 1] != st[k] * size) { mergeable = false; break; }
      if (mergeable) {
        g.sizes[ndim - 1] *= size;
        for (int k = 0; k < N; ++k) g.strides[k][ndim - 1] = st[k];
        continue;
      }
    }
    EMBER_CHECK(ndim < kMaxLoopDims, "[elementwise] tensors with more than ", kMaxLoopDims,
                " non-collapsible dimensions are not supported (", describe(out), ")");
    g.sizes[ndim] = size;
    for (int k = 0; k < N; ++k) g.strides[k][ndim] = st[k];
    ++ndim;
  }
  g.ndim = ndim;
  return g;
}

// Runs inner(ptrs, strides, n) over the rows that cover linear output indices [lo, hi).
template <int N, typename Inner>
void run_range(const LoopGeometry<N>& g, int64_t lo, int64_t hi, const Inner& inner) {
  char* ptrs[N];
  int64_t inner_strides[N];
  if (g.ndim <= 1) {
    for (int k = 0; k < N; ++k) {
      inner_strides[k] = g.ndim == 0 ? 0 : g.strides[k][0];
      ptrs[k] = g.data[k] + lo * inner_strides[k];
    }
    inner(ptrs, inner_strides, hi - lo);
    return;
  }
  const int last = g.ndim - 1;
  for (int k = 0; k < N; ++k) inner_strides[k] = g.strides[k][last];
  int64_t idx[kMaxLoopDims];
  int64_t rem = lo;
  for (int d = last; d >= 0; --d) { idx[d] = rem % g.sizes[d]; rem /= g.sizes[d]; }
  int64_t pos = lo;
  while (pos < hi) {
    for (int k = 0; k < N; ++k) {
      char* p = g.data[k];
      for (int d = 0; d <= last; ++d) p += idx[d] * g.strides[k][d];
      ptrs[k] = p;
    }
    const int64_t n = std::min(g.sizes[last] - idx[last], hi - pos);
    inner(ptrs, inner_strides, n);
    pos += n;
    idx[last] += n;
    for (int d = last; d > 0 && idx[d] == g.sizes[d]; --d) { idx[d] = 0; ++idx[d - 1]; }
  }
}

// Runs the geometry, in parallel when large.
template <int N, typename Inner>
void for_each_row(const LoopGeometry<N>& g, const Inner& inner) {
  if (g.numel == 0) return;
  if (g.numel > kGrainSize) {
    parallel_for(0, g.numel, kGrainSize, [&](int64_t lo, int64_t hi) { run_range(g, lo, hi, inner); });
  } else {
    run_range(g, 0, g.numel, inner);
  }
}

// ---- typed loops ------------------------------------------------------------------------------
// f receives opmath_t values and returns a value convertible to opmath_t<Out> (or Out itself).

template <typename Out, typename A, typename F>
void unary_loop(const Tensor& out, const Tensor& a, const F& f) {
  auto g = make_geometry<2>(out, {&a});
  using OA = opmath_t<A>;
  for_each_row(g, [&](char** p, const int64_t* s, int64_t n) EMBER_LOOP_FLATTEN {
    Out* o = reinterpret_cast<Out*>(p[0]);
    const A* x = reinterpret_cast<const A*>(p[1]);
    if (s[0] == sizeof(Out) && s[1] == sizeof(A)) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(f(static_cast<OA>(x[i])));
    } else if (s[1] == 0) {
      const Out v = static_cast<Out>(f(static_cast<OA>(*x)));
      for (int64_t i = 0; i < n; ++i) *reinterpret_cast<Out*>(p[0] + i * s[0]) = v;
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<Out*>(p[0] + i * s[0]) =
            static_cast<Out>(f(static_cast<OA>(*reinterpret_cast<const A*>(p[1] + i * s[1]))));
    }
  });
}

template <typename Out, typename A, typename B, typename F>
void binary_loop(const Tensor& out, const Tensor& a, const Tensor& b, const F& f) {
  auto g = make_geometry<3>(out, {&a, &b});
  using OA = opmath_t<A>;
  using OB = opmath_t<B>;
  for_each_row(g, [&](char** p, const int64_t* s, int64_t n) EMBER_LOOP_FLATTEN {
    Out* o = reinterpret_cast<Out*>(p[0]);
    const A* x = reinterpret_cast<const A*>(p[1]);
    const B* y = reinterpret_cast<const B*>(p[2]);
    if (s[0] == sizeof(Out)) {
      if (s[1] == sizeof(A) && s[2] == sizeof(B)) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(f(static_cast<OA>(x[i]), static_cast<OB>(y[i])));
        return;
      }
      if (s[1] == sizeof(A) && s[2] == 0) {
        const OB yv = static_cast<OB>(*y);
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(f(static_cast<OA>(x[i]), yv));
        return;
      }
      if (s[1] == 0 && s[2] == sizeof(B)) {
        const OA xv = static_cast<OA>(*x);
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(f(xv, static_cast<OB>(y[i])));
        return;
      }
    }
    for (int64_t i = 0; i < n; ++i)
      *reinterpret_cast<Out*>(p[0] + i * s[0]) =
          static_cast<Out>(f(static_cast<OA>(*reinterpret_cast<const A*>(p[1] + i * s[1])),
                             static_cast<OB>(*reinterpret_cast<const B*>(p[2] + i * s[2]))));
  });
}

template <typename Out, typename A, typename B, typename C, typename F>
void ternary_loop(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& c, const F& f) {
  auto g = make_geometry<4>(out, {&a, &b, &c});
  using OA = opmath_t<A>;
  using OB = opmath_t<B>;
  using OC = opmath_t<C>;
  for_each_row(g, [&](char** p, const int64_t* s, int64_t n) EMBER_LOOP_FLATTEN {
    if (s[0] == sizeof(Out) && s[1] == sizeof(A) && s[2] == sizeof(B) && s[3] == sizeof(C)) {
      Out* o = reinterpret_cast<Out*>(p[0]);
      const A* x = reinterpret_cast<const A*>(p[1]);
      const B* y = reinterpret_cast<const B*>(p[2]);
      const C* z = reinterpret_cast<const C*>(p[3]);
#pragma omp simd
      for (int64_t i = 0; i < n; ++i)
        o[i] = static_cast<Out>(f(static_cast<OA>(x[i]), static_cast<OB>(y[i]), static_cast<OC>(z[i])));
      return;
    }
    for (int64_t i = 0; i < n; ++i)
      *reinterpret_cast<Out*>(p[0] + i * s[0]) =
          static_cast<Out>(f(static_cast<OA>(*reinterpret_cast<const A*>(p[1] + i * s[1])),
                             static_cast<OB>(*reinterpret_cast<const B*>(p[2] + i * s[2])),
                             static_cast<OC>(*reinterpret_cast<const C*>(p[3] + i * s[3]))));
  });
}

// Output-only loop (fill).
template <typename Out>
void fill_loop(const Tensor& out, Out value) {
  auto g = make_geometry<1>(out, {});
  for_each_row(g, [&](char** p, const int64_t* s, int64_t n) EMBER_LOOP_FLATTEN {
    if (s[0] == sizeof(Out)) {
      Out* o = reinterpret_cast<Out*>(p[0]);
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) o[i] = value;
    } else {
      for (int64_t i = 0; i < n; ++i) *reinterpret_cast<Out*>(p[0] + i * s[0]) = value;
    }
  });
}

// dst <- src (src broadcast to dst's shape, converted to dst's dtype); defined in elementwise_copy.cpp.
// Other CPU kernels use it to bring inputs to their compute dtype.
void copy_into(const Tensor& dst, const Tensor& src);
// `t` itself when it already has `dtype`, else a converted contiguous copy (CPU, no autograd).
Tensor as_dtype(const Tensor& t, ScalarType dtype);

}  // namespace ember::cpu
