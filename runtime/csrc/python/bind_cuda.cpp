// ember._C._cuda: device management, streams, events, memory stats, graphs and pinned memory.
// The submodule exists in every build; without the CUDA backend (or without a GPU) is_available()
// is False and device_count() is 0, and everything else raises a clear RuntimeError.
#include "python/bindings.h"

#ifdef EMBER_WITH_CUDA
#include <cuda_runtime.h>

#include "cuda/allocator.h"
#include "cuda/cuda_common.h"
#include "cuda/graph.h"
#include "cuda/internal.h"
#include "ops/ops.h"
#endif

namespace ember::python {

void bind_nccl(py::module_& cuda_module);  // bind_nccl.cpp: ember._C._cuda._nccl

#ifdef EMBER_WITH_CUDA
namespace {

using namespace ember::cuda;

void require_cuda(const char* what) {
  EMBER_CHECK(is_available(), "[", what, "] no CUDA GPU is available (ember.cuda.is_available() is False)");
}

int device_arg(const py::object& d, const char* what) {
  require_cuda(what);
  if (d.is_none()) return current_device();
  if (PyLong_Check(d.ptr())) return d.cast<int>();
  Device dev = d.cast<Device>();
  EMBER_CHECK_VALUE(dev.is_cuda(), "[", what, "] expected a CUDA device, got ", dev);
  return dev.index;
}

// A CUDA stream. Streams made from Python own their handle; wrappers of existing streams (the
// default stream, current_stream()) do not.
struct PyStream {
  uintptr_t handle = 0;
  int device = 0;
  bool owned = false;
  PyStream(uintptr_t h, int d, bool own) : handle(h), device(d), owned(own) {}
  ~PyStream() {
    if (owned && handle) cudaStreamDestroy(reinterpret_cast<cudaStream_t>(handle));
  }
  cudaStream_t get() const { return reinterpret_cast<cudaStream_t>(handle); }
};

struct PyEvent {
  cudaEvent_t event = nullptr;
  bool timing;
  bool recorded = false;
  explicit PyEvent(bool enable_timing, bool blocking) : timing(enable_timing) {
    unsigned flags = (enable_timing ? 0u : cudaEventDisableTiming) | (blocking ? cudaEventBlockingSync : 0u);
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&event, flags));
  }
  ~PyEvent() {
    if (event) cudaEventDestroy(event);
  }
};

py::dict stats_dict(int device) {
  MemoryStats s = memory_stats(device);
  py::dict d;
  d["allocated_bytes.all.current"] = s.allocated_bytes;
  d["allocated_bytes.all.peak"] = s.peak_allocated_bytes;
  d["requested_bytes.all.current"] = s.requested_bytes;
  d["reserved_bytes.all.current"] = s.reserved_bytes;
  d["reserved_bytes.all.peak"] = s.peak_reserved_bytes;
  d["active.all.current"] = s.active_blocks;
  d["segment.all.current"] = s.segments;
  d["num_allocs"] = s.num_allocs;
  d["num_frees"] = s.num_frees;
  d["cache_hits"] = s.cache_hits;
  d["cache_misses"] = s.cache_misses;
  d["num_splits"] = s.num_splits;
  d["num_merges"] = s.num_merges;
  d["num_ooms"] = s.num_ooms;
  d["num_alloc_retries"] = s.num_alloc_retries;
  d["num_device_frees"] = s.num_device_frees;
  d["inactive_split_bytes.all.current"] = s.inactive_split_bytes;
  d["pending_event_frees"] = s.pending_event_frees;
  const double reserved = static_cast<double>(s.reserved_bytes);
  d["fragmentation"] = reserved > 0 ? static_cast<double>(s.reserved_bytes - s.allocated_bytes) / reserved : 0.0;
  return d;
}

}  // namespace

