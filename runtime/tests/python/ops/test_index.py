"""Indexing ops (gather/scatter, index_select/index_add, masked ops, embedding, one_hot, index_put,
nonzero, take_along_dim) vs torch, plus index validation errors."""
import numpy as np
import pytest
import torch

import ember
from optest import OpCase, op_tests, random_array

ALL = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool"]
NUMERIC = ["float32", "float64", "bfloat16", "int64", "int32", "uint8"]
F = ["float32", "float64"]


def data(rng, shape, dtype):
    return random_array(rng, shape, dtype)


def with_index(index_fn, extra=()):
    """make_inputs: x of the case dtype, then int64 indices from index_fn(rng, shapes), then extras."""
    def make(rng, shapes, dtype):
        out = [data(rng, shapes[0], dtype), index_fn(rng, shapes).astype(np.int64)]
        for k, kind in enumerate(extra):
            shape = shapes[2 + k]
            out.append(rng.random(shape) < 0.5 if kind == "bool" else data(rng, shape, dtype))
        return out
    return make


def randint_for(bound_dim, index_shape_pos=1):
    return lambda rng, shapes: rng.integers(0, shapes[0][bound_dim] if shapes[0] else 1, size=shapes[index_shape_pos])


def unique_rows(dim_size, index_shape_pos=1):
    # Scatter without duplicate targets along dim 0 (torch leaves duplicates unspecified).
    def fn(rng, shapes):
        shape = shapes[index_shape_pos]
        cols = [rng.permutation(dim_size)[: shape[0]] for _ in range(int(np.prod(shape[1:])))]
        return np.stack(cols, axis=-1).reshape(shape) if cols else np.zeros(shape)
    return fn


def masks(rng, shapes, dtype):
    return [data(rng, shapes[0], dtype), rng.random(shapes[1]) < 0.5]


def sparse(rng, shapes, dtype):
    a = data(rng, shapes[0], dtype)
    return [np.where(rng.random(shapes[0]) < 0.5, a, np.zeros_like(a))]


def one_hot(lib):
    return lib.one_hot if lib is ember else torch.nn.functional.one_hot


