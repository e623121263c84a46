// Note [CUDA reductions]
// attrs.dims lists every reduced dim; outputs are contiguous over the kept dims (keepdim or not).
// The input is split into kept dims (one output each) and reduced dims (in logical order, so an
// arg-reduction's index is the row-major position within them, as on the CPU).
//   * row kernel (the reduced dims include the unit-stride dim, or nothing is kept): one block per
//     output, threads stride over the reduced elements, tree-reduced in shared memory;
//   * column kernel (the kept dims are the contiguous ones): one thread per output, adjacent threads
//     read adjacent memory.
// When there are too few outputs to fill the GPU, the reduced range is split over blockIdx.y into
// partial accumulators and a second pass combines them (fixed order: results are deterministic).
// Policies define init/map/combine/store; accumulation is in float for half types, double for
// double, int64 for integers.
#include <cfloat>
#include <cmath>

#include "cuda/loops.cuh"
#include "generated/kernels_reduce.h"

namespace ember::cuda {
namespace {

struct ReduceGeom {
  int nk = 0, nr = 0;
  int64_t ksizes[kMaxDims], kstrides[kMaxDims];  // innermost first, strides in elements
  int64_t rsizes[kMaxDims], rstrides[kMaxDims];
  int64_t num_out = 1, red = 1;

