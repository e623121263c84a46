"""Autograd engine and Python API vs torch: composite graphs, backward/grad, hooks, retain_grad,
custom Functions, gradcheck, grad modes. Inputs are fresh random values each run."""
import gc

import numpy as np
import pytest
import torch

import ember
from numcheck.seeds import rng_for_test
from ember import autograd


def pair(shape, seed=None, dtype="float64", requires_grad=True, low=-2.0, high=2.0):
    """The same random values as an ember tensor and a torch tensor."""
    a = np.random.default_rng(seed).uniform(low, high, size=shape)
    e = ember.tensor(a, dtype=getattr(ember, dtype), requires_grad=requires_grad)
    t = torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=requires_grad)
    return e, t


def close(e, t, tol=1e-9):
    assert e is not None and t is not None, (e, t)
    np.testing.assert_allclose(np.asarray(e.detach().to(ember.float64).tolist()),
                               t.detach().double().numpy(), rtol=tol, atol=tol)


GRAPHS = {
    "diamond": lambda lib, x, y: (x * y + x.exp() * y).sum(),
    "reuse": lambda lib, x, y: (x * x * x + x).sum() + (y * x).mean(),
    "chain": lambda lib, x, y: lib.tanh(lib.sigmoid(x @ y.T)).sum(),
    "broadcast": lambda lib, x, y: (x[0:1] * y + x.sum(0, keepdim=True)).pow(2).sum(),
    "views": lambda lib, x, y: (x.T.reshape(-1)[1:5] * y.reshape(-1)[::3][:4]).sum(),
    "softmax": lambda lib, x, y: (lib.softmax(x, 1) * y).sum(),
    "where": lambda lib, x, y: lib.where(x > 0, x * y, y.exp()).sum(),
}


@pytest.mark.parametrize("name", list(GRAPHS))
def test_backward_matches_torch_on_composite_graphs(name):
    fn = GRAPHS[name]
    ex, tx = pair((3, 4))
    ey, ty = pair((3, 4))
    eo, to = fn(ember, ex, ey), fn(torch, tx, ty)
    close(eo, to)
    eo.backward()
    to.backward()
    close(ex.grad, tx.grad)
    close(ey.grad, ty.grad)


@pytest.mark.parametrize("name", list(GRAPHS))
def test_grad_matches_torch_and_leaves_dot_grad_alone(name):
    fn = GRAPHS[name]
    ex, tx = pair((3, 4))
    ey, ty = pair((3, 4))
    eg = autograd.grad(fn(ember, ex, ey), [ex, ey])
    tg = torch.autograd.grad(fn(torch, tx, ty), [tx, ty])
    for a, b in zip(eg, tg):
        close(a, b)
    assert ex.grad is None and ey.grad is None


def test_diamond_accumulates_each_path_once():
    x = ember.tensor([2.0], requires_grad=True)
    a = x * 3
    b = a * a   # 9x^2
    c = a + a   # 6x
    (b + c).sum().backward()
    assert x.grad.tolist() == [18 * 2.0 + 6]


def test_gradients_accumulate_across_backward_calls():
    ex, tx = pair((4,))
    for _ in range(3):
        (ex * ex).sum().backward()
        (tx * tx).sum().backward()
    close(ex.grad, tx.grad)
    ex.grad = None
    (ex * 2).sum().backward()
    assert ex.grad.tolist() == [2.0] * 4


def test_backward_with_explicit_gradient_and_multiple_roots():
    ex, tx = pair((2, 3))
    eg, tg = pair((2, 3), requires_grad=False)
    (ex.exp()).backward(eg)
    (tx.exp()).backward(tg)
    close(ex.grad, tx.grad)
    ex.grad, tx.grad = None, None
    autograd.backward([ex.sin().sum(), (ex * 3).sum()], [None, None])
    torch.autograd.backward([tx.sin().sum(), (tx * 3).sum()], [None, None])
    close(ex.grad, tx.grad)


def test_retain_graph_allows_second_backward_and_default_frees():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_graph_without_saved_tensors_can_be_replayed_like_torch():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = (x + 1).sum()
    y.backward()
    y.backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_create_graph_double_backward_matches_torch():
    ex, tx = pair((5,), low=0.1, high=1.5)
    fns = [lambda lib, x: (x ** 3).sum(), lambda lib, x: x.exp().sum(), lambda lib, x: lib.tanh(x).sum(),
           lambda lib, x: (lib.sigmoid(x) * x).sum()]
    for fn in fns:
        (eg,) = autograd.grad(fn(ember, ex), [ex], create_graph=True)
        (tg,) = torch.autograd.grad(fn(torch, tx), [tx], create_graph=True)
        close(eg, tg)
        assert eg.requires_grad
        (egg,) = autograd.grad(eg.sum(), [ex])
        (tgg,) = torch.autograd.grad(tg.sum(), [tx])
        close(egg, tgg)


