"""Recurrent layers (torch.nn.modules.rnn): RNN, LSTM, GRU and their cells, with torch's parameter
names, shapes, initialisation and input/state conventions, so state_dicts cross between the two.

Each layer and direction is one fused op, ember._rnn_layer (Note [Fused RNN layer] in
csrc/ops/rnn.cpp): the input projection of every step is one GEMM here, the recurrence runs in C++
with one GEMM and one fused cell kernel per step, and backward is the same loop in reverse.
LSTM(proj_size=P) is the exception: its recurrence reads the projected state, which the fused op's
square recurrence cannot, so `_run_projected_lstm` runs it per step from ember ops."""
from __future__ import annotations

import functools
import math
import warnings

import ember

from ...amp import autocast_mode
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ..utils.rnn import PackedSequence
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

# The op's mode numbers (csrc/pointwise/rnn_cell.h) and gate blocks per mode.
_MODES = {"RNN_TANH": 0, "RNN_RELU": 1, "LSTM": 2, "GRU": 3}
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _factory_kwargs(device, dtype):
    return dict(dtype=dtype if dtype is not None else ember.float32, device=device if device is not None else "cpu")


def _run_layer(mode: str, x, h0, c0, w_ih, w_hh, b_ih, b_hh, batch_sizes: list, reverse: bool):
    """One layer in one direction over packed rows x [N, in]: returns (output [N, H], h_n, c_n)."""
    with autocast_mode.op_scope():  # one torch op: its projection is not autocast on its own
        if mode == "GRU":  # b_hh stays inside the reset gate's product: the op adds it per step
            x_gates, hidden_bias = F.linear(x, w_ih, b_ih), b_hh
        else:
            bias = None if b_ih is None else b_ih + b_hh
            x_gates, hidden_bias = F.linear(x, w_ih, bias), None
    out, h_n, c_n, _ = ember._C._rnn_layer(x_gates, h0, c0 if mode == "LSTM" else None, w_hh, hidden_bias,
                                        batch_sizes, _MODES[mode], reverse)
    return out, h_n, c_n


def _run_projected_lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, batch_sizes: list, reverse: bool):
    """One LSTM layer with projections over packed rows x [N, in] (torch's proj_size): the cell sees
    h [B, P], keeps c [B, H] and emits h_t = (o * tanh(c_t)) @ w_hr^T. Rows past a step's batch size keep
    their state (finished sequences going forward, not yet started ones in reverse).
    Returns (output [N, P], h_n [B, P], c_n [B, H])."""
    with autocast_mode.op_scope():  # one torch op: the products inside are not autocast on their own
        x_gates = F.linear(x, w_ih, None if b_ih is None else b_ih + b_hh)
        starts = [0]
        for b in batch_sizes:
            starts.append(starts[-1] + b)
        h, c = h0, c0
        outs = [None] * len(batch_sizes)
        for t in (reversed(range(len(batch_sizes))) if reverse else range(len(batch_sizes))):
            b = batch_sizes[t]
            gates = x_gates[starts[t]:starts[t + 1]] + F.linear(h[:b], w_hh)
            i, f, g, o = gates.chunk(4, 1)
            c_t = ember.sigmoid(f) * c[:b] + ember.sigmoid(i) * ember.tanh(g)
            h_t = F.linear(ember.sigmoid(o) * ember.tanh(c_t), w_hr)
            outs[t] = h_t
            h = h_t if b == h.shape[0] else ember.cat([h_t, h[b:]], 0)
            c = c_t if b == c.shape[0] else ember.cat([c_t, c[b:]], 0)
        out = ember.cat(outs, 0) if outs else x_gates.new_zeros((0, w_hr.shape[0]))
    return out, h, c


def _autocast_dtype(kind: str, t):
    """The dtype autocast runs this recurrent layer in (None: as given); float64 is never cast."""
    dtype = autocast_mode.lower_precision_dtype(kind, t.device.type)
    return dtype if dtype is not None and t.dtype.is_floating_point and t.dtype != ember.float64 else None


def _cast_all(tensors, dtype):
    return [None if t is None else autocast_mode.cast(t, dtype) for t in tensors]


