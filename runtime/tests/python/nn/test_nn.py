"""ember.nn against torch.nn: same parameters -> same outputs and gradients; Module API behaviour."""
import math

import numpy as np
import pytest
import torch

import ember
import ember.nn as enn
import ember.nn.functional as EF
import torch.nn.functional as TF
from nn_helpers import E, N, close, copy_weights, edtype, tdtype

DTYPES = ["float32", "float64"]


def _rand(rng, shape, dtype, requires_grad=True, scale=1.0):
    return torch.tensor(rng.standard_normal(shape) * scale, dtype=tdtype(dtype), requires_grad=requires_grad)


def _run_module_pair(tmod, emod, inputs_t, dtype, out_fn=lambda o: o):
    """Forward both modules, backprop the same random upstream gradient, compare outputs, input
    gradients and every parameter gradient."""
    inputs_e = [E(x) if x.is_floating_point() else ember.from_numpy(x.numpy().copy()) for x in inputs_t]
    out_t, out_e = out_fn(tmod(*inputs_t)), out_fn(emod(*inputs_e))
    close(out_e, out_t, dtype)
    g = torch.tensor(np.random.default_rng(1).standard_normal(tuple(out_t.shape)), dtype=out_t.dtype)
    out_t.backward(g)
    out_e.backward(E(g))
    for xt, xe in zip(inputs_t, inputs_e):
        if xt.requires_grad:
            close(xe.grad, xt.grad, dtype)
    named_e = dict(emod.named_parameters())
    for name, pt in tmod.named_parameters():
        assert name in named_e, f"ember module lacks parameter {name}"
        assert named_e[name].grad is not None, f"no gradient for {name}"
        close(named_e[name].grad, pt.grad, dtype)


MODULE_CASES = {
    "linear": (lambda lib: lib.nn.Linear(5, 3), [(2, 4, 5)]),
    "linear_nobias_2d": (lambda lib: lib.nn.Linear(5, 3, bias=False), [(4, 5)]),
    "layernorm": (lambda lib: lib.nn.LayerNorm(6), [(3, 6)]),
    "layernorm_2d_shape": (lambda lib: lib.nn.LayerNorm((2, 3)), [(4, 2, 3)]),
    "rmsnorm": (lambda lib: lib.nn.RMSNorm(6, eps=1e-6), [(2, 3, 6)]),
    "mlp_gelu": (lambda lib: lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.GELU(), lib.nn.Linear(8, 2)), [(3, 4)]),
    "mlp_gelu_tanh_relu_silu": (lambda lib: lib.nn.Sequential(
        lib.nn.Linear(4, 6), lib.nn.GELU("tanh"), lib.nn.Linear(6, 6), lib.nn.ReLU(), lib.nn.Linear(6, 6),
        lib.nn.SiLU()), [(5, 4)]),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(MODULE_CASES))
def test_module_matches_torch(case, dtype):
    build, shapes = MODULE_CASES[case]
    torch.manual_seed(0)
    tmod = build(torch).to(tdtype(dtype))
    emod = copy_weights(tmod, build(ember).to(edtype(dtype)))
    rng = np.random.default_rng(0)
    for p in tmod.parameters():  # non-trivial affine params for the norms
        with torch.no_grad():
            p.add_(torch.tensor(rng.standard_normal(tuple(p.shape)) * 0.1, dtype=p.dtype))
    copy_weights(tmod, emod)
    _run_module_pair(tmod, emod, [_rand(rng, s, dtype) for s in shapes], dtype)


def test_embedding_matches_torch():
    torch.manual_seed(0)
    tmod = torch.nn.Embedding(10, 4)
    emod = copy_weights(tmod, enn.Embedding(10, 4))
    idx = torch.tensor([[1, 3, 3], [9, 0, 1]])
    _run_module_pair(tmod, emod, [idx], "float32")


