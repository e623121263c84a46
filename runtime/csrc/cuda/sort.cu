// CUDA sort and topk along one dim (frontends: ops/sort.cpp), same results as cpu/sort.cpp,
// indices included: the order is torch's (NaN above every number, -0.0 == +0.0) and ties keep
// ascending index order (stable), so even rows with ties match the CPU exactly.
// Note [CUDA sort by two stable radix passes]
// Every element gets an unsigned key whose integer order is the value order (descending: the key's
// complement) and, as value, its flat position e = row * n + i in the rows-by-n layout. Pass 1
// sorts all N = rows * n pairs by key with cub::DeviceRadixSort (stable); pass 2 stably sorts the
// permuted positions by row = e / n. Pass 2 keeps pass 1's order inside each row, so each row ends
// up sorted by (key, i): exactly the CPU comparator. Two whole-device sorts beat a segmented sort
// (one block per row) both for a few huge rows and for many tiny ones. topk sorts fully and keeps
// the first k of each row (a selection kernel would be cheaper for k << n).
// CUB's scratch space comes from ember's caching allocator, so sorting is graph-capturable.
#include <algorithm>

#include <cub/device/device_radix_sort.cuh>

#include "cuda/index_common.cuh"
#include "generated/kernels_reduce.h"

namespace ember::cuda {
namespace {

// Order-preserving unsigned key of a stored value (float16/bfloat16 from their bits).
template <typename T> struct SortKey;
template <> struct SortKey<bool> {
  using type = uint8_t;
  __device__ static type of(bool v) { return v ? 1 : 0; }
};
template <> struct SortKey<uint8_t> {
  using type = uint8_t;
  __device__ static type of(uint8_t v) { return v; }
};
template <> struct SortKey<int8_t> {
  using type = uint8_t;
  __device__ static type of(int8_t v) { return static_cast<uint8_t>(v) ^ 0x80u; }
};
template <> struct SortKey<int32_t> {
  using type = uint32_t;
  __device__ static type of(int32_t v) { return static_cast<uint32_t>(v) ^ 0x80000000u; }
};
template <> struct SortKey<int64_t> {
  using type = uint64_t;
  __device__ static type of(int64_t v) { return static_cast<uint64_t>(v) ^ (uint64_t{1} << 63); }
};

// IEEE bits -> ordered key: every NaN maps to the largest key, -0.0 to +0.0's key, negatives
// are complemented (larger magnitude sorts lower), positives get the sign bit set.
template <typename U>
__device__ __forceinline__ U ordered_float_bits(U bits, U exp_mask) {
  constexpr U sign = U(1) << (sizeof(U) * 8 - 1);
  const U magnitude = bits & U(~sign);
  if (magnitude > exp_mask) return U(~U(0));  // NaN
  if (magnitude == 0) bits = 0;                // -0.0 ties with +0.0
  return (bits & sign) ? U(~bits) : U(bits | sign);
}
template <> struct SortKey<float> {
  using type = uint32_t;
  __device__ static type of(float v) { return ordered_float_bits<uint32_t>(__float_as_uint(v), 0x7f800000u); }
};
template <> struct SortKey<double> {
  using type = uint64_t;
  __device__ static type of(double v) {
    return ordered_float_bits<uint64_t>(static_cast<uint64_t>(__double_as_longlong(v)), 0x7ff0000000000000ull);
  }
};
template <> struct SortKey<Half> {
  using type = uint16_t;
  __device__ static type of(Half v) { return ordered_float_bits<uint16_t>(v.x, 0x7c00u); }
};
template <> struct SortKey<BFloat16> {
  using type = uint16_t;
  __device__ static type of(BFloat16 v) { return ordered_float_bits<uint16_t>(v.x, 0x7f80u); }
};

// Geometry of the rows: `it` walks the dims other than the sorted one with the strides of x,
// values and indices; the *_step fields are the strides along the sorted dim.
struct RowGeometry {
  NdIter<3> it;
  int64_t n = 1;  // row length (size of the sorted dim)
  int64_t x_step = 1, v_step = 1, i_step = 1;
};

RowGeometry make_row_geometry(const Tensor& x, const Tensor& values, const Tensor& indices, int64_t dim) {
  const DimVector xs = sizes1(x), xst = strides1(x), vst = strides1(values), ist = strides1(indices);
  DimVector row_sizes;
  std::array<DimVector, 3> row_strides;
  for (int64_t d = 0; d < static_cast<int64_t>(xs.size()); ++d) {
    if (d == dim) continue;
    row_sizes.push_back(xs[d]);
    row_strides[0].push_back(xst[d]);
    row_strides[1].push_back(vst[d]);
    row_strides[2].push_back(ist[d]);
  }
  RowGeometry g;
  g.it = make_iter<3>(row_sizes, row_strides);
  g.n = xs[dim];
  g.x_step = xst[dim];
  g.v_step = vst[dim];
  g.i_step = ist[dim];
  return g;
}

// keys[e] = key of x at (row e / n, position e % n), complemented when descending; pos[e] = e.
template <typename T, typename K, typename P>
__global__ void make_keys_kernel(const T* x, RowGeometry g, int64_t total, bool descending, K* keys, P* pos) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const int64_t row = e / g.n, i = e - row * g.n;
    int64_t off[3];
    g.it.offsets(row, off);
    const K key = SortKey<T>::of(x[off[0] + i * g.x_step]);
    keys[e] = descending ? K(~key) : key;
    pos[e] = static_cast<P>(e);
  }
}

