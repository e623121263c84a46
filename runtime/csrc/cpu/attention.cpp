// CPU kernels of fused scaled-dot-product attention (ops/attention.cpp, Note [Fused attention op]).
//
// Note [Fused attention on CPU]
// FlashAttention-2 with OpenBLAS for the block products. One task per (batch, head) on ember's pool,
// each packing its head's q/k/v into dense rows of the compute type (float; double for float64).
// Forward: each block of kBlockQ queries sweeps blocks of kBlockK keys keeping a running row max m
// and sum l (online softmax), so the [Tq, Tk] scores never exist and memory stays O(T * D) per
// task; lse = m + log(l) is saved. Backward, per key block and every query block that sees it:
//   P = exp(S - lse),  dV += (P Z)^T dO,  dS = P ((dO V^T) Z - delta),  delta_i = dO_i . O_i,
//   dK += scale * dS^T Q,  dQ += scale * dS K
// with Z the dropout factors (0 or 1 / (1 - p)). Causal blocks above the diagonal are skipped.
//
// Note [Fused attention dropout on CPU]
// Weight (b, h, i, j) has the flat index n = ((b * H + h) * Tq + i) * Tk + j and is kept when word
// n % 4 of Philox block offset + n / 4 is below (1 - p) * 2^32: exactly bernoulli_(1 - p) drawn on a
// [B, H, Tq, Tk] tensor from the same generator state, so a test can rebuild the mask. The forward
// reserves the blocks and records (seed, offset) in rng_state; the backward regenerates the mask.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/generator.h"
#include "core/parallel.h"
#include "cpu/blas.h"
#include "cpu/elementwise_math.h"
#include "generated/kernels_attention.h"

namespace ember::cpu {
namespace {

// 64 x 128 float scores fit L1 beside a 64 x D query block; the gemms stay large enough for BLAS.
constexpr int64_t kBlockQ = 64, kBlockK = 128;

struct Dims {
  int64_t b, h, tq, tk, d, dv;
};

Dims dims_of(const Tensor& q, const Tensor& k, const Tensor& v) {
  return {q.sizes()[0], q.sizes()[1], q.sizes()[2], k.sizes()[2], q.sizes()[3], v.sizes()[3]};
}

// Row i, column c of head (b, h) of a [B, H, T, C] tensor.
template <typename T>
struct Head {
  T* base;
  int64_t rs, cs;
  Head(const Tensor& t, int64_t b, int64_t h)
      : base(t.data<T>() + b * t.strides()[0] + h * t.strides()[1]), rs(t.strides()[2]), cs(t.strides()[3]) {}
  T& at(int64_t i, int64_t c) const { return base[i * rs + c * cs]; }
};

// Head (b, h) of `t` ([B, H, rows, cols]) as dense rows of A.
template <typename A, typename T>
void pack_head(const Tensor& t, int64_t b, int64_t h, A* dst) {
  const Head<T> src(t, b, h);
  const int64_t rows = t.sizes()[2], cols = t.sizes()[3];
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t c = 0; c < cols; ++c) dst[i * cols + c] = static_cast<A>(static_cast<opmath_t<T>>(src.at(i, c)));
}

// Writes `rows` dense rows of A into rows [first, first + rows) of head (b, h) of `t`.
template <typename A, typename T>
void store_rows(const A* src, int64_t first, int64_t rows, const Tensor& t, int64_t b, int64_t h) {
  const Head<T> dst(t, b, h);
  const int64_t cols = t.sizes()[3];
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t c = 0; c < cols; ++c) dst.at(first + i, c) = static_cast<T>(src[i * cols + c]);
}

// Note [Fused attention dropout on CPU]: multiplies z[0, j1 - j0) by the factors of weights
// (row, j0 .. j1), where row = (b * H + h) * Tq + i.
struct DropoutMask {
  bool active = false;
  uint64_t seed = 0, offset = 0;
  double threshold = 0;  // keep when the 32-bit word is below this
  double keep_scale = 1;

  DropoutMask(double p, const Tensor& rng_state) {
    if (p == 0.0) return;
    const int64_t* st = rng_state.data<int64_t>();
    active = true;
    seed = static_cast<uint64_t>(st[0]);
    offset = static_cast<uint64_t>(st[2]);
    threshold = (1.0 - p) * 4294967296.0;
    keep_scale = 1.0 / (1.0 - p);
  }

  template <typename A>
  void apply(int64_t row, int64_t tk, int64_t j0, int64_t j1, A* z) const {
    int64_t n = row * tk + j0;
    const int64_t end = row * tk + j1;
    const A keep = static_cast<A>(keep_scale);
    while (n < end) {
      const Philox4x32 r(seed, offset + static_cast<uint64_t>(n >> 2));
      for (int w = static_cast<int>(n & 3); w < 4 && n < end; ++w, ++n, ++z)
        *z = static_cast<double>(r.v[w]) < threshold ? *z * keep : A(0);
    }
  }
};

// Keys [j0, j0 + block) that query i sees.
int64_t visible_keys(bool causal, int64_t i, int64_t j0, int64_t block) {
  return causal ? std::clamp<int64_t>(i + 1 - j0, 0, block) : block;
}

