#pragma once
// Row indexing of rotary_embedding's cos/sin, shared by the frontend (ops/rotary.cpp) and the CPU and
// CUDA kernels (Note [Rotary embedding]).
#include <cstdint>

#include "core/tensor.h"
#include "pointwise/math.h"

namespace ember {

// cos/sin are views of shape [*lead, D/2] (x's leading dims; broadcast dims have stride 0) with a unit
// last stride. Row r of x's [rows, D] view reads cos at element offset sum_d idx_d(r) * cos_strides[d]
// (same for sin), idx_d the coordinates of r in `sizes` (the leading dims, size-1 dims dropped and
// contiguous runs merged).
struct RotaryRows {
  static constexpr int kMaxDims = 6;
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t cos_strides[kMaxDims] = {};
  int64_t sin_strides[kMaxDims] = {};

  EMBER_HD void offsets(int64_t r, int64_t& co, int64_t& so) const {
    co = 0;
    so = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t i = r % sizes[d];
      r /= sizes[d];
      co += i * cos_strides[d];
      so += i * sin_strides[d];
    }
  }

  // The indexer of these views; ok() is false when more than kMaxDims dims remain after merging (the
  // frontend then makes cos/sin contiguous, which merges into one dim).
  static RotaryRows of(const Tensor& cos, const Tensor& sin) {
    RotaryRows r;
    r.ndim = 0;
    const int64_t lead = cos.dim() - 1;
    for (int64_t d = 0; d < lead; ++d) {
      const int64_t size = cos.sizes()[d], cs = cos.strides()[d], ss = sin.strides()[d];
      if (size == 1) continue;
      if (r.ndim > 0 && r.ndim <= kMaxDims) {
        const int k = r.ndim - 1;  // merge an outer dim whose stride spans this inner one
        if (r.cos_strides[k] == cs * size && r.sin_strides[k] == ss * size) {
          r.sizes[k] *= size;
          r.cos_strides[k] = cs;
          r.sin_strides[k] = ss;
          continue;
        }
      }
      if (r.ndim < kMaxDims) {
        r.sizes[r.ndim] = size;
        r.cos_strides[r.ndim] = cs;
        r.sin_strides[r.ndim] = ss;
      }
      ++r.ndim;
    }
    return r;
  }
  bool ok() const { return ndim <= kMaxDims; }

  // Every row offset is a multiple of `k` elements (for vector loads of k elements).
  bool strides_multiple_of(int64_t k) const {
    for (int d = 0; d < ndim; ++d)
      if (cos_strides[d] % k != 0 || sin_strides[d] % k != 0) return false;
    return true;
  }
};

}  // namespace ember
