#pragma once
// Helpers shared by the fused attention frontends (ops/attention.cpp) and its CUDA kernel.
#include "core/tensor.h"

namespace ember {

// Dense strides for `sizes` [B, H, T, D] with the first three dims ordered like `like`'s (largest
// stride outermost) and the head dim innermost: torch's rule for attention outputs and gradients,
// so a [B, T, H, D] input (a qkv split + transpose) gets [B, T, H, D]-ordered results.
DimVector attention_strides_like(IntSpan sizes, const Tensor& like);

}  // namespace ember