def test_embedding_padding_idx_gets_no_gradient():
    torch.manual_seed(0)
    tmod = torch.nn.Embedding(6, 3, padding_idx=2)
    emod = copy_weights(tmod, enn.Embedding(6, 3, padding_idx=2))
    np.testing.assert_array_equal(N(emod.weight)[2], 0)
    _run_module_pair(tmod, emod, [torch.tensor([[2, 1, 2], [5, 2, 0]])], "float32")


def test_embedding_out_of_range_is_clear():
    emb = enn.Embedding(5, 2)
    with pytest.raises(IndexError, match=r"\[embedding\] index out of range: indices must be in \[0, 5\), got 5"):
        emb(ember.from_numpy(np.array([0, 5])))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masks", ["none", "causal", "key_padding", "float_mask"])
def test_multihead_attention_matches_torch(masks, dtype):
    torch.manual_seed(0)
    tmod = torch.nn.MultiheadAttention(8, 2, batch_first=True).to(tdtype(dtype))
    emod = copy_weights(tmod, enn.MultiheadAttention(8, 2, batch_first=True).to(edtype(dtype)))
    rng = np.random.default_rng(0)
    q, k = _rand(rng, (2, 3, 8), dtype), _rand(rng, (2, 4, 8), dtype)
    kw_t, kw_e = {}, {}
    L, S = 3, 4
    if masks == "causal":
        m = torch.ones(L, S, dtype=torch.bool).triu(1)
        kw_t["attn_mask"], kw_e["attn_mask"] = m, ember.from_numpy(m.numpy().copy())
    elif masks == "key_padding":
        m = torch.tensor([[False, False, True, True], [False, False, False, True]])
        kw_t["key_padding_mask"], kw_e["key_padding_mask"] = m, ember.from_numpy(m.numpy().copy())
    elif masks == "float_mask":
        m = torch.tensor(rng.standard_normal((L, S)), dtype=tdtype(dtype))
        kw_t["attn_mask"], kw_e["attn_mask"] = m, E(m)
    out_t, w_t = tmod(q, k, k, **kw_t)
    qe, ke = E(q), E(k)
    out_e, w_e = emod(qe, ke, ke, **kw_e)
    close(out_e, out_t, dtype)
    close(w_e, w_t, dtype)
    (out_t.sum() + (w_t * w_t).sum()).backward()
    (out_e.sum() + (w_e * w_e).sum()).backward()
    close(qe.grad, q.grad, dtype)
    close(ke.grad, k.grad, dtype)
    for name, pt in tmod.named_parameters():
        close(dict(emod.named_parameters())[name].grad, pt.grad, dtype)


# ---- functional ----------------------------------------------------------------------------------
def _pair(rng, shape, dtype="float32", scale=1.0):
    t = _rand(rng, shape, dtype, scale=scale)
    return t, E(t)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_matches_torch(reduction, smoothing):
    rng = np.random.default_rng(0)
    xt, xe = _pair(rng, (6, 5), "float64", scale=2.0)
    target = torch.tensor([0, 4, -100, 2, 1, -100])
    lt = TF.cross_entropy(xt, target, ignore_index=-100, reduction=reduction, label_smoothing=smoothing)
    le = EF.cross_entropy(xe, ember.from_numpy(target.numpy().copy()), ignore_index=-100, reduction=reduction,
                          label_smoothing=smoothing)
    close(le, lt, "float64")
    g = torch.tensor(rng.standard_normal(tuple(lt.shape)))
    lt.backward(g)
    le.backward(E(g))
    close(xe.grad, xt.grad, "float64")


def test_cross_entropy_spatial_and_nll():
    rng = np.random.default_rng(1)
    xt, xe = _pair(rng, (2, 4, 3), "float64")
    target = torch.tensor([[0, 3, 1], [2, 2, 0]])
    te = ember.from_numpy(target.numpy().copy())
    close(EF.cross_entropy(xe, te), TF.cross_entropy(xt, target), "float64")
    lp_t, lp_e = _pair(rng, (5, 3), "float64")
    tgt = torch.tensor([0, 2, 1, 1, 2])
    lt, le = TF.nll_loss(lp_t, tgt), EF.nll_loss(lp_e, ember.from_numpy(tgt.numpy().copy()))
    close(le, lt, "float64")
    lt.backward()
    le.backward()
    close(lp_e.grad, lp_t.grad, "float64")


