// Indexing ops: gather/scatter, index_select/index_add, masked_fill/masked_select, advanced
// indexing (index/index_put), nonzero, embedding, one_hot, take_along_dim. Frontends check shapes
// and dtypes; index *values* are validated by the kernels before any parallel loop.
#include <algorithm>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/dispatcher.h"
#include "generated/kernels_index.h"
#include "ops/ops.h"

namespace ember {
namespace {

bool is_index_dtype(ScalarType t) { return t == ScalarType::Int64 || t == ScalarType::Int32; }

// The tensor an op writes into before scattering: a contiguous copy of x, made without recording
// (the op's own node covers it).
Tensor fresh_copy(const Tensor& x) {
  GradModeGuard no_grad(false);
  return clone(x);
}

// Host copy of a tensor (for data-dependent output sizes: nonzero, masked_select, one_hot).
Tensor on_host(const Tensor& t) { return t.device().is_cpu() ? t : to_device(t, Device()); }

// Nonzero elements of `mask` (any dtype), counted where it lives (a reduction on the GPU); only the
// count crosses to the host.
int64_t count_true(const Tensor& mask) {
  GradModeGuard no_grad(false);
  Tensor m = mask.dtype() == ScalarType::Bool ? mask : ne(mask, zeros_like(mask));
  return contiguous(on_host(sum(m, {}, false, ScalarType::Int64))).data<int64_t>()[0];
}

void check_gather_shapes(const char* op, const Tensor& x, int64_t d, const Tensor& index, const Tensor* src) {
  const int64_t xd = std::max<int64_t>(x.dim(), 1), id = std::max<int64_t>(index.dim(), 1);
  EMBER_CHECK(index.numel() == 0 || xd == id, "[", op, "] Index tensor must have the same number of dimensions as "
              "input tensor (index ", describe(index), ", input ", describe(x), ")");
  if (index.numel() == 0) return;
  for (int64_t i = 0; i < index.dim(); ++i) {
    if (i == d) continue;
    EMBER_CHECK(index.sizes()[i] <= (x.dim() ? x.sizes()[i] : 1), "[", op, "] Size does not match at dimension ", i,
                " expected index ", index.sizes(), " to be no larger than self ", x.sizes(), " apart from dimension ", d);
  }
  if (src) {
    EMBER_CHECK(std::max<int64_t>(src->dim(), 1) == id, "[", op, "] Index tensor must have the same number of "
                "dimensions as src tensor (index ", describe(index), ", src ", describe(*src), ")");
    for (int64_t i = 0; i < index.dim(); ++i)
      EMBER_CHECK(index.sizes()[i] <= (src->dim() ? src->sizes()[i] : 1), "[", op, "] Expected index ",
                  index.sizes(), " to be no larger than src ", src->sizes(), " at dimension ", i);
  }
}

// gather/scatter take int64 or int32 indices (torch >= 2.1); kernels read int64.
Tensor long_index(const Tensor& index, const char* op) {
  EMBER_CHECK(is_index_dtype(index.dtype()), "[", op, "] ", op, "(): Expected dtype int32/int64 for index, got ",
              describe(index));
  return index.dtype() == ScalarType::Int64 ? index : to_dtype(index, ScalarType::Int64);
}

template <OpId id>
Tensor scatter_impl(const char* op, const Tensor& x, int64_t dim, const Tensor& index_, const Tensor& src) {
  Tensor index = long_index(index_, op);
  const int64_t d = wrap_dim(dim, x.dim(), op);
  check_gather_shapes(op, x, d, index, &src);
  Tensor s = src.dtype() == x.dtype() ? src : to_dtype(src, x.dtype());
  return dispatch1<id>({x, index, s}, fresh_copy(x), {.dim = d});
}

// Converts bool masks among `indices` to the long indices of their true elements (one per mask
// dim), int32 to int64, and checks dtypes and mask shapes against x.
TensorList expand_masks(const Tensor& x, const TensorList& indices) {
  TensorList out;
  int64_t dim = 0;
  for (const Tensor& t : indices) {
    if (!t.defined()) { out.push_back(t); ++dim; continue; }
    if (t.dtype() == ScalarType::Bool || t.dtype() == ScalarType::UInt8) {
      for (int64_t j = 0; j < t.dim(); ++j)
        EMBER_CHECK_INDEX(dim + j < x.dim() && t.sizes()[j] == x.sizes()[dim + j], "[index] The shape of the mask ",
                          t.sizes(), " at index ", j, " does not match the shape of the indexed tensor ", x.sizes(),
                          " at index ", dim + j);
      Tensor nz = nonzero(t);
      for (int64_t j = 0; j < t.dim(); ++j) out.push_back(select(nz, 1, j));
      dim += t.dim();
      continue;
    }
    EMBER_CHECK_INDEX(is_index_dtype(t.dtype()), "[index] tensors used as indices must be long, int, byte or bool "
                      "tensors (got ", describe(t), ")");
    out.push_back(t.dtype() == ScalarType::Int64 ? t : to_dtype(t, ScalarType::Int64));
    ++dim;
  }
  EMBER_CHECK_INDEX(static_cast<int64_t>(out.size()) <= x.dim(), "[index] too many indices for tensor of dimension ",
                    x.dim(), " (got ", out.size(), ")");
  return out;
}

// Broadcasts the defined indices to one shape and returns the advanced-indexing result shape:
// adjacent indexed dims are replaced in place by the broadcast shape; separated ones move it to
// the front (numpy/torch rule).
DimVector prepare_indices(const Tensor& x, TensorList& idx, IndexAttrs& a) {
  DimVector bshape;
  bool any = false;
  for (const Tensor& t : idx)
    if (t.defined()) { bshape = any ? broadcast_shapes(bshape, t.sizes(), "index") : t.sizes(); any = true; }
  EMBER_CHECK(any, "[index] at least one index tensor is required");
  int64_t first = -1, last = -1;
  a.defined = DimVector();
  for (size_t d = 0; d < idx.size(); ++d) {
    a.defined.push_back(idx[d].defined() ? 1 : 0);
    if (!idx[d].defined()) continue;
    // Checked even when the result is empty (the kernel validates values only when it reads).
    idx[d] = expand(idx[d], bshape);
    EMBER_CHECK_INDEX(x.sizes()[d] > 0 || idx[d].numel() == 0, "[index] index is out of bounds for dimension ", d,
                      " with size 0");
    if (first < 0) first = static_cast<int64_t>(d);
    last = static_cast<int64_t>(d);
  }
  bool adjacent = true;
  for (int64_t d = first; d <= last; ++d) adjacent &= idx[d].defined();
  DimVector out;
  if (!adjacent) for (int64_t s : bshape) out.push_back(s);
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (adjacent && d == first) for (int64_t s : bshape) out.push_back(s);
    const bool indexed = d < static_cast<int64_t>(idx.size()) && idx[d].defined();
    if (!indexed) out.push_back(x.sizes()[d]);
  }
  return out;
}

std::vector<Tensor> with_indices(std::initializer_list<Tensor> head, const TensorList& idx) {
  std::vector<Tensor> in(head);
  in.insert(in.end(), idx.begin(), idx.end());
  return in;
}

// Rebuilds the index list a node recorded (attrs.defined marks which entries were given).
TensorList saved_indices(BackwardCtx& ctx, const IndexAttrs& attrs, size_t first_input) {
  TensorList idx;
  for (size_t d = 0; d < attrs.defined.size(); ++d)
    idx.push_back(attrs.defined[d] ? ctx.input(first_input + d) : Tensor());
  return idx;
}

}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index_) {
  Tensor index = long_index(index_, "gather");
  const int64_t d = wrap_dim(dim, x.dim(), "gather");
  check_gather_shapes("gather", x, d, index, nullptr);
  return dispatch1<OpId::gather>({x, index}, Tensor::empty(index.sizes(), x.dtype(), x.device()), {.dim = d});
}

Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_impl<OpId::scatter>("scatter", x, dim, index, src);
}

Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, Scalar value) {
  Tensor v = expand(scalar_tensor(value, x.dtype(), x.device()), index.sizes());
  return scatter_impl<OpId::scatter>("scatter", x, dim, index, v);
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  return scatter_impl<OpId::scatter_add>("scatter_add", x, dim, index, src);
}

