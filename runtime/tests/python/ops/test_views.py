"""View ops vs torch (values, gradients, finite differences), zero-copy checks and error messages."""
import numpy as np
import pytest
import torch

import ember
from numcheck.seeds import rng_for_test
from optest import OpCase, op_tests

# Views move no data, so they must work for every dtype; gradients are compared for float ones.
VIEW_DTYPES = ["float32", "float64", "bfloat16", "int8", "bool"]
F = ["float32", "float64"]

pytestmark = pytest.mark.filterwarnings("ignore:The use of `x.T` on tensors:UserWarning")


def _as_strided_window(lib, x):
    # Overlapping sliding windows over a contiguous buffer (the backward must accumulate).
    return lib.as_strided(x, (3, 4), (2, 1), 1)


CASES = [
    OpCase("view", lambda lib, x: x.view(4, 3), shapes=[[(3, 4)], [(2, 6)]], dtypes=VIEW_DTYPES, noncontiguous=False),
    OpCase("view_infer", lambda lib, x: x.view(-1), shapes=[[(3, 4)], [()], [(0, 5)]], dtypes=F, noncontiguous=False),
    OpCase("view_0d", lambda lib, x: x.view(1, 1), shapes=[[()]], dtypes=F, noncontiguous=False),
    OpCase("view_as", lambda lib, x, y: x.view_as(y), shapes=[[(3, 4), (12,)]], dtypes=F, noncontiguous=False,
           grad_inputs=[0]),
    OpCase("reshape", lambda lib, x: lib.reshape(x, (2, -1, 2)), shapes=[[(3, 4)], [(4, 3)]], dtypes=VIEW_DTYPES),
    OpCase("reshape_empty", lambda lib, x: x.reshape(5, 0, 2), shapes=[[(0, 10)]], dtypes=F),
    OpCase("reshape_as", lambda lib, x, y: x.reshape_as(y), shapes=[[(3, 4), (6, 2)]], dtypes=F, grad_inputs=[0]),
    OpCase("permute", lambda lib, x: x.permute(2, 0, 1), shapes=[[(2, 3, 4)], [(0, 2, 3)]], dtypes=VIEW_DTYPES),
    OpCase("permute_fn", lambda lib, x: lib.permute(x, (1, 0)), shapes=[[(3, 4)]], dtypes=F),
    OpCase("transpose", lambda lib, x: x.transpose(0, -1), shapes=[[(2, 3, 4)], [(3, 1)]], dtypes=VIEW_DTYPES),
    OpCase("swapaxes", lambda lib, x: lib.swapaxes(x, 0, 1), shapes=[[(2, 3)]], dtypes=F),
    OpCase("t", lambda lib, x: x.t(), shapes=[[(2, 3)], [(4,)]], dtypes=F),
    OpCase("t_0d", lambda lib, x: x.t(), shapes=[[()]], dtypes=F, grad=False),
    OpCase("T", lambda lib, x: x.T, shapes=[[(2, 3)], [(5,)]], dtypes=F),
    OpCase("mT", lambda lib, x: x.mT, shapes=[[(2, 3, 4)], [(3, 2)]], dtypes=VIEW_DTYPES),
    OpCase("expand", lambda lib, x: x.expand(2, 3, -1), shapes=[[(3, 1)], [(1, 4)]], dtypes=VIEW_DTYPES),
    OpCase("expand_0d", lambda lib, x: x.expand(2, 3), shapes=[[()]], dtypes=F),
    OpCase("expand_as", lambda lib, x, y: x.expand_as(y), shapes=[[(1, 3), (4, 3)]], dtypes=F, grad_inputs=[0]),
    OpCase("broadcast_to", lambda lib, x: lib.broadcast_to(x, (2, 4, 3)), shapes=[[(4, 1)]], dtypes=F),
    OpCase("narrow", lambda lib, x: x.narrow(1, 1, 2), shapes=[[(3, 4)], [(2, 5, 2)]], dtypes=VIEW_DTYPES),
    OpCase("narrow_neg", lambda lib, x: lib.narrow(x, -1, -3, 2), shapes=[[(3, 4)]], dtypes=F),
    OpCase("slice_step", lambda lib, x: x[1:, ::2], shapes=[[(3, 5)], [(1, 0)]], dtypes=VIEW_DTYPES),
    OpCase("select", lambda lib, x: x.select(1, -1), shapes=[[(3, 4)], [(2, 3, 4)]], dtypes=VIEW_DTYPES),
    OpCase("squeeze_all", lambda lib, x: x.squeeze(), shapes=[[(1, 3, 1)], [(2, 1)]], dtypes=VIEW_DTYPES),
    # 0-dim outputs: forward only (optest's random upstream gradient is never 0-dim).
    OpCase("squeeze_to_0d", lambda lib, x: x.squeeze(), shapes=[[(1,)], [()]], dtypes=VIEW_DTYPES, grad=False),
    OpCase("squeeze_dim", lambda lib, x: x.squeeze(0), shapes=[[(1, 3, 1)], [(2, 3)]], dtypes=F),
    OpCase("squeeze_dims", lambda lib, x: lib.squeeze(x, (0, 2)), shapes=[[(1, 3, 1)]], dtypes=F),
    OpCase("unsqueeze", lambda lib, x: x.unsqueeze(-1), shapes=[[(3, 4)], [()], [(0,)]], dtypes=VIEW_DTYPES),
    OpCase("unsqueeze_mid", lambda lib, x: lib.unsqueeze(x, 1), shapes=[[(3, 4)]], dtypes=F),
    OpCase("flatten", lambda lib, x: x.flatten(), shapes=[[(2, 3, 4)], [()], [(2, 0)]], dtypes=VIEW_DTYPES),
    OpCase("flatten_range", lambda lib, x: lib.flatten(x, 1, 2), shapes=[[(2, 3, 4, 2)]], dtypes=F),
    OpCase("unflatten", lambda lib, x: x.unflatten(1, (2, -1)), shapes=[[(3, 6)]], dtypes=VIEW_DTYPES),
    OpCase("diagonal", lambda lib, x: x.diagonal(), shapes=[[(3, 4)], [(4, 3)], [(0, 3)]], dtypes=VIEW_DTYPES),
    OpCase("diagonal_offset", lambda lib, x: lib.diagonal(x, 1, 0, 2), shapes=[[(3, 2, 4)]], dtypes=F),
    OpCase("diagonal_neg", lambda lib, x: x.diagonal(-1, -1, -2), shapes=[[(2, 3, 4)], [(2, 2)]], dtypes=F),
    OpCase("split_int", lambda lib, x: x.split(2, 1), shapes=[[(3, 5)]], dtypes=VIEW_DTYPES),
    OpCase("split_sizes", lambda lib, x: lib.split(x, [1, 3, 1], 1), shapes=[[(2, 5)]], dtypes=F),
    OpCase("chunk", lambda lib, x: x.chunk(3, 0), shapes=[[(7, 2)], [(2, 2)]], dtypes=VIEW_DTYPES),
    OpCase("unbind", lambda lib, x: x.unbind(1), shapes=[[(2, 3)], [(4, 1)]], dtypes=VIEW_DTYPES),
    OpCase("unbind_1d", lambda lib, x: x.unbind(0), shapes=[[(3,)]], dtypes=F, grad=False),
    OpCase("movedim", lambda lib, x: lib.movedim(x, (0, 1), (2, 0)), shapes=[[(2, 3, 4)]], dtypes=VIEW_DTYPES),
    OpCase("movedim_int", lambda lib, x: x.movedim(-1, 0), shapes=[[(2, 3, 4)]], dtypes=F),
    OpCase("as_strided", lambda lib, x: lib.as_strided(x, (2, 3), (1, 2)), shapes=[[(6,)], [(2, 3)]],
           dtypes=VIEW_DTYPES, noncontiguous=False),
    OpCase("as_strided_overlap", _as_strided_window, shapes=[[(12,)]], dtypes=F, noncontiguous=False),
    OpCase("chain", lambda lib, x: x.transpose(0, 1)[1:].reshape(-1).unsqueeze(0).expand(2, -1) * 2,
           shapes=[[(3, 4)]], dtypes=F),
]


