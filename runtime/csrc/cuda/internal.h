#pragma once
// Host-side helpers shared by the CUDA backend's files (no device code: usable from .cpp files).
#include <cuda_runtime.h>

#include "core/tensor.h"

namespace ember::cuda {

// Copies src (broadcast to dst's shape, any dtype) into dst on the current stream (copy.cu).
void copy_kernel(const Tensor& dst, const Tensor& src);
// t itself when it is contiguous with dtype `dtype`, else a contiguous converted copy.
Tensor contiguous_as(const Tensor& t, ScalarType dtype);
bool is_pinned(const Tensor& t);
Tensor pin_memory(const Tensor& t);
Tensor& copy_between_devices(Tensor& dst, const Tensor& src, bool non_blocking);

}  // namespace ember::cuda