template <typename R, typename P>
__global__ void row_keys_kernel(const P* pos, int64_t total, int64_t n, R* rows) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride)
    rows[e] = static_cast<R>(static_cast<int64_t>(pos[e]) / n);
}

// The first k sorted entries of every row: values[row, j] = x[row, i], indices[row, j] = i.
template <typename B, typename P>
__global__ void write_back_kernel(const B* x, RowGeometry g, int64_t rows, int64_t k, const P* sorted_pos, B* values,
                                  int64_t* indices) {
  const int64_t total = rows * k;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const int64_t row = t / k, j = t - row * k;
    const int64_t i = static_cast<int64_t>(sorted_pos[row * g.n + j]) - row * g.n;
    int64_t off[3];
    g.it.offsets(row, off);
    values[off[1] + j * g.v_step] = x[off[0] + i * g.x_step];
    indices[off[2] + j * g.i_step] = i;
  }
}

// Device scratch as an ember tensor: comes from (and returns to) the caching allocator.
template <typename U>
Tensor scratch(int64_t count, Device device) {
  return Tensor::empty(DimVector{static_cast<int64_t>(count * sizeof(U))}, ScalarType::UInt8, device);
}

// Stable ascending radix sort of (keys, values) on bits [0, end_bit); the result is in
// keys.Current() / values.Current() (see cub::DoubleBuffer).
template <typename K, typename P>
void radix_sort_pairs(cub::DoubleBuffer<K>& keys, cub::DoubleBuffer<P>& values, int64_t total, int end_bit,
                      Device device, cudaStream_t stream) {
  size_t temp_bytes = 0;
  EMBER_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys, values, total, 0, end_bit, stream));
  Tensor temp = Tensor::empty(DimVector{static_cast<int64_t>(std::max<size_t>(temp_bytes, 1))}, ScalarType::UInt8,
                              device);
  EMBER_CUDA_CHECK(
      cub::DeviceRadixSort::SortPairs(temp.data_ptr(), temp_bytes, keys, values, total, 0, end_bit, stream));
}

int bit_width(uint64_t v) {
  int b = 0;
  while (v) { ++b; v >>= 1; }
  return b;
}

