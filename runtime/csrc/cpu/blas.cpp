// CPU matrix products (mm, bmm, addmm) on OpenBLAS from the scipy-openblas32 wheel.
//
// Note [BLAS operand layouts]
// A 2-D operand whose rows or columns are unit-stride goes to BLAS as is: row-major (NoTrans,
// ld = row stride) or column-major (Trans, ld = column stride), so .T/.mT views cost no copy.
// Anything else (expanded, every-other-element, ld out of int32 range) is packed contiguous first.
// float16/bfloat16 are widened to float32 (torch's CPU path accumulates in float too); integer
// dtypes use a plain cache-blocked loop (BLAS has no integer gemm).
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "cpu/blas.h"
#include "generated/kernels_linalg.h"

namespace ember::cpu {
namespace {

// Note [One thread pool]
// GEMMs run on ember's threads, never on a second pool: OpenBLAS (pthreads build) would otherwise
// start its own, and two pools of spinning threads on the same cores slow both down. Per call:
//  * quiet machine: one OpenBLAS call with num_threads jobs, which OpenBLAS hands to run_blas_jobs
//    below; they run on ember's pool as a gang. OpenBLAS's level-3 jobs share packed panels and
//    wait on each other mid-computation, so all must run at once; no panel is packed twice.
//  * while the pool reports oversubscription (machine_contended(), Note [Parallel regions under
//    load] in core/thread_pool.cpp): single-threaded OpenBLAS calls on blocks of C of at least
//    kMinGemmBlock rows (or columns) through parallel_for, so a thread without a core delays only
//    its own block. A gang instead spins until its last member gets a core
//    (`bench/cpu_under_load.py --gemm-modes` times both beside busy loops; docs/performance.md).
// EMBER_GEMM_THREADS=openblas|blocks forces one of the two (that benchmark uses it).
// The job type spelled out: the wheel's cblas.h names it openblas_dojob_callback from 0.3.34 and
// scipy_openblas_dojob_callback before (pyproject accepts >= 0.3.27).
using BlasJob = void (*)(int thread_num, void* jobdata, int dojob_data);
extern "C" void run_blas_jobs(int /*sync*/, BlasJob dojob, int numjobs, size_t jobdata_elsize, void* jobdata,
                              int dojob_data) {
  struct Jobs {
    BlasJob dojob;
    char* data;
    size_t elsize;
    int arg;
  } jobs{dojob, static_cast<char*>(jobdata), jobdata_elsize, dojob_data};
  detail::run_gang(numjobs, [](const void* ctx, int i) {
    auto* j = static_cast<const Jobs*>(ctx);
    j->dojob(i, j->data + i * j->elsize, j->arg);
  }, &jobs);
}

// OpenBLAS threads a GEMM only from this many multiply-adds (SMP_THRESHOLD_MIN * 4).
constexpr int64_t kBlasThreadedWork = int64_t{1} << 18;
// Each block packs the whole other operand again: thinner blocks would spend their time packing.
constexpr int64_t kMinGemmBlock = 128;

enum class GemmThreads { kOne, kOpenBlas, kBlocks };

// How a GEMM of `work` multiply-adds uses threads (see the Note).
GemmThreads gemm_threads(int64_t work) {
  if (work < kBlasThreadedWork || get_num_threads() == 1 || in_parallel_region()) return GemmThreads::kOne;
  static const char* force = std::getenv("EMBER_GEMM_THREADS");  // see the Note
  if (force && std::string(force) == "openblas") return GemmThreads::kOpenBlas;
  if (force && std::string(force) == "blocks") return GemmThreads::kBlocks;
  return machine_contended() ? GemmThreads::kBlocks : GemmThreads::kOpenBlas;
}

// Sets OpenBLAS's thread count for the next call (a global: only changed when it differs).
void set_blas_threads(int n) {
  static std::atomic<int> current{-1};
  static const bool callback_installed = [] {
    scipy_openblas_set_threads_callback_function(&run_blas_jobs);
    return true;
  }();
  (void)callback_installed;
  if (current.load(std::memory_order_relaxed) != n) {
    scipy_openblas_set_num_threads(n);
    current.store(n, std::memory_order_relaxed);
  }
}

// A strided matrix view: element (i, j) at data[i * rs + j * cs].
template <typename T>
struct Mat {
  T* data;
  int64_t rows, cols, rs, cs;
};

// How a matrix can be handed to BLAS without a copy (see Note [BLAS operand layouts]).
struct BlasLayout {
  bool ok = false;
  bool trans = false;  // column-major storage: pass Trans with ld = column stride
  int64_t ld = 0;
};

BlasLayout blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  BlasLayout l;
  // Row-major: unit column stride (or a single column), leading dim covers a row.
  if (cs == 1 || cols == 1) {
    int64_t ld = rows == 1 ? std::max<int64_t>(cols, 1) : rs;
    if (ld >= std::max<int64_t>(cols, 1) && ld <= INT_MAX) return {true, false, ld};
  }
  if (rs == 1 || rows == 1) {
    int64_t ld = cols == 1 ? std::max<int64_t>(rows, 1) : cs;
    if (ld >= std::max<int64_t>(rows, 1) && ld <= INT_MAX) return {true, true, ld};
  }
  return l;
}

// Copies (and converts) a strided matrix into a dense row-major buffer.
template <typename Dst, typename Src>
void pack(const Mat<const Src>& m, Dst* dst) {
  for (int64_t i = 0; i < m.rows; ++i)
    for (int64_t j = 0; j < m.cols; ++j)
      dst[i * m.cols + j] = static_cast<Dst>(static_cast<opmath_t<Src>>(m.data[i * m.rs + j * m.cs]));
}

template <typename T>
void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
               int64_t ldb, T beta, T* c, int64_t ldc) {
  const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    scipy_cblas_sgemm(CblasRowMajor, TA, TB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    scipy_cblas_dgemm(CblasRowMajor, TA, TB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// C = alpha * A @ B + beta * C for float/double, C dense row-major (ldc = n).
template <typename T>
void gemm_blas(const Mat<const T>& A, const Mat<const T>& B, T* C, T alpha, T beta) {
  const int64_t m = A.rows, k = A.cols, n = B.cols;
  std::vector<T> abuf, bbuf;
  BlasLayout la = blas_layout(A.rows, A.cols, A.rs, A.cs), lb = blas_layout(B.rows, B.cols, B.rs, B.cs);
  const T* ap = A.data;
  const T* bp = B.data;
  if (!la.ok) { abuf.resize(m * k); pack(A, abuf.data()); ap = abuf.data(); la = {true, false, std::max<int64_t>(k, 1)}; }
  if (!lb.ok) { bbuf.resize(k * n); pack(B, bbuf.data()); bp = bbuf.data(); lb = {true, false, std::max<int64_t>(n, 1)}; }
  const int64_t ldc = std::max<int64_t>(n, 1);
  const GemmThreads mode = gemm_threads(m * n * k);
  if (mode == GemmThreads::kBlocks && std::max(m, n) >= 2 * kMinGemmBlock) {
    set_blas_threads(1);
    const int64_t parts = 2 * int64_t{get_num_threads()};
    if (m >= n) {  // row blocks of A and C
      parallel_for(0, m, std::max(kMinGemmBlock, (m + parts - 1) / parts), [&](int64_t lo, int64_t hi) {
        blas_gemm<T>(la.trans, lb.trans, hi - lo, n, k, alpha, ap + lo * (la.trans ? 1 : la.ld), la.ld, bp, lb.ld, beta,
                     C + lo * ldc, ldc);
      });
    } else {  // column blocks of B and C
      parallel_for(0, n, std::max(kMinGemmBlock, (n + parts - 1) / parts), [&](int64_t lo, int64_t hi) {
        blas_gemm<T>(la.trans, lb.trans, m, hi - lo, k, alpha, ap, la.ld, bp + lo * (lb.trans ? lb.ld : 1), lb.ld, beta,
                     C + lo, ldc);
      });
    }
    return;
  }
  if (m * n * k >= kBlasThreadedWork) set_blas_threads(mode == GemmThreads::kOpenBlas ? get_num_threads() : 1);
  blas_gemm<T>(la.trans, lb.trans, m, n, k, alpha, ap, la.ld, bp, lb.ld, beta, C, ldc);
}

// Integer gemm: i-k-j loop order over tiles (unit-stride inner loop on C and packed B).
template <typename T>
void gemm_loop(const Mat<const T>& A, const Mat<const T>& B, T* C, T alpha, T beta) {
  const int64_t m = A.rows, k = A.cols, n = B.cols;
  std::vector<T> bbuf(k * n);
  pack(B, bbuf.data());
  parallel_for(0, m, std::max<int64_t>(1, 16384 / std::max<int64_t>(n * std::max<int64_t>(k, 1), 1)),
               [&](int64_t lo, int64_t hi) {
    std::vector<T> acc(n);
    for (int64_t i = lo; i < hi; ++i) {
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t p = 0; p < k; ++p) {
        const T aip = A.data[i * A.rs + p * A.cs];
        const T* brow = bbuf.data() + p * n;
        for (int64_t j = 0; j < n; ++j) acc[j] += aip * brow[j];
      }
      T* crow = C + i * n;
      for (int64_t j = 0; j < n; ++j) crow[j] = static_cast<T>(alpha * acc[j] + (beta == T(0) ? T(0) : beta * crow[j]));
    }
  });
}

// C (dense m x n, scalar_t) = alpha * A @ B + beta * C for any supported dtype.
template <typename scalar_t>
void gemm_any(const Mat<const scalar_t>& A, const Mat<const scalar_t>& B, scalar_t* C, double alpha, double beta) {
  const int64_t m = A.rows, k = A.cols, n = B.cols;
  if (m == 0 || n == 0) return;
  if constexpr (std::is_same_v<scalar_t, float> || std::is_same_v<scalar_t, double>) {
    if (k == 0) {  // BLAS may leave C untouched; define it ourselves
      for (int64_t i = 0; i < m * n; ++i) C[i] = beta == 0 ? scalar_t(0) : static_cast<scalar_t>(beta * C[i]);
      return;
    }
    gemm_blas<scalar_t>(A, B, C, static_cast<scalar_t>(alpha), static_cast<scalar_t>(beta));
  } else if constexpr (std::is_integral_v<scalar_t>) {
    gemm_loop<scalar_t>(A, B, C, static_cast<scalar_t>(static_cast<int64_t>(alpha)),
                        static_cast<scalar_t>(static_cast<int64_t>(beta)));
  } else {  // Half / BFloat16: widen to float, gemm, round back once
    std::vector<float> a(m * k), b(k * n), c(m * n);
    pack(A, a.data());
    pack(B, b.data());
    if (beta != 0) for (int64_t i = 0; i < m * n; ++i) c[i] = static_cast<float>(C[i]);
    Mat<const float> af{a.data(), m, k, k, 1}, bf{b.data(), k, n, n, 1};
    gemm_any<float>(af, bf, c.data(), alpha, beta);
    for (int64_t i = 0; i < m * n; ++i) C[i] = static_cast<scalar_t>(c[i]);
  }
}

template <typename T>
Mat<const T> matrix_of(const Tensor& t, int64_t batch_offset = 0) {
  const int64_t d = t.dim();
  return {t.data<T>() + batch_offset, t.sizes()[d - 2], t.sizes()[d - 1], t.strides()[d - 2], t.strides()[d - 1]};
}

}  // namespace

void mm(const KernelArgs& args, const NoAttrs&) {
  const Tensor &a = args.in[0], &b = args.in[1], &out = args.out[0];
  EMBER_DISPATCH_NUMERIC(out.dtype(), "mm", ([&]<typename scalar_t>() {
    gemm_any<scalar_t>(matrix_of<scalar_t>(a), matrix_of<scalar_t>(b), out.data<scalar_t>(), 1.0, 0.0);
  }));
}

// bmm over [B, m, k] x [B, k, n]; batch strides may be 0 (broadcast batches).
// Small matrices go parallel over the batch with single-threaded gemms (like torch); larger ones
// use one strided-batch BLAS call threaded inside BLAS, or a loop of gemms when an operand needs
// packing or the machine is oversubscribed (Note [One thread pool]).
void bmm(const KernelArgs& args, const NoAttrs&) {
  const Tensor &a = args.in[0], &b = args.in[1], &out = args.out[0];
  const int64_t batch = out.sizes()[0], m = out.sizes()[1], n = out.sizes()[2], k = a.sizes()[2];
  if (batch == 0 || m == 0 || n == 0) return;
  EMBER_DISPATCH_NUMERIC(out.dtype(), "bmm", ([&]<typename scalar_t>() {
    auto run_range = [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i)
        gemm_any<scalar_t>(matrix_of<scalar_t>(a, i * a.strides()[0]), matrix_of<scalar_t>(b, i * b.strides()[0]),
                           out.data<scalar_t>() + i * m * n, 1.0, 0.0);
    };
    const int64_t work = m * n * std::max<int64_t>(k, 1);
    const int threads = get_num_threads();
    const GemmThreads mode = gemm_threads(work);
    // Small matrices, or a batch big enough to share out while the machine is oversubscribed.
    if (batch > 1 && threads > 1 && !in_parallel_region() &&
        (work < kBlasThreadedWork || (mode == GemmThreads::kBlocks && batch >= 2 * threads))) {
      parallel_for(0, batch, std::max<int64_t>(1, (int64_t{1} << 16) / work), run_range);
      return;
    }
    if constexpr (std::is_same_v<scalar_t, float> || std::is_same_v<scalar_t, double>) {
      const auto A = matrix_of<scalar_t>(a), B = matrix_of<scalar_t>(b);
      const BlasLayout la = blas_layout(A.rows, A.cols, A.rs, A.cs), lb = blas_layout(B.rows, B.cols, B.rs, B.cs);
      const int64_t sa = a.strides()[0], sb = b.strides()[0];
      if (mode != GemmThreads::kBlocks && batch > 1 && k > 0 && la.ok && lb.ok && sa >= 0 && sb >= 0 &&
          sa <= INT_MAX && sb <= INT_MAX && m * n <= INT_MAX) {
        if (work >= kBlasThreadedWork) set_blas_threads(mode == GemmThreads::kOpenBlas ? threads : 1);
        const auto TA = la.trans ? CblasTrans : CblasNoTrans, TB = lb.trans ? CblasTrans : CblasNoTrans;
        if constexpr (std::is_same_v<scalar_t, float>)
          scipy_cblas_sgemm_batch_strided(CblasRowMajor, TA, TB, m, n, k, 1.0f, A.data, la.ld, sa, B.data, lb.ld, sb,
                                          0.0f, out.data<float>(), n, m * n, batch);
        else
          scipy_cblas_dgemm_batch_strided(CblasRowMajor, TA, TB, m, n, k, 1.0, A.data, la.ld, sa, B.data, lb.ld, sb,
                                          0.0, out.data<double>(), n, m * n, batch);
        return;
      }
    }
    run_range(0, batch);
  }));
}

