"""Layout ops (cat, stack, flip, roll, repeat, tril, triu) vs torch, plus error messages."""
import numpy as np
import pytest

import ember
from optest import OpCase, op_tests

ALL = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool"]
F = ["float32", "float64"]

CASES = [
    OpCase("cat", lambda lib, a, b: lib.cat([a, b], 1), shapes=[[(2, 3), (2, 4)], [(0, 2), (0, 3)]], dtypes=ALL),
    OpCase("cat_dim0", lambda lib, a, b, c: lib.cat((a, b, c)), shapes=[[(1, 3), (2, 3), (0, 3)]], dtypes=F),
    OpCase("cat_neg_dim", lambda lib, a, b: lib.cat([a, b], -1), shapes=[[(2, 2, 1), (2, 2, 3)]], dtypes=F),
    OpCase("cat_skip_legacy_empty", lambda lib, a, b: lib.cat([a, b], 1), shapes=[[(2, 3), (0,)]], dtypes=F),
    OpCase("cat_promote", lambda lib, a, b: lib.cat([a, b]), shapes=[[(2,), (3,)]], dtypes=["float32"],
           input_dtypes=["float32", "int64"], grad_inputs=[0], gradcheck=False),
    OpCase("cat_promote_half", lambda lib, a, b: lib.cat([a, b]), shapes=[[(2,), (3,)]], dtypes=["float16"],
           input_dtypes=["float16", "float64"]),
    OpCase("stack", lambda lib, a, b: lib.stack([a, b]), shapes=[[(2, 3), (2, 3)], [(), ()], [(0,), (0,)]], dtypes=ALL),
    OpCase("stack_last", lambda lib, a, b: lib.stack([a, b], -1), shapes=[[(2, 3), (2, 3)]], dtypes=F),
    OpCase("flip", lambda lib, x: lib.flip(x, [0, 2]), shapes=[[(2, 3, 4)], [(0, 1, 2)]], dtypes=ALL),
    OpCase("flip_method", lambda lib, x: x.flip(-1), shapes=[[(3, 4)], [(5,)]], dtypes=F),
    OpCase("roll", lambda lib, x: lib.roll(x, 2, 1), shapes=[[(3, 4)], [(2, 0)]], dtypes=ALL),
    OpCase("roll_multi", lambda lib, x: lib.roll(x, (-1, 5), (0, 1)), shapes=[[(3, 4)], [(2, 3, 2)]], dtypes=F),
    OpCase("roll_repeated_dim", lambda lib, x: lib.roll(x, (1, 2, -1), (0, 0, -1)), shapes=[[(3, 4)], [(4, 2, 5)]],
           dtypes=F),
    OpCase("roll_flat", lambda lib, x: lib.roll(x, 3), shapes=[[(3, 4)], [(5,)]], dtypes=F),
    OpCase("repeat", lambda lib, x: x.repeat(2, 3), shapes=[[(2, 3)], [(3,)], [()], [(0, 2)]], dtypes=ALL),
    OpCase("repeat_lead", lambda lib, x: x.repeat(2, 1, 2), shapes=[[(3, 2)]], dtypes=F),
    OpCase("tril", lambda lib, x: lib.tril(x), shapes=[[(3, 4)], [(2, 4, 3)], [(0, 3)]], dtypes=ALL),
    OpCase("tril_k", lambda lib, x: x.tril(-1), shapes=[[(4, 4)]], dtypes=F),
    OpCase("triu", lambda lib, x: lib.triu(x, 1), shapes=[[(3, 4)], [(2, 4, 3)]], dtypes=ALL),
    OpCase("triu_neg", lambda lib, x: x.triu(-2), shapes=[[(4, 3)]], dtypes=F),
]


test_matches_torch, test_gradcheck = op_tests(CASES)


def test_cat_all_legacy_empty():
    out = ember.cat([ember.from_numpy(np.zeros(0, np.float32)), ember.from_numpy(np.zeros(0, np.float32))])
    assert tuple(out.shape) == (0,)


def _t(*shape):
    return ember.from_numpy(np.zeros(shape, dtype=np.float32))


ERRORS = [
    (lambda: ember.cat([_t(2, 3), _t(3, 4)], 1), RuntimeError,
     r"\[cat\] Sizes of tensors must match except in dimension 1. Expected size 2 but got size 3 for tensor number 1"),
    (lambda: ember.cat([_t(2, 3), _t(2, 3, 1)]), RuntimeError, r"\[cat\] Tensors must have same number of dimensions"),
    (lambda: ember.cat([_t(), _t()]), RuntimeError, r"zero-dimensional tensor \(at position 0\) cannot be concatenated"),
    (lambda: ember.cat([]), RuntimeError, r"expected a non-empty list of Tensors"),
    (lambda: ember.cat([_t(2), _t(2)], 1), IndexError, r"\[cat\] dimension out of range"),
    (lambda: ember.stack([_t(2, 3), _t(2, 4)]), RuntimeError,
     r"stack expects each tensor to be equal size, but got \[2, 3\] at entry 0 and \[2, 4\] at entry 1"),
    (lambda: ember.flip(_t(2, 3), [0, 0]), RuntimeError, r"dim 0 appears multiple times"),
    (lambda: ember.roll(_t(2, 3), (1, 2), (0,)), RuntimeError, r"shifts and dimensions must align"),
    (lambda: _t(2, 3).repeat(2), RuntimeError, r"Number of dimensions of repeat dims"),
    (lambda: ember.tril(_t(3)), RuntimeError, r"\[tril\].*at least 2 dimensions"),
]


@pytest.mark.parametrize("fn,exc,pattern", ERRORS)
def test_errors(fn, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fn()