  __device__ __forceinline__ int64_t kept_offset(int64_t o) const {
    int64_t off = 0;
    for (int d = 0; d < nk; ++d) { off += (o % ksizes[d]) * kstrides[d]; o /= ksizes[d]; }
    return off;
  }
  __device__ __forceinline__ int64_t red_offset(int64_t r) const {
    int64_t off = 0;
    for (int d = 0; d < nr; ++d) { off += (r % rsizes[d]) * rstrides[d]; r /= rsizes[d]; }
    return off;
  }
};

ReduceGeom make_reduce_geom(const Tensor& x, IntSpan dims) {
  ReduceGeom g;
  bool reduced[64] = {};
  for (int64_t d : dims) reduced[d] = true;
  EMBER_CHECK(x.dim() <= kMaxDims, "[cuda reduce] tensors with more than ", kMaxDims, " dims are not supported");
  // Innermost first. Size-1 dims are dropped; a dim merges into the previous (inner) one of its kind
  // when the pair is contiguous relative to each other, which keeps the row-major numbering of
  // outputs and of reduced positions (arg-reductions' indices) unchanged.
  for (int64_t d = x.dim() - 1; d >= 0; --d) {
    const int64_t size = x.sizes()[d], stride = x.strides()[d];
    if (reduced[d]) g.red *= size; else g.num_out *= size;
    if (size == 1) continue;
    int& n = reduced[d] ? g.nr : g.nk;
    int64_t* sizes = reduced[d] ? g.rsizes : g.ksizes;
    int64_t* strides = reduced[d] ? g.rstrides : g.kstrides;
    if (n > 0 && strides[n - 1] * sizes[n - 1] == stride) { sizes[n - 1] *= size; continue; }
    sizes[n] = size;
    strides[n] = stride;
    ++n;
  }
  return g;
}

// Shuffles any trivially copyable accumulator (value+index pairs too) word by word.
template <typename T>
__device__ __forceinline__ T shfl_down_any(T v, int offset) {
  constexpr int kWords = (sizeof(T) + 3) / 4;
  union { T t; uint32_t w[kWords]; } u;
  u.t = v;
#pragma unroll
  for (int i = 0; i < kWords; ++i) u.w[i] = __shfl_down_sync(0xffffffffu, u.w[i], offset);
  return u.t;
}

template <typename Acc, typename Policy>
__device__ Acc block_reduce(Acc v, const Policy& p, Acc* smem) {
  for (int o = 16; o > 0; o >>= 1) v = p.combine(v, shfl_down_any(v, o));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < static_cast<int>(blockDim.x / 32) ? smem[lane] : p.init();
    for (int o = 16; o > 0; o >>= 1) v = p.combine(v, shfl_down_any(v, o));
  }
  return v;
}

// grid: (num_out, splits); partial != nullptr when splits > 1.
template <typename T, typename Policy>
__global__ void reduce_row_kernel(const T* in, ReduceGeom g, Policy p, typename Policy::Acc* partial) {
  using Acc = typename Policy::Acc;
  __shared__ Acc smem[32];
  const int64_t o = blockIdx.x;
  const int64_t base = g.kept_offset(o);
  // Chunks are multiples of 16 elements so vectorized chunks stay aligned.
  const int64_t chunk = ((g.red + gridDim.y - 1) / gridDim.y + 15) / 16 * 16;
  const int64_t lo = blockIdx.y * chunk, hi = min(g.red, lo + chunk);
  Acc acc = p.init();
  constexpr int V = sizeof(T) >= 16 ? 1 : (16 / sizeof(T) > 8 ? 8 : 16 / sizeof(T));
  if (g.nr == 1 && g.rstrides[0] == 1 && V > 1 && reinterpret_cast<uintptr_t>(in + base + lo) % 16 == 0) {
    // Contiguous run: 16-byte loads, several independent per thread in flight.
    const VecT<T, V>* src = reinterpret_cast<const VecT<T, V>*>(in + base + lo);
    const int64_t nvec = (hi - lo) / V;
#pragma unroll 2
    for (int64_t i = threadIdx.x; i < nvec; i += blockDim.x) {
      const VecT<T, V> v = src[i];
#pragma unroll
      for (int j = 0; j < V; ++j) acc = p.combine(acc, p.map(v.v[j], o, lo + i * V + j));
    }
    for (int64_t r = lo + nvec * V + threadIdx.x; r < hi; r += blockDim.x) acc = p.combine(acc, p.map(in[base + r], o, r));
  } else if (g.nr <= 1) {  // one (coalesced) reduced dim: no index arithmetic in the loop
    const int64_t rs = g.nr == 1 ? g.rstrides[0] : 0;
    const T* src = in + base;
#pragma unroll 4
    for (int64_t r = lo + threadIdx.x; r < hi; r += blockDim.x) acc = p.combine(acc, p.map(src[r * rs], o, r));
  } else {
    for (int64_t r = lo + threadIdx.x; r < hi; r += blockDim.x)
      acc = p.combine(acc, p.map(in[base + g.red_offset(r)], o, r));
  }
  acc = block_reduce(acc, p, smem);
  if (threadIdx.x == 0) {
    if (partial) partial[o * gridDim.y + blockIdx.y] = acc;
    else p.store(o, acc);
  }
}

// grid: (ceil(num_out / kBlock), splits).
template <typename T, typename Policy>
__global__ void reduce_col_kernel(const T* in, ReduceGeom g, Policy p, typename Policy::Acc* partial) {
  using Acc = typename Policy::Acc;
  const int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (o >= g.num_out) return;
  const int64_t base = g.kept_offset(o);
  const int64_t chunk = (g.red + gridDim.y - 1) / gridDim.y;
  const int64_t lo = blockIdx.y * chunk, hi = min(g.red, lo + chunk);
  Acc acc = p.init();
  if (g.nr <= 1) {
    const int64_t rs = g.nr == 1 ? g.rstrides[0] : 0;
    const T* src = in + base;
#pragma unroll 4
    for (int64_t r = lo; r < hi; ++r) acc = p.combine(acc, p.map(src[r * rs], o, r));
  } else {
    for (int64_t r = lo; r < hi; ++r) acc = p.combine(acc, p.map(in[base + g.red_offset(r)], o, r));
  }
  if (partial) partial[o * gridDim.y + blockIdx.y] = acc;
  else p.store(o, acc);
}

template <typename Policy>
__global__ void reduce_partials_kernel(const typename Policy::Acc* partial, int64_t num_out, int splits, Policy p) {
  const int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (o >= num_out) return;
  typename Policy::Acc acc = p.init();
  for (int s = 0; s < splits; ++s) acc = p.combine(acc, partial[o * splits + s]);
  p.store(o, acc);
}

template <typename T, typename Policy>
void run_reduce(const Tensor& x, IntSpan dims, const Policy& p) {
  using Acc = typename Policy::Acc;
  ReduceGeom g = make_reduce_geom(x, dims);
  if (g.num_out == 0) return;
  cudaStream_t stream = current_stream(x.device().index);
  const int64_t target_blocks = 4LL * sm_count(x.device().index);
  const bool row = g.nk == 0 || (g.nr > 0 && g.rstrides[0] == 1) || g.num_out < 32;
  int splits = 1;
  dim3 grid;
  if (row) {
    if (g.num_out < target_blocks && g.red > 4096)
      splits = static_cast<int>(std::min<int64_t>((target_blocks + g.num_out - 1) / g.num_out, g.red / 4096));
    grid = dim3(static_cast<unsigned>(g.num_out), std::max(1, splits));
  } else {
    const int64_t bx = blocks_for(g.num_out);
    if (bx < target_blocks && g.red > 64)
      splits = static_cast<int>(std::min<int64_t>((target_blocks + bx - 1) / bx, g.red / 32));
    grid = dim3(static_cast<unsigned>(bx), std::max(1, splits));
  }
  splits = std::max(1, std::min(splits, 65535));
  grid.y = splits;
  EMBER_CHECK(g.num_out < (1LL << 31), "[cuda reduce] too many outputs");
  Tensor scratch;
  Acc* partial = nullptr;
  if (splits > 1) {
    scratch = Tensor::empty(DimVector{static_cast<int64_t>(g.num_out * splits * sizeof(Acc))}, ScalarType::UInt8,
                            x.device());
    partial = static_cast<Acc*>(scratch.data_ptr());
  }
  const T* in = x.numel() ? x.data<T>() : nullptr;
  if (row) reduce_row_kernel<T, Policy><<<grid, kBlock, 0, stream>>>(in, g, p, partial);
  else reduce_col_kernel<T, Policy><<<grid, kBlock, 0, stream>>>(in, g, p, partial);
  EMBER_CUDA_KERNEL_CHECK();
  if (splits > 1) {
    reduce_partials_kernel<Policy><<<blocks_for(g.num_out), kBlock, 0, stream>>>(partial, g.num_out, splits, p);
    EMBER_CUDA_KERNEL_CHECK();
  }
}

template <typename T> using float_acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;
template <typename T> constexpr bool kIsFloat = std::is_floating_point_v<T> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;
template <typename T> using sum_acc_t = std::conditional_t<kIsFloat<T>, float_acc_t<T>, int64_t>;

template <typename T>
__device__ __forceinline__ bool is_nan_d(T v) {
  if constexpr (std::is_floating_point_v<T>) return v != v;
  else return false;
}

template <typename T, typename AccT, typename OutT>
struct SumPolicy {
  using Acc = AccT;
  OutT* out;
  AccT scale;  // 1 for sum, 1/count for mean
  bool do_scale;
  __device__ Acc init() const { return Acc(0); }
  __device__ Acc map(T v, int64_t, int64_t) const { return cvt<Acc>(v); }
  __device__ Acc combine(Acc a, Acc b) const { return a + b; }
  __device__ void store(int64_t o, Acc a) const { out[o] = cvt<OutT>(do_scale ? a * scale : a); }
};

template <typename T, typename AccT, typename OutT>
struct ProdPolicy {
  using Acc = AccT;
  OutT* out;
  __device__ Acc init() const { return Acc(1); }
  __device__ Acc map(T v, int64_t, int64_t) const { return cvt<Acc>(v); }
  __device__ Acc combine(Acc a, Acc b) const { return a * b; }
  __device__ void store(int64_t o, Acc a) const { out[o] = cvt<OutT>(a); }
};

template <typename T, bool IsMax>
struct MinMaxPolicy {
  using Acc = cuda_opmath_t<T>;
  T* out;
  Acc identity;
  __device__ Acc init() const { return identity; }
  __device__ Acc map(T v, int64_t, int64_t) const { return cvt<Acc>(v); }
  __device__ Acc combine(Acc a, Acc b) const {  // NaN wins (branch-free select)
    return (IsMax ? a > b : a < b) || is_nan_d(a) ? a : b;
  }
  __device__ void store(int64_t o, Acc a) const { out[o] = cvt<T>(a); }
};

template <typename T, typename OutT, bool IsAny>
struct AnyAllPolicy {
  using Acc = int;
  OutT* out;
  __device__ Acc init() const { return IsAny ? 0 : 1; }
  __device__ Acc map(T v, int64_t, int64_t) const { return cvt<bool>(v) ? 1 : 0; }
  __device__ Acc combine(Acc a, Acc b) const { return IsAny ? (a | b) : (a & b); }
  __device__ void store(int64_t o, Acc a) const { out[o] = static_cast<OutT>(a); }
};

enum class NormKind { L2, L1, L0, Inf, NegInf, P };
template <typename T, NormKind K>
struct NormPolicy {
  using Acc = float_acc_t<T>;
  T* out;
  Acc p;
  __device__ Acc init() const {
    if constexpr (K == NormKind::NegInf) return Acc(INFINITY);
    return Acc(0);
  }
  __device__ Acc map(T v, int64_t, int64_t) const {
    Acc a = fabs(cvt<Acc>(v));
    if constexpr (K == NormKind::L2) return a * a;
    else if constexpr (K == NormKind::L0) return a != Acc(0) ? Acc(1) : Acc(0);
    else if constexpr (K == NormKind::P) return ::pow(a, p);
    else return a;
  }
  __device__ Acc combine(Acc a, Acc b) const {
    if constexpr (K == NormKind::Inf || K == NormKind::NegInf) {
      if (is_nan_d(a)) return a;
      if (is_nan_d(b)) return b;
      return K == NormKind::Inf ? (a > b ? a : b) : (a < b ? a : b);
    }
    return a + b;
  }
  __device__ void store(int64_t o, Acc a) const {
    if constexpr (K == NormKind::L2) a = ::sqrt(a);
    else if constexpr (K == NormKind::P) a = ::pow(a, Acc(1) / p);
    out[o] = cvt<T>(a);
  }
};

// var pass 2 and logsumexp pass 2 read a per-output value computed by pass 1.
template <typename T>
struct SqDevPolicy {
  using Acc = double;
  const double* mean;
  T* out;
  double divisor;
  __device__ Acc init() const { return 0.0; }
  __device__ Acc map(T v, int64_t o, int64_t) const { double d = cvt<double>(v) - mean[o]; return d * d; }
  __device__ Acc combine(Acc a, Acc b) const { return a + b; }
  __device__ void store(int64_t o, Acc a) const { out[o] = cvt<T>(a / divisor); }
};

template <typename T>
struct SumExpPolicy {
  using Acc = float_acc_t<T>;
  Acc* shift;  // the row max; written back as the shift actually used
  T* out;
  __device__ Acc init() const { return Acc(0); }
  __device__ Acc map(T v, int64_t o, int64_t) const {
    Acc m = shift[o];
    if (::isinf(m)) m = 0;
    return ::exp(cvt<Acc>(v) - m);
  }
  __device__ Acc combine(Acc a, Acc b) const { return a + b; }
  __device__ void store(int64_t o, Acc a) const {
    Acc m = shift[o];
    if (::isinf(m)) m = 0;
    out[o] = cvt<T>(::log(a) + m);
  }
};

template <typename T>
struct StoreAccPolicy : MinMaxPolicy<T, true> {};

template <typename AccT>
struct MaxToBufPolicy {  // amax into an Acc buffer (logsumexp pass 1)
  using Acc = AccT;
  AccT* out;
  __device__ Acc init() const { return Acc(-INFINITY); }
  template <typename T> __device__ Acc map(T v, int64_t, int64_t) const { return cvt<Acc>(v); }
  __device__ Acc combine(Acc a, Acc b) const {
    if (is_nan_d(a)) return a;
    if (is_nan_d(b)) return b;
    return a > b ? a : b;
  }
  __device__ void store(int64_t o, Acc a) const { out[o] = a; }
};

template <typename V>
struct ArgAcc {
  V value;
  int64_t index;
};

template <typename T, bool IsMax>
struct ArgPolicy {
  using V = cuda_opmath_t<T>;
  using Acc = ArgAcc<V>;
  T* values;         // may be null (argmax)
  int64_t* indices;
  V identity;
  __device__ Acc init() const { return {identity, INT64_MAX}; }
  __device__ Acc map(T v, int64_t, int64_t r) const { return {cvt<V>(v), r}; }
  __device__ Acc combine(Acc a, Acc b) const {
    // NaN wins; among equal values (or two NaNs) the smaller index wins.
    const bool an = is_nan_d(a.value), bn = is_nan_d(b.value);
    if (an || bn) {
      if (an && bn) return a.index <= b.index ? a : b;
      return an ? a : b;
    }
    if (a.value == b.value) return a.index <= b.index ? a : b;
    if (a.index == INT64_MAX) return b;
    if (b.index == INT64_MAX) return a;
    return (IsMax ? a.value > b.value : a.value < b.value) ? a : b;
  }
  __device__ void store(int64_t o, Acc a) const {
    if (values) values[o] = cvt<T>(a.value);
    indices[o] = a.index == INT64_MAX ? 0 : a.index;
  }
};

template <typename T>
cuda_opmath_t<T> lowest_value() {
  using V = cuda_opmath_t<T>;
  if constexpr (std::is_floating_point_v<V>) return -std::numeric_limits<V>::infinity();
  else return std::numeric_limits<V>::lowest();
}
template <typename T>
cuda_opmath_t<T> highest_value() {
  using V = cuda_opmath_t<T>;
  if constexpr (std::is_floating_point_v<V>) return std::numeric_limits<V>::infinity();
  else return std::numeric_limits<V>::max();
}

}  // namespace

