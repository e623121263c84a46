// CPU kernels of the scans (cumprod and its backward, cummax/cummin, logcumsumexp) and of
// searchsorted. Scans walk one line along the dim at a time (DimLines: strided input, contiguous
// output), accumulating floats in double and integers in int64, as torch's CPU kernels do.
#include <cmath>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "cpu/dim_lines.h"
#include "cpu/reduce_engine.h"
#include "generated/kernels_scan.h"

namespace ember::cpu {
namespace {

template <typename T> constexpr bool kIsFloat = std::is_floating_point_v<opmath_t<T>>;

// Runs fn(in_offset, out_offset) for every line of x along dim, in parallel over lines.
template <typename F>
void for_each_line(const DimLines& lines, const F& fn) {
  parallel_for(0, lines.count, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(lines.length, 1)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t l = lo; l < hi; ++l) {
                   const auto [xo, oo] = lines.offsets(l);
                   fn(xo, oo);
                 }
               });
}

template <typename T>
T store_as(double v) { return static_cast<T>(static_cast<opmath_t<T>>(v)); }

}  // namespace

void cumprod(const KernelArgs& a, const CumprodAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& out = a.out[0];
  if (x.numel() == 0) return;
  const DimLines lines(x, attrs.dim, x.sizes());
  const int64_t n = lines.length, xs = lines.in_stride, os = lines.out_stride;
  auto run = [&]<typename T, typename O>() {
    using Acc = std::conditional_t<kIsFloat<O>, double, int64_t>;
    const T* xb = x.data<T>();
    O* ob = out.data<O>();
    for_each_line(lines, [&](int64_t xo, int64_t oo) {
      Acc acc = 1;
      for (int64_t i = 0; i < n; ++i) {
        acc *= load_as<T, Acc>(xb + xo + i * xs);
        ob[oo + i * os] = static_cast<O>(static_cast<opmath_t<O>>(acc));
      }
    });
  };
  if (x.dtype() == out.dtype()) {
    dispatch_numeric(x.dtype(), "cumprod", [&]<typename T>() { run.template operator()<T, T>(); });
  } else {
    dispatch_integral(x.dtype(), "cumprod", [&]<typename T>() { run.template operator()<T, int64_t>(); });
  }
}

// Note [cumprod backward] (ops/scan.cpp): out_k = (prod_{i<k} x_i) * r_k, r_k = g_k + x_{k+1} r_{k+1}.
// The first pass stores the exclusive prefix products in out, the second runs r from the end.
void cumprod_backward(const KernelArgs& a, const CumprodBackwardAttrs& attrs) {
  const Tensor &g = a.in[0], &x = a.in[1];
  const Tensor& out = a.out[0];
  if (x.numel() == 0) return;
  const DimLines xl(x, attrs.dim, x.sizes()), gl(g, attrs.dim, g.sizes());
  const int64_t n = xl.length, xs = xl.in_stride, gs = gl.in_stride, os = xl.out_stride;
  dispatch_float(x.dtype(), "cumprod_backward", [&]<typename T>() {
    const T* xb = x.data<T>();
    const T* gb = g.data<T>();
    T* ob = out.data<T>();
    parallel_for(0, xl.count, std::max<int64_t>(1, kGrainSize / n), [&](int64_t lo, int64_t hi) {
      std::vector<double> prefix(n);
      for (int64_t l = lo; l < hi; ++l) {
        const auto [xo, oo] = xl.offsets(l);
        const int64_t go = gl.offsets(l).in;
        double p = 1;
        for (int64_t i = 0; i < n; ++i) {
          prefix[i] = p;
          p *= load_as<T, double>(xb + xo + i * xs);
        }
        double r = 0;
        for (int64_t k = n - 1; k >= 0; --k) {
          r = load_as<T, double>(gb + go + k * gs) + (k + 1 < n ? load_as<T, double>(xb + xo + (k + 1) * xs) * r : 0.0);
          ob[oo + k * os] = store_as<T>(prefix[k] * r);
        }
      }
    });
  });
}

