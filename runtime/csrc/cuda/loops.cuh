#pragma once
// Note [CUDA elementwise launcher]
// One output, N inputs (each broadcastable to the output's shape; the frontend checked). Inputs may
// have any dtype: they are loaded and converted to the compute type C in-kernel, so no converted
// copies are materialized (the CPU path converts first; results are identical).
// Two kernels:
//   * vectorized: output and every non-scalar input contiguous, non-scalar inputs stored as S, all
//     pointers aligned: each thread moves kVecBytes-wide vectors (16 B loads for fp32/fp16/bf16);
//     0-dim/one-element inputs are loaded once per thread.
//   * generic: any strides (broadcast dims have stride 0). Dims are coalesced first (as in
//     cpu/loops.h); offsets come from per-dim divmods with 32-bit fast division when it fits.
#include <cuda_runtime.h>

#include <array>
#include <type_traits>

#include "core/tensor.h"
#include "cuda/cuda_common.h"
#include "cuda/internal.h"

// Variadic forms of dtype.h's dispatch macros: the lambda may contain unparenthesized commas.
#define EMBER_CUDA_DISPATCH_ALL(dtype, opname, ...) EMBER_DISPATCH_IMPL(dtype, opname, (__VA_ARGS__), EMBER_FORALL_TYPES)
#define EMBER_CUDA_DISPATCH_NUMERIC(dtype, opname, ...) EMBER_DISPATCH_IMPL(dtype, opname, (__VA_ARGS__), EMBER_NUMERIC_CASES)
#define EMBER_CUDA_DISPATCH_FLOAT(dtype, opname, ...) EMBER_DISPATCH_IMPL(dtype, opname, (__VA_ARGS__), EMBER_FLOAT_CASES)
#define EMBER_CUDA_DISPATCH_INTEGRAL(dtype, opname, ...) EMBER_DISPATCH_IMPL(dtype, opname, (__VA_ARGS__), EMBER_INT_AND_BOOL_CASES)

namespace ember::cuda {

constexpr int kMaxDims = 16;

// ---- conversions ---------------------------------------------------------------------------------
template <typename T> struct CudaOpMath { using type = T; };
template <> struct CudaOpMath<Half> { using type = float; };
template <> struct CudaOpMath<BFloat16> { using type = float; };
template <typename T> using cuda_opmath_t = typename CudaOpMath<T>::type;

template <typename To, typename From>
__host__ __device__ __forceinline__ To cvt(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<To, bool>) {
    return static_cast<cuda_opmath_t<From>>(v) != static_cast<cuda_opmath_t<From>>(0);
  } else if constexpr (std::is_same_v<To, Half> || std::is_same_v<To, BFloat16>) {
    return To(static_cast<float>(static_cast<cuda_opmath_t<From>>(v)));
  } else if constexpr (std::is_integral_v<To> && sizeof(To) < 8 &&
                       !std::is_integral_v<cuda_opmath_t<From>>) {
    // float -> narrow int goes through int64 and wraps (torch: -1.5 -> uint8 255); a direct
    // device conversion would saturate instead.
    return static_cast<To>(static_cast<int64_t>(static_cast<cuda_opmath_t<From>>(v)));
  } else {
    return static_cast<To>(static_cast<cuda_opmath_t<From>>(v));
  }
}

template <typename C>
__device__ __forceinline__ C load_as(const char* p, ScalarType t) {
  switch (t) {
    case ScalarType::Bool: return cvt<C>(*reinterpret_cast<const bool*>(p));
    case ScalarType::UInt8: return cvt<C>(*reinterpret_cast<const uint8_t*>(p));
    case ScalarType::Int8: return cvt<C>(*reinterpret_cast<const int8_t*>(p));
    case ScalarType::Int32: return cvt<C>(*reinterpret_cast<const int32_t*>(p));
    case ScalarType::Int64: return cvt<C>(*reinterpret_cast<const int64_t*>(p));
    case ScalarType::Float16: return cvt<C>(*reinterpret_cast<const Half*>(p));
    case ScalarType::BFloat16: return cvt<C>(*reinterpret_cast<const BFloat16*>(p));
    case ScalarType::Float32: return cvt<C>(*reinterpret_cast<const float*>(p));
    case ScalarType::Float64: return cvt<C>(*reinterpret_cast<const double*>(p));
  }
  return C();
}

// ---- offset computation --------------------------------------------------------------------------
// Division by a runtime constant via multiply-high (Granlund-Montgomery), valid for n < 2^31.
struct FastDivmod {
  uint32_t divisor = 1, mult = 0, shift = 0;
  FastDivmod() = default;
  explicit FastDivmod(uint32_t d) : divisor(d) {
    for (shift = 0; shift < 32; ++shift)
      if ((1u << shift) >= d) break;
    const uint64_t one = 1;
    mult = static_cast<uint32_t>(((one << 32) * ((one << shift) - d)) / d + 1);
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const {
    uint32_t t = __umulhi(n, mult);
    return (t + n) >> shift;
  }
};

template <int N>  // N operands: output first
struct Geometry {
  int ndim = 0;
  bool use32 = true;
  int64_t numel = 0;
  int64_t sizes[kMaxDims];        // innermost first
  FastDivmod fdiv[kMaxDims];
  int64_t strides[N][kMaxDims];   // bytes, innermost first
  char* data[N];
  ScalarType dtypes[N];

