"""Scans (cumprod, cummax, cummin, logcumsumexp) and binary search (searchsorted, bucketize) vs torch:
values, index semantics on ties and NaNs, dtypes, gradients incl. cumprod through zeros and its double
backward, and torch's errors."""
import numpy as np
import pytest
import torch

import ember
from optest import FLOAT_DTYPES, INT_DTYPES, OpCase, op_tests, to_ember, to_torch

SHAPES = [[(3, 4)], [()], [(0, 3)], [(2, 3, 4)], [(1,)]]


def with_zeros(rng, shapes, dtype):
    """Values in +-[0.5, 1.5] with ~30% exact zeros (cumprod's backward special case)."""
    out = []
    for s in shapes:
        a = rng.uniform(0.5, 1.5, size=s) * rng.choice([-1, 1], size=s)
        a[rng.random(s) < 0.3] = 0.0
        out.append(np.asarray(a).astype("float32" if dtype == "bfloat16" else dtype))
    return out


def ties(rng, shapes, dtype):
    return [rng.integers(-2, 3, size=s).astype("float32" if dtype == "bfloat16" else dtype) for s in shapes]


def nans_and_infs(rng, shapes, dtype):
    a = rng.uniform(-3, 3, size=shapes[0])
    flat = a.reshape(-1)
    flat[rng.random(flat.size) < 0.2] = np.nan
    flat[rng.random(flat.size) < 0.1] = np.inf
    flat[rng.random(flat.size) < 0.1] = -np.inf
    return [a.astype(dtype)]


def sorted_and_values(rng, shapes, dtype):
    """A sorted sequence (rows sorted along the last dim, with repeats) and values drawn near it."""
    seq = np.sort(rng.integers(-5, 6, size=shapes[0]), axis=-1)
    vals = rng.integers(-6, 7, size=shapes[1])
    cast = (lambda a: a.astype("float32" if dtype == "bfloat16" else dtype))
    if dtype in FLOAT_DTYPES:
        vals = vals + rng.choice([0.0, 0.5], size=shapes[1])
    return [cast(seq), cast(vals)]


CASES = [
    OpCase("cumprod", lambda lib, x: (lib.cumprod(x, 0), x.cumprod(-1)), SHAPES, FLOAT_DTYPES + ["int64", "int32"],
           low=0.5, high=1.5),
    OpCase("cumprod_signs", lambda lib, x: lib.cumprod(x, 1), [[(3, 5)], [(2, 4, 3)]], ["float32", "float64"],
           low=-1.5, high=1.5),
    OpCase("cumprod_zeros", lambda lib, x: (lib.cumprod(x, -1), lib.cumprod(x, 0)), [[(4, 6)], [(3, 5)], [(6,)]],
           ["float32", "float64"], make_inputs=with_zeros),
    OpCase("cumprod_dtype", lambda lib, x: lib.cumprod(x, 0, dtype=lib.float64), [[(3, 4)]], ["float32", "int32", "bool"],
           grad=False, low=-2, high=2),
    OpCase("cumprod_int_promotes", lambda lib, x: lib.cumprod(x, 1), [[(3, 4)]], ["uint8", "int8", "bool"], low=0,
           high=3),
    OpCase("cummax", lambda lib, x: tuple(lib.cummax(x, 0)) + tuple(x.cummax(-1)), SHAPES,
           FLOAT_DTYPES + INT_DTYPES + ["bool"]),
    OpCase("cummin", lambda lib, x: tuple(lib.cummin(x, -1)) + tuple(x.cummin(0)), SHAPES, FLOAT_DTYPES + INT_DTYPES),
    OpCase("cummax_ties", lambda lib, x: (*lib.cummax(x, 1), *lib.cummin(x, 1)), [[(4, 7)], [(2, 5, 3)]],
           ["float32", "float64"], make_inputs=ties, gradcheck=False),
    OpCase("cummax_nan", lambda lib, x: (*lib.cummax(x, 0), *lib.cummin(x, 0)), [[(12,)], [(8, 3)]],
           ["float32", "float64"], make_inputs=nans_and_infs, grad=False),
    OpCase("logcumsumexp", lambda lib, x: (lib.logcumsumexp(x, 0), x.logcumsumexp(-1)), SHAPES, FLOAT_DTYPES),
    OpCase("logcumsumexp_wide", lambda lib, x: lib.logcumsumexp(x, -1), [[(3, 50)]], ["float32", "float64"],
           low=-200, high=200, gradcheck=False),
    OpCase("logcumsumexp_inf", lambda lib, x: lib.logcumsumexp(x, 0), [[(12,)], [(6, 2)]], ["float32", "float64"],
           make_inputs=nans_and_infs, grad=False),
    OpCase("searchsorted", lambda lib, s, v: (lib.searchsorted(s, v), lib.searchsorted(s, v, right=True),
                                              lib.searchsorted(s, v, side="right", out_int32=True)),
           [[(7,), (3, 4)], [(2, 6), (2, 5)], [(1,), ()], [(5,), (0,)], [(0,), (3,)], [(2, 3, 4), (2, 3, 2)]],
           ["float32", "float64", "int64", "int32", "float16", "bfloat16", "uint8"], grad=False,
           make_inputs=sorted_and_values),
    OpCase("searchsorted_sorter", lambda lib, s, v: lib.searchsorted(s, v, sorter=lib.argsort(s, dim=-1)),
           [[(8,), (5,)], [(3, 6), (3, 4)]], ["float32", "int64"], grad=False),
    OpCase("searchsorted_mixed_dtypes", lambda lib, s, v: (lib.searchsorted(s, v.double()),
                                                           lib.searchsorted(s.long(), v), lib.searchsorted(s, 2),
                                                           lib.searchsorted(s, 2.5)),
           [[(7,), (4,)]], ["float32", "int32"], grad=False, make_inputs=sorted_and_values),
    OpCase("bucketize", lambda lib, v, b: (lib.bucketize(v, b), lib.bucketize(v, b, right=True, out_int32=True),
                                           lib.bucketize(1.5, b)),
           [[(3, 4), (6,)], [(), (3,)], [(5,), (0,)]], ["float32", "int64"], grad=False,
           make_inputs=lambda rng, s, d: sorted_and_values(rng, s[::-1], d)[::-1]),
    OpCase("searchsorted_errors", lambda lib, s, v: lib.searchsorted(s, v), [[(2, 3), (3,)], [(2, 3), (3, 3)], [(), (2,)]],
           ["float32"], grad=False),
    OpCase("searchsorted_bool", lambda lib, s, v: lib.searchsorted(s, v), [[(3,), (2,)]], ["bool"], grad=False),
    OpCase("logcumsumexp_int", lambda lib, x: lib.logcumsumexp(x, 0), [[(3,)]], ["int64"], grad=False),
]

