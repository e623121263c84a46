// Python-style indexing as a C++ API (torch's at::indexing): x[items] and x[items] = value for a
// parsed index (python/indexing.cpp parses Python objects into TensorIndex items).
// Basic items (ints, slices, None, Ellipsis) become views (select/slice/unsqueeze), so the result
// shares storage; tensor items are "advanced": collected per dim and applied in one `index` (read)
// or `index_put_` (write) after the basic part.
#include "ops/indexing.h"

#include <algorithm>

namespace ember {
namespace {

bool is_bool_tensor(const Tensor& t) { return t.dtype() == ScalarType::Bool || t.dtype() == ScalarType::UInt8; }

// Reads a 0-dim integer CPU tensor (torch selects with it instead of advanced indexing).
std::optional<int64_t> cpu_scalar_index(const Tensor& t) {
  if (t.dim() != 0 || !t.device().is_cpu() || is_bool_tensor(t)) return std::nullopt;
  return EMBER_DISPATCH_INTEGRAL(t.dtype(), "index",
                                 [&]<typename T>() { return static_cast<int64_t>(t.data<T>()[0]); });
}

// The result of the basic part of an index plus the advanced indices per dim of that result.
struct Applied {
  Tensor result;
  TensorList indices;  // one per dim of `result` (undefined: not indexed), trimmed; empty: none
};

Applied apply_indexing(const Tensor& x, std::span<const TensorIndex> items) {
  int64_t specified = 0;
  bool seen_ellipsis = false;
  for (const TensorIndex& it : items) {
    if (it.kind == TensorIndex::Ellipsis) {
      EMBER_CHECK_INDEX(!seen_ellipsis, "[index] an index can only have a single ellipsis ('...')");
      seen_ellipsis = true;
    } else if (it.kind == TensorIndex::TensorIdx && is_bool_tensor(it.tensor)) {
      specified += it.tensor.dim();
    } else if (it.kind != TensorIndex::None && it.kind != TensorIndex::Bool) {
      specified += 1;
    }
  }
  EMBER_CHECK_INDEX(specified <= x.dim(), "[index] too many indices for tensor of dimension ", x.dim(),
                    " (got ", specified, ")");
  Tensor result = x;
  int64_t dim = 0;
  std::vector<std::pair<int64_t, Tensor>> advanced;
  auto add_advanced = [&](int64_t d, Tensor t) { advanced.emplace_back(d, std::move(t)); };
  auto select_int = [&](int64_t i) {
    const int64_t size = result.sizes()[dim];
    EMBER_CHECK_INDEX(i >= -size && i < size, "[index] index ", i, " is out of bounds for dimension ", dim,
                      " with size ", size);
    result = select(result, dim, i);
  };
  for (const TensorIndex& it : items) {
    switch (it.kind) {
      case TensorIndex::Int: select_int(it.value); break;
      case TensorIndex::Slice: result = slice(result, dim, it.start, it.stop, it.step); ++dim; break;
      case TensorIndex::None: result = unsqueeze(result, dim); ++dim; break;
      case TensorIndex::Ellipsis: dim += x.dim() - specified; break;
      case TensorIndex::Bool: {
        // x[True] adds a dim of size 1, x[False] one of size 0 (numpy semantics).
        result = unsqueeze(result, dim);
        Tensor idx = Tensor::empty(DimVector{it.value ? 1 : 0}, ScalarType::Int64);
        if (it.value) idx.data<int64_t>()[0] = 0;
        add_advanced(dim, x.device().is_cpu() ? idx : to_device(idx, x.device()));
        ++dim;
        break;
      }
      case TensorIndex::TensorIdx: {
        const Tensor& t = it.tensor;
        if (is_bool_tensor(t)) {
          if (t.dim() == 0) {  // a 0-dim mask behaves like a Python bool, but keeps the selection lazy
            result = unsqueeze(result, dim);
            Tensor nz = nonzero(unsqueeze(t, 0));  // [0 or 1, 1]
            add_advanced(dim, select(nz, 1, 0));
            ++dim;
            break;
          }
          for (int64_t j = 0; j < t.dim(); ++j) {
            EMBER_CHECK_INDEX(dim + j < result.dim() && t.sizes()[j] == result.sizes()[dim + j],
                              "[index] The shape of the mask ", t.sizes(), " at index ", j,
                              " does not match the shape of the indexed tensor ", result.sizes(), " at index ", dim + j);
          }
          Tensor nz = nonzero(t);  // [n, t.dim()]
          for (int64_t j = 0; j < t.dim(); ++j) add_advanced(dim + j, select(nz, 1, j));
          dim += t.dim();
        } else if (auto i = cpu_scalar_index(t)) {
          select_int(*i);
        } else {
          add_advanced(dim, t);
          ++dim;
        }
        break;
      }
    }
  }
  Applied out;
  out.result = result;
  if (!advanced.empty()) {
    int64_t last = 0;
    for (auto& [d, t] : advanced) last = std::max(last, d);
    out.indices.resize(last + 1);
    for (auto& [d, t] : advanced) out.indices[d] = t;
  }
  return out;
}

// torch drops leading size-1 dims of the value so x[0] = ones(1, 3) works for x of shape [2, 3].
Tensor strip_leading_ones(Tensor v, int64_t target_dim) {
  while (v.dim() > target_dim && v.sizes()[0] == 1) v = squeeze(v, std::optional<int64_t>(0));
  return v;
}

}  // namespace

Tensor index(const Tensor& x, std::span<const TensorIndex> items) {
  Applied a = apply_indexing(x, items);
  if (!a.indices.empty()) return index(a.result, a.indices);
  // x[...] and x[()] still return a new tensor object (a view), like torch.
  if (a.result.is_same(x)) return view(x, x.sizes());
  return a.result;
}

Tensor& index_put_(Tensor& x, std::span<const TensorIndex> items, const Operand& value) {
  Applied a = apply_indexing(x, items);
  Tensor dst = a.result;
  if (a.indices.empty() && value.is_number()) {
    fill_(dst, value);
    return x;
  }
  const Tensor v = value.is_number() ? scalar_tensor(value.scalar, x.dtype(), x.device()) : value.tensor;
  if (a.indices.empty()) copy_(dst, strip_leading_ones(v, dst.dim()));
  else index_put_(dst, a.indices, v, false);
  return x;
}

}  // namespace ember