CASES = [
    OpCase("gather", lambda lib, x, i: lib.gather(x, 1, i), shapes=[[(3, 4), (3, 5)], [(3, 4), (2, 2)], [(3, 4), (0, 4)]],
           dtypes=ALL, make_inputs=with_index(randint_for(1)), input_dtypes=[None, "int64"]),
    OpCase("gather_dim0", lambda lib, x, i: x.gather(0, i), shapes=[[(4, 3), (6, 3)]], dtypes=F,
           make_inputs=with_index(randint_for(0)), input_dtypes=[None, "int64"]),
    OpCase("scatter", lambda lib, x, i, s: lib.scatter(x, 0, i, s), shapes=[[(5, 3), (3, 3), (3, 3)], [(5, 3), (0, 3), (0, 3)]],
           dtypes=ALL, make_inputs=with_index(unique_rows(5), extra=("x",)), input_dtypes=[None, "int64", None]),
    OpCase("scatter_value", lambda lib, x, i: x.scatter(0, i, value=1.5 if x.dtype.is_floating_point else 2),
           shapes=[[(5, 3), (2, 3)]], dtypes=ALL, make_inputs=with_index(unique_rows(5)), input_dtypes=[None, "int64"]),
    OpCase("scatter_larger_src", lambda lib, x, i, s: lib.scatter(x, 0, i, s), shapes=[[(5, 3), (3, 2), (4, 3)]],
           dtypes=F, make_inputs=with_index(unique_rows(5), extra=("x",)), input_dtypes=[None, "int64", None], grad=False),
    OpCase("scatter_add", lambda lib, x, i, s: lib.scatter_add(x, 0, i, s), shapes=[[(4, 3), (6, 3), (6, 3)], [(4, 3), (2, 2), (2, 2)]],
           dtypes=NUMERIC, make_inputs=with_index(randint_for(0), extra=("x",)), input_dtypes=[None, "int64", None]),
    OpCase("take_along_dim", lambda lib, x, i: lib.take_along_dim(x, i, 1), shapes=[[(3, 4), (3, 2)], [(3, 4), (1, 6)]],
           dtypes=F, make_inputs=with_index(randint_for(1)), input_dtypes=[None, "int64"]),
    OpCase("take_along_dim_flat", lambda lib, x, i: lib.take_along_dim(x, i), shapes=[[(3, 4), (5,)]],
           dtypes=F, make_inputs=with_index(lambda rng, s: rng.integers(0, 12, size=s[1]))),
    OpCase("index_select", lambda lib, x, i: lib.index_select(x, 0, i), shapes=[[(4, 3), (6,)], [(4, 3), (0,)], [(4,), ()]],
           dtypes=ALL, make_inputs=with_index(randint_for(0)), input_dtypes=[None, "int64"]),
    OpCase("index_select_dim1", lambda lib, x, i: x.index_select(-1, i), shapes=[[(2, 5, 3), (4,)]], dtypes=F,
           make_inputs=with_index(lambda rng, s: rng.integers(0, 3, size=s[1]))),
    OpCase("index_add", lambda lib, x, i, s: lib.index_add(x, 0, i, s, alpha=2), shapes=[[(4, 3), (6,), (6, 3)]],
           dtypes=NUMERIC, make_inputs=with_index(randint_for(0), extra=("x",)), input_dtypes=[None, "int64", None]),
    OpCase("index_add_dim1", lambda lib, x, i, s: x.index_add(1, i, s), shapes=[[(2, 4), (3,), (2, 3)], [(2, 4), (0,), (2, 0)]],
           dtypes=F, make_inputs=with_index(randint_for(1), extra=("x",)), input_dtypes=[None, "int64", None]),
    OpCase("masked_fill", lambda lib, x, m: lib.masked_fill(x, m, 2), shapes=[[(3, 4), (3, 4)], [(3, 4), (4,)], [(), ()], [(0, 2), (2,)]],
           dtypes=ALL, make_inputs=masks, input_dtypes=[None, "bool"]),
    OpCase("masked_fill_float", lambda lib, x, m: x.masked_fill(m, -0.5), shapes=[[(3, 4), (3, 1)]], dtypes=F + ["float16"],
           make_inputs=masks, input_dtypes=[None, "bool"]),
    OpCase("masked_fill_tensor", lambda lib, x, m: x.masked_fill(m, lib.ones(()) * 3), shapes=[[(3, 4), (3, 4)]],
           dtypes=F, make_inputs=masks, input_dtypes=[None, "bool"]),
    OpCase("masked_fill_broadcast_self", lambda lib, x, m: lib.masked_fill(x, m, 1.0), shapes=[[(4,), (3, 4)]],
           dtypes=F, make_inputs=masks, input_dtypes=[None, "bool"]),
    OpCase("masked_select", lambda lib, x, m: lib.masked_select(x, m), shapes=[[(3, 4), (3, 4)], [(3, 4), (4,)], [(1, 4), (3, 1)], [(0,), (0,)]],
           dtypes=ALL, make_inputs=masks, input_dtypes=[None, "bool"]),
    OpCase("embedding", lambda lib, w, i: lib.embedding(w, i), shapes=[[(5, 3), (2, 4)], [(5, 3), (0,)], [(5, 3), ()]],
           dtypes=F + ["bfloat16"], make_inputs=with_index(randint_for(0)), input_dtypes=[None, "int64"]),
    OpCase("one_hot", lambda lib, x, i: one_hot(lib)(i, 5), shapes=[[(5,), (2, 3)], [(5,), (0,)]], dtypes=["int64"],
           make_inputs=with_index(randint_for(0)), grad=False),
    OpCase("one_hot_infer", lambda lib, x, i: one_hot(lib)(i), shapes=[[(4,), (6,)]], dtypes=["int64"],
           make_inputs=with_index(randint_for(0)), grad=False),
    OpCase("index_put", lambda lib, x, i, v: lib.index_put(x, (i,), v), shapes=[[(5, 3), (3,), (3, 3)], [(5, 3), (2,), (3,)]],
           dtypes=ALL, make_inputs=with_index(lambda rng, s: rng.permutation(5)[: s[1][0]], extra=("x",)), input_dtypes=[None, "int64", None]),
    OpCase("index_put_accumulate", lambda lib, x, i, v: lib.index_put(x, (i,), v, accumulate=True),
           shapes=[[(4, 3), (6,), (6, 3)], [(4, 3), (6,), ()]], dtypes=NUMERIC,
           make_inputs=with_index(randint_for(0), extra=("x",)), input_dtypes=[None, "int64", None]),
    OpCase("nonzero", lambda lib, x: lib.nonzero(x), shapes=[[(3, 4)], [(5,)], [()], [(0, 3)], [(2, 2, 3)]],
           dtypes=ALL, make_inputs=sparse, grad=False),
    OpCase("nonzero_tuple", lambda lib, x: x.nonzero(as_tuple=True), shapes=[[(3, 4)], [(4,)]], dtypes=F,
           make_inputs=sparse, grad=False),
    OpCase("where_cond", lambda lib, x: lib.where(x), shapes=[[(3, 4)]], dtypes=["float32", "bool", "int32"],
           make_inputs=sparse, grad=False),
]


test_matches_torch, test_gradcheck = op_tests(CASES)


