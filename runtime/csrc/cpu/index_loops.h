#pragma once
// Small strided-iteration helpers shared by the CPU layout and indexing kernels (cpu/layout.cpp,
// cpu/index.cpp). Data-movement kernels dispatch on the element *size* (1/2/4/8 bytes), not the
// dtype: copying bits is dtype-agnostic and keeps compile cost low.
#include <cstdint>
#include <array>
#include <cstring>
#include <vector>

#include "core/dim_vector.h"
#include "core/parallel.h"
#include "core/tensor.h"

namespace ember::cpu {

// An unsigned integer type of the given byte width (the "bits" a copy kernel moves).
template <int Bytes> struct Bits;
template <> struct Bits<1> { using type = uint8_t; };
template <> struct Bits<2> { using type = uint16_t; };
template <> struct Bits<4> { using type = uint32_t; };
template <> struct Bits<8> { using type = uint64_t; };

// Calls fn.template operator()<bits_t>() for the element size of `dtype`.
template <typename F>
void dispatch_by_size(ScalarType dtype, const F& fn) {
  switch (element_size(dtype)) {
    case 1: fn.template operator()<uint8_t>(); break;
    case 2: fn.template operator()<uint16_t>(); break;
    case 4: fn.template operator()<uint32_t>(); break;
    default: fn.template operator()<uint64_t>(); break;
  }
}

// Visits every element of an N-d index space [sizes] in row-major order, passing the element
// offsets (in elements) of `num_ops` operands with the given strides. Runs in parallel over
// chunks of the flat range; `fn(const int64_t* offsets)` must not throw. The innermost dim runs
// as a tight loop (the odometer only moves once per row).
template <int NumOps, typename F>
void for_each_strided(IntSpan sizes, const std::array<const int64_t*, NumOps>& strides,
                      const std::array<int64_t, NumOps>& base, const F& fn, int64_t grain = kGrainSize) {
  const int64_t nd = static_cast<int64_t>(sizes.size());
  const int64_t numel = numel_of(sizes);
  if (numel == 0) return;
  if (nd == 0) { fn(base.data()); return; }
  parallel_for(0, numel, grain, [&](int64_t lo, int64_t hi) {
    DimVector coord(nd, 0);
    std::array<int64_t, NumOps> off = base;
    int64_t rem = lo;
    for (int64_t d = nd - 1; d >= 0; --d) {
      coord[d] = rem % sizes[d];
      rem /= sizes[d];
      for (int k = 0; k < NumOps; ++k) off[k] += coord[d] * strides[k][d];
    }
    const int64_t inner = nd - 1;
    std::array<int64_t, NumOps> inner_stride;
    for (int k = 0; k < NumOps; ++k) inner_stride[k] = strides[k][inner];
    for (int64_t i = lo; i < hi;) {
      const int64_t run = std::min(sizes[inner] - coord[inner], hi - i);
      std::array<int64_t, NumOps> o = off;
      for (int64_t j = 0; j < run; ++j) {
        fn(o.data());
        for (int k = 0; k < NumOps; ++k) o[k] += inner_stride[k];
      }
      i += run;
      coord[inner] += run;
      for (int k = 0; k < NumOps; ++k) off[k] += run * inner_stride[k];
      // Carry: the inner dim wrapped, move the outer dims.
      for (int64_t d = inner; d >= 0 && coord[d] == sizes[d]; --d) {
        for (int k = 0; k < NumOps; ++k) off[k] -= sizes[d] * strides[k][d];
        coord[d] = 0;
        if (d == 0) break;
        ++coord[d - 1];
        for (int k = 0; k < NumOps; ++k) off[k] += strides[k][d - 1];
      }
    }
  });
}

// Merges adjacent dims that are contiguous over each other in both operands, drops size-1 dims.
inline void coalesce2(DimVector& sizes, DimVector& s0, DimVector& s1) {
  DimVector sz, a, b;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    if (!sz.empty() && a.back() == s0[d] * sizes[d] && b.back() == s1[d] * sizes[d]) {
      sz.back() *= sizes[d];
      a.back() = s0[d];
      b.back() = s1[d];
      continue;
    }
    sz.push_back(sizes[d]);
    a.push_back(s0[d]);
    b.push_back(s1[d]);
  }
  sizes = std::move(sz);
  s0 = std::move(a);
  s1 = std::move(b);
}

// dst[i] = src[i] over `sizes`, both strided (strides may be negative or zero for src). Rows that
// are dense in both operands are copied with memcpy.
template <typename bits_t>
void copy_strided(bits_t* dst, IntSpan dst_strides, const bits_t* src, IntSpan src_strides, IntSpan sizes_in) {
  DimVector sizes(sizes_in), ds(dst_strides), ss(src_strides);
  coalesce2(sizes, ds, ss);
  if (numel_of(sizes) == 0) return;
  if (!sizes.empty() && ds.back() == 1 && ss.back() == 1) {
    const int64_t row = sizes.back();
    sizes.back() = 1;
    for_each_strided<2>(sizes, {ds.data(), ss.data()}, {0, 0},
                        [&](const int64_t* off) { std::memcpy(dst + off[0], src + off[1], row * sizeof(bits_t)); },
                        std::max<int64_t>(1, kGrainSize / row));
    return;
  }
  for_each_strided<2>(sizes, {ds.data(), ss.data()}, {0, 0},
                      [&](const int64_t* off) { dst[off[0]] = src[off[1]]; });
}

// Copies `src` into `dst` (same sizes and dtype) by bits.
inline void copy_tensor_bits(const Tensor& dst, const Tensor& src) {
  dispatch_by_size(dst.dtype(), [&]<typename bits_t>() {
    copy_strided(dst.data<bits_t>(), dst.strides(), src.data<bits_t>(), src.strides(), dst.sizes());
  });
}

}  // namespace ember::cpu
