#pragma once
// The C++ API of ember's ops. Every op and composite of runtime/spec/*.yaml is declared in
// generated/functions.h (torch's names, argument order and defaults; each line names its spec
// entry and the file defining it). Below: helpers that C++ code uses but Python does not see.
#include <cstdint>
#include <string_view>

#include "generated/functions.h"

namespace ember {

// Returns x itself when it already has the dtype (and copy is false), like torch's .to().
Tensor to_dtype(const Tensor& x, ScalarType dtype, bool copy = false);
Tensor to_device(const Tensor& x, Device device, bool non_blocking = false);
// Hook for the CUDA backend: dst <- src when their devices differ; without CUDA it raises a clear error.
// non_blocking: a copy from/to pinned host memory does not wait for the stream.
Tensor& copy_between_devices_(Tensor& dst, const Tensor& src, bool non_blocking = false);

// Random state of the default generators (core/generator.h): seed() reseeds nondeterministically.
void manual_seed(uint64_t seed);
uint64_t seed();
uint64_t initial_seed();

// norm's p given as a string: 'fro' is 2 (vector norms take nothing else).
double norm_order(std::string_view p);

}  // namespace ember
