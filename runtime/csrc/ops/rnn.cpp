// Recurrent layers (spec: runtime/spec/rnn.yaml): the frontend and backward rule of _rnn_layer,
// its time loop (shared by both devices), and the frontends of the per-step cell ops whose kernels
// live in cpu/rnn_cell.cpp and cuda/rnn_cell.cu.
#include <string>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "dispatch/dispatcher.h"
#include "generated/kernels_rnn.h"
#include "ops/ops.h"
#include "pointwise/rnn_cell.h"

namespace ember {

// Note [Fused RNN layer]
// _rnn_layer runs one layer in one direction over all time steps, given the input projection of
// every step (x_gates = x W_ih^T + b_ih, + b_hh except for GRU, computed by one GEMM in Python).
// Steps are "packed": step t owns batch_sizes[t] consecutive rows of x_gates/output (non-increasing
// sizes, torch's PackedSequence layout; an unpacked [T, B] input has every size B). A step is one
// GEMM (h W_hh^T, accumulated onto the step's x_gates rows) and one fused cell kernel that updates
// h/c in place, writes the output rows and a workspace row holding the activations (and h_prev,
// c_prev) its backward needs (pointwise/rnn_cell.h). The reverse direction walks the steps from the
// last. Backward walks them the other way with one fused cell-backward kernel and one GEMM per step,
// then forms dW_hh = dgates^T h_prev in a single GEMM over all steps, instead of summing one per step
// as a per-step autograd graph would. Its kernels are the same loop of ember ops on both devices.
// Double backward through the layer is not implemented (the backward rule says so).

namespace {

const char* mode_name(int64_t mode) {
  static const char* names[] = {"RNN_TANH", "RNN_RELU", "LSTM", "GRU"};
  return mode >= 0 && mode < 4 ? names[mode] : "?";
}

Tensor rows(const Tensor& t, int64_t start, int64_t length) { return narrow(t, 0, start, length); }

// Offset of each step's rows in the packed layout.
DimVector step_offsets(IntSpan batch_sizes) {
  DimVector off(batch_sizes.size());
  int64_t o = 0;
  for (size_t t = 0; t < batch_sizes.size(); ++t) off[t] = o, o += batch_sizes[t];
  return off;
}

// in: x_gates [N, G*H], hx [B, H], cx [B, H]?, w_hh [G*H, H], b_hh [G*H]?;
// out: output [N, H], h_n [B, H], c_n [B, H] (LSTM; else empty), workspace [N, W*H].
void rnn_layer_loop(const KernelArgs& a, const RnnLayerAttrs& at) {
  GradModeGuard no_grad(false);
  const Tensor &x_gates = a.in[0], &w_hh = a.in[3], &b_hh = a.in[4];
  Tensor &output = a.out[0], &h_n = a.out[1], &c_n = a.out[2], &workspace = a.out[3];
  const bool lstm = at.mode == rnn::kLstm, gru = at.mode == rnn::kGru;
  copy_(h_n, a.in[1]);
  if (lstm) copy_(c_n, a.in[2]);
  const Tensor w_t = t(w_hh);
  const DimVector off = step_offsets(at.batch_sizes);
  const int64_t steps = static_cast<int64_t>(at.batch_sizes.size());
  Tensor none;
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t step = at.reverse ? steps - 1 - s : s, bs = at.batch_sizes[step];
    if (bs == 0) continue;
    Tensor hx = rows(h_n, 0, bs), cx = lstm ? rows(c_n, 0, bs) : Tensor();
    Tensor out = rows(output, off[step], bs), ws = rows(workspace, off[step], bs);
    const Tensor xg = rows(x_gates, off[step], bs);
    if (gru) {
      const Tensor hg = b_hh.defined() ? addmm(b_hh, hx, w_t) : mm(hx, w_t);
      rnn_cell_(xg, hg, hx, cx, out, ws, at.mode);
    } else {
      rnn_cell_(addmm(xg, hx, w_t), none, hx, cx, out, ws, at.mode);
    }
  }
}

void check_same(const char* what, const Tensor& t, const Tensor& ref, IntSpan sizes) {
  EMBER_CHECK(t.device() == ref.device(), "[_rnn_layer] expected ", what, " on the device of x_gates (",
              describe(ref), "), got ", describe(t));
  EMBER_CHECK_TYPE(t.dtype() == ref.dtype(), "[_rnn_layer] expected ", what, " of the dtype of x_gates (",
                   describe(ref), "), got ", describe(t));
  EMBER_CHECK(t.sizes() == DimVector(sizes.begin(), sizes.end()), "[_rnn_layer] expected ", what, " of shape ",
              DimVector(sizes.begin(), sizes.end()), ", got ", describe(t));
}

}  // namespace

