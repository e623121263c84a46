"""ParameterList/ParameterDict, forward hooks, and nn.utils (parameters_to_vector, weight_norm,
spectral_norm, parametrize, parametrizations) against torch: registration, state_dict keys,
reprs, values and gradients with torch's weights loaded."""
import warnings

import numpy as np
import pytest
import torch

import ember
from compat_helpers import one_thread_each  # noqa: F401  (autouse fixture)
from nn_helpers import E

LIBS = [torch, ember]


def _repr(module):
    return repr(module).replace("ember.", "torch.")  # dtype/type names carry the library's prefix


# ---- ParameterList / ParameterDict -----------------------------------------------------------------
def _param_list(lib):
    lib.manual_seed(0)
    pl = lib.nn.ParameterList([lib.nn.Parameter(lib.zeros(2, 3)), lib.ones(4), None, "text"])
    pl.append(lib.zeros(1))
    pl += [lib.nn.Parameter(lib.ones(2), requires_grad=False)]
    pl[1] = lib.full((4,), 2.0)
    return pl


def test_parameter_list_matches_torch():
    t, e = _param_list(torch), _param_list(ember)
    assert _repr(e) == _repr(t)
    assert list(e.state_dict()) == list(t.state_dict())
    assert [n for n, _ in e.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert len(e) == len(t) == 6
    assert isinstance(e[1], ember.nn.Parameter) and e[1].requires_grad and not e[5].requires_grad
    assert e[2] is None and e[3] == "text" and e[-1] is e[5]
    assert _repr(e[1:3]) == _repr(t[1:3])
    np.testing.assert_array_equal(e[1].detach().numpy(), t[1].detach().numpy())
    with pytest.raises(IndexError, match="out of range"):
        e[6]
    with pytest.raises(TypeError, match=r"ParameterList\.extend should be called with an iterable"):
        e.extend(ember.zeros(3))
    with pytest.raises(RuntimeError, match="ParameterList should not be called"):
        e()


def _param_dict(lib):
    pd = lib.nn.ParameterDict({"b": lib.ones(2), "a": lib.nn.Parameter(lib.zeros(1, 2))})
    pd["c"] = lib.zeros(3)
    pd.update([("e", lib.ones(1)), ("d", None)])
    pd.setdefault("f", lib.zeros(2, 2))
    return pd


def test_parameter_dict_matches_torch():
    t, e = _param_dict(torch), _param_dict(ember)
    assert _repr(e) == _repr(t)
    assert list(e.state_dict()) == list(t.state_dict())
    assert list(e.keys()) == list(t.keys()) and list(reversed(e)) == list(reversed(t))
    assert "c" in e and "z" not in e and e.get("z", 5) == 5 and e["d"] is None
    assert e.pop("c").shape == t.pop("c").shape == (3,) and "c" not in e and "c" not in e.state_dict()
    assert e.popitem()[0] == t.popitem()[0] == "f"
    assert _repr(e | ember.nn.ParameterDict({"z": ember.ones(1)})) == \
        _repr(t | torch.nn.ParameterDict({"z": torch.ones(1)}))
    with pytest.raises(TypeError, match="not a string"):
        e[0]
    with pytest.raises(ValueError, match="has length 3; 2 is required"):
        e.update([("a", 1, 2)])


def test_parameter_containers_train_inside_a_module():
    class Net(ember.nn.Module):
        def __init__(self):
            super().__init__()
            self.weights = ember.nn.ParameterList([ember.nn.Parameter(ember.ones(3)) for _ in range(2)])
            self.scales = ember.nn.ParameterDict({"s": ember.nn.Parameter(ember.full((3,), 2.0))})

        def forward(self, x):
            return (x * self.weights[0] * self.weights[1] * self.scales["s"]).sum()

    net = Net()
    assert list(net.state_dict()) == ["weights.0", "weights.1", "scales.s"]
    net(ember.tensor([1.0, 2.0, 3.0])).backward()
    np.testing.assert_allclose(net.weights[0].grad.numpy(), [2, 4, 6])
    np.testing.assert_allclose(net.scales["s"].grad.numpy(), [1, 2, 3])


# ---- forward hooks ---------------------------------------------------------------------------------
def test_forward_hooks_follow_torch():
    for lib in LIBS:
        lib.manual_seed(0)
    calls = {lib.__name__: [] for lib in LIBS}
    outs = {}
    for lib in LIBS:
        m = lib.nn.Linear(3, 2)
        with lib.no_grad():
            m.weight.copy_(lib.ones(2, 3))
            m.bias.zero_()
        log = calls[lib.__name__]
        h1 = m.register_forward_pre_hook(lambda mod, args, log=log: (log.append("pre"), (args[0] * 2,))[1])
        m.register_forward_pre_hook(lambda mod, args, kwargs, log=log: log.append("pre-kw"), with_kwargs=True,
                                    prepend=True)
        m.register_forward_hook(lambda mod, args, out, log=log: (log.append("post"), out + 1)[1])
        first = m(lib.ones(1, 3)).tolist()
        h1.remove()
        second = m(lib.ones(1, 3)).tolist()
        outs[lib.__name__] = (first, second)
    assert outs["ember"] == outs["torch"] == ([[7.0, 7.0]], [[4.0, 4.0]])
    assert calls["ember"] == calls["torch"]


def test_always_called_forward_hook_runs_when_forward_raises():
    seen = []
    m = ember.nn.Linear(3, 2)
    m.register_forward_hook(lambda mod, args, out: seen.append(out), always_call=True)
    with pytest.raises(RuntimeError):
        m(ember.ones(1, 4))
    assert seen == [None]


# ---- nn.utils --------------------------------------------------------------------------------------
def test_parameters_to_vector_and_back():
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    em = ember.nn.Sequential(ember.nn.Linear(3, 4), ember.nn.Linear(4, 2))
    em.load_state_dict({k: E(v) for k, v in tm.state_dict().items()})
    vt = torch.nn.utils.parameters_to_vector(tm.parameters())
    ve = ember.nn.utils.parameters_to_vector(em.parameters())
    np.testing.assert_array_equal(ve.detach().numpy(), vt.detach().numpy())
    (ve * ve).sum().backward()
    np.testing.assert_allclose(em[0].weight.grad.numpy(), 2 * em[0].weight.detach().numpy())
    new = np.arange(ve.numel(), dtype=np.float32)
    torch.nn.utils.vector_to_parameters(torch.from_numpy(new), tm.parameters())
    ember.nn.utils.vector_to_parameters(ember.from_numpy(new), em.parameters())
    for (k, a), b in zip(em.state_dict().items(), tm.state_dict().values(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    with pytest.raises(TypeError, match=r"expected ember\.Tensor"):
        ember.nn.utils.vector_to_parameters(new, em.parameters())


def _train_steps(tm, em, x_shape, steps=3, lr=0.1):
    """Same inputs to both modules, plain SGD on every parameter; outputs and gradients compared."""
    rng = np.random.default_rng(0)
    for _ in range(steps):
        x = rng.standard_normal(x_shape)
        yt = tm(torch.from_numpy(x))
        ye = em(ember.from_numpy(x))
        np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        (yt * yt).sum().backward()
        (ye * ye).sum().backward()
        pe = dict(em.named_parameters())
        with torch.no_grad(), ember.no_grad():
            for name, p in tm.named_parameters():
                np.testing.assert_allclose(pe[name].grad.numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-12,
                                           err_msg=name)
                p -= lr * p.grad
                pe[name].sub_(pe[name].grad * lr)
                p.grad, pe[name].grad = None, None
    for (k, a), b in zip(em.state_dict().items(), tm.state_dict().values(), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)


REPARAMS = {
    "weight_norm-linear": (lambda lib: lib.nn.utils.weight_norm(lib.nn.Linear(4, 3)), (2, 4)),
    "weight_norm-conv-dim1": (lambda lib: lib.nn.utils.weight_norm(lib.nn.Conv1d(2, 3, 3), dim=1), (2, 2, 6)),
    "weight_norm-dimNone": (lambda lib: lib.nn.utils.weight_norm(lib.nn.Linear(4, 3), dim=None), (2, 4)),
    "spectral_norm-linear": (lambda lib: lib.nn.utils.spectral_norm(lib.nn.Linear(4, 3)), (2, 4)),
    "spectral_norm-conv": (lambda lib: lib.nn.utils.spectral_norm(lib.nn.Conv2d(2, 3, 3), n_power_iterations=2),
                           (1, 2, 5, 5)),
    "spectral_norm-convT": (lambda lib: lib.nn.utils.spectral_norm(lib.nn.ConvTranspose2d(2, 3, 3)), (1, 2, 4, 4)),
    "p-weight_norm": (lambda lib: lib.nn.utils.parametrizations.weight_norm(lib.nn.Linear(4, 3)), (2, 4)),
    "p-weight_norm-conv-dim2": (lambda lib: lib.nn.utils.parametrizations.weight_norm(lib.nn.Conv1d(2, 3, 3), dim=2),
                                (2, 2, 6)),
    "p-spectral_norm": (lambda lib: lib.nn.utils.parametrizations.spectral_norm(lib.nn.Linear(4, 3)), (2, 4)),
    "p-spectral_norm-conv": (lambda lib: lib.nn.utils.parametrizations.spectral_norm(lib.nn.Conv2d(2, 3, 3)),
                             (1, 2, 5, 5)),
}


@pytest.mark.parametrize("name", sorted(REPARAMS))
def test_reparametrizations_match_torch(name):
    build, x_shape = REPARAMS[name]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the classic weight_norm's deprecation (both libraries)
        tm, em = build(torch).double(), build(ember).double()
    assert list(em.state_dict()) == list(tm.state_dict())
    assert repr(em) == repr(tm)
    assert type(em).__name__ == type(tm).__name__
    em.load_state_dict({k: E(v) for k, v in tm.state_dict().items()})
    if name.startswith("weight_norm"):  # the hook recomputes the weight before each forward
        assert not isinstance(em.weight, ember.nn.Parameter)
    _train_steps(tm, em, x_shape)
    tm.eval()
    em.eval()
    _train_steps(tm, em, x_shape, steps=1)


def test_removing_reparametrizations_restores_plain_parameters():
    for lib in LIBS:
        lib.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pairs = [(torch.nn.utils.weight_norm(torch.nn.Linear(4, 3)), ember.nn.utils.weight_norm(ember.nn.Linear(4, 3)),
                  lambda lib, m: lib.nn.utils.remove_weight_norm(m)),
                 (torch.nn.utils.spectral_norm(torch.nn.Linear(4, 3)),
                  ember.nn.utils.spectral_norm(ember.nn.Linear(4, 3)),
                  lambda lib, m: lib.nn.utils.remove_spectral_norm(m)),
                 (torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(4, 3)),
                  ember.nn.utils.parametrizations.weight_norm(ember.nn.Linear(4, 3)),
                  lambda lib, m: lib.nn.utils.parametrize.remove_parametrizations(m, "weight"))]
    for tm, em, remove in pairs:
        em.load_state_dict({k: E(v) for k, v in tm.state_dict().items()})
        with torch.no_grad():
            want = tm(torch.ones(1, 4))  # a training forward: spectral_norm's power iteration moves u and v
        em(ember.ones(1, 4))
        remove(torch, tm)
        remove(ember, em)
        assert type(em) is ember.nn.Linear
        assert list(em.state_dict()) == list(tm.state_dict())
        assert isinstance(em.weight, ember.nn.Parameter)
        np.testing.assert_allclose(em(ember.ones(1, 4)).detach().numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found"):
        ember.nn.utils.remove_weight_norm(ember.nn.Linear(2, 2))


class _Symmetric(torch.nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(0, 1)

    def right_inverse(self, a):
        return a.triu()


class _ESymmetric(ember.nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(0, 1)

    def right_inverse(self, a):
        return a.triu()


def test_custom_parametrization_with_right_inverse_and_cache():
    P = ember.nn.utils.parametrize
    m = ember.nn.Linear(3, 3)
    P.register_parametrization(m, "weight", _ESymmetric())
    w = m.weight.detach().numpy()
    np.testing.assert_array_equal(w, w.T)
    assert P.is_parametrized(m) and P.is_parametrized(m, "weight") and not P.is_parametrized(m, "bias")
    assert P.type_before_parametrizations(m) is ember.nn.Linear
    target = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 5.0], [3.0, 5.0, 6.0]], dtype=np.float32)
    m.weight = ember.from_numpy(target)  # through right_inverse into the original
    np.testing.assert_array_equal(m.weight.detach().numpy(), target)
    np.testing.assert_array_equal(m.parametrizations.weight.original.detach().numpy(), np.triu(target))
    with P.cached():
        assert m.weight is m.weight
    assert m.weight is not m.weight
    tm = torch.nn.Linear(3, 3)
    torch.nn.utils.parametrize.register_parametrization(tm, "weight", _Symmetric())
    assert list(m.state_dict()) == list(tm.state_dict())
    with pytest.raises(ValueError, match="does not have a parameter, a buffer, or a parametrized element"):
        P.register_parametrization(m, "nothing", _ESymmetric())


# ---- nn.init additions -----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (5, 3, 2, 2), (3, 3)])
def test_orthogonal_init_is_orthogonal_with_gain(shape):
    ember.manual_seed(0)
    w = ember.empty(*shape)
    ember.nn.init.orthogonal_(w, gain=1.5)
    flat = w.numpy().reshape(shape[0], -1).astype(np.float64)
    small = min(flat.shape)
    gram = flat @ flat.T if flat.shape[0] == small else flat.T @ flat
    np.testing.assert_allclose(gram, 2.25 * np.eye(small), atol=1e-5)
    g = ember.Generator().manual_seed(3)
    a, b = ember.empty(*shape), ember.empty(*shape)
    ember.nn.init.orthogonal_(a, generator=g)
    ember.nn.init.orthogonal_(b, generator=ember.Generator().manual_seed(3))
    np.testing.assert_array_equal(a.numpy(), b.numpy())  # reproducible from a generator


@pytest.mark.parametrize("name,shape,kwargs", [("eye_", (3, 5), {}), ("eye_", (4, 2), {}),
                                               ("dirac_", (4, 2, 3, 3), {"groups": 2}), ("dirac_", (3, 5, 3), {}),
                                               ("dirac_", (2, 2, 3, 2, 3), {})])
def test_deterministic_inits_match_torch(name, shape, kwargs):
    t, e = torch.empty(*shape), ember.empty(*shape)
    getattr(torch.nn.init, name)(t, **kwargs)
    getattr(ember.nn.init, name)(e, **kwargs)
    np.testing.assert_array_equal(e.numpy(), t.numpy())


def test_dirac_weights_make_an_identity_convolution():
    conv = ember.nn.Conv2d(3, 3, 3, padding=1, bias=False)
    ember.nn.init.dirac_(conv.weight)
    x = ember.randn(2, 3, 5, 5)
    np.testing.assert_allclose(conv(x).detach().numpy(), x.numpy(), rtol=1e-6)


def test_sparse_init_zeros_a_share_of_each_column():
    ember.manual_seed(0)
    w = ember.empty(10, 6)
    ember.nn.init.sparse_(w, 0.3, std=0.02)
    zeros = (w.numpy() == 0).sum(0)
    np.testing.assert_array_equal(zeros, 3)
    assert 0.005 < w.numpy()[w.numpy() != 0].std() < 0.05


@pytest.mark.parametrize("call", [lambda lib: lib.nn.init.orthogonal_(lib.empty(3)),
                                  lambda lib: lib.nn.init.eye_(lib.empty(2, 2, 2)),
                                  lambda lib: lib.nn.init.dirac_(lib.empty(2, 2)),
                                  lambda lib: lib.nn.init.dirac_(lib.empty(3, 2, 3), groups=2),
                                  lambda lib: lib.nn.init.sparse_(lib.empty(3), 0.5)])
def test_init_errors_match_torch(call):
    with pytest.raises(ValueError) as want:
        call(torch)
    with pytest.raises(ValueError) as got:
        call(ember)
    assert str(got.value) == str(want.value)


# ---- backward hooks --------------------------------------------------------------------------------
def _hooked_mlp(lib, log):
    lib.manual_seed(0)
    m = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.ReLU(), lib.nn.Linear(4, 2))
    with lib.no_grad():
        for p in m.parameters():
            p.copy_(lib.arange(p.numel(), dtype=lib.float64).reshape(p.shape) * 0.1 - 0.3)
    shapes = lambda gs: [None if g is None else tuple(g.shape) for g in gs]  # noqa: E731
    m[0].register_full_backward_hook(lambda mod, gi, go: log.append(("hook0", shapes(gi), shapes(go))))
    m[2].register_full_backward_hook(lambda mod, gi, go: (log.append(("hook2", shapes(gi))), (gi[0] * 2,))[1])
    h = m[2].register_full_backward_pre_hook(lambda mod, go: (log.append(("pre2", shapes(go))), (go[0] * 0.5,))[1])
    return m.double(), h


def test_full_backward_hooks_follow_torch():
    """Order, arguments, and replacement of grad_output (pre-hook) and grad_input (hook), as torch."""
    results = {}
    for lib in (torch, ember):
        log = []
        m, pre = _hooked_mlp(lib, log)
        x = lib.ones(5, 3, dtype=lib.float64, requires_grad=True)
        m(x).sum().backward()
        first = (x.grad.numpy().copy(), m[0].weight.grad.numpy().copy())
        pre.remove()
        x.grad = None
        m(x).sum().backward()
        results[lib.__name__] = (log, first, x.grad.numpy().copy())
    (log_t, first_t, second_t), (log_e, first_e, second_e) = results["torch"], results["ember"]
    assert log_e == log_t
    for a, b in zip(first_e, first_t, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(second_e, second_t, rtol=1e-12)


def test_backward_hook_of_a_module_whose_inputs_need_no_gradient():
    calls = {}
    for lib in (torch, ember):
        seen = []
        m = lib.nn.Linear(3, 2)
        m.register_full_backward_hook(lambda mod, gi, go, seen=seen: seen.append((gi, tuple(go[0].shape))))
        with pytest.warns(UserWarning, match="Full backward hook is firing when gradients are computed with respect "
                                             "to module outputs"):
            m(lib.ones(4, 3)).sum().backward()
        calls[lib.__name__] = seen
    assert calls["ember"] == calls["torch"] == [((None,), (4, 2))]