void sum(const KernelArgs& a, const ReduceAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& out = a.out[0];
  DeviceGuard guard(x.device());
  if (x.dtype() == out.dtype()) {
    EMBER_CUDA_DISPATCH_ALL(x.dtype(), "sum", [&]<typename T>() {
      if constexpr (std::is_same_v<T, bool>) {
        fail(ErrorKind::Type, "[sum] bool output is not supported");
      } else {
        using Acc = sum_acc_t<T>;
        run_reduce<T>(x, attrs.dims, SumPolicy<T, Acc, T>{out.data<T>(), Acc(1), false});
      }
    });
  } else {
    EMBER_CHECK(out.dtype() == ScalarType::Int64 && is_integral(x.dtype(), true), "[sum] unsupported dtypes ",
                dtype_name(x.dtype()), " -> ", dtype_name(out.dtype()));
    EMBER_CUDA_DISPATCH_INTEGRAL(x.dtype(), "sum", [&]<typename T>() {
      run_reduce<T>(x, attrs.dims, SumPolicy<T, int64_t, int64_t>{out.data<int64_t>(), 1, false});
    });
  }
}

void mean(const KernelArgs& a, const ReduceAttrs& attrs) {
  const Tensor& x = a.in[0];
  DeviceGuard guard(x.device());
  int64_t count = 1;
  for (int64_t d : attrs.dims) count *= x.sizes()[d];
  EMBER_CUDA_DISPATCH_FLOAT(x.dtype(), "mean", [&]<typename T>() {
    using Acc = float_acc_t<T>;
    const Acc scale = count == 0 ? Acc(NAN) : Acc(1) / static_cast<Acc>(count);
    run_reduce<T>(x, attrs.dims, SumPolicy<T, Acc, T>{a.out[0].data<T>(), scale, true});
  });
}

