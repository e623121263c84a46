#pragma once
// dispatch(): the one path every op call takes after its frontend has checked arguments and
// allocated outputs. It checks devices, runs the kernel for the device, bumps versions of
// in-place outputs, and records the autograd node when any input requires grad.
#include <initializer_list>

#include "dispatch/op_table.h"

namespace ember {

// For an in-place op pass the mutated tensor as out[0] and in[0] (the same tensor).
void dispatch(OpId id, std::span<const Tensor> in, std::span<Tensor> out, const Attrs& attrs);

inline Tensor dispatch1(OpId id, std::initializer_list<Tensor> in, Tensor out, const Attrs& attrs = Attrs()) {
  dispatch(id, std::span<const Tensor>(in.begin(), in.size()), std::span<Tensor>(&out, 1), attrs);
  return out;
}

// A tensor viewing `base`'s storage with new geometry (no copy); marked as a view.
Tensor make_view(const Tensor& base, DimVector sizes, DimVector strides, int64_t offset);

}  // namespace ember
