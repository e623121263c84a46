// Frontends and backward rules of the scans (cumprod, cummax/cummin, logcumsumexp) and of binary
// search (searchsorted, bucketize); spec: scan.yaml, kernels: cpu/scan.cpp, cuda/scan.cu.
#include <limits>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/dispatcher.h"
#include "generated/kernels_scan.h"
#include "ops/elementwise.h"
#include "ops/formula.h"
#include "ops/ops.h"

namespace ember {
namespace {
// The value of a one-element tensor as int64, read on the host.
int64_t host_int(const Tensor& t) {
  return contiguous(to_device(to_dtype(t, ScalarType::Int64), Device())).data<int64_t>()[0];
}
}  // namespace

// ---- scans ----------------------------------------------------------------------------------------

Tensor cumprod(const Tensor& x, int64_t dim, std::optional<ScalarType> dtype) {
  const int64_t d = wrap_dim(dim, x.dim(), "cumprod");
  // Like cumsum: integers (and bool) accumulate in int64 unless a dtype is given; other dtype changes
  // convert the input first.
  const ScalarType out_dtype = dtype ? *dtype : (is_integral(x.dtype(), true) ? ScalarType::Int64 : x.dtype());
  const bool kernel_widens = out_dtype == ScalarType::Int64 && is_integral(x.dtype(), true);
  const Tensor in = x.dtype() != out_dtype && !kernel_widens ? to_dtype(x, out_dtype) : x;
  EMBER_CHECK_TYPE(out_dtype != ScalarType::Bool, "[cumprod] not implemented for 'Bool' output (input ",
                   describe(x), ")");
  return dispatch1<OpId::cumprod>({in}, Tensor::empty(x.sizes(), out_dtype, x.device()),
                                  {.dim = d, .dtype = out_dtype});
}

Tensor cumprod_backward(const Tensor& grad, const Tensor& self, int64_t dim) {
  EMBER_CHECK(grad.sizes() == self.sizes() && grad.dtype() == self.dtype() && is_floating(self.dtype()),
              "[cumprod_backward] expects grad and self of one shape and floating dtype, got ", describe(grad),
              " and ", describe(self));
  const int64_t d = wrap_dim(dim, self.dim(), "cumprod_backward");
  return dispatch1<OpId::cumprod_backward>({grad, self}, Tensor::empty(self.sizes(), self.dtype(), self.device()),
                                           {.dim = d});
}

namespace {
template <OpId id>
std::pair<Tensor, Tensor> cum_extremum(const Tensor& x, int64_t dim, const char* name) {
  const int64_t d = wrap_dim(dim, x.dim(), name);
  Tensor outs[2] = {Tensor::empty(x.sizes(), x.dtype(), x.device()),
                    Tensor::empty(x.sizes(), ScalarType::Int64, x.device())};
  Tensor ins[1] = {x};
  dispatch<id>(ins, outs, {.dim = d});
  return {outs[0], outs[1]};
}
}  // namespace

std::pair<Tensor, Tensor> cummax(const Tensor& x, int64_t dim) {
  return cum_extremum<OpId::cummax>(x, dim, "cummax");
}
std::pair<Tensor, Tensor> cummin(const Tensor& x, int64_t dim) {
  return cum_extremum<OpId::cummin>(x, dim, "cummin");
}

Tensor logcumsumexp(const Tensor& x, int64_t dim) {
  const int64_t d = wrap_dim(dim, x.dim(), "logcumsumexp");
  EMBER_CHECK_KIND(is_floating(x.dtype()), ErrorKind::NotImplemented, "[logcumsumexp] not implemented for '",
                   torch_type_name(x.dtype()), "' (input ", describe(x), ")");
  return dispatch1<OpId::logcumsumexp>({x}, Tensor::empty(x.sizes(), x.dtype(), x.device()), {.dim = d});
}

// ---- searchsorted ---------------------------------------------------------------------------------

Tensor searchsorted(const Tensor& seq, const Operand& self, bool out_int32, bool right,
                    std::optional<std::string_view> side, const Tensor& sorter) {
  const char* op = "searchsorted";
  if (side) {
    EMBER_CHECK(*side == "left" || *side == "right", "[", op, "] side can only be 'left' or 'right' but got ", *side);
    EMBER_CHECK(!(right && *side == "left"), "[", op, "] side and right can't be set to opposites, got side of left "
                "while right was True");
    right = *side == "right";
  }
  EMBER_CHECK(seq.dim() >= 1, "[", op, "] boundaries tensor should have positive dimension, but got 0 dimension (",
              describe(seq), ")");
  const Operand seq_operand(seq);
  const ScalarType dt = ew::result_type({&seq_operand, &self});
  EMBER_CHECK_KIND(dt != ScalarType::Bool, ErrorKind::NotImplemented, "[", op, "] not implemented for 'Bool'");
  const Tensor values = ew::materialize(self, dt, seq.device());
  if (seq.dim() > 1) {
    const bool ok = values.dim() == seq.dim() &&
                    std::equal(seq.sizes().begin(), seq.sizes().end() - 1, values.sizes().begin());
    EMBER_CHECK(ok, "[", op, "] boundaries tensor should be 1 dimension or the first N-1 dimensions of boundaries "
                "tensor and input value tensor must match, but we got boundaries tensor ", seq.sizes(),
                " and input value tensor ", values.sizes());
  }
  std::vector<Tensor> ins{contiguous(to_dtype(seq, dt)), contiguous(to_dtype(values, dt))};
  if (sorter.defined()) {
    EMBER_CHECK(sorter.dtype() == ScalarType::Int64, "[", op, "] sorter must be a tensor of long dtype, but got ",
                torch_type_name(sorter.dtype()));
    EMBER_CHECK(sorter.sizes() == seq.sizes(), "[", op, "] boundary and sorter must have the same size, but got "
                "boundary tensor ", seq.sizes(), " and got sorter tensor ", sorter.sizes());
    EMBER_CHECK(sorter.device() == seq.device(), "[", op, "] sorter ", describe(sorter),
                " must be on the device of the boundaries ", describe(seq));
    const int64_t n = seq.sizes()[seq.dim() - 1];
    const bool in_range = sorter.numel() == 0 ||
                          (host_int(min_all(sorter)) >= 0 && host_int(max_all(sorter)) < n);
    EMBER_CHECK(in_range, "[", op, "] sorter index out of range (boundaries ", describe(seq), ")");
    ins.push_back(contiguous(sorter));
  }
  Tensor out = Tensor::empty(values.sizes(), out_int32 ? ScalarType::Int32 : ScalarType::Int64, seq.device());
  std::vector<Tensor> outs{out};
  dispatch<OpId::searchsorted>(ins, outs, {.right = right});
  return out;
}

Tensor bucketize(const Operand& self, const Tensor& boundaries, bool out_int32, bool right) {
  EMBER_CHECK(boundaries.dim() == 1, "[bucketize] boundaries tensor must be 1 dimension but got dim(",
              boundaries.dim(), ") (", describe(boundaries), ")");
  return searchsorted(boundaries, self, out_int32, right, std::nullopt, Tensor());
}

namespace backward {
namespace {
// sum_{j >= k} g_j prod_{i <= j, i != k} x_i for every k: O(n^2) but made of differentiable ops, for
// double backward through inputs with zeros. Rows [.., k, j] hold x_j with x_k replaced by 1.
Tensor cumprod_grad_composite(const Tensor& g, const Tensor& x, int64_t dim) {
  const int64_t n = x.sizes()[dim];
  const int64_t last = x.dim() - 1;
  const Tensor xl = movedim(x, IntSpan(&dim, 1), IntSpan(&last, 1));
  const Tensor gl = movedim(g, IntSpan(&dim, 1), IntSpan(&last, 1));
  DimVector sq = xl.sizes();
  sq.push_back(n);  // [..., n(k), n(j)]
  const Tensor eye_kj = eye(n, std::nullopt, ScalarType::Bool, x.device());
  const Tensor rows = where(eye_kj, 1.0, expand(unsqueeze(xl, -2), sq));
  const Tensor upper = triu(ones(DimVector{n, n}, x.dtype(), x.device()));  // j >= k
  const Tensor r = sum(cumprod(rows, -1, std::nullopt) * unsqueeze(gl, -2) * upper, DimVector{-1});
  return movedim(r, IntSpan(&last, 1), IntSpan(&dim, 1));
}

Tensor lowest_like(const Tensor& t) {
  double v = std::numeric_limits<double>::lowest();
  if (t.dtype() == ScalarType::Float32) v = std::numeric_limits<float>::lowest();
  if (t.dtype() == ScalarType::Float16) v = -65504.0;
  if (t.dtype() == ScalarType::BFloat16) v = -3.3895313892515355e38;
  return scalar_tensor(Scalar(v), t.dtype(), t.device());
}
}  // namespace

// Note [cumprod backward]
// d/dx_k of sum_j g_j y_j is sum_{j >= k} g_j prod_{i <= j, i != k} x_i: reversed_cumsum(g * y) / x
// without zeros, which divides by zero otherwise. The cumprod_backward kernel evaluates it exactly
// in O(n) per line instead: (prod_{i < k} x_i) * r_k with r_k = g_k + x_{k+1} r_{k+1}. Under
// create_graph that kernel (not differentiable) gives way to an O(n^2) composition of
// differentiable ops, exact too.
void cumprod(BackwardCtx& ctx, const CumprodAttrs& attrs) {
  if (!ctx.needs_grad(0)) return;
  const Tensor g = ctx.grad(0), x = ctx.input(0);
  if (x.dim() == 0 || x.numel() == 0 || x.sizes()[attrs.dim] == 1) { ctx.set_grad(0, g); return; }
  ctx.set_grad(0, GradMode::is_enabled() ? cumprod_grad_composite(g, x, attrs.dim)
                                         : cumprod_backward(g, x, attrs.dim));
}

// Each output took its value from the input at its index: scatter the gradient there.
static void cum_extremum_backward(BackwardCtx& ctx, int64_t dim) {
  if (!ctx.needs_grad(0)) return;
  const Tensor g = ctx.grad(0);
  if (g.dim() == 0) { ctx.set_grad(0, g); return; }
  ctx.set_grad(0, scatter_add(zeros(g.sizes(), g.dtype(), g.device()), dim, ctx.output(1), g));
}
void cummax(BackwardCtx& ctx, const CummaxAttrs& attrs) { cum_extremum_backward(ctx, attrs.dim); }
void cummin(BackwardCtx& ctx, const CumminAttrs& attrs) { cum_extremum_backward(ctx, attrs.dim); }

// torch's formula: the gradient's positive and negative parts go through reversed logcumsumexps in
// log space (the lowest finite value stands for log 0, so -inf results never make inf - inf).
void logcumsumexp(BackwardCtx& ctx, const LogcumsumexpAttrs& attrs) {
  if (!ctx.needs_grad(0)) return;
  const Tensor g = ctx.grad(0), x = ctx.input(0), y = ctx.output(0);
  if (g.dim() == 0 || g.numel() == 0) { ctx.set_grad(0, g); return; }
  const int64_t d[1] = {attrs.dim};
  auto reversed = [&](const Tensor& t) {
    return flip(logcumsumexp(flip(t, IntSpan(d, 1)), attrs.dim), IntSpan(d, 1));
  };
  const Tensor lowest = lowest_like(g);
  const Tensor log_abs = log(abs(g));
  const Tensor pos = exp(reversed(where(gt(g, 0), log_abs, lowest) - y) + x);
  const Tensor neg = exp(reversed(where(lt(g, 0), log_abs, lowest) - y) + x);
  ctx.set_grad(0, pos - neg);
}

}  // namespace backward
}  // namespace ember