template <typename T>
void forward_impl(const KernelArgs& args, const AttentionAttrs& attrs) {
  using A = opmath_t<T>;
  const Tensor &q = args.in[0], &k = args.in[1], &v = args.in[2];
  const Tensor &out = args.out[0], &lse_out = args.out[1], &rng_state = args.out[2];
  const Dims n = dims_of(q, k, v);
  if (attrs.dropout_p > 0.0) {  // Note [Fused attention dropout on CPU]
    const uint64_t weights = static_cast<uint64_t>(n.b * n.h) * static_cast<uint64_t>(n.tq * n.tk);
    const PhiloxState ph = current_generator(q.device()).reserve((weights + 3) / 4);
    int64_t* st = rng_state.data<int64_t>();
    st[0] = static_cast<int64_t>(ph.seed), st[1] = 0, st[2] = static_cast<int64_t>(ph.offset), st[3] = 0;
  }
  const DropoutMask mask(attrs.dropout_p, rng_state);
  const A scale = static_cast<A>(attrs.scale);
  constexpr A kNegInf = -std::numeric_limits<A>::infinity();
  A* lse = lse_out.data<A>();
  single_thread_blas();
  parallel_for(0, n.b * n.h, 1, [&](int64_t lo, int64_t hi) {
    std::vector<A> qh(n.tq * n.d), kh(n.tk * n.d), vh(n.tk * n.dv);
    std::vector<A> s(kBlockQ * kBlockK), o(kBlockQ * n.dv), m(kBlockQ), l(kBlockQ);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t b = bh / n.h, h = bh % n.h;
      pack_head<A, T>(q, b, h, qh.data());
      pack_head<A, T>(k, b, h, kh.data());
      pack_head<A, T>(v, b, h, vh.data());
      for (int64_t i0 = 0; i0 < n.tq; i0 += kBlockQ) {
        const int64_t bq = std::min(kBlockQ, n.tq - i0);
        std::fill(m.begin(), m.end(), kNegInf);
        std::fill(l.begin(), l.end(), A(0));
        std::fill(o.begin(), o.end(), A(0));
        const int64_t key_end = attrs.is_causal ? std::min(n.tk, i0 + bq) : n.tk;
        for (int64_t j0 = 0; j0 < key_end; j0 += kBlockK) {
          const int64_t bk = std::min(kBlockK, key_end - j0);
          gemm_on_this_thread(false, true, bq, bk, n.d, scale, qh.data() + i0 * n.d, n.d, kh.data() + j0 * n.d, n.d,
                              A(0), s.data(), bk);
          for (int64_t r = 0; r < bq; ++r) {
            A* row = s.data() + r * bk;
            const int64_t seen = visible_keys(attrs.is_causal, i0 + r, j0, bk);
            A mx = m[r];
#pragma omp simd reduction(max : mx)
            for (int64_t j = 0; j < seen; ++j) mx = std::max(mx, row[j]);
            std::fill(row + seen, row + bk, A(0));
            if (seen == 0) continue;
            const A corr = m[r] == kNegInf ? A(0) : vm::exp<A>(m[r] - mx);
            A sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < seen; ++j) {
              row[j] = vm::exp<A>(row[j] - mx);
              sum += row[j];
            }
            l[r] = l[r] * corr + sum;
            m[r] = mx;
            if (corr != A(1))
              for (int64_t c = 0; c < n.dv; ++c) o[r * n.dv + c] *= corr;
            if (mask.active) mask.apply((bh * n.tq) + i0 + r, n.tk, j0, j0 + seen, row);
          }
          gemm_on_this_thread(false, false, bq, n.dv, bk, A(1), s.data(), bk, vh.data() + j0 * n.dv, n.dv, A(1),
                              o.data(), n.dv);
        }
        for (int64_t r = 0; r < bq; ++r) {  // no key at all (Tk = 0): out 0, lse -inf
          const A inv = l[r] > A(0) ? A(1) / l[r] : A(0);
          for (int64_t c = 0; c < n.dv; ++c) o[r * n.dv + c] *= inv;
          lse[bh * n.tq + i0 + r] = l[r] > A(0) ? m[r] + std::log(l[r]) : kNegInf;
        }
        store_rows<A, T>(o.data(), i0, bq, out, b, h);
      }
    }
  });
}

