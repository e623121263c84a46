#pragma once
// cudnn-frontend graphs for ember's cuDNN ops (fused attention now, convolutions next): a cache of
// built graphs and their execution on ember's current stream with workspace from ember's caching
// allocator. Include only from .cpp files compiled with EMBER_WITH_CUDNN: the frontend is a large
// header-only library, built with NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING (Note [Loading cuDNN]).
#include <cudnn_frontend.h>

#include <bit>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "cuda/cudnn_loader.h"

namespace ember::cuda::cudnn {

namespace fe = cudnn_frontend;

inline fe::DataType_t fe_data_type(ScalarType t) {
  switch (t) {
    case ScalarType::Float16: return fe::DataType_t::HALF;
    case ScalarType::BFloat16: return fe::DataType_t::BFLOAT16;
    case ScalarType::Float32: return fe::DataType_t::FLOAT;
    case ScalarType::Float64: return fe::DataType_t::DOUBLE;
    case ScalarType::Int32: return fe::DataType_t::INT32;
    case ScalarType::Int64: return fe::DataType_t::INT64;
    default: return fe::DataType_t::NOT_SET;
  }
}

// Note [cuDNN graph cache]
// Building a cuDNN graph (validation, heuristics, compiling the chosen engine's plan) takes from
// milliseconds to seconds, so it must never happen per call: built graphs are cached under a key
// holding everything the graph bakes in -- the op, device, dtype, each tensor's sizes and strides,
// and the op's attributes (floats by their bits). Data pointers are not in the key: they are bound
// per call through the variant pack, so one graph serves every call of a given configuration.
// Configurations cuDNN rejects are cached too, with cuDNN's reason, so a caller's fallback to its
// composite path costs a hash lookup. The cache is process-wide and bounded (kMaxEntries; cleared
// when full, which only costs rebuilds).
struct BuiltGraph {
  std::shared_ptr<fe::graph::Graph> graph;  // null when cuDNN does not support the configuration
  int64_t workspace_bytes = 0;
  std::string error;                         // cuDNN's reason when unsupported
};

class GraphCache {
 public:
  using Key = std::vector<int64_t>;
  using Builder = std::function<std::shared_ptr<fe::graph::Graph>()>;
  static constexpr size_t kMaxEntries = 1024;

  // The built graph for `key`, making it with `make` and building its plan on a miss.
  std::shared_ptr<const BuiltGraph> get(const Key& key, const Builder& make, Handle handle) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = graphs_.find(key);
    if (it != graphs_.end()) return it->second;
    auto built = std::make_shared<BuiltGraph>();
    try {
      auto graph = make();
      auto status = graph->build(reinterpret_cast<cudnnHandle_t>(handle), {fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK});
      if (status.is_good()) status = graph->get_workspace_size(built->workspace_bytes);
      if (status.is_good()) {
        built->graph = std::move(graph);
      } else {
        built->error = status.get_message();
      }
    } catch (const std::exception& e) {  // the frontend throws on loader/driver failures
      built->error = e.what();
    }
    if (graphs_.size() >= kMaxEntries) graphs_.clear();
    graphs_.emplace(key, built);
    return built;
  }

  size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return graphs_.size();
  }

 private:
  struct KeyHash {
    size_t operator()(const Key& k) const {
      uint64_t h = 1469598103934665603ull;  // FNV-1a over the 64-bit words
      for (int64_t v : k) h = (h ^ static_cast<uint64_t>(v)) * 1099511628211ull;
      return static_cast<size_t>(h);
    }
  };
  std::mutex mutex_;
  std::unordered_map<Key, std::shared_ptr<const BuiltGraph>, KeyHash> graphs_;
};

inline int64_t float_key(double v) { return std::bit_cast<int64_t>(v); }

// Runs a built graph on the handle's stream (the current stream). The workspace comes from ember's
// caching allocator on that stream and goes back to it right after the launch: stream-ordered
// reuse makes that safe, and under graph capture it lands in the graph's private pool.
inline void execute(const BuiltGraph& g, std::unordered_map<int64_t, void*>& pack, Handle handle, Device device,
                    const char* op) {
  Tensor workspace;
  if (g.workspace_bytes > 0) workspace = Tensor::empty(DimVector{g.workspace_bytes}, ScalarType::UInt8, device);
  fe::error_t status;
  try {
    status = g.graph->execute(reinterpret_cast<cudnnHandle_t>(handle), pack,
                              workspace.defined() ? workspace.data_ptr() : nullptr);
  } catch (const std::exception& e) {
    fail(ErrorKind::Runtime, "[", op, "] cuDNN execution failed: ", e.what());
  }
  EMBER_CHECK(status.is_good(), "[", op, "] cuDNN execution failed: ", status.get_message());
}

}  // namespace ember::cuda::cudnn