test_matches_torch, test_gradcheck = op_tests(CASES)


def _base():
    return ember.from_numpy(np.arange(24, dtype=np.float32).reshape(2, 3, 4))


VIEW_FNS = {
    "view": lambda x: x.view(6, 4),
    "reshape": lambda x: x.reshape(4, 6),
    "permute": lambda x: x.permute(2, 0, 1),
    "transpose": lambda x: x.transpose(0, 2),
    "T": lambda x: x.T,
    "mT": lambda x: x.mT,
    "expand": lambda x: x[:, :1].expand(2, 5, 4),
    "narrow": lambda x: x.narrow(2, 1, 2),
    "slice": lambda x: x[:, 1:, ::2],
    "select": lambda x: x.select(1, 2),
    "squeeze": lambda x: x[:, :1].squeeze(1),
    "unsqueeze": lambda x: x.unsqueeze(1),
    "flatten": lambda x: x.flatten(1),
    "unflatten": lambda x: x.unflatten(2, (2, 2)),
    "diagonal": lambda x: x.diagonal(0, 1, 2),
    "split": lambda x: x.split(2, 2)[1],
    "chunk": lambda x: x.chunk(3, 1)[2],
    "unbind": lambda x: x.unbind(0)[1],
    "movedim": lambda x: x.movedim(0, 2),
    "as_strided": lambda x: ember.as_strided(x, (3, 3), (4, 1), 2),
    "getitem": lambda x: x[1, None, ..., 1:3],
}


