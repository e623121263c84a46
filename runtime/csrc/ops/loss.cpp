// Frontend and backward rule of the fused softmax cross-entropy (op-table rows cross_entropy_loss and
// cross_entropy_backward; kernels in cpu/loss.cpp and cuda/loss.cu).
//
// Note [Fused cross-entropy]
// Rows of logits [N, C] (contiguous) with int64 class targets [N]. Per row
//   lse  = logsumexp(x),  nll = lse - x[t],  smooth = lse - mean_c(x_c),
//   loss = (1 - ls) * nll + ls * smooth          (the smoothing term only when ls > 0, as torch),
// and rows with t == ignore_index contribute exactly 0 (they are not even read) and are excluded from
// the 'mean' denominator; 'mean' over zero counted rows is 0/0 = nan, like torch. The reduction
// happens inside the op: per-row losses, then one deterministic fixed-order sum (no float atomics).
// Output 1 is the per-row lse (float32, float64 for float64 logits), saved for the backward
//   d loss / d x[i, c] = g_i * (softmax(x)_ic - (1 - ls) * [c == t_i] - ls / C),  0 for ignored rows,
// with g_i the incoming gradient (per row for 'none', the scalar for 'sum', scalar / n_valid for
// 'mean'). Targets outside [0, C) that are not ignore_index raise IndexError (the CUDA kernel checks
// with one host sync; inside CUDA graph capture it cannot, and treats such rows as ignored).
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/dispatcher.h"
#include "generated/kernels_nn.h"
#include "ops/loss.h"
#include "ops/ops.h"

