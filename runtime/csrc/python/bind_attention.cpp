// Private bindings of cuDNN loading (cuda/cudnn_loader.h) and of whether the fused CUDA attention
// can run (cuda/attention.h); ember.cuda.cudnn reports them. The attention op itself is generated
// from spec/attention.yaml (ember._C._fused_attention). They exist in every build: without CUDA or
// cuDNN they report why the fused CUDA path is unavailable.
#include <string>
#include <vector>

#include "python/bindings.h"

#ifdef EMBER_WITH_CUDA
#include "cuda/attention.h"
#include "cuda/cudnn_loader.h"
#endif

namespace ember::python {

#ifdef EMBER_WITH_CUDA

void bind_attention(py::module_& m) {
  using namespace ember::cuda;
  m.def("_cudnn_load", [](const std::vector<std::string>& candidates) { return cudnn::load(candidates); },
        py::arg("candidates") = std::vector<std::string>());
  m.def("_cudnn_version", [] { return static_cast<int64_t>(cudnn::version()); });
  m.def("_cudnn_unavailable_reason", [] { return cudnn::unavailable_reason(); });
  m.def("_cuda_flash_attention_unavailable_reason", [](const std::vector<std::string>& candidates) {
    return flash_attention_unavailable_reason(candidates);
  }, py::arg("candidates") = std::vector<std::string>());
}

#else

void bind_attention(py::module_& m) {
  constexpr const char* kNoCuda = "ember was built without CUDA";
  m.def("_cudnn_load", [](const std::vector<std::string>&) { return false; },
        py::arg("candidates") = std::vector<std::string>());
  m.def("_cudnn_version", [] { return int64_t{0}; });
  m.def("_cudnn_unavailable_reason", [=] { return std::string(kNoCuda); });
  m.def("_cuda_flash_attention_unavailable_reason", [=](const std::vector<std::string>&) {
    return std::string(kNoCuda);
  }, py::arg("candidates") = std::vector<std::string>());
}

#endif

}  // namespace ember::python
