#pragma once
// The recurrent cells' math per hidden unit, written once for the CPU (cpu/rnn_cell.cpp) and CUDA
// (cuda/rnn_cell.cu) kernels of rnn_cell_/rnn_cell_backward_ (Note [Fused RNN layer], ops/rnn.cpp).
// Row b of a step has H units; unit j reads gate k at column k * H + j of its gate rows, and keeps
// what backward needs in its workspace row (width workspace_width(mode) * H), torch's gate order:
//   RNN:  h = act(g)                                  workspace [h_prev]
//   LSTM: i f g o;  c = f c_prev + i g;  h = o tanh(c)  workspace [i f g o tanh(c) c_prev h_prev]
//   GRU:  r z n;  n = tanh(x_n + r (W_hn h + b_hn));  h = (1 - z) n + z h_prev
//                                                      workspace [r z n (W_hn h + b_hn) h_prev]
#include <cstdint>

#include "pointwise/math.h"

namespace ember::rnn {

enum Mode : int64_t { kRnnTanh = 0, kRnnRelu = 1, kLstm = 2, kGru = 3 };
// Gate blocks of H per row, and workspace blocks of H per row, of each mode.
constexpr int64_t gate_count(int64_t mode) { return mode == kLstm ? 4 : mode == kGru ? 3 : 1; }
constexpr int64_t workspace_width(int64_t mode) { return mode == kLstm ? 7 : mode == kGru ? 5 : 1; }

// Pointers to one row (b) of every operand; the kernels fill them and call the unit functions.
template <typename T> struct CellRow {
  const T* gates;    // [G*H] pre-activations (GRU: the input part x W_ih^T + b_ih)
  const T* h_gates;  // GRU: [3H] W_hh h + b_hh; unused otherwise
  T* hx;             // [H] h_prev in, new h out
  T* cx;             // LSTM: [H] c_prev in, new c out
  T* output;         // [H] new h
  T* workspace;      // [W*H]
};

// One unit of the forward step, math in C (float for half types).
template <typename C, int64_t M, typename T>
EMBER_HD void cell_unit(const CellRow<T>& r, int64_t H, int64_t j) {
  const C hp = static_cast<C>(r.hx[j]);
  C h;
  if constexpr (M == kRnnTanh || M == kRnnRelu) {
    const C g = static_cast<C>(r.gates[j]);
    h = M == kRnnTanh ? pm::tanh(g) : (g < C(0) ? C(0) : g);  // NaN stays NaN
    r.workspace[j] = static_cast<T>(hp);
  } else if constexpr (M == kLstm) {
    const C i = pm::sigmoid(static_cast<C>(r.gates[j]));
    const C f = pm::sigmoid(static_cast<C>(r.gates[H + j]));
    const C g = pm::tanh(static_cast<C>(r.gates[2 * H + j]));
    const C o = pm::sigmoid(static_cast<C>(r.gates[3 * H + j]));
    const C cp = static_cast<C>(r.cx[j]);
    const C c = f * cp + i * g;
    const C tc = pm::tanh(c);
    h = o * tc;
    T* w = r.workspace;
    w[j] = static_cast<T>(i), w[H + j] = static_cast<T>(f), w[2 * H + j] = static_cast<T>(g);
    w[3 * H + j] = static_cast<T>(o), w[4 * H + j] = static_cast<T>(tc), w[5 * H + j] = static_cast<T>(cp);
    w[6 * H + j] = static_cast<T>(hp);
    r.cx[j] = static_cast<T>(c);
  } else {
    const C hn = static_cast<C>(r.h_gates[2 * H + j]);
    const C rg = pm::sigmoid(static_cast<C>(r.gates[j]) + static_cast<C>(r.h_gates[j]));
    const C z = pm::sigmoid(static_cast<C>(r.gates[H + j]) + static_cast<C>(r.h_gates[H + j]));
    const C n = pm::tanh(static_cast<C>(r.gates[2 * H + j]) + rg * hn);
    h = (C(1) - z) * n + z * hp;
    T* w = r.workspace;
    w[j] = static_cast<T>(rg), w[H + j] = static_cast<T>(z), w[2 * H + j] = static_cast<T>(n);
    w[3 * H + j] = static_cast<T>(hn), w[4 * H + j] = static_cast<T>(hp);
  }
  r.output[j] = static_cast<T>(h);
  r.hx[j] = static_cast<T>(h);
}

template <typename T> struct CellGradRow {
  const T* grad_h;     // [H] dL/dh of the step (output gradient + the later step's)
  const T* workspace;  // [W*H]
  const T* h;          // [H] the step's h (RNN modes read their derivative from it)
  T* grad_c;           // LSTM: [H] dL/dc in, dL/dc_prev out
  T* grad_gates;       // [G*H] dL/d pre-activations (GRU: of the input part)
  T* grad_h_gates;     // GRU: [3H] dL/d(W_hh h + b_hh)
  T* grad_hx;          // GRU: [H] the direct part z * dL/dh of dL/dh_prev
};

template <typename C, int64_t M, typename T>
EMBER_HD void cell_unit_backward(const CellGradRow<T>& r, int64_t H, int64_t j) {
  const C gh = static_cast<C>(r.grad_h[j]);
  const T* w = r.workspace;
  if constexpr (M == kRnnTanh) {
    const C h = static_cast<C>(r.h[j]);
    r.grad_gates[j] = static_cast<T>(gh * (C(1) - h * h));
  } else if constexpr (M == kRnnRelu) {
    r.grad_gates[j] = static_cast<T>(static_cast<C>(r.h[j]) > C(0) ? gh : C(0));
  } else if constexpr (M == kLstm) {
    const C i = static_cast<C>(w[j]), f = static_cast<C>(w[H + j]), g = static_cast<C>(w[2 * H + j]);
    const C o = static_cast<C>(w[3 * H + j]), tc = static_cast<C>(w[4 * H + j]), cp = static_cast<C>(w[5 * H + j]);
    const C dc = static_cast<C>(r.grad_c[j]) + gh * o * (C(1) - tc * tc);
    r.grad_gates[j] = static_cast<T>(dc * g * i * (C(1) - i));
    r.grad_gates[H + j] = static_cast<T>(dc * cp * f * (C(1) - f));
    r.grad_gates[2 * H + j] = static_cast<T>(dc * i * (C(1) - g * g));
    r.grad_gates[3 * H + j] = static_cast<T>(gh * tc * o * (C(1) - o));
    r.grad_c[j] = static_cast<T>(dc * f);
  } else {
    const C rg = static_cast<C>(w[j]), z = static_cast<C>(w[H + j]), n = static_cast<C>(w[2 * H + j]);
    const C hn = static_cast<C>(w[3 * H + j]), hp = static_cast<C>(w[4 * H + j]);
    const C dn = gh * (C(1) - z) * (C(1) - n * n);
    const C dz = gh * (hp - n) * z * (C(1) - z);
    const C dr = dn * hn * rg * (C(1) - rg);
    r.grad_gates[j] = static_cast<T>(dr), r.grad_gates[H + j] = static_cast<T>(dz);
    r.grad_gates[2 * H + j] = static_cast<T>(dn);
    r.grad_h_gates[j] = static_cast<T>(dr), r.grad_h_gates[H + j] = static_cast<T>(dz);
    r.grad_h_gates[2 * H + j] = static_cast<T>(dn * rg);
    r.grad_hx[j] = static_cast<T>(gh * z);
  }
}

}  // namespace ember::rnn
