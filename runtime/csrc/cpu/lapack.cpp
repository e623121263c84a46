// CPU kernels of the matrix decompositions and solvers (spec/decomp.yaml) on OpenBLAS's LAPACK.
//
// Note [LAPACK batches]
// The frontends (ops/decomp.cpp) hand over contiguous row-major batches [*, m, n] of float/double
// matrices with equal batch dims. Each matrix is copied into a column-major buffer (LAPACK's
// layout; also what leaves the input untouched), factored, and copied out row-major. A batch of
// several matrices runs over ember's threads with single-threaded BLAS inside LAPACK (Note [One
// thread pool] in cpu/blas.cpp); a lone matrix lets LAPACK's BLAS use the threads. Nothing throws
// inside the parallel loop: failures are recorded per matrix and raised after it, or returned as
// the op's info output (torch's *_ex ops) for the frontend to turn into torch's errors.
#define LAPACK_COMPLEX_CPP  // lapacke.h's complex types as std::complex (ember uses none)
#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "cpu/blas.h"
#include "generated/kernels_decomp.h"

namespace ember::cpu {
namespace {

using lint = lapack_int;

// LAPACKE's default NaN check would return an argument error for NaN inputs; LAPACK itself
// propagates NaNs (torch's behaviour), so the check is turned off once.
void lapack_init() {
  static const bool done = [] {
    scipy_LAPACKE_set_nancheck(0);
    return true;
  }();
  (void)done;
}

int64_t batch_of(const Tensor& t) {
  int64_t b = 1;
  for (int64_t d = 0; d + 2 < t.dim(); ++d) b *= t.sizes()[d];
  return b;
}

// Runs fn(b) for every matrix index b (Note [LAPACK batches]).
template <typename F>
void for_each_matrix(int64_t batch, const F& fn) {
  lapack_init();
  if (batch == 1) { fn(0); return; }
  single_thread_blas();
  parallel_for(0, batch, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) fn(b);
  });
}

// Row-major m x n at src -> column-major with leading dimension ld at dst, and back.
template <typename T>
void to_colmajor(const T* src, int64_t m, int64_t n, T* dst, int64_t ld) {
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < m; ++i) dst[i + j * ld] = src[i * n + j];
}
template <typename T>
void from_colmajor(const T* src, int64_t m, int64_t n, int64_t ld, T* dst) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) dst[i * n + j] = src[i + j * ld];
}

lint ld_of(int64_t rows) { return static_cast<lint>(std::max<int64_t>(rows, 1)); }

