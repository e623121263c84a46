"""The activations beyond relu/gelu/silu against torch: F forms (forward, backward, float64 finite
differences, 0-size/scalar/batched shapes, non-contiguous inputs, half types), the exact gradients
at the kinks, in-place variants under autograd, modules (repr, state_dict, init), and torch's errors."""
import warnings

import numpy as np
import pytest
import torch

import ember
from compat_helpers import one_thread_each  # noqa: F401  (autouse fixture)
from optest import OpCase, op_tests

ALL_FLOAT = ("float32", "float64", "float16", "bfloat16")
SHAPES = [[(3, 4)], [(0,)], [()], [(2, 3, 5)]]
KINKS = np.array([0.0, -3.0, 3.0, -1.0, 1.0, 6.0, -0.5, 0.5, 0.25, 20.0, -20.0, 40.0])


def _np(dtype):
    return np.float32 if dtype == "bfloat16" else np.dtype(dtype)


def with_kinks(rng, shapes, dtype):
    """Uniform values with the kinks of every activation here spliced in (gradients compared exactly there)."""
    out = []
    for s in shapes:
        a = rng.uniform(-5, 5, size=s)
        flat = a.reshape(-1)
        flat[:min(flat.size, KINKS.size)] = KINKS[:flat.size]
        out.append(a.astype(_np(dtype)))
    return out


def unary(name, call, dtypes=ALL_FLOAT, shapes=SHAPES):
    """A smooth-input case (with finite differences) and a kinks case (torch's one-sided gradients)."""
    smooth = OpCase(name, lambda lib, x: call(lib.nn.functional, x), shapes=shapes, dtypes=dtypes, low=-4, high=4)
    kinks = OpCase(f"{name}-kinks", lambda lib, x: call(lib.nn.functional, x), shapes=[[(3, 4)], [(12,)]],
                   dtypes=("float32", "float64"), make_inputs=with_kinks, gradcheck=False)
    return [smooth, kinks]


def _scaled(lib, x):
    """A non-leaf copy of x (in-place activations may not write into a leaf that requires grad)."""
    return x * 1.0


CASES = [
    *unary("elu", lambda F, x: F.elu(x)),
    *unary("elu-alpha0.3", lambda F, x: F.elu(x, 0.3)),
    *unary("selu", lambda F, x: F.selu(x)),
    *unary("celu", lambda F, x: F.celu(x)),
    *unary("celu-alpha2", lambda F, x: F.celu(x, 2.0)),
    *unary("hardtanh", lambda F, x: F.hardtanh(x)),
    *unary("hardtanh-(-2,0.5)", lambda F, x: F.hardtanh(x, -2.0, 0.5)),
    *unary("relu6", lambda F, x: F.relu6(x * 2)),
    *unary("hardswish", lambda F, x: F.hardswish(x)),
    *unary("hardsigmoid", lambda F, x: F.hardsigmoid(x)),
    *unary("mish", lambda F, x: F.mish(x)),
    *unary("logsigmoid", lambda F, x: F.logsigmoid(x)),
    *unary("tanhshrink", lambda F, x: F.tanhshrink(x)),
    *unary("softsign", lambda F, x: F.softsign(x)),
    *unary("threshold", lambda F, x: F.threshold(x, 0.5, -2.0)),
    *unary("hardshrink", lambda F, x: F.hardshrink(x)),
    *unary("hardshrink-1", lambda F, x: F.hardshrink(x, 1.0)),
    *unary("softshrink", lambda F, x: F.softshrink(x)),
    *unary("softshrink-1", lambda F, x: F.softshrink(x, 1.0)),
    *unary("rrelu-eval", lambda F, x: F.rrelu(x, 0.1, 0.3, training=False)),
    *unary("leaky_relu", lambda F, x: F.leaky_relu(x, 0.2)),
    # in place on a non-leaf: the gradient flows through the overwritten tensor (Note [In-place activations])
    *[OpCase(f"{name}-inplace", lambda lib, x, f=f: f(lib.nn.functional, _scaled(lib, x)), shapes=[[(3, 4)], [(0,)]],
             dtypes=("float32", "float64")) for name, f in [
        ("elu", lambda F, x: F.elu(x, 0.5, inplace=True)), ("elu_", lambda F, x: F.elu_(x)),
        ("selu", lambda F, x: F.selu(x, inplace=True)), ("selu_", lambda F, x: F.selu_(x)),
        ("celu", lambda F, x: F.celu(x, 1.5, inplace=True)), ("celu_", lambda F, x: F.celu_(x)),
        ("hardtanh", lambda F, x: F.hardtanh(x, -0.5, 1.5, inplace=True)), ("hardtanh_", lambda F, x: F.hardtanh_(x)),
        ("relu6", lambda F, x: F.relu6(x, inplace=True)), ("hardswish", lambda F, x: F.hardswish(x, inplace=True)),
        ("hardsigmoid", lambda F, x: F.hardsigmoid(x, inplace=True)), ("mish", lambda F, x: F.mish(x, inplace=True)),
        ("threshold", lambda F, x: F.threshold(x, 0.1, 5.0, inplace=True)),
        ("threshold_", lambda F, x: F.threshold_(x, 0.1, 5.0)),
        ("leaky_relu", lambda F, x: F.leaky_relu(x, 0.3, inplace=True)),
        ("leaky_relu_", lambda F, x: F.leaky_relu_(x, 0.3)),
        ("rrelu-eval", lambda F, x: F.rrelu(x, inplace=True)), ("rrelu_-eval", lambda F, x: F.rrelu_(x))]],
    # gating and softmin
    *[OpCase(f"glu-dim{d}", lambda lib, x, d=d: lib.nn.functional.glu(x, d), shapes=s, dtypes=ALL_FLOAT)
      for d, s in [(-1, [[(3, 4)], [(2, 3, 6)], [(8,)], [(0, 4)]]), (0, [[(4, 3)], [(2, 3, 5)]]),
                   (1, [[(3, 4, 2)], [(3, 6)]])]],
    *[OpCase(f"softmin-dim{d}", lambda lib, x, d=d: lib.nn.functional.softmin(x, d), shapes=[[(3, 4)], [(2, 3, 4)]],
             dtypes=ALL_FLOAT) for d in (0, 1, -1)],
    OpCase("softmin-dtype", lambda lib, x: lib.nn.functional.softmin(x, 1, dtype=lib.float64), shapes=[[(3, 4)]],
           dtypes=("float32",), gradcheck=False),
    # prelu: one slope or one per channel (dim 1), inputs of every rank
    *[OpCase(f"prelu-{i}", lambda lib, x, w: lib.nn.functional.prelu(x, w), shapes=[s], dtypes=ALL_FLOAT)
      for i, s in enumerate([[(2, 3, 4), (3,)], [(2, 3), (1,)], [(5,), (1,)], [(), (1,)], [(0, 3), (3,)],
                             [(2, 3, 2, 2), (3,)], [(2, 3), ()], [(2, 3, 4), (1,)]])],
    # torch's refusals: both libraries raise (the class and message are checked in test_errors)
    OpCase("glu-odd", lambda lib, x: lib.nn.functional.glu(x), shapes=[[(3, 5)], [()]], grad=False),
    OpCase("prelu-mismatch", lambda lib, x, w: lib.nn.functional.prelu(x, w), shapes=[[(2, 3), (4,)], [(3,), (3,)]],
           grad=False),
]

