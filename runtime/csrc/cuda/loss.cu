// CUDA kernels of the fused softmax cross-entropy (Note [Fused cross-entropy], ops/loss.cpp).
//   forward:  one warp per row for C <= 1024 (the LM-vocab hot case, e.g. C = 65), one block per row
//             above; lane/thread 0 writes the row's loss (or its acc-type partial) and lse. 'sum' and
//             'mean' then run one single-block kernel that adds the partials in a fixed order
//             (deterministic, no float atomics) and counts the rows that are not ignored.
//   backward: same row mapping, one pass (softmax from the saved lse); 'mean' first runs a
//             single-block kernel computing grad / n_valid.
// Accumulation in float (double for float64). Target validation follows Note [CUDA index
// validation] (cuda/index.cu): rows whose target is outside [0, C) are treated as ignored by every
// kernel; outside graph capture the forward records the first such row (integer atomicMin) and the
// host raises IndexError after one stream sync.
#include <cmath>

#include "cuda/block_reduce.cuh"
#include "cuda/loops.cuh"
#include "generated/kernels_nn.h"
#include "ops/loss.h"

namespace ember::cuda {
namespace {

constexpr int kWarpRowsMaxC = 1024;  // C at or below: one warp per row
constexpr int kRowBlock = 512;       // threads of the block-per-row kernels
constexpr int kReduceBlock = 1024;   // threads of the single-block reduction kernels
constexpr unsigned long long kNoBadRow = ~0ull;

// Spelled out per precision: expf/logf are the fast float forms.
__device__ __forceinline__ float exp_acc(float v) { return expf(v); }
__device__ __forceinline__ double exp_acc(double v) { return ::exp(v); }
__device__ __forceinline__ float log_acc(float v) { return logf(v); }
__device__ __forceinline__ double log_acc(double v) { return ::log(v); }

__device__ __forceinline__ bool is_counted(int64_t t, int64_t C, int64_t ignore_index) {
  return t != ignore_index && t >= 0 && t < C;
}

struct ForwardArgs {
  int64_t rows, C, ignore_index;
  double label_smoothing;
  unsigned long long* bad_row;  // null during graph capture
};

// Called by every thread of the row's group; `start`/`step` split the row among them.
template <typename T, typename A>
__device__ __forceinline__ void row_partials(const T* x, int64_t C, int64_t start, int64_t step, A& m, A& sx) {
  m = -INFINITY;
  sx = 0;
  for (int64_t j = start; j < C; j += step) {
    const A v = cvt<A>(x[j]);
    m = (v > m || v != v) ? v : m;
    sx += v;
  }
}
template <typename T, typename A>
__device__ __forceinline__ A row_sum_exp(const T* x, int64_t C, int64_t start, int64_t step, A m) {
  A s = 0;
  for (int64_t j = start; j < C; j += step) s += exp_acc(cvt<A>(x[j]) - m);
  return s;
}

// Writes the row's loss: into `loss` (dtype T) for 'none', else into the acc-type `partial`.
template <typename T, typename A>
__device__ __forceinline__ void write_row(int64_t row, A l, A lse_v, T* loss, A* partial, A* lse) {
  lse[row] = lse_v;
  if (partial) partial[row] = l;
  else loss[row] = cvt<T>(l);
}

template <typename A>
__device__ __forceinline__ A row_loss(const ForwardArgs& p, A m, A s, A sx, A xt) {
  const A log_s = log_acc(s);
  A l = (m - xt) + log_s;  // lse - x[t] without rounding lse first
  if (p.label_smoothing > 0) {
    const A ls = static_cast<A>(p.label_smoothing);
    l = (A(1) - ls) * l + ls * ((m - sx / static_cast<A>(p.C)) + log_s);
  }
  return l;
}

// Ignored or out-of-range target: loss 0; out-of-range ones are reported to the host.
template <typename T, typename A>
__device__ __forceinline__ bool skip_row(const ForwardArgs& p, int64_t row, int64_t t, T* loss, A* partial, A* lse) {
  if (is_counted(t, p.C, p.ignore_index)) return false;
  if (t != p.ignore_index && p.bad_row) atomicMin(p.bad_row, static_cast<unsigned long long>(row));
  write_row<T, A>(row, A(0), A(0), loss, partial, lse);
  return true;
}

template <typename T>
__global__ void ce_forward_warp_kernel(const T* __restrict__ x, const int64_t* __restrict__ target, T* loss,
                                       acc_t<T>* partial, acc_t<T>* lse, ForwardArgs p) {
  using A = acc_t<T>;
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (row >= p.rows) return;  // uniform per warp: blockDim is a multiple of 32
  const int64_t t = target[row];
  if (!is_counted(t, p.C, p.ignore_index)) {
    if (lane == 0) skip_row<T, A>(p, row, t, loss, partial, lse);
    return;
  }
  const T* xr = x + row * p.C;
  A m, sx;
  row_partials<T, A>(xr, p.C, lane, 32, m, sx);
  m = warp_max(m);
  A s = warp_sum(row_sum_exp<T, A>(xr, p.C, lane, 32, m));
  sx = warp_sum(sx);
  if (lane == 0) write_row<T, A>(row, row_loss<A>(p, m, s, sx, cvt<A>(xr[t])), m + log_acc(s), loss, partial, lse);
}

template <typename T>
__global__ void ce_forward_block_kernel(const T* __restrict__ x, const int64_t* __restrict__ target, T* loss,
                                        acc_t<T>* partial, acc_t<T>* lse, ForwardArgs p) {
  using A = acc_t<T>;
  __shared__ A red[32];
  const int64_t row = blockIdx.x;
  const int64_t t = target[row];
  if (!is_counted(t, p.C, p.ignore_index)) {  // uniform per block
    if (threadIdx.x == 0) skip_row<T, A>(p, row, t, loss, partial, lse);
    return;
  }
  const T* xr = x + row * p.C;
  A m, sx;
  row_partials<T, A>(xr, p.C, threadIdx.x, blockDim.x, m, sx);
  m = block_max(m, red);
  A s = block_sum(row_sum_exp<T, A>(xr, p.C, threadIdx.x, blockDim.x, m), red);
  sx = block_sum(sx, red);
  if (threadIdx.x == 0)
    write_row<T, A>(row, row_loss<A>(p, m, s, sx, cvt<A>(xr[t])), m + log_acc(s), loss, partial, lse);
}

// One block: out = sum(partial) (or / n_valid for 'mean'); fixed thread-to-row map and tree order.
template <typename T>
__global__ void ce_reduce_kernel(const acc_t<T>* partial, const int64_t* target, T* out, int64_t rows, int64_t C,
                                 int64_t ignore_index, bool mean) {
  using A = acc_t<T>;
  __shared__ A red[32];
  __shared__ long long red_count[32];
  A s = 0;
  long long n = 0;
  for (int64_t i = threadIdx.x; i < rows; i += blockDim.x) {
    s += partial[i];
    n += is_counted(target[i], C, ignore_index);
  }
  s = block_sum(s, red);
  n = block_sum(n, red_count);
  if (threadIdx.x == 0) out[0] = cvt<T>(mean ? s / static_cast<A>(n) : s);  // 0/0 = nan, like torch
}

// One block: scale[0] = grad / n_valid ('mean' backward).
template <typename T>
__global__ void ce_mean_scale_kernel(const T* grad, const int64_t* target, acc_t<T>* scale, int64_t rows, int64_t C,
                                     int64_t ignore_index) {
  using A = acc_t<T>;
  __shared__ long long red_count[32];
  long long n = 0;
  for (int64_t i = threadIdx.x; i < rows; i += blockDim.x) n += is_counted(target[i], C, ignore_index);
  n = block_sum(n, red_count);
  if (threadIdx.x == 0) scale[0] = cvt<A>(grad[0]) / static_cast<A>(n);
}

struct BackwardArgs {
  int64_t rows, C, ignore_index;
  double label_smoothing;
  int64_t grad_stride;  // 1: one grad per row ('none'); 0: one scalar ('sum')
};

// grad_x[row, j] = g * (exp(x - lse) - ls / C - (1 - ls) [j == t]); zeros for uncounted rows.
template <typename T>
__device__ __forceinline__ void backward_row(const T* __restrict__ grad, const acc_t<T>* mean_scale,
                                             const T* __restrict__ x, const int64_t* __restrict__ target,
                                             const acc_t<T>* __restrict__ lse, T* gx, const BackwardArgs& p,
                                             int64_t row, int64_t start, int64_t step) {
  using A = acc_t<T>;
  T* gr = gx + row * p.C;
  const int64_t t = target[row];
  if (!is_counted(t, p.C, p.ignore_index)) {
    for (int64_t j = start; j < p.C; j += step) gr[j] = cvt<T>(A(0));
    return;
  }
  const T* xr = x + row * p.C;
  const A g = mean_scale ? mean_scale[0] : cvt<A>(grad[row * p.grad_stride]);
  const A l = lse[row];
  const A off = static_cast<A>(p.label_smoothing / static_cast<double>(p.C));
  const A on = static_cast<A>(1.0 - p.label_smoothing);
  for (int64_t j = start; j < p.C; j += step) {
    const A d = exp_acc(cvt<A>(xr[j]) - l) - off - (j == t ? on : A(0));
    gr[j] = cvt<T>(g * d);
  }
}

template <typename T>
__global__ void ce_backward_warp_kernel(const T* grad, const acc_t<T>* mean_scale, const T* x, const int64_t* target,
                                        const acc_t<T>* lse, T* gx, BackwardArgs p) {
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (row >= p.rows) return;
  backward_row<T>(grad, mean_scale, x, target, lse, gx, p, row, threadIdx.x % 32, 32);
}

template <typename T>
__global__ void ce_backward_block_kernel(const T* grad, const acc_t<T>* mean_scale, const T* x, const int64_t* target,
                                         const acc_t<T>* lse, T* gx, BackwardArgs p) {
  backward_row<T>(grad, mean_scale, x, target, lse, gx, p, blockIdx.x, threadIdx.x, blockDim.x);
}

// Raises the IndexError of the CPU kernel for the first out-of-range row the forward recorded.
void report_bad_target(const Tensor& bad_row, const Tensor& target, int64_t C, cudaStream_t stream) {
  unsigned long long row = kNoBadRow;
  EMBER_CUDA_CHECK(cudaMemcpyAsync(&row, bad_row.data_ptr(), sizeof(row), cudaMemcpyDeviceToHost, stream));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (row == kNoBadRow) return;
  int64_t t = 0;
  EMBER_CUDA_CHECK(cudaMemcpyAsync(&t, target.data<int64_t>() + row, sizeof(t), cudaMemcpyDeviceToHost, stream));
  EMBER_CUDA_CHECK(cudaStreamSynchronize(stream));
  fail(ErrorKind::Index, "[nll_loss] target ", t, " is out of bounds for ", C, " classes");
}

}  // namespace

void cross_entropy_loss(const KernelArgs& args, const CrossEntropyAttrs& attrs) {
  const Tensor& loss = args.out[0];
  const Tensor& lse = args.out[1];
  DeviceGuard guard(loss.device());
  const Tensor x = contiguous_as(args.in[0], args.in[0].dtype());
  const Tensor target = contiguous_as(args.in[1], ScalarType::Int64);
  const int64_t rows = x.sizes()[0], C = x.sizes()[1];
  const auto reduction = static_cast<LossReduction>(attrs.reduction);
  cudaStream_t stream = current_stream();
  ForwardArgs p{rows, C, attrs.ignore_index, attrs.label_smoothing, nullptr};
  Tensor bad_row;
  if (rows > 0 && !is_capturing(stream)) {  // see Note [CUDA index validation] (cuda/index.cu)
    bad_row = Tensor::empty(DimVector{1}, ScalarType::Int64, loss.device());
    EMBER_CUDA_CHECK(cudaMemsetAsync(bad_row.data_ptr(), 0xff, sizeof(unsigned long long), stream));
    p.bad_row = static_cast<unsigned long long*>(bad_row.data_ptr());
  }
  const bool reduced = reduction != LossReduction::None;
  Tensor partial = reduced ? Tensor::empty(DimVector{rows}, lse.dtype(), loss.device()) : Tensor();
  EMBER_CUDA_DISPATCH_FLOAT(x.dtype(), "cross_entropy_loss", [&]<typename T>() {
    using A = acc_t<T>;
    T* out = loss.data<T>();
    A* part = reduced ? partial.data<A>() : nullptr;
    if (rows > 0) {
      if (C <= kWarpRowsMaxC) {
        ce_forward_warp_kernel<T><<<blocks_for(rows * 32), kBlock, 0, stream>>>(x.data<T>(), target.data<int64_t>(),
                                                                                 out, part, lse.data<A>(), p);
      } else {
        ce_forward_block_kernel<T><<<rows, kRowBlock, 0, stream>>>(x.data<T>(), target.data<int64_t>(), out, part,
                                                                   lse.data<A>(), p);
      }
      EMBER_CUDA_KERNEL_CHECK();
    }
    if (reduced) {  // also for rows == 0: writes 0 ('sum') or nan ('mean')
      ce_reduce_kernel<T><<<1, kReduceBlock, 0, stream>>>(part, target.data<int64_t>(), out, rows, C, p.ignore_index,
                                                          reduction == LossReduction::Mean);
      EMBER_CUDA_KERNEL_CHECK();
    }
  });
  if (bad_row.defined()) report_bad_target(bad_row, target, C, stream);
}

void cross_entropy_backward(const KernelArgs& args, const CrossEntropyAttrs& attrs) {
  const Tensor& gx = args.out[0];
  if (gx.numel() == 0) return;
  DeviceGuard guard(gx.device());
  const Tensor grad = contiguous_as(args.in[0], gx.dtype());
  const Tensor x = contiguous_as(args.in[1], gx.dtype());
  const Tensor target = contiguous_as(args.in[2], ScalarType::Int64);
  const Tensor lse = contiguous_as(args.in[3], args.in[3].dtype());
  const int64_t rows = x.sizes()[0], C = x.sizes()[1];
  const auto reduction = static_cast<LossReduction>(attrs.reduction);
  cudaStream_t stream = current_stream();
  BackwardArgs p{rows, C, attrs.ignore_index, attrs.label_smoothing, reduction == LossReduction::None ? 1 : 0};
  // The frontend allocates gx contiguous; write into a scratch one otherwise (never expected).
  Tensor y = gx.is_contiguous() ? gx : Tensor::empty(gx.sizes(), gx.dtype(), gx.device());
  Tensor scale = reduction == LossReduction::Mean ? Tensor::empty(DimVector{1}, lse.dtype(), gx.device()) : Tensor();
  EMBER_CUDA_DISPATCH_FLOAT(x.dtype(), "cross_entropy_backward", [&]<typename T>() {
    using A = acc_t<T>;
    A* sc = scale.defined() ? scale.data<A>() : nullptr;
    if (sc) {
      ce_mean_scale_kernel<T><<<1, kReduceBlock, 0, stream>>>(grad.data<T>(), target.data<int64_t>(), sc, rows, C,
                                                              p.ignore_index);
      EMBER_CUDA_KERNEL_CHECK();
    }
    if (C <= kWarpRowsMaxC) {
      ce_backward_warp_kernel<T><<<blocks_for(rows * 32), kBlock, 0, stream>>>(
          grad.data<T>(), sc, x.data<T>(), target.data<int64_t>(), lse.data<A>(), y.data<T>(), p);
    } else {
      ce_backward_block_kernel<T><<<rows, kRowBlock, 0, stream>>>(grad.data<T>(), sc, x.data<T>(),
                                                                  target.data<int64_t>(), lse.data<A>(), y.data<T>(), p);
    }
    EMBER_CUDA_KERNEL_CHECK();
  });
  if (!y.is_same(gx)) copy_kernel(gx, y);
}

}  // namespace ember::cuda