// The LAPACK routines for float (s) and double (d), column-major.
template <typename T> constexpr bool kF = std::is_same_v<T, float>;
template <typename T>
lint getrf(lint m, lint n, T* a, lint* ipiv) {
  if constexpr (kF<T>) return scipy_LAPACKE_sgetrf(LAPACK_COL_MAJOR, m, n, a, ld_of(m), ipiv);
  else return scipy_LAPACKE_dgetrf(LAPACK_COL_MAJOR, m, n, a, ld_of(m), ipiv);
}
template <typename T>
lint getrs(char trans, lint n, lint nrhs, const T* a, const lint* ipiv, T* b) {
  if constexpr (kF<T>) return scipy_LAPACKE_sgetrs(LAPACK_COL_MAJOR, trans, n, nrhs, a, ld_of(n), ipiv, b, ld_of(n));
  else return scipy_LAPACKE_dgetrs(LAPACK_COL_MAJOR, trans, n, nrhs, a, ld_of(n), ipiv, b, ld_of(n));
}
template <typename T>
lint gesv(lint n, lint nrhs, T* a, lint* ipiv, T* b) {
  if constexpr (kF<T>) return scipy_LAPACKE_sgesv(LAPACK_COL_MAJOR, n, nrhs, a, ld_of(n), ipiv, b, ld_of(n));
  else return scipy_LAPACKE_dgesv(LAPACK_COL_MAJOR, n, nrhs, a, ld_of(n), ipiv, b, ld_of(n));
}
template <typename T>
lint getri(lint n, T* a, const lint* ipiv) {
  if constexpr (kF<T>) return scipy_LAPACKE_sgetri(LAPACK_COL_MAJOR, n, a, ld_of(n), ipiv);
  else return scipy_LAPACKE_dgetri(LAPACK_COL_MAJOR, n, a, ld_of(n), ipiv);
}
template <typename T>
lint potrf(char uplo, lint n, T* a) {
  if constexpr (kF<T>) return scipy_LAPACKE_spotrf(LAPACK_COL_MAJOR, uplo, n, a, ld_of(n));
  else return scipy_LAPACKE_dpotrf(LAPACK_COL_MAJOR, uplo, n, a, ld_of(n));
}
template <typename T>
lint geqrf(lint m, lint n, T* a, T* tau) {
  if constexpr (kF<T>) return scipy_LAPACKE_sgeqrf(LAPACK_COL_MAJOR, m, n, a, ld_of(m), tau);
  else return scipy_LAPACKE_dgeqrf(LAPACK_COL_MAJOR, m, n, a, ld_of(m), tau);
}
template <typename T>
lint orgqr(lint m, lint n, lint k, T* a, const T* tau) {
  if constexpr (kF<T>) return scipy_LAPACKE_sorgqr(LAPACK_COL_MAJOR, m, n, k, a, ld_of(m), tau);
  else return scipy_LAPACKE_dorgqr(LAPACK_COL_MAJOR, m, n, k, a, ld_of(m), tau);
}
template <typename T>
lint gesdd(char jobz, lint m, lint n, T* a, T* s, T* u, lint ldu, T* vt, lint ldvt) {
  if constexpr (kF<T>) return scipy_LAPACKE_sgesdd(LAPACK_COL_MAJOR, jobz, m, n, a, ld_of(m), s, u, ldu, vt, ldvt);
  else return scipy_LAPACKE_dgesdd(LAPACK_COL_MAJOR, jobz, m, n, a, ld_of(m), s, u, ldu, vt, ldvt);
}
template <typename T>
lint syevd(char jobz, char uplo, lint n, T* a, T* w) {
  if constexpr (kF<T>) return scipy_LAPACKE_ssyevd(LAPACK_COL_MAJOR, jobz, uplo, n, a, ld_of(n), w);
  else return scipy_LAPACKE_dsyevd(LAPACK_COL_MAJOR, jobz, uplo, n, a, ld_of(n), w);
}

template <typename F>
void dispatch_lapack(ScalarType t, const char* op, const F& f) {
  if (t == ScalarType::Float32) f.template operator()<float>();
  else if (t == ScalarType::Float64) f.template operator()<double>();
  else fail(ErrorKind::Type, "[", op, "] LAPACK kernels take float32 or float64, got ", torch_type_name(t));
}

// The first failing matrix of a batch (or -1) and its code, recorded from inside a parallel loop.
struct FirstFailure {
  std::atomic<int64_t> batch{-1};
  std::atomic<int64_t> code{0};
  void record(int64_t b, int64_t c) {
    int64_t expected = -1;
    if (batch.compare_exchange_strong(expected, b)) code = c;
  }
  bool failed() const { return batch.load() >= 0; }
};

// Torch's "(Batch element 3): " prefix for errors in batched inputs.
std::string batch_prefix(const Tensor& t, int64_t b) {
  return t.dim() > 2 ? "(Batch element " + std::to_string(b) + "): " : "";
}

// LAPACK's own argument errors (info < 0) are bugs of ember, not of the input.
void check_no_argument_error(const char* op, lint info) {
  EMBER_CHECK(info >= 0, "[", op, "] internal error: LAPACK rejected argument ", -info);
}

}  // namespace

