#pragma once
// Tensor <-> DLPack (zero-copy both ways), the C++ half of ember.from_dlpack / Tensor.__dlpack__
// (python/interop_dlpack.cpp wraps these in capsules). Note [DLPack ownership] there.
#include "core/dlpack_abi.h"
#include "core/tensor.h"

namespace ember {

// An export owning an alias of `t`; its deleter frees both. is_copy: t is a private copy (the flag
// tells the consumer it may write).
DLManagedTensor* to_dlpack(const Tensor& t);
DLManagedTensorVersioned* to_dlpack_versioned(const Tensor& t, bool is_copy);
// A tensor viewing `dl`'s memory; deleter(managed) runs when the last tensor sharing it dies.
Tensor from_dlpack(const DLTensor& dl, void* managed, DataPtr::Deleter deleter);

}  // namespace ember