Tensor take_along_dim(const Tensor& x, const Tensor& indices, std::optional<int64_t> dim) {
  EMBER_CHECK(indices.dtype() == ScalarType::Int64, "[take_along_dim] torch.take_along_dim(): dtype of indices "
              "should be Long but got ", dtype_name(indices.dtype()));
  if (!dim) return gather(reshape(x, DimVector{-1}), 0, reshape(indices, DimVector{-1}));
  EMBER_CHECK(x.dim() == indices.dim(), "[take_along_dim] torch.take_along_dim(): input and indices should have "
              "the same number of dimensions, but got ", x.dim(), " dimensions for input, and ", indices.dim(),
              " dimensions for indices");
  const int64_t d = wrap_dim(*dim, x.dim(), "take_along_dim");
  DimVector xs = x.sizes(), is = indices.sizes();
  xs[d] = 1;
  is[d] = 1;
  DimVector b = broadcast_shapes(xs, is, "take_along_dim");
  DimVector xb = b, ib = b;
  if (x.dim()) { xb[d] = x.sizes()[d]; ib[d] = indices.sizes()[d]; }
  return gather(expand(x, xb), d, expand(indices, ib));
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  EMBER_CHECK_INDEX(index.dim() <= 1, "[index_select] index_select(): Index is supposed to be a vector, got ",
                    describe(index));
  EMBER_CHECK(is_index_dtype(index.dtype()), "[index_select] index_select(): Expected dtype int32 or int64 for "
              "index, got ", describe(index));
  const int64_t d = wrap_dim(dim, x.dim(), "index_select");
  Tensor idx = index.dtype() == ScalarType::Int64 ? index : to_dtype(index, ScalarType::Int64);
  DimVector sizes = x.sizes();
  if (x.dim() == 0) EMBER_CHECK_INDEX(idx.numel() == 1, "[index_select] index_select(): Index to scalar can have "
                                      "only 1 value, got ", idx.numel(), " value(s)");
  else sizes[d] = idx.numel();
  return dispatch1<OpId::index_select>({x, reshape(idx, DimVector{-1})}, Tensor::empty(sizes, x.dtype(), x.device()),
                                       {.dim = d});
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source, Scalar alpha) {
  EMBER_CHECK_INDEX(index.dim() <= 1, "[index_add] index_add_(): Index is supposed to be a vector, got ",
                    describe(index));
  EMBER_CHECK(is_index_dtype(index.dtype()), "[index_add] index_add_(): Expected dtype int32/int64 for index, got ",
              describe(index));
  const int64_t d = wrap_dim(dim, x.dim(), "index_add");
  EMBER_CHECK(source.dim() == x.dim() || (source.dim() <= 1 && x.dim() <= 1), "[index_add] index_add_(): source ",
              describe(source), " and self ", describe(x), " should have the same number of dimensions");
  for (int64_t i = 0; i < x.dim(); ++i) {
    const int64_t want = i == d ? index.numel() : x.sizes()[i];
    EMBER_CHECK((source.dim() ? source.sizes()[i] : 1) == want, "[index_add] index_add_(): source ", describe(source),
                " does not match self ", describe(x), " with ", index.numel(), " indices along dimension ", d);
  }
  EMBER_CHECK(x.dim() > 0 || index.numel() == 1, "[index_add] index_add_(): Index to scalar can have only 1 value");
  Tensor idx = reshape(index.dtype() == ScalarType::Int64 ? index : to_dtype(index, ScalarType::Int64), DimVector{-1});
  Tensor src = source.dtype() == x.dtype() ? source : to_dtype(source, x.dtype());
  if (x.dim() == 0) src = reshape(src, DimVector{});
  return dispatch1<OpId::index_add>({x, idx, src}, fresh_copy(x), {.dim = d, .alpha = alpha});
}