def test_cross_entropy_bad_targets_are_clear():
    x = ember.from_numpy(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match=r"\[nll_loss\].*\[3\].*\[2\]"):
        EF.cross_entropy(x, ember.from_numpy(np.array([0, 1])))
    with pytest.raises(IndexError, match=r"\[nll_loss\] target 7 is out of bounds for 4 classes"):
        EF.cross_entropy(x, ember.from_numpy(np.array([0, 1, 7])))
    with pytest.raises(ValueError, match=r"reduction"):
        EF.cross_entropy(x, ember.from_numpy(np.array([0, 1, 2])), reduction="avg")


def test_simple_functionals_match_torch():
    rng = np.random.default_rng(2)
    xt, xe = _pair(rng, (3, 5), "float64")
    yt, ye = _pair(rng, (3, 5), "float64")
    for ft, fe in [(lambda: TF.mse_loss(xt, yt), lambda: EF.mse_loss(xe, ye)),
                   (lambda: TF.softmax(xt, -1), lambda: EF.softmax(xe, -1)),
                   (lambda: TF.log_softmax(xt, 0), lambda: EF.log_softmax(xe, 0)),
                   (lambda: TF.gelu(xt), lambda: EF.gelu(xe)),
                   (lambda: TF.silu(xt), lambda: EF.silu(xe)),
                   (lambda: TF.layer_norm(xt, (5,), yt[0], yt[1]), lambda: EF.layer_norm(xe, (5,), ye[0], ye[1])),
                   (lambda: TF.rms_norm(xt, (5,), yt[0]), lambda: EF.rms_norm(xe, (5,), ye[0]))]:
        close(fe(), ft(), "float64")
    oh_t = TF.one_hot(torch.tensor([0, 2, 1]), 4)
    oh_e = EF.one_hot(ember.from_numpy(np.array([0, 2, 1])), 4)
    np.testing.assert_array_equal(N(oh_e), oh_t.numpy())


@pytest.mark.parametrize("variant", ["plain", "causal", "bool_mask", "float_mask_scale"])
def test_sdpa_matches_torch(variant):
    rng = np.random.default_rng(3)
    qt, qe = _pair(rng, (2, 2, 3, 4), "float64")
    kt, ke = _pair(rng, (2, 2, 5, 4), "float64")
    vt, ve = _pair(rng, (2, 2, 5, 6), "float64")
    kw_t, kw_e = {}, {}
    if variant == "causal":
        qt, qe = _pair(rng, (2, 2, 5, 4), "float64")
        kw_t = kw_e = {"is_causal": True}
    elif variant == "bool_mask":
        m = torch.tensor(rng.random((3, 5)) < 0.7)
        m[:, 0] = True
        kw_t, kw_e = {"attn_mask": m}, {"attn_mask": ember.from_numpy(m.numpy().copy())}
    elif variant == "float_mask_scale":
        m = torch.tensor(rng.standard_normal((2, 1, 3, 5)))
        kw_t, kw_e = {"attn_mask": m, "scale": 0.3}, {"attn_mask": E(m), "scale": 0.3}
    ot = TF.scaled_dot_product_attention(qt, kt, vt, **kw_t)
    oe = EF.scaled_dot_product_attention(qe, ke, ve, **kw_e)
    close(oe, ot, "float64")
    g = torch.tensor(rng.standard_normal(tuple(ot.shape)))
    ot.backward(g)
    oe.backward(E(g))
    for a, b in [(qe, qt), (ke, kt), (ve, vt)]:
        close(a.grad, b.grad, "float64")


