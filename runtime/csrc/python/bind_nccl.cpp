// ember._C._cuda._nccl: NCCL communicators for ember.distributed (cuda/nccl_shim.h). Present in
// every build; without CUDA or without a loadable libnccl, is_available() is False.
#include "python/bindings.h"

#ifdef EMBER_WITH_CUDA
#include <cstring>

#include "cuda/cuda_common.h"
#include "cuda/nccl_shim.h"
#endif

namespace ember::python {

#ifdef EMBER_WITH_CUDA

void bind_nccl(py::module_& cuda_module) {
  using namespace ember::cuda;
  py::module_ m = cuda_module.def_submodule("_nccl", "NCCL communicators (loaded at run time)");
  m.attr("built") = true;
  m.def("is_available", [] { return nccl::available() && is_available(); });
  m.def("load_error", [] { return nccl::load_error(); });
  m.def("version", [] { return nccl::version(); });
  m.def("unique_id", [] {
    nccl::UniqueId id{};
    const nccl::Result r = nccl::api().get_unique_id(&id);
    EMBER_CHECK(r == nccl::kSuccess, "[distributed.init_process_group] ncclGetUniqueId failed: ",
                nccl::api().get_error_string(r));
    return py::bytes(id.internal, nccl::kUniqueIdBytes);
  });
  auto stream_of = [](uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); };
  py::class_<nccl::Communicator, std::shared_ptr<nccl::Communicator>>(m, "Communicator")
      .def(py::init([](py::bytes unique_id, int world_size, int rank, int device) {
        std::string raw = unique_id;
        EMBER_CHECK_VALUE(raw.size() == nccl::kUniqueIdBytes, "[distributed.init_process_group] an NCCL unique id "
                          "has ", nccl::kUniqueIdBytes, " bytes, got ", raw.size());
        nccl::UniqueId id{};
        std::memcpy(id.internal, raw.data(), raw.size());
        py::gil_scoped_release nogil;  // blocks until every rank has joined
        return std::make_shared<nccl::Communicator>(id, world_size, rank, device);
      }), py::arg("unique_id"), py::arg("world_size"), py::arg("rank"), py::arg("device"))
      .def("all_reduce", [stream_of](nccl::Communicator& c, const Tensor& in, const Tensor& out, int op, uintptr_t s) {
        c.all_reduce(in, out, static_cast<nccl::RedOp>(op), stream_of(s));
      })
      .def("broadcast", [stream_of](nccl::Communicator& c, const Tensor& in, const Tensor& out, int root, uintptr_t s) {
        c.broadcast(in, out, root, stream_of(s));
      })
      .def("all_gather", [stream_of](nccl::Communicator& c, const Tensor& in, const Tensor& out, uintptr_t s) {
        c.all_gather(in, out, stream_of(s));
      })
      .def("reduce_scatter", [stream_of](nccl::Communicator& c, const Tensor& in, const Tensor& out, int op,
                                         uintptr_t s) {
        c.reduce_scatter(in, out, static_cast<nccl::RedOp>(op), stream_of(s));
      })
      .def("async_error", &nccl::Communicator::async_error)
      .def("abort", [](nccl::Communicator& c) {
        py::gil_scoped_release nogil;
        c.abort();
      })
      .def("destroy", [](nccl::Communicator& c) {
        py::gil_scoped_release nogil;
        c.destroy();
      })
      .def_property_readonly("valid", &nccl::Communicator::valid)
      .def_property_readonly("rank", &nccl::Communicator::rank)
      .def_property_readonly("world_size", &nccl::Communicator::world_size)
      .def_property_readonly("device", &nccl::Communicator::device);
  m.def("group_start", [] {
    const nccl::Result r = nccl::api().group_start();
    EMBER_CHECK(r == nccl::kSuccess, "[distributed] ncclGroupStart failed: ", nccl::api().get_error_string(r));
  });
  m.def("group_end", [] {
    const nccl::Result r = nccl::api().group_end();
    EMBER_CHECK(r == nccl::kSuccess || r == nccl::kInProgress, "[distributed] ncclGroupEnd failed: ",
                nccl::api().get_error_string(r));
  });
}

#else  // !EMBER_WITH_CUDA

void bind_nccl(py::module_& cuda_module) {
  py::module_ m = cuda_module.def_submodule("_nccl", "NCCL communicators (not built: no CUDA)");
  m.attr("built") = false;
  m.def("is_available", [] { return false; });
  m.def("load_error", [] { return std::string("ember was built without CUDA"); });
}

#endif

}  // namespace ember::python
