"""Linear algebra vs torch: mm/bmm/addmm/matmul/linear/dot/outer (forward, backward, finite
differences), transposed operands (zero-copy BLAS paths), 0-size dims, dtypes and errors."""
import numpy as np
import pytest
import torch

import ember
from optest import FLOAT_DTYPES, OpCase, op_tests

LOW_TOL = {"float16": (2e-2, 5e-2), "bfloat16": (4e-2, 2e-1), "float32": (1e-4, 1e-4)}

MATMUL_SHAPES = [
    [(2, 3), (3,)], [(3,), (3, 4)], [(2, 3), (3, 4)],
    [(2, 2, 3), (3,)], [(3,), (2, 3, 4)], [(2, 2, 3), (3, 4)], [(2, 3), (2, 3, 4)],
    [(2, 1, 2, 3), (3, 3, 2)], [(1, 2, 3), (4, 3, 2)], [(2, 3, 4), (2, 4, 5)],
    [(0, 3), (3, 4)], [(3, 0), (0, 4)], [(2, 0, 3), (3, 4)], [(2, 3), (3, 0)],
]
# 0-dim results get a trailing dim: optest's upstream gradients can't be 0-dim yet.
VEC_SHAPES = [[(5,), (5,)], [(0,), (0,)], [(1,), (1,)]]

CASES = [
    OpCase("mm", lambda lib, a, b: lib.mm(a, b), shapes=[[(2, 3), (3, 4)], [(1, 5), (5, 1)], [(0, 3), (3, 4)],
                                                         [(3, 0), (0, 4)], [(4, 3), (3, 0)], [(7, 9), (9, 6)]],
           dtypes=FLOAT_DTYPES + ["int64", "int32", "int8", "uint8"], tol=LOW_TOL),
    OpCase("mm.T", lambda lib, a, b: lib.mm(a.T, b), shapes=[[(3, 2), (3, 4)], [(5, 4), (5, 3)]],
           dtypes=["float32", "float64", "float16"], tol=LOW_TOL),
    OpCase("mm.T.T", lambda lib, a, b: lib.mm(a.T, b.T), shapes=[[(3, 2), (4, 3)]],
           dtypes=["float32", "float64", "int64"], tol=LOW_TOL),
    OpCase("method.mm", lambda lib, a, b: a.mm(b) + a @ b, shapes=[[(2, 3), (3, 2)]], dtypes=["float32"]),
    OpCase("bmm", lambda lib, a, b: lib.bmm(a, b), shapes=[[(2, 3, 4), (2, 4, 5)], [(1, 1, 1), (1, 1, 1)],
                                                           [(0, 2, 3), (0, 3, 2)], [(3, 2, 0), (3, 0, 2)]],
           dtypes=FLOAT_DTYPES + ["int64"], tol=LOW_TOL),
    OpCase("bmm.mT", lambda lib, a, b: lib.bmm(a.mT, b), shapes=[[(3, 4, 2), (3, 4, 5)]],
           dtypes=["float32", "float64"], tol=LOW_TOL),
    OpCase("addmm", lambda lib, c, a, b: lib.addmm(c, a, b), shapes=[[(2, 4), (2, 3), (3, 4)], [(4,), (2, 3), (3, 4)],
                                                                   [(1, 4), (2, 3), (3, 4)], [(2, 1), (2, 3), (3, 4)],
                                                                   [(), (2, 3), (3, 4)], [(2, 4), (2, 0), (0, 4)]],
           dtypes=FLOAT_DTYPES + ["int64"], tol=LOW_TOL),
    OpCase("addmm.alpha_beta", lambda lib, c, a, b: lib.addmm(c, a, b, beta=0.5, alpha=-2.0),
           shapes=[[(3, 2), (3, 5), (5, 2)], [(2,), (3, 5), (5, 2)]], dtypes=["float32", "float64"], tol=LOW_TOL),
    OpCase("addmm.beta0", lambda lib, c, a, b: lib.addmm(c, a, b, beta=0), shapes=[[(3, 2), (3, 5), (5, 2)]],
           dtypes=["float32", "float64"]),
    OpCase("matmul", lambda lib, a, b: lib.matmul(a, b), shapes=MATMUL_SHAPES, dtypes=["float32", "float64"],
           tol=LOW_TOL),
    OpCase("matmul.lowp", lambda lib, a, b: a @ b, shapes=[[(2, 3), (3, 4)], [(2, 2, 3), (3,)], [(2, 3, 4), (2, 4, 5)]],
           dtypes=["float16", "bfloat16", "int64"], tol=LOW_TOL),
    OpCase("matmul.mT", lambda lib, a, b: lib.matmul(a, b.mT), shapes=[[(2, 3, 4), (2, 5, 4)], [(3, 4), (2, 5, 4)]],
           dtypes=["float32", "float64"]),
    OpCase("linear", lambda lib, x, w, b: lib.nn.functional.linear(x, w, b) if lib is torch else lib.linear(x, w, b),
           shapes=[[(4, 3), (5, 3), (5,)], [(2, 4, 3), (5, 3), (5,)], [(3,), (5, 3), (5,)], [(0, 3), (2, 3), (2,)],
                   [(2, 0, 3), (5, 3), (5,)], [(2, 4, 3), (5, 3), ()]],
           dtypes=FLOAT_DTYPES, tol=LOW_TOL),
    OpCase("linear.nobias", lambda lib, x, w: lib.nn.functional.linear(x, w) if lib is torch else lib.linear(x, w),
           shapes=[[(4, 3), (5, 3)], [(2, 2, 3), (4, 3)]], dtypes=["float32", "float64"]),
    OpCase("matmul.1d1d", lambda lib, a, b: lib.matmul(a, b).unsqueeze(0), shapes=VEC_SHAPES,
           dtypes=["float32", "float64"]),
    OpCase("dot", lambda lib, a, b: lib.dot(a, b).unsqueeze(0), shapes=VEC_SHAPES,
           dtypes=["float32", "float64", "float16", "int64"], tol=LOW_TOL),
    OpCase("outer", lambda lib, a, b: lib.outer(a, b), shapes=[[(3,), (4,)], [(0,), (2,)], [(1,), (1,)]],
           dtypes=["float32", "float64", "int64"]),
]