namespace ember {
namespace {

CrossEntropyAttrs loss_attrs(int64_t ignore_index, double label_smoothing, LossReduction reduction) {
  return {.ignore_index = ignore_index, .label_smoothing = label_smoothing,
          .reduction = static_cast<int64_t>(reduction)};
}

void check_rows(const char* op, const Tensor& logits, const Tensor& target) {
  EMBER_CHECK_VALUE(logits.dim() == 2, "[", op, "] expected logits of shape [N, C], got ", describe(logits));
  EMBER_CHECK_TYPE(is_floating(logits.dtype()), "[", op, "] expected floating-point logits, got ", describe(logits));
  EMBER_CHECK_TYPE(target.dtype() == ScalarType::Int64, "[", op, "] expected int64 class-index targets, got ",
                   describe(target));
  EMBER_CHECK_VALUE(target.dim() == 1 && target.sizes()[0] == logits.sizes()[0], "[", op,
                    "] expected target of shape [", logits.sizes()[0], "] for logits ", describe(logits), ", got ",
                    describe(target));
}

ScalarType lse_dtype_for(ScalarType logits) {
  return logits == ScalarType::Float64 ? ScalarType::Float64 : ScalarType::Float32;
}

}  // namespace

LossReduction loss_reduction(std::string_view name, const char* op) {
  if (name == "none") return LossReduction::None;
  if (name == "sum") return LossReduction::Sum;
  if (name == "mean") return LossReduction::Mean;
  fail(ErrorKind::Value, "[", op, "] reduction must be 'mean', 'sum' or 'none', got '", name, "'");
}

std::pair<Tensor, Tensor> cross_entropy_loss(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                                             double label_smoothing, std::string_view reduction_name) {
  const LossReduction reduction = loss_reduction(reduction_name, "cross_entropy_loss");
  check_rows("cross_entropy_loss", logits, target);
  EMBER_CHECK_VALUE(label_smoothing >= 0.0 && label_smoothing <= 1.0, "[cross_entropy_loss] label_smoothing must "
                    "be in [0, 1], got ", label_smoothing);
  const int64_t n = logits.sizes()[0];
  const Tensor in[2] = {contiguous(logits), contiguous(target)};
  const DimVector loss_sizes = reduction == LossReduction::None ? DimVector{n} : DimVector{};
  Tensor out[2] = {Tensor::empty(loss_sizes, logits.dtype(), logits.device()),
                   Tensor::empty(DimVector{n}, lse_dtype_for(logits.dtype()), logits.device())};
  dispatch<OpId::cross_entropy_loss>(in, out, loss_attrs(ignore_index, label_smoothing, reduction));
  return {out[0], out[1]};
}

Tensor cross_entropy_backward(const Tensor& grad, const Tensor& logits, const Tensor& target, const Tensor& lse,
                              int64_t ignore_index, double label_smoothing, std::string_view reduction_name) {
  const LossReduction reduction = loss_reduction(reduction_name, "cross_entropy_backward");
  check_rows("cross_entropy_backward", logits, target);
  const int64_t n = logits.sizes()[0];
  const bool per_row = reduction == LossReduction::None;
  EMBER_CHECK_VALUE(per_row ? (grad.dim() == 1 && grad.sizes()[0] == n) : grad.numel() == 1,
                    "[cross_entropy_backward] expected grad of shape ", per_row ? "[N]" : "[]", " for logits ",
                    describe(logits), ", got ", describe(grad));
  EMBER_CHECK_VALUE(lse.dim() == 1 && lse.sizes()[0] == n && lse.dtype() == lse_dtype_for(logits.dtype()),
                    "[cross_entropy_backward] expected lse of shape [", n, "] and dtype ",
                    dtype_name(lse_dtype_for(logits.dtype())), ", got ", describe(lse));
  const Tensor in[4] = {contiguous(to_dtype(grad, logits.dtype())), contiguous(logits), contiguous(target),
                        contiguous(lse)};
  Tensor out = Tensor::empty(logits.sizes(), logits.dtype(), logits.device());
  dispatch<OpId::cross_entropy_backward>(in, std::span<Tensor>(&out, 1),
                                         loss_attrs(ignore_index, label_smoothing, reduction));
  return out;
}

namespace backward {

// The same formula with differentiable ember ops, for create_graph (double backward through both the
// logits and the incoming gradient); only the valid-row mask and one-hot are constants.
static Tensor cross_entropy_composite_grad(const Tensor& g, const Tensor& x, const Tensor& target,
                                           int64_t ignore_index, double ls, LossReduction reduction) {
  const int64_t c = x.sizes()[1];
  const Device dev = x.device();
  Tensor valid = logical_and(ne(target, scalar_tensor(Scalar(ignore_index), ScalarType::Int64, dev)),
                             logical_and(ge(target, scalar_tensor(Scalar(int64_t{0}), ScalarType::Int64, dev)),
                                         lt(target, scalar_tensor(Scalar(c), ScalarType::Int64, dev))));
  Tensor classes = arange(Scalar(int64_t{0}), Scalar(c), Scalar(int64_t{1}), ScalarType::Int64, dev);
  Tensor onehot = to_dtype(eq(unsqueeze(target, 1), classes), x.dtype());
  Tensor d = sub(softmax(x, 1), add(mul(onehot, Scalar(1.0 - ls)), Scalar(ls / static_cast<double>(c))));
  Tensor scale = g;
  if (reduction == LossReduction::None) scale = unsqueeze(g, 1);
  else if (reduction == LossReduction::Mean) scale = div(g, to_dtype(sum(valid), g.dtype()));
  return where(unsqueeze(valid, 1), mul(d, scale), Scalar(0.0));
}

void cross_entropy_loss(BackwardCtx& ctx, const CrossEntropyAttrs& attrs) {
  if (!ctx.needs_grad(0)) return;
  const Tensor x = ctx.input(0), target = ctx.input(1), g = ctx.grad(0);
  const int64_t ignore_index = attrs.ignore_index;
  const double ls = attrs.label_smoothing;
  const auto reduction = static_cast<LossReduction>(attrs.reduction);
  if (x.numel() == 0) { ctx.set_grad(0, zeros_like(x)); return; }
  if (GradMode::is_enabled()) {  // create_graph: the fused kernel is not differentiable
    ctx.set_grad(0, cross_entropy_composite_grad(g, x, target, ignore_index, ls, reduction));
    return;
  }
  static constexpr const char* kNames[] = {"none", "sum", "mean"};
  const char* reduction_name = kNames[attrs.reduction];
  ctx.set_grad(0, ember::cross_entropy_backward(g, x, target, ctx.output(1), ignore_index, ls, reduction_name));
}

}  // namespace backward
}  // namespace ember
