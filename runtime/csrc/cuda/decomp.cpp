// CUDA "kernels" of the matrix decompositions and solvers (spec/decomp.yaml).
//
// Note [linalg on CUDA]
// They run the CPU LAPACK kernels (cpu/lapack.cpp) on host copies of the operands and copy the
// results back (run_on_host): correct and simple, but synchronizing, not graph-capturable and
// bound by PCIe for large matrices. cuSOLVER (loaded at run time like cuBLAS) would keep the work
// on the device; it is the natural next step when a CUDA user needs large or many factorizations.
// EMBER_CUDA_LOG_FALLBACK=1 reports each op that takes this path.
#include "cuda/internal.h"
#include "generated/kernels_decomp.h"

namespace ember::cuda {

void linalg_lu_factor_ex(const KernelArgs& args, const NoAttrs& attrs) {
  run_on_host(args, [&](const KernelArgs& h) { cpu::linalg_lu_factor_ex(h, attrs); });
}
void linalg_lu_solve(const KernelArgs& args, const LinalgLuSolveAttrs& attrs) {
  run_on_host(args, [&](const KernelArgs& h) { cpu::linalg_lu_solve(h, attrs); });
}
void linalg_solve_ex(const KernelArgs& args, const NoAttrs& attrs) {
  run_on_host(args, [&](const KernelArgs& h) { cpu::linalg_solve_ex(h, attrs); });
}
void linalg_inv_ex(const KernelArgs& args, const NoAttrs& attrs) {
  run_on_host(args, [&](const KernelArgs& h) { cpu::linalg_inv_ex(h, attrs); });
}
void linalg_det(const KernelArgs& args, const NoAttrs& attrs) {
  run_on_host(args, [&](const KernelArgs& h) { cpu::linalg_det(h, attrs); });
}
void linalg_slogdet(const KernelArgs& args, const NoAttrs& attrs) {
  run_on_host(args, [&](const KernelArgs& h) { cpu::linalg_slogdet(h, attrs); });
}
void linalg_cholesky_ex(const KernelArgs& args, const LinalgCholeskyExAttrs& attrs) {
  run_on_host(args, [&](const KernelArgs& h) { cpu::linalg_cholesky_ex(h, attrs); });
}
void linalg_qr(const KernelArgs& args, const LinalgQrAttrs& attrs) {
  run_on_host(args, [&](const KernelArgs& h) { cpu::linalg_qr(h, attrs); });
}
void linalg_svd(const KernelArgs& args, const LinalgSvdAttrs& attrs) {
  run_on_host(args, [&](const KernelArgs& h) { cpu::linalg_svd(h, attrs); });
}
void linalg_eigh(const KernelArgs& args, const LinalgEighAttrs& attrs) {
  run_on_host(args, [&](const KernelArgs& h) { cpu::linalg_eigh(h, attrs); });
}
void linalg_solve_triangular(const KernelArgs& args, const LinalgSolveTriangularAttrs& attrs) {
  run_on_host(args, [&](const KernelArgs& h) { cpu::linalg_solve_triangular(h, attrs); });
}

}  // namespace ember::cuda