test_matches_torch, test_gradcheck = op_tests(CASES)


def test_transposed_operands_are_not_copied_but_correct():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((64, 48)).astype(np.float32), rng.standard_normal((48, 32)).astype(np.float32)
    ea, eb = ember.from_numpy(a.T.copy()).T, ember.from_numpy(b.T.copy()).T  # column-major views
    assert not ea.is_contiguous() and not eb.is_contiguous()
    np.testing.assert_allclose(ember.mm(ea, eb).numpy(), a @ b, rtol=1e-4, atol=1e-4)
    # Expanded (stride-0) and sliced operands need a packed copy and must still be right.
    col = ember.from_numpy(rng.standard_normal((1, 5)).astype(np.float32)).expand(4, 5)
    np.testing.assert_allclose(ember.mm(col, eb[:5, :3]).numpy(), col.numpy() @ eb.numpy()[:5, :3], rtol=1e-4,
                               atol=1e-4)


def test_large_matmul_uses_all_paths():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 70, 130))
    b = rng.standard_normal((130, 90))
    e = ember.matmul(ember.from_numpy(a), ember.from_numpy(b)).numpy()
    np.testing.assert_allclose(e, a @ b, rtol=1e-10, atol=1e-10)


def test_thread_count_follows_ember():
    rng = np.random.default_rng(2)
    a = ember.from_numpy(rng.standard_normal((200, 200)).astype(np.float32))
    old = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        r1 = ember.mm(a, a).numpy()
        ember.set_num_threads(max(2, old))
        r2 = ember.mm(a, a).numpy()
    finally:
        ember.set_num_threads(old)
    np.testing.assert_allclose(r1, r2, rtol=1e-5, atol=1e-4)


def test_rmatmul_and_matmul_autograd_chain():
    x = ember.ones(2, 3, requires_grad=True)
    w = ember.ones(3, 4, requires_grad=True)
    (x @ w).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 4.0, np.float32))
    np.testing.assert_array_equal(w.grad.numpy(), np.full((3, 4), 2.0, np.float32))


def test_errors():
    with pytest.raises(RuntimeError, match=r"\[mm\] mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"):
        ember.mm(ember.ones(2, 3), ember.ones(4, 5))
    with pytest.raises(RuntimeError, match=r"\[mm\].*matrix.*\[3\]"):
        ember.mm(ember.ones(3), ember.ones(3, 2))
    with pytest.raises(RuntimeError, match=r"\[mm\].*float32.*float64"):
        ember.mm(ember.ones(2, 3), ember.ones(3, 2, dtype=ember.float64))
    with pytest.raises(RuntimeError, match=r"\[bmm\].*2x2x3 and 3x3x5"):
        ember.bmm(ember.ones(2, 2, 3), ember.ones(3, 3, 5))
    with pytest.raises(RuntimeError, match=r"\[bmm\].*3D"):
        ember.bmm(ember.ones(2, 3), ember.ones(3, 2))
    with pytest.raises(RuntimeError, match=r"\[matmul\].*\[2, 3\].*\[4, 5\]"):
        ember.matmul(ember.ones(2, 3), ember.ones(4, 5))
    with pytest.raises(RuntimeError, match=r"\[matmul\].*\[2, 2, 3\].*\[3, 4, 5\]|not broadcastable"):
        ember.matmul(ember.ones(2, 2, 3), ember.ones(3, 3, 5))
    with pytest.raises(RuntimeError, match=r"\[matmul\].*at least 1"):
        ember.matmul(ember.ones([]), ember.ones(3))
    with pytest.raises(RuntimeError, match=r"\[dot\].*\[3\].*\[4\]"):
        ember.dot(ember.ones(3), ember.ones(4))
    with pytest.raises(RuntimeError, match=r"\[addmm\].*\[3\].*\[2, 4\]"):
        ember.addmm(ember.ones(3), ember.ones(2, 3), ember.ones(3, 4))
    with pytest.raises(RuntimeError, match=r"\[linear\]"):
        ember.linear(ember.ones(2, 4), ember.ones(5, 3))
    with pytest.raises(TypeError, match=r"\[mm\].*bool"):
        ember.mm(ember.ones(2, 2, dtype=ember.bool), ember.ones(2, 2, dtype=ember.bool))