void linalg_lu_factor_ex(const KernelArgs& a, const NoAttrs&) {
  const Tensor& A = a.in[0];
  const Tensor &LU = a.out[0], &piv = a.out[1], &info = a.out[2];
  const int64_t m = A.sizes()[A.dim() - 2], n = A.sizes()[A.dim() - 1], k = std::min(m, n);
  dispatch_lapack(A.dtype(), "linalg.lu_factor", [&]<typename T>() {
    FirstFailure bad;
    for_each_matrix(batch_of(A), [&](int64_t b) {
      std::vector<T> buf(m * n);
      std::vector<lint> ipiv(std::max<int64_t>(k, 1));
      to_colmajor(A.data<T>() + b * m * n, m, n, buf.data(), ld_of(m));
      const lint r = getrf<T>(m, n, buf.data(), ipiv.data());
      if (r < 0) bad.record(b, r);
      from_colmajor(buf.data(), m, n, ld_of(m), LU.data<T>() + b * m * n);
      std::copy(ipiv.begin(), ipiv.begin() + k, piv.data<int32_t>() + b * k);
      info.data<int32_t>()[b] = std::max<lint>(r, 0);
    });
    if (bad.failed()) check_no_argument_error("linalg.lu_factor", static_cast<lint>(bad.code));
  });
}

void linalg_lu_solve(const KernelArgs& a, const LinalgLuSolveAttrs& attrs) {
  const Tensor &LU = a.in[0], &piv = a.in[1], &B = a.in[2];
  const Tensor& X = a.out[0];
  const int64_t n = LU.sizes()[LU.dim() - 1], k = B.sizes()[B.dim() - 1];
  dispatch_lapack(LU.dtype(), "linalg.lu_solve", [&]<typename T>() {
    FirstFailure bad;
    for_each_matrix(batch_of(LU), [&](int64_t b) {
      const int32_t* p = piv.data<int32_t>() + b * n;
      for (int64_t i = 0; i < n; ++i)  // LAPACK would read out of bounds
        if (p[i] < 1 || p[i] > n) { bad.record(b, p[i]); return; }
      std::vector<T> lu(n * n), x(n * k);
      to_colmajor(LU.data<T>() + b * n * n, n, n, lu.data(), ld_of(n));
      to_colmajor(B.data<T>() + b * n * k, n, k, x.data(), ld_of(n));
      const std::vector<lint> ipiv(p, p + n);
      if (n > 0 && k > 0) getrs<T>(attrs.adjoint ? 'T' : 'N', n, k, lu.data(), ipiv.data(), x.data());
      from_colmajor(x.data(), n, k, ld_of(n), X.data<T>() + b * n * k);
    });
    EMBER_CHECK(!bad.failed(), "[linalg.lu_solve] ", batch_prefix(LU, bad.batch), "pivots must be in [1, ", n,
                "], got ", bad.code.load());
  });
}

void linalg_solve_ex(const KernelArgs& a, const NoAttrs&) {
  const Tensor &A = a.in[0], &B = a.in[1];
  const Tensor &X = a.out[0], &info = a.out[1];
  const int64_t n = A.sizes()[A.dim() - 1], k = B.sizes()[B.dim() - 1];
  dispatch_lapack(A.dtype(), "linalg.solve", [&]<typename T>() {
    for_each_matrix(batch_of(A), [&](int64_t b) {
      std::vector<T> lu(n * n), x(n * k);
      std::vector<lint> ipiv(std::max<int64_t>(n, 1));
      to_colmajor(A.data<T>() + b * n * n, n, n, lu.data(), ld_of(n));
      to_colmajor(B.data<T>() + b * n * k, n, k, x.data(), ld_of(n));
      const lint r = n > 0 ? gesv<T>(n, k, lu.data(), ipiv.data(), x.data()) : 0;
      from_colmajor(x.data(), n, k, ld_of(n), X.data<T>() + b * n * k);
      info.data<int32_t>()[b] = r;
    });
  });
}