void cpu::rnn_layer(const KernelArgs& a, const RnnLayerAttrs& at) { rnn_layer_loop(a, at); }
void cuda::rnn_layer(const KernelArgs& a, const RnnLayerAttrs& at) { rnn_layer_loop(a, at); }

std::tuple<Tensor, Tensor, Tensor, Tensor> _rnn_layer(const Tensor& x_gates, const Tensor& hx, const Tensor& cx,
                                                      const Tensor& w_hh, const Tensor& b_hh, IntSpan batch_sizes,
                                                      int64_t mode, bool reverse) {
  EMBER_CHECK_VALUE(mode >= 0 && mode < 4, "[_rnn_layer] mode must be 0 (RNN_TANH), 1 (RNN_RELU), 2 (LSTM) or 3 "
                    "(GRU), got ", mode);
  const char* name = mode_name(mode);
  EMBER_CHECK_TYPE(is_floating(x_gates.dtype()), "[_rnn_layer] ", name, ": expected floating point inputs, got "
                   "x_gates ", describe(x_gates));
  EMBER_CHECK(w_hh.dim() == 2, "[_rnn_layer] ", name, ": expected a 2-D w_hh, got ", describe(w_hh));
  const int64_t H = w_hh.sizes()[1], G = rnn::gate_count(mode) * H;
  EMBER_CHECK(w_hh.sizes()[0] == G, "[_rnn_layer] ", name, ": expected w_hh of shape [", G, ", ", H, "], got ",
              describe(w_hh));
  EMBER_CHECK(hx.dim() == 2, "[_rnn_layer] ", name, ": expected a 2-D hx [batch, hidden], got ", describe(hx));
  const int64_t B = hx.sizes()[0];
  int64_t n = 0, prev = B;
  for (int64_t bs : batch_sizes) {
    EMBER_CHECK_VALUE(bs >= 0 && bs <= prev, "[_rnn_layer] batch_sizes must be non-increasing and at most the batch "
                      "size of hx (", B, "), got ", DimVector(batch_sizes.begin(), batch_sizes.end()));
    n += bs, prev = bs;
  }
  const int64_t gates_shape[2] = {n, G}, state_shape[2] = {B, H}, w_shape[2] = {G, H};
  check_same("x_gates", x_gates, x_gates, gates_shape);
  check_same("hx", hx, x_gates, state_shape);
  check_same("w_hh", w_hh, x_gates, w_shape);
  const bool lstm = mode == rnn::kLstm, gru = mode == rnn::kGru;
  EMBER_CHECK(cx.defined() == lstm, "[_rnn_layer] ", name, (lstm ? ": expected cx" : ": cx is for LSTM only"));
  if (lstm) check_same("cx", cx, x_gates, state_shape);
  EMBER_CHECK(!b_hh.defined() || gru, "[_rnn_layer] ", name, ": b_hh is for GRU only (fold it into x_gates)");
  if (b_hh.defined()) check_same("b_hh", b_hh, x_gates, IntSpan(&G, 1));

  const Device dev = x_gates.device();
  const int64_t out_shape[2] = {n, H}, ws_shape[2] = {n, rnn::workspace_width(mode) * H}, empty_shape[1] = {0};
  Tensor outs[4] = {Tensor::empty(out_shape, x_gates.dtype(), dev), Tensor::empty(state_shape, x_gates.dtype(), dev),
                    Tensor::empty(lstm ? IntSpan(state_shape) : IntSpan(empty_shape), x_gates.dtype(), dev),
                    Tensor::empty(ws_shape, x_gates.dtype(), dev)};
  const Tensor in[5] = {contiguous(x_gates), contiguous(hx), lstm ? contiguous(cx) : Tensor(), w_hh,
                        b_hh.defined() ? contiguous(b_hh) : Tensor()};
  dispatch<OpId::rnn_layer>(in, outs, {.batch_sizes = DimVector(batch_sizes.begin(), batch_sizes.end()),
                                       .mode = mode, .reverse = reverse});
  return {outs[0], outs[1], outs[2], outs[3]};
}

// The cell ops' unused operands (c for RNN/GRU, the GRU-only gradients) travel as empty tensors.
static Tensor or_empty(const Tensor& t, const Tensor& like) {
  const int64_t none[1] = {0};
  return t.defined() ? t : Tensor::empty(none, like.dtype(), like.device());
}

