// Private bindings of the fused CUDA attention (cuda/attention.h) and of cuDNN loading
// (cuda/cudnn_loader.h). ember.nn.functional.scaled_dot_product_attention calls them through an
// autograd.Function; ember.cuda.cudnn reports availability. They exist in every build: without
// CUDA or cuDNN they report why the fused path is unavailable and raise NotImplementedError.
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

  // -> (out [B, H, Tq, Dv], logsumexp stats [B, H, Tq, 1] float32, rng state or None)
  m.def("_cuda_flash_attention_fwd", [](const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                                        bool causal, double dropout_p, bool prepare_backward) {
    AttentionForward r = flash_attention_forward(q, k, v, AttentionAttrs{scale, causal, dropout_p}, prepare_backward);
    return py::make_tuple(r.out, r.stats, r.rng.defined() ? py::cast(r.rng) : py::none());
  }, py::arg("query"), py::arg("key"), py::arg("value"), py::arg("scale"), py::arg("is_causal"),
     py::arg("dropout_p"), py::arg("prepare_backward") = true);

  // -> (grad_query, grad_key, grad_value)
  m.def("_cuda_flash_attention_bwd", [](const Tensor& grad_out, const Tensor& q, const Tensor& k, const Tensor& v,
                                        const Tensor& out, const Tensor& stats, py::object rng, double scale,
                                        bool causal, double dropout_p) {
    AttentionForward fwd{out, stats, rng.is_none() ? Tensor() : rng.cast<Tensor>()};
    AttentionGrads g = flash_attention_backward(grad_out, q, k, v, fwd, AttentionAttrs{scale, causal, dropout_p});
    return py::make_tuple(g.dq, g.dk, g.dv);
  }, py::arg("grad_out"), py::arg("query"), py::arg("key"), py::arg("value"), py::arg("out"), py::arg("stats"),
     py::arg("rng"), py::arg("scale"), py::arg("is_causal"), py::arg("dropout_p"));
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
  auto unavailable = [=](py::args, py::kwargs) -> py::object {
    fail(ErrorKind::NotImplemented, "[scaled_dot_product_attention] fused CUDA attention: ", kNoCuda);
  };
  m.def("_cuda_flash_attention_fwd", unavailable);
  m.def("_cuda_flash_attention_bwd", unavailable);
}

#endif

}  // namespace ember::python
