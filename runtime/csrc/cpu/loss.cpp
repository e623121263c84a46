// CPU kernels of the fused softmax cross-entropy (Note [Fused cross-entropy], ops/loss.cpp).
// Rows run in parallel; float32 rows use the explicit-vector max / exp of cpu/softmax.cpp, half types
// are widened into a per-thread float buffer, float64 stays scalar double. The 'sum'/'mean'
// reduction adds the per-row losses serially in double, so the result does not depend on threads.
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/reduce_engine.h"
#include "cpu/vec_math.h"
#include "generated/kernels_nn.h"
#include "ops/loss.h"

namespace ember::cpu {
namespace {

template <typename Acc> struct RowStats {
  Acc max;      // NaN when the row holds a NaN
  Acc log_sum;  // log(sum(exp(x - max)))
  Acc sum;      // sum(x), only when asked for (label smoothing)
};

template <typename Acc> inline Acc nan_max(Acc a, Acc x) { return (x > a || x != x) ? x : a; }

RowStats<float> row_stats(const float* x, int64_t n, bool want_sum) {
  using V = vec_t<float>;
  constexpr int VL = kVecLen<float>;
  V mv = vsplat(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + VL <= n; i += VL) mv = vmax_nan(mv, vload(x + i));
  float mx = vreduce(mv, [](auto a, auto b) { return vmax_nan(a, b); });
  for (; i < n; ++i) mx = nan_max(mx, x[i]);
  const V mxv = vsplat(mx);
  V se = {}, sx = {};
  for (i = 0; i + VL <= n; i += VL) {
    const V v = vload(x + i);
    se += vexpf_nonpos(v - mxv);
    if (want_sum) sx += v;
  }
  auto add = [](auto a, auto b) { return a + b; };
  float sum_exp = vreduce(se, add), sum_x = vreduce(sx, add);
  for (; i < n; ++i) {
    sum_exp += fast_expf(x[i] - mx);
    sum_x += x[i];
  }
  return {mx, std::log(sum_exp), sum_x};
}

RowStats<double> row_stats(const double* x, int64_t n, bool want_sum) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = nan_max(mx, x[i]);
  double sum_exp = 0, sum_x = 0;
  for (int64_t i = 0; i < n; ++i) sum_exp += std::exp(x[i] - mx);
  if (want_sum)
    for (int64_t i = 0; i < n; ++i) sum_x += x[i];
  return {mx, std::log(sum_exp), sum_x};
}

// g * (exp(x - lse) - off) over a row; the target column is corrected by the caller.
void row_grad(const float* x, float* y, int64_t n, float lse, float g, float off) {
  using V = vec_t<float>;
  constexpr int VL = kVecLen<float>;
  const V lv = vsplat(lse), gv = vsplat(g), ov = vsplat(off);
  int64_t i = 0;
  for (; i + VL <= n; i += VL) vstore(y + i, gv * (vexpf_nonpos(vload(x + i) - lv) - ov));
  for (; i < n; ++i) y[i] = g * (fast_expf(x[i] - lse) - off);
}

void row_grad(const double* x, double* y, int64_t n, double lse, double g, double off) {
  for (int64_t i = 0; i < n; ++i) y[i] = g * (std::exp(x[i] - lse) - off);
}

bool is_counted(int64_t t, int64_t c, int64_t ignore_index) { return t != ignore_index && t >= 0 && t < c; }

// Serial pre-pass (errors must not be thrown inside parallel_for). The message matches the composite
// nll_loss path that cross_entropy used before (torch also reports it from nll_loss).
void check_targets(const int64_t* t, int64_t n, int64_t c, int64_t ignore_index) {
  for (int64_t i = 0; i < n; ++i)
    EMBER_CHECK_INDEX(t[i] == ignore_index || (t[i] >= 0 && t[i] < c), "[nll_loss] target ", t[i],
                      " is out of bounds for ", c, " classes");
}

// Rows per task: enough work per chunk to amortize a thread wake-up.
int64_t row_grain(int64_t c) { return std::max<int64_t>(1, kGrainSize / std::max<int64_t>(c, 1)); }

}  // namespace

