// Views: ops whose output shares the input's storage (no copy). Each frontend computes the new
// geometry, builds the aliasing tensor with make_view and calls dispatch with its kView row, so
// autograd records the op (the "kernel" is a no-op). Backward rules live at the bottom.
#include <algorithm>
#include <numeric>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/dispatcher.h"
#include "generated/kernels_views.h"
#include "ops/ops.h"

namespace ember {
namespace {

template <OpId id>
Tensor record_view(const Tensor& x, Tensor out, const AttrsOf<id>& attrs = {}) {
  return dispatch1<id>({x}, std::move(out), attrs);
}

// Sizes with one -1 inferred from numel (torch's infer_size); errors name the op and shape.
DimVector infer_size(IntSpan shape, int64_t numel, const char* op) {
  DimVector out(shape);
  int64_t known = 1;
  int64_t infer_at = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      EMBER_CHECK(infer_at < 0, "[", op, "] only one dimension can be inferred");
      infer_at = static_cast<int64_t>(i);
    } else {
      EMBER_CHECK(shape[i] >= 0, "[", op, "] invalid shape dimension ", shape[i]);
      known *= shape[i];
    }
  }
  if (infer_at >= 0) {
    EMBER_CHECK(known != 0, "[", op, "] cannot reshape tensor of 0 elements into shape ", shape,
                " because the unspecified dimension size -1 can be any value and is ambiguous");
    EMBER_CHECK(numel % known == 0, "[", op, "] shape '", shape, "' is invalid for input of size ", numel);
    out[infer_at] = numel / known;
  } else {
    EMBER_CHECK(known == numel, "[", op, "] shape '", shape, "' is invalid for input of size ", numel);
  }
  return out;
}

