// Frontends and backward rules of the reductions and scans (sum ... cumsum, softmax). Sorting lives
// in ops/sort.cpp. Each frontend resolves dims (negative, duplicates, dims=[] meaning all), picks the
// output dtype as torch does, allocates the output on the input's device and dispatches.
#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/dispatcher.h"
#include "generated/kernels_reduce.h"
#include "ops/ops.h"
#include "ops/reduce_util.h"

namespace ember {

ReduceShape reduce_shape(const Tensor& x, IntSpan dims, bool keepdim, const char* op) {
  ReduceShape r;
  const int64_t nd = x.dim();
  std::vector<bool> seen(std::max<int64_t>(nd, 1), false);
  for (int64_t d : dims) {
    const int64_t w = wrap_dim(d, nd, op);
    EMBER_CHECK(!seen[w], "[", op, "] dim ", w, " appears multiple times in the list of dims");
    seen[w] = true;
  }
  if (dims.empty()) std::fill(seen.begin(), seen.end(), true);
  for (int64_t d = 0; d < nd; ++d) {
    if (seen[d]) {
      r.dims.push_back(d);
      r.keep_sizes.push_back(1);
      if (keepdim) r.out_sizes.push_back(1);
    } else {
      r.keep_sizes.push_back(x.sizes()[d]);
      r.out_sizes.push_back(x.sizes()[d]);
    }
  }
  return r;
}

int64_t reduced_numel(IntSpan in_sizes, IntSpan dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= in_sizes[d];
  return n;
}

static DimVector keep_sizes_of(IntSpan in_sizes, IntSpan dims) {
  DimVector s(in_sizes);
  for (int64_t d : dims) s[d] = 1;
  return s;
}

Tensor restore_reduced_dims(const Tensor& t, IntSpan in_sizes, IntSpan dims, bool keepdim) {
  if (keepdim || t.dim() == static_cast<int64_t>(in_sizes.size())) return t;
  return reshape(t, keep_sizes_of(in_sizes, dims));
}

Tensor expand_reduced(const Tensor& g, IntSpan in_sizes, IntSpan dims, bool keepdim) {
  Tensor k = restore_reduced_dims(g, in_sizes, dims, keepdim);
  if (k.sizes() == in_sizes) return k;
  return expand(k, in_sizes);
}

namespace {

template <OpId id>
Tensor reduce_op(const Tensor& x, const ReduceShape& rs, bool keepdim, ScalarType out_dtype) {
  return dispatch1<id>({x}, Tensor::empty(rs.out_sizes, out_dtype, x.device()),
                       {.dims = rs.dims, .keepdim = keepdim, .dtype = out_dtype});
}

// max/amax-style reductions have no identity: every reduced dim must be non-empty.
void check_nonempty_reduction(const Tensor& x, const ReduceShape& rs, bool dims_given, const char* torch_name) {
  if (x.numel() != 0) return;
  EMBER_CHECK(dims_given || x.dim() == 0, "[", torch_name, "] ", torch_name,
              "(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim "
              "with the 'dim' argument.");
  for (int64_t d : rs.dims)
    EMBER_CHECK_INDEX(x.sizes()[d] != 0, "[", torch_name, "] ", torch_name, "(): Expected reduction dim ", d,
                      " to have non-zero size (input ", describe(x), ").");
}

void check_floating(const Tensor& x, const char* op, const char* what) {
  EMBER_CHECK(is_floating(x.dtype()), "[", op, "] ", what, " Got: ", torch_type_name(x.dtype()));
}

Tensor zero_scalar(const Tensor& like) { return scalar_tensor(Scalar(0.0), like.dtype(), like.device()); }

}  // namespace

// ---- sum, mean, prod -------------------------------------------------------------------------------

namespace {
// sum/prod/cumsum: integers accumulate in int64 unless a dtype is given (the kernels widen integer
// inputs themselves); any other dtype change converts the input first. Returns (input, out dtype).
std::pair<Tensor, ScalarType> accumulation_input(const Tensor& x, std::optional<ScalarType> dtype) {
  const ScalarType out_dtype = dtype ? *dtype : (is_integral(x.dtype(), true) ? ScalarType::Int64 : x.dtype());
  const bool kernel_widens = out_dtype == ScalarType::Int64 && is_integral(x.dtype(), true);
  return {x.dtype() != out_dtype && !kernel_widens ? to_dtype(x, out_dtype) : x, out_dtype};
}
}  // namespace

Tensor sum(const Tensor& x, IntSpan dims, bool keepdim, std::optional<ScalarType> dtype) {
  ReduceShape rs = reduce_shape(x, dims, keepdim, "sum");
  auto [in, out_dtype] = accumulation_input(x, dtype);
  return reduce_op<OpId::sum>(in, rs, keepdim, out_dtype);
}

Tensor sum_to_size(const Tensor& x, IntSpan sizes) {
  if (x.sizes() == sizes) return x;
  const int64_t lead = x.dim() - static_cast<int64_t>(sizes.size());
  bool ok = lead >= 0;
  DimVector dims;
  for (int64_t d = 0; ok && d < x.dim(); ++d) {
    if (d < lead) { dims.push_back(d); continue; }
    const int64_t want = sizes[d - lead], have = x.sizes()[d];
    if (want == have) continue;
    if (want == 1) dims.push_back(d);
    else ok = false;
  }
  EMBER_CHECK(ok, "[sum_to_size] size ", DimVector(sizes), " is not expandable to size ", x.sizes(),
              " (input ", describe(x), ")");
  Tensor r = dims.empty() ? x : sum(x, dims, /*keepdim=*/true, x.dtype());
  return r.sizes() == sizes ? r : reshape(r, sizes);
}

Tensor mean(const Tensor& x, IntSpan dims, bool keepdim, std::optional<ScalarType> dtype) {
  ReduceShape rs = reduce_shape(x, dims, keepdim, "mean");
  if (dtype) {
    EMBER_CHECK(is_floating(*dtype), "[mean] mean(): could not infer output dtype. Optional dtype must be either "
                "a floating point or complex dtype. Got: ", torch_type_name(*dtype));
    return mean(to_dtype(x, *dtype), dims, keepdim, std::nullopt);
  }
  check_floating(x, "mean", "mean(): could not infer output dtype. Input dtype must be either a floating point or "
                 "complex dtype.");
  return reduce_op<OpId::mean>(x, rs, keepdim, x.dtype());
}

Tensor prod(const Tensor& x, IntSpan dims, bool keepdim, std::optional<ScalarType> dtype) {
  ReduceShape rs = reduce_shape(x, dims, keepdim, "prod");
  auto [in, out_dtype] = accumulation_input(x, dtype);
  return reduce_op<OpId::prod>(in, rs, keepdim, out_dtype);
}

// ---- amax, amin, max, min ----------------------------------------------------------------------------

Tensor amax(const Tensor& x, IntSpan dims, bool keepdim) {
  ReduceShape rs = reduce_shape(x, dims, keepdim, "amax");
  check_nonempty_reduction(x, rs, !dims.empty(), "amax");
  return reduce_op<OpId::amax>(x, rs, keepdim, x.dtype());
}

Tensor amin(const Tensor& x, IntSpan dims, bool keepdim) {
  ReduceShape rs = reduce_shape(x, dims, keepdim, "amin");
  check_nonempty_reduction(x, rs, !dims.empty(), "amin");
  return reduce_op<OpId::amin>(x, rs, keepdim, x.dtype());
}

Tensor max_all(const Tensor& x) {
  ReduceShape rs = reduce_shape(x, {}, false, "max");
  check_nonempty_reduction(x, rs, false, "max");
  return reduce_op<OpId::amax>(x, rs, false, x.dtype());
}

Tensor min_all(const Tensor& x) {
  ReduceShape rs = reduce_shape(x, {}, false, "min");
  check_nonempty_reduction(x, rs, false, "min");
  return reduce_op<OpId::amin>(x, rs, false, x.dtype());
}

namespace {
template <OpId id>
std::pair<Tensor, Tensor> minmax_dim(const Tensor& x, int64_t dim, bool keepdim, const char* name) {
  const int64_t d = wrap_dim(dim, x.dim(), name);
  const int64_t dims_arr[1] = {d};
  ReduceShape rs = reduce_shape(x, x.dim() == 0 ? IntSpan() : IntSpan(dims_arr, 1), keepdim, name);
  if (x.dim() > 0) check_nonempty_reduction(x, rs, true, name);
  Tensor values = Tensor::empty(rs.out_sizes, x.dtype(), x.device());
  Tensor indices = Tensor::empty(rs.out_sizes, ScalarType::Int64, x.device());
  Tensor outs[2] = {values, indices};
  Tensor ins[1] = {x};
  dispatch<id>(ins, outs, {.dims = rs.dims, .dim = d, .keepdim = keepdim});
  return {outs[0], outs[1]};
}
}  // namespace

std::pair<Tensor, Tensor> max_dim(const Tensor& x, int64_t dim, bool keepdim) {
  return minmax_dim<OpId::max_dim>(x, dim, keepdim, "max");
}
std::pair<Tensor, Tensor> min_dim(const Tensor& x, int64_t dim, bool keepdim) {
  return minmax_dim<OpId::min_dim>(x, dim, keepdim, "min");
}

namespace {
template <OpId id>
Tensor arg_op(const Tensor& x, std::optional<int64_t> dim, bool keepdim, const char* name) {
  EMBER_CHECK(x.dtype() != ScalarType::Bool, "[", name, "] ", name, "(): does not support bool input");
  ReduceShape rs;
  if (dim) {
    const int64_t d = wrap_dim(*dim, x.dim(), name);
    const int64_t dims_arr[1] = {d};
    rs = reduce_shape(x, x.dim() == 0 ? IntSpan() : IntSpan(dims_arr, 1), keepdim, name);
    if (x.dim() > 0) check_nonempty_reduction(x, rs, true, name);
  } else {
    rs = reduce_shape(x, {}, keepdim, name);
    EMBER_CHECK_INDEX(x.numel() != 0, "[", name, "] ", name, "(): Expected reduction dim to be specified for "
                      "input.numel() == 0.");
  }
  return reduce_op<id>(x, rs, keepdim, ScalarType::Int64);
}
}  // namespace

Tensor argmax(const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  return arg_op<OpId::argmax>(x, dim, keepdim, "argmax");
}
Tensor argmin(const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  return arg_op<OpId::argmin>(x, dim, keepdim, "argmin");
}

// ---- var, std, norm, logsumexp, any, all -------------------------------------------------------------

Tensor var(const Tensor& x, IntSpan dims, std::optional<double> correction, bool keepdim) {
  ReduceShape rs = reduce_shape(x, dims, keepdim, "var");
  EMBER_CHECK(is_floating(x.dtype()), "[var] std and var only support floating point and complex dtypes, got ",
              describe(x));
  return dispatch1<OpId::var>({x}, Tensor::empty(rs.out_sizes, x.dtype(), x.device()),
                              {.dims = rs.dims, .keepdim = keepdim, .correction = correction.value_or(1.0)});
}

Tensor std_dev(const Tensor& x, IntSpan dims, std::optional<double> correction, bool keepdim) {
  return sqrt(var(x, dims, correction, keepdim));
}

std::pair<Tensor, Tensor> var_mean(const Tensor& x, IntSpan dims, std::optional<double> correction, bool keepdim) {
  return {var(x, dims, correction, keepdim), mean(x, dims, keepdim)};
}

std::pair<Tensor, Tensor> std_mean(const Tensor& x, IntSpan dims, std::optional<double> correction, bool keepdim) {
  return {std_dev(x, dims, correction, keepdim), mean(x, dims, keepdim)};
}

double norm_order(std::string_view p) {
  EMBER_CHECK_VALUE(p == "fro", "[norm] unsupported norm type '", p, "' (vector norms take 'fro' or a number)");
  return 2.0;
}

Tensor norm(const Tensor& self, double p, IntSpan dims, bool keepdim, std::optional<ScalarType> dtype) {
  const Tensor x = dtype ? to_dtype(self, *dtype) : self;
  ReduceShape rs = reduce_shape(x, dims, keepdim, "norm");
  EMBER_CHECK(is_floating(x.dtype()), "[norm] linalg.vector_norm: Expected a floating point or complex tensor as "
              "input. Got ", torch_type_name(x.dtype()));
  if (p < 0 && x.numel() == 0) {
    EMBER_CHECK(false, "[norm] linalg.vector_norm cannot compute the ", p, " norm on an empty tensor because the "
                "operation does not have an identity");
  }
  return dispatch1<OpId::norm>({x}, Tensor::empty(rs.out_sizes, x.dtype(), x.device()),
                               {.dims = rs.dims, .keepdim = keepdim, .p = p});
}

Tensor logsumexp(const Tensor& x, IntSpan dims, bool keepdim) {
  ReduceShape rs = reduce_shape(x, dims, keepdim, "logsumexp");
  Tensor in = is_floating(x.dtype()) ? x : to_dtype(x, default_float_type());
  return reduce_op<OpId::logsumexp>(in, rs, keepdim, in.dtype());
}

Tensor any(const Tensor& x, IntSpan dims, bool keepdim) {
  ReduceShape rs = reduce_shape(x, dims, keepdim, "any");
  return reduce_op<OpId::any>(x, rs, keepdim, x.dtype() == ScalarType::UInt8 ? ScalarType::UInt8 : ScalarType::Bool);
}

Tensor all(const Tensor& x, IntSpan dims, bool keepdim) {
  ReduceShape rs = reduce_shape(x, dims, keepdim, "all");
  return reduce_op<OpId::all>(x, rs, keepdim, x.dtype() == ScalarType::UInt8 ? ScalarType::UInt8 : ScalarType::Bool);
}

// ---- cumsum, softmax, log_softmax ----------------------------------------------------------------------

Tensor cumsum(const Tensor& x, int64_t dim, std::optional<ScalarType> dtype) {
  const int64_t d = wrap_dim(dim, x.dim(), "cumsum");
  auto [in, out_dtype] = accumulation_input(x, dtype);
  return dispatch1<OpId::cumsum>({in}, Tensor::empty(x.sizes(), out_dtype, x.device()),
                                 {.dim = d, .dtype = out_dtype});
}

namespace {
template <OpId id>
Tensor softmax_op(const Tensor& x, int64_t dim, std::optional<ScalarType> dtype, const char* name) {
  const int64_t d = wrap_dim(dim, x.dim(), name);
  Tensor in = dtype ? to_dtype(x, *dtype) : x;
  EMBER_CHECK_KIND(is_floating(in.dtype()) || in.numel() == 0, ErrorKind::NotImplemented, "[", name, "] not implemented for '",
                   torch_type_name(in.dtype()), "' (input ", describe(in), ")");
  return dispatch1<id>({in}, Tensor::empty(in.sizes(), in.dtype(), in.device()), {.dim = d});
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim, std::optional<ScalarType> dtype) {
  return softmax_op<OpId::softmax>(x, dim, dtype, "softmax");
}
Tensor log_softmax(const Tensor& x, int64_t dim, std::optional<ScalarType> dtype) {
  return softmax_op<OpId::log_softmax>(x, dim, dtype, "log_softmax");
}

Tensor scaled_softmax(const Tensor& x, double scale, bool causal) {
  EMBER_CHECK_KIND(is_floating(x.dtype()), ErrorKind::NotImplemented, "[scaled_softmax] not implemented for '",
                   torch_type_name(x.dtype()), "' (input ", describe(x), ")");
  EMBER_CHECK(x.dim() >= (causal ? 2 : 1), "[scaled_softmax] expected an input of at least ", causal ? 2 : 1,
              " dims (", causal ? "[..., L, S] for a causal mask" : "[..., S]", "), got ", describe(x));
  return dispatch1<OpId::scaled_softmax>({contiguous(x)}, Tensor::empty(x.sizes(), x.dtype(), x.device()),
                                         {.scale = scale, .causal = causal});
}

Tensor softmax_backward(const Tensor& grad, const Tensor& output, double scale) {
  EMBER_CHECK(grad.sizes() == output.sizes() && grad.dtype() == output.dtype() && output.dim() >= 1,
              "[softmax_backward] grad ", describe(grad), " and output ", describe(output),
              " must have the same shape (at least 1-d) and dtype");
  return dispatch1<OpId::softmax_backward>({contiguous(grad), contiguous(output)},
                                           Tensor::empty(output.sizes(), output.dtype(), output.device()),
                                           {.scale = scale});
}

// ---- backward rules ----------------------------------------------------------------------------------

namespace backward {

void sum(BackwardCtx& ctx, const ReduceAttrs& attrs) {
  if (!ctx.needs_grad(0)) return;
  const auto& meta = ctx.input_meta(0);
  ctx.set_grad(0, expand_reduced(ctx.grad(0), meta.sizes, attrs.dims, attrs.keepdim));
}

void mean(BackwardCtx& ctx, const ReduceAttrs& attrs) {
  if (!ctx.needs_grad(0)) return;
  const auto& meta = ctx.input_meta(0);
  const int64_t n = reduced_numel(meta.sizes, attrs.dims);
  Tensor g = expand_reduced(ctx.grad(0), meta.sizes, attrs.dims, attrs.keepdim);
  ctx.set_grad(0, div(g, Scalar(static_cast<double>(n))));
}

// Note [prod backward with zeros]
// d prod / d x_i is the product of the other elements. Without zeros in a group that is out / x_i;
// with exactly one zero only that element gets a gradient (the product of the non-zeros); with two
// or more zeros every gradient is zero. Division never sees a zero, so no inf/nan appear.
void prod(BackwardCtx& ctx, const ReduceAttrs& attrs) {
  if (!ctx.needs_grad(0)) return;
  const auto& meta = ctx.input_meta(0);
  const auto& dims = attrs.dims;
  Tensor x = ctx.input(0);
  Tensor gk = restore_reduced_dims(ctx.grad(0), meta.sizes, dims, attrs.keepdim);
  Tensor outk = restore_reduced_dims(ctx.output(0), meta.sizes, dims, attrs.keepdim);
  Tensor zero = zero_scalar(x);
  Tensor is_zero = eq(x, zero);
  Tensor zero_f = to_dtype(is_zero, x.dtype());
  Tensor zeros_per_group = sum(zero_f, dims, /*keepdim=*/true);
  Tensor safe_x = where(is_zero, scalar_tensor(Scalar(1.0), x.dtype(), x.device()), x);
  Tensor prod_nonzero = prod(safe_x, dims, /*keepdim=*/true);
  Tensor no_zero_grad = where(eq(zeros_per_group, zero), div(outk, safe_x), Scalar(0.0));
  Tensor one_zero_grad = where(eq(zeros_per_group, scalar_tensor(Scalar(1.0), x.dtype(), x.device())),
                               mul(prod_nonzero, zero_f), Scalar(0.0));
  ctx.set_grad(0, mul(add(no_zero_grad, one_zero_grad), gk));
}

// amax/amin (and max()/min()): the gradient is shared evenly among the tied extrema, like torch.
static void extremum_backward(BackwardCtx& ctx, const ReduceAttrs& attrs) {
  if (!ctx.needs_grad(0)) return;
  const auto& meta = ctx.input_meta(0);
  const auto& dims = attrs.dims;
  Tensor x = ctx.input(0);
  Tensor gk = restore_reduced_dims(ctx.grad(0), meta.sizes, dims, attrs.keepdim);
  Tensor yk = restore_reduced_dims(ctx.output(0), meta.sizes, dims, attrs.keepdim);
  Tensor mask = to_dtype(eq(x, yk), gk.dtype());
  Tensor count = sum(mask, dims, /*keepdim=*/true);
  ctx.set_grad(0, mul(div(gk, count), mask));
}
void amax(BackwardCtx& ctx, const ReduceAttrs& attrs) { extremum_backward(ctx, attrs); }
void amin(BackwardCtx& ctx, const ReduceAttrs& attrs) { extremum_backward(ctx, attrs); }

static void index_reduction_backward(BackwardCtx& ctx, const ReduceDimAttrs& attrs) {
  if (!ctx.needs_grad(0)) return;
  const auto& meta = ctx.input_meta(0);
  if (meta.sizes.empty()) { ctx.set_grad(0, ctx.grad(0)); return; }
  const int64_t dims_arr[1] = {attrs.dim};
  Tensor gk = restore_reduced_dims(ctx.grad(0), meta.sizes, IntSpan(dims_arr, 1), attrs.keepdim);
  Tensor ik = restore_reduced_dims(ctx.output(1), meta.sizes, IntSpan(dims_arr, 1), attrs.keepdim);
  Tensor base = zeros(meta.sizes, gk.dtype(), gk.device());
  ctx.set_grad(0, scatter_add(base, attrs.dim, ik, gk));
}
void max_dim(BackwardCtx& ctx, const ReduceDimAttrs& attrs) { index_reduction_backward(ctx, attrs); }
void min_dim(BackwardCtx& ctx, const ReduceDimAttrs& attrs) { index_reduction_backward(ctx, attrs); }

void var(BackwardCtx& ctx, const VarAttrs& attrs) {
  if (!ctx.needs_grad(0)) return;
  const auto& meta = ctx.input_meta(0);
  const auto& dims = attrs.dims;
  Tensor x = ctx.input(0);
  const double n = static_cast<double>(reduced_numel(meta.sizes, dims));
  const double divisor = std::max(0.0, n - attrs.correction);
  Tensor gk = restore_reduced_dims(ctx.grad(0), meta.sizes, dims, attrs.keepdim);
  Tensor centered = sub(x, mean(x, dims, /*keepdim=*/true));
  ctx.set_grad(0, mul(mul(centered, Scalar(2.0 / divisor)), gk));
}

void norm(BackwardCtx& ctx, const NormAttrs& attrs) {
  if (!ctx.needs_grad(0)) return;
  const auto& meta = ctx.input_meta(0);
  const auto& dims = attrs.dims;
  const double p = attrs.p;
  Tensor x = ctx.input(0);
  Tensor gk = restore_reduced_dims(ctx.grad(0), meta.sizes, dims, attrs.keepdim);
  Tensor yk = restore_reduced_dims(ctx.output(0), meta.sizes, dims, attrs.keepdim);
  Tensor zero = zero_scalar(x);
  if (p == 0) {
    ctx.set_grad(0, mul(x, zero));
  } else if (p == 1) {
    ctx.set_grad(0, mul(sign(x), gk));
  } else if (p == 2) {
    Tensor scale = where(eq(yk, zero), zero, div(gk, yk));
    ctx.set_grad(0, mul(x, scale));
  } else if (std::isinf(p)) {
    Tensor mask = to_dtype(eq(abs(x), yk), gk.dtype());
    Tensor count = sum(mask, dims, /*keepdim=*/true);
    ctx.set_grad(0, mul(mul(sign(x), mask), div(gk, count)));
  } else {
    // d/dx (sum |x|^p)^(1/p) = sign(x) |x|^(p-1) / norm^(p-1)
    Tensor scale = where(eq(yk, zero), zero, div(gk, pow(yk, Scalar(p - 1))));
    ctx.set_grad(0, mul(mul(sign(x), pow(abs(x), Scalar(p - 1))), scale));
  }
}

void logsumexp(BackwardCtx& ctx, const ReduceAttrs& attrs) {
  if (!ctx.needs_grad(0)) return;
  const auto& meta = ctx.input_meta(0);
  const auto& dims = attrs.dims;
  Tensor gk = restore_reduced_dims(ctx.grad(0), meta.sizes, dims, attrs.keepdim);
  Tensor yk = restore_reduced_dims(ctx.output(0), meta.sizes, dims, attrs.keepdim);
  ctx.set_grad(0, mul(gk, exp(sub(ctx.input(0), yk))));
}

// The gradient of a prefix sum is the suffix sum of the gradient.
void cumsum(BackwardCtx& ctx, const CumsumAttrs& attrs) {
  if (!ctx.needs_grad(0)) return;
  Tensor g = ctx.grad(0);
  if (g.dim() == 0) { ctx.set_grad(0, g); return; }
  const int64_t d[1] = {attrs.dim};
  ctx.set_grad(0, flip(cumsum(flip(g, IntSpan(d, 1)), attrs.dim), IntSpan(d, 1)));
}

namespace {
// scale * y * (g - sum(g * y, dim)): one fused kernel over the last dim, else (and under
// create_graph, which needs differentiable ops) the composite.
Tensor softmax_grad(const Tensor& g, const Tensor& y, int64_t dim, double scale) {
  if (dim == y.dim() - 1 && !GradMode::is_enabled() && g.dtype() == y.dtype()) return softmax_backward(g, y, scale);
  const int64_t d[1] = {dim};
  Tensor gy = mul(g, y);
  Tensor grad = sub(gy, mul(y, sum(gy, IntSpan(d, 1), /*keepdim=*/true)));
  return scale == 1.0 ? grad : mul(grad, scalar_tensor(Scalar(scale), grad.dtype(), grad.device()));
}
}  // namespace

void softmax(BackwardCtx& ctx, const DimAttrs& attrs) {
  if (!ctx.needs_grad(0)) return;
  Tensor y = ctx.output(0), g = ctx.grad(0);
  if (y.dim() == 0) { ctx.set_grad(0, mul(g, zero_scalar(y))); return; }
  ctx.set_grad(0, softmax_grad(g, y, attrs.dim, 1.0));
}

void scaled_softmax(BackwardCtx& ctx, const ScaledSoftmaxAttrs& attrs) {
  if (!ctx.needs_grad(0)) return;
  Tensor y = ctx.output(0);
  ctx.set_grad(0, softmax_grad(ctx.grad(0), y, y.dim() - 1, attrs.scale));
}

void log_softmax(BackwardCtx& ctx, const DimAttrs& attrs) {
  if (!ctx.needs_grad(0)) return;
  Tensor y = ctx.output(0), g = ctx.grad(0);
  if (y.dim() == 0) { ctx.set_grad(0, mul(g, zero_scalar(y))); return; }
  const int64_t d[1] = {attrs.dim};
  ctx.set_grad(0, sub(g, mul(exp(y), sum(g, IntSpan(d, 1), /*keepdim=*/true))));
}

}  // namespace backward
}  // namespace ember
