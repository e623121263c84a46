"""Recurrent layers against PyTorch: RNN/LSTM/GRU modules and cells with torch's weights loaded
(the state_dicts cross), forward and backward, every option, packed sequences, float64 finite
differences of the fused op (_rnn_layer), and the errors."""
import itertools

import numpy as np
import pytest
import torch
from nn_helpers import E
from nn_helpers import close as _close

import ember
from ember.nn.utils import rnn as ernn

KINDS = ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"]
# ember runs on each device; torch on the CPU is the reference.
DEVICES = ["cpu"] + (["cuda"] if ember.cuda.is_available() else [])


def close(a, b, dtype="float32", **kw):
    if isinstance(a, ember.Tensor):
        a = a.detach().to("cpu")
    _close(a, b, dtype, **kw)


def make(lib, kind, *args, **kw):
    if kind.startswith("RNN"):
        return lib.nn.RNN(*args, nonlinearity="tanh" if kind == "RNN_TANH" else "relu", **kw)
    return getattr(lib.nn, kind)(*args, **kw)


def pair(kind, *args, dtype="float32", device="cpu", **kw):
    """A torch module and an ember module on `device` with torch's weights (loaded through the state_dict)."""
    tm = make(torch, kind, *args, **kw).to(getattr(torch, dtype))
    em = make(ember, kind, *args, **kw, dtype=getattr(ember, dtype))
    assert list(em.state_dict()) == list(tm.state_dict())  # same names, same order
    em.load_state_dict({k: E(v) for k, v in tm.state_dict().items()})
    return tm, em.to(device)


def states(kind, out):
    """The tensors a recurrent module returns, flat: output, h_n (, c_n)."""
    output, h = out
    return [output, *h] if kind == "LSTM" else [output, h]


def check_module(kind, dtype, layers, bidirectional, batch_first, bias, with_h0, T=5, B=3, I=4, H=6, seed=0,
                 device="cpu", **extra):
    torch.manual_seed(seed)
    tm, em = pair(kind, I, H, layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional, dtype=dtype,
                  device=device, **extra)
    td = getattr(torch, dtype)
    shape = (B, T, I) if batch_first else (T, B, I)
    x = torch.randn(shape, dtype=td, requires_grad=True)
    D = 2 if bidirectional else 1
    hx = None
    if with_h0:
        hx = torch.randn(layers * D, B, extra.get("proj_size") or H, dtype=td, requires_grad=True)
        if kind == "LSTM":
            hx = (hx, torch.randn(layers * D, B, H, dtype=td, requires_grad=True))
    ex = E(x)  # CPU leaves; the module sees copies on `device`, gradients flow back through the copy
    ehx = None if hx is None else (tuple(E(h) for h in hx) if kind == "LSTM" else E(hx))
    on_dev = None if ehx is None else (tuple(h.to(device) for h in ehx) if kind == "LSTM" else ehx.to(device))
    t_out = states(kind, tm(x, hx))
    e_out = states(kind, em(ex.to(device), on_dev))
    for a, b in zip(e_out, t_out):
        assert tuple(a.shape) == tuple(b.shape)
        close(a, b, dtype)
    grads = [torch.randn_like(o) for o in t_out]
    sum((o * g).sum() for o, g in zip(t_out, grads)).backward()
    sum((o * E(g).to(device)).sum() for o, g in zip(e_out, grads)).backward()
    close(ex.grad, x.grad, dtype)
    if with_h0:
        for eh, th in zip(ehx if kind == "LSTM" else [ehx], hx if kind == "LSTM" else [hx]):
            close(eh.grad, th.grad, dtype)
    for (name, tp), (_, ep) in zip(tm.named_parameters(), em.named_parameters()):
        assert ep.grad is not None, name
        close(ep.grad, tp.grad, dtype, err_msg=name)


