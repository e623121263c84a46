// Backward rules of the matrix decompositions and solvers (spec: decomp.yaml). The formulas are
// torch's (torch/csrc/autograd/FunctionsManual.cpp, for real inputs), written with ember ops, so
// they run on every device and are differentiable again. Gradients of outputs that received none
// count as zero; where a formula divides by differences of eigen/singular values, the outputs that
// received no gradient are left out instead (svdvals, eigvalsh), as torch does.
#include <limits>

#include "autograd/node.h"
#include "generated/kernels_decomp.h"
#include "ops/formula.h"
#include "ops/ops.h"

namespace ember::backward {
namespace {

Tensor mT(const Tensor& t) { return transpose(t, -2, -1); }

Tensor identity_like(const Tensor& A) {
  return eye(A.sizes()[A.dim() - 1], std::nullopt, A.dtype(), A.device());
}

// The batch of diagonal matrices with v's last dim on the diagonal.
Tensor diag_matrix(const Tensor& v) {
  return unsqueeze(v, -1) * eye(v.sizes()[v.dim() - 1], std::nullopt, v.dtype(), v.device());
}

// E_ij = d_j - d_i off the diagonal and 1 on it (the diagonal of what E divides is zero anyway).
Tensor differences(const Tensor& d) {
  return (unsqueeze(d, -2) - unsqueeze(d, -1)) + eye(d.sizes()[d.dim() - 1], std::nullopt, d.dtype(), d.device());
}

// prod_{j != i} s_j for every i, without dividing (zeros allowed): exclusive prefix and suffix products.
Tensor products_of_others(const Tensor& s) {
  const int64_t n = s.sizes()[s.dim() - 1];
  const int64_t last[1] = {-1};
  const Tensor one = ones_like(narrow(s, -1, 0, 1));
  const Tensor before = cat({one, narrow(cumprod(s, -1, std::nullopt), -1, 0, n - 1)}, -1);
  const Tensor after = flip(cat({one, narrow(cumprod(flip(s, IntSpan(last, 1)), -1, std::nullopt), -1, 0, n - 1)}, -1),
                            IntSpan(last, 1));
  return before * after;
}

}  // namespace

void linalg_lu_factor_ex(BackwardCtx&, const NoAttrs&) {
  fail(ErrorKind::NotImplemented, "[linalg.lu_factor] differentiating through the LU factors is not implemented in "
       "ember; linalg.solve, linalg.inv, linalg.det and linalg.slogdet are differentiable");
}

// X = A^{-1} B (or A^{-T} B): gB = A^{-T} g (or A^{-1} g). LU is not differentiated.
void linalg_lu_solve(BackwardCtx& ctx, const LinalgLuSolveAttrs& attrs) {
  EMBER_CHECK_KIND(!ctx.needs_grad(0), ErrorKind::NotImplemented, "[linalg.lu_solve] the gradient with respect to "
                   "LU is not implemented in ember (use linalg.solve(A, B) to differentiate with respect to A)");
  if (ctx.needs_grad(2))
    ctx.set_grad(2, linalg_lu_solve(ctx.input(0), ctx.input(1), ctx.grad(0), !attrs.adjoint));
}

// A X = B: gB = A^{-T} gX, gA = -gB X^T.
void linalg_solve_ex(BackwardCtx& ctx, const NoAttrs&) {
  const Tensor gB = linalg_solve(mT(ctx.input(0)), ctx.grad(0), true);
  if (ctx.needs_grad(0)) ctx.set_grad(0, -matmul(gB, mT(ctx.output(0))));
  if (ctx.needs_grad(1)) ctx.set_grad(1, gB);
}

// d(A^{-1}) = -A^{-1} dA A^{-1}: gA = -A^{-T} g A^{-T}.
void linalg_inv_ex(BackwardCtx& ctx, const NoAttrs&) {
  const Tensor inv_t = mT(ctx.output(0));
  ctx.set_grad(0, -matmul(inv_t, matmul(ctx.grad(0), inv_t)));
}

// g det(A) A^{-T}; for (nearly) singular matrices the adjugate from the SVD A = U S V^T:
// adj(A)^T = det(U) det(V) U diag(prod_{j != i} s_j) V^T (torch's choice, differentiable too).
void linalg_det(BackwardCtx& ctx, const NoAttrs&) {
  const Tensor A = ctx.input(0), det = ctx.output(0), g = ctx.grad(0);
  if (A.numel() == 0) { ctx.set_grad(0, zeros_like(A)); return; }
  const double eps = A.dtype() == ScalarType::Float32 ? std::numeric_limits<float>::epsilon()
                                                      : std::numeric_limits<double>::epsilon();
  const Tensor near_singular = any(lt(abs(det), 100.0 * eps));
  if (!to_device(near_singular, Device()).data<bool>()[0]) {
    ctx.set_grad(0, linalg_solve(mT(A), unsqueeze(unsqueeze(g * det, -1), -1) * identity_like(A), true));
    return;
  }
  auto [U, S, Vh] = linalg_svd(A, true, true);
  const Tensor alpha = linalg_det(U) * linalg_det(Vh) * g;
  const Tensor D = unsqueeze(alpha, -1) * products_of_others(S);
  ctx.set_grad(0, matmul(U * unsqueeze(D, -2), Vh));
}

// log|det A| has gradient A^{-T}; the sign has none.
void linalg_slogdet(BackwardCtx& ctx, const NoAttrs&) {
  if (!ctx.has_grad(1)) { ctx.set_grad(0, zeros_like(ctx.input(0))); return; }
  const Tensor A = ctx.input(0);
  ctx.set_grad(0, linalg_solve(mT(A), unsqueeze(unsqueeze(ctx.grad(1), -1), -1) * identity_like(A), true));
}

// A = L L^T (Murray 2016, arXiv:1602.07527): gA = sym(L^{-T} Phi(L^T gL) L^{-1}), Phi keeping the
// lower triangle with a halved diagonal; upper=True works on L = U^T.
void linalg_cholesky_ex(BackwardCtx& ctx, const LinalgCholeskyExAttrs& attrs) {
  const Tensor L = attrs.upper ? mT(ctx.output(0)) : ctx.output(0);
  const Tensor gL = attrs.upper ? mT(ctx.grad(0)) : ctx.grad(0);
  const Tensor I = identity_like(L);
  const Tensor L_inv = linalg_solve_triangular(L, expand(I, L.sizes()), false, true, false);
  const Tensor phi = tril(matmul(mT(L), gL)) * (1.0 - I * 0.5);
  const Tensor gA = matmul(matmul(mT(L_inv), phi), L_inv);
  ctx.set_grad(0, (gA + mT(gA)) * 0.5);
}

// torch's linalg_qr_backward (real case). m >= n: gA = (gQ + Q copyltu(M)) R^{-T} with
// M = gR R^T - Q^T gQ; m < n: A = [X | Y] splits into X's square problem and gR's share of Y.
void linalg_qr(BackwardCtx& ctx, const LinalgQrAttrs& attrs) {
  EMBER_CHECK(attrs.compute_q, "[linalg.qr] The derivative of linalg.qr depends on Q, which is not computed when "
              "mode='r'. Please use linalg.qr(A, mode='reduced') if you are going to differentiate through linalg.qr.");
  const Tensor Q = ctx.output(0), R = ctx.output(1);
  const int64_t m = Q.sizes()[Q.dim() - 2], n = R.sizes()[R.dim() - 1];
  EMBER_CHECK(!attrs.complete || m <= n, "[linalg.qr] The QR decomposition is not differentiable when "
              "mode='complete' and nrows > ncols.");
  const Tensor gQ = ctx.grad(0), gR = ctx.grad(1);
  const Tensor M = matmul(gR, mT(R)) - matmul(mT(Q), gQ);
  if (m >= n) {
    const Tensor sym = triu(M) + tril(mT(M), -1);
    const Tensor gA = matmul(Q, sym) + gQ;
    ctx.set_grad(0, linalg_solve_triangular(mT(R), gA, false, false, false));
    return;
  }
  const Tensor skew = -(M - mT(M));
  Tensor gA = matmul(Q, tril(skew));
  gA = linalg_solve_triangular(mT(narrow(R, -1, 0, m)), gA, false, false, false);
  DimVector pad = gA.sizes();
  pad.back() = n - m;
  gA = cat({gA, zeros(pad, gA.dtype(), gA.device())}, -1);
  ctx.set_grad(0, gA + matmul(Q, gR));
}

// torch's svd_backward (real case, distinct singular values; rectangular A full-rank). With
// full_matrices only the first k columns of U / rows of Vh carry information.
void linalg_svd(BackwardCtx& ctx, const LinalgSvdAttrs& attrs) {
  EMBER_CHECK(attrs.compute_uv, "[linalg.svd] the backward needs U and Vh: call it with compute_uv=True");
  Tensor U = ctx.output(0), S = ctx.output(1), Vh = ctx.output(2);
  const int64_t m = U.sizes()[U.dim() - 2], n = Vh.sizes()[Vh.dim() - 1], k = S.sizes()[S.dim() - 1];
  const bool has_gU = ctx.has_grad(0), has_gVh = ctx.has_grad(2);
  Tensor gU = ctx.grad(0), gVh = ctx.grad(2);
  if (attrs.full_matrices) {
    U = narrow(U, -1, 0, k);
    Vh = narrow(Vh, -2, 0, k);
    gU = narrow(gU, -1, 0, k);
    gVh = narrow(gVh, -2, 0, k);
  }
  const Tensor gS = ctx.grad(1);
  if (!has_gU && !has_gVh) {  // svdvals: gA = U diag(gS) Vh
    ctx.set_grad(0, matmul(U * unsqueeze(gS, -2), Vh));
    return;
  }
  auto skew = [](const Tensor& X) { return X - mT(X); };
  const Tensor E = differences(S * S);
  Tensor inner = zeros_like(E);
  if (has_gU) inner = inner + skew(matmul(mT(U), gU)) * unsqueeze(S, -2);
  if (has_gVh) inner = inner + unsqueeze(S, -1) * skew(matmul(Vh, mT(gVh)));
  inner = inner / E + diag_matrix(gS);
  Tensor gA;
  if (m > n && has_gU) {
    const Tensor gU_Sinv = gU / unsqueeze(S, -2);
    gA = matmul(matmul(U, inner) + gU_Sinv - matmul(U, matmul(mT(U), gU_Sinv)), Vh);
  } else if (m < n && has_gVh) {
    const Tensor Sinv_gVh = gVh / unsqueeze(S, -1);
    gA = matmul(U, matmul(inner, Vh) + Sinv_gVh - matmul(matmul(Sinv_gVh, mT(Vh)), Vh));
  } else {
    gA = matmul(U, matmul(inner, Vh));
  }
  ctx.set_grad(0, gA);
}

// A = V diag(L) V^T: gA = V (diag(gL) + skew-part(V^T gV) / E) V^T, E_ij = L_j - L_i (torch's
// linalg_eig_backward, Hermitian case; like torch, the result is not symmetrized).
void linalg_eigh(BackwardCtx& ctx, const LinalgEighAttrs& attrs) {
  EMBER_CHECK(attrs.compute_v, "[linalg.eigh] the backward needs the eigenvectors: call it with compute_v=True");
  const Tensor L = ctx.output(0), V = ctx.output(1);
  const Tensor gL = ctx.grad(0);
  if (!ctx.has_grad(1)) {  // eigvalsh
    ctx.set_grad(0, matmul(V * unsqueeze(gL, -2), mT(V)));
    return;
  }
  const Tensor VtgV = matmul(mT(V), ctx.grad(1));
  const Tensor inner = (VtgV - mT(VtgV)) * 0.5 / differences(L) + diag_matrix(gL);
  ctx.set_grad(0, matmul(V, matmul(inner, mT(V))));
}

// X = A^{-1} B (left) or B A^{-1}: gB = A^{-T} g (or g A^{-T}), gA = -gB X^T (or -X^T gB)
// projected onto A's triangle (strictly, for unitriangular).
void linalg_solve_triangular(BackwardCtx& ctx, const LinalgSolveTriangularAttrs& attrs) {
  const Tensor A = ctx.input(0), X = ctx.output(0);
  const Tensor gB = linalg_solve_triangular(mT(A), ctx.grad(0), !attrs.upper, attrs.left, attrs.unitriangular);
  if (ctx.needs_grad(0)) {
    const Tensor gA = attrs.left ? -matmul(gB, mT(X)) : -matmul(mT(X), gB);
    const int64_t unit = attrs.unitriangular ? 1 : 0;
    ctx.set_grad(0, attrs.upper ? triu(gA, unit) : tril(gA, -unit));
  }
  if (ctx.needs_grad(1)) ctx.set_grad(1, gB);
}

}  // namespace ember::backward
