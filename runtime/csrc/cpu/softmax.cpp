// CPU softmax / log_softmax along one dim. Numerically stable: exp(x - max) per row.
//   last-dim rows (stride 1, float/double): in place on the row, vectorized exp (fast_expf);
//   contiguous input, dim not last: tiles of the inner dims advance together (vectorizes across them);
//   anything else (strided rows, half types): rows are gathered into a float buffer first.
#include <cmath>
#include <vector>

#include "cpu/dim_lines.h"
#include "cpu/reduce_engine.h"
#include "cpu/vec_math.h"
#include "generated/kernels_reduce.h"

namespace ember::cpu {
namespace {

template <typename Acc> inline Acc exp_acc(Acc x) {
  if constexpr (std::is_same_v<Acc, float>) return fast_expf(x);
  else return std::exp(x);
}

template <typename Acc> inline Acc nan_max(Acc a, Acc x) { return (x > a || x != x) ? x : a; }

// y = softmax(x) (or log_softmax) of one contiguous row; y may alias x.
template <typename Acc, bool Log>
void softmax_row(const Acc* x, Acc* y, int64_t n) {
  constexpr int L = 16;
  Acc lanes[L];
  for (int j = 0; j < L; ++j) lanes[j] = -std::numeric_limits<Acc>::infinity();
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; ++j) lanes[j] = nan_max(lanes[j], x[i + j]);
  for (; i < n; ++i) lanes[0] = nan_max(lanes[0], x[i]);
  Acc mx = lanes[0];
  for (int j = 1; j < L; ++j) mx = nan_max(mx, lanes[j]);
  Acc sums[L] = {};
  i = 0;
  if constexpr (Log) {
    for (; i + L <= n; i += L)
      for (int j = 0; j < L; ++j) sums[j] += exp_acc(x[i + j] - mx);
    for (; i < n; ++i) sums[0] += exp_acc(x[i] - mx);
  } else {
    for (; i + L <= n; i += L)
      for (int j = 0; j < L; ++j) { Acc e = exp_acc(x[i + j] - mx); y[i + j] = e; sums[j] += e; }
    for (; i < n; ++i) { Acc e = exp_acc(x[i] - mx); y[i] = e; sums[0] += e; }
  }
  Acc sum = 0;
  for (int j = 0; j < L; ++j) sum += sums[j];
  if constexpr (Log) {
    const Acc log_sum = std::log(sum);  // (x - max) - log_sum: max + log_sum could round away log_sum
    for (int64_t k = 0; k < n; ++k) y[k] = (x[k] - mx) - log_sum;
  } else {
    const Acc inv = Acc(1) / sum;
    for (int64_t k = 0; k < n; ++k) y[k] *= inv;
  }
}

// The float32 row kernel with explicit vectors (the hot path of softmax over the last dim).
template <bool Log>
void softmax_row_f32(const float* x, float* y, int64_t n) {
  using V = vec_t<float>;
  constexpr int VL = kVecLen<float>;
  const V ninf = vsplat(-std::numeric_limits<float>::infinity());
  V m0 = ninf, m1 = ninf;
  int64_t i = 0;
  for (; i + 2 * VL <= n; i += 2 * VL) {
    m0 = vmax_nan(m0, vload(x + i));
    m1 = vmax_nan(m1, vload(x + i + VL));
  }
  for (; i + VL <= n; i += VL) m0 = vmax_nan(m0, vload(x + i));
  m0 = vmax_nan(m0, m1);
  float mx = vreduce(m0, [](auto a, auto b) { return vmax_nan(a, b); });
  for (; i < n; ++i) mx = nan_max(mx, x[i]);
  const V mxv = vsplat(mx);
  V s0 = {}, s1 = {};
  for (i = 0; i + 2 * VL <= n; i += 2 * VL) {
    V e0 = vexpf_nonpos(vload(x + i) - mxv), e1 = vexpf_nonpos(vload(x + i + VL) - mxv);
    if constexpr (!Log) { vstore(y + i, e0); vstore(y + i + VL, e1); }
    s0 += e0;
    s1 += e1;
  }
  for (; i + VL <= n; i += VL) {
    V e = vexpf_nonpos(vload(x + i) - mxv);
    if constexpr (!Log) vstore(y + i, e);
    s0 += e;
  }
  s0 += s1;
  float sum = vreduce(s0, [](auto a, auto b) { return a + b; });
  for (; i < n; ++i) {
    float e = fast_expf(x[i] - mx);
    if constexpr (!Log) y[i] = e;
    sum += e;
  }
  if constexpr (Log) {
    const float log_sum = std::log(sum);
    for (int64_t k = 0; k < n; ++k) y[k] = (x[k] - mx) - log_sum;
  } else {
    const float inv = 1.0f / sum;
    for (int64_t k = 0; k < n; ++k) y[k] *= inv;
  }
}

// Contiguous input, reduced dim of size n followed by `inner` contiguous elements.
template <typename T, bool Log>
void softmax_inner_tiles(const T* x, T* y, int64_t outer, int64_t n, int64_t inner) {
  constexpr int64_t W = 64;
  const int64_t tiles = (inner + W - 1) / W;
  parallel_for(0, outer * tiles, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(n * W, 1)), [&](int64_t lo, int64_t hi) {
    T mx[W], sum[W];
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t o = t / tiles, j0 = (t % tiles) * W, w = std::min(W, inner - j0);
      const T* xb = x + o * n * inner + j0;
      T* yb = y + o * n * inner + j0;
      for (int64_t j = 0; j < w; ++j) { mx[j] = -std::numeric_limits<T>::infinity(); sum[j] = 0; }
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < w; ++j) mx[j] = nan_max(mx[j], xb[i * inner + j]);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < w; ++j) {
          T e = exp_acc(xb[i * inner + j] - mx[j]);
          if constexpr (!Log) yb[i * inner + j] = e;
          sum[j] += e;
        }
      if constexpr (Log) {
        for (int64_t j = 0; j < w; ++j) sum[j] = std::log(sum[j]);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < w; ++j) yb[i * inner + j] = (xb[i * inner + j] - mx[j]) - sum[j];
      } else {
        for (int64_t j = 0; j < w; ++j) sum[j] = T(1) / sum[j];
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < w; ++j) yb[i * inner + j] *= sum[j];
      }
    }
  });
}