@pytest.mark.parametrize("name", list(VIEW_FNS))
def test_view_shares_storage(name):
    x = _base()
    t = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    v = VIEW_FNS[name](x)
    tv = {"as_strided": lambda t: t.as_strided((3, 3), (4, 1), 2)}.get(name, VIEW_FNS[name])(t)
    assert v._storage_ptr() == x._storage_ptr()
    assert v.storage_offset() == tv.storage_offset()
    assert tuple(v.stride()) == tuple(tv.stride())
    assert v.data_ptr() == x._storage_ptr() + 4 * v.storage_offset()
    assert v._is_view()
    # A write through the view is visible in the base.
    before = x.numpy().copy()
    v.fill_(-7.0)
    tv.fill_(-7.0)
    assert not np.array_equal(before, x.numpy())
    np.testing.assert_array_equal(x.numpy(), t.numpy())


def test_reshape_copies_only_when_needed():
    x = _base()
    assert x.reshape(6, 4)._storage_ptr() == x._storage_ptr()
    xt = x.transpose(0, 1)
    r = xt.reshape(-1)
    assert r._storage_ptr() != x._storage_ptr()
    np.testing.assert_array_equal(r.numpy(), np.arange(24).reshape(2, 3, 4).transpose(1, 0, 2).reshape(-1))
    assert not r._is_view() and x.reshape(6, 4)._is_view()


def test_view_of_noncontiguous_when_compatible():
    x = _base().permute(1, 0, 2)  # [3, 2, 4]; last dim still contiguous
    v = x.view(3, 2, 2, 2)
    assert v._storage_ptr() == x._storage_ptr()
    t = torch.arange(24.0).reshape(2, 3, 4).permute(1, 0, 2)
    assert tuple(v.stride()) == tuple(t.view(3, 2, 2, 2).stride())


def test_view_grad_flows_to_base():
    x = ember.from_numpy(np.arange(6.0)).requires_grad_()
    y = x.view(2, 3).t()[1]
    (y * y).sum().backward()
    expected = np.zeros(6)
    expected[[1, 4]] = 2 * np.array([1.0, 4.0])
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_double_backward_through_slice():
    # With create_graph the slice backward takes its differentiable (index_add) path.
    x = ember.from_numpy(np.array([1.0, 2.0, 3.0])).requires_grad_()
    y = (x[1:] * x[1:] * x[1:]).sum()
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    np.testing.assert_allclose(g.detach().numpy(), [0.0, 12.0, 27.0])