def test_backward_create_graph_gives_differentiable_grad():
    x = ember.tensor([3.0], dtype=ember.float64, requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad and x.grad.tolist() == [27.0]
    (gg,) = autograd.grad(x.grad.sum(), [x])
    assert gg.tolist() == [18.0]


def test_grad_allow_unused_and_errors():
    x = ember.tensor([1.0], requires_grad=True)
    z = ember.tensor([1.0], requires_grad=True)
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        autograd.grad(y, [x, z], retain_graph=True)
    gx, gz = autograd.grad(y, [x, z], allow_unused=True, retain_graph=True)
    assert gx.tolist() == [2.0] and gz is None
    gx, gz = autograd.grad(y, [x, z], materialize_grads=True)
    assert gz.tolist() == [0.0]


def test_grad_wrt_intermediate_tensor():
    ex, tx = pair((3,))
    ea, ta = ex * 2, tx * 2
    (eg,) = autograd.grad((ea.exp() * ea).sum(), [ea])
    (tg,) = torch.autograd.grad((ta.exp() * ta).sum(), [ta])
    close(eg, tg)


def test_grad_only_runs_needed_branches():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    w = ember.tensor([3.0, 4.0], requires_grad=True)
    calls = []
    w.register_hook(lambda g: calls.append("w"))
    y = (x * 2).sum() + (w * w).sum()
    (gx,) = autograd.grad(y, [x])
    assert gx.tolist() == [2.0, 2.0] and calls == []


def test_non_float_outputs_do_not_require_grad():
    x = ember.tensor([1.0, -2.0], requires_grad=True)
    assert not (x > 0).requires_grad
    assert x.argmax().requires_grad is False
    assert (x * 2).requires_grad


def test_backward_on_non_scalar_without_gradient_raises():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        ember.tensor([1.0]).sum().backward()


# ---- hooks and retain_grad -----------------------------------------------------------------------

def test_leaf_hook_sees_and_replaces_gradient():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    h = x.register_hook(lambda g: g * 10)
    (x * 3).sum().backward()
    assert seen == [[3.0, 3.0]] and x.grad.tolist() == [30.0, 30.0]
    h.remove()
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_nonleaf_hook_matches_torch():
    ex, tx = pair((3,))
    ey, ty = ex * 2, tx * 2
    ey.register_hook(lambda g: g * g)
    ty.register_hook(lambda g: g * g)
    (ey.exp() * 3).sum().backward()
    (ty.exp() * 3).sum().backward()
    close(ex.grad, tx.grad)


def test_hooks_fire_for_autograd_grad_on_leaves():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g + 1)
    (g,) = autograd.grad((x * 2).sum(), [x])
    assert g.tolist() == [3.0, 3.0]


def test_register_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="doesn't require"):
        ember.tensor([1.0]).register_hook(lambda g: g)


def test_retain_grad_matches_torch():
    ex, tx = pair((2, 3))
    ey, ty = ex.exp(), tx.exp()
    ey.retain_grad()
    ty.retain_grad()
    assert ey.retains_grad and not ex.retains_grad
    (ey * ey).sum().backward()
    (ty * ty).sum().backward()
    close(ey.grad, ty.grad)
    close(ex.grad, tx.grad)
    ez = ex * 2
    assert ez.grad is None  # not retained
    assert ez.is_leaf is False and ex.is_leaf


def test_hook_exception_propagates():
    x = ember.tensor([1.0], requires_grad=True)

    def bad(g):
        raise ValueError("boom from hook")
    x.register_hook(bad)
    with pytest.raises(ValueError, match="boom from hook"):
        (x * 2).sum().backward()


# ---- grad_fn objects -----------------------------------------------------------------------------

def test_grad_fn_structure():
    x = ember.tensor([1.0], requires_grad=True)
    y = x * 2
    assert x.grad_fn is None and y.grad_fn.name() == "MulBackward"
    fns = y.grad_fn.next_functions
    assert fns[0][0].name() == "AccumulateGrad" and fns[0][0].variable._is_same(x)
    assert fns[1][0] is None  # the constant 2 needs no grad
    z = y.exp()
    assert z.grad_fn.next_functions[0][0].name() == "MulBackward"


# ---- grad modes ----------------------------------------------------------------------------------

