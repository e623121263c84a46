// Linear algebra frontends: mm, bmm, addmm (kernels in cpu/blas.cpp) and the composites built on
// them (matmul with torch's 1-D/2-D/batched broadcasting rules, linear, dot, outer).
#include "autograd/node.h"
#include "dispatch/dispatcher.h"
#include "generated/kernels_linalg.h"
#include "ops/ops.h"
#include "ops/reduce_util.h"

namespace ember {
namespace {

std::string shape_x(const Tensor& t) {
  std::string s;
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "x" : "") + std::to_string(t.sizes()[i]);
  return s;
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.dtype() == b.dtype(), "[", op, "] expected both operands to have the same dtype, but got ",
              describe(a), " and ", describe(b));
}

void check_matmul_dtype(const char* op, ScalarType t) {
  EMBER_CHECK_TYPE(t != ScalarType::Bool, "[", op, "] not implemented for dtype bool");
}

Tensor scale(const Tensor& t, const Scalar& s) {
  if (!s.is_float() && s.to_int() == 1) return t;
  return mul(t, scalar_tensor(s, t.dtype(), t.device()));
}

Tensor mT(const Tensor& t) { return transpose(t, -2, -1); }

}  // namespace

Tensor mm(const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.dim() == 2, "[mm] self must be a matrix, got ", describe(a));
  EMBER_CHECK(b.dim() == 2, "[mm] mat2 must be a matrix, got ", describe(b));
  EMBER_CHECK(a.sizes()[1] == b.sizes()[0], "[mm] mat1 and mat2 shapes cannot be multiplied (", shape_x(a), " and ",
              shape_x(b), ")");
  check_same_dtype("mm", a, b);
  check_matmul_dtype("mm", a.dtype());
  Tensor out = Tensor::empty(DimVector{a.sizes()[0], b.sizes()[1]}, a.dtype(), a.device());
  return dispatch1<OpId::mm>({a, b}, out);
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.dim() == 3, "[bmm] batch1 must be a 3D tensor, got ", describe(a));
  EMBER_CHECK(b.dim() == 3, "[bmm] batch2 must be a 3D tensor, got ", describe(b));
  EMBER_CHECK(a.sizes()[0] == b.sizes()[0] && a.sizes()[2] == b.sizes()[1], "[bmm] batch1 and batch2 shapes cannot be "
              "multiplied (", shape_x(a), " and ", shape_x(b), ")");
  check_same_dtype("bmm", a, b);
  check_matmul_dtype("bmm", a.dtype());
  Tensor out = Tensor::empty(DimVector{a.sizes()[0], a.sizes()[1], b.sizes()[2]}, a.dtype(), a.device());
  return dispatch1<OpId::bmm>({a, b}, out);
}

Tensor addmm(const Tensor& bias, const Tensor& a, const Tensor& b, Scalar beta, Scalar alpha) {
  EMBER_CHECK(a.dim() == 2, "[addmm] mat1 must be a matrix, got ", describe(a));
  EMBER_CHECK(b.dim() == 2, "[addmm] mat2 must be a matrix, got ", describe(b));
  EMBER_CHECK(a.sizes()[1] == b.sizes()[0], "[addmm] mat1 and mat2 shapes cannot be multiplied (", shape_x(a),
              " and ", shape_x(b), ")");
  check_same_dtype("addmm", a, b);
  check_same_dtype("addmm", bias, a);
  check_matmul_dtype("addmm", a.dtype());
  const int64_t m = a.sizes()[0], n = b.sizes()[1];
  EMBER_CHECK(bias.dim() <= 2, "[addmm] self must be at most 2-D, got ", describe(bias));
  DimVector want{m, n};
  (void)broadcast_shapes(bias.sizes(), want, "addmm");
  const bool ok = (bias.dim() == 0) || (bias.dim() == 1 && (bias.sizes()[0] == n || bias.sizes()[0] == 1)) ||
                  (bias.dim() == 2 && (bias.sizes()[0] == m || bias.sizes()[0] == 1) &&
                   (bias.sizes()[1] == n || bias.sizes()[1] == 1));
  EMBER_CHECK(ok, "[addmm] self ", describe(bias), " is not broadcastable to [", m, ", ", n, "]");
  Tensor out = Tensor::empty(DimVector{m, n}, a.dtype(), a.device());
  return dispatch1<OpId::addmm>({bias, a, b}, out, {.beta = beta, .alpha = alpha});
}

Tensor dot(const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.dim() == 1 && b.dim() == 1, "[dot] 1D tensors expected, but got ", describe(a), " and ",
              describe(b));
  EMBER_CHECK(a.sizes()[0] == b.sizes()[0], "[dot] inconsistent tensor size, expected tensors ", describe(a),
              " and ", describe(b), " to have the same number of elements");
  check_same_dtype("dot", a, b);
  // torch's CUDA dot is cuBLAS-only (no integer kernel, even for empty vectors); match its error.
  EMBER_CHECK_KIND(!a.device().is_cuda() || is_floating(a.dtype()), ErrorKind::NotImplemented,
                   "[dot] \"dot\" not implemented for '", torch_type_name(a.dtype()), "' on CUDA (", describe(a), ")");
  return reshape(mm(unsqueeze(a, 0), unsqueeze(b, 1)), DimVector{});
}

Tensor outer(const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.dim() == 1 && b.dim() == 1, "[outer] 1D tensors expected, but got ", describe(a), " and ",
              describe(b));
  return mul(unsqueeze(a, 1), unsqueeze(b, 0));
}