template <typename T, typename P>
void sort_rows_typed(const Tensor& x, const Tensor& values, const Tensor& indices, const RowGeometry& g, int64_t rows,
                     int64_t k, bool descending) {
  using K = typename SortKey<T>::type;
  const Device device = x.device();
  cudaStream_t stream = current_stream();
  const int64_t total = rows * g.n;
  Tensor keys_a = scratch<K>(total, device), keys_b = scratch<K>(total, device);
  Tensor pos_a = scratch<P>(total, device), pos_b = scratch<P>(total, device);
  make_keys_kernel<T, K, P><<<elementwise_grid(total), kBlock, 0, stream>>>(
      x.data<T>(), g, total, descending, static_cast<K*>(keys_a.data_ptr()), static_cast<P*>(pos_a.data_ptr()));
  EMBER_CUDA_KERNEL_CHECK();
  cub::DoubleBuffer<K> keys(static_cast<K*>(keys_a.data_ptr()), static_cast<K*>(keys_b.data_ptr()));
  cub::DoubleBuffer<P> pos(static_cast<P*>(pos_a.data_ptr()), static_cast<P*>(pos_b.data_ptr()));
  radix_sort_pairs(keys, pos, total, static_cast<int>(sizeof(K) * 8), device, stream);
  if (rows > 1) {  // pass 2: group by row, keeping pass 1's order within each row
    using R = P;   // rows <= total, so the position type holds every row number
    keys_a = Tensor(), keys_b = Tensor();
    Tensor rows_a = scratch<R>(total, device), rows_b = scratch<R>(total, device);
    row_keys_kernel<R, P><<<elementwise_grid(total), kBlock, 0, stream>>>(pos.Current(), total, g.n,
                                                                   static_cast<R*>(rows_a.data_ptr()));
    EMBER_CUDA_KERNEL_CHECK();
    cub::DoubleBuffer<R> row_keys(static_cast<R*>(rows_a.data_ptr()), static_cast<R*>(rows_b.data_ptr()));
    radix_sort_pairs(row_keys, pos, total, bit_width(static_cast<uint64_t>(rows - 1)), device, stream);
  }
  using B = std::conditional_t<sizeof(T) == 1, uint8_t,
            std::conditional_t<sizeof(T) == 2, uint16_t, std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;
  write_back_kernel<B, P><<<elementwise_grid(rows * k), kBlock, 0, stream>>>(
      static_cast<const B*>(x.data_ptr()), g, rows, k, pos.Current(), static_cast<B*>(values.data_ptr()),
      indices.data<int64_t>());
  EMBER_CUDA_KERNEL_CHECK();
}

// Sorts every row along `dim` and writes the first k entries (k = n for sort).
void sort_rows(const KernelArgs& a, int64_t dim_arg, int64_t k, bool descending, const char* name) {
  const Tensor& x = a.in[0];
  const Tensor &values = a.out[0], &indices = a.out[1];
  const int64_t dim = x.dim() == 0 ? 0 : dim_arg;
  const int64_t n = x.dim() == 0 ? 1 : x.sizes()[dim];
  if (values.numel() == 0 || n == 0) return;
  DeviceGuard guard(x.device());
  const RowGeometry g = make_row_geometry(x, values, indices, dim);
  const int64_t rows = x.numel() / n;
  const bool small = x.numel() <= static_cast<int64_t>(UINT32_MAX);
  EMBER_CUDA_DISPATCH_ALL(x.dtype(), name, [&]<typename T>() {
    if (small) sort_rows_typed<T, uint32_t>(x, values, indices, g, rows, k, descending);
    else sort_rows_typed<T, uint64_t>(x, values, indices, g, rows, k, descending);
  });
}

}  // namespace

void sort(const KernelArgs& a, const SortAttrs& attrs) {
  const Tensor& x = a.in[0];
  sort_rows(a, attrs.dim, x.dim() == 0 ? 1 : x.sizes()[attrs.dim], attrs.descending, "sort");
}

// largest sorts descending; the result is always sorted, like the CPU kernel.
void topk(const KernelArgs& a, const TopkAttrs& attrs) { sort_rows(a, attrs.dim, attrs.k, attrs.largest, "topk"); }

}  // namespace ember::cuda