test_matches_torch, test_gradcheck = op_tests(CASES)


@pytest.mark.parametrize("dtype", ["float64"])
def test_cumprod_double_backward_through_zeros(dtype):
    rng = np.random.default_rng(5)
    for a in [with_zeros(rng, [(5,)], dtype)[0], np.array([2.0, 0.0, 3.0, 0.0, 1.5]), rng.uniform(0.5, 1.5, (2, 4))]:
        w = rng.uniform(-1, 1, size=a.shape)
        grads = []
        for lib in (torch, ember):
            x = (to_torch(a, dtype) if lib is torch else to_ember(a, dtype)).requires_grad_(True)
            wt = to_torch(w, dtype) if lib is torch else to_ember(w, dtype)
            (g,) = lib.autograd.grad((lib.cumprod(x, -1) * wt).sum(), [x], create_graph=True)
            (gg,) = lib.autograd.grad((g * g).sum(), [x])
            grads.append((g.detach().numpy(), gg.numpy()))
        np.testing.assert_allclose(grads[1][0], grads[0][0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grads[1][1], grads[0][1], rtol=1e-10, atol=1e-12)


def test_searchsorted_argument_errors():
    s = ember.tensor([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match=r"\[searchsorted\] side can only be 'left' or 'right' but got lft"):
        ember.searchsorted(s, ember.tensor([1.0]), side="lft")
    with pytest.raises(RuntimeError, match=r"side and right can't be set to opposites"):
        ember.searchsorted(s, ember.tensor([1.0]), side="left", right=True)
    with pytest.raises(RuntimeError, match=r"sorter must be a tensor of long dtype"):
        ember.searchsorted(s, ember.tensor([1.0]), sorter=ember.tensor([0, 1, 2], dtype=ember.int32))
    with pytest.raises(RuntimeError, match=r"sorter index out of range"):
        ember.searchsorted(s, ember.tensor([1.0]), sorter=ember.tensor([0, 1, 3]))
    with pytest.raises(RuntimeError, match=r"boundary and sorter must have the same size"):
        ember.searchsorted(s, ember.tensor([1.0]), sorter=ember.tensor([0, 1]))
    with pytest.raises(RuntimeError, match=r"\[bucketize\] boundaries tensor must be 1 dimension"):
        ember.bucketize(ember.tensor([1.0]), ember.ones(2, 2))