// Strides that let `new_sizes` view memory laid out as (old_sizes, old_strides), or nullopt when the
// new shape would merge dims that are not contiguous with each other (torch's computeStride).
std::optional<DimVector> view_strides(IntSpan old_sizes, IntSpan old_strides, IntSpan new_sizes) {
  const int64_t numel = numel_of(old_sizes);
  if (numel == 0) return contiguous_strides(new_sizes);
  if (old_sizes.empty()) return DimVector(new_sizes.size(), 1);
  DimVector new_strides(new_sizes.size());
  int64_t view_d = static_cast<int64_t>(new_sizes.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t tensor_d = static_cast<int64_t>(old_sizes.size()) - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= old_sizes[tensor_d];
    if (tensor_d == 0 || (old_sizes[tensor_d - 1] != 1 && old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_sizes[view_d] == 1)) {
        new_strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_sizes[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (tensor_d > 0) {
        chunk_base_stride = old_strides[tensor_d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return new_strides;
}

// A view with the given sizes via OpId::view (reshape-like ops: squeeze, unsqueeze, flatten...).
Tensor view_with_strides(const Tensor& x, DimVector sizes, DimVector strides) {
  return record_view<OpId::view>(x, make_view(x, std::move(sizes), std::move(strides), x.storage_offset()));
}

// Largest element offset + 1 reachable by a geometry (0 when it has no elements).
int64_t geometry_extent(IntSpan sizes, IntSpan strides, int64_t offset) {
  int64_t extent = offset + 1;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == 0) return 0;
    extent += (sizes[i] - 1) * strides[i];
  }
  return extent;
}

}  // namespace

Tensor as_strided(const Tensor& x, IntSpan sizes, IntSpan strides, std::optional<int64_t> offset) {
  EMBER_CHECK(sizes.size() == strides.size(), "[as_strided] mismatch in length of strides and shape: size ",
              sizes, " vs stride ", strides);
  const int64_t off = offset.value_or(x.storage_offset());
  EMBER_CHECK(off >= 0, "[as_strided] Tensor: invalid storage offset ", off);
  for (size_t i = 0; i < sizes.size(); ++i) {
    EMBER_CHECK(sizes[i] >= 0, "[as_strided] Trying to create tensor with negative dimension ", sizes[i], ": ", sizes);
    EMBER_CHECK(strides[i] >= 0, "[as_strided] Negative strides are not supported at the moment, got strides: ",
                strides);
  }
  const int64_t storage_elems = static_cast<int64_t>(x.storage()->nbytes) / x.element_size();
  const int64_t extent = geometry_extent(sizes, strides, off);
  EMBER_CHECK(extent <= storage_elems, "[as_strided] setStorage: sizes ", sizes, ", strides ", strides,
              " and storage offset ", off, " require a storage of ", extent, " elements, but the storage of ",
              describe(x), " has only ", storage_elems, " elements (out of bounds for storage)");
  // The input's geometry rides along for the backward (Note [as_strided backward]).
  return record_view<OpId::as_strided>(x, make_view(x, DimVector(sizes), DimVector(strides), off),
                                       {.size = DimVector(sizes), .stride = DimVector(strides), .storage_offset = off,
                                        .input_strides = x.strides(), .input_offset = x.storage_offset()});
}

Tensor view(const Tensor& x, IntSpan sizes) {
  DimVector shape = infer_size(sizes, x.numel(), "view");
  auto strides = view_strides(x.sizes(), x.strides(), shape);
  EMBER_CHECK(strides.has_value(), "[view] view size is not compatible with input tensor's size and stride (at "
              "least one dimension spans across two contiguous subspaces). Use .reshape(...) instead. (input ",
              describe(x), " with strides ", x.strides(), ", requested size ", sizes, ")");
  return view_with_strides(x, std::move(shape), std::move(*strides));
}

Tensor reshape(const Tensor& x, IntSpan sizes) {
  DimVector shape = infer_size(sizes, x.numel(), "reshape");
  if (auto strides = view_strides(x.sizes(), x.strides(), shape)) return view_with_strides(x, std::move(shape), std::move(*strides));
  Tensor c = contiguous(x);
  Tensor out = view_with_strides(c, shape, contiguous_strides(shape));
  // It aliases only a fresh private copy, so it is not a view of x (in-place ops on it are fine).
  out.impl()->is_view = false;
  return out;
}

Tensor permute(const Tensor& x, IntSpan dims) {
  const int64_t n = x.dim();
  EMBER_CHECK(static_cast<int64_t>(dims.size()) == n, "[permute] number of dims don't match in permute: input ",
              describe(x), " has ", n, " dims but dims ", dims, " has ", dims.size());
  DimVector perm(dims.size()), sizes(dims.size()), strides(dims.size());
  std::vector<bool> seen(n, false);
  for (int64_t i = 0; i < n; ++i) {
    int64_t d = wrap_dim(dims[i], n, "permute");
    EMBER_CHECK(!seen[d], "[permute] repeated dim in permute: ", dims);
    seen[d] = true;
    perm[i] = d;
    sizes[i] = x.sizes()[d];
    strides[i] = x.strides()[d];
  }
  return record_view<OpId::permute>(x, make_view(x, std::move(sizes), std::move(strides), x.storage_offset()),
                                    {.dims = perm});
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  const int64_t n = x.dim();
  int64_t d0 = wrap_dim(dim0, n, "transpose"), d1 = wrap_dim(dim1, n, "transpose");
  if (n == 0) return permute(x, DimVector{});
  DimVector perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[d0], perm[d1]);
  return permute(x, perm);
}

Tensor t(const Tensor& x) {
  EMBER_CHECK(x.dim() <= 2, "[t] t() expects a tensor with <= 2 dimensions, but self is ", x.dim(), "D (",
              describe(x), ")");
  return x.dim() < 2 ? permute(x, x.dim() == 1 ? DimVector{0} : DimVector{}) : transpose(x, 0, 1);
}

Tensor matrix_transpose(const Tensor& x) {
  EMBER_CHECK(x.dim() >= 2, "[mT] tensor.mT is only supported on matrices or batches of matrices. Got ",
              x.dim(), "-D tensor (", describe(x), ")");
  return transpose(x, -2, -1);
}

Tensor reverse_dims(const Tensor& x) {
  DimVector perm(x.dim());
  for (int64_t i = 0; i < x.dim(); ++i) perm[i] = x.dim() - 1 - i;
  return permute(x, perm);
}

Tensor movedim(const Tensor& x, IntSpan source, IntSpan destination) {
  const int64_t n = x.dim();
  EMBER_CHECK(source.size() == destination.size(), "[movedim] Invalid source or destination dims: source (",
              source, " dims) should contain the same number of dims as destination (", destination, " dims)");
  DimVector perm(n, -1);
  std::vector<bool> src_used(n, false), dst_used(n, false);
  for (size_t i = 0; i < source.size(); ++i) {
    int64_t s = wrap_dim(source[i], n, "movedim"), d = wrap_dim(destination[i], n, "movedim");
    EMBER_CHECK(!src_used[s], "[movedim] repeated dim in `source` (", source, ")");
    EMBER_CHECK(!dst_used[d], "[movedim] repeated dim in `destination` (", destination, ")");
    src_used[s] = dst_used[d] = true;
    perm[d] = s;
  }
  int64_t next_src = 0;
  for (int64_t d = 0; d < n; ++d) {
    if (perm[d] >= 0) continue;
    while (src_used[next_src]) ++next_src;
    perm[d] = next_src++;
  }
  return permute(x, perm);
}

Tensor expand(const Tensor& x, IntSpan sizes) {
  const int64_t n = static_cast<int64_t>(sizes.size());
  EMBER_CHECK(n >= x.dim(), "[expand] the number of sizes provided (", n, ") must be greater or equal to the "
              "number of dimensions in the tensor (", x.dim(), ")");
  DimVector out_sizes(n), out_strides(n);
  const int64_t lead = n - x.dim();
  for (int64_t i = n - 1; i >= 0; --i) {
    int64_t target = sizes[i];
    if (i < lead) {
      EMBER_CHECK(target >= 0, "[expand] The expanded size of the tensor (", target, ") isn't allowed in a "
                  "leading, non-existing dimension ", i);
      out_sizes[i] = target;
      out_strides[i] = 0;
      continue;
    }
    int64_t cur = x.sizes()[i - lead];
    if (target == -1) target = cur;
    EMBER_CHECK(target >= 0, "[expand] invalid size ", target, " in ", sizes);
    if (cur == target) {
      out_sizes[i] = cur;
      out_strides[i] = x.strides()[i - lead];
    } else {
      EMBER_CHECK(cur == 1, "[expand] The expanded size of the tensor (", target, ") must match the existing "
                  "size (", cur, ") at non-singleton dimension ", i, ".  Target sizes: ", sizes,
                  ".  Tensor sizes: ", x.sizes());
      out_sizes[i] = target;
      out_strides[i] = 0;
    }
  }
  return record_view<OpId::expand>(x, make_view(x, std::move(out_sizes), std::move(out_strides), x.storage_offset()));
}

Tensor broadcast_to(const Tensor& x, IntSpan sizes) { return expand(x, sizes); }

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  EMBER_CHECK(x.dim() > 0, "[slice] slice() cannot be applied to a 0-dim tensor");
  const int64_t d = wrap_dim(dim, x.dim(), "slice");
  EMBER_CHECK(step > 0, "[slice] slice step must be positive, got ", step);
  const int64_t size = x.sizes()[d];
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::clamp<int64_t>(start, 0, size);
  end = std::clamp<int64_t>(end, start, size);
  DimVector sizes = x.sizes(), strides = x.strides();
  sizes[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  const int64_t offset = x.storage_offset() + start * x.strides()[d];
  return record_view<OpId::slice>(x, make_view(x, std::move(sizes), std::move(strides), offset),
                                  {.dim = d, .start = start, .end = end, .step = step});
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  EMBER_CHECK(x.dim() > 0, "[narrow] narrow() cannot be applied to a 0-dim tensor.");
  const int64_t d = wrap_dim(dim, x.dim(), "narrow");
  EMBER_CHECK(length >= 0, "[narrow] narrow(): length must be non-negative, got ", length);
  const int64_t size = x.sizes()[d];
  EMBER_CHECK_INDEX(start >= -size && start <= size, "[narrow] start out of range (expected to be in range of [",
                    -size, ", ", size, "], but got ", start, ")");
  if (start < 0) start += size;
  EMBER_CHECK(start + length <= size, "[narrow] start (", start, ") + length (", length,
              ") exceeds dimension size (", size, ").");
  return slice(x, d, start, start + length, 1);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  EMBER_CHECK_INDEX(x.dim() > 0, "[select] select() cannot be applied to a 0-dim tensor.");
  const int64_t d = wrap_dim(dim, x.dim(), "select");
  const int64_t size = x.sizes()[d];
  EMBER_CHECK_INDEX(index >= -size && index < size, "[select] index ", index, " is out of bounds for dimension ",
                    d, " with size ", size);
  if (index < 0) index += size;
  DimVector sizes = x.sizes(), strides = x.strides();
  const int64_t offset = x.storage_offset() + index * strides[d];
  sizes.erase(d);
  strides.erase(d);
  return record_view<OpId::select>(x, make_view(x, std::move(sizes), std::move(strides), offset),
                                   {.dim = d, .index = index});
}

Tensor squeeze(const Tensor& x, std::optional<int64_t> dim) {
  if (dim) return squeeze(x, IntSpan(&*dim, 1));
  DimVector sizes, strides;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (x.sizes()[i] != 1) { sizes.push_back(x.sizes()[i]); strides.push_back(x.strides()[i]); }
  return view_with_strides(x, std::move(sizes), std::move(strides));
}

Tensor squeeze(const Tensor& x, IntSpan dims) {
  std::vector<bool> drop(std::max<int64_t>(x.dim(), 1), false);
  for (int64_t d : dims) drop[wrap_dim(d, x.dim(), "squeeze")] = true;
  DimVector sizes, strides;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (!(drop[i] && x.sizes()[i] == 1)) { sizes.push_back(x.sizes()[i]); strides.push_back(x.strides()[i]); }
  return view_with_strides(x, std::move(sizes), std::move(strides));
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  const int64_t d = wrap_dim(dim, x.dim() + 1, "unsqueeze");
  DimVector sizes = x.sizes(), strides = x.strides();
  // The new dim's stride only has to keep the tensor contiguous when it was (torch's choice).
  const int64_t new_stride = d >= x.dim() ? 1 : sizes[d] * strides[d];
  sizes.insert(d, 1);
  strides.insert(d, new_stride);
  return view_with_strides(x, std::move(sizes), std::move(strides));
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  const int64_t n = x.dim();
  const int64_t s = wrap_dim(start_dim, n, "flatten"), e = wrap_dim(end_dim, n, "flatten");
  EMBER_CHECK(s <= e, "[flatten] flatten() has invalid args: start_dim (", start_dim,
              ") cannot come after end_dim (", end_dim, ")");
  if (n == 0) return reshape(x, DimVector{1});
  if (s == e) return view_with_strides(x, x.sizes(), x.strides());
  DimVector sizes;
  for (int64_t i = 0; i < s; ++i) sizes.push_back(x.sizes()[i]);
  int64_t merged = 1;
  for (int64_t i = s; i <= e; ++i) merged *= x.sizes()[i];
  sizes.push_back(merged);
  for (int64_t i = e + 1; i < n; ++i) sizes.push_back(x.sizes()[i]);
  return reshape(x, sizes);
}

Tensor unflatten(const Tensor& x, int64_t dim, IntSpan sizes) {
  const int64_t d = wrap_dim(dim, x.dim(), "unflatten");
  EMBER_CHECK(!sizes.empty(), "[unflatten] sizes must be non-empty");
  DimVector inner = infer_size(sizes, x.sizes()[d], "unflatten");
  DimVector shape;
  for (int64_t i = 0; i < d; ++i) shape.push_back(x.sizes()[i]);
  for (int64_t s : inner) shape.push_back(s);
  for (int64_t i = d + 1; i < x.dim(); ++i) shape.push_back(x.sizes()[i]);
  return view(x, shape);
}

Tensor diagonal(const Tensor& x, int64_t offset, int64_t dim1, int64_t dim2) {
  EMBER_CHECK(x.dim() >= 2, "[diagonal] diagonal requires a tensor with at least 2 dimensions, got ", describe(x));
  const int64_t d1 = wrap_dim(dim1, x.dim(), "diagonal"), d2 = wrap_dim(dim2, x.dim(), "diagonal");
  EMBER_CHECK(d1 != d2, "[diagonal] diagonal dimensions cannot be identical ", dim1, ", ", dim2);
  int64_t len, off = x.storage_offset();
  if (offset >= 0) {
    len = std::max<int64_t>(std::min(x.sizes()[d1], x.sizes()[d2] - offset), 0);
    if (len > 0) off += offset * x.strides()[d2];
  } else {
    len = std::max<int64_t>(std::min(x.sizes()[d1] + offset, x.sizes()[d2]), 0);
    if (len > 0) off -= offset * x.strides()[d1];
  }
  DimVector sizes, strides;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (i != d1 && i != d2) { sizes.push_back(x.sizes()[i]); strides.push_back(x.strides()[i]); }
  sizes.push_back(len);
  strides.push_back(x.strides()[d1] + x.strides()[d2]);
  return record_view<OpId::diagonal>(x, make_view(x, std::move(sizes), std::move(strides), off),
                                     {.offset = offset, .dim1 = d1, .dim2 = d2});
}

TensorList split(const Tensor& x, int64_t split_size, int64_t dim) {
  EMBER_CHECK(x.dim() > 0, "[split] split expects at least a 1-dimensional tensor");
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  const int64_t size = x.sizes()[d];
  EMBER_CHECK(split_size >= 0, "[split] split expects split_size be non-negative, but got split_size=", split_size);
  EMBER_CHECK(split_size > 0 || size == 0, "[split] split_size can only be 0 if dimension size is 0, but got "
              "dimension size of ", size);
  TensorList out;
  if (size == 0) { out.push_back(slice(x, d, 0, 0, 1)); return out; }
  for (int64_t start = 0; start < size; start += split_size) out.push_back(slice(x, d, start, start + split_size, 1));
  return out;
}

TensorList split_with_sizes(const Tensor& x, IntSpan sizes, int64_t dim) {
  EMBER_CHECK(x.dim() > 0, "[split] split expects at least a 1-dimensional tensor");
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    EMBER_CHECK(s >= 0, "[split_with_sizes] expects split_sizes have only non-negative entries, but got ", sizes);
    total += s;
  }
  EMBER_CHECK(total == x.sizes()[d], "[split_with_sizes] expects split_sizes to sum exactly to ", x.sizes()[d],
              " (input tensor's size at dimension ", d, "), but got split_sizes=", sizes);
  TensorList out;
  int64_t start = 0;
  for (int64_t s : sizes) { out.push_back(slice(x, d, start, start + s, 1)); start += s; }
  return out;
}

