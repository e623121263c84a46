// Frontends and backward rules of sort, argsort and topk (spec: reduce.yaml; kernels: cpu/sort.cpp,
// cuda/sort.cu).
#include "autograd/node.h"
#include "dispatch/dispatcher.h"
#include "generated/kernels_reduce.h"
#include "ops/ops.h"
#include "ops/reduce_util.h"

namespace ember {

std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending, bool stable) {
  const int64_t d = wrap_dim(dim, x.dim(), "sort");
  Tensor outs[2] = {Tensor::empty(x.sizes(), x.dtype(), x.device()),
                    Tensor::empty(x.sizes(), ScalarType::Int64, x.device())};
  Tensor ins[1] = {x};
  // The CPU kernel is always stable.
  dispatch<OpId::sort>(ins, outs, {.dim = d, .descending = descending, .stable = stable});
  return {outs[0], outs[1]};
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending, bool stable) {
  return sort(x, dim, descending, stable).second;
}

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest, bool sorted) {
  const int64_t d = wrap_dim(dim, x.dim(), "topk");
  const int64_t n = x.dim() == 0 ? 1 : x.sizes()[d];
  EMBER_CHECK(k >= 0 && k <= n, "[topk] selected index k out of range: k=", k, " but dim ", d, " of ",
              describe(x), " has size ", n);
  DimVector sizes = x.sizes();
  if (x.dim() > 0) sizes[d] = k;
  Tensor outs[2] = {Tensor::empty(sizes, x.dtype(), x.device()), Tensor::empty(sizes, ScalarType::Int64, x.device())};
  Tensor ins[1] = {x};
  dispatch<OpId::topk>(ins, outs, {.dim = d, .k = k, .largest = largest, .sorted = sorted});
  return {outs[0], outs[1]};
}

namespace backward {

// Each output element came from one input element: scatter the gradient back to its index.
static void scatter_to_indices(BackwardCtx& ctx, int64_t dim) {
  if (!ctx.needs_grad(0)) return;
  const auto& meta = ctx.input_meta(0);
  Tensor g = ctx.grad(0);
  if (meta.sizes.empty()) { ctx.set_grad(0, g); return; }
  Tensor base = zeros(meta.sizes, g.dtype(), g.device());
  ctx.set_grad(0, scatter_add(base, dim, ctx.output(1), g));
}

void sort(BackwardCtx& ctx, const SortAttrs& attrs) { scatter_to_indices(ctx, attrs.dim); }
void topk(BackwardCtx& ctx, const TopkAttrs& attrs) { scatter_to_indices(ctx, attrs.dim); }

}  // namespace backward
}  // namespace ember
