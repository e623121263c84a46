// CUDA kernels of adam_multi_step and sgd_multi_step (Note [Multi-tensor optimizer steps],
// ops/optim.cpp): the multi-tensor apply of cuda/multi_tensor.cuh, one block per 64K-element chunk,
// 16-byte vectors where a tensor's pointers are aligned. Half types compute in float, float64 in
// double. Adam takes one launch for the step counts and one per batch of tensors (one for a
// nanoGPT-sized model); SGD takes one per batch.
#include <algorithm>
#include <vector>

#include "cuda/loops.cuh"
#include "cuda/multi_tensor.cuh"
#include "generated/kernels_nn.h"
#include "ops/optim.h"

namespace ember::cuda {
namespace {

// Note [Optimizer step counts on CUDA]
// Adam's step counts live in device memory and are read by the kernels, never by the host: a captured
// CUDA graph then computes each replay's bias corrections from that replay's counts (a host number
// would be frozen into the graph at capture time). One small kernel increments every count first;
// the update kernels, later on the same stream, read the new counts (as torch's fused Adam does
// after `_foreach_add_(state_steps, 1)`). The lr tensor, when there is one, is read the same way.
constexpr int kMaxStepsPerLaunch = 1024;

struct StepBatch {
  float* step[kMaxStepsPerLaunch];
  int n;
};

__global__ void increment_steps_kernel(const __grid_constant__ StepBatch b) {
  for (int i = threadIdx.x; i < b.n; i += blockDim.x) *b.step[i] += 1.0f;  // float32, like torch's
}

void increment_steps(std::span<Tensor> steps, cudaStream_t stream) {
  StepBatch b;
  for (size_t first = 0; first < steps.size(); first += kMaxStepsPerLaunch) {
    b.n = static_cast<int>(std::min<size_t>(kMaxStepsPerLaunch, steps.size() - first));
    for (int i = 0; i < b.n; ++i) b.step[i] = steps[first + i].data<float>();
    increment_steps_kernel<<<1, 256, 0, stream>>>(b);
    EMBER_CUDA_KERNEL_CHECK();
  }
}

// The learning rate of this step: the lr tensor's value when there is one, else the attrs' number.
struct LrSource {
  const void* ptr;  // null: `value`
  bool is_double;
  double value;

  __device__ double read() const {
    if (ptr == nullptr) return value;
    return is_double ? *static_cast<const double*>(ptr) : static_cast<double>(*static_cast<const float*>(ptr));
  }
};

LrSource lr_source(const Tensor* lr, double value) {
  if (lr == nullptr) return {nullptr, false, value};
  return {lr->data_ptr(), lr->dtype() == ScalarType::Float64, 0.0};
}

// Batch lists: 0 param, 1 grad, 2 exp_avg, 3 exp_avg_sq, [4 max_exp_avg_sq], last: the step count
// (a float*, one number per tensor).
template <typename T, bool kAmsgrad>
struct AdamChunk {
  static constexpr int kDepth = kAmsgrad ? 6 : 5;
  AdamMultiStepAttrs h;
  LrSource lr;

  __device__ void operator()(const MultiTensorBatch<kDepth>& b, int slot, int64_t begin, int64_t len) const {
    using O = opmath_t<T>;
    __shared__ optim::AdamCoefs<O> shared;  // pow() in double once per block, not per thread
    if (threadIdx.x == 0)
      shared = optim::adam_coefs<O>(h, lr.read(), *static_cast<const float*>(b.ptr[kDepth - 1][slot]));
    __syncthreads();
    const optim::AdamCoefs<O> c = shared;
    T* p = static_cast<T*>(b.ptr[0][slot]) + begin;
    const T* g = static_cast<const T*>(b.ptr[1][slot]) + begin;
    T* m = static_cast<T*>(b.ptr[2][slot]) + begin;
    T* v = static_cast<T*>(b.ptr[3][slot]) + begin;
    T* vmax = kAmsgrad ? static_cast<T*>(b.ptr[4][slot]) + begin : v;  // v: a stand-in never touched
    int64_t done = 0;
    if (b.aligned[slot]) {  // chunks start at multiples of 64K elements: aligned like the tensor
      constexpr int V = 16 / sizeof(T);
      using Vec = VecT<T, V>;
      const int64_t nvec = len / V;
      for (int64_t i = threadIdx.x; i < nvec; i += blockDim.x) {
        Vec pv = reinterpret_cast<const Vec*>(p)[i];
        const Vec gv = reinterpret_cast<const Vec*>(g)[i];
        Vec mv = reinterpret_cast<const Vec*>(m)[i];
        Vec vv = reinterpret_cast<const Vec*>(v)[i];
        Vec xv{};
        if constexpr (kAmsgrad) xv = reinterpret_cast<const Vec*>(vmax)[i];
#pragma unroll
        for (int j = 0; j < V; ++j)
          optim::adam_element<T, kAmsgrad>(pv.v[j], gv.v[j], mv.v[j], vv.v[j], kAmsgrad ? xv.v[j] : vv.v[j], c);
        reinterpret_cast<Vec*>(p)[i] = pv;
        reinterpret_cast<Vec*>(m)[i] = mv;
        reinterpret_cast<Vec*>(v)[i] = vv;
        if constexpr (kAmsgrad) reinterpret_cast<Vec*>(vmax)[i] = xv;
      }
      done = nvec * V;
    }
    for (int64_t i = done + threadIdx.x; i < len; i += blockDim.x)
      optim::adam_element<T, kAmsgrad>(p[i], g[i], m[i], v[i], vmax[i], c);
  }
};

// Batch lists: 0 param, 1 grad, [2 momentum_buffer].
template <typename T, bool kMomentum>
struct SgdChunk {
  static constexpr int kDepth = kMomentum ? 3 : 2;
  SgdMultiStepAttrs h;
  LrSource lr;

