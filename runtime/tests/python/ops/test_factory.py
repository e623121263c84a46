"""Factories vs torch: values, dtype inference, keyword handling and errors."""
import numpy as np
import pytest
import torch

import ember
from optest import devices

DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool"]


def same(e, t):
    """Exact comparison of an ember result with torch's (shape, dtype, values)."""
    assert tuple(e.shape) == tuple(t.shape), f"shape {tuple(e.shape)} != torch {tuple(t.shape)}"
    assert str(e.dtype).replace("ember.", "") == str(t.dtype).replace("torch.", ""), f"{e.dtype} != {t.dtype}"
    ev = e.to(ember.float32).numpy() if e.dtype == ember.bfloat16 else e.numpy()
    tv = t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
    np.testing.assert_array_equal(ev, tv)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", ["zeros", "ones"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_zeros_ones(name, dtype, device):
    for args in [(2, 3), ((2, 3),), ([4],), ([],), ((0, 5),), (1, 2, 3)]:
        e = getattr(ember, name)(*args, dtype=getattr(ember, dtype), device=device).cpu()
        t = getattr(torch, name)(*args, dtype=getattr(torch, dtype))
        same(e, t)


def test_default_dtype_and_size_keyword():
    assert ember.zeros(2).dtype == ember.float32
    assert tuple(ember.ones(size=(3, 1)).shape) == (3, 1)
    assert ember.zeros([]).dim() == 0
    assert ember.empty(2, 3).shape == (2, 3)
    assert ember.empty(0).numel() == 0


@pytest.mark.parametrize("value,dtype", [(3, None), (2.5, None), (True, None), (7, "float64"), (-1.5, "float16"),
                                         (3, "int8"), (0.5, "bfloat16"), (1, "bool")])
def test_full(value, dtype):
    kw_e = {} if dtype is None else {"dtype": getattr(ember, dtype)}
    kw_t = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    same(ember.full((2, 3), value, **kw_e), torch.full((2, 3), value, **kw_t))
    same(ember.full([], value, **kw_e), torch.full([], value, **kw_t))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bfloat16"])
def test_like_functions_keep_dtype_and_allow_override(dtype):
    x = ember.ones(2, 3, dtype=getattr(ember, dtype))
    for name in ["zeros_like", "ones_like", "empty_like"]:
        y = getattr(ember, name)(x)
        assert y.dtype == x.dtype and y.shape == x.shape and y.device == x.device
        z = getattr(ember, name)(x, dtype=ember.float64)
        assert z.dtype == ember.float64
    same(ember.zeros_like(x), torch.zeros(2, 3, dtype=getattr(torch, dtype)))
    same(ember.ones_like(x), torch.ones(2, 3, dtype=getattr(torch, dtype)))
    same(ember.full_like(x, 4), torch.full((2, 3), 4, dtype=getattr(torch, dtype)))
    same(ember.full_like(x, 2.0, dtype=ember.float16), torch.full((2, 3), 2.0, dtype=torch.float16))


def test_new_methods():
    x = ember.ones(2, dtype=ember.float64)
    same(x.new_zeros(3, 2), torch.zeros(3, 2, dtype=torch.float64))
    same(x.new_ones((1, 4)), torch.ones(1, 4, dtype=torch.float64))
    same(x.new_full((2,), 7), torch.full((2,), 7, dtype=torch.float64))
    assert x.new_empty(5).dtype == ember.float64


def test_empty_strided_geometry():
    e = ember.empty_strided((2, 3), (1, 2), dtype=ember.float64)
    t = torch.empty_strided((2, 3), (1, 2), dtype=torch.float64)
    assert tuple(e.shape) == tuple(t.shape) and tuple(e.stride()) == t.stride() and e.dtype == ember.float64


def test_scalar_tensor():
    same(ember.scalar_tensor(3), torch.scalar_tensor(3))
    same(ember.scalar_tensor(2.5, dtype=ember.float64), torch.scalar_tensor(2.5, dtype=torch.float64))


