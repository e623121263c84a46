#pragma once
// The lines of a tensor along one dim (cumsum, softmax, sort): a strided input read line by line
// into a contiguous output of the same shape except, possibly, the dim's own size (topk's k).
#include <cstdint>

#include "core/tensor.h"

namespace ember::cpu {

struct DimLines {
  int64_t dim = 0;        // 0 for a 0-d tensor (one line of one element)
  int64_t count = 0;      // number of lines (0 when the dim is empty)
  int64_t length = 1;     // input elements per line
  int64_t in_stride = 1;  // input stride along the dim
  int64_t out_stride = 1; // output stride along the dim
  DimVector sizes, in_strides, out_strides;  // the other dims, outermost first

  DimLines(const Tensor& x, int64_t dim_, IntSpan out_sizes) {
    const int64_t nd = x.dim();
    if (nd == 0) { count = x.numel(); return; }
    dim = dim_;
    const DimVector ostr = contiguous_strides(out_sizes);
    length = x.sizes()[dim];
    in_stride = x.strides()[dim];
    out_stride = ostr[dim];
    count = length == 0 ? 0 : x.numel() / length;
    for (int64_t d = 0; d < nd; ++d)
      if (d != dim) { sizes.push_back(x.sizes()[d]); in_strides.push_back(x.strides()[d]); out_strides.push_back(ostr[d]); }
  }

  struct Offsets { int64_t in, out; };
  // Input and output offsets of line r (row-major over the other dims).
  Offsets offsets(int64_t r) const {
    Offsets o{0, 0};
    for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
      const int64_t i = r % sizes[d];
      r /= sizes[d];
      o.in += i * in_strides[d];
      o.out += i * out_strides[d];
    }
    return o;
  }
};

}  // namespace ember::cpu