def test_index_put_accumulate_sums_duplicates():
    x = ember.from_numpy(np.zeros(3))
    out = ember.index_put(x, [ember.from_numpy(np.array([0, 2, 0, 0]))], ember.from_numpy(np.ones(4)), accumulate=True)
    np.testing.assert_array_equal(out.numpy(), [3.0, 0.0, 1.0])


def test_inplace_index_methods_match_torch():
    base = np.arange(6, dtype=np.float32).reshape(2, 3)
    mask = np.array([True, False, True])
    idx = np.array([1, 0])
    for name, ember_args, torch_args in [
            ("masked_fill_", (ember.from_numpy(mask), -1.0), (torch.from_numpy(mask), -1.0)),
            ("index_put_", ((ember.from_numpy(idx),), ember.from_numpy(np.full(3, 7.0, np.float32))),
             ((torch.from_numpy(idx),), torch.from_numpy(np.full(3, 7.0, np.float32))))]:
        e, t = ember.from_numpy(base.copy()), torch.from_numpy(base.copy())
        assert getattr(e, name)(*ember_args)._is_same(e), f"{name} must return self"
        getattr(t, name)(*torch_args)
        np.testing.assert_array_equal(e.numpy(), t.numpy(), err_msg=name)


def test_embedding_backward_accumulates_duplicates():
    w = ember.from_numpy(np.ones((4, 2))).requires_grad_()
    ember.embedding(w, ember.from_numpy(np.array([[1, 1], [3, 1]]))).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [[0, 0], [3, 3], [0, 0], [1, 1]])


def _f(*shape):
    return ember.from_numpy(np.zeros(shape, dtype=np.float32))


def _i(*values):
    return ember.from_numpy(np.array(values, dtype=np.int64))


ERRORS = [
    (lambda: ember.gather(_f(2, 4), 1, ember.from_numpy(np.array([[5]]))), RuntimeError,
     r"\[gather\] index 5 is out of bounds for dimension 1 with size 4"),
    (lambda: ember.gather(_f(2, 4), 1, ember.from_numpy(np.array([[-1]]))), RuntimeError, r"index -1 is out of bounds"),
    (lambda: ember.gather(_f(2, 4), 1, ember.from_numpy(np.array([[1]], dtype=np.int8))), RuntimeError,
     r"Expected dtype int32/int64 for index"),
    (lambda: ember.gather(_f(2, 4), 1, _i(1)), RuntimeError, r"same number of dimensions"),
    (lambda: ember.scatter(_f(3), 0, _i(3), _f(1)), RuntimeError, r"\[scatter\] index 3 is out of bounds"),
    (lambda: ember.scatter_add(_f(3), 0, _i(0, 1), _f(1)), RuntimeError, r"to be no larger than src"),
    (lambda: ember.index_select(_f(3, 2), 0, _i(0, 3)), IndexError,
     r"\[index_select\] index 3 is out of bounds for dimension 0 with size 3"),
    (lambda: ember.index_select(_f(3, 2), 0, ember.from_numpy(np.zeros((2, 2), np.int64))), IndexError,
     r"Index is supposed to be a vector"),
    (lambda: ember.index_add(_f(3, 2), 0, _i(0, 1), _f(3, 2)), RuntimeError, r"\[index_add\].*does not match"),
    (lambda: ember.index_add(_f(3, 2), 0, _i(0, 7), _f(2, 2)), IndexError, r"index 7 is out of bounds"),
    (lambda: ember.masked_fill(_f(3), ember.from_numpy(np.ones(3, np.uint8)), 1.0), RuntimeError,
     r"only supports boolean masks"),
    (lambda: ember.masked_fill(_f(3), ember.from_numpy(np.ones(2, bool)), 1.0), RuntimeError,
     r"\[masked_fill\] shapes \[3\] and \[2\] are not broadcastable"),
    (lambda: ember.masked_fill(_f(3), ember.from_numpy(np.ones(3, bool)), _f(2)), RuntimeError, r"0-dimensional value"),
    (lambda: ember.embedding(_f(3, 2), _i(0, 3)), IndexError, r"index 3 is out of bounds for dimension 0 with size 3"),
    (lambda: ember.one_hot(_i(0, -1), 3), RuntimeError, r"Class values must be non-negative"),
    (lambda: ember.one_hot(_i(0, 3), 3), RuntimeError, r"Class values must be smaller than num_classes"),
    (lambda: ember.one_hot(ember.from_numpy(np.array([1], np.int32)), 3), RuntimeError, r"LongTensor"),
    (lambda: ember.index_put(_f(3), [_i(5)], _f(1)), IndexError, r"index 5 is out of bounds for dimension 0 with size 3"),
    (lambda: ember.index_put(_f(3, 2), [_i(0, 1)], _f(3, 2)), RuntimeError, r"shape mismatch"),
]


@pytest.mark.parametrize("fn,exc,pattern", ERRORS)
def test_errors(fn, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fn()