// torch.matmul: 1-D operands gain a dim (removed from the result), batch dims broadcast, and an
// N-D @ 2-D product folds the batch into the rows of one mm.
Tensor matmul(const Tensor& a, const Tensor& b) {
  const int64_t da = a.dim(), db = b.dim();
  EMBER_CHECK(da > 0 && db > 0, "[matmul] both arguments need at least 1 dimension, got ", describe(a), " and ",
              describe(b));
  check_same_dtype("matmul", a, b);
  const int64_t ka = a.sizes()[da - 1], kb = db == 1 ? b.sizes()[0] : b.sizes()[db - 2];
  EMBER_CHECK(ka == kb, "[matmul] shapes ", a.sizes(), " and ", b.sizes(), " cannot be multiplied (", ka, " != ", kb,
              ")");
  if (da == 1 && db == 1) return dot(a, b);
  if (da == 2 && db == 2) return mm(a, b);
  if (da == 1 && db == 2) return squeeze(mm(unsqueeze(a, 0), b), 0);
  if (da == 2 && db == 1) return squeeze(mm(a, unsqueeze(b, 1)), 1);
  if (da >= 3 && db <= 2) {  // fold batch dims into rows
    DimVector out_sizes(a.sizes().begin(), a.sizes().end() - 1);
    Tensor rows = reshape(a, DimVector{-1, ka});
    Tensor b2 = db == 1 ? unsqueeze(b, 1) : b;
    Tensor r = mm(rows, b2);
    if (db == 2) out_sizes.push_back(b.sizes()[1]);
    return reshape(r, out_sizes);
  }
  // General batched case.
  Tensor a3 = da == 1 ? unsqueeze(a, 0) : a;
  Tensor b3 = db == 1 ? unsqueeze(b, 1) : b;
  const int64_t n = a3.sizes()[a3.dim() - 2], m = b3.sizes()[b3.dim() - 1];
  DimVector batch_a(a3.sizes().begin(), a3.sizes().end() - 2), batch_b(b3.sizes().begin(), b3.sizes().end() - 2);
  DimVector batch = broadcast_shapes(batch_a, batch_b, "matmul");
  const int64_t nbatch = numel_of(batch);
  DimVector ea = batch, eb = batch;
  ea.push_back(n); ea.push_back(ka);
  eb.push_back(kb); eb.push_back(m);
  Tensor r = bmm(reshape(expand(a3, ea), DimVector{nbatch, n, ka}), reshape(expand(b3, eb), DimVector{nbatch, kb, m}));
  DimVector out_sizes = batch;
  if (da > 1) out_sizes.push_back(n);
  if (db > 1) out_sizes.push_back(m);
  return reshape(r, out_sizes);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  EMBER_CHECK(weight.dim() == 1 || weight.dim() == 2, "[linear] weight must be 1-D or 2-D, got ", describe(weight));
  const int64_t in_features = weight.sizes()[weight.dim() - 1];
  EMBER_CHECK(x.dim() >= 1 && x.sizes()[x.dim() - 1] == in_features, "[linear] input ", describe(x),
              " and weight ", describe(weight), " shapes cannot be multiplied (in_features ", in_features, ")");
  if (x.dim() == 2 && weight.dim() == 2 && bias.defined()) return addmm(bias, x, transpose(weight, 0, 1));
  if (x.dim() > 2 && weight.dim() == 2 && bias.defined() && bias.dim() <= 1) {  // fold the batch into rows
    DimVector out_sizes(x.sizes().begin(), x.sizes().end() - 1);
    out_sizes.push_back(weight.sizes()[0]);
    return reshape(addmm(bias, reshape(x, DimVector{-1, in_features}), transpose(weight, 0, 1)), out_sizes);
  }
  Tensor out = matmul(x, weight.dim() == 2 ? transpose(weight, 0, 1) : weight);
  return bias.defined() ? add(out, bias) : out;
}

namespace backward {

void mm(BackwardCtx& ctx, const NoAttrs&) {
  Tensor g = ctx.grad(0);
  if (ctx.needs_grad(0)) ctx.set_grad(0, ::ember::mm(g, mT(ctx.input(1))));
  if (ctx.needs_grad(1)) ctx.set_grad(1, ::ember::mm(mT(ctx.input(0)), g));
}

void bmm(BackwardCtx& ctx, const NoAttrs&) {
  Tensor g = ctx.grad(0);
  if (ctx.needs_grad(0)) ctx.set_grad(0, ::ember::bmm(g, mT(ctx.input(1))));
  if (ctx.needs_grad(1)) ctx.set_grad(1, ::ember::bmm(mT(ctx.input(0)), g));
}

void addmm(BackwardCtx& ctx, const AddmmAttrs& attrs) {
  Tensor g = ctx.grad(0);
  const Scalar alpha = attrs.alpha, beta = attrs.beta;
  if (ctx.needs_grad(0)) ctx.set_grad(0, scale(g, beta));  // OpNode sums it down to bias's shape
  if (ctx.needs_grad(1)) ctx.set_grad(1, scale(::ember::mm(g, mT(ctx.input(2))), alpha));
  if (ctx.needs_grad(2)) ctx.set_grad(2, scale(::ember::mm(mT(ctx.input(1)), g), alpha));
}

}  // namespace backward
}  // namespace ember