template <bool Log>
void softmax_kernel(const KernelArgs& a, int64_t dim, const char* name) {
  const Tensor& x = a.in[0];
  const Tensor& out = a.out[0];
  if (x.numel() == 0) return;
  const DimLines lines(x, dim, x.sizes());
  const int64_t n = lines.length, xs = lines.in_stride, os = lines.out_stride, rows = lines.count;
  int64_t inner = 1;
  for (int64_t d = lines.dim + 1; d < x.dim(); ++d) inner *= x.sizes()[d];
  dispatch_float(x.dtype(), name, [&]<typename T>() {
    using Acc = opmath_t<T>;
    constexpr bool kNative = std::is_same_v<T, Acc>;
    const T* xb = x.data<T>();
    T* ob = out.data<T>();
    if constexpr (kNative) {
      if (xs == 1 && inner == 1) {
        parallel_for(0, rows, std::max<int64_t>(1, kGrainSize / n), [&](int64_t lo, int64_t hi) {
          for (int64_t r = lo; r < hi; ++r) {
            const auto [xo, oo] = lines.offsets(r);
            if constexpr (std::is_same_v<T, float>) softmax_row_f32<Log>(xb + xo, ob + oo, n);
            else softmax_row<Acc, Log>(xb + xo, ob + oo, n);
          }
        });
        return;
      }
      if (x.is_contiguous() && inner > 1) {
        softmax_inner_tiles<T, Log>(xb, ob, rows / inner, n, inner);
        return;
      }
    }
    parallel_for(0, rows, std::max<int64_t>(1, kGrainSize / n), [&](int64_t lo, int64_t hi) {
      std::vector<Acc> buf(n);
      for (int64_t r = lo; r < hi; ++r) {
        const auto [xo, oo] = lines.offsets(r);
        for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<Acc>(xb[xo + i * xs]);
        if constexpr (std::is_same_v<Acc, float>) softmax_row_f32<Log>(buf.data(), buf.data(), n);
        else softmax_row<Acc, Log>(buf.data(), buf.data(), n);
        for (int64_t i = 0; i < n; ++i) ob[oo + i * os] = static_cast<T>(buf[i]);
      }
    });
  });
}

}  // namespace

