// Frontends of the matrix decompositions and solvers (spec: decomp.yaml; kernels: cpu/lapack.cpp,
// cuda/decomp.cpp; backward rules: ops/decomp_backward.cpp). They check shapes and dtypes with
// torch's messages, broadcast batch dims, hand contiguous batches to the kernels (Note [LAPACK
// batches]) and turn LAPACK's info into torch's errors (LinAlgError) in the checked variants.
#include <string>

#include "dispatch/dispatcher.h"
#include "generated/kernels_decomp.h"
#include "ops/ops.h"

namespace ember {
namespace {

int64_t rows_of(const Tensor& t) { return t.sizes()[t.dim() - 2]; }
int64_t cols_of(const Tensor& t) { return t.sizes()[t.dim() - 1]; }

DimVector batch_dims(const Tensor& t) { return DimVector(t.sizes().begin(), t.sizes().end() - 2); }

DimVector with_dims(DimVector batch, std::initializer_list<int64_t> dims) {
  for (int64_t d : dims) batch.push_back(d);
  return batch;
}

// torch's checks of a (batch of) matrix input, in torch's words.
void check_matrix(const char* api, const Tensor& A, bool square, const char* name = "A") {
  EMBER_CHECK(A.dim() >= 2, "[", api, "] The input tensor ", name, " must have at least 2 dimensions (got ",
              describe(A), ").");
  EMBER_CHECK(is_floating(A.dtype()), "[", api, "] Expected a floating point or complex tensor as input. Got ",
              torch_type_name(A.dtype()));
  EMBER_CHECK(A.dtype() == ScalarType::Float32 || A.dtype() == ScalarType::Float64, "[", api,
              "] Low precision dtypes not supported. Got ", torch_type_name(A.dtype()));
  if (square)
    EMBER_CHECK(rows_of(A) == cols_of(A), "[", api, "] ", name, " must be batches of square matrices, but they are ",
                rows_of(A), " by ", cols_of(A), " matrices");
}

void check_same_dtype(const char* api, const Tensor& A, const Tensor& B) {
  EMBER_CHECK(A.dtype() == B.dtype(), "[", api, "] Expected A and B to have the same dtype, but found A of type ",
              torch_type_name(A.dtype()), " and B of type ", torch_type_name(B.dtype()), " instead");
}

// A and B expanded to their common batch dims (their own last two dims kept), made contiguous.
std::pair<Tensor, Tensor> broadcast_batches(const char* api, const Tensor& A, const Tensor& B, int64_t b_matrix_dims) {
  const DimVector ba(A.sizes().begin(), A.sizes().end() - 2);
  const DimVector bb(B.sizes().begin(), B.sizes().end() - b_matrix_dims);
  const DimVector batch = broadcast_shapes(ba, bb, api);
  DimVector ea = batch, eb = batch;
  for (int64_t d = A.dim() - 2; d < A.dim(); ++d) ea.push_back(A.sizes()[d]);
  for (int64_t d = B.dim() - b_matrix_dims; d < B.dim(); ++d) eb.push_back(B.sizes()[d]);
  return {contiguous(expand(A, ea)), contiguous(expand(B, eb))};
}

Tensor empty_like_batch(const Tensor& A, std::initializer_list<int64_t> dims, ScalarType dtype) {
  return Tensor::empty(with_dims(batch_dims(A), dims), dtype, A.device());
}

Tensor empty_unused(const Tensor& A) { return Tensor::empty(DimVector{0}, A.dtype(), A.device()); }

}  // namespace

// ---- the ops ----------------------------------------------------------------------------------------

std::tuple<Tensor, Tensor, Tensor> linalg_lu_factor_ex(const Tensor& A) {
  check_matrix("linalg.lu_factor", A, false);
  const Tensor a = contiguous(A);
  const int64_t m = rows_of(a), n = cols_of(a);
  std::vector<Tensor> outs{Tensor::empty(a.sizes(), a.dtype(), a.device()),
                           empty_like_batch(a, {std::min(m, n)}, ScalarType::Int32),
                           Tensor::empty(batch_dims(a), ScalarType::Int32, a.device())};
  const Tensor ins[1] = {a};
  dispatch<OpId::linalg_lu_factor_ex>(ins, outs);
  return {outs[0], outs[1], outs[2]};
}

Tensor linalg_lu_solve(const Tensor& LU, const Tensor& pivots, const Tensor& B, bool adjoint) {
  const char* api = "linalg.lu_solve";
  check_matrix(api, LU, true, "LU");
  check_matrix(api, B, false, "B");
  check_same_dtype(api, LU, B);
  const int64_t n = cols_of(LU);
  EMBER_CHECK(pivots.dtype() == ScalarType::Int32 && pivots.dim() == LU.dim() - 1 &&
                  pivots.sizes()[pivots.dim() - 1] == n,
              "[", api, "] pivots must be an int32 tensor of shape [*, ", n, "] (LU's batch), got ", describe(pivots));
  EMBER_CHECK(rows_of(B) == n, "[", api, "] Incompatible shapes of A and B for the equation AX = B (", n, "x", n,
              " and ", rows_of(B), "x", cols_of(B), ")");
  // Broadcast LU (with its pivots) against B's batch.
  const DimVector batch = broadcast_shapes(batch_dims(LU), batch_dims(B), api);
  const Tensor lu = contiguous(expand(LU, with_dims(batch, {n, n})));
  const Tensor piv = contiguous(expand(pivots, with_dims(batch, {n})));
  const Tensor b = contiguous(expand(B, with_dims(batch, {n, cols_of(B)})));
  return dispatch1<OpId::linalg_lu_solve>({lu, piv, b}, Tensor::empty(b.sizes(), b.dtype(), b.device()),
                                          {.adjoint = adjoint});
}

std::pair<Tensor, Tensor> linalg_solve_ex(const Tensor& A, const Tensor& B) {
  const char* api = "linalg.solve";
  check_matrix(api, A, true);
  check_matrix(api, B, false, "B");
  check_same_dtype(api, A, B);
  EMBER_CHECK(rows_of(B) == cols_of(A), "[", api, "] Incompatible shapes of A and B for the equation AX = B (",
              rows_of(A), "x", cols_of(A), " and ", rows_of(B), "x", cols_of(B), ")");
  auto [a, b] = broadcast_batches(api, A, B, 2);
  std::vector<Tensor> outs{Tensor::empty(b.sizes(), b.dtype(), b.device()),
                           Tensor::empty(batch_dims(a), ScalarType::Int32, a.device())};
  const Tensor ins[2] = {a, b};
  dispatch<OpId::linalg_solve_ex>(ins, outs);
  return {outs[0], outs[1]};
}

std::pair<Tensor, Tensor> linalg_inv_ex(const Tensor& A) {
  check_matrix("linalg.inv", A, true);
  const Tensor a = contiguous(A);
  std::vector<Tensor> outs{Tensor::empty(a.sizes(), a.dtype(), a.device()),
                           Tensor::empty(batch_dims(a), ScalarType::Int32, a.device())};
  const Tensor ins[1] = {a};
  dispatch<OpId::linalg_inv_ex>(ins, outs);
  return {outs[0], outs[1]};
}

Tensor linalg_det(const Tensor& A) {
  check_matrix("linalg.det", A, true);
  const Tensor a = contiguous(A);
  return dispatch1<OpId::linalg_det>({a}, Tensor::empty(batch_dims(a), a.dtype(), a.device()));
}

std::pair<Tensor, Tensor> linalg_slogdet(const Tensor& A) {
  check_matrix("linalg.slogdet", A, true);
  const Tensor a = contiguous(A);
  std::vector<Tensor> outs{Tensor::empty(batch_dims(a), a.dtype(), a.device()),
                           Tensor::empty(batch_dims(a), a.dtype(), a.device())};
  const Tensor ins[1] = {a};
  dispatch<OpId::linalg_slogdet>(ins, outs);
  return {outs[0], outs[1]};
}

std::pair<Tensor, Tensor> linalg_cholesky_ex(const Tensor& A, bool upper) {
  check_matrix("linalg.cholesky", A, true);
  const Tensor a = contiguous(A);
  std::vector<Tensor> outs{Tensor::empty(a.sizes(), a.dtype(), a.device()),
                           Tensor::empty(batch_dims(a), ScalarType::Int32, a.device())};
  const Tensor ins[1] = {a};
  dispatch<OpId::linalg_cholesky_ex>(ins, outs, {.upper = upper});
  return {outs[0], outs[1]};
}

std::pair<Tensor, Tensor> linalg_qr(const Tensor& A, std::string_view mode) {
  EMBER_CHECK(mode == "reduced" || mode == "complete" || mode == "r", "[linalg.qr] qr received unrecognized mode '",
              mode, "' but expected one of 'reduced' (default), 'r', or 'complete'");
  check_matrix("linalg.qr", A, false);
  const Tensor a = contiguous(A);
  const bool complete = mode == "complete", compute_q = mode != "r";
  const int64_t m = rows_of(a), n = cols_of(a), k = std::min(m, n);
  std::vector<Tensor> outs{compute_q ? empty_like_batch(a, {m, complete ? m : k}, a.dtype()) : empty_unused(a),
                           empty_like_batch(a, {complete ? m : k, n}, a.dtype())};
  const Tensor ins[1] = {a};
  dispatch<OpId::linalg_qr>(ins, outs, {.complete = complete, .compute_q = compute_q});
  return {outs[0], outs[1]};
}

std::tuple<Tensor, Tensor, Tensor> linalg_svd(const Tensor& A, bool full_matrices, bool compute_uv) {
  check_matrix("linalg.svd", A, false);
  const Tensor a = contiguous(A);
  const int64_t m = rows_of(a), n = cols_of(a), k = std::min(m, n);
  std::vector<Tensor> outs{
      compute_uv ? empty_like_batch(a, {m, full_matrices ? m : k}, a.dtype()) : empty_unused(a),
      empty_like_batch(a, {k}, a.dtype()),
      compute_uv ? empty_like_batch(a, {full_matrices ? n : k, n}, a.dtype()) : empty_unused(a)};
  const Tensor ins[1] = {a};
  dispatch<OpId::linalg_svd>(ins, outs, {.full_matrices = full_matrices, .compute_uv = compute_uv});
  return {outs[0], outs[1], outs[2]};
}

std::pair<Tensor, Tensor> linalg_eigh(const Tensor& A, bool upper, bool compute_v) {
  check_matrix("linalg.eigh", A, true);
  const Tensor a = contiguous(A);
  std::vector<Tensor> outs{empty_like_batch(a, {cols_of(a)}, a.dtype()),
                           compute_v ? Tensor::empty(a.sizes(), a.dtype(), a.device()) : empty_unused(a)};
  const Tensor ins[1] = {a};
  dispatch<OpId::linalg_eigh>(ins, outs, {.upper = upper, .compute_v = compute_v});
  return {outs[0], outs[1]};
}

Tensor linalg_solve_triangular(const Tensor& A, const Tensor& B, bool upper, bool left, bool unitriangular) {
  const char* api = "linalg.solve_triangular";
  check_matrix(api, A, true);
  check_matrix(api, B, false, "B");
  check_same_dtype(api, A, B);
  const int64_t n = cols_of(A);
  EMBER_CHECK(left ? rows_of(B) == n : cols_of(B) == n, "[", api, "] Incompatible shapes of A and B for the equation ",
              left ? "AX = B (" : "XA = B (", n, "x", n, " and ", rows_of(B), "x", cols_of(B), ")");
  auto [a, b] = broadcast_batches(api, A, B, 2);
  return dispatch1<OpId::linalg_solve_triangular>({a, b}, Tensor::empty(b.sizes(), b.dtype(), b.device()),
                                                  {.upper = upper, .left = left, .unitriangular = unitriangular});
}

// ---- checked variants ---------------------------------------------------------------------------------

namespace {
enum class LinalgFailure { kSingularInverse, kSingularSolve, kNotPositiveDefinite, kSingularLu };

// Raises torch's LinAlgError for the first matrix whose LAPACK info is nonzero.
void check_linalg_info(const char* api, const Tensor& info, const Tensor& A, LinalgFailure what) {
  if (info.numel() == 0) return;
  const Tensor host = contiguous(to_device(info, Device()));
  const int32_t* p = host.data<int32_t>();
  int64_t b = 0;
  while (b < host.numel() && p[b] == 0) ++b;
  if (b == host.numel()) return;
  const std::string where = A.dim() > 2 ? "(Batch element " + std::to_string(b) + "): " : "";
  switch (what) {
    case LinalgFailure::kSingularInverse:
      fail(ErrorKind::LinAlg, "[", api, "] ", where, "The diagonal element ", p[b], " is zero, the inversion could "
           "not be completed because the input matrix is singular.");
    case LinalgFailure::kSingularSolve:
      fail(ErrorKind::LinAlg, "[", api, "] ", where, "The solver failed because the input matrix is singular.");
    case LinalgFailure::kNotPositiveDefinite:
      fail(ErrorKind::LinAlg, "[", api, "] ", where, "The factorization could not be completed because the input is "
           "not positive-definite (the leading minor of order ", p[b], " is not positive-definite).");
    case LinalgFailure::kSingularLu:
      fail(ErrorKind::LinAlg, "[", api, "] ", where, "U[", p[b], ",", p[b], "] is zero and using it on lu_solve "
           "would result in a division by zero. If you still want to perform the factorization, consider calling "
           "linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)");
  }
}
}  // namespace

std::pair<Tensor, Tensor> linalg_lu_factor(const Tensor& A) {
  auto [LU, pivots, info] = linalg_lu_factor_ex(A);
  check_linalg_info("linalg.lu_factor", info, A, LinalgFailure::kSingularLu);
  return {LU, pivots};
}

Tensor linalg_inv(const Tensor& A) {
  auto [inv, info] = linalg_inv_ex(A);
  check_linalg_info("linalg.inv", info, A, LinalgFailure::kSingularInverse);
  return inv;
}

// torch's rules: B is a (batch of) vector(s) when it is 1-D or has exactly A's batch dims and n;
// X A = B (left=False) is solved as A^T X^T = B^T.
Tensor linalg_solve(const Tensor& A, const Tensor& B, bool left) {
  const char* api = "linalg.solve";
  check_matrix(api, A, true);
  const bool vector_case = B.dim() == 1 ||
                           (B.dim() == A.dim() - 1 && std::equal(B.sizes().begin(), B.sizes().end(), A.sizes().begin()));
  EMBER_CHECK(left || !vector_case, "[", api, "] Vector broadcasting of the left hand side is not supported for "
              "left=False. In this case linalg.solve is equivalent to B / A.squeeze(-1)");
  const Tensor b = vector_case ? unsqueeze(B, -1) : B;
  EMBER_CHECK(b.dim() >= 2, "[", api, "] The input tensor B must have at least 2 dimensions (got ", describe(B), ").");
  if (!left) {
    EMBER_CHECK(cols_of(b) == cols_of(A), "[", api, "] Incompatible shapes of A and B for the equation XA = B (",
                rows_of(A), "x", cols_of(A), " and ", rows_of(b), "x", cols_of(b), ")");
    return transpose(linalg_solve(transpose(A, -2, -1), transpose(b, -2, -1), true), -2, -1);
  }
  auto [x, info] = linalg_solve_ex(A, b);
  check_linalg_info(api, info, A, LinalgFailure::kSingularSolve);
  return vector_case ? squeeze(x, -1) : x;
}

Tensor linalg_cholesky(const Tensor& A, bool upper) {
  auto [L, info] = linalg_cholesky_ex(A, upper);
  check_linalg_info("linalg.cholesky", info, A, LinalgFailure::kNotPositiveDefinite);
  return L;
}

}  // namespace ember