def test_requires_grad_kwarg():
    for fn in [lambda: ember.zeros(2, requires_grad=True), lambda: ember.ones((2,), requires_grad=True),
               lambda: ember.full((2,), 1.0, requires_grad=True), lambda: ember.arange(0.0, 3.0, requires_grad=True),
               lambda: ember.linspace(0, 1, 4, requires_grad=True), lambda: ember.eye(2, requires_grad=True),
               lambda: ember.zeros_like(ember.ones(3), requires_grad=True)]:
        t = fn()
        assert t.requires_grad and t.is_leaf
    assert not ember.zeros(2).requires_grad
    with pytest.raises((RuntimeError, ValueError)):
        ember.zeros(2, dtype=ember.int64, requires_grad=True)


ARANGE_ARGS = [(5,), (1, 5), (0, 1, 0.1), (10, 0, -3), (0, 10, 3), (-2.5, 2.5, 0.5), (1, 2.5), (0,), (3, 3),
               (0.0, 1.0, 0.3), (5, 1, -1.5), (0, 1e-3, 1e-4)]


@pytest.mark.parametrize("args", ARANGE_ARGS)
def test_arange_matches_torch(args):
    e, t = ember.arange(*args), torch.arange(*args)
    assert tuple(e.shape) == tuple(t.shape), f"arange{args}: length {e.shape} != torch {t.shape}"
    assert str(e.dtype).replace("ember.", "") == str(t.dtype).replace("torch.", "")
    np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16", "int32", "int8", "uint8"])
def test_arange_dtype(dtype):
    e = ember.arange(0, 20, 2, dtype=getattr(ember, dtype))
    t = torch.arange(0, 20, 2, dtype=getattr(torch, dtype))
    same(e, t)
    same(ember.arange(end=4, dtype=getattr(ember, dtype)), torch.arange(end=4, dtype=getattr(torch, dtype)))


@pytest.mark.parametrize("start,end,steps", [(0, 1, 5), (-3, 7, 11), (2, 2, 3), (0, 1, 1), (0, 1, 0), (5, -5, 7),
                                             (0.0, 1.0, 100)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_linspace(start, end, steps, dtype):
    e = ember.linspace(start, end, steps, dtype=getattr(ember, dtype))
    t = torch.linspace(start, end, steps, dtype=getattr(torch, dtype))
    assert tuple(e.shape) == tuple(t.shape)
    assert str(e.dtype).replace("ember.", "") == str(t.dtype).replace("torch.", "")
    np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-6, atol=1e-6)
    if steps >= 2 and dtype != "int64":  # endpoints are exact
        assert e.numpy()[0] == start and e.numpy()[-1] == end


@pytest.mark.parametrize("n,m", [(3, None), (2, 4), (4, 2), (0, None), (1, 1), (3, 0)])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool", "bfloat16"])
def test_eye(n, m, dtype):
    e = ember.eye(n, dtype=getattr(ember, dtype)) if m is None else ember.eye(n, m, dtype=getattr(ember, dtype))
    t = torch.eye(n, dtype=getattr(torch, dtype)) if m is None else torch.eye(n, m, dtype=getattr(torch, dtype))
    same(e, t)


def test_factory_errors():
    with pytest.raises((RuntimeError, ValueError), match=r"negative"):
        ember.zeros(2, -1)
    with pytest.raises(RuntimeError, match=r"\[arange\].*step must be nonzero"):
        ember.arange(0, 10, 0)
    with pytest.raises(RuntimeError, match=r"\[arange\].*inconsistent with step sign"):
        ember.arange(0, 10, -1)
    with pytest.raises(RuntimeError, match=r"\[arange\].*inconsistent with step sign"):
        ember.arange(5, 1)
    with pytest.raises(RuntimeError, match=r"\[linspace\].*non-negative.*-1"):
        ember.linspace(0, 1, -1)
    with pytest.raises(RuntimeError, match=r"\[eye\].*-2"):
        ember.eye(-2)
    with pytest.raises(RuntimeError, match=r"\[eye\].*m must be"):
        ember.eye(2, -1)
    with pytest.raises(TypeError):
        ember.zeros(2, 3.5)
