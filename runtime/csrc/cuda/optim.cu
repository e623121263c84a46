// CUDA kernel of adam_step (Note [Fused Adam step], ops/optim.cpp): one grid-stride pass over param,
// grad, exp_avg and exp_avg_sq; 16-byte vectors when all four are contiguous and aligned, else the
// strided geometry of cuda/loops.cuh. Half types compute in float, float64 in double.
#include "cuda/loops.cuh"
#include "generated/kernels_nn.h"
#include "ops/optim.h"

namespace ember::cuda {
namespace {

// Note [adam_step on CUDA: the step count]
// The step count lives in device memory and is read by the kernel, never by the host: a captured
// CUDA graph then computes each replay's bias corrections from that replay's count (a host number
// would be frozen into the graph at capture time). Every thread reads `step` at kernel start and
// computes with step + 1; nobody may write step + 1 while a thread that has not read yet could
// still start, so:
//   * a one-block grid writes it itself, after a __syncthreads() that follows every thread's read;
//   * a larger grid leaves it alone and a 1-thread kernel on the same stream writes it next (stream
//     order: it starts after every block of the update has finished).
// Both are plain kernel launches, so the increment is captured into graphs as well.
template <typename O>
__device__ __forceinline__ optim::AdamCoefs<O> read_step(float* step, const AdamStepAttrs& h, bool write_step) {
  const float new_step = *step + 1.0f;  // float32 arithmetic, like torch's `state_steps += 1`
  if (write_step) {                     // uniform over the grid, which is then a single block
    __syncthreads();
    if (threadIdx.x == 0) *step = new_step;
  }
  return optim::adam_coefs<O>(h, static_cast<double>(new_step));
}

__global__ void adam_increment_step_kernel(float* step) { *step += 1.0f; }

template <typename T, int V>
__global__ void adam_vec_kernel(T* p, const T* g, T* m, T* v, int64_t n, float* step, AdamStepAttrs h,
                                bool write_step) {
  const auto c = read_step<cuda_opmath_t<T>>(step, h, write_step);
  using Vec = VecT<T, V>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t nvec = n / V;
  for (int64_t i = tid; i < nvec; i += stride) {
    Vec pv = reinterpret_cast<const Vec*>(p)[i];
    const Vec gv = reinterpret_cast<const Vec*>(g)[i];
    Vec mv = reinterpret_cast<const Vec*>(m)[i];
    Vec vv = reinterpret_cast<const Vec*>(v)[i];
#pragma unroll
    for (int j = 0; j < V; ++j) optim::adam_element<T>(pv.v[j], gv.v[j], mv.v[j], vv.v[j], c);
    reinterpret_cast<Vec*>(p)[i] = pv;
    reinterpret_cast<Vec*>(m)[i] = mv;
    reinterpret_cast<Vec*>(v)[i] = vv;
  }
  for (int64_t i = nvec * V + tid; i < n; i += stride) optim::adam_element<T>(p[i], g[i], m[i], v[i], c);
}

// Operands of the geometry: 0 param, 1 grad, 2 exp_avg, 3 exp_avg_sq (all of param's dtype).
template <typename T>
__global__ void adam_strided_kernel(Geometry<4> geo, float* step, AdamStepAttrs h, bool write_step) {
  const auto c = read_step<cuda_opmath_t<T>>(step, h, write_step);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < geo.numel; i += stride) {
    int64_t off[4];
    geo.offsets(i, off);
    optim::adam_element<T>(*reinterpret_cast<T*>(geo.data[0] + off[0]),
                           *reinterpret_cast<const T*>(geo.data[1] + off[1]),
                           *reinterpret_cast<T*>(geo.data[2] + off[2]), *reinterpret_cast<T*>(geo.data[3] + off[3]), c);
  }
}

bool aligned16(const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; }

}  // namespace

// in: param, grad, exp_avg, exp_avg_sq, step; out: param, exp_avg, exp_avg_sq, step (same tensors).
void adam_step(const KernelArgs& args, const AdamStepAttrs& h) {
  const Tensor& param = args.out[0];
  const Tensor& grad = args.in[1];
  const Tensor& exp_avg = args.out[1];
  const Tensor& exp_avg_sq = args.out[2];
  float* step = static_cast<float*>(args.out[3].data_ptr());
  DeviceGuard guard(param.device());
  cudaStream_t stream = current_stream(param.device().index);
  const int64_t n = param.numel();
  if (n == 0) {  // nothing to update, but the count still advances (as torch's)
    adam_increment_step_kernel<<<1, 1, 0, stream>>>(step);
    EMBER_CUDA_KERNEL_CHECK();
    return;
  }
  EMBER_CUDA_DISPATCH_FLOAT(param.dtype(), "adam_step", [&]<typename T>() {
    constexpr int V = 16 / sizeof(T);
    const bool dense = param.is_contiguous() && grad.is_contiguous() && exp_avg.is_contiguous() &&
                       exp_avg_sq.is_contiguous() && aligned16(param) && aligned16(grad) && aligned16(exp_avg) &&
                       aligned16(exp_avg_sq);
    const int grid = elementwise_grid(dense ? n / V + 1 : n);
    const bool write_step = grid == 1;
    if (dense) {
      adam_vec_kernel<T, V><<<grid, kBlock, 0, stream>>>(
          param.data<T>(), grad.data<T>(), exp_avg.data<T>(), exp_avg_sq.data<T>(), n, step, h, write_step);
    } else {
      const auto geo = make_geometry<4>(param, {&grad, &exp_avg, &exp_avg_sq});
      adam_strided_kernel<T><<<grid, kBlock, 0, stream>>>(geo, step, h, write_step);
    }
    EMBER_CUDA_KERNEL_CHECK();
    if (!write_step) {
      adam_increment_step_kernel<<<1, 1, 0, stream>>>(step);
      EMBER_CUDA_KERNEL_CHECK();
    }
  });
}

}  // namespace ember::cuda