def test_no_grad_context_and_decorator():
    x = ember.tensor([1.0], requires_grad=True)
    with autograd.no_grad():
        assert not (x * 2).requires_grad
        with autograd.enable_grad():
            assert (x * 2).requires_grad
    assert (x * 2).requires_grad

    @autograd.no_grad()
    def f():
        return x * 2

    @autograd.no_grad
    def g():
        return x * 2
    assert not f().requires_grad and not g().requires_grad and ember.is_grad_enabled()


def test_set_grad_enabled_and_restore_on_exception():
    x = ember.tensor([1.0], requires_grad=True)
    with autograd.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert ember.is_grad_enabled()
    autograd.set_grad_enabled(False)
    assert not ember.is_grad_enabled()
    autograd.set_grad_enabled(True)
    with pytest.raises(KeyError):
        with autograd.no_grad():
            raise KeyError("x")
    assert ember.is_grad_enabled()

    @autograd.set_grad_enabled(False)
    def f():
        return ember.is_grad_enabled()
    assert ember.is_grad_enabled() and f() is False


def test_inference_mode():
    x = ember.tensor([1.0], requires_grad=True)
    with autograd.inference_mode():
        assert ember.is_inference_mode_enabled() and not (x * 2).requires_grad
    assert not ember.is_inference_mode_enabled() and ember.is_grad_enabled()

    @autograd.inference_mode()
    def f():
        return (x * 2).requires_grad
    assert f() is False


# ---- custom Function -----------------------------------------------------------------------------