void linalg_inv_ex(const KernelArgs& a, const NoAttrs&) {
  const Tensor& A = a.in[0];
  const Tensor &inv = a.out[0], &info = a.out[1];
  const int64_t n = A.sizes()[A.dim() - 1];
  dispatch_lapack(A.dtype(), "linalg.inv", [&]<typename T>() {
    for_each_matrix(batch_of(A), [&](int64_t b) {
      std::vector<T> buf(n * n);
      std::vector<lint> ipiv(std::max<int64_t>(n, 1));
      to_colmajor(A.data<T>() + b * n * n, n, n, buf.data(), ld_of(n));
      lint r = n > 0 ? getrf<T>(n, n, buf.data(), ipiv.data()) : 0;
      if (r == 0 && n > 0) r = getri<T>(n, buf.data(), ipiv.data());
      from_colmajor(buf.data(), n, n, ld_of(n), inv.data<T>() + b * n * n);
      info.data<int32_t>()[b] = r;
    });
  });
}

namespace {
// det = (-1)^(row swaps) * prod(diag(U)); a singular matrix has an exact zero on U's diagonal.
template <typename T, typename F>
void lu_diagonal(const Tensor& A, const F& fn) {
  const int64_t n = A.sizes()[A.dim() - 1];
  for_each_matrix(batch_of(A), [&](int64_t b) {
    std::vector<T> buf(n * n);
    std::vector<lint> ipiv(std::max<int64_t>(n, 1));
    to_colmajor(A.data<T>() + b * n * n, n, n, buf.data(), ld_of(n));
    if (n > 0) getrf<T>(n, n, buf.data(), ipiv.data());
    bool negate = false;
    for (int64_t i = 0; i < n; ++i) negate ^= ipiv[i] != i + 1;
    fn(b, buf.data(), n + 1, n, negate);  // diagonal elements at buf[i * (n + 1)]
  });
}
}  // namespace

void linalg_det(const KernelArgs& a, const NoAttrs&) {
  const Tensor& A = a.in[0];
  dispatch_lapack(A.dtype(), "linalg.det", [&]<typename T>() {
    T* out = a.out[0].data<T>();
    lu_diagonal<T>(A, [&](int64_t b, const T* lu, int64_t step, int64_t n, bool negate) {
      T d = negate ? T(-1) : T(1);
      for (int64_t i = 0; i < n; ++i) d *= lu[i * step];
      out[b] = d;
    });
  });
}

void linalg_slogdet(const KernelArgs& a, const NoAttrs&) {
  const Tensor& A = a.in[0];
  dispatch_lapack(A.dtype(), "linalg.slogdet", [&]<typename T>() {
    T* sign = a.out[0].data<T>();
    T* logabs = a.out[1].data<T>();
    lu_diagonal<T>(A, [&](int64_t b, const T* lu, int64_t step, int64_t n, bool negate) {
      T s = negate ? T(-1) : T(1), l = 0;
      for (int64_t i = 0; i < n; ++i) {
        const T u = lu[i * step];
        s *= u > 0 ? T(1) : u < 0 ? T(-1) : u;  // 0 (or NaN) makes the sign 0 (or NaN)
        l += std::log(std::abs(u));
      }
      sign[b] = s;
      logabs[b] = l;
    });
  });
}

void linalg_cholesky_ex(const KernelArgs& a, const LinalgCholeskyExAttrs& attrs) {
  const Tensor& A = a.in[0];
  const Tensor &L = a.out[0], &info = a.out[1];
  const int64_t n = A.sizes()[A.dim() - 1];
  dispatch_lapack(A.dtype(), "linalg.cholesky", [&]<typename T>() {
    for_each_matrix(batch_of(A), [&](int64_t b) {
      std::vector<T> buf(n * n);
      to_colmajor(A.data<T>() + b * n * n, n, n, buf.data(), ld_of(n));
      const lint r = n > 0 ? potrf<T>(attrs.upper ? 'U' : 'L', n, buf.data()) : 0;
      T* out = L.data<T>() + b * n * n;
      from_colmajor(buf.data(), n, n, ld_of(n), out);
      for (int64_t i = 0; i < n; ++i)  // potrf leaves the other triangle as it was
        for (int64_t j = 0; j < n; ++j)
          if (attrs.upper ? j < i : j > i) out[i * n + j] = T(0);
      info.data<int32_t>()[b] = r;
    });
  });
}