void prod(const KernelArgs& a, const ReduceAttrs& attrs) {
  const Tensor& x = a.in[0];
  const Tensor& out = a.out[0];
  DeviceGuard guard(x.device());
  if (x.dtype() == out.dtype()) {
    EMBER_CUDA_DISPATCH_NUMERIC(x.dtype(), "prod", [&]<typename T>() {
      using Acc = sum_acc_t<T>;
      run_reduce<T>(x, attrs.dims, ProdPolicy<T, Acc, T>{out.data<T>()});
    });
  } else {
    EMBER_CUDA_DISPATCH_INTEGRAL(x.dtype(), "prod", [&]<typename T>() {
      run_reduce<T>(x, attrs.dims, ProdPolicy<T, int64_t, int64_t>{out.data<int64_t>()});
    });
  }
}

void amax(const KernelArgs& a, const ReduceAttrs& attrs) {
  DeviceGuard guard(a.in[0].device());
  EMBER_CUDA_DISPATCH_ALL(a.in[0].dtype(), "amax", [&]<typename T>() {
    run_reduce<T>(a.in[0], attrs.dims, MinMaxPolicy<T, true>{a.out[0].data<T>(), lowest_value<T>()});
  });
}
void amin(const KernelArgs& a, const ReduceAttrs& attrs) {
  DeviceGuard guard(a.in[0].device());
  EMBER_CUDA_DISPATCH_ALL(a.in[0].dtype(), "amin", [&]<typename T>() {
    run_reduce<T>(a.in[0], attrs.dims, MinMaxPolicy<T, false>{a.out[0].data<T>(), highest_value<T>()});
  });
}