TensorList chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  EMBER_CHECK(x.dim() > 0, "[chunk] chunk expects at least a 1-dimensional tensor");
  EMBER_CHECK(chunks > 0, "[chunk] chunk expects `chunks` to be greater than 0, got: ", chunks);
  const int64_t d = wrap_dim(dim, x.dim(), "chunk");
  const int64_t size = x.sizes()[d];
  const int64_t split_size = (size + chunks - 1) / chunks;
  if (split_size == 0 && size == 0) {
    // torch returns `chunks` empty pieces for an empty dim.
    TensorList out;
    for (int64_t i = 0; i < chunks; ++i) out.push_back(slice(x, d, 0, 0, 1));
    return out;
  }
  return split(x, split_size, d);
}

TensorList unbind(const Tensor& x, int64_t dim) {
  EMBER_CHECK_INDEX(x.dim() > 0, "[unbind] Dimension specified as 0 but tensor has no dimensions");
  const int64_t d = wrap_dim(dim, x.dim(), "unbind");
  TensorList out;
  for (int64_t i = 0; i < x.sizes()[d]; ++i) out.push_back(select(x, d, i));
  return out;
}

// ---- backward rules --------------------------------------------------------------------------------

namespace backward {
namespace {

// Gradient of a view op that picks a subset of the input: zeros shaped like the input with the
// output's gradient written through the same view. `make_sub` rebuilds the view on the zeros.
// Note [Differentiable view grads]: the write is an in-place copy under no_grad, so that gradient is
// not differentiable; under create_graph the rules take an index_add/index_put path instead.
template <typename F>
Tensor embed_grad(BackwardCtx& ctx, const F& make_sub) {
  const OutputMeta& m = ctx.input_meta(0);
  Tensor g = ctx.grad(0);
  Tensor result = zeros(m.sizes, g.dtype(), m.device);
  GradModeGuard no_grad(false);
  Tensor sub = make_sub(result);
  copy_(sub, g);
  return result;
}

}  // namespace

// Note [as_strided backward]: the gradient of each output element flows to the storage element it
// reads. We index_add the output gradient into a zero buffer covering the storage region both
// geometries touch (so overlapping outputs, e.g. sliding windows, accumulate correctly), then read
// the input's geometry back out. If the *input* itself overlaps in memory (an expanded tensor),
// each of its aliasing elements receives the full sum (torch divides; rare, not handled).
void as_strided(BackwardCtx& ctx, const AsStridedAttrs& a) {
  const OutputMeta& m = ctx.input_meta(0);
  IntSpan out_sizes = a.size, out_strides = a.stride, in_strides = a.input_strides;
  const int64_t out_offset = a.storage_offset, in_offset = a.input_offset;
  const int64_t base = std::min(out_offset, in_offset);
  const int64_t extent = std::max(geometry_extent(out_sizes, out_strides, out_offset),
                                  geometry_extent(m.sizes, in_strides, in_offset));
  const int64_t len = std::max<int64_t>(extent - base, 0);
  Tensor g = ctx.grad(0);
  Tensor buffer = zeros(DimVector{len}, g.dtype(), m.device);
  if (g.numel() > 0) {
    Tensor positions = arange(int64_t{0}, len, int64_t{1}, ScalarType::Int64, m.device);
    Tensor idx = reshape(as_strided(positions, out_sizes, out_strides, out_offset - base), DimVector{-1});
    buffer = index_add(buffer, 0, idx, reshape(g, DimVector{-1}));
  }
  if (numel_of(m.sizes) == 0) { ctx.set_grad(0, zeros(m.sizes, g.dtype(), m.device)); return; }
  ctx.set_grad(0, as_strided(buffer, m.sizes, in_strides, in_offset - base));
}

void view(BackwardCtx& ctx, const NoAttrs&) { ctx.set_grad(0, reshape(ctx.grad(0), ctx.input_meta(0).sizes)); }

void permute(BackwardCtx& ctx, const PermuteAttrs& attrs) {
  const DimVector& perm = attrs.dims;
  DimVector inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = static_cast<int64_t>(i);
  ctx.set_grad(0, ::ember::permute(ctx.grad(0), inverse));
}

// OpNode::apply reduces the broadcast gradient to the input's shape (sum_to_size).
void expand(BackwardCtx& ctx, const NoAttrs&) { ctx.set_grad(0, ctx.grad(0)); }

void slice(BackwardCtx& ctx, const SliceAttrs& a) {
  Tensor g = ctx.grad(0);
  if (GradMode::is_enabled() && g.requires_grad()) {  // create_graph: stay differentiable
    const OutputMeta& m = ctx.input_meta(0);
    Tensor idx = arange(a.start, a.end, a.step, ScalarType::Int64, m.device);
    ctx.set_grad(0, index_add(zeros(m.sizes, g.dtype(), m.device), a.dim, idx, g));
    return;
  }
  ctx.set_grad(0, embed_grad(ctx, [&](const Tensor& z) { return ::ember::slice(z, a.dim, a.start, a.end, a.step); }));
}

void select(BackwardCtx& ctx, const SelectAttrs& a) {
  Tensor g = ctx.grad(0);
  if (GradMode::is_enabled() && g.requires_grad()) {
    const OutputMeta& m = ctx.input_meta(0);
    Tensor idx = arange(a.index, a.index + 1, int64_t{1}, ScalarType::Int64, m.device);
    ctx.set_grad(0, index_add(zeros(m.sizes, g.dtype(), m.device), a.dim, idx, ::ember::unsqueeze(g, a.dim)));
    return;
  }
  ctx.set_grad(0, embed_grad(ctx, [&](const Tensor& z) { return ::ember::select(z, a.dim, a.index); }));
}

void diagonal(BackwardCtx& ctx, const DiagonalAttrs& a) {
  Tensor g = ctx.grad(0);
  if (GradMode::is_enabled() && g.requires_grad()) {  // create_graph: index_put keeps it differentiable
    const OutputMeta& m = ctx.input_meta(0);
    const int64_t len = g.sizes().back();
    const Device dev = m.device;
    const int64_t row0 = a.offset < 0 ? -a.offset : 0, col0 = a.offset > 0 ? a.offset : 0;
    Tensor rows = arange(row0, row0 + len, int64_t{1}, ScalarType::Int64, dev);
    Tensor cols = arange(col0, col0 + len, int64_t{1}, ScalarType::Int64, dev);
    TensorList idx(std::max(a.dim1, a.dim2) + 1);
    idx[a.dim1] = rows;
    idx[a.dim2] = cols;
    // Advanced indexing puts the diagonal axis where the two indexed dims were when they are
    // adjacent, else in front; the diagonal view has it last.
    const bool adjacent = std::abs(a.dim1 - a.dim2) == 1;
    Tensor values = ::ember::movedim(g, DimVector{-1}, DimVector{adjacent ? std::min(a.dim1, a.dim2) : 0});
    ctx.set_grad(0, index_put(zeros(m.sizes, g.dtype(), dev), idx, values, false));
    return;
  }
  ctx.set_grad(0, embed_grad(ctx, [&](const Tensor& z) { return ::ember::diagonal(z, a.offset, a.dim1, a.dim2); }));
}

}  // namespace backward
}  // namespace ember
