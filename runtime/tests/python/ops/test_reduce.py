"""Reductions, scans, softmax and sorting against torch: values, dtypes, gradients, errors."""
import math

import numpy as np
import pytest
import torch

import ember
from optest import ALL_DTYPES, FLOAT_DTYPES, INT_DTYPES, OpCase, op_tests, to_numpy

ND = [[(3, 4)], [()], [(0, 4)], [(3, 0)], [(2, 3, 4)]]  # general shapes (dim-free ops)
MAT = [[(3, 4)], [(0, 4)], [(3, 0)], [(2, 3, 5)]]        # ops taking dim 1 / -1
NUMERIC = FLOAT_DTYPES + INT_DTYPES


def ties(rng, shapes, dtype):
    """Small integers stored as floats: many exact ties (max/min gradients must split evenly)."""
    return [rng.integers(-2, 3, size=s).astype(np.float32 if dtype == "bfloat16" else dtype) for s in shapes]


def with_zeros(rng, shapes, dtype):
    """Values in [0.5, 1.5] with ~25% exact zeros (prod backward's special cases)."""
    out = []
    for s in shapes:
        a = rng.uniform(0.5, 1.5, size=s)
        a[rng.random(s) < 0.25] = 0.0
        out.append(a.astype(np.float32 if dtype == "bfloat16" else dtype))
    return out


def composite_sdpa(lib, q, k, v, is_causal=False, scale=None):
    """torch's SDPA, or ember's composite attention (bmm + scaled_softmax + bmm) on the same inputs."""
    if lib is torch:
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=is_causal, scale=scale)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    return ember.nn.functional._composite_attention(q, k, v, None, 0.0, is_causal, scale)


