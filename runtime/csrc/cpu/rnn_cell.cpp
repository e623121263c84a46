// CPU kernels of rnn_cell_ / rnn_cell_backward_: one step of a recurrent layer, rows of the step in
// parallel, units of a row in a vectorizable loop over the shared formulas (pointwise/rnn_cell.h).
// Every operand is a contiguous [rows, width] block (ops/rnn.cpp guarantees it).
#include "core/parallel.h"
#include "generated/kernels_rnn.h"
#include "pointwise/rnn_cell.h"

namespace ember::cpu {
namespace {

template <typename T> T* row_ptr(const Tensor& t, int64_t row, int64_t width) {
  return t.defined() && t.numel() ? t.data<T>() + row * width : nullptr;
}

// The units of one row, vectorized (outside the dispatch macro: a pragma cannot sit in its argument).
template <typename C, int64_t M, typename T> void cell_row(const rnn::CellRow<T>& r, int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) rnn::cell_unit<C, M>(r, H, j);
}
template <typename C, int64_t M, typename T> void cell_row_backward(const rnn::CellGradRow<T>& r, int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) rnn::cell_unit_backward<C, M>(r, H, j);
}

// Calls body.template operator()<M>() for the runtime mode.
template <typename F> void with_mode(int64_t mode, F&& body) {
  switch (mode) {
    case rnn::kRnnTanh: return body.template operator()<rnn::kRnnTanh>();
    case rnn::kRnnRelu: return body.template operator()<rnn::kRnnRelu>();
    case rnn::kLstm: return body.template operator()<rnn::kLstm>();
    default: return body.template operator()<rnn::kGru>();
  }
}

}  // namespace

// in: gates [B, G*H], h_gates [B, 3H] (GRU), hx [B, H], cx [B, H] (LSTM);
// out: hx (in place), cx (in place, LSTM), output [B, H], workspace [B, W*H].
void rnn_cell(const KernelArgs& a, const RnnCellAttrs& at) {
  const int64_t H = at.hidden, rows = a.in[2].numel() / (H ? H : 1);
  const int64_t G = rnn::gate_count(at.mode) * H, W = rnn::workspace_width(at.mode) * H;
  if (H == 0 || rows == 0) return;
  EMBER_DISPATCH_FLOAT(a.in[0].dtype(), "rnn_cell", [&]<typename T>() {
    using C = opmath_t<T>;
    with_mode(at.mode, [&]<int64_t M>() {
      parallel_for(0, rows, std::max<int64_t>(1, kGrainSize / (8 * H)), [&](int64_t lo, int64_t hi) {
        for (int64_t b = lo; b < hi; ++b) {
          const rnn::CellRow<T> r{row_ptr<T>(a.in[0], b, G), row_ptr<T>(a.in[1], b, 3 * H), row_ptr<T>(a.out[0], b, H),
                                  row_ptr<T>(a.out[1], b, H), row_ptr<T>(a.out[2], b, H), row_ptr<T>(a.out[3], b, W)};
          cell_row<C, M>(r, H);
        }
      });
    });
  });
}

// in: grad_h [B, H], workspace [B, W*H], h [B, H];
// out: grad_c (in place, LSTM), grad_gates [B, G*H], grad_h_gates [B, 3H] (GRU), grad_hx [B, H] (GRU).
void rnn_cell_backward(const KernelArgs& a, const RnnCellAttrs& at) {
  const int64_t H = at.hidden, rows = a.in[0].numel() / (H ? H : 1);
  const int64_t G = rnn::gate_count(at.mode) * H, W = rnn::workspace_width(at.mode) * H;
  if (H == 0 || rows == 0) return;
  EMBER_DISPATCH_FLOAT(a.in[0].dtype(), "rnn_cell_backward", [&]<typename T>() {
    using C = opmath_t<T>;
    with_mode(at.mode, [&]<int64_t M>() {
      parallel_for(0, rows, std::max<int64_t>(1, kGrainSize / (8 * H)), [&](int64_t lo, int64_t hi) {
        for (int64_t b = lo; b < hi; ++b) {
          const rnn::CellGradRow<T> r{row_ptr<T>(a.in[0], b, H), row_ptr<T>(a.in[1], b, W),
                                      row_ptr<T>(a.in[2], b, H), row_ptr<T>(a.out[0], b, H),
                                      row_ptr<T>(a.out[1], b, G), row_ptr<T>(a.out[2], b, 3 * H),
                                      row_ptr<T>(a.out[3], b, H)};
          cell_row_backward<C, M>(r, H);
        }
      });
    });
  });
}

}  // namespace ember::cpu