def test_dropout_train_and_eval():
    x = ember.from_numpy(np.ones((200, 50), np.float32))
    drop = enn.Dropout(0.3)
    y = N(drop(x))
    zero_frac = float((y == 0).mean())
    assert 0.25 < zero_frac < 0.35, zero_frac
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)
    drop.eval()
    np.testing.assert_array_equal(N(drop(x)), N(x))
    with pytest.raises(ValueError, match="between 0 and 1"):
        enn.Dropout(1.5)


# ---- Module API ----------------------------------------------------------------------------------
class _Net(enn.Module):
    def __init__(self):
        super().__init__()
        self.body = enn.Sequential(enn.Linear(3, 4), enn.ReLU(), enn.Linear(4, 2))
        self.heads = enn.ModuleDict({"a": enn.Linear(2, 1), "b": enn.LayerNorm(2)})
        self.extra = enn.ModuleList([enn.Linear(2, 2)])
        self.scale = enn.Parameter(ember.from_numpy(np.ones(2, np.float32)))
        self.register_buffer("count", ember.from_numpy(np.zeros(1, np.float32)))
        self.register_buffer("scratch", ember.from_numpy(np.zeros(1, np.float32)), persistent=False)

    def forward(self, x):
        return self.heads["a"](self.heads["b"](self.extra[0](self.body(x)) * self.scale))


def test_module_registration_and_traversal():
    net = _Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias", "heads.a.weight",
                     "heads.a.bias", "heads.b.weight", "heads.b.bias", "extra.0.weight", "extra.0.bias"]
    assert all(isinstance(p, enn.Parameter) for p in net.parameters())
    assert not isinstance(ember.from_numpy(np.ones(2, np.float32)), enn.Parameter)
    assert [n for n, _ in net.named_buffers()] == ["count", "scratch"]
    assert list(net.state_dict()) == names[:1] + ["count"] + names[1:]
    assert [n for n, _ in net.named_children()] == ["body", "heads", "extra"]
    assert len(list(net.modules())) == 10
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "_Net" and "Linear" in seen
    assert "(0): Linear(in_features=3, out_features=4, bias=True)" in repr(net)
    assert "(b): LayerNorm((2,), eps=1e-05, elementwise_affine=True)" in repr(net)
    with pytest.raises(TypeError, match="cannot assign 'int' as parameter 'scale'"):
        net.scale = 3


def test_parameter_shares_storage_and_grads_flow():
    data = ember.from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3))
    p = enn.Parameter(data)
    assert p.requires_grad and p.is_leaf and p._storage_ptr() == data._storage_ptr()
    (p * p).sum().backward()
    np.testing.assert_allclose(N(p.grad), 2 * N(data))


