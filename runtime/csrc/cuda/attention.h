#pragma once
// Fused scaled-dot-product attention on CUDA: cuDNN's flash attention through cudnn-frontend, the
// CUDA kernels of the op-table rows fused_attention / fused_attention_backward (attention_cudnn.cpp;
// Note [Fused attention through cuDNN]). This header only reports whether they can run here.
#include <string>
#include <vector>

namespace ember::cuda {

// "" when the fused path can run in this process; else why not (built without cuDNN, library not
// loadable, too old). Loads cuDNN on first call, trying `library_candidates` first.
std::string flash_attention_unavailable_reason(const std::vector<std::string>& library_candidates = {});

}  // namespace ember::cuda
