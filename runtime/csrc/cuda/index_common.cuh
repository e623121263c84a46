#pragma once
// Strided-iteration helpers shared by the CUDA indexing and layout kernels (index.cu,
// index_advanced.cu, layout.cu, sort.cu): an N-d offset walker over K operands, dispatch on element
// size for pure data movement, an atomic add for every dtype, and the index range check of
// Note [CUDA index validation] (index.cu).
#include <array>
#include <cstring>
#include <type_traits>

#include "cuda/loops.cuh"

namespace ember::cuda {

template <int K>  // K operands over one shape (row-major), element strides
struct NdIter {
  int nd = 0;
  int64_t numel = 1;
  int64_t sizes[kMaxDims];
  int64_t strides[K][kMaxDims];
  __device__ __forceinline__ void offsets(int64_t linear, int64_t (&off)[K]) const {
#pragma unroll
    for (int k = 0; k < K; ++k) off[k] = 0;
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t idx = linear % sizes[d];
      linear /= sizes[d];
#pragma unroll
      for (int k = 0; k < K; ++k) off[k] += idx * strides[k][d];
    }
  }
};

// Sizes/strides of a tensor with 0-dim tensors seen as 1-element vectors.
inline DimVector sizes1(const Tensor& t) { return t.dim() ? t.sizes() : DimVector{1}; }
inline DimVector strides1(const Tensor& t) { return t.dim() ? t.strides() : DimVector{1}; }
// Strides with dimension d zeroed (the indexed dim is addressed through the index value).
inline DimVector without_dim(DimVector s, int64_t d) { s[d] = 0; return s; }

template <int K>
NdIter<K> make_iter(IntSpan sizes, const std::array<DimVector, K>& strides) {
  NdIter<K> it;
  EMBER_CHECK(sizes.size() <= static_cast<size_t>(kMaxDims), "[cuda index] tensors with more than ", kMaxDims,
              " dimensions are not supported (got ", sizes.size(), ")");
  it.nd = static_cast<int>(sizes.size());
  for (int d = 0; d < it.nd; ++d) {
    it.sizes[d] = sizes[d];
    it.numel *= sizes[d];
    for (int k = 0; k < K; ++k) it.strides[k][d] = strides[k][d];
  }
  return it;
}

// Calls f.template operator()<bits_t>() with the unsigned type of t's element size.
template <typename F>
void dispatch_bytes(ScalarType t, const F& f) {
  switch (element_size(t)) {
    case 1: f.template operator()<uint8_t>(); break;
    case 2: f.template operator()<uint16_t>(); break;
    case 4: f.template operator()<uint32_t>(); break;
    default: f.template operator()<uint64_t>(); break;
  }
}

// Atomic *addr += v for every dtype (bool: logical or; CAS on the containing word for 1- and
// 2-byte types).
template <typename T>
__device__ void atomic_add(T* addr, cuda_opmath_t<T> v) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, int32_t>) {
    atomicAdd(addr, static_cast<T>(v));
  } else if constexpr (std::is_same_v<T, int64_t>) {
    atomicAdd(reinterpret_cast<unsigned long long*>(addr), static_cast<unsigned long long>(v));
  } else {
    // 1- or 2-byte types: compare-and-swap the aligned 32-bit word that holds the value.
    const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
    unsigned int* word = reinterpret_cast<unsigned int*>(a & ~uintptr_t(3));
    const unsigned shift = static_cast<unsigned>(a & 3) * 8;
    constexpr unsigned mask = sizeof(T) == 1 ? 0xffu : 0xffffu;
    unsigned int old = *word, assumed;
    do {
      assumed = old;
      T cur;
      const uint32_t bits = (assumed >> shift) & mask;
      memcpy(&cur, &bits, sizeof(T));
      T next;
      if constexpr (std::is_same_v<T, bool>) next = cur || (v != 0);
      else next = cvt<T>(cvt<cuda_opmath_t<T>>(cur) + v);
      uint32_t nbits = 0;
      memcpy(&nbits, &next, sizeof(T));
      old = atomicCAS(word, assumed, (assumed & ~(mask << shift)) | ((nbits & mask) << shift));
    } while (assumed != old);
  }
}

// Raises `kind` if a value of the int64 tensor `idx` is outside [-size, size) (allow_negative) or
// [0, size): one min/max pass and a host sync; skipped during graph capture (index.cu).
void check_index_range(const Tensor& idx, int64_t size, bool allow_negative, ErrorKind kind, const char* op,
                       int64_t dim);

}  // namespace ember::cuda
