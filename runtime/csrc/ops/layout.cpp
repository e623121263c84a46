// Layout ops that copy data into a new arrangement: cat/stack, flip, roll, repeat, tril/triu.
// Kernels: cpu/layout.cpp. Backward rules at the bottom.
#include <algorithm>

#include "autograd/node.h"
#include "dispatch/dispatcher.h"
#include "generated/kernels_index.h"
#include "ops/ops.h"

namespace ember {
namespace {

// Wrapped, de-duplicated dims (error names the op on repeats).
DimVector wrap_unique_dims(IntSpan dims, int64_t ndim, const char* op) {
  DimVector out;
  std::vector<bool> seen(std::max<int64_t>(ndim, 1), false);
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, ndim, op);
    EMBER_CHECK(!seen[w], "[", op, "] dim ", w, " appears multiple times in the list of dims");
    seen[w] = true;
    out.push_back(w);
  }
  return out;
}

}  // namespace

Tensor cat(const TensorList& tensors, int64_t dim) {
  EMBER_CHECK(!tensors.empty(), "[cat] torch.cat(): expected a non-empty list of Tensors");
  ScalarType dtype = tensors[0].dtype();
  for (const Tensor& t : tensors) dtype = promote_types(dtype, t.dtype());
  // Legacy rule: 1-D empty tensors are skipped whatever the other shapes are.
  std::vector<size_t> kept;
  for (size_t i = 0; i < tensors.size(); ++i)
    if (!(tensors[i].dim() == 1 && tensors[i].sizes()[0] == 0)) kept.push_back(i);
  if (kept.empty()) return Tensor::empty(DimVector{0}, dtype, tensors[0].device());
  const Tensor& ref = tensors[kept[0]];
  for (size_t i : kept)
    EMBER_CHECK(tensors[i].dim() > 0, "[cat] zero-dimensional tensor (at position ", i, ") cannot be concatenated");
  const int64_t d = wrap_dim(dim, ref.dim(), "cat");
  DimVector sizes = ref.sizes();
  sizes[d] = 0;
  for (size_t i : kept) {
    const Tensor& t = tensors[i];
    EMBER_CHECK(t.dim() == ref.dim(), "[cat] Tensors must have same number of dimensions: got ", ref.dim(), " and ",
                t.dim(), " (tensor ", kept[0], " ", describe(ref), ", tensor ", i, " ", describe(t), ")");
    for (int64_t k = 0; k < ref.dim(); ++k) {
      if (k == d) continue;
      EMBER_CHECK(t.sizes()[k] == ref.sizes()[k], "[cat] Sizes of tensors must match except in dimension ", d,
                  ". Expected size ", ref.sizes()[k], " but got size ", t.sizes()[k], " for tensor number ", i,
                  " in the list (sizes ", ref.sizes(), " vs ", t.sizes(), ")");
    }
    sizes[d] += t.sizes()[d];
  }
  // Skipped inputs still go to dispatch (the kernel ignores them) so autograd gives them a grad.
  std::vector<Tensor> in;
  for (const Tensor& t : tensors) in.push_back(t.dtype() == dtype ? t : to_dtype(t, dtype));
  Tensor out = Tensor::empty(sizes, dtype, ref.device());
  dispatch<OpId::cat>(in, std::span<Tensor>(&out, 1), {.dim = d});
  return out;
}

Tensor stack(const TensorList& tensors, int64_t dim) {
  EMBER_CHECK(!tensors.empty(), "[stack] stack expects a non-empty TensorList");
  const Tensor& ref = tensors[0];
  for (size_t i = 1; i < tensors.size(); ++i)
    EMBER_CHECK(tensors[i].sizes() == ref.sizes(), "[stack] stack expects each tensor to be equal size, but got ",
                ref.sizes(), " at entry 0 and ", tensors[i].sizes(), " at entry ", i);
  const int64_t d = wrap_dim(dim, ref.dim() + 1, "stack");
  TensorList parts;
  for (const Tensor& t : tensors) parts.push_back(unsqueeze(t, d));
  // cat's legacy skip must not drop [0]-shaped inputs that became [1, 0] or [0, 1]: none are 1-D now.
  return cat(parts, d);
}

Tensor flip(const Tensor& x, IntSpan dims) {
  DimVector wrapped = wrap_unique_dims(dims, x.dim(), "flip");
  if (x.dim() == 0) wrapped = DimVector();
  return dispatch1<OpId::flip>({x}, Tensor::empty(x.sizes(), x.dtype(), x.device()), {.dims = wrapped});
}