  __device__ void operator()(const MultiTensorBatch<kDepth>& b, int slot, int64_t begin, int64_t len) const {
    const auto c = optim::sgd_coefs<opmath_t<T>>(h, lr.read());
    T* p = static_cast<T*>(b.ptr[0][slot]) + begin;
    const T* g = static_cast<const T*>(b.ptr[1][slot]) + begin;
    T* buf = kMomentum ? static_cast<T*>(b.ptr[2][slot]) + begin : p;  // p: a stand-in never touched
    int64_t done = 0;
    if (b.aligned[slot]) {
      constexpr int V = 16 / sizeof(T);
      using Vec = VecT<T, V>;
      const int64_t nvec = len / V;
      for (int64_t i = threadIdx.x; i < nvec; i += blockDim.x) {
        Vec pv = reinterpret_cast<const Vec*>(p)[i];
        const Vec gv = reinterpret_cast<const Vec*>(g)[i];
        Vec bv{};
        if constexpr (kMomentum) bv = reinterpret_cast<const Vec*>(buf)[i];
#pragma unroll
        for (int j = 0; j < V; ++j) optim::sgd_element<T, kMomentum>(pv.v[j], gv.v[j], bv.v[j], c);
        reinterpret_cast<Vec*>(p)[i] = pv;
        if constexpr (kMomentum) reinterpret_cast<Vec*>(buf)[i] = bv;
      }
      done = nvec * V;
    }
    for (int64_t i = done + threadIdx.x; i < len; i += blockDim.x)
      optim::sgd_element<T, kMomentum>(p[i], g[i], buf[i], c);
  }
};

// The batch entry of tensor i: the element pointers of `lists` (then `extra`, a per-tensor scalar).
template <int kDepth, size_t kLists>
MultiTensorEntry<kDepth> entry(const std::array<const Tensor*, kLists>& lists, void* extra) {
  static_assert(kLists == kDepth || kLists + 1 == kDepth);
  MultiTensorEntry<kDepth> e{{}, lists[0]->numel(), true};
  for (size_t d = 0; d < kLists; ++d) {
    e.ptr[d] = lists[d]->data_ptr();
    e.aligned = e.aligned && aligned16(e.ptr[d]);
  }
  if constexpr (kLists + 1 == kDepth) e.ptr[kDepth - 1] = extra;
  return e;
}

template <typename T, bool kAmsgrad>
void launch_adam(const optim::AdamLists& l, const AdamMultiStepAttrs& h, cudaStream_t stream) {
  using Op = AdamChunk<T, kAmsgrad>;
  constexpr size_t kLists = kAmsgrad ? 5 : 4;
  std::vector<MultiTensorEntry<Op::kDepth>> entries;
  entries.reserve(l.params.size());
  for (size_t i = 0; i < l.params.size(); ++i) {
    std::array<const Tensor*, kLists> lists;
    lists[0] = &l.params[i], lists[1] = &l.grads[i], lists[2] = &l.exp_avgs[i], lists[3] = &l.exp_avg_sqs[i];
    if constexpr (kAmsgrad) lists[4] = &l.max_exp_avg_sqs[i];
    entries.push_back(entry<Op::kDepth>(lists, l.steps[i].data_ptr()));
  }
  multi_tensor_apply<Op::kDepth>(std::span<const MultiTensorEntry<Op::kDepth>>(entries), Op{h, lr_source(l.lr, h.lr)},
                                 stream);
}

template <typename T, bool kMomentum>
void launch_sgd(const optim::SgdLists& l, const SgdMultiStepAttrs& h, cudaStream_t stream) {
  using Op = SgdChunk<T, kMomentum>;
  std::vector<MultiTensorEntry<Op::kDepth>> entries;
  entries.reserve(l.params.size());
  for (size_t i = 0; i < l.params.size(); ++i) {
    std::array<const Tensor*, Op::kDepth> lists;
    lists[0] = &l.params[i], lists[1] = &l.grads[i];
    if constexpr (kMomentum) lists[2] = &l.momentum_buffers[i];
    entries.push_back(entry<Op::kDepth>(lists, nullptr));
  }
  multi_tensor_apply<Op::kDepth>(std::span<const MultiTensorEntry<Op::kDepth>>(entries), Op{h, lr_source(l.lr, h.lr)},
                                 stream);
}

}  // namespace

void adam_multi_step(const KernelArgs& args, const AdamMultiStepAttrs& h) {
  const optim::AdamLists l = optim::adam_lists(args, h);
  DeviceGuard guard(l.params[0].device());
  cudaStream_t stream = current_stream(l.params[0].device().index);
  increment_steps(l.steps, stream);  // first: the update kernels read the new counts
  EMBER_CUDA_DISPATCH_FLOAT(l.params[0].dtype(), "adam_multi_step", [&]<typename T>() {
    if (h.amsgrad) launch_adam<T, true>(l, h, stream);
    else launch_adam<T, false>(l, h, stream);
  });
}

void sgd_multi_step(const KernelArgs& args, const SgdMultiStepAttrs& h) {
  const optim::SgdLists l = optim::sgd_lists(args, h);
  DeviceGuard guard(l.params[0].device());
  cudaStream_t stream = current_stream(l.params[0].device().index);
  EMBER_CUDA_DISPATCH_FLOAT(l.params[0].dtype(), "sgd_multi_step", [&]<typename T>() {
    if (h.momentum != 0.0) launch_sgd<T, true>(l, h, stream);
    else launch_sgd<T, false>(l, h, stream);
  });
}

}  // namespace ember::cuda
