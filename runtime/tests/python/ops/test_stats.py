"""Order statistics, counting and NaN-aware reductions vs torch: median/nanmedian, kthvalue, mode,
quantile/nanquantile, nanmean/nansum, count_nonzero, aminmax, bincount, histc, unique,
unique_consecutive (values, indices, gradients, NaN handling, errors)."""
import numpy as np
import pytest
import torch

import ember
from optest import FLOAT_DTYPES, INT_DTYPES, OpCase, op_tests

F = ["float32", "float64"]
NUMERIC = FLOAT_DTYPES + INT_DTYPES


def distinct(rng, shapes, dtype):
    """Shuffled distinct values (ties make indices implementation-defined in torch)."""
    out = []
    for s in shapes:
        n = int(np.prod(s))
        a = (rng.permutation(n) - n // 2).astype(np.float64) * 0.5
        if dtype in INT_DTYPES:
            a = rng.permutation(n) - (0 if dtype == "uint8" else n // 2)
        out.append(np.asarray(a).reshape(s).astype("float32" if dtype == "bfloat16" else dtype))
    return out


def with_nans(rng, shapes, dtype, keep_first_row=False):
    """~25% NaNs; keep_first_row leaves index 0 of dim 1 NaN-free (no all-NaN slice along dim 1)."""
    out = []
    for s in shapes:
        a = distinct(rng, [s], "float64")[0]
        mask = rng.random(s) < 0.25
        if keep_first_row and len(s) > 1:
            mask[:, 0] = False
        a[mask] = np.nan
        out.append(a.astype(dtype))
    return out


def small_ints(rng, shapes, dtype):
    return [rng.integers(0, 4, size=s).astype("float32" if dtype == "bfloat16" else dtype) for s in shapes]


ND = [[(3, 5)], [(2, 3, 4)], [(1,)], [(4,)]]

CASES = [
    OpCase("median", lambda lib, x: (lib.median(x), *lib.median(x, 0), *x.median(-1, keepdim=True)),
           ND, NUMERIC, make_inputs=distinct),
    OpCase("median_even_ties", lambda lib, x: (lib.median(x), lib.median(x, 1)[0]), [[(3, 4)], [(2, 6)]], F,
           make_inputs=small_ints, gradcheck=False),  # the all-elements gradient is shared between ties
    OpCase("median_scalar", lambda lib, x: (*lib.median(x, 0), lib.median(x)), [[()]], F),
    OpCase("median_nan", lambda lib, x: (lib.median(x), *lib.median(x, 1), lib.nanmedian(x), *lib.nanmedian(x, 1)),
           [[(4, 5)], [(3, 1)]], F, make_inputs=with_nans, grad=False),
    OpCase("median_all_nan", lambda lib, x: (lib.nanmedian(x * float("nan")), *lib.nanmedian(x * float("nan"), 0)),
           [[(3, 2)]], F, grad=False),
    OpCase("median_empty", lambda lib, x: lib.median(x, 0), [[(0, 3)]], F, grad=False),
    OpCase("median_empty_all", lambda lib, x: lib.median(x), [[(0,)]], F, grad=False),
    OpCase("nanmedian", lambda lib, x: (lib.nanmedian(x), *x.nanmedian(0)), ND, F, make_inputs=distinct),
    OpCase("kthvalue", lambda lib, x: (*lib.kthvalue(x, 1), *lib.kthvalue(x, x.shape[-1]), *x.kthvalue(2, 0, True)),
           [[(3, 5)], [(2, 3, 4)]], NUMERIC, make_inputs=distinct),
    OpCase("kthvalue_nan", lambda lib, x: (lib.kthvalue(x, 5, 0)[0], lib.kthvalue(x, 1, 0)[0]), [[(5, 3)]], F,
           make_inputs=with_nans, grad=False),  # which of several NaNs is picked is implementation-defined
    OpCase("kthvalue_bad", lambda lib, x: lib.kthvalue(x, 6), [[(3, 5)]], F, grad=False),
    OpCase("mode", lambda lib, x: (*lib.mode(x), *lib.mode(x, 0), *x.mode(-1, keepdim=True)),
           [[(3, 8)], [(2, 3, 6)], [(5,)]], F + ["int64", "int32", "bool"], make_inputs=small_ints,
           gradcheck=False),  # the mode of integer-valued data moves under finite differences
    OpCase("mode_empty", lambda lib, x: lib.mode(x, 0), [[(0, 2)]], F, grad=False),
    OpCase("quantile", lambda lib, x: (lib.quantile(x, 0.3), lib.quantile(x, 0.5, dim=1),
                                       x.quantile(0.75, dim=0, keepdim=True), lib.quantile(x, 0.0, dim=-1),
                                       lib.quantile(x, 1.0)),
           [[(3, 5)], [(2, 3, 4)]], F, make_inputs=distinct),
    OpCase("quantile_tensor_q", lambda lib, x, q: (lib.quantile(x, q), lib.quantile(x, q, dim=0, keepdim=True),
                                                   lib.quantile(x, q[0], dim=1)),
           [[(3, 4), (3,)]], F, grad_inputs=[0],
           make_inputs=lambda rng, s, d: [distinct(rng, s[:1], d)[0], np.array([0.1, 0.5, 0.95], dtype=d)]),
    *[OpCase(f"quantile_{m}", (lambda m: lambda lib, x: (lib.quantile(x, 0.4, dim=1, interpolation=m),
                                                         lib.quantile(x, 0.5, interpolation=m)))(m),
             [[(3, 6)], [(2, 5)]], F, make_inputs=distinct)
      for m in ["lower", "higher", "midpoint", "nearest"]],
    OpCase("quantile_nan", lambda lib, x: (lib.quantile(x, 0.5, dim=1), lib.nanquantile(x, 0.3, dim=1),
                                           lib.nanquantile(x, 0.9)),
           [[(4, 5)]], F, make_inputs=with_nans, grad=False),
    OpCase("nanquantile", lambda lib, x: (lib.nanquantile(x, 0.25), x.nanquantile(0.6, dim=0)), [[(3, 5)]], F,
           make_inputs=distinct),
    OpCase("quantile_errors", lambda lib, x: lib.quantile(x, 1.5), [[(3,)]], F, grad=False),
    OpCase("quantile_int", lambda lib, x: lib.quantile(x, 0.5), [[(3,)]], ["int64"], grad=False),
    OpCase("nanmean_nansum", lambda lib, x: (lib.nanmean(x), lib.nanmean(x, 1), x.nanmean((0, 1), keepdim=True),
                                             lib.nansum(x), x.nansum(0)),
           [[(4, 5)], [(2, 3, 4)]], F, make_inputs=lambda rng, s, d: with_nans(rng, s, d, keep_first_row=True)),
    # All-NaN slices: mean NaN; torch's gradient there is NaN (inf * 0), ember's 0.
    OpCase("nanmean_all_nan", lambda lib, x: (lib.nanmean(x * float("nan"), 1), lib.nansum(x * float("nan"))),
           [[(2, 3)]], F, grad=False),
    OpCase("nansum_int", lambda lib, x: (lib.nansum(x), lib.nansum(x, 0)), [[(3, 4)]], ["int64", "int32"]),
    OpCase("nanmean_int", lambda lib, x: lib.nanmean(x), [[(3,)]], ["int64"], grad=False),
    OpCase("count_nonzero", lambda lib, x: (lib.count_nonzero(x), x.count_nonzero(0), lib.count_nonzero(x, (0, 1))),
           [[(3, 4)], [(2, 3, 4)], [(0, 3)]], NUMERIC + ["bool"], make_inputs=small_ints, grad=False),
    OpCase("aminmax", lambda lib, x: (*lib.aminmax(x), *lib.aminmax(x, dim=0), *x.aminmax(dim=-1, keepdim=True)),
           [[(3, 4)], [(5,)]], NUMERIC, make_inputs=distinct),
    OpCase("aminmax_empty", lambda lib, x: lib.aminmax(x), [[(0,)]], F, grad=False),
    OpCase("bincount", lambda lib, x, w: (lib.bincount(x), lib.bincount(x, minlength=10), x.bincount(w),
                                          lib.bincount(x, w.double())),
           [[(12,), (12,)], [(0,), (0,)]], ["float32"], grad=False,
           make_inputs=lambda rng, s, d: [rng.integers(0, 6, size=s[0]), rng.uniform(0, 1, size=s[1]).astype(d)],
           input_dtypes=["int64", None]),
    OpCase("bincount_int_weights", lambda lib, x, w: lib.bincount(x, w), [[(6,), (6,)]], ["int64"], grad=False,
           make_inputs=lambda rng, s, d: [rng.integers(0, 3, size=s[0]), rng.integers(0, 5, size=s[1])]),
    OpCase("bincount_bad", lambda lib, x: lib.bincount(x), [[(2, 2)], [(3,)]], ["int64", "float32"], grad=False),
    OpCase("histc", lambda lib, x: (lib.histc(x), lib.histc(x, bins=4, min=-1, max=1), x.histc(7, -2.5, 2.5)),
           [[(50,)], [(4, 5)], [(1,)]], F, grad=False),
    OpCase("histc_constant", lambda lib, x: lib.histc(x * 0 + 2, bins=3), [[(4,)]], F, grad=False),
    OpCase("histc_bad", lambda lib, x: lib.histc(x, bins=0), [[(4,)]], F + ["int64"], grad=False),
    OpCase("histogram", lambda lib, x, w: (*lib.histogram(x, bins=5), *lib.histogram(x, bins=4, range=(-1.0, 2.0)),
                                           *x.histogram(lib.tensor([-2.0, 0.0, 0.5, 3.0]).to(x.dtype)),
                                           *lib.histogram(x, bins=3, weight=w, density=True)),
           [[(40,), (40,)], [(1,), (1,)]], F, grad=False),
    OpCase("histogram_int", lambda lib, x: lib.histogram(x, bins=2), [[(4,)]], ["int64"], grad=False),
    OpCase("cov_corrcoef", lambda lib, x: (lib.cov(x), x.cov(correction=0), lib.corrcoef(x), x[0].cov(),
                                           lib.corrcoef(x[:1])),
           [[(3, 6)], [(2, 5)]], F),
    OpCase("cov_weights", lambda lib, x, fw, aw: (lib.cov(x, fweights=fw), lib.cov(x, aweights=aw.abs() + 0.1),
                                                  lib.cov(x, correction=2, fweights=fw, aweights=aw.abs() + 0.1)),
           [[(3, 6), (6,), (6,)]], F, grad_inputs=[0, 2],
           make_inputs=lambda rng, s, d: [rng.uniform(-1, 1, s[0]).astype(d), rng.integers(1, 4, s[1]),
                                          rng.uniform(-1, 1, s[2]).astype(d)],
           input_dtypes=[None, "int64", None]),
    OpCase("unique", lambda lib, x: (lib.unique(x), *lib.unique(x, return_inverse=True, return_counts=True),
                                     *x.unique(sorted=False, return_counts=True)),
           [[(12,)], [(3, 4)], [(0,)], [()]], NUMERIC + ["bool"], make_inputs=small_ints, grad=False),
    OpCase("unique_nan", lambda lib, x: lib.unique(x), [[(8,)]], F, make_inputs=with_nans, grad=False),
    OpCase("unique_dim", lambda lib, x: (*lib.unique(x, dim=0, return_inverse=True, return_counts=True),
                                         lib.unique(x, dim=1)),
           [[(6, 2)], [(4, 3)], [(0, 2)]], F + ["int64"], grad=False,
           make_inputs=lambda rng, s, d: [rng.integers(0, 2, size=s[0]).astype(d)]),
    OpCase("unique_consecutive", lambda lib, x: (lib.unique_consecutive(x),
                                                 *lib.unique_consecutive(x, return_inverse=True, return_counts=True),
                                                 *x.unique_consecutive(return_counts=True, dim=0)),
           [[(12,)], [(5, 2)], [(0,)]], F + ["int64"], make_inputs=small_ints, grad=False),
]

test_matches_torch, test_gradcheck = op_tests(CASES)


def test_median_all_elements_gradient_is_shared_between_ties():
    for lib in (torch, ember):
        x = lib.tensor([1.0, 2.0, 2.0, 5.0, 2.0], requires_grad=True)
        lib.median(x).backward()
        np.testing.assert_allclose(x.grad.numpy(), [0, 1 / 3, 1 / 3, 0, 1 / 3], rtol=1e-6)


def test_error_messages():
    with pytest.raises(IndexError, match=r"\[median\] median\(\): Expected reduction dim 0 to have non-zero size"):
        ember.median(ember.ones(0, 3), 0)
    with pytest.raises(RuntimeError, match=r"\[kthvalue\] kthvalue\(\): selected number k out of range"):
        ember.kthvalue(ember.ones(3), 4)
    with pytest.raises(RuntimeError, match=r"\[quantile\] quantile\(\) q must be in the range \[0, 1\] but got 1.5"):
        ember.quantile(ember.ones(3), 1.5)
    with pytest.raises(RuntimeError, match=r"\[quantile\] quantile\(\) q tensor must be same dtype"):
        ember.quantile(ember.ones(3), ember.tensor([0.5], dtype=ember.float64))
    with pytest.raises(RuntimeError, match=r"\[bincount\] bincount only supports 1-d non-negative integral"):
        ember.bincount(ember.tensor([1, -1]))
    with pytest.raises(RuntimeError, match=r"\[histc\] torch.histc: range of \[.*\] is not finite"):
        ember.histc(ember.tensor([1.0, float("inf")]), bins=2)
    with pytest.raises(RuntimeError, match=r"\[nanmean\] nanmean\(\): expected input to have floating point"):
        ember.nanmean(ember.tensor([1, 2]))