void bind_cuda(py::module_& m) {
  py::module_ c = m.def_submodule("_cuda", "ember's CUDA backend");
  c.attr("built") = true;
  c.def("is_available", [] { return is_available(); });
  c.def("device_count", [] { return device_count(); });
  c.def("current_device", [] { require_cuda("cuda.current_device"); return current_device(); });
  c.def("set_device", [](py::object d) { set_device(device_arg(d, "cuda.set_device")); });
  c.def("synchronize", [](py::object d) {
    const int dev = device_arg(d, "cuda.synchronize");
    py::gil_scoped_release nogil;
    device_synchronize(dev);
  }, py::arg("device") = py::none());
  c.def("get_device_name", [](py::object d) {
    cudaDeviceProp prop{};
    EMBER_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_arg(d, "cuda.get_device_name")));
    return std::string(prop.name);
  }, py::arg("device") = py::none());
  c.def("get_device_capability", [](py::object d) {
    const int dev = device_arg(d, "cuda.get_device_capability");
    int major = 0, minor = 0;
    EMBER_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    EMBER_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    return py::make_tuple(major, minor);
  }, py::arg("device") = py::none());
  c.def("mem_get_info", [](py::object d) {
    DeviceGuard g(device_arg(d, "cuda.mem_get_info"));
    size_t free_b = 0, total_b = 0;
    EMBER_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return py::make_tuple(free_b, total_b);
  }, py::arg("device") = py::none());

  // ---- streams and events ----
  py::class_<PyStream, std::shared_ptr<PyStream>>(c, "Stream")
      .def(py::init([](py::object d, int priority) {
        const int dev = device_arg(d, "cuda.Stream");
        DeviceGuard g(dev);
        cudaStream_t s = nullptr;
        EMBER_CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, priority));
        return std::make_shared<PyStream>(reinterpret_cast<uintptr_t>(s), dev, true);
      }), py::arg("device") = py::none(), py::arg("priority") = 0)
      .def_property_readonly("cuda_stream", [](const PyStream& s) { return s.handle; })
      .def_property_readonly("device_index", [](const PyStream& s) { return s.device; })
      .def("query", [](const PyStream& s) {
        cudaError_t e = cudaStreamQuery(s.get());
        if (e == cudaErrorNotReady) { cudaGetLastError(); return false; }
        EMBER_CUDA_CHECK(e);
        return true;
      })
      .def("synchronize", [](const PyStream& s) {
        py::gil_scoped_release nogil;
        synchronize_stream(s.get());
      })
      .def("wait_event", [](const PyStream& s, const PyEvent& e) {
        EMBER_CUDA_CHECK(cudaStreamWaitEvent(s.get(), e.event, 0));
      })
      .def("__eq__", [](const PyStream& a, const PyStream& b) { return a.handle == b.handle && a.device == b.device; })
      .def("__hash__", [](const PyStream& s) { return std::hash<uintptr_t>()(s.handle) ^ s.device; });
  c.def("_current_stream", [](py::object d) {
    const int dev = device_arg(d, "cuda.current_stream");
    return std::make_shared<PyStream>(reinterpret_cast<uintptr_t>(current_stream(dev)), dev, false);
  }, py::arg("device") = py::none());
  c.def("_default_stream", [](py::object d) {
    const int dev = device_arg(d, "cuda.default_stream");
    return std::make_shared<PyStream>(reinterpret_cast<uintptr_t>(default_stream(dev)), dev, false);
  }, py::arg("device") = py::none());
  c.def("_set_stream", [](const PyStream& s) { set_current_stream(s.device, s.get()); });

  py::class_<PyEvent, std::shared_ptr<PyEvent>>(c, "Event")
      .def(py::init([](bool enable_timing, bool blocking) {
        require_cuda("cuda.Event");
        return std::make_shared<PyEvent>(enable_timing, blocking);
      }), py::arg("enable_timing") = false, py::arg("blocking") = false)
      .def("record", [](PyEvent& e, const PyStream& s) {
        EMBER_CUDA_CHECK(cudaEventRecord(e.event, s.get()));
        e.recorded = true;
      })
      .def("wait", [](const PyEvent& e, const PyStream& s) { EMBER_CUDA_CHECK(cudaStreamWaitEvent(s.get(), e.event, 0)); })
      .def("query", [](const PyEvent& e) {
        cudaError_t err = cudaEventQuery(e.event);
        if (err == cudaErrorNotReady) { cudaGetLastError(); return false; }
        EMBER_CUDA_CHECK(err);
        return true;
      })
      .def("synchronize", [](const PyEvent& e) {
        py::gil_scoped_release nogil;
        EMBER_CUDA_CHECK(cudaEventSynchronize(e.event));
      })
      .def("elapsed_time", [](const PyEvent& start, const PyEvent& end) {
        EMBER_CHECK(start.timing && end.timing, "[cuda.Event.elapsed_time] both events must be created with "
                    "enable_timing=True");
        EMBER_CHECK(start.recorded && end.recorded, "[cuda.Event.elapsed_time] both events must be recorded first");
        float ms = 0;
        EMBER_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event, end.event));
        return ms;
      });

  // ---- memory ----
  c.def("memory_stats", [](py::object d) { return stats_dict(device_arg(d, "cuda.memory_stats")); },
        py::arg("device") = py::none());
  c.def("memory_allocated", [](py::object d) { return memory_stats(device_arg(d, "cuda.memory_allocated")).allocated_bytes; },
        py::arg("device") = py::none());
  c.def("memory_reserved", [](py::object d) { return memory_stats(device_arg(d, "cuda.memory_reserved")).reserved_bytes; },
        py::arg("device") = py::none());
  c.def("max_memory_allocated", [](py::object d) {
    return memory_stats(device_arg(d, "cuda.max_memory_allocated")).peak_allocated_bytes;
  }, py::arg("device") = py::none());
  c.def("max_memory_reserved", [](py::object d) {
    return memory_stats(device_arg(d, "cuda.max_memory_reserved")).peak_reserved_bytes;
  }, py::arg("device") = py::none());
  c.def("reset_peak_memory_stats", [](py::object d) { reset_peak_memory_stats(device_arg(d, "cuda.reset_peak_memory_stats")); },
        py::arg("device") = py::none());
  c.def("reset_accumulated_memory_stats", [](py::object d) {
    reset_accumulated_memory_stats(device_arg(d, "cuda.reset_accumulated_memory_stats"));
  }, py::arg("device") = py::none());
  c.def("memory_summary", [](py::object d) { return format_memory_stats(device_arg(d, "cuda.memory_summary")); },
        py::arg("device") = py::none());
  c.def("empty_cache", [] { if (is_available()) empty_cache(); });
  c.def("set_per_process_memory_fraction", [](double fraction, py::object d) {
    set_memory_fraction(fraction, device_arg(d, "cuda.set_per_process_memory_fraction"));
  }, py::arg("fraction"), py::arg("device") = py::none());
  c.def("memory_snapshot", [] {
    require_cuda("cuda.memory_snapshot");
    py::list out;
    for (const SegmentInfo& s : memory_snapshot()) {
      py::dict seg;
      seg["device"] = s.device;
      seg["address"] = s.address;
      seg["total_size"] = s.total_size;
      seg["allocated_size"] = s.allocated_size;
      seg["segment_type"] = s.is_large ? "large" : "small";
      seg["stream"] = s.stream;
      seg["segment_pool_id"] = s.pool_id;
      py::list blocks;
      for (const BlockInfo& b : s.blocks) {
        py::dict bd;
        bd["size"] = b.size;
        bd["requested_size"] = b.requested;
        bd["state"] = b.allocated ? "active_allocated" : (b.pending ? "active_pending_free" : "inactive");
        blocks.append(bd);
      }
      seg["blocks"] = blocks;
      out.append(seg);
    }
    return out;
  });
  c.def("_record_stream", [](const Tensor& t, const PyStream& s) { record_stream(t, s.get()); });
  c.def("_get_allow_tf32", [] { return allow_tf32(); });
  c.def("_set_allow_tf32", [](bool on) { set_allow_tf32(on); });

  // ---- graphs ----
  py::class_<CUDAGraph>(c, "CUDAGraph")
      .def(py::init([] { require_cuda("cuda.CUDAGraph"); return new CUDAGraph(); }))
      .def("capture_begin", [](CUDAGraph& g, int64_t pool) { g.capture_begin(pool); }, py::arg("pool") = 0)
      .def("capture_end", &CUDAGraph::capture_end)
      .def("replay", &CUDAGraph::replay)
      .def("reset", &CUDAGraph::reset)
      .def("pool", &CUDAGraph::pool)
      .def("num_kernel_nodes", &CUDAGraph::num_kernel_nodes);
  c.def("_is_current_stream_capturing", [] {
    return is_available() && is_capturing(current_stream());
  });
  bind_nccl(c);

  // ---- tensor methods ----
  auto& t = tensor_class();
  t.def("cuda", [](const Tensor& x, py::object d, bool non_blocking) {
    const int dev = device_arg(d, "cuda");
    Device target(DeviceType::CUDA, dev);
    return to_device(x, target, non_blocking);  // differentiable, like .to("cuda")
  }, py::arg("device") = py::none(), py::arg("non_blocking") = false);
  t.def("pin_memory", [](const Tensor& x) { return pin_memory(x); });
  t.def("is_pinned", [](const Tensor& x) { return is_pinned(x); });
  t.def("record_stream", [](const Tensor& x, const PyStream& s) { record_stream(x, s.get()); });
}

#else  // !EMBER_WITH_CUDA

void bind_cuda(py::module_& m) {
  py::module_ c = m.def_submodule("_cuda", "ember's CUDA backend (not built)");
  c.attr("built") = false;
  c.def("is_available", [] { return false; });
  c.def("device_count", [] { return 0; });
  bind_nccl(c);
  auto& t = tensor_class();
  t.def("cuda", [](const Tensor&, py::object, bool) -> Tensor {
    fail(ErrorKind::Runtime, "[cuda] ember was built without CUDA support (no CUDA toolkit was found at build time)");
  }, py::arg("device") = py::none(), py::arg("non_blocking") = false);
  t.def("is_pinned", [](const Tensor&) { return false; });
}

#endif

}  // namespace ember::python