void cross_entropy_loss(const KernelArgs& a, const CrossEntropyAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& target = a.in[1];
  const int64_t n = x.sizes()[0], c = x.sizes()[1];
  const int64_t ignore_index = attrs.ignore_index;
  const double ls = attrs.label_smoothing;
  const auto reduction = static_cast<LossReduction>(attrs.reduction);
  const int64_t* tgt = target.data<int64_t>();
  check_targets(tgt, n, c, ignore_index);
  std::vector<double> row_loss(reduction == LossReduction::None ? 0 : n);
  dispatch_float(x.dtype(), "cross_entropy_loss", [&]<typename T>() {
    using Acc = opmath_t<T>;
    const T* xb = x.data<T>();
    T* loss = a.out[0].data<T>();
    Acc* lse = a.out[1].data<Acc>();
    const Acc smooth = static_cast<Acc>(ls), keep = static_cast<Acc>(1.0 - ls);
    parallel_for(0, n, row_grain(c), [&](int64_t lo, int64_t hi) {
      std::vector<Acc> buf(std::is_same_v<T, Acc> ? 0 : c);
      for (int64_t r = lo; r < hi; ++r) {
        Acc l = 0;
        if (tgt[r] == ignore_index) {
          lse[r] = 0;
        } else {
          const Acc* row;
          if constexpr (std::is_same_v<T, Acc>) {
            row = xb + r * c;
          } else {
            for (int64_t i = 0; i < c; ++i) buf[i] = static_cast<Acc>(xb[r * c + i]);
            row = buf.data();
          }
          const RowStats<Acc> st = row_stats(row, c, ls > 0);
          lse[r] = st.max + st.log_sum;
          l = (st.max - row[tgt[r]]) + st.log_sum;  // lse - x[t] without rounding lse first
          if (ls > 0) l = keep * l + smooth * ((st.max - st.sum / static_cast<Acc>(c)) + st.log_sum);
        }
        if (reduction == LossReduction::None) loss[r] = static_cast<T>(l);
        else row_loss[r] = static_cast<double>(l);
      }
    });
    if (reduction == LossReduction::None) return;
    double total = 0;
    int64_t counted = 0;
    for (int64_t r = 0; r < n; ++r) {
      total += row_loss[r];
      counted += tgt[r] != ignore_index;
    }
    if (reduction == LossReduction::Mean) total /= static_cast<double>(counted);  // 0/0 = nan, like torch
    loss[0] = static_cast<T>(total);
  });
}

void cross_entropy_backward(const KernelArgs& a, const CrossEntropyAttrs& attrs) {
  const Tensor& grad = a.in[0];
  const Tensor& x = a.in[1];
  const Tensor& target = a.in[2];
  const Tensor& lse_t = a.in[3];
  const Tensor& out = a.out[0];
  const int64_t n = x.sizes()[0], c = x.sizes()[1];
  if (out.numel() == 0) return;
  const int64_t ignore_index = attrs.ignore_index;
  const double ls = attrs.label_smoothing;
  const auto reduction = static_cast<LossReduction>(attrs.reduction);
  const int64_t* tgt = target.data<int64_t>();
  int64_t counted = 0;
  if (reduction == LossReduction::Mean)
    for (int64_t r = 0; r < n; ++r) counted += is_counted(tgt[r], c, ignore_index);
  dispatch_float(x.dtype(), "cross_entropy_backward", [&]<typename T>() {
    using Acc = opmath_t<T>;
    const T* xb = x.data<T>();
    const T* gb = grad.data<T>();
    const Acc* lse = lse_t.data<Acc>();
    T* ob = out.data<T>();
    const Acc off = static_cast<Acc>(ls / static_cast<double>(c)), keep = static_cast<Acc>(1.0 - ls);
    Acc scalar_g = 0;
    if (reduction == LossReduction::Sum) scalar_g = static_cast<Acc>(gb[0]);
    if (reduction == LossReduction::Mean) scalar_g = static_cast<Acc>(gb[0]) / static_cast<Acc>(counted);
    parallel_for(0, n, row_grain(c), [&](int64_t lo, int64_t hi) {
      std::vector<Acc> xbuf(std::is_same_v<T, Acc> ? 0 : c), ybuf(std::is_same_v<T, Acc> ? 0 : c);
      for (int64_t r = lo; r < hi; ++r) {
        T* y = ob + r * c;
        const int64_t t = tgt[r];
        if (!is_counted(t, c, ignore_index)) {
          std::fill(y, y + c, static_cast<T>(0));
          continue;
        }
        const Acc g = reduction == LossReduction::None ? static_cast<Acc>(gb[r]) : scalar_g;
        if constexpr (std::is_same_v<T, Acc>) {
          row_grad(xb + r * c, y, c, lse[r], g, off);
          y[t] -= g * keep;
        } else {
          for (int64_t i = 0; i < c; ++i) xbuf[i] = static_cast<Acc>(xb[r * c + i]);
          row_grad(xbuf.data(), ybuf.data(), c, lse[r], g, off);
          ybuf[t] -= g * keep;
          for (int64_t i = 0; i < c; ++i) y[i] = static_cast<T>(ybuf[i]);
        }
      }
    });
  });
}

}  // namespace ember::cpu