void softmax(const KernelArgs& a, const DimAttrs& attrs) { softmax_kernel<false>(a, attrs.dim, "softmax"); }
void log_softmax(const KernelArgs& a, const DimAttrs& attrs) { softmax_kernel<true>(a, attrs.dim, "log_softmax"); }

}  // namespace ember::cpu

// ---- attention softmax: softmax(x * scale) over the last dim, optionally causal ------------------
// Note [Causal rows]: row r of a [..., L, S] input is query r % L; with top-left alignment (torch's
// is_causal) it sees keys 0..r%L, and the masked keys get exactly 0 without being read.
namespace ember::cpu {

void scaled_softmax(const KernelArgs& a, const ScaledSoftmaxAttrs& attrs) {
  const Tensor& x = a.in[0];  // contiguous (frontend)
  const Tensor& out = a.out[0];
  if (x.numel() == 0) return;
  const int64_t n = x.sizes()[x.dim() - 1], rows = x.numel() / n;
  const bool causal = attrs.causal;
  const int64_t L = causal ? x.sizes()[x.dim() - 2] : 1;
  const double scale = attrs.scale;
  dispatch_float(x.dtype(), "scaled_softmax", [&]<typename T>() {
    using Acc = opmath_t<T>;
    const T* xb = x.data<T>();
    T* ob = out.data<T>();
    parallel_for(0, rows, std::max<int64_t>(1, kGrainSize / n), [&](int64_t lo, int64_t hi) {
      std::vector<Acc> buf(n);
      const Acc s = static_cast<Acc>(scale);
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t valid = causal ? std::min(n, r % L + 1) : n;
        const T* xr = xb + r * n;
        T* yr = ob + r * n;
        for (int64_t i = 0; i < valid; ++i) buf[i] = static_cast<Acc>(xr[i]) * s;
        if constexpr (std::is_same_v<Acc, float>) softmax_row_f32<false>(buf.data(), buf.data(), valid);
        else softmax_row<Acc, false>(buf.data(), buf.data(), valid);
        for (int64_t i = 0; i < valid; ++i) yr[i] = static_cast<T>(buf[i]);
        for (int64_t i = valid; i < n; ++i) yr[i] = T(0);
      }
    });
  });
}

// grad_x = scale * y * (g - sum(g * y)) per row of the last dim; g and y contiguous (frontend).
void softmax_backward(const KernelArgs& a, const SoftmaxBackwardAttrs& attrs) {
  const Tensor& g = a.in[0];
  const Tensor& y = a.in[1];
  const Tensor& out = a.out[0];
  if (y.numel() == 0) return;
  const int64_t n = y.sizes()[y.dim() - 1], rows = y.numel() / n;
  const double scale = attrs.scale;
  dispatch_float(y.dtype(), "softmax_backward", [&]<typename T>() {
    using Acc = opmath_t<T>;
    const T* gb = g.data<T>();
    const T* yb = y.data<T>();
    T* ob = out.data<T>();
    const Acc s = static_cast<Acc>(scale);
    parallel_for(0, rows, std::max<int64_t>(1, kGrainSize / n), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* gr = gb + r * n;
        const T* yr = yb + r * n;
        Acc dot = 0;
        for (int64_t i = 0; i < n; ++i) dot += static_cast<Acc>(gr[i]) * static_cast<Acc>(yr[i]);
        for (int64_t i = 0; i < n; ++i)
          ob[r * n + i] = static_cast<T>(s * static_cast<Acc>(yr[i]) * (static_cast<Acc>(gr[i]) - dot));
      }
    });
  });
}

}  // namespace ember::cpu