DOUBLE_BACKWARD_VIEWS = {
    "diagonal": lambda x: x.diagonal(),
    "diagonal_offset": lambda x: x.diagonal(1, 0, 2),
    "diagonal_neg": lambda x: x.diagonal(-1, 2, 0),
    "diagonal_last": lambda x: x.diagonal(2, 1, 2),
    "select": lambda x: x.select(1, 2),
    "slice": lambda x: x[:, 1:4:2],
    "chain": lambda x: x.transpose(0, 2)[1].unsqueeze(0).expand(2, -1, -1),
}


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")
@pytest.mark.parametrize("name", list(DOUBLE_BACKWARD_VIEWS))
def test_double_backward_through_views(name):
    a = rng_for_test().standard_normal((3, 4, 5))
    results = []
    for lib in (ember, torch):
        x = (ember.from_numpy(a.copy()) if lib is ember else torch.from_numpy(a.copy())).requires_grad_()
        d = DOUBLE_BACKWARD_VIEWS[name](x)
        (d * d * d).sum().backward(create_graph=True)
        g = x.grad
        assert g.requires_grad
        x.grad = None
        (g * g).sum().backward()  # d/dx sum((3 x^2)^2) on the diagonal = 36 x^3
        results.append((g.detach().numpy(), x.grad.detach().numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1])


ERRORS = [
    (lambda x: x.view(5, 5), RuntimeError, r"\[view\] shape '\[5, 5\]' is invalid for input of size 12"),
    (lambda x: x.t().view(-1), RuntimeError, r"view size is not compatible with input tensor's size and stride"),
    (lambda x: x.view(-1, -1), RuntimeError, r"only one dimension can be inferred"),
    (lambda x: x.reshape(5, -1), RuntimeError, r"\[reshape\] shape '\[5, -1\]' is invalid for input of size 12"),
    (lambda x: x.permute(0, 0), RuntimeError, r"repeated dim"),
    (lambda x: x.permute(0), RuntimeError, r"number of dims don't match"),
    (lambda x: x.transpose(0, 2), IndexError, r"dimension out of range"),
    (lambda x: x.expand(3, 5), RuntimeError, r"expanded size of the tensor \(5\) must match the existing size \(4\)"),
    (lambda x: x.expand(4), RuntimeError, r"number of sizes provided"),
    (lambda x: x.narrow(1, 3, 2), RuntimeError, r"start \(3\) \+ length \(2\) exceeds dimension size \(4\)"),
    (lambda x: x.select(0, 3), IndexError, r"index 3 is out of bounds for dimension 0 with size 3"),
    (lambda x: x.unsqueeze(3), IndexError, r"\[unsqueeze\] dimension out of range"),
    (lambda x: x.split([1, 1], 0), RuntimeError, r"split_sizes to sum exactly to 3"),
    (lambda x: x.chunk(0), RuntimeError, r"chunk expects `chunks` to be greater than 0"),
    (lambda x: x.diagonal(0, 1, 1), RuntimeError, r"diagonal dimensions cannot be identical"),
    (lambda x: x.t().t().T.mT.flatten(1, 0), RuntimeError, r"start_dim \(1\) cannot come after end_dim \(0\)"),
    (lambda x: ember.as_strided(x, (4, 4), (4, 1)), RuntimeError, r"\[as_strided\].*out of bounds for storage"),
    (lambda x: ember.as_strided(x, (2,), (1, 1)), RuntimeError, r"mismatch in length of strides and shape"),
    (lambda x: x[0].mT, RuntimeError, r"only supported on matrices"),
]


@pytest.mark.parametrize("fn,exc,pattern", ERRORS)
def test_errors(fn, exc, pattern):
    x = ember.from_numpy(np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(exc, match=pattern):
        fn(x)