Tensor roll(const Tensor& x, IntSpan shifts, IntSpan dims) {
  EMBER_CHECK(!shifts.empty(), "[roll] `shifts` required");
  if (dims.empty()) {
    EMBER_CHECK(shifts.size() == 1, "[roll] shifts and dimensions must align. shifts: ", shifts.size(), ", dims: 0");
    return view(roll(flatten(x), shifts, DimVector{0}), x.sizes());
  }
  EMBER_CHECK(shifts.size() == dims.size(), "[roll] shifts and dimensions must align. shifts: ", shifts.size(),
              ", dims: ", dims.size());
  DimVector merged_dims, merged_shifts;  // a dim named twice rolls by the sum of its shifts, as in torch
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], x.dim(), "roll");
    size_t j = 0;
    while (j < merged_dims.size() && merged_dims[j] != d) ++j;
    if (j == merged_dims.size()) { merged_dims.push_back(d); merged_shifts.push_back(shifts[i]); }
    else merged_shifts[j] += shifts[i];
  }
  if (merged_dims.size() != dims.size()) return roll(x, merged_shifts, merged_dims);
  RollAttrs a;  // wrapped dims, shifts normalized to [0, size)
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = wrap_dim(dims[i], x.dim(), "roll");
    const int64_t n = x.dim() ? x.sizes()[d] : 1;
    a.dims.push_back(d);
    a.shifts.push_back(n == 0 ? 0 : ((shifts[i] % n) + n) % n);
  }
  return dispatch1<OpId::roll>({x}, Tensor::empty(x.sizes(), x.dtype(), x.device()), a);
}

Tensor repeat(const Tensor& x, IntSpan repeats) {
  EMBER_CHECK(static_cast<int64_t>(repeats.size()) >= x.dim(), "[repeat] Number of dimensions of repeat dims (",
              repeats.size(), ") can not be smaller than number of dimensions of tensor (", describe(x), ")");
  DimVector sizes(repeats.size());
  const int64_t lead = static_cast<int64_t>(repeats.size()) - x.dim();
  for (size_t i = 0; i < repeats.size(); ++i) {
    EMBER_CHECK(repeats[i] >= 0, "[repeat] Trying to create tensor with negative dimension ", repeats[i], ": ", repeats);
    const int64_t s = static_cast<int64_t>(i) < lead ? 1 : x.sizes()[i - lead];
    sizes[i] = s * repeats[i];
  }
  return dispatch1<OpId::repeat>({x}, Tensor::empty(sizes, x.dtype(), x.device()), {.repeats = DimVector(repeats)});
}

namespace {
template <OpId id>
Tensor triangle(const char* op, const Tensor& x, int64_t diagonal) {
  EMBER_CHECK(x.dim() >= 2, "[", op, "] ", op, ": input tensor must have at least 2 dimensions, got ", describe(x));
  return dispatch1<id>({x}, Tensor::empty(x.sizes(), x.dtype(), x.device()), {.diagonal = diagonal});
}
}  // namespace

Tensor tril(const Tensor& x, int64_t diagonal) { return triangle<OpId::tril>("tril", x, diagonal); }
Tensor triu(const Tensor& x, int64_t diagonal) { return triangle<OpId::triu>("triu", x, diagonal); }

// ---- backward rules --------------------------------------------------------------------------------
namespace backward {

void cat(BackwardCtx& ctx, const DimAttrs& attrs) {
  Tensor g = ctx.grad(0);
  const int64_t d = attrs.dim;
  int64_t offset = 0;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const DimVector& sizes = ctx.input_meta(i).sizes;
    if (sizes.size() == 1 && sizes[0] == 0) {  // skipped by the legacy rule
      if (ctx.needs_grad(i)) ctx.set_grad(i, zeros(sizes, g.dtype(), g.device()));
      continue;
    }
    const int64_t n = sizes[d];
    if (ctx.needs_grad(i)) ctx.set_grad(i, narrow(g, d, offset, n));
    offset += n;
  }
}

void flip(BackwardCtx& ctx, const FlipAttrs& attrs) { ctx.set_grad(0, ::ember::flip(ctx.grad(0), attrs.dims)); }

void roll(BackwardCtx& ctx, const RollAttrs& attrs) {
  DimVector back;
  for (int64_t s : attrs.shifts) back.push_back(-s);
  ctx.set_grad(0, ::ember::roll(ctx.grad(0), back, attrs.dims));
}

void repeat(BackwardCtx& ctx, const RepeatAttrs& attrs) {
  const DimVector& reps = attrs.repeats;
  const DimVector& in_sizes = ctx.input_meta(0).sizes;
  const int64_t lead = static_cast<int64_t>(reps.size()) - static_cast<int64_t>(in_sizes.size());
  // Split each output dim into (repeat, size) and sum over the repeat axes.
  DimVector split_shape, sum_dims;
  for (size_t i = 0; i < reps.size(); ++i) {
    const int64_t s = static_cast<int64_t>(i) < lead ? 1 : in_sizes[i - lead];
    sum_dims.push_back(static_cast<int64_t>(split_shape.size()));
    split_shape.push_back(reps[i]);
    split_shape.push_back(s);
  }
  Tensor g = reshape(ctx.grad(0), split_shape);
  if (!sum_dims.empty()) g = sum(g, sum_dims);
  ctx.set_grad(0, reshape(g, in_sizes));
}

void tril(BackwardCtx& ctx, const TriangleAttrs& attrs) { ctx.set_grad(0, ::ember::tril(ctx.grad(0), attrs.diagonal)); }
void triu(BackwardCtx& ctx, const TriangleAttrs& attrs) { ctx.set_grad(0, ::ember::triu(ctx.grad(0), attrs.diagonal)); }

}  // namespace backward
}  // namespace ember