// out = beta * bias + alpha * (a @ b); bias broadcasts to [m, n] (its strides are read with zeros
// for broadcast dims).
void addmm(const KernelArgs& args, const AddmmAttrs& attrs) {
  const Tensor &bias = args.in[0], &a = args.in[1], &b = args.in[2], &out = args.out[0];
  const int64_t m = out.sizes()[0], n = out.sizes()[1];
  const double alpha = attrs.alpha.to_double(), beta = attrs.beta.to_double();
  // Broadcast strides of bias against [m, n].
  int64_t brs = 0, bcs = 0;
  if (bias.dim() == 2) { brs = bias.sizes()[0] == 1 ? 0 : bias.strides()[0]; bcs = bias.sizes()[1] == 1 ? 0 : bias.strides()[1]; }
  if (bias.dim() == 1) bcs = bias.sizes()[0] == 1 ? 0 : bias.strides()[0];
  EMBER_DISPATCH_NUMERIC(out.dtype(), "addmm", ([&]<typename scalar_t>() {
    scalar_t* c = out.data<scalar_t>();
    const scalar_t* bp = bias.data<scalar_t>();
    if (beta != 0)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) c[i * n + j] = bp[i * brs + j * bcs];
    gemm_any<scalar_t>(matrix_of<scalar_t>(a), matrix_of<scalar_t>(b), c, alpha, beta);
  }));
}


void single_thread_blas() { set_blas_threads(1); }

void gemm_on_this_thread(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                         int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  blas_gemm<float>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void gemm_on_this_thread(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                         int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  blas_gemm<double>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace ember::cpu
