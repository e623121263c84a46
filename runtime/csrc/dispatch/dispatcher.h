#pragma once
// dispatch<OpId::x>(): the one path every op call takes after its frontend has checked arguments and
// allocated outputs. It checks devices, runs the kernel for the device, bumps versions of in-place
// outputs, and records the autograd node when any input requires grad. The attrs argument must be
// the op's own attrs type (AttrsOf<id>, from the spec): anything else does not compile.
#include <initializer_list>

#include "dispatch/op_table.h"

namespace ember {

// The untyped implementation behind dispatch<id> (attrs points to an AttrsOf<id>).
void dispatch_erased(OpId id, std::span<const Tensor> in, std::span<Tensor> out, const void* attrs);

// For an in-place op pass the mutated tensor as out[0] and in[0] (the same tensor).
template <OpId id>
void dispatch(std::span<const Tensor> in, std::span<Tensor> out, const AttrsOf<id>& attrs = {}) {
  dispatch_erased(id, in, out, &attrs);
}

template <OpId id>
Tensor dispatch1(std::initializer_list<Tensor> in, Tensor out, const AttrsOf<id>& attrs = {}) {
  dispatch_erased(id, std::span<const Tensor>(in.begin(), in.size()), std::span<Tensor>(&out, 1), &attrs);
  return out;
}

// A tensor viewing `base`'s storage with new geometry (no copy); marked as a view.
Tensor make_view(const Tensor& base, DimVector sizes, DimVector strides, int64_t offset);

}  // namespace ember