OPTIONS = list(itertools.product([1, 2], [False, True], [False, True]))  # layers, bidirectional, batch_first


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layers,bidirectional,batch_first", OPTIONS)
def test_module_matches_torch(kind, layers, bidirectional, batch_first, device):
    check_module(kind, "float32", layers, bidirectional, batch_first, bias=True, with_h0=(layers == 2), device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias,with_h0", [(False, True), (True, False)])
def test_module_float64_and_bias(kind, bias, with_h0, device):
    check_module(kind, "float64", 2, True, False, bias=bias, with_h0=with_h0, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
def test_module_edge_sizes(kind, device):
    check_module(kind, "float32", 1, False, False, True, True, T=1, B=1, I=1, H=1, device=device)
    check_module(kind, "float32", 1, True, False, True, True, T=7, B=1, I=3, H=33, device=device)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_unbatched_input(kind):
    torch.manual_seed(1)
    tm, em = pair(kind, 3, 4, 2)
    x = torch.randn(6, 3)
    hx = torch.randn(2, 4)
    thx = (hx, torch.randn(2, 4)) if kind == "LSTM" else hx
    ehx = tuple(E(h) for h in thx) if kind == "LSTM" else E(thx)
    for a, b in zip(states(kind, em(E(x), ehx)), states(kind, tm(x, thx))):
        assert tuple(a.shape) == tuple(b.shape)
        close(a, b)


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_between_layers(kind):
    # dropout=1 zeroes every inner layer's output deterministically, so ember and torch agree exactly;
    # eval() turns dropout off.
    torch.manual_seed(2)
    tm, em = pair(kind, 3, 5, 3, dropout=1.0)
    x = torch.randn(4, 2, 3)
    for train in (True, False):
        tm.train(train)
        em.train(train)
        for a, b in zip(states(kind, em(E(x))), states(kind, tm(x))):
            close(a, b)
    em.train()
    em.dropout = 0.5
    ember.manual_seed(0)
    out = em(E(x))[0]
    assert not np.allclose(out.detach().numpy(), em.eval()(E(x))[0].detach().numpy())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_sequence(kind, bidirectional, device):
    torch.manual_seed(3)
    tm, em = pair(kind, 3, 4, 2, bidirectional=bidirectional, device=device)
    lengths = [3, 5, 1, 5]
    x = torch.randn(5, 4, 3, requires_grad=True)
    ex = E(x)
    tp = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    ep = ernn.pack_padded_sequence(ex.to(device), lengths, enforce_sorted=False)
    close(ep.data, tp.data)
    assert ep.batch_sizes.tolist() == tp.batch_sizes.tolist()
    t_out, t_h = tm(tp)
    e_out, e_h = em(ep)
    t_pad, t_len = torch.nn.utils.rnn.pad_packed_sequence(t_out, padding_value=-1.0)
    e_pad, e_len = ernn.pad_packed_sequence(e_out, padding_value=-1.0)
    assert e_len.tolist() == t_len.tolist()
    close(e_pad, t_pad)
    t_hs = list(t_h) if kind == "LSTM" else [t_h]
    e_hs = list(e_h) if kind == "LSTM" else [e_h]
    for a, b in zip(e_hs, t_hs):
        close(a, b)
    g = torch.randn_like(t_pad)
    ((t_pad * g).sum() + sum(h.sum() for h in t_hs)).backward()
    ((e_pad * E(g).to(device)).sum() + sum(h.sum() for h in e_hs)).backward()
    close(ex.grad, x.grad)
    for (name, tp_), (_, ep_) in zip(tm.named_parameters(), em.named_parameters()):
        close(ep_.grad, tp_.grad, err_msg=name)


# ---- LSTM(proj_size=P): h is projected by weight_hr_l{k} [P, H] (the per-step composite path) --------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layers,bidirectional,batch_first", OPTIONS)
def test_lstm_projection_matches_torch(layers, bidirectional, batch_first, device):
    check_module("LSTM", "float32", layers, bidirectional, batch_first, bias=True, with_h0=(layers == 2),
                 device=device, proj_size=3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bias,with_h0", [(False, True), (True, False)])
def test_lstm_projection_float64(bias, with_h0, device):
    check_module("LSTM", "float64", 2, True, False, bias=bias, with_h0=with_h0, device=device, proj_size=2)
    check_module("LSTM", "float64", 1, False, True, bias=bias, with_h0=with_h0, T=1, B=1, I=1, H=2, device=device,
                 proj_size=1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_projection_packed_and_unbatched(bidirectional, device):
    torch.manual_seed(4)
    tm, em = pair("LSTM", 3, 5, 2, bidirectional=bidirectional, proj_size=2, device=device)
    assert [k for k in em.state_dict() if "weight_hr" in k] == [k for k in tm.state_dict() if "weight_hr" in k]
    assert repr(em) == repr(tm)
    lengths = [3, 5, 1, 5]
    x = torch.randn(5, 4, 3, requires_grad=True)
    ex = E(x)
    t_out, (t_h, t_c) = tm(torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False))
    e_out, (e_h, e_c) = em(ernn.pack_padded_sequence(ex.to(device), lengths, enforce_sorted=False))
    t_pad, _ = torch.nn.utils.rnn.pad_packed_sequence(t_out)
    e_pad, _ = ernn.pad_packed_sequence(e_out)
    for a, b in [(e_pad, t_pad), (e_h, t_h), (e_c, t_c)]:
        assert tuple(a.shape) == tuple(b.shape)
        close(a, b)
    g = torch.randn_like(t_pad)
    ((t_pad * g).sum() + t_h.sum() + t_c.sum()).backward()
    ((e_pad * E(g).to(device)).sum() + e_h.sum() + e_c.sum()).backward()
    close(ex.grad, x.grad)
    for (name, tp_), (_, ep_) in zip(tm.named_parameters(), em.named_parameters()):
        close(ep_.grad, tp_.grad, err_msg=name)
    xu = torch.randn(4, 3)  # unbatched: h is [layers * D, P]
    for a, b in zip(states("LSTM", em(E(xu).to(device))), states("LSTM", tm(xu))):
        assert tuple(a.shape) == tuple(b.shape)
        close(a, b)


def test_lstm_projection_gradcheck_float64():
    """Central differences of the projected layer (weights and input) against its analytic gradient."""
    rng = np.random.default_rng(6)
    lstm = ember.nn.LSTM(2, 3, proj_size=2, bidirectional=True, dtype=ember.float64)
    x = rng.uniform(-1, 1, size=(3, 2, 2))
    w = rng.uniform(-1, 1, size=(3, 2, 4))

    def objective(xa):
        return float((lstm(ember.from_numpy(xa))[0].detach().numpy() * w).sum())

    ex = ember.from_numpy(x.copy()).requires_grad_(True)
    (lstm(ex)[0] * ember.from_numpy(w)).sum().backward()
    numeric = np.zeros_like(x)
    for j in range(x.size):
        plus, minus = x.copy(), x.copy()
        plus.reshape(-1)[j] += 1e-6
        minus.reshape(-1)[j] -= 1e-6
        numeric.reshape(-1)[j] = (objective(plus) - objective(minus)) / 2e-6
    np.testing.assert_allclose(ex.grad.numpy(), numeric, rtol=1e-5, atol=1e-7)


def test_pack_helpers_match_torch():
    seqs = [torch.randn(n, 2) for n in (4, 2, 3)]
    e_seqs = [E(s) for s in seqs]
    for batch_first in (False, True):
        close(ernn.pad_sequence(e_seqs, batch_first=batch_first, padding_value=9.0),
              torch.nn.utils.rnn.pad_sequence(seqs, batch_first=batch_first, padding_value=9.0))
    tp = torch.nn.utils.rnn.pack_sequence(seqs, enforce_sorted=False)
    ep = ernn.pack_sequence(e_seqs, enforce_sorted=False)
    close(ep.data, tp.data)
    assert ep.sorted_indices.tolist() == tp.sorted_indices.tolist()
    assert ep.unsorted_indices.tolist() == tp.unsorted_indices.tolist()
    for a, b in zip(ernn.unpack_sequence(ep), torch.nn.utils.rnn.unpack_sequence(tp)):
        close(a, b)
    padded, lengths = ernn.pad_packed_sequence(ep, batch_first=True, total_length=6)
    assert tuple(padded.shape) == (3, 6, 2) and lengths.tolist() == [4, 2, 3]
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        ernn.pack_sequence(e_seqs)


CELLS = [("RNNCell", dict(nonlinearity="tanh")), ("RNNCell", dict(nonlinearity="relu")), ("LSTMCell", {}),
         ("GRUCell", {})]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cls,kw", CELLS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batched,with_h", [(True, True), (True, False), (False, True)])
def test_cell_matches_torch(cls, kw, dtype, batched, with_h, device):
    torch.manual_seed(4)
    td = getattr(torch, dtype)
    tm = getattr(torch.nn, cls)(3, 5, **kw).to(td)
    em = getattr(ember.nn, cls)(3, 5, **kw, dtype=getattr(ember, dtype))
    em.load_state_dict({k: E(v) for k, v in tm.state_dict().items()})
    em.to(device)
    lead = (4,) if batched else ()
    x = torch.randn(*lead, 3, dtype=td, requires_grad=True)
    lstm = cls == "LSTMCell"
    hx = None
    if with_h:
        hx = torch.randn(*lead, 5, dtype=td, requires_grad=True)
        hx = (hx, torch.randn(*lead, 5, dtype=td, requires_grad=True)) if lstm else hx
    ehx = None if hx is None else (tuple(E(h).to(device) for h in hx) if lstm else E(hx).to(device))
    ex = E(x)
    t_out = list(tm(x, hx)) if lstm else [tm(x, hx)]
    e_out = list(em(ex.to(device), ehx)) if lstm else [em(ex.to(device), ehx)]
    for a, b in zip(e_out, t_out):
        assert tuple(a.shape) == tuple(b.shape)
        close(a, b, dtype)
    grads = [torch.randn_like(o) for o in t_out]
    sum((o * g).sum() for o, g in zip(t_out, grads)).backward()
    sum((o * E(g).to(device)).sum() for o, g in zip(e_out, grads)).backward()
    close(ex.grad, x.grad, dtype)
    for (name, tp), (_, ep) in zip(tm.named_parameters(), em.named_parameters()):
        close(ep.grad, tp.grad, dtype, err_msg=name)


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
@pytest.mark.parametrize("reverse", [False, True])
def test_rnn_layer_gradcheck_float64(mode, reverse):
    # Finite differences of the fused op itself, packed steps (3, 2, 2, 1) so rows leave mid-sequence.
    ember.manual_seed(5)
    H, B, gates = 3, 3, [1, 1, 4, 3][mode]
    sizes = [3, 2, 2, 1]
    n = sum(sizes)
    f64 = dict(dtype=ember.float64)
    x_gates = (ember.randn(n, gates * H, **f64) * 0.5).requires_grad_(True)
    hx = (ember.randn(B, H, **f64) * 0.5).requires_grad_(True)
    w_hh = (ember.randn(gates * H, H, **f64) * 0.5).requires_grad_(True)
    cx = (ember.randn(B, H, **f64) * 0.5).requires_grad_(True) if mode == 2 else None
    b_hh = (ember.randn(gates * H, **f64) * 0.5).requires_grad_(True) if mode == 3 else None
    inputs = [t for t in (x_gates, hx, cx, w_hh, b_hh) if t is not None]

    def f(*args):
        it = iter(args)
        xg, h = next(it), next(it)
        c = next(it) if mode == 2 else None
        w = next(it)
        b = next(it) if mode == 3 else None
        out, h_n, c_n, _ = ember._C._rnn_layer(xg, h, c, w, b, sizes, mode, reverse)
        return (out, h_n, c_n) if mode == 2 else (out, h_n)

    if mode == 1:  # keep relu's pre-activations away from 0, where it has no derivative
        with ember.no_grad():
            x_gates.add_(ember.where(x_gates >= 0, 0.2, -0.2))
    assert ember.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_state_dict_crosses_to_torch():
    em = ember.nn.LSTM(3, 4, 2, bidirectional=True)
    tm = torch.nn.LSTM(3, 4, 2, bidirectional=True)
    tm.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy()) for k, v in em.state_dict().items()})
    x = torch.randn(5, 2, 3)
    close(em(E(x))[0], tm(x)[0])
    for p in em.parameters():  # torch's init: U(-1/sqrt(H), 1/sqrt(H))
        assert float(p.abs().max().item()) <= 0.5


