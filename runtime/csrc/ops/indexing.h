#pragma once
// x[i, 1:3, None, ..., mask] from C++ (torch's at::indexing::TensorIndex); ops/indexing.cpp.
#include <span>

#include "ops/ops.h"

namespace ember {

struct TensorIndex {
  enum Kind { Int, Slice, None, Ellipsis, Bool, TensorIdx } kind;
  int64_t value = 0;                      // Int; Bool (0/1)
  int64_t start = 0, stop = 0, step = 1;  // Slice (already clamped like Python's slice.indices)
  Tensor tensor;                          // TensorIdx: an integer or bool index tensor
};

// x[items]: a view when every item is basic, else a copy gathered by advanced indexing.
Tensor index(const Tensor& x, std::span<const TensorIndex> items);
// x[items] = value (a number, or a tensor broadcast to the indexed shape).
Tensor& index_put_(Tensor& x, std::span<const TensorIndex> items, const Operand& value);

}  // namespace ember
