#pragma once
// GEMMs for CPU kernels that are parallel themselves (fused attention runs one task per (batch, head)
// on ember's pool): each call runs on the calling thread (Note [One thread pool] in cpu/blas.cpp).
#include <cstdint>

namespace ember::cpu {

// Sets OpenBLAS to one thread; call before the parallel region whose tasks call gemm_on_this_thread.
void single_thread_blas();
// Row-major C = alpha * op(A) @ op(B) + beta * C, op transposing when trans_*; C is m x n.
void gemm_on_this_thread(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                         int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void gemm_on_this_thread(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                         int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

}  // namespace ember::cpu