template <bool IsAny>
static void any_all(const KernelArgs& a, IntSpan dims, const char* name) {
  DeviceGuard guard(a.in[0].device());
  EMBER_CUDA_DISPATCH_ALL(a.in[0].dtype(), name, [&]<typename T>() {
    if (a.out[0].dtype() == ScalarType::UInt8)
      run_reduce<T>(a.in[0], dims, AnyAllPolicy<T, uint8_t, IsAny>{a.out[0].data<uint8_t>()});
    else
      run_reduce<T>(a.in[0], dims, AnyAllPolicy<T, bool, IsAny>{a.out[0].data<bool>()});
  });
}
void any(const KernelArgs& a, const ReduceAttrs& attrs) { any_all<true>(a, attrs.dims, "any"); }
void all(const KernelArgs& a, const ReduceAttrs& attrs) { any_all<false>(a, attrs.dims, "all"); }

void var(const KernelArgs& a, const VarAttrs& attrs) {
  const Tensor& x = a.in[0];
  DeviceGuard guard(x.device());
  int64_t n = 1;
  for (int64_t d : attrs.dims) n *= x.sizes()[d];
  const double divisor = std::max(0.0, static_cast<double>(n) - attrs.correction);
  EMBER_CUDA_DISPATCH_FLOAT(x.dtype(), "var", [&]<typename T>() {
    Tensor means = Tensor::empty(a.out[0].sizes(), ScalarType::Float64, x.device());
    const double scale = n == 0 ? NAN : 1.0 / static_cast<double>(n);
    run_reduce<T>(x, attrs.dims, SumPolicy<T, double, double>{means.data<double>(), scale, true});
    run_reduce<T>(x, attrs.dims, SqDevPolicy<T>{means.data<double>(), a.out[0].data<T>(), divisor});
  });
}

