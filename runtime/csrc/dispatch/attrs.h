#pragma once
// Attrs: the non-tensor arguments of one op call, recorded with the autograd node so the backward
// rule sees exactly what the forward saw. Each op documents which fields it reads in op_table.h.
#include "core/dim_vector.h"
#include "core/dtype.h"
#include "core/scalar.h"

namespace ember {

struct Attrs {
  Scalar alpha{int64_t{1}};  // add/sub alpha
  Scalar scalar;             // first scalar argument: fill value, exponent, slope, clamp min, ...
  Scalar scalar2;            // second scalar argument: clamp max, beta, ...
  bool has_scalar = false;   // optional scalars (clamp min) are present
  bool has_scalar2 = false;
  int64_t dim = 0;           // single dim argument
  int64_t dim2 = 0;          // second dim (transpose, diagonal)
  int64_t k = 0;             // integer argument: topk k, diagonal offset, repeats, ...
  DimVector dims;            // dim lists, permutations, target sizes
  DimVector dims2;           // second list (strides for as_strided, shifts for roll)
  bool keepdim = false;
  bool flag = false;         // op-specific switch: approximate="tanh", largest, descending, ...
  bool flag2 = false;        // second switch: sorted, ...
  ScalarType dtype = ScalarType::Float32;  // target dtype where the op takes one
};

}  // namespace ember