class RNNBase(Module):
    """The shared body of RNN, LSTM and GRU (torch.nn.RNNBase)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if mode not in _MODES:
            raise ValueError(f"[{name}] unrecognized RNN mode: {mode!r}")
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError(f"[{name}] dropout should be a number in range [0, 1] representing the probability of "
                             f"an element being zeroed, got {dropout!r}")
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"[{name}] hidden_size must be a positive integer, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"[{name}] num_layers must be a positive integer, got {num_layers!r}")
        if proj_size < 0:
            raise ValueError(f"[{name}] proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError(f"[{name}] proj_size has to be smaller than hidden_size")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          stacklevel=3)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size  # the size of h (c stays hidden_size)
        directions = 2 if bidirectional else 1
        kw = _factory_kwargs(device, dtype)
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else real_hidden * directions
            for direction in range(directions):
                suffix = "_reverse" if direction == 1 else ""
                shapes = [("weight_ih", (gate_size, layer_input)), ("weight_hh", (gate_size, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size > 0:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                names = []
                for kind, shape in shapes:
                    pname = f"{kind}_l{layer}{suffix}"
                    setattr(self, pname, Parameter(ember.empty(shape, **kw)))
                    names.append(pname)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """A no-op: ember's recurrent op reads the parameters where they are (torch compacts them for cuDNN)."""

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _layer_params(self, layer: int, direction: int):
        suffix = "_reverse" if direction == 1 else ""
        get = lambda kind: getattr(self, f"{kind}_l{layer}{suffix}")  # noqa: E731
        biases = (get("bias_ih"), get("bias_hh")) if self.bias else (None, None)
        projection = (get("weight_hr"),) if self.proj_size > 0 else ()
        return (get("weight_ih"), get("weight_hh")) + biases + projection

    def _check_hidden(self, h, expected: tuple, what: str = "hidden") -> None:
        if tuple(h.shape) != expected:
            raise RuntimeError(f"[{type(self).__name__}] Expected {what} size {expected}, got {list(h.shape)}")

    def forward(self, input, hx=None):
        name = type(self).__name__
        packed = isinstance(input, PackedSequence)
        directions = 2 if self.bidirectional else 1
        if packed:
            data, batch_sizes_t, sorted_indices, unsorted_indices = input
            batch_sizes = [int(b) for b in batch_sizes_t.tolist()]
            batch = batch_sizes[0] if batch_sizes else 0
            batched = True
        else:
            if input.dim() not in (2, 3):
                raise ValueError(f"[{name}] Expected input to be 2D or 3D, got {input.dim()}D tensor of shape "
                                 f"{list(input.shape)}")
            batched = input.dim() == 3
            if not batched:
                input = input.unsqueeze(1)
            elif self.batch_first:
                input = input.transpose(0, 1)
            steps, batch = input.shape[0], input.shape[1]
            data = input.reshape(steps * batch, input.shape[2])
            batch_sizes = [batch] * steps
            sorted_indices = unsorted_indices = None
        if data.shape[-1] != self.input_size:
            raise RuntimeError(f"[{name}] input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {data.shape[-1]}")
        state_shape = (self.num_layers * directions, batch, self.hidden_size)
        h_shape = state_shape[:2] + (self.proj_size or self.hidden_size,)
        h0, c0 = self._initial_state(hx, batched, h_shape, state_shape, data, sorted_indices)
        amp_dtype = _autocast_dtype(self.mode, data)
        if amp_dtype is not None:
            data, h0, c0 = _cast_all([data, h0, c0], amp_dtype)

        layer_input, h_n, c_n = data, [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(directions):
                idx = layer * directions + direction
                params = self._layer_params(layer, direction)
                if amp_dtype is not None:
                    params = _cast_all(params, amp_dtype)
                run = _run_projected_lstm if self.proj_size > 0 else functools.partial(_run_layer, self.mode)
                out, h, c = run(layer_input, h0[idx], c0[idx] if c0 is not None else None, *params, batch_sizes,
                                direction == 1)
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            layer_input = outs[0] if directions == 1 else ember.cat(outs, 1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        h_n = ember.stack(h_n, 0)
        c_n = ember.stack(c_n, 0) if self.mode == "LSTM" else None
        if unsorted_indices is not None:  # back to the caller's batch order (torch's permute_hidden)
            h_n = h_n.index_select(1, unsorted_indices)
            c_n = c_n.index_select(1, unsorted_indices) if c_n is not None else None
        if packed:
            output = PackedSequence(layer_input, batch_sizes_t, sorted_indices, unsorted_indices)
        else:
            output = layer_input.reshape(len(batch_sizes), batch, layer_input.shape[-1])
            if not batched:
                output, h_n = output.squeeze(1), h_n.squeeze(1)
                c_n = c_n.squeeze(1) if c_n is not None else None
            elif self.batch_first:
                output = output.transpose(0, 1)
        return (output, (h_n, c_n)) if self.mode == "LSTM" else (output, h_n)

    def _initial_state(self, hx, batched: bool, h_shape: tuple, c_shape: tuple, data, sorted_indices):
        """(h0, c0) as [layers * directions, batch, size] in the packed batch order (zeros when hx is None);
        h's size is proj_size for a projected LSTM."""
        lstm = self.mode == "LSTM"
        if hx is None:
            zeros = lambda shape: ember.zeros(shape, dtype=data.dtype, device=data.device)  # noqa: E731
            return zeros(h_shape), (zeros(c_shape) if lstm else None)
        name = type(self).__name__
        if lstm and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"[{name}] expected hx to be a tuple (h_0, c_0), got {type(hx).__name__}")
        if not lstm and not isinstance(hx, ember.Tensor):
            raise TypeError(f"[{name}] expected hx to be a Tensor, got {type(hx).__name__}")
        states = list(hx) if lstm else [hx]
        for i, s in enumerate(states):
            want = 3 if batched else 2
            if s.dim() != want:
                kind = "batched" if batched else "unbatched"
                raise RuntimeError(f"[{name}] For {kind} {want - 1}-D input, hx{' and cx' if lstm else ''} should "
                                   f"also be {want}-D but got {s.dim()}-D tensor")
            if not batched:
                s = s.unsqueeze(1)
            self._check_hidden(s, h_shape if i == 0 else c_shape, "hidden" if i == 0 else "cell")
            if s.dtype != data.dtype or s.device != data.device:
                raise RuntimeError(f"[{name}] Expected hidden state of dtype {data.dtype} on {data.device} (the "
                                   f"input's), got {s.dtype} on {s.device}")
            if sorted_indices is not None:
                s = s.index_select(1, sorted_indices)
            states[i] = s
        return states[0], (states[1] if lstm else None)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    """Elman RNN: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act tanh or relu."""

    def __init__(self, *args, nonlinearity: str = "tanh", **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:  # torch's positional order: input_size, hidden_size, num_layers, nonlinearity, ...
            nonlinearity = args[3]
            args = args[:3] + args[4:]
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"[RNN] Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", *args, **kwargs)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (f", nonlinearity={self.nonlinearity}" if self.nonlinearity != "tanh" else "")


class LSTM(RNNBase):
    """Long short-term memory; forward returns (output, (h_n, c_n))."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """Gated recurrent unit (torch's formulation: the reset gate multiplies W_hn h + b_hn)."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


class RNNCellBase(Module):
    """One step of a recurrent layer (torch.nn.RNNCellBase): weight_ih, weight_hh, bias_ih, bias_hh."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, device=None, dtype=None):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        kw = _factory_kwargs(device, dtype)
        self.weight_ih = Parameter(ember.empty((num_chunks * hidden_size, input_size), **kw))
        self.weight_hh = Parameter(ember.empty((num_chunks * hidden_size, hidden_size), **kw))
        if bias:
            self.bias_ih = Parameter(ember.empty((num_chunks * hidden_size,), **kw))
            self.bias_hh = Parameter(ember.empty((num_chunks * hidden_size,), **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _step(self, mode: str, input, states: list):
        """Runs one step; states are [h] or [h, c] (None: zeros). Returns the new states, unbatched
        like the input."""
        name = type(self).__name__
        if input.dim() not in (1, 2):
            raise ValueError(f"[{name}] Expected input to be 1D or 2D, got {input.dim()}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"[{name}] input has inconsistent input_size: got {input.shape[-1]} expected "
                               f"{self.input_size}")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        shape = (x.shape[0], self.hidden_size)
        full = []
        for s in states:
            if s is None:
                s = ember.zeros(shape, dtype=x.dtype, device=x.device)
            else:
                if s.dim() != input.dim():
                    raise ValueError(f"[{name}] Expected hidden to be {input.dim()}D for {input.dim()}D input, got "
                                     f"{s.dim()}D instead")
                s = s if batched else s.unsqueeze(0)
                if tuple(s.shape) != shape:
                    raise RuntimeError(f"[{name}] hidden{len(full)} has inconsistent hidden_size: got "
                                       f"{list(s.shape)}, expected {list(shape)}")
            full.append(s)
        params = [self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]
        amp_dtype = _autocast_dtype("cell", x)
        if amp_dtype is not None:
            x, params, full = autocast_mode.cast(x, amp_dtype), _cast_all(params, amp_dtype), _cast_all(full, amp_dtype)
        _, h, c = _run_layer(mode, x, full[0], full[1] if mode == "LSTM" else None, *params, [x.shape[0]], False)
        out = [h, c] if mode == "LSTM" else [h]
        return out if batched else [o.squeeze(0) for o in out]


class RNNCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"[RNNCell] Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)

    def forward(self, input, hx=None):
        return self._step("RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU", input, [hx])[0]


class LSTMCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        states = [None, None] if hx is None else list(hx)
        h, c = self._step("LSTM", input, states)
        return h, c


class GRUCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        return self._step("GRU", input, [hx])[0]
