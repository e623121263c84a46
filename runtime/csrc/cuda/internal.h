#pragma once
// Host-side helpers shared by the CUDA backend's files (no device code: usable from .cpp files).
#include <cuda_runtime.h>

#include <functional>

#include "core/tensor.h"
#include "dispatch/op_def.h"

namespace ember::cuda {

// Copies src (broadcast to dst's shape, any dtype) into dst on the current stream (copy.cu).
void copy_kernel(const Tensor& dst, const Tensor& src);
// t itself when it is contiguous with dtype `dtype`, else a contiguous converted copy.
Tensor contiguous_as(const Tensor& t, ScalarType dtype);
bool is_pinned(const Tensor& t);
Tensor pin_memory(const Tensor& t);
Tensor& copy_between_devices(Tensor& dst, const Tensor& src, bool non_blocking);
// Runs a CPU kernel (with its attrs bound) on host copies of the inputs/outputs and copies the
// outputs back (host_fallback.cpp): for the cases without a device kernel (integer matmul).
using HostKernel = std::function<void(const KernelArgs&)>;
void run_on_host(const KernelArgs& args, const HostKernel& cpu_kernel);

}  // namespace ember::cuda
