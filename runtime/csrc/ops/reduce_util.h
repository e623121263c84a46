#pragma once
// Helpers shared by the reduction and sorting frontends (ops/reduce.cpp, ops/sort.cpp).
#include "core/tensor.h"

namespace ember {

struct ReduceShape {
  DimVector dims;        // reduced dims, wrapped and ascending (every dim when none were given)
  DimVector out_sizes;   // output sizes honouring keepdim
  DimVector keep_sizes;  // sizes with reduced dims set to 1 (for broadcasting back in backward)
};

// Resolves `dims` (negative, duplicates rejected, empty = all) into the reduced dims and output sizes.
ReduceShape reduce_shape(const Tensor& x, IntSpan dims, bool keepdim, const char* op);
int64_t reduced_numel(IntSpan in_sizes, IntSpan dims);
// Re-inserts the reduced dims (as size 1) into a keepdim=False result, for broadcasting.
Tensor restore_reduced_dims(const Tensor& t, IntSpan in_sizes, IntSpan dims, bool keepdim);
// restore_reduced_dims, then expand to the input's sizes.
Tensor expand_reduced(const Tensor& g, IntSpan in_sizes, IntSpan dims, bool keepdim);

}  // namespace ember