test_matches_torch, test_gradcheck = op_tests(CASES)


# ---- errors ----------------------------------------------------------------------------------------
ERRORS = [
    ("elu", lambda F, lib: F.elu(lib.tensor([1, 2]))),
    ("hardswish", lambda F, lib: F.hardswish(lib.tensor([1, 2]))),
    ("hardshrink", lambda F, lib: F.hardshrink(lib.tensor([1, 2]))),
    ("glu", lambda F, lib: F.glu(lib.zeros(3, 5))),
    ("glu", lambda F, lib: F.glu(lib.zeros(3, 4), 2)),
    ("glu", lambda F, lib: F.glu(lib.zeros(()))),
    ("prelu", lambda F, lib: F.prelu(lib.zeros(2, 3), lib.ones(2))),
    ("prelu", lambda F, lib: F.prelu(lib.zeros(2, 3), lib.ones(1, 3))),
    ("prelu", lambda F, lib: F.prelu(lib.zeros(()), lib.ones(3))),
    ("hardtanh", lambda F, lib: F.hardtanh(lib.zeros(3), 2.0, 1.0)),
    ("celu", lambda F, lib: F.celu(lib.zeros(3), 0.0)),
    ("softshrink", lambda F, lib: F.softshrink(lib.zeros(3), -1.0)),
    ("rrelu", lambda F, lib: F.rrelu(lib.zeros(3), 0.5, 0.1)),
    ("elu_", lambda F, lib: F.elu_(lib.zeros(3, requires_grad=True))),
    ("Softmax2d", lambda F, lib: lib.nn.Softmax2d()(lib.zeros(2, 3))),
    ("Hardtanh", lambda F, lib: lib.nn.Hardtanh(1.0, 1.0)),
]


@pytest.mark.parametrize("op,call", ERRORS, ids=[f"{i}-{e[0]}" for i, e in enumerate(ERRORS)])
def test_errors_match_torch(op, call):
    with pytest.raises(Exception) as want:
        call(torch.nn.functional, torch)
    with pytest.raises(Exception) as got:
        call(ember.nn.functional, ember)
    assert isinstance(got.value, want.type), f"ember raised {got.type.__name__}, torch {want.type.__name__}"
    if not isinstance(got.value, AssertionError):  # torch's Hardtanh asserts with its own message
        assert f"[{op}" in str(got.value) or op.lower() in str(got.value).lower(), str(got.value)