  __device__ __forceinline__ void offsets(int64_t linear, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    if (use32) {
      uint32_t rem = static_cast<uint32_t>(linear);
      for (int d = 0; d < ndim; ++d) {
        uint32_t q = fdiv[d].div(rem);
        uint32_t idx = rem - q * fdiv[d].divisor;
        rem = q;
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] += static_cast<int64_t>(idx) * strides[k][d];
      }
    } else {
      int64_t rem = linear;
      for (int d = 0; d < ndim; ++d) {
        int64_t idx = rem % sizes[d];
        rem /= sizes[d];
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
      }
    }
  }
};

// Builds the coalesced geometry of out and ins (inputs broadcast to out's shape).
template <int N>
Geometry<N> make_geometry(const Tensor& out, const std::array<const Tensor*, N - 1>& ins) {
  Geometry<N> g;
  const int64_t nd = out.dim();
  g.numel = out.numel();
  g.data[0] = static_cast<char*>(out.data_ptr());
  g.dtypes[0] = out.dtype();
  for (int k = 1; k < N; ++k) {
    g.data[k] = static_cast<char*>(ins[k - 1]->data_ptr());
    g.dtypes[k] = ins[k - 1]->dtype();
  }
  // Collect (size, strides) outermost-first, dropping size-1 dims and merging contiguous runs.
  int64_t sz[kMaxDims * 4];
  int64_t st[N][kMaxDims * 4];
  int n = 0;
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t size = out.sizes()[d];
    if (size == 1) continue;
    int64_t s[N];
    s[0] = out.strides()[d] * out.element_size();
    for (int k = 1; k < N; ++k) {
      const Tensor& t = *ins[k - 1];
      const int64_t td = d - (nd - t.dim());
      s[k] = (td < 0 || t.sizes()[td] == 1) ? 0 : t.strides()[td] * t.element_size();
    }
    if (n > 0) {
      bool mergeable = true;
      for (int k = 0; k < N; ++k)
        if (st[k][n - 1] != s[k] * size) { mergeable = false; break; }
      if (mergeable) {
        sz[n - 1] *= size;
        for (int k = 0; k < N; ++k) st[k][n - 1] = s[k];
        continue;
      }
    }
    EMBER_CHECK(n < kMaxDims, "[cuda elementwise] tensors with more than ", kMaxDims,
                " non-collapsible dimensions are not supported (", describe(out), ")");
    sz[n] = size;
    for (int k = 0; k < N; ++k) st[k][n] = s[k];
    ++n;
  }
  g.ndim = n;
  g.use32 = g.numel < (int64_t{1} << 31);
  for (int i = 0; i < n; ++i) {  // reverse: innermost first
    g.sizes[i] = sz[n - 1 - i];
    g.fdiv[i] = FastDivmod(static_cast<uint32_t>(g.use32 ? sz[n - 1 - i] : 1));
    for (int k = 0; k < N; ++k) g.strides[k][i] = st[k][n - 1 - i];
  }
  return g;
}

template <int NIN, typename C, typename F>
__device__ __forceinline__ auto apply_f(const F& f, const C (&v)[NIN > 0 ? NIN : 1]) {
  if constexpr (NIN == 0) return f();
  else if constexpr (NIN == 1) return f(v[0]);
  else if constexpr (NIN == 2) return f(v[0], v[1]);
  else return f(v[0], v[1], v[2]);
}

// Each block covers tiles of kGenericUnroll * blockDim consecutive elements; a thread's elements are
// blockDim apart (coalesced) and all their loads are issued before any store, for memory-level
// parallelism. Inputs stored as S (the usual case) skip load_as's per-element dtype switch.
constexpr int kGenericUnroll = 4;

template <typename Out, typename S, typename C, int NIN, typename F>
__global__ void elementwise_generic_kernel(Geometry<NIN + 1> g, bool inputs_are_s, F f) {
  const int64_t tile = static_cast<int64_t>(blockDim.x) * kGenericUnroll;
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * tile; base < g.numel; base += gridDim.x * tile) {
    C v[kGenericUnroll][NIN > 0 ? NIN : 1];
    int64_t out_off[kGenericUnroll];
    bool live[kGenericUnroll];
#pragma unroll
    for (int u = 0; u < kGenericUnroll; ++u) {
      const int64_t i = base + threadIdx.x + static_cast<int64_t>(u) * blockDim.x;
      live[u] = i < g.numel;
      if (!live[u]) continue;
      int64_t off[NIN + 1];
      g.offsets(i, off);
      out_off[u] = off[0];
#pragma unroll
      for (int k = 0; k < NIN; ++k) {
        const char* p = g.data[k + 1] + off[k + 1];
        v[u][k] = inputs_are_s ? cvt<C>(*reinterpret_cast<const S*>(p)) : load_as<C>(p, g.dtypes[k + 1]);
      }
    }
#pragma unroll
    for (int u = 0; u < kGenericUnroll; ++u)
      if (live[u]) *reinterpret_cast<Out*>(g.data[0] + out_off[u]) = cvt<Out>(apply_f<NIN, C>(f, v[u]));
  }
}