void norm(const KernelArgs& a, const NormAttrs& attrs) {
  const Tensor& x = a.in[0];
  DeviceGuard guard(x.device());
  const double p = attrs.p;
  EMBER_CUDA_DISPATCH_FLOAT(x.dtype(), "norm", [&]<typename T>() {
    using Acc = float_acc_t<T>;
    T* out = a.out[0].data<T>();
    const Acc pa = static_cast<Acc>(p);
    if (p == 2) run_reduce<T>(x, attrs.dims, NormPolicy<T, NormKind::L2>{out, pa});
    else if (p == 1) run_reduce<T>(x, attrs.dims, NormPolicy<T, NormKind::L1>{out, pa});
    else if (p == 0) run_reduce<T>(x, attrs.dims, NormPolicy<T, NormKind::L0>{out, pa});
    else if (std::isinf(p) && p > 0) run_reduce<T>(x, attrs.dims, NormPolicy<T, NormKind::Inf>{out, pa});
    else if (std::isinf(p)) run_reduce<T>(x, attrs.dims, NormPolicy<T, NormKind::NegInf>{out, pa});
    else run_reduce<T>(x, attrs.dims, NormPolicy<T, NormKind::P>{out, pa});
  });
}

void logsumexp(const KernelArgs& a, const ReduceAttrs& attrs) {
  const Tensor& x = a.in[0];
  DeviceGuard guard(x.device());
  EMBER_CUDA_DISPATCH_FLOAT(x.dtype(), "logsumexp", [&]<typename T>() {
    using Acc = float_acc_t<T>;
    Tensor shift = Tensor::empty(a.out[0].sizes(), CppTypeToScalar<Acc>::value, x.device());
    run_reduce<T>(x, attrs.dims, MaxToBufPolicy<Acc>{shift.data<Acc>()});
    run_reduce<T>(x, attrs.dims, SumExpPolicy<T>{shift.data<Acc>(), a.out[0].data<T>()});
  });
}

template <bool IsMax>
static void arg_reduce(const KernelArgs& a, IntSpan dims, bool with_values, const char* name) {
  const Tensor& x = a.in[0];
  DeviceGuard guard(x.device());
  EMBER_CUDA_DISPATCH_ALL(x.dtype(), name, [&]<typename T>() {
    T* values = with_values ? a.out[0].data<T>() : nullptr;
    int64_t* indices = (with_values ? a.out[1] : a.out[0]).data<int64_t>();
    run_reduce<T>(x, dims, ArgPolicy<T, IsMax>{values, indices, IsMax ? lowest_value<T>() : highest_value<T>()});
  });
}
void max_dim(const KernelArgs& a, const ReduceDimAttrs& attrs) { arg_reduce<true>(a, attrs.dims, true, "max"); }
void min_dim(const KernelArgs& a, const ReduceDimAttrs& attrs) { arg_reduce<false>(a, attrs.dims, true, "min"); }
void argmax(const KernelArgs& a, const ReduceAttrs& attrs) { arg_reduce<true>(a, attrs.dims, false, "argmax"); }
void argmin(const KernelArgs& a, const ReduceAttrs& attrs) { arg_reduce<false>(a, attrs.dims, false, "argmin"); }

}  // namespace ember::cuda
