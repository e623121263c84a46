// CUDA kernels of rnn_cell_ / rnn_cell_backward_: one thread per (row, unit) of a step over the
// shared formulas (pointwise/rnn_cell.h); every operand is a contiguous [rows, width] block.
// Half types compute in float. The step's GEMM is cuBLAS (the loop in ops/rnn.cpp).
#include "cuda/loops.cuh"
#include "generated/kernels_rnn.h"
#include "pointwise/rnn_cell.h"

namespace ember::cuda {
namespace {

template <typename T> T* row0(const Tensor& t) { return t.defined() && t.numel() ? t.data<T>() : nullptr; }
template <typename T> __device__ __forceinline__ T* at_row(T* p, int64_t row, int64_t width) {
  return p ? p + row * width : nullptr;
}

template <typename T, int64_t M>
__global__ void rnn_cell_kernel(rnn::CellRow<T> base, int64_t rows, int64_t H) {
  using C = cuda_opmath_t<T>;
  const int64_t G = rnn::gate_count(M) * H, W = rnn::workspace_width(M) * H;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < rows * H;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = k / H, j = k - b * H;
    const rnn::CellRow<T> r{base.gates + b * G, at_row(base.h_gates, b, 3 * H), base.hx + b * H,
                            at_row(base.cx, b, H), base.output + b * H, base.workspace + b * W};
    rnn::cell_unit<C, M>(r, H, j);
  }
}

template <typename T, int64_t M>
__global__ void rnn_cell_backward_kernel(rnn::CellGradRow<T> base, int64_t rows, int64_t H) {
  using C = cuda_opmath_t<T>;
  const int64_t G = rnn::gate_count(M) * H, W = rnn::workspace_width(M) * H;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < rows * H;
       k += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = k / H, j = k - b * H;
    const rnn::CellGradRow<T> r{base.grad_h + b * H, base.workspace + b * W, base.h + b * H,
                                at_row(base.grad_c, b, H), base.grad_gates + b * G,
                                at_row(base.grad_h_gates, b, 3 * H), at_row(base.grad_hx, b, H)};
    rnn::cell_unit_backward<C, M>(r, H, j);
  }
}

template <typename F> void with_mode(int64_t mode, F&& body) {
  switch (mode) {
    case rnn::kRnnTanh: return body.template operator()<rnn::kRnnTanh>();
    case rnn::kRnnRelu: return body.template operator()<rnn::kRnnRelu>();
    case rnn::kLstm: return body.template operator()<rnn::kLstm>();
    default: return body.template operator()<rnn::kGru>();
  }
}

}  // namespace

void rnn_cell(const KernelArgs& a, const RnnCellAttrs& at) {
  const int64_t H = at.hidden, rows = H ? a.in[2].numel() / H : 0;
  if (rows == 0) return;
  cudaStream_t stream = current_stream();
  EMBER_CUDA_DISPATCH_FLOAT(a.in[0].dtype(), "rnn_cell", [&]<typename T>() {
    const rnn::CellRow<T> base{row0<T>(a.in[0]), row0<T>(a.in[1]), row0<T>(a.out[0]), row0<T>(a.out[1]),
                               row0<T>(a.out[2]), row0<T>(a.out[3])};
    with_mode(at.mode, [&]<int64_t M>() {
      rnn_cell_kernel<T, M><<<elementwise_grid(rows * H), kBlock, 0, stream>>>(base, rows, H);
    });
    EMBER_CUDA_KERNEL_CHECK();
  });
}

void rnn_cell_backward(const KernelArgs& a, const RnnCellAttrs& at) {
  const int64_t H = at.hidden, rows = H ? a.in[0].numel() / H : 0;
  if (rows == 0) return;
  cudaStream_t stream = current_stream();
  EMBER_CUDA_DISPATCH_FLOAT(a.in[0].dtype(), "rnn_cell_backward", [&]<typename T>() {
    const rnn::CellGradRow<T> base{row0<T>(a.in[0]), row0<T>(a.in[1]), row0<T>(a.in[2]), row0<T>(a.out[0]),
                                   row0<T>(a.out[1]), row0<T>(a.out[2]), row0<T>(a.out[3])};
    with_mode(at.mode, [&]<int64_t M>() {
      rnn_cell_backward_kernel<T, M><<<elementwise_grid(rows * H), kBlock, 0, stream>>>(base, rows, H);
    });
    EMBER_CUDA_KERNEL_CHECK();
  });
}

}  // namespace ember::cuda