template <typename T, int V>
struct alignas(sizeof(T) * V) VecT { T v[V]; };

template <int NIN>
struct VecArgs {
  char* out;
  const char* in[NIN > 0 ? NIN : 1];
  bool scalar[NIN > 0 ? NIN : 1];     // one-element input: broadcast its value
  ScalarType dtype[NIN > 0 ? NIN : 1];
};

template <typename Out, typename S, typename C, int NIN, int V, typename F>
__global__ void elementwise_vec_kernel(int64_t n, VecArgs<NIN> a, F f) {
  C scalar_v[NIN > 0 ? NIN : 1];
#pragma unroll
  for (int k = 0; k < NIN; ++k)
    if (a.scalar[k]) scalar_v[k] = load_as<C>(a.in[k], a.dtype[k]);
  const int64_t nvec = n / V;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < nvec; i += stride) {
    VecT<S, V> in_v[NIN > 0 ? NIN : 1];
#pragma unroll
    for (int k = 0; k < NIN; ++k)
      if (!a.scalar[k]) in_v[k] = reinterpret_cast<const VecT<S, V>*>(a.in[k])[i];
    VecT<Out, V> out_v;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      C v[NIN > 0 ? NIN : 1];
#pragma unroll
      for (int k = 0; k < NIN; ++k) v[k] = a.scalar[k] ? scalar_v[k] : cvt<C>(in_v[k].v[j]);
      out_v.v[j] = cvt<Out>(apply_f<NIN, C>(f, v));
    }
    reinterpret_cast<VecT<Out, V>*>(a.out)[i] = out_v;
  }
  // Tail (fewer than V elements), handled by the first threads of block 0.
  const int64_t tail = nvec * V + static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (tail < n && tail < nvec * V + V) {
    C v[NIN > 0 ? NIN : 1];
#pragma unroll
    for (int k = 0; k < NIN; ++k)
      v[k] = a.scalar[k] ? scalar_v[k] : cvt<C>(reinterpret_cast<const S*>(a.in[k])[tail]);
    reinterpret_cast<Out*>(a.out)[tail] = cvt<Out>(apply_f<NIN, C>(f, v));
  }
}

inline int elementwise_grid(int64_t work) {
  const int64_t max_blocks = static_cast<int64_t>(sm_count()) * 32;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(blocks_for(work), max_blocks)));
}

template <typename S, typename Out>
constexpr int vec_width() {
  constexpr int bytes = sizeof(S) > sizeof(Out) ? sizeof(S) : sizeof(Out);
  constexpr int v = 16 / bytes;
  return v > 8 ? 8 : v;
}

// out[i] = f(ins[0][i], ...): f takes C values and returns something convertible to Out.
// S is the storage type inputs usually have (the vectorized path requires it).
template <typename Out, typename S, typename C, int NIN, typename F>
void launch_elementwise(const Tensor& out, const std::array<const Tensor*, NIN>& ins, const F& f) {
  const int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t stream = current_stream(out.device().index);
  constexpr int V = vec_width<S, Out>();
  bool vec_ok = out.is_contiguous() && out.dtype() == CppTypeToScalar<Out>::value &&
                reinterpret_cast<uintptr_t>(out.data_ptr()) % (sizeof(Out) * V) == 0;
  VecArgs<NIN> va{};
  va.out = static_cast<char*>(out.data_ptr());
  for (int k = 0; k < NIN && vec_ok; ++k) {
    const Tensor& t = *ins[k];
    va.in[k] = static_cast<const char*>(t.data_ptr());
    va.dtype[k] = t.dtype();
    va.scalar[k] = t.numel() == 1;
    if (va.scalar[k]) continue;
    vec_ok = t.is_contiguous() && t.numel() == n && t.dtype() == CppTypeToScalar<S>::value &&
             reinterpret_cast<uintptr_t>(t.data_ptr()) % (sizeof(S) * V) == 0;
  }
  if (vec_ok) {
    elementwise_vec_kernel<Out, S, C, NIN, V><<<elementwise_grid(n / V + 1), kBlock, 0, stream>>>(n, va, f);
  } else {
    std::array<const Tensor*, NIN> in_arr = ins;
    auto g = make_geometry<NIN + 1>(out, in_arr);
    bool inputs_are_s = true;
    for (int k = 0; k < NIN; ++k) inputs_are_s &= ins[k]->dtype() == CppTypeToScalar<S>::value;
    elementwise_generic_kernel<Out, S, C, NIN>
        <<<elementwise_grid((n + kGenericUnroll - 1) / kGenericUnroll), kBlock, 0, stream>>>(g, inputs_are_s, f);
  }
  EMBER_CUDA_KERNEL_CHECK();
}

}  // namespace ember::cuda