class Cube(autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x * x * x * scale

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x * x * ctx.scale, None


class ExpSavesOutput(autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class SortLike(autograd.Function):
    @staticmethod
    def forward(ctx, x):
        idx = x.argmax()
        ctx.mark_non_differentiable(idx)
        ctx.needs = ctx.needs_input_grad
        return x * 2, idx

    @staticmethod
    def backward(ctx, g, g_idx):
        return g * 2


def test_function_forward_backward():
    ex, tx = pair((4,))
    y = Cube.apply(ex, 2.0)
    assert y.grad_fn.name() == "CubeBackward" and not y.is_leaf
    y.sum().backward()
    (tx * tx * tx * 2.0).sum().backward()
    close(ex.grad, tx.grad)


def test_function_saving_output_and_gradcheck():
    x = ember.tensor(rng_for_test().uniform(-1, 1, 5), dtype=ember.float64, requires_grad=True)
    assert autograd.gradcheck(lambda t: ExpSavesOutput.apply(t), (x,))
    assert autograd.gradcheck(lambda t: Cube.apply(t, 1.5), (x,))


def test_function_non_differentiable_outputs_and_needs_input_grad():
    x = ember.tensor([1.0, 3.0, 2.0], requires_grad=True)
    y, idx = SortLike.apply(x)
    assert y.requires_grad and not idx.requires_grad
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_function_without_grad_inputs_records_nothing():
    x = ember.tensor([1.0, 2.0])
    y = Cube.apply(x, 1.0)
    assert y.grad_fn is None and not y.requires_grad


def test_function_saved_tensor_version_check():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1
    y = Cube.apply(a, 1.0)
    a.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_function_wrong_number_of_grads():
    class Bad(autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g
    x = ember.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="incorrect number of gradients"):
        Bad.apply(x, x).sum().backward()


def test_function_materialize_grads_and_second_backward_error():
    class Two(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            ctx.saved_tensors
            return g1 * 2 + g2 * 3
    x = ember.tensor([1.0], requires_grad=True)
    a, b = Two.apply(x)
    a.sum().backward()  # b's grad materialized as zeros
    assert x.grad.tolist() == [2.0]
    with pytest.raises(RuntimeError, match="second time"):
        a.sum().backward()


def test_function_returning_input_keeps_input_leaf():
    class Ident(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 5
    x = ember.tensor([1.0], requires_grad=True)
    y = Ident.apply(x)
    assert x.is_leaf and y.grad_fn.name() == "IdentBackward"
    y.sum().backward()
    assert x.grad.tolist() == [5.0]


def test_function_node_and_ctx_are_freed_with_the_graph():
    import weakref

    class Marker:
        pass

    class Keep(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.marker = Marker()
            y = x.exp()
            ctx.save_for_backward(y)  # saving an output must not create an uncollectable cycle
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y

    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = Keep.apply(x)
    ref = weakref.ref(y.grad_fn and _ctx_marker(Keep, y))
    del y
    gc.collect()
    assert ref() is None


def _ctx_marker(cls, y):
    # the marker is reachable only through the C++ node's ctx; find it via the gc referrers of Marker instances
    for obj in gc.get_objects():
        if type(obj).__name__ == "Marker":
            return obj
    raise AssertionError("marker not found")


# ---- gradcheck -----------------------------------------------------------------------------------

def test_gradcheck_passes_for_correct_ops():
    x = ember.tensor(rng_for_test().uniform(0.5, 2, (2, 3)), dtype=ember.float64, requires_grad=True)
    w = ember.tensor(rng_for_test().uniform(-1, 1, (3, 2)), dtype=ember.float64, requires_grad=True)
    assert autograd.gradcheck(lambda a, b: (a @ b).tanh(), (x, w))
    assert autograd.gradcheck(lambda a: (a.log() * a, a.sum()), (x,))
    assert autograd.gradgradcheck(lambda a: (a * a * a).sum(), (x,))


def test_gradcheck_reports_wrong_gradient():
    class WrongGrad(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, g):
            return g * 3  # should be 2x
    x = ember.tensor([0.5, 1.5], dtype=ember.float64, requires_grad=True)
    with pytest.raises(autograd.GradcheckError, match=r"Jacobian mismatch for output 0 with respect to input 0"):
        autograd.gradcheck(WrongGrad.apply, (x,))
    assert autograd.gradcheck(WrongGrad.apply, (x,), raise_exception=False) is False


def test_gradcheck_requires_some_input_with_grad():
    with pytest.raises(ValueError, match="require gradient"):
        autograd.gradcheck(lambda a: a * 2, (ember.tensor([1.0], dtype=ember.float64),))


# ---- in-place ops on views (CopySlices) ----------------------------------------------------------

INPLACE_ON_VIEW = {
    "mul_column": lambda lib, x, y: _ret(lambda h: h[:, 0].mul_(3), x * 1),
    "setitem_from_grad_src": lambda lib, x, y: _ret(lambda b: b.__setitem__((slice(None), 1), y[0, :3]), lib.zeros(3, 4, dtype=lib.float64)),
    "add_row_then_reuse_view": lambda lib, x, y: _ret(lambda h: h[1].add_(y[2] * h[0].clone()), x * 2),
    "copy_into_transposed_slice": lambda lib, x, y: _ret(lambda h: h.T[1:3].copy_(y.T[0:2] * 2), x * x),
    "nested_views": lambda lib, x, y: _ret(lambda h: h[1:][:, 1:3][0].mul_(y[0, 0:2]), x + 0),
}


def _ret(mutate, base):
    mutate(base)
    return base


@pytest.mark.parametrize("name", list(INPLACE_ON_VIEW))
def test_inplace_on_view_matches_torch(name):
    fn = INPLACE_ON_VIEW[name]
    ex, tx = pair((3, 4))
    ey, ty = pair((3, 4))
    eo, to = fn(ember, ex, ey), fn(torch, tx, ty)
    close(eo, to)
    (eo * eo).sum().backward()
    (to * to).sum().backward()
    for e, t in ((ex, tx), (ey, ty)):
        if t.grad is None:
            assert e.grad is None
        else:
            close(e.grad, t.grad)


def test_view_after_inplace_flows_through_base():
    ex, tx = pair((2, 3))
    eh, th = ex * 2, tx * 2
    ev, tv = eh[0], th[0]
    ev.mul_(ev.detach() + 1)
    tv.mul_(tv.detach() + 1)
    ((ev * 3).sum() + eh.sum()).backward()
    ((tv * 3).sum() + th.sum()).backward()
    close(ex.grad, tx.grad)


def test_inplace_on_view_of_leaf_raises():
    x = ember.tensor([[1.0, 2.0]], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"a view of a leaf Variable that requires grad"):
        x[0].mul_(2)
    assert x.tolist() == [[1.0, 2.0]]  # rejected before the kernel ran


def _inplace_on_view_graph(lib, x):
    h = x * x
    h[:, 1].mul_(x[0, 0] * h[0, 2].clone())
    return (h * h.exp()).sum()


def _inplace_graph(lib, x):
    h = x * 1
    h.mul_(x)
    return (h * h).sum()


@pytest.mark.parametrize("fn", [_inplace_on_view_graph, _inplace_graph])
def test_double_backward_through_inplace_ops_matches_torch(fn):
    ex, tx = pair((2, 3), low=0.5, high=1.5)
    (eg,) = autograd.grad(fn(ember, ex), [ex], create_graph=True)
    (tg,) = torch.autograd.grad(fn(torch, tx), [tx], create_graph=True)
    close(eg, tg)
    (egg,) = autograd.grad((eg * eg).sum(), [ex])
    (tgg,) = torch.autograd.grad((tg * tg).sum(), [tx])
    close(egg, tgg, tol=1e-8)
