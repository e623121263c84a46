// CPU layer_norm / rms_norm and their backward kernels. Inputs are contiguous [rows, N] (the frontend
// guarantees it); rows run in parallel. rms_norm is layer_norm with the mean fixed at 0 and no bias
// (kRms below), so both share one forward and one backward. Row math happens in Acc (float for
// float/half types, double for double): float32/float64 rows are read in place, half types are
// converted into a per-thread Acc buffer.
// Reductions over a row use 16 independent lanes so the loops vectorize.
#include <cmath>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "generated/kernels_nn.h"

namespace ember::cpu {
namespace {

constexpr int kLanes = 16;

// sum over i in [0, n) of f(i), accumulated in kLanes independent lanes (vectorizable, deterministic).
template <typename Acc, typename F>
inline Acc lane_sum(int64_t n, const F& f) {
  Acc lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lanes[j] += f(i + j);
  for (; i < n; ++i) lanes[i % kLanes] += f(i);
  Acc s = 0;
  for (int j = 0; j < kLanes; ++j) s += lanes[j];
  return s;
}

// Calls fn.template operator()<T, W>() for input dtype T and parameter dtype W (W == T, or float
// parameters with a float16/bfloat16 input, as torch's mixed-dtype layer_norm).
template <typename F>
void dispatch_norm_types(ScalarType t, ScalarType w, const char* op, F&& body) {
  EMBER_DISPATCH_FLOAT(t, op, ([&]<typename T>() {
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      if (w == ScalarType::Float32) return body.template operator()<T, float>();
    }
    return body.template operator()<T, T>();
  }));
}

// Parameter vector as Acc (ones / zeros when absent), so the row loops have no branches.
template <typename Acc, typename W>
std::vector<Acc> param_as_acc(const Tensor& p, int64_t n, Acc fill) {
  std::vector<Acc> v(n, fill);
  if (p.defined()) {
    const W* d = p.data<W>();
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<Acc>(d[i]);
  }
  return v;
}

// Row pointer as Acc: the row itself when T is Acc, else converted into buf.
template <typename T, typename Acc>
inline const Acc* row_as_acc(const T* row, int64_t n, std::vector<Acc>& buf) {
  if constexpr (std::is_same_v<T, Acc>) {
    return row;
  } else {
    for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<Acc>(row[i]);
    return buf.data();
  }
}

// Forward of one op on [rows, N]: mean (kRms: none, the mean is 0) and rstd per row, then
// y = (x - mean) * rstd * weight + bias.
template <bool kRms>
void norm_forward(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y, Tensor* mean_t,
                  Tensor& rstd_t, int64_t n, double eps_d) {
  const int64_t rows = rstd_t.numel();
  const ScalarType pt = weight.defined() ? weight.dtype() : bias.defined() ? bias.dtype() : x.dtype();
  dispatch_norm_types(x.dtype(), pt, op, [&]<typename T, typename W>() {
    using Acc = opmath_t<T>;
    Acc* mean = kRms ? nullptr : mean_t->data<Acc>();
    Acc* rstd = rstd_t.data<Acc>();
    if (n == 0) {  // torch: mean 0, rstd NaN (1 / sqrt(0 / 0))
      for (int64_t r = 0; r < rows; ++r) {
        if (mean) mean[r] = 0;
        rstd[r] = std::numeric_limits<Acc>::quiet_NaN();
      }
      return;
    }
    const std::vector<Acc> w = param_as_acc<Acc, W>(weight, n, Acc(1));
    const std::vector<Acc> b = param_as_acc<Acc, W>(bias, n, Acc(0));
    const Acc eps = static_cast<Acc>(eps_d);
    const T* xb = x.data<T>();
    T* yb = y.data<T>();
    parallel_for(0, rows, std::max<int64_t>(1, kGrainSize / n), [&](int64_t lo, int64_t hi) {
      std::vector<Acc> buf(std::is_same_v<T, Acc> ? 0 : n);
      const Acc* wp = w.data();
      const Acc* bp = b.data();
      for (int64_t r = lo; r < hi; ++r) {
        const Acc* xr = row_as_acc<T, Acc>(xb + r * n, n, buf);
        T* yr = yb + r * n;
        if constexpr (kRms) {
          const Acc ms = lane_sum<Acc>(n, [&](int64_t i) { return xr[i] * xr[i]; }) / static_cast<Acc>(n);
          const Acc rs = Acc(1) / std::sqrt(ms + eps);
          rstd[r] = rs;
          for (int64_t i = 0; i < n; ++i) yr[i] = static_cast<T>(xr[i] * rs * wp[i]);
        } else {
          // Two passes (mean, then the mean of squared deviations): exact centring, no cancellation.
          const Acc mu = lane_sum<Acc>(n, [&](int64_t i) { return xr[i]; }) / static_cast<Acc>(n);
          const Acc var =
              lane_sum<Acc>(n, [&](int64_t i) { Acc d = xr[i] - mu; return d * d; }) / static_cast<Acc>(n);
          const Acc rs = Acc(1) / std::sqrt(var + eps);
          mean[r] = mu;
          rstd[r] = rs;
          for (int64_t i = 0; i < n; ++i) yr[i] = static_cast<T>((xr[i] - mu) * rs * wp[i] + bp[i]);
        }
      }
    });
  });
}

// Backward of one op: grad [rows, N], x [rows, N], mean (kRms: none) and rstd [rows], weight? [N];
// writes grad_input / grad_weight / grad_bias where given (Note [layer_norm backward] and
// Note [rms_norm backward], ops/norm.cpp).
template <bool kRms>
void norm_backward(const char* op, const Tensor& grad, const Tensor& x, const Tensor* mean_t, const Tensor& rstd_t,
                   const Tensor& weight, Tensor* grad_input, Tensor* grad_weight, Tensor* grad_bias, int64_t n) {
  const int64_t rows = rstd_t.numel();
  const bool need_input = grad_input != nullptr, need_weight = grad_weight != nullptr, need_bias = grad_bias != nullptr;
  const ScalarType pt = weight.defined() ? weight.dtype() : need_weight ? grad_weight->dtype()
                        : need_bias ? grad_bias->dtype() : x.dtype();
  dispatch_norm_types(x.dtype(), pt, op, [&]<typename T, typename W>() {
    using Acc = opmath_t<T>;
    constexpr bool kNative = std::is_same_v<T, Acc>;
    const Acc* mean = kRms ? nullptr : mean_t->data<Acc>();
    const Acc* rstd = rstd_t.data<Acc>();
    const std::vector<Acc> w = param_as_acc<Acc, W>(weight, n, Acc(1));
    const T* gb = grad.data<T>();
    const T* xb = x.data<T>();
    T* gxb = need_input ? grad_input->data<T>() : nullptr;
    const Acc inv_n = n > 0 ? Acc(1) / static_cast<Acc>(n) : Acc(0);
    auto mean_of = [&](int64_t r) { if constexpr (kRms) return Acc(0); else return mean[r]; };

    // grad_input of one row; xr/gr are the row as Acc.
    auto input_row = [&](int64_t r, const Acc* xr, const Acc* gr) {
      const Acc mu = mean_of(r), rs = rstd[r];
      const Acc* wp = w.data();
      const Acc s1 = kRms ? Acc(0) : lane_sum<Acc>(n, [&](int64_t i) { return gr[i] * wp[i]; });
      const Acc s2 = lane_sum<Acc>(n, [&](int64_t i) { return gr[i] * wp[i] * ((xr[i] - mu) * rs); });
      const Acc c1 = s1 * inv_n, c2 = s2 * inv_n;
      T* out = gxb + r * n;
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(rs * (gr[i] * wp[i] - c1 - (xr[i] - mu) * rs * c2));
    };

    if (!need_weight && !need_bias) {
      if (!need_input || n == 0) return;
      parallel_for(0, rows, std::max<int64_t>(1, kGrainSize / n), [&](int64_t lo, int64_t hi) {
        std::vector<Acc> xbuf(kNative ? 0 : n), gbuf(kNative ? 0 : n);
        for (int64_t r = lo; r < hi; ++r)
          input_row(r, row_as_acc<T, Acc>(xb + r * n, n, xbuf), row_as_acc<T, Acc>(gb + r * n, n, gbuf));
      });
      return;
    }

    // Note [Deterministic parameter gradients]: rows are split into a fixed number of blocks that
    // depends only on the shape (not on the thread count); each block sums its rows into its own
    // partial buffer, then the partials are added in block order. Same result on every run.
    const int64_t max_blocks = std::max<int64_t>(1, std::min<int64_t>(64, (int64_t{1} << 22) / std::max<int64_t>(n, 1)));
    const int64_t nblocks = std::max<int64_t>(1, std::min(rows, max_blocks));
    const int64_t rows_per_block = (rows + nblocks - 1) / nblocks;
    std::vector<Acc> pw(need_weight ? nblocks * n : 0, Acc(0)), pb(need_bias ? nblocks * n : 0, Acc(0));
    const int64_t block_grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(rows_per_block * n, 1));
    parallel_for(0, nblocks, block_grain, [&](int64_t lo, int64_t hi) {
      std::vector<Acc> xbuf(kNative ? 0 : n), gbuf(kNative ? 0 : n);
      for (int64_t blk = lo; blk < hi; ++blk) {
        Acc* bw = need_weight ? pw.data() + blk * n : nullptr;
        Acc* bb = need_bias ? pb.data() + blk * n : nullptr;
        const int64_t r_end = std::min(rows, (blk + 1) * rows_per_block);
        for (int64_t r = blk * rows_per_block; r < r_end; ++r) {
          const Acc* xr = row_as_acc<T, Acc>(xb + r * n, n, xbuf);
          const Acc* gr = row_as_acc<T, Acc>(gb + r * n, n, gbuf);
          const Acc mu = mean_of(r), rs = rstd[r];
          if (bw)
            for (int64_t i = 0; i < n; ++i) bw[i] += gr[i] * ((xr[i] - mu) * rs);
          if (bb)
            for (int64_t i = 0; i < n; ++i) bb[i] += gr[i];
          if (need_input) input_row(r, xr, gr);
        }
      }
    });
    W* gw = need_weight ? grad_weight->data<W>() : nullptr;
    W* gbias = need_bias ? grad_bias->data<W>() : nullptr;
    parallel_for(0, n, std::max<int64_t>(1, kGrainSize / nblocks), [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        Acc sw = 0, sb = 0;
        for (int64_t blk = 0; blk < nblocks; ++blk) {
          if (gw) sw += pw[blk * n + i];
          if (gbias) sb += pb[blk * n + i];
        }
        if (gw) gw[i] = static_cast<W>(sw);
        if (gbias) gbias[i] = static_cast<W>(sb);
      }
    });
  });
}

}  // namespace