void linalg_qr(const KernelArgs& a, const LinalgQrAttrs& attrs) {
  const Tensor& A = a.in[0];
  const Tensor &Q = a.out[0], &R = a.out[1];
  const int64_t m = A.sizes()[A.dim() - 2], n = A.sizes()[A.dim() - 1], k = std::min(m, n);
  const int64_t qcols = attrs.complete ? m : k, rrows = attrs.complete ? m : k;
  const int64_t cols = std::max(n, qcols);
  dispatch_lapack(A.dtype(), "linalg.qr", [&]<typename T>() {
    FirstFailure bad;
    for_each_matrix(batch_of(A), [&](int64_t b) {
      std::vector<T> buf(m * cols, T(0)), tau(std::max<int64_t>(k, 1));
      to_colmajor(A.data<T>() + b * m * n, m, n, buf.data(), ld_of(m));
      lint r = geqrf<T>(m, n, buf.data(), tau.data());
      T* rb = R.data<T>() + b * rrows * n;
      for (int64_t i = 0; i < rrows; ++i)
        for (int64_t j = 0; j < n; ++j) rb[i * n + j] = j >= i ? buf[i + j * ld_of(m)] : T(0);
      if (attrs.compute_q && r == 0) {
        r = orgqr<T>(m, qcols, k, buf.data(), tau.data());
        from_colmajor(buf.data(), m, qcols, ld_of(m), Q.data<T>() + b * m * qcols);
      }
      if (r != 0) bad.record(b, r);
    });
    if (bad.failed()) check_no_argument_error("linalg.qr", static_cast<lint>(bad.code));
  });
}

void linalg_svd(const KernelArgs& a, const LinalgSvdAttrs& attrs) {
  const Tensor& A = a.in[0];
  const Tensor &U = a.out[0], &S = a.out[1], &Vh = a.out[2];
  const int64_t m = A.sizes()[A.dim() - 2], n = A.sizes()[A.dim() - 1], k = std::min(m, n);
  const int64_t ucols = attrs.full_matrices ? m : k, vrows = attrs.full_matrices ? n : k;
  const char jobz = !attrs.compute_uv ? 'N' : attrs.full_matrices ? 'A' : 'S';
  dispatch_lapack(A.dtype(), "linalg.svd", [&]<typename T>() {
    FirstFailure bad;  // code: LAPACK's info, or -1 for non-finite input
    for_each_matrix(batch_of(A), [&](int64_t b) {
      const T* src = A.data<T>() + b * m * n;
      if (!std::all_of(src, src + m * n, [](T v) { return std::isfinite(v); })) { bad.record(b, -1); return; }
      std::vector<T> buf(m * n), u, vt;
      to_colmajor(src, m, n, buf.data(), ld_of(m));
      if (attrs.compute_uv) {
        // Identity where LAPACK returns early (an empty matrix): torch's U and Vh of 0 x n inputs.
        u.assign(m * ucols, T(0));
        vt.assign(vrows * n, T(0));
        for (int64_t i = 0; i < std::min(m, ucols); ++i) u[i + i * m] = T(1);
        for (int64_t i = 0; i < std::min(vrows, n); ++i) vt[i + i * ld_of(vrows)] = T(1);
      }
      T* s = S.data<T>() + b * k;
      const lint r = k > 0 ? gesdd<T>(jobz, m, n, buf.data(), s, attrs.compute_uv ? u.data() : nullptr, ld_of(m),
                                      attrs.compute_uv ? vt.data() : nullptr, ld_of(vrows))
                           : 0;
      if (r != 0) { bad.record(b, r); return; }
      if (attrs.compute_uv) {
        from_colmajor(u.data(), m, ucols, ld_of(m), U.data<T>() + b * m * ucols);
        from_colmajor(vt.data(), vrows, n, ld_of(vrows), Vh.data<T>() + b * vrows * n);
      }
    });
    if (!bad.failed()) return;
    const int64_t code = bad.code;
    check_no_argument_error("linalg.svd", code < -1 ? static_cast<lint>(code) : 0);
    EMBER_CHECK_KIND(code != -1, ErrorKind::LinAlg, "[linalg.svd] ", batch_prefix(A, bad.batch),
                     "The algorithm failed to converge because the input matrix contained non-finite values.");
    fail(ErrorKind::LinAlg, "[linalg.svd] ", batch_prefix(A, bad.batch), "The algorithm failed to converge because "
         "the input matrix is ill-conditioned or has too many repeated singular values (error code: ", code, ").");
  });
}