def test_errors_are_clear():
    lstm = ember.nn.LSTM(3, 4)
    with pytest.raises(RuntimeError, match=r"input.size\(-1\) must be equal to input_size. Expected 3, got 5"):
        lstm(ember.randn(2, 1, 5))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 2, 4\), got \[1, 3, 4\]"):
        lstm(ember.randn(2, 2, 3), (ember.zeros(1, 3, 4), ember.zeros(1, 3, 4)))
    with pytest.raises(TypeError, match="tuple"):
        lstm(ember.randn(2, 2, 3), ember.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="2D or 3D"):
        lstm(ember.randn(2, 2, 2, 3))
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        ember.nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="proj_size should be a positive integer or zero"):
        ember.nn.LSTM(3, 4, proj_size=-1)
    with pytest.raises(ValueError, match="only supported for LSTM"):
        ember.nn.GRU(3, 4, proj_size=2)
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 2, 2\), got \[1, 2, 4\]"):
        ember.nn.LSTM(3, 4, proj_size=2)(ember.randn(5, 2, 3), (ember.zeros(1, 2, 4), ember.zeros(1, 2, 4)))
    with pytest.raises(RuntimeError, match=r"Expected cell size \(1, 2, 4\), got \[1, 2, 2\]"):
        ember.nn.LSTM(3, 4, proj_size=2)(ember.randn(5, 2, 3), (ember.zeros(1, 2, 2), ember.zeros(1, 2, 2)))
    with pytest.raises(ValueError, match="nonlinearity"):
        ember.nn.RNN(3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match="mode"):
        ember._C._rnn_layer(ember.zeros(2, 4), ember.zeros(1, 4), None, ember.zeros(4, 4), None, [1, 1], 7, False)
    with pytest.raises(ValueError, match="non-increasing"):
        ember._C._rnn_layer(ember.zeros(3, 4), ember.zeros(2, 4), None, ember.zeros(4, 4), None, [1, 2], 0, False)
    with pytest.raises(RuntimeError, match="expected x_gates of shape"):
        ember._C._rnn_layer(ember.zeros(3, 5), ember.zeros(1, 4), None, ember.zeros(4, 4), None, [1, 1, 1], 0, False)
    with pytest.raises(TypeError, match="dtype"):
        ember._C._rnn_layer(ember.zeros(2, 4), ember.zeros(1, 4, dtype=ember.float64), None, ember.zeros(4, 4), None,
                         [1, 1], 0, False)


def test_double_backward_is_refused():
    cell = ember.nn.GRUCell(2, 3)
    x = ember.randn(2, 2, requires_grad=True)
    with pytest.raises(NotImplementedError, match="double backward"):
        ember.autograd.grad(cell(x).sum(), x, create_graph=True)