def test_state_dict_round_trip_and_zero_grad():
    a, b = _Net(), _Net()
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = ember.from_numpy(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    np.testing.assert_array_equal(N(a(x)), N(b(x)))
    for k, v in a.state_dict().items():
        assert not v.requires_grad
        np.testing.assert_array_equal(N(v), N(b.state_dict()[k]))
    a(x).sum().backward()
    assert all(p.grad is not None for p in a.parameters())
    a.zero_grad()
    assert all(p.grad is None for p in a.parameters())


def test_load_state_dict_errors_are_clear():
    net = _Net()
    sd = net.state_dict()
    del sd["body.0.bias"]
    sd["bogus.weight"] = ember.from_numpy(np.zeros(1, np.float32))
    sd["heads.a.weight"] = ember.from_numpy(np.zeros((3, 3), np.float32))
    with pytest.raises(RuntimeError) as err:
        net.load_state_dict(sd)
    msg = str(err.value)
    assert "Error(s) in loading state_dict for _Net" in msg
    assert 'Missing key(s) in state_dict: "body.0.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "bogus.weight"' in msg
    assert "size mismatch for heads.a.weight: copying a param with shape [3, 3] from checkpoint, the shape in " \
           "current model is [1, 2]" in msg
    del sd["heads.a.weight"]
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["body.0.bias", "heads.a.weight"] and res.unexpected_keys == ["bogus.weight"]


def test_to_dtype_keeps_parameters():
    net = _Net()
    before = list(net.parameters())
    assert all(a is b for a, b in zip(before, net.to("cpu").float().parameters())), "no-op moves keep params"
    net = net.to(ember.float64)
    assert all(p.dtype == ember.float64 and isinstance(p, enn.Parameter) for p in net.parameters())
    assert net.count.dtype == ember.float64
    x = ember.from_numpy(np.ones((2, 3)))
    net(x).sum().backward()
    assert net.body[0].weight.grad.dtype == ember.float64
    with pytest.raises(TypeError, match="floating point"):
        net.to(ember.int64)


def test_init_functions():
    w = ember.empty((256, 128))
    enn.init.xavier_uniform_(w)
    bound = math.sqrt(6 / (256 + 128))
    a = N(w)
    assert a.min() >= -bound and a.max() <= bound and a.std() > 0.5 * bound / math.sqrt(3)
    enn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(N(w).std() - math.sqrt(2 / 128)) < 0.01
    enn.init.kaiming_uniform_(w, a=math.sqrt(5))
    assert np.abs(N(w)).max() <= 1 / math.sqrt(128) + 1e-7
    enn.init.xavier_normal_(w, gain=2.0)
    assert abs(N(w).std() - 2 * math.sqrt(2 / 384)) < 0.01
    enn.init.trunc_normal_(w, std=1.0, a=-0.5, b=1.0)
    assert N(w).min() >= -0.5 and N(w).max() <= 1.0 and N(w).std() > 0.2
    enn.init.normal_(w, 3.0, 0.5)
    assert abs(N(w).mean() - 3.0) < 0.02 and abs(N(w).std() - 0.5) < 0.02
    enn.init.zeros_(w)
    assert not N(w).any()
    enn.init.ones_(w)
    assert (N(w) == 1).all()


@pytest.mark.parametrize("dtype,tol", [("float16", 2e-2), ("bfloat16", 6e-2)])
def test_reduced_precision_block_matches_torch(dtype, tol):
    """Linear -> GELU -> LayerNorm -> Linear -> cross-entropy in half precision: both libraries
    compute in the same dtype from the same float32 weights; compared loosely (8/11-bit mantissas)."""
    build = lambda lib: lib.nn.Sequential(lib.nn.Linear(8, 16), lib.nn.GELU(), lib.nn.LayerNorm(16),  # noqa: E731
                                          lib.nn.Linear(16, 5))
    torch.manual_seed(0)
    tmod = build(torch)
    emod = copy_weights(tmod, build(ember))
    tmod, emod = tmod.to(tdtype(dtype)), emod.to(edtype(dtype))
    x = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32)
    y = np.array([0, 4, 1, 3, 2, 2])
    xt = torch.from_numpy(x).to(tdtype(dtype)).requires_grad_(True)
    xe = ember.from_numpy(x).to(edtype(dtype)).requires_grad_(True)
    lt = torch.nn.functional.cross_entropy(tmod(xt), torch.from_numpy(y))
    le = EF.cross_entropy(emod(xe), ember.from_numpy(y))
    assert le.dtype == edtype(dtype)
    lt.backward()
    le.backward()
    f = lambda t: t.detach().float().numpy()  # noqa: E731
    np.testing.assert_allclose(f(le), f(lt), rtol=tol, atol=tol)
    np.testing.assert_allclose(f(xe.grad), f(xt.grad), rtol=tol, atol=tol)
    for (name, pt), pe in zip(tmod.named_parameters(), emod.parameters()):
        assert pe.grad.dtype == edtype(dtype)
        np.testing.assert_allclose(f(pe.grad), f(pt.grad), rtol=tol, atol=tol, err_msg=name)