// A number, or a 0-dim tensor (differentiable in the value; a CPU one may fill any device, as in torch).
Tensor masked_fill(const Tensor& x, const Tensor& mask, const Operand& value) {
  EMBER_CHECK(mask.dtype() == ScalarType::Bool, "[masked_fill] masked_fill_ only supports boolean masks, but got "
              "mask with dtype ", dtype_name(mask.dtype()));
  if (value.is_number()) {
    DimVector shape = broadcast_shapes(x.sizes(), mask.sizes(), "masked_fill");
    return dispatch1<OpId::masked_fill>({x, mask}, Tensor::empty(shape, x.dtype(), x.device()),
                                        {.value = value.scalar, .shape = shape});
  }
  const Tensor& v = value.tensor;
  EMBER_CHECK(v.dim() == 0, "[masked_fill] masked_fill_ only supports a 0-dimensional value tensor, but got "
              "tensor with ", v.dim(), " dimension(s)");
  if (!v.requires_grad() && v.device().is_cpu()) {
    Scalar s = EMBER_DISPATCH_ALL(v.dtype(), "masked_fill", [&]<typename T>() -> Scalar {
      if constexpr (std::is_same_v<T, bool>) return Scalar(v.data<bool>()[0]);
      else if constexpr (std::is_integral_v<T>) return Scalar(static_cast<int64_t>(v.data<T>()[0]));
      else return Scalar(static_cast<double>(static_cast<opmath_t<T>>(v.data<T>()[0])));
    });
    return masked_fill(x, mask, s);
  }
  // Differentiable in `value`: where(mask, value, x) keeps x's dtype.
  const Tensor on_device = v.device() == x.device() ? v : to_device(v, x.device());
  return where(mask, to_dtype(on_device, x.dtype()), x);
}