void linalg_eigh(const KernelArgs& a, const LinalgEighAttrs& attrs) {
  const Tensor& A = a.in[0];
  const Tensor &L = a.out[0], &V = a.out[1];
  const int64_t n = A.sizes()[A.dim() - 1];
  dispatch_lapack(A.dtype(), "linalg.eigh", [&]<typename T>() {
    FirstFailure bad;
    for_each_matrix(batch_of(A), [&](int64_t b) {
      std::vector<T> buf(n * n);
      to_colmajor(A.data<T>() + b * n * n, n, n, buf.data(), ld_of(n));
      const lint r = n > 0 ? syevd<T>(attrs.compute_v ? 'V' : 'N', attrs.upper ? 'U' : 'L', n, buf.data(),
                                      L.data<T>() + b * n)
                           : 0;
      if (r != 0) { bad.record(b, r); return; }
      if (attrs.compute_v) from_colmajor(buf.data(), n, n, ld_of(n), V.data<T>() + b * n * n);
    });
    if (!bad.failed()) return;
    check_no_argument_error("linalg.eigh", static_cast<lint>(std::min<int64_t>(bad.code, 0)));
    fail(ErrorKind::LinAlg, "[linalg.eigh] ", batch_prefix(A, bad.batch), "The algorithm failed to converge because "
         "the input matrix is ill-conditioned or has too many repeated eigenvalues (error code: ", bad.code.load(),
         ").");
  });
}

// Row-major trsm straight on the output (a copy of B): no column-major round trip needed.
void linalg_solve_triangular(const KernelArgs& a, const LinalgSolveTriangularAttrs& attrs) {
  const Tensor &A = a.in[0], &B = a.in[1];
  const Tensor& X = a.out[0];
  const int64_t n = A.sizes()[A.dim() - 1], rows = B.sizes()[B.dim() - 2], cols = B.sizes()[B.dim() - 1];
  if (X.numel() == 0) return;
  dispatch_lapack(A.dtype(), "linalg.solve_triangular", [&]<typename T>() {
    for_each_matrix(batch_of(B), [&](int64_t b) {
      T* x = X.data<T>() + b * rows * cols;
      std::copy(B.data<T>() + b * rows * cols, B.data<T>() + (b + 1) * rows * cols, x);
      const T* am = A.data<T>() + b * n * n;
      const auto side = attrs.left ? CblasLeft : CblasRight;
      const auto uplo = attrs.upper ? CblasUpper : CblasLower;
      const auto diag = attrs.unitriangular ? CblasUnit : CblasNonUnit;
      if constexpr (kF<T>)
        scipy_cblas_strsm(CblasRowMajor, side, uplo, CblasNoTrans, diag, rows, cols, 1.0f, am, ld_of(n), x, ld_of(cols));
      else
        scipy_cblas_dtrsm(CblasRowMajor, side, uplo, CblasNoTrans, diag, rows, cols, 1.0, am, ld_of(n), x, ld_of(cols));
    });
  });
}

}  // namespace ember::cpu