namespace {
// torch's cummax/cummin: ties and NaNs move the index forward (>= / <=); a NaN sticks once seen.
template <bool IsMax>
void cum_extremum(const KernelArgs& a, int64_t dim, const char* name) {
  const Tensor& x = a.in[0];
  const Tensor &values = a.out[0], &indices = a.out[1];
  if (x.numel() == 0) return;
  const DimLines lines(x, dim, x.sizes());
  const int64_t n = lines.length, xs = lines.in_stride, os = lines.out_stride;
  dispatch_all(x.dtype(), name, [&]<typename T>() {
    using O = opmath_t<T>;
    const T* xb = x.data<T>();
    T* vb = values.data<T>();
    int64_t* ib = indices.data<int64_t>();
    for_each_line(lines, [&](int64_t xo, int64_t oo) {
      O best = load_as<T, O>(xb + xo);
      int64_t idx = 0;
      for (int64_t i = 0; i < n; ++i) {
        const O v = load_as<T, O>(xb + xo + i * xs);
        const bool take = IsMax ? v >= best : v <= best;
        if (v != v || (best == best && take)) { best = v; idx = i; }
        vb[oo + i * os] = static_cast<T>(best);
        ib[oo + i * os] = idx;
      }
    });
  });
}
}  // namespace

void cummax(const KernelArgs& a, const CummaxAttrs& attrs) { cum_extremum<true>(a, attrs.dim, "cummax"); }
void cummin(const KernelArgs& a, const CumminAttrs& attrs) { cum_extremum<false>(a, attrs.dim, "cummin"); }

// log(exp(acc) + exp(v)) one element at a time; equal infinities stay themselves, NaN propagates.
void logcumsumexp(const KernelArgs& a, const LogcumsumexpAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& out = a.out[0];
  if (x.numel() == 0) return;
  const DimLines lines(x, attrs.dim, x.sizes());
  const int64_t n = lines.length, xs = lines.in_stride, os = lines.out_stride;
  dispatch_float(x.dtype(), "logcumsumexp", [&]<typename T>() {
    const T* xb = x.data<T>();
    T* ob = out.data<T>();
    for_each_line(lines, [&](int64_t xo, int64_t oo) {
      double acc = -std::numeric_limits<double>::infinity();
      for (int64_t i = 0; i < n; ++i) {
        const double v = load_as<T, double>(xb + xo + i * xs);
        const double lo = std::isnan(v) ? v : std::min(acc, v), hi = std::isnan(v) ? v : std::max(acc, v);
        if (lo != hi || std::isfinite(lo)) acc = hi + std::log1p(std::exp(lo - hi));
        ob[oo + i * os] = store_as<T>(acc);
      }
    });
  });
}

// ---- searchsorted ---------------------------------------------------------------------------------
// in: sorted rows (contiguous; one row, or one per row of values), values (contiguous), optional
// sorter (int64, the rows' sorting permutation). torch's comparisons: left finds the first element
// not < v, right the first element > v (NaNs sort last and are never < or <= v).
void searchsorted(const KernelArgs& a, const SearchsortedAttrs& attrs) {
  const Tensor &seq = a.in[0], &values = a.in[1];
  const Tensor& out = a.out[0];
  const int64_t* sorter = a.in.size() > 2 ? a.in[2].data<int64_t>() : nullptr;
  const int64_t n = seq.sizes()[seq.dim() - 1];
  const int64_t row_len = values.dim() == 0 ? 1 : values.sizes()[values.dim() - 1];
  const bool per_row = seq.dim() > 1;
  const bool right = attrs.right;
  const bool int32_out = out.dtype() == ScalarType::Int32;
  dispatch_numeric(seq.dtype(), "searchsorted", [&]<typename T>() {
    using O = opmath_t<T>;
    const T* sb = seq.data<T>();
    const T* vb = values.data<T>();
    parallel_for(0, values.numel(), kGrainSize, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const int64_t base = per_row ? (i / row_len) * n : 0;
        const O v = static_cast<O>(vb[i]);
        int64_t start = 0, end = n;
        while (start < end) {
          const int64_t mid = start + ((end - start) >> 1);
          const O m = static_cast<O>(sb[base + (sorter ? sorter[base + mid] : mid)]);
          if (right ? !(m > v) : !(m >= v)) start = mid + 1;
          else end = mid;
        }
        if (int32_out) out.data<int32_t>()[i] = static_cast<int32_t>(start);
        else out.data<int64_t>()[i] = start;
      }
    });
  });
}

}  // namespace ember::cpu