def distinct(rng, shapes, dtype):
    """A shuffled grid with no two values equal even after rounding to bfloat16 (exact index checks)."""
    out = []
    for s in shapes:
        n = int(np.prod(s))
        if dtype in FLOAT_DTYPES:
            a = ((rng.permutation(n) - n // 2) * 0.25).astype(np.float32 if dtype == "bfloat16" else dtype)
        else:
            a = (rng.permutation(n) - (0 if dtype == "uint8" else n // 2)).astype(dtype)
        out.append(a.reshape(s))
    return out


CASES = [
    # sum / mean / prod
    OpCase("sum", lambda lib, x: lib.sum(x), ND, ALL_DTYPES),
    OpCase("sum_dim1", lambda lib, x: lib.sum(x, 1), MAT, ALL_DTYPES),
    OpCase("sum_dims_keepdim", lambda lib, x: lib.sum(x, (0, -1), keepdim=True), [[(3, 4)], [(2, 3, 4)], [(0, 3)]], NUMERIC),
    OpCase("sum_dim0_3d", lambda lib, x: x.sum(dim=[0, 2]), [[(2, 3, 4)], [(5, 1, 3)]], FLOAT_DTYPES),
    OpCase("sum_scalar_dim", lambda lib, x: lib.sum(x, -1, keepdim=True), [[()]], ["float32", "int64"]),
    OpCase("sum_empty_dimlist", lambda lib, x: lib.sum(x, []), [[(2, 3)]], ["float32"]),
    OpCase("sum_dtype", lambda lib, x: lib.sum(x, 0, dtype=lib.float64), [[(3, 4)], [(0,)]], ["float32", "int32", "bool"]),
    OpCase("sum_to_size", lambda lib, x: x.sum_to_size(1, 4), [[(3, 4)], [(2, 3, 4)]], ["float32", "float64"]),
    OpCase("sum_to_size_lead", lambda lib, x: x.sum_to_size(3, 1), [[(2, 3, 4)], [(3, 4)]], ["float32"]),
    OpCase("mean", lambda lib, x: lib.mean(x), ND, ALL_DTYPES),
    OpCase("mean_dims", lambda lib, x: x.mean((-1, 0), keepdim=True), [[(3, 4)], [(2, 3, 4)], [(0, 4)]], FLOAT_DTYPES),
    OpCase("mean_dim1", lambda lib, x: lib.mean(x, 1), MAT, FLOAT_DTYPES),
    OpCase("mean_dtype", lambda lib, x: lib.mean(x, dtype=lib.float64), [[(3, 4)]], ["int64", "float32"]),
    OpCase("prod", lambda lib, x: lib.prod(x), [[(3, 4)], [()], [(0, 3)]], ALL_DTYPES, low=0.5, high=1.5),
    OpCase("prod_dim", lambda lib, x: lib.prod(x, 1), MAT, NUMERIC, low=0.5, high=1.5),
    OpCase("prod_zeros", lambda lib, x: lib.prod(x, 1, keepdim=True), [[(6, 3)], [(4, 2, 3)]], ["float32", "float64"],
           make_inputs=with_zeros),
    OpCase("prod_zeros_all", lambda lib, x: lib.prod(x), [[(5,)], [(2, 2)]], ["float64"], make_inputs=with_zeros),
    # extrema
    OpCase("amax", lambda lib, x: lib.amax(x), [[(3, 4)], [()], [(2, 3, 4)]], ALL_DTYPES),
    OpCase("amax_dims", lambda lib, x: lib.amax(x, (0, 2), keepdim=True), [[(2, 3, 4)], [(2, 0, 3)]], NUMERIC),
    OpCase("amin_dim", lambda lib, x: lib.amin(x, -1), MAT, ALL_DTYPES),
    OpCase("amax_ties", lambda lib, x: lib.amax(x, 1), [[(4, 6)], [(3, 5, 2)]], ["float32", "float64"], make_inputs=ties,
           gradcheck=False),  # finite differences are meaningless at ties
    OpCase("amin_ties_all", lambda lib, x: lib.amin(x), [[(4, 6)]], ["float32", "float64"], make_inputs=ties,
           gradcheck=False),
    OpCase("max_all", lambda lib, x: lib.max(x), [[(3, 4)], [()]], ALL_DTYPES, make_inputs=None),
    OpCase("max_all_ties", lambda lib, x: x.max(), [[(3, 4)]], ["float64"], make_inputs=ties, gradcheck=False),
    OpCase("min_all", lambda lib, x: lib.min(x), [[(3, 4)], [(5,)]], NUMERIC),
    OpCase("max_dim", lambda lib, x: lib.max(x, 1), [[(3, 4)], [(2, 3, 5)]], NUMERIC, make_inputs=distinct),
    OpCase("max_dim_empty", lambda lib, x: lib.max(x, 1), [[(3, 0)], [(0, 3)]], ["float32"], gradcheck=False),
    OpCase("max_dim_keepdim", lambda lib, x: x.max(dim=0, keepdim=True), [[(3, 4)], [()]], ["float32", "float64"],
           make_inputs=distinct),
    OpCase("min_dim", lambda lib, x: lib.min(x, -1), [[(3, 4)], [(2, 3, 5)]], NUMERIC, make_inputs=distinct),
    OpCase("max_binary", lambda lib, x, y: lib.max(x, y), [[(3, 4), (3, 4)], [(3, 1), (4,)]], ["float32"]),
    OpCase("argmax", lambda lib, x: lib.argmax(x), [[(3, 4)], [()], [(2, 3, 4)]], NUMERIC + ["bool"], make_inputs=distinct, grad=False),
    OpCase("argmax_dim", lambda lib, x: lib.argmax(x, 1, keepdim=True), [[(3, 4)], [(2, 3, 5)], [(3, 0)]], NUMERIC,
           make_inputs=distinct, grad=False),
    OpCase("argmin_dim", lambda lib, x: x.argmin(-1), [[(3, 4)], [(2, 3, 5)]], NUMERIC, make_inputs=distinct, grad=False),
    OpCase("argmin", lambda lib, x: lib.argmin(x), [[(3, 4)], [(0,)]], ["float32", "int64"], make_inputs=distinct, grad=False),
    # statistics and norms
    OpCase("var", lambda lib, x: lib.var(x), [[(3, 4)], [(2, 3, 4)], [(0, 3)], [(1,)]], FLOAT_DTYPES + ["int64"]),
    OpCase("var_dims", lambda lib, x: lib.var(x, (0, -1), keepdim=True), [[(3, 4)], [(2, 3, 4)]], FLOAT_DTYPES),
    OpCase("var_correction0", lambda lib, x: lib.var(x, 1, correction=0), MAT, ["float32", "float64"]),
    OpCase("var_unbiased", lambda lib, x: x.var(1, False), [[(3, 4)]], ["float32", "float64"]),
    OpCase("var_correction2", lambda lib, x: lib.var(x, [1], correction=2), [[(3, 5)]], ["float64"]),
    OpCase("std", lambda lib, x: lib.std(x, 1), [[(3, 4)], [(2, 3, 4)]], FLOAT_DTYPES),
    OpCase("std_all", lambda lib, x: x.std(), [[(3, 4)]], ["float32", "float64"]),
    OpCase("var_mean", lambda lib, x: lib.var_mean(x, 1), [[(3, 4)]], ["float32", "float64"]),
    OpCase("std_mean", lambda lib, x: lib.std_mean(x, 0, correction=0), [[(3, 4)]], ["float64"]),
    OpCase("norm", lambda lib, x: lib.norm(x), [[(3, 4)], [()], [(0, 3)]], FLOAT_DTYPES),
    OpCase("norm_p1_dim", lambda lib, x: lib.norm(x, 1, 1), MAT, FLOAT_DTYPES),
    OpCase("norm_inf", lambda lib, x: lib.norm(x, float("inf"), (0, 1)), [[(3, 4)], [(2, 3, 4)]], ["float32", "float64"]),
    OpCase("norm_neginf", lambda lib, x: lib.norm(x, float("-inf"), 1, keepdim=True), [[(3, 4)]], ["float32", "float64"]),
    OpCase("norm_p3", lambda lib, x: x.norm(3, -1), [[(3, 4)], [(2, 3, 4)]], ["float32", "float64"]),
    OpCase("norm_p05", lambda lib, x: lib.norm(x, 0.5, 1), [[(3, 4)]], ["float64"]),
    OpCase("norm_p0", lambda lib, x: lib.norm(x, 0, 1), [[(3, 4)]], ["float32", "float64"]),
    OpCase("norm_fro_dims", lambda lib, x: lib.norm(x, "fro", (1, 2)), [[(2, 3, 4)]], ["float32"]),
    # bfloat16 rounds the ~20-sized result to 1/8, so exp(x - result) in the gradient is off by ~6%
    OpCase("logsumexp", lambda lib, x: lib.logsumexp(x, 1), MAT, FLOAT_DTYPES + ["int64"], low=-20, high=20,
           tol={"bfloat16": (0.15, 0.2)}),
    OpCase("logsumexp_dims", lambda lib, x: lib.logsumexp(x, (0, 2), keepdim=True), [[(2, 3, 4)]], ["float32", "float64"]),
    OpCase("logsumexp_scalar", lambda lib, x: lib.logsumexp(x, 0), [[()]], ["float32", "float64"]),
    OpCase("any", lambda lib, x: lib.any(x), ND, ALL_DTYPES, low=-1, high=1),
    OpCase("any_dim", lambda lib, x: lib.any(x, 1, keepdim=True), MAT, ALL_DTYPES, low=-1, high=1),
    OpCase("all", lambda lib, x: lib.all(x), ND, ALL_DTYPES, low=0, high=1),
    OpCase("all_dim", lambda lib, x: x.all(-1), MAT, ALL_DTYPES, low=0, high=2),
    # scans and softmax
    OpCase("cumsum", lambda lib, x: lib.cumsum(x, 1), MAT, ALL_DTYPES),
    OpCase("cumsum_dim0", lambda lib, x: x.cumsum(0), [[(5, 3)], [()], [(0,)]], ["float32", "float64", "int32"]),
    OpCase("cumsum_dtype", lambda lib, x: lib.cumsum(x, -1, dtype=lib.float64), [[(3, 4)]], ["float32", "int64"]),
    OpCase("softmax", lambda lib, x: lib.softmax(x, -1), [[(3, 4)], [(2, 3, 5)], [()], [(0, 3)], [(3, 0)]],
           FLOAT_DTYPES + ["int64"], low=-10, high=10),
    OpCase("softmax_dim0", lambda lib, x: lib.softmax(x, 0), [[(4, 3)], [(3, 70)], [(2, 3, 4)]], FLOAT_DTYPES),
    OpCase("softmax_dim1_3d", lambda lib, x: x.softmax(1), [[(2, 3, 4)]], ["float32", "float64"]),
    OpCase("softmax_dtype", lambda lib, x: lib.softmax(x, 1, dtype=lib.float64), [[(3, 4)]], ["float32"]),
    OpCase("log_softmax", lambda lib, x: lib.log_softmax(x, -1), [[(3, 4)], [(2, 3, 5)], [()], [(0, 3)]],
           FLOAT_DTYPES, low=-10, high=10),
    OpCase("log_softmax_dim0", lambda lib, x: x.log_softmax(0), [[(4, 3)], [(2, 3, 4)]], FLOAT_DTYPES),
    # attention softmax (scaled_softmax + softmax_backward rows) through SDPA's composite path (the
    # fused op has its own table in test_attention.py); L != S covers the causal mask's top-left
    # alignment, S = 1100 the one-block-per-row CUDA path
    # (only in float32/64: half-precision gradients there sum 1100 rounded products). Inputs in
    # [-1, 1] like normalized activations: [-3, 3] makes scores so peaked that bf16 rounding of the
    # weights dominates the softmax-backward cancellation.
    OpCase("sdpa", lambda lib, q, k, v: composite_sdpa(lib, q, k, v),
           [[(2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 3)], [(0, 2, 4), (0, 3, 4), (0, 3, 2)]],
           FLOAT_DTYPES, low=-1, high=1, tol={"bfloat16": (0.05, 0.05)}),
    OpCase("sdpa_causal", lambda lib, q, k, v: composite_sdpa(lib, q, k, v, is_causal=True),
           [[(2, 2, 7, 8)] * 3, [(1, 5, 4), (1, 3, 4), (1, 3, 2)], [(1, 3, 4), (1, 6, 4), (1, 6, 2)]],
           FLOAT_DTYPES, low=-1, high=1, tol={"bfloat16": (0.05, 0.05)}),
    OpCase("sdpa_long_rows", lambda lib, q, k, v: composite_sdpa(lib, q, k, v),
           [[(2, 1100, 8)] * 3], ["float32", "float64"], low=-1, high=1, gradcheck=False),
    OpCase("sdpa_causal_long_rows", lambda lib, q, k, v: composite_sdpa(lib, q, k, v, is_causal=True),
           [[(1, 1100, 4)] * 3], ["float32", "float64"], low=-1, high=1, gradcheck=False),
    OpCase("sdpa_scale", lambda lib, q, k, v: composite_sdpa(lib, q, k, v, scale=0.7),
           [[(3, 4, 5), (3, 6, 5), (3, 6, 2)]], ["float32", "float64"]),
    OpCase("softmax_backward_last_dim", lambda lib, x: (lib.softmax(x, -1) * lib.softmax(x, -1)).sum(-1),
           [[(3, 40)], [(2, 3, 1100)], [(0, 4)]], FLOAT_DTYPES),
    # sorting (distinct values: indices are compared exactly)
    OpCase("sort", lambda lib, x: lib.sort(x), [[(3, 4)], [()], [(0, 3)], [(2, 3, 5)]], NUMERIC, make_inputs=distinct),
    OpCase("sort_desc_dim0", lambda lib, x: lib.sort(x, 0, descending=True), [[(4, 3)], [(2, 3, 4)]], NUMERIC,
           make_inputs=distinct),
    OpCase("argsort", lambda lib, x: lib.argsort(x, 1, descending=True), [[(3, 5)]], ["float32", "int64"],
           make_inputs=distinct),
    OpCase("topk", lambda lib, x: lib.topk(x, 2), [[(3, 4)], [(2, 3, 5)], [(0, 3)]], NUMERIC, make_inputs=distinct),
    OpCase("topk_smallest_dim0", lambda lib, x: lib.topk(x, 3, 0, largest=False), [[(4, 3)], [(5, 2, 2)]],
           ["float32", "float64", "int32"], make_inputs=distinct),
    OpCase("topk_k0", lambda lib, x: x.topk(0), [[(3, 4)]], ["float32"]),
]


test_matches_torch, test_gradcheck = op_tests(CASES)


# ---- semantics beyond the differential table -----------------------------------------------------------

def E(a, dtype=None):
    t = ember.from_numpy(np.asarray(a))
    return t if dtype is None else t.to(dtype)


def test_sum_float32_is_accurate_for_long_rows():
    rng = np.random.default_rng(0)
    a = rng.random(1 << 22, dtype=np.float32)
    exact = a.astype(np.float64).sum()
    got = float(ember.sum(E(a)).item())
    assert abs(got - exact) / exact < 1e-6, (got, exact)
    rows = ember.sum(E(a.reshape(4, -1)), 1)
    np.testing.assert_allclose(to_numpy(rows), a.reshape(4, -1).astype(np.float64).sum(1), rtol=1e-6)
    cols = ember.sum(E(a.reshape(-1, 64)), 0)
    np.testing.assert_allclose(to_numpy(cols), a.reshape(-1, 64).astype(np.float64).sum(0), rtol=1e-5)


def test_large_reductions_match_torch_layouts():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((257, 1031)).astype(np.float32)
    t = torch.from_numpy(a)
    for fn in [lambda lib, x: lib.sum(x, 0), lambda lib, x: lib.amax(x, 0), lambda lib, x: lib.mean(x.t(), 1),
               lambda lib, x: lib.softmax(x, 0), lambda lib, x: lib.logsumexp(x, 0), lambda lib, x: lib.var(x, 0),
               lambda lib, x: lib.norm(x, 2, 1), lambda lib, x: lib.amin(x[:, ::3], 1)]:
        np.testing.assert_allclose(to_numpy(fn(ember, E(a))), fn(torch, t).numpy(), rtol=2e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["amax", "amin", "max", "min", "argmax", "argmin", "max_dim", "argmax_dim", "sort_nan"])
def test_nan_propagates(op):
    a = np.array([[1.0, np.nan, 3.0, 2.0], [4.0, 5.0, 0.0, np.nan], [1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    fns = {
        "amax": lambda lib, x: lib.amax(x, 1), "amin": lambda lib, x: lib.amin(x, 1),
        "max": lambda lib, x: lib.max(x), "min": lambda lib, x: lib.min(x),
        "argmax": lambda lib, x: lib.argmax(x), "argmin": lambda lib, x: lib.argmin(x),
        "max_dim": lambda lib, x: lib.max(x, 1), "argmax_dim": lambda lib, x: lib.argmax(x, 1),
        "sort_nan": lambda lib, x: lib.sort(x, 1, descending=True),
    }
    got, want = fns[op](ember, E(a)), fns[op](torch, torch.from_numpy(a))
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(to_numpy(g), w.numpy())


@pytest.mark.parametrize("shape", [(37, 21), (40, 16), (17, 250), (33, 3)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int8"])
def test_many_short_rows(shape, dtype):
    """Many short rows take the grouped transpose-reduce path (with partial tails and leftover rows)."""
    rng = np.random.default_rng(4)
    a = rng.standard_normal(shape) * 10
    if dtype.startswith("float"):
        a[5, 2] = a[20 % shape[0], -1] = np.nan
    a = a.astype(dtype)
    ops = [lambda lib, x: lib.sum(x, 1), lambda lib, x: lib.amax(x, 1), lambda lib, x: lib.amin(x, -1, keepdim=True),
           lambda lib, x: lib.sum(x[:, 1:], 1)]
    if dtype.startswith("float"):
        ops.append(lambda lib, x: lib.mean(x, 1))
    for fn in ops:
        got, want = to_numpy(fn(ember, E(a))), fn(torch, torch.from_numpy(a)).numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_nan_in_vectorized_rows(dtype):
    """Long rows take the vector paths: a NaN anywhere in a row must still win (ints: plain extrema)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((6, 300)) * 50
    if dtype != "int32":
        a[1, 17] = a[3, 250] = a[4, 0] = a[5, 299] = np.nan
    a = a.astype(dtype)
    for fn in [lambda lib, x: lib.amax(x, 1), lambda lib, x: lib.amin(x, 1), lambda lib, x: lib.max(x, 1),
               lambda lib, x: lib.min(x, 1), lambda lib, x: lib.argmax(x, 1), lambda lib, x: lib.argmin(x, 1),
               lambda lib, x: lib.amax(x), lambda lib, x: lib.amax(x[:, 1:], 1)]:
        got, want = fn(ember, E(a)), fn(torch, torch.from_numpy(a))
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            np.testing.assert_array_equal(to_numpy(g), w.numpy())
    if dtype != "int32":
        for fn in [lambda lib, x: lib.softmax(x, 1), lambda lib, x: lib.log_softmax(x, 1)]:
            g, w = to_numpy(fn(ember, E(a))), fn(torch, torch.from_numpy(a)).numpy()
            np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)


def test_logsumexp_and_softmax_handle_infinities():
    a = np.array([[-np.inf, -np.inf], [0.0, -np.inf], [np.inf, 1.0], [1e30, 1e30]], dtype=np.float32)
    for fn in [lambda lib, x: lib.logsumexp(x, 1), lambda lib, x: lib.softmax(x, 1), lambda lib, x: lib.log_softmax(x, 1)]:
        np.testing.assert_array_equal(to_numpy(fn(ember, E(a))), fn(torch, torch.from_numpy(a)).numpy())


def test_empty_reductions_identities():
    z = E(np.zeros((0, 3), np.float32))
    assert to_numpy(ember.sum(z)) == 0 and to_numpy(ember.prod(z)) == 1
    assert math.isnan(float(ember.mean(z).item()))
    np.testing.assert_array_equal(to_numpy(ember.sum(z, 0)), np.zeros(3, np.float32))


def test_sort_ties_give_valid_stable_indices():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 3, size=(4, 9)).astype(np.float32)
    for desc in (False, True):
        v, i = ember.sort(E(a), 1, descending=desc)
        tv, _ = torch.sort(torch.from_numpy(a), dim=1, descending=desc, stable=True)
        np.testing.assert_array_equal(to_numpy(v), tv.numpy())
        np.testing.assert_array_equal(np.take_along_axis(a, to_numpy(i), 1), to_numpy(v))
        assert all(len(set(r)) == a.shape[1] for r in to_numpy(i))
    v, i = ember.topk(E(a), 4, 1)
    tv, _ = torch.topk(torch.from_numpy(a), 4, 1)
    np.testing.assert_array_equal(to_numpy(v), tv.numpy())
    np.testing.assert_array_equal(np.take_along_axis(a, to_numpy(i), 1), to_numpy(v))


def test_namedtuple_results():
    x = E(np.arange(6, dtype=np.float32).reshape(2, 3))
    r = ember.max(x, 1)
    assert type(r).__name__ == "max" and to_numpy(r.values).tolist() == [2, 5] and to_numpy(r.indices).tolist() == [2, 2]
    s = x.sort(0, descending=True)
    assert to_numpy(s.indices).tolist() == [[1, 1, 1], [0, 0, 0]]
    t = ember.topk(x, 1)
    assert to_numpy(t.values).tolist() == [[2], [5]]


def test_amax_gradient_splits_ties_evenly():
    x = E(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], np.float64)).requires_grad_(True)
    ember.amax(x, 1).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


def test_prod_gradient_with_zeros():
    a = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.0, 2.0, 4.0]])
    x = E(a).requires_grad_(True)
    ember.prod(x, 1).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [[0, 6, 0], [0, 0, 0], [8, 4, 2]])


# ---- bad input -------------------------------------------------------------------------------------------

def test_bad_dim_names_op_and_range():
    x = E(np.zeros((2, 3), np.float32))
    for name, call in [("sum", lambda: ember.sum(x, 2)), ("mean", lambda: x.mean(-3)), ("amax", lambda: ember.amax(x, 5)),
                       ("softmax", lambda: ember.softmax(x, 2)), ("cumsum", lambda: ember.cumsum(x, -3)),
                       ("sort", lambda: ember.sort(x, 3)), ("max", lambda: ember.max(x, 2)),
                       ("argmax", lambda: ember.argmax(x, 2)), ("topk", lambda: ember.topk(x, 1, 4))]:
        with pytest.raises(IndexError, match=rf"\[{name}\].*\[-2, 1\]"):
            call()


def test_duplicate_dims_rejected():
    x = E(np.zeros((2, 3), np.float32))
    with pytest.raises(RuntimeError, match=r"\[sum\] dim 1 appears multiple times"):
        ember.sum(x, (1, -1))
    with pytest.raises(RuntimeError, match=r"\[amax\] dim 0 appears multiple times"):
        ember.amax(x, (0, 0))


def test_mean_of_ints_rejected():
    with pytest.raises(RuntimeError, match=r"\[mean\].*floating point.*Got: Long"):
        ember.mean(E(np.arange(3)))
    with pytest.raises(RuntimeError, match=r"\[var\].*floating point"):
        ember.var(E(np.arange(3)))


def test_empty_extrema_rejected():
    z = E(np.zeros((0, 3), np.float32))
    with pytest.raises(RuntimeError, match=r"\[max\].*numel\(\) == 0"):
        ember.max(z)
    with pytest.raises(IndexError, match=r"\[amax\].*dim 0.*non-zero size"):
        ember.amax(z, 0)
    with pytest.raises(IndexError, match=r"\[max\].*dim 0.*non-zero size"):
        ember.max(z, 0)
    with pytest.raises(IndexError, match=r"\[argmax\]"):
        ember.argmax(z)
    assert tuple(ember.amax(z, 1).shape) == (0,)


def test_topk_k_out_of_range():
    with pytest.raises(RuntimeError, match=r"\[topk\] selected index k out of range.*float32\[2, 3\]"):
        ember.topk(E(np.zeros((2, 3), np.float32)), 4)


def test_sum_to_size_rejects_incompatible():
    with pytest.raises(RuntimeError, match=r"\[sum_to_size\].*\[2\].*\[3, 4\]"):
        E(np.zeros((3, 4), np.float32)).sum_to_size(2)
