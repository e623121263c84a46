#pragma once
// Fused scaled-dot-product attention on CUDA: cuDNN's flash attention through cudnn-frontend
// (attention_cudnn.cpp; Note [Fused attention through cuDNN]). Standalone functions with typed
// attributes, called from a private binding (python/bind_attention.cpp) by
// ember.nn.functional.scaled_dot_product_attention.
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ember::cuda {

struct AttentionAttrs {
  double scale = 1.0;      // multiplies q @ k^T
  bool causal = false;     // top-left aligned lower-triangular mask (torch's is_causal)
  double dropout_p = 0.0;  // probability of dropping an attention weight; 0 disables dropout
};

struct AttentionForward {
  Tensor out;    // [B, H, Tq, Dv]: a [B, Tq, H, Dv] buffer seen through a permute (free head merge)
  Tensor stats;  // [B, H, Tq, 1] float32: logsumexp of each scaled score row, all backward needs
  Tensor rng;    // int64 [2] on the device, the dropout mask's Philox (seed, offset); undefined without dropout
};

struct AttentionGrads {
  Tensor dq, dk, dv;
};

// "" when the fused path can run in this process; else why not (built without cuDNN, library not
// loadable, too old). Loads cuDNN on first call, trying `library_candidates` first.
std::string flash_attention_unavailable_reason(const std::vector<std::string>& library_candidates = {});

// q [B, H, Tq, D], k [B, H, Tk, D], v [B, H, Tk, Dv]: float16 or bfloat16 on one CUDA device, any
// strides (copied only when cuDNN cannot read them). ValueError/TypeError for bad inputs;
// NotImplementedError (with cuDNN's reason) for configurations cuDNN does not support, which the
// caller answers with the composite path. With `prepare_backward` the backward graph is built
// (cached) too, so an unsupported backward fails here, before the caller commits to this path.
AttentionForward flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                         const AttentionAttrs& attrs, bool prepare_backward);
// Gradients of the forward above; `fwd` is its result (same attrs), grad_out has out's shape.
AttentionGrads flash_attention_backward(const Tensor& grad_out, const Tensor& q, const Tensor& k, const Tensor& v,
                                        const AttentionForward& fwd, const AttentionAttrs& attrs);

}  // namespace ember::cuda