// in: x [rows, N], weight? [N], bias? [N]; out: y [rows, N], mean [rows], rstd [rows].
void layer_norm(const KernelArgs& a, const LayerNormAttrs& attrs) {
  norm_forward<false>("layer_norm", a.in[0], a.in[1], a.in[2], a.out[0], &a.out[1], a.out[2], attrs.n, attrs.eps);
}

// in: grad [rows, N], x [rows, N], mean [rows], rstd [rows], weight? [N];
// out: grad_input [rows, N], grad_weight [N], grad_bias [N], each computed when attrs.need_* says so.
void layer_norm_backward(const KernelArgs& a, const LayerNormBackwardAttrs& attrs) {
  norm_backward<false>("layer_norm_backward", a.in[0], a.in[1], &a.in[2], a.in[3], a.in[4],
                       attrs.need_input ? &a.out[0] : nullptr, attrs.need_weight ? &a.out[1] : nullptr,
                       attrs.need_bias ? &a.out[2] : nullptr, attrs.n);
}

// in: x [rows, N], weight? [N]; out: y [rows, N], rstd [rows].
void rms_norm(const KernelArgs& a, const RmsNormAttrs& attrs) {
  norm_forward<true>("rms_norm", a.in[0], a.in[1], Tensor(), a.out[0], nullptr, a.out[1], attrs.n, attrs.eps);
}

// in: grad [rows, N], x [rows, N], rstd [rows], weight? [N]; out: grad_input [rows, N], grad_weight [N],
// each computed when attrs.need_* says so.
void rms_norm_backward(const KernelArgs& a, const RmsNormBackwardAttrs& attrs) {
  norm_backward<true>("rms_norm_backward", a.in[0], a.in[1], nullptr, a.in[2], a.in[3],
                      attrs.need_input ? &a.out[0] : nullptr, attrs.need_weight ? &a.out[1] : nullptr, nullptr,
                      attrs.n);
}

}  // namespace ember::cpu