Tensor& masked_fill_(Tensor& self, const Tensor& mask, const Operand& value) {
  Tensor r = masked_fill(self, mask, value);
  EMBER_CHECK(r.sizes() == self.sizes(), "[masked_fill_] mask ", mask.sizes(), " is not broadcastable to the "
              "in-place target ", describe(self));
  return copy_(self, r);
}

Tensor masked_select(const Tensor& x, const Tensor& mask) {
  EMBER_CHECK(mask.dtype() == ScalarType::Bool, "[masked_select] masked_select: expected BoolTensor for mask, got ",
              describe(mask));
  DimVector shape = broadcast_shapes(x.sizes(), mask.sizes(), "masked_select");
  const int64_t n = count_true(expand(mask, shape));
  return dispatch1<OpId::masked_select>({x, mask}, Tensor::empty(DimVector{n}, x.dtype(), x.device()),
                                        {.shape = shape});
}

Tensor nonzero(const Tensor& x) {
  const int64_t n = count_true(x);
  return dispatch1<OpId::nonzero>({x}, Tensor::empty(DimVector{n, x.dim()}, ScalarType::Int64, x.device()));
}

// nonzero(as_tuple=True): one index tensor per dim (a 0-dim input behaves like a 1-element vector).
TensorList nonzero_tuple(const Tensor& x) {
  const Tensor nz = nonzero(x);
  TensorList parts;
  if (x.dim() == 0) return {select(nz, 1, 0)};
  for (int64_t j = 0; j < x.dim(); ++j) parts.push_back(select(nz, 1, j));
  return parts;
}