template <typename T>
void backward_impl(const KernelArgs& args, const AttentionAttrs& attrs) {
  using A = opmath_t<T>;
  const Tensor &grad = args.in[0], &q = args.in[1], &k = args.in[2], &v = args.in[3], &out = args.in[4];
  const Tensor &dq_out = args.out[0], &dk_out = args.out[1], &dv_out = args.out[2];
  const Dims n = dims_of(q, k, v);
  const DropoutMask mask(attrs.dropout_p, args.in[6]);
  const A* lse = args.in[5].data<A>();
  const A scale = static_cast<A>(attrs.scale);
  single_thread_blas();
  parallel_for(0, n.b * n.h, 1, [&](int64_t lo, int64_t hi) {
    std::vector<A> qh(n.tq * n.d), kh(n.tk * n.d), vh(n.tk * n.dv), gh(n.tq * n.dv), delta(n.tq), dq(n.tq * n.d);
    std::vector<A> dk(kBlockK * n.d), dv(kBlockK * n.dv);
    std::vector<A> p(kBlockQ * kBlockK), pz(mask.active ? kBlockQ * kBlockK : 0), dp(kBlockQ * kBlockK);
    std::vector<A> factors(mask.active ? kBlockQ * kBlockK : 0);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t b = bh / n.h, h = bh % n.h;
      pack_head<A, T>(q, b, h, qh.data());
      pack_head<A, T>(k, b, h, kh.data());
      pack_head<A, T>(v, b, h, vh.data());
      pack_head<A, T>(grad, b, h, gh.data());
      const Head<T> o(out, b, h);
      for (int64_t i = 0; i < n.tq; ++i) {
        A acc = 0;
        for (int64_t c = 0; c < n.dv; ++c) acc += gh[i * n.dv + c] * static_cast<A>(static_cast<opmath_t<T>>(o.at(i, c)));
        delta[i] = acc;
      }
      std::fill(dq.begin(), dq.end(), A(0));
      const A* lse_h = lse + bh * n.tq;
      for (int64_t j0 = 0; j0 < n.tk; j0 += kBlockK) {
        const int64_t bk = std::min(kBlockK, n.tk - j0);
        std::fill(dk.begin(), dk.end(), A(0));
        std::fill(dv.begin(), dv.end(), A(0));
        const int64_t first_query = attrs.is_causal ? j0 / kBlockQ * kBlockQ : 0;  // earlier queries see no key here
        for (int64_t i0 = first_query; i0 < n.tq; i0 += kBlockQ) {
          const int64_t bq = std::min(kBlockQ, n.tq - i0);
          gemm_on_this_thread(false, true, bq, bk, n.d, scale, qh.data() + i0 * n.d, n.d, kh.data() + j0 * n.d, n.d,
                              A(0), p.data(), bk);
          for (int64_t r = 0; r < bq; ++r) {
            A* row = p.data() + r * bk;
            const int64_t seen = visible_keys(attrs.is_causal, i0 + r, j0, bk);
            const A row_lse = lse_h[i0 + r];
            for (int64_t j = 0; j < seen; ++j) row[j] = vm::exp<A>(row[j] - row_lse);
            std::fill(row + seen, row + bk, A(0));
            if (mask.active) {
              A* f = factors.data() + r * bk;
              std::fill(f, f + bk, A(1));
              mask.apply((bh * n.tq) + i0 + r, n.tk, j0, j0 + bk, f);
              for (int64_t j = 0; j < bk; ++j) pz[r * bk + j] = row[j] * f[j];
            }
          }
          const A* weights = mask.active ? pz.data() : p.data();  // the weights that multiplied V
          gemm_on_this_thread(true, false, bk, n.dv, bq, A(1), weights, bk, gh.data() + i0 * n.dv, n.dv, A(1),
                              dv.data(), n.dv);
          gemm_on_this_thread(false, true, bq, bk, n.dv, A(1), gh.data() + i0 * n.dv, n.dv, vh.data() + j0 * n.dv,
                              n.dv, A(0), dp.data(), bk);
          for (int64_t r = 0; r < bq; ++r) {
            const A d = delta[i0 + r];
            A* ds = dp.data() + r * bk;
            const A* pr = p.data() + r * bk;
            if (mask.active) {
              const A* f = factors.data() + r * bk;
              for (int64_t j = 0; j < bk; ++j) ds[j] = pr[j] * (ds[j] * f[j] - d);
            } else {
              for (int64_t j = 0; j < bk; ++j) ds[j] = pr[j] * (ds[j] - d);
            }
          }
          gemm_on_this_thread(true, false, bk, n.d, bq, scale, dp.data(), bk, qh.data() + i0 * n.d, n.d, A(1),
                              dk.data(), n.d);
          gemm_on_this_thread(false, false, bq, n.d, bk, scale, dp.data(), bk, kh.data() + j0 * n.d, n.d, A(1),
                              dq.data() + i0 * n.d, n.d);
        }
        store_rows<A, T>(dk.data(), j0, bk, dk_out, b, h);
        store_rows<A, T>(dv.data(), j0, bk, dv_out, b, h);
      }
      store_rows<A, T>(dq.data(), 0, n.tq, dq_out, b, h);
    }
  });
}

}  // namespace

void fused_attention(const KernelArgs& args, const AttentionAttrs& attrs) {
  EMBER_DISPATCH_FLOAT(args.in[0].dtype(), "fused_attention",
                       ([&]<typename T>() { forward_impl<T>(args, attrs); }));
}

void fused_attention_backward(const KernelArgs& args, const AttentionAttrs& attrs) {
  EMBER_DISPATCH_FLOAT(args.in[1].dtype(), "fused_attention_backward",
                       ([&]<typename T>() { backward_impl<T>(args, attrs); }));
}

}  // namespace ember::cpu