# ---- rrelu in training: random slopes from ember's generator ----------------------------------------
def test_rrelu_training_draws_slopes_in_range_and_backprops_them():
    ember.manual_seed(0)
    x = ember.from_numpy(np.linspace(-3, 3, 2001)).requires_grad_(True)
    y = ember.nn.functional.rrelu(x, 0.1, 0.3, training=True)
    y.sum().backward()
    xs, ys, gs = x.detach().numpy(), y.detach().numpy(), x.grad.numpy()
    neg = xs <= 0
    slopes = ys[neg] / np.where(xs[neg] == 0, 1, xs[neg])
    nonzero = xs[neg] != 0
    assert np.all((slopes[nonzero] >= 0.1) & (slopes[nonzero] <= 0.3))
    assert abs(slopes[nonzero].mean() - 0.2) < 0.01  # uniform on [0.1, 0.3]
    assert len(np.unique(np.round(slopes[nonzero], 6))) > 900  # one draw per element
    np.testing.assert_array_equal(ys[~neg], xs[~neg])
    np.testing.assert_allclose(gs[neg][nonzero], slopes[nonzero], rtol=1e-12)
    np.testing.assert_array_equal(gs[~neg], 1.0)


def test_rrelu_module_eval_is_leaky_with_mean_slope():
    m = ember.nn.RReLU(0.1, 0.3).eval()
    x = ember.tensor([-2.0, 3.0])
    np.testing.assert_allclose(m(x).numpy(), [-0.4, 3.0], rtol=1e-6)


# ---- modules ---------------------------------------------------------------------------------------
MODULES = [
    ("ELU", (), {}), ("ELU", (0.5, True), {}), ("SELU", (), {}), ("SELU", (True,), {}), ("CELU", (), {}),
    ("CELU", (2.0,), {"inplace": True}), ("Hardtanh", (), {}), ("Hardtanh", (-2.0, 3.0, True), {}),
    ("ReLU6", (), {}), ("ReLU6", (True,), {}), ("PReLU", (), {}), ("PReLU", (4,), {"init": 0.1}),
    ("RReLU", (), {}), ("RReLU", (0.2, 0.4, True), {}), ("Hardswish", (), {}), ("Hardswish", (True,), {}),
    ("Hardsigmoid", (), {}), ("Hardsigmoid", (True,), {}), ("Mish", (), {}), ("Mish", (True,), {}), ("GLU", (), {}),
    ("GLU", (1,), {}), ("LogSigmoid", (), {}), ("Softmin", (), {}), ("Softmin", (1,), {}), ("Softmax2d", (), {}),
    ("Tanhshrink", (), {}), ("Threshold", (0.1, 20.0), {}), ("Threshold", (0.1, 20, True), {}),
    ("Softsign", (), {}), ("Hardshrink", (), {}), ("Softshrink", (0.3,), {}), ("LeakyReLU", (0.2, True), {}),
    ("Softmax", (), {}), ("LogSoftmax", (), {}),
]


@pytest.mark.parametrize("name,args,kwargs", MODULES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MODULES)])
def test_module_matches_torch(name, args, kwargs):
    tm, em = getattr(torch.nn, name)(*args, **kwargs), getattr(ember.nn, name)(*args, **kwargs)
    assert repr(em) == repr(tm)
    assert list(em.state_dict()) == list(tm.state_dict())
    for k, v in tm.state_dict().items():
        np.testing.assert_array_equal(em.state_dict()[k].numpy(), v.numpy())  # default init (PReLU's 0.25)
    rng = np.random.default_rng(0)
    x = rng.uniform(-4, 4, size=(2, 4, 3, 6))
    xt, xe = torch.from_numpy(x.copy()) * 1.0, ember.from_numpy(x.copy()) * 1.0
    xt.requires_grad_(True)
    xe.requires_grad_(True)
    tm, em = tm.double().eval(), em.double().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # implicit softmax dim (both libraries warn)
        yt, ye = tm(xt * 1.0), em(xe * 1.0)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.from_numpy(g))
    ye.backward(ember.from_numpy(g))
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-14)
    for (n, pt), (m, pe) in zip(tm.named_parameters(), em.named_parameters(), strict=True):
        assert n == m
        np.testing.assert_allclose(pe.grad.numpy(), pt.grad.numpy(), rtol=1e-12)


def test_implicit_softmax_dim_follows_torch():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    for name in ("softmax", "log_softmax", "softmin"):
        with pytest.warns(UserWarning, match="Implicit dimension choice"):
            got = getattr(ember.nn.functional, name)(ember.from_numpy(x))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = getattr(torch.nn.functional, name)(torch.from_numpy(x))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