Tensor index(const Tensor& x, const TensorList& indices) {
  TensorList idx = expand_masks(x, indices);
  bool any = false;
  for (const Tensor& t : idx) any |= t.defined();
  if (!any) return view(x, x.sizes());
  IndexAttrs a;
  DimVector shape = prepare_indices(x, idx, a);
  std::vector<Tensor> in = with_indices({x}, idx);
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  dispatch<OpId::index>(in, std::span<Tensor>(&out, 1), a);
  return out;
}

namespace {
Tensor index_put_impl(Tensor self, const Tensor& x, const TensorList& indices, const Tensor& values, bool accumulate) {
  TensorList idx = expand_masks(x, indices);
  bool any = false;
  for (const Tensor& t : idx) any |= t.defined();
  Tensor v = values.dtype() == x.dtype() ? values : to_dtype(values, x.dtype());
  if (!any) {  // x[...] = v
    GradModeGuard no_grad(false);
    copy_(self, v);
    return self;
  }
  IndexAttrs a{.accumulate = accumulate};
  DimVector shape = prepare_indices(x, idx, a);
  while (v.dim() > static_cast<int64_t>(shape.size()) && v.sizes()[0] == 1) v = squeeze(v, std::optional<int64_t>(0));
  EMBER_CHECK(v.dim() <= static_cast<int64_t>(shape.size()), "[index_put] shape mismatch: value tensor of shape ",
              v.sizes(), " cannot be broadcast to indexing result of shape ", shape);
  for (size_t i = 0; i < v.sizes().size(); ++i) {
    const int64_t vs = v.sizes()[i], ts = shape[shape.size() - v.sizes().size() + i];
    EMBER_CHECK(vs == ts || vs == 1, "[index_put] shape mismatch: value tensor of shape ", v.sizes(),
                " cannot be broadcast to indexing result of shape ", shape);
  }
  v = contiguous(expand(v, shape));
  std::vector<Tensor> in = with_indices({x, v}, idx);
  dispatch<OpId::index_put>(in, std::span<Tensor>(&self, 1), a);
  return self;
}
}  // namespace

Tensor index_put(const Tensor& x, const TensorList& indices, const Tensor& values, bool accumulate) {
  return index_put_impl(fresh_copy(x), x, indices, values, accumulate);
}

Tensor& index_put_(Tensor& self, const TensorList& indices, const Tensor& values, bool accumulate) {
  index_put_impl(self, self, indices, values, accumulate);
  return self;
}

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  EMBER_CHECK(weight.dim() == 2, "[embedding] 'weight' must be 2-D, got ", describe(weight));
  EMBER_CHECK(is_index_dtype(indices.dtype()), "[embedding] Expected tensor for argument #1 'indices' to have one "
              "of the following scalar types: Long, Int; but got ", describe(indices), " instead");
  DimVector shape = indices.sizes();
  shape.push_back(weight.sizes()[1]);
  return view(index_select(weight, 0, reshape(indices, DimVector{-1})), shape);
}

Tensor one_hot(const Tensor& indices, int64_t num_classes) {
  EMBER_CHECK(indices.dtype() == ScalarType::Int64, "[one_hot] one_hot is only applicable to index tensor of type "
              "LongTensor, got ", describe(indices));
  Tensor host = contiguous(on_host(indices));
  const int64_t* p = host.data<int64_t>();
  int64_t lo = 0, hi = -1;
  for (int64_t i = 0; i < host.numel(); ++i) { lo = std::min(lo, p[i]); hi = std::max(hi, p[i]); }
  EMBER_CHECK(lo >= 0, "[one_hot] Class values must be non-negative.");
  if (num_classes == -1) {
    EMBER_CHECK(indices.numel() > 0, "[one_hot] Can not infer total number of classes from empty tensor.");
    num_classes = hi + 1;
  } else {
    EMBER_CHECK(num_classes > 0 || (num_classes == 0 && indices.numel() == 0), "[one_hot] num_classes should be "
                "positive, got ", num_classes);
    EMBER_CHECK(hi < num_classes, "[one_hot] Class values must be smaller than num_classes.");
  }
  DimVector shape = indices.sizes();
  shape.push_back(num_classes);
  Tensor out = zeros(shape, ScalarType::Int64, indices.device());
  if (indices.numel() == 0) return out;
  return scatter(out, -1, unsqueeze(indices, -1), Scalar(int64_t{1}));
}