void rnn_cell_(const Tensor& gates, const Tensor& h_gates, Tensor& hx, Tensor& cx, Tensor& output, Tensor& workspace,
               int64_t mode) {
  const Tensor in[4] = {contiguous(gates), h_gates, hx, cx};
  Tensor out[4] = {hx, or_empty(cx, hx), output, workspace};
  dispatch<OpId::rnn_cell>(in, out, {.mode = mode, .hidden = hx.sizes()[1]});
}

void rnn_cell_backward_(const Tensor& grad_h, const Tensor& workspace, const Tensor& h, Tensor& grad_c,
                        Tensor& grad_gates, Tensor& grad_h_gates, Tensor& grad_hx, int64_t mode) {
  const Tensor in[3] = {contiguous(grad_h), workspace, h};
  Tensor out[4] = {or_empty(grad_c, grad_h), grad_gates, or_empty(grad_h_gates, grad_h), or_empty(grad_hx, grad_h)};
  dispatch<OpId::rnn_cell_backward>(in, out, {.mode = mode, .hidden = grad_h.sizes()[1]});
}

namespace backward {

// Inputs (x_gates, hx, cx?, w_hh, b_hh?), outputs (output, h_n, c_n, workspace): Note [Fused RNN layer].
void rnn_layer(BackwardCtx& ctx, const RnnLayerAttrs& at) {
  EMBER_CHECK_KIND(!GradMode::is_enabled(), ErrorKind::NotImplemented, "[_rnn_layer] ", mode_name(at.mode),
                   ": double backward (create_graph=True) through a fused recurrent layer is not implemented");
  const bool lstm = at.mode == rnn::kLstm, gru = at.mode == rnn::kGru;
  const Tensor output = ctx.output(0), workspace = ctx.output(3), w_hh = ctx.input(3);
  const int64_t H = w_hh.sizes()[1], G = rnn::gate_count(at.mode) * H, N = output.sizes()[0];
  const ScalarType dt = output.dtype();
  const Device dev = output.device();
  const Tensor grad_out = ctx.grad(0);
  Tensor gh_state = clone(ctx.grad(1));
  Tensor gc_state = lstm ? clone(ctx.grad(2)) : Tensor();
  const int64_t gates_shape[2] = {N, G};
  Tensor grad_x = Tensor::empty(gates_shape, dt, dev);
  Tensor grad_hg = gru ? Tensor::empty(gates_shape, dt, dev) : grad_x;
  const DimVector off = step_offsets(at.batch_sizes);
  const int64_t steps = static_cast<int64_t>(at.batch_sizes.size());
  Tensor none;
  for (int64_t s = steps - 1; s >= 0; --s) {
    const int64_t step = at.reverse ? steps - 1 - s : s, bs = at.batch_sizes[step];
    if (bs == 0) continue;
    Tensor gh_rows = rows(gh_state, 0, bs), gc_rows = lstm ? rows(gc_state, 0, bs) : Tensor();
    Tensor gx_rows = rows(grad_x, off[step], bs), ghg_rows = gru ? rows(grad_hg, off[step], bs) : Tensor();
    const Tensor gh = add(rows(grad_out, off[step], bs), gh_rows);
    rnn_cell_backward_(gh, rows(workspace, off[step], bs), rows(output, off[step], bs), gc_rows, gx_rows, ghg_rows,
                       gru ? gh_rows : none, at.mode);
    // dL/dh_prev = dgates_h W_hh (+ the GRU's direct part, which the cell just wrote into gh_rows).
    copy_(gh_rows, gru ? addmm(gh_rows, ghg_rows, w_hh) : mm(gx_rows, w_hh));
  }
  if (ctx.needs_grad(0)) ctx.set_grad(0, grad_x);
  if (ctx.needs_grad(1)) ctx.set_grad(1, gh_state);
  if (lstm && ctx.needs_grad(2)) ctx.set_grad(2, gc_state);
  if (ctx.needs_grad(3)) {
    const int64_t w = rnn::workspace_width(at.mode);
    ctx.set_grad(3, mm(t(grad_hg), narrow(workspace, 1, (w - 1) * H, H)));  // h_prev is the last workspace block
  }
  if (gru && ctx.num_inputs() > 4 && ctx.needs_grad(4)) {
    const int64_t dim0[1] = {0};
    ctx.set_grad(4, sum(grad_hg, dim0));
  }
}

}  // namespace backward
}  // namespace ember