// ---- backward rules --------------------------------------------------------------------------------
namespace backward {

void gather(BackwardCtx& ctx, const DimAttrs& attrs) {
  const OutputMeta& m = ctx.input_meta(0);
  Tensor g = ctx.grad(0);
  ctx.set_grad(0, ::ember::scatter_add(zeros(m.sizes, g.dtype(), m.device), attrs.dim, ctx.input(1), g));
}

void scatter(BackwardCtx& ctx, const DimAttrs& attrs) {
  Tensor g = ctx.grad(0);
  Tensor index = ctx.input(1);
  if (ctx.needs_grad(0)) ctx.set_grad(0, ::ember::scatter(g, attrs.dim, index, Scalar(int64_t{0})));
  if (ctx.needs_grad(2)) ctx.set_grad(2, ::ember::gather(g, attrs.dim, index));
}

void scatter_add(BackwardCtx& ctx, const DimAttrs& attrs) {
  Tensor g = ctx.grad(0);
  if (ctx.needs_grad(0)) ctx.set_grad(0, g);
  if (ctx.needs_grad(2)) ctx.set_grad(2, ::ember::gather(g, attrs.dim, ctx.input(1)));
}

void index_select(BackwardCtx& ctx, const DimAttrs& attrs) {
  const OutputMeta& m = ctx.input_meta(0);
  Tensor g = ctx.grad(0);
  ctx.set_grad(0, ::ember::index_add(zeros(m.sizes, g.dtype(), m.device), attrs.dim, ctx.input(1), g));
}

void index_add(BackwardCtx& ctx, const IndexAddAttrs& attrs) {
  Tensor g = ctx.grad(0);
  if (ctx.needs_grad(0)) ctx.set_grad(0, g);
  if (ctx.needs_grad(2)) {
    Tensor picked = ::ember::index_select(g, attrs.dim, ctx.input(1));
    const Scalar& alpha = attrs.alpha;
    if (!(alpha.to_double() == 1.0)) picked = mul(picked, scalar_tensor(alpha, g.dtype(), g.device()));
    ctx.set_grad(2, reshape(picked, ctx.input_meta(2).sizes));
  }
}

void masked_fill(BackwardCtx& ctx, const MaskedFillAttrs&) {
  ctx.set_grad(0, ::ember::masked_fill(ctx.grad(0), ctx.input(1), Scalar(int64_t{0})));
}

void masked_select(BackwardCtx& ctx, const MaskedSelectAttrs& attrs) {
  Tensor g = ctx.grad(0);
  Tensor mask = expand(ctx.input(1), attrs.shape);
  ctx.set_grad(0, ::ember::index_put(zeros(attrs.shape, g.dtype(), g.device()), {mask}, g, false));
}

void index(BackwardCtx& ctx, const IndexAttrs& attrs) {
  const OutputMeta& m = ctx.input_meta(0);
  Tensor g = ctx.grad(0);
  ctx.set_grad(0, ::ember::index_put(zeros(m.sizes, g.dtype(), m.device), saved_indices(ctx, attrs, 1), g, true));
}

void index_put(BackwardCtx& ctx, const IndexAttrs& attrs) {
  Tensor g = ctx.grad(0);
  TensorList idx = saved_indices(ctx, attrs, 2);
  if (ctx.needs_grad(0))
    ctx.set_grad(0, attrs.accumulate ? g : ::ember::index_put(g, idx, zeros({}, g.dtype(), g.device()), false));
  if (ctx.needs_grad(1)) ctx.set_grad(1, ::ember::index(g, idx));
}

}  // namespace backward
}  // namespace ember
