"""Matrix/vector products and builders vs torch (baddbmm, addbmm, addmv, addr, mv, inner, ger, vdot,
chain_matmul, trace, kron, cdist, dist, renorm, block_diag, diag, diag_embed, diagflat,
tril/triu_indices, cartesian_prod, combinations, cross) and torch's top-level linalg spellings
(det, logdet, inverse, pinverse, cholesky_solve, cholesky_inverse, qr, svd, triangular_solve,
lu_unpack, lu_solve, matrix_power), Tensor methods and in-place variants included."""
import numpy as np
import pytest
import torch

import ember
from optest import FLOAT_DTYPES, OpCase, op_tests

F = ["float32", "float64"]
LOW = {"float16": (2e-2, 5e-2), "bfloat16": (4e-2, 2e-1), "float32": (1e-4, 1e-4)}


def spd(rng, shapes, dtype):
    a = rng.uniform(-1, 1, size=shapes[0])
    a = a @ np.swapaxes(a, -1, -2) + shapes[0][-1] * np.eye(shapes[0][-1])
    return [a.astype(dtype)] + [rng.uniform(-1, 1, size=s).astype(dtype) for s in shapes[1:]]


def well_conditioned(rng, shapes, dtype):
    a = rng.uniform(-1, 1, size=shapes[0]) + 3 * np.eye(shapes[0][-1])
    return [a.astype(dtype)] + [rng.uniform(-1, 1, size=s).astype(dtype) for s in shapes[1:]]


def svd_fixed(lib, a, some=True):
    U, S, V = lib.svd(a, some=some)
    s = lib.sign(U[..., :1, :]).detach()
    return U * s, S, V * s


def cholesky_family(lib, a, b):
    """Symmetric input (finite differences then see both triangles)."""
    lower, upper = lib.linalg.cholesky(a), lib.linalg.cholesky(a, upper=True)
    return (lib.cholesky(a), a.cholesky(upper=True), lib.cholesky_solve(b, lower),
            lib.cholesky_solve(b, upper, upper=True), lib.cholesky_inverse(lower), lib.cholesky_inverse(upper, upper=True))


CASES = [
    # ---- products -----------------------------------------------------------------------------------
    OpCase("baddbmm", lambda lib, c, a, b: (lib.baddbmm(c, a, b), lib.baddbmm(c, a, b, beta=0.5, alpha=-2),
                                            c.baddbmm(a, b, beta=0)),
           [[(2, 3, 5), (2, 3, 4), (2, 4, 5)], [(3, 5), (2, 3, 4), (2, 4, 5)], [(1,), (2, 3, 4), (2, 4, 5)]],
           FLOAT_DTYPES, tol=LOW),
    OpCase("baddbmm_int", lambda lib, c, a, b: lib.baddbmm(c, a, b, beta=2, alpha=3), [[(2, 2, 2), (2, 2, 3), (2, 3, 2)]],
           ["int64"]),
    OpCase("addbmm", lambda lib, c, a, b: (lib.addbmm(c, a, b), c.addbmm(a, b, beta=0.5, alpha=2)),
           [[(3, 5), (4, 3, 2), (4, 2, 5)], [(5,), (2, 3, 4), (2, 4, 5)], [(3, 5), (0, 3, 2), (0, 2, 5)]], F, tol=LOW),
    OpCase("addmv", lambda lib, c, m, v: (lib.addmv(c, m, v), c.addmv(m, v, alpha=2), lib.mv(m, v), m.mv(v)),
           [[(3,), (3, 4), (4,)], [(1,), (3, 4), (4,)], [(0,), (0, 2), (2,)]], FLOAT_DTYPES, tol=LOW),
    OpCase("addr", lambda lib, c, a, b: (lib.addr(c, a, b), c.addr(a, b, beta=2, alpha=0.5)),
           [[(3, 4), (3,), (4,)], [(4,), (3,), (4,)]], F + ["int64"]),
    OpCase("addr_bool", lambda lib, c, a, b: lib.addr(c, a, b), [[(3, 4), (3,), (4,)]], ["bool"], grad=False),
    OpCase("inplace_products", lambda lib, c, a, b: (c.clone().baddbmm_(a, b), c[0, :, 0].clone().addmv_(a[0], b[0, :, 0]),
                                                      c[0].clone().addr_(a[0, :, 0], b[0, 0], alpha=2),
                                                      c[0].clone().addbmm_(a, b, beta=0.5)),
           [[(2, 3, 5), (2, 3, 4), (2, 4, 5)]], F, tol=LOW),
    OpCase("inner_ger_vdot", lambda lib, a, b: (lib.inner(a, b), lib.inner(a[0], b[0]), lib.ger(a[0], b[1]),
                                                lib.vdot(a[0], b[0]), a.inner(b), lib.inner(a, b[0, 0])),
           [[(2, 4), (3, 4)]], F),
    OpCase("trace", lambda lib, x: (lib.trace(x), x.trace()), [[(3, 3)], [(2, 4)], [(0, 3)]], F + ["int64", "int32"]),
    OpCase("trace_bad", lambda lib, x: lib.trace(x), [[(2, 2, 2)], [(3,)]], F, grad=False),
    OpCase("kron", lambda lib, a, b: (lib.kron(a, b), a.kron(b)),
           [[(2, 3), (3, 2)], [(2,), (2, 3)], [(2, 1, 2), (3, 2)], [(), (3,)], [(0, 2), (2, 2)]], F + ["int64"]),
    OpCase("cdist", lambda lib, a, b: (lib.cdist(a, b), lib.cdist(a, b, p=1), lib.cdist(a, b, p=float("inf")),
                                       lib.cdist(a, b, p=3)),
           [[(4, 3), (5, 3)], [(2, 4, 3), (2, 5, 3)], [(0, 3), (2, 3)], [(1, 4, 2), (3, 6, 2)]], F, tol=LOW),
    OpCase("cdist_mm", lambda lib, a, b: (lib.cdist(a, b), lib.cdist(a, b, compute_mode="use_mm_for_euclid_dist"),
                                          lib.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")),
           [[(30, 3), (4, 3)], [(2, 3), (27, 3)]], F, tol={"float32": (1e-3, 1e-4)}),
    OpCase("dist", lambda lib, a, b: (lib.dist(a, b), lib.dist(a, b, 1), a.dist(b, 3.5), lib.dist(a, b, float("inf"))),
           [[(3, 4), (3, 4)], [(3, 4), (4,)]], F),
    OpCase("dist_p0", lambda lib, a, b: a.dist(b, 0), [[(3, 4), (3, 4)]], F, grad=False),  # torch's backward raises
    OpCase("renorm", lambda lib, x: (lib.renorm(x, 2, 0, 1.0), x.renorm(1, 1, 2.5), x.clone().renorm_(3, -1, 0.5)),
           [[(3, 4)], [(2, 3, 2)]], F),
    # ---- builders -----------------------------------------------------------------------------------
    OpCase("block_diag", lambda lib, a, b, c: lib.block_diag(a, b, c),
           [[(2, 2), (3,), ()], [(1, 3), (2, 0), (2, 2)]], F + ["int64"]),
    OpCase("block_diag_promotes", lambda lib, a, b: lib.block_diag(a, b.double()), [[(2, 2), (1, 2)]],
           ["int32", "float32"], grad=False),
    OpCase("diag", lambda lib, v, m: (lib.diag(v), lib.diag(v, 1), lib.diag(v, -2), lib.diag(m), lib.diag(m, -1),
                                      v.diag(), m.diag(2)),
           [[(3,), (3, 4)], [(0,), (2, 2)]], F + ["int64", "bool"]),
    OpCase("diag_embed", lambda lib, x: (lib.diag_embed(x), lib.diag_embed(x, 1), lib.diag_embed(x, -2),
                                         x.diag_embed(dim1=-1, dim2=0)),
           [[(3,)], [(2, 3)], [(2, 0)]], F + ["int64"]),
    OpCase("diag_embed_dims", lambda lib, x: (lib.diag_embed(x, -1, 0, 2), lib.diag_embed(x, 2, 2, 1)),
           [[(2, 3)], [(2, 3, 2)]], F),
    OpCase("diag_embed_bad", lambda lib, x: lib.diag_embed(x, 0, 1, 1), [[(3,)]], F, grad=False),
    OpCase("diagflat", lambda lib, x: (lib.diagflat(x), lib.diagflat(x, -1)), [[(2, 2)], [()]], F),
    OpCase("cartesian_prod", lambda lib, a, b, c: (lib.cartesian_prod(a, b, c), lib.cartesian_prod(a)),
           [[(2,), (3,), (2,)], [(0,), (2,), (1,)]], F + ["int64"]),
    OpCase("combinations", lambda lib, x: (lib.combinations(x), lib.combinations(x, 3),
                                           lib.combinations(x, 2, with_replacement=True), lib.combinations(x, 0)),
           [[(4,)], [(2,)], [(0,)]], F + ["int64"]),
    OpCase("cross", lambda lib, a, b: (lib.cross(a, b, dim=-1), a.cross(b, dim=1), lib.cross(a, b[:1], dim=1)),
           [[(4, 3), (4, 3)], [(2, 3), (2, 3)]], F + ["int64"]),
    OpCase("cross_bad", lambda lib, a, b: lib.cross(a, b[0], dim=1), [[(2, 3), (2, 3)]], F, grad=False),
    # ---- top-level linalg spellings --------------------------------------------------------------------
    OpCase("det_logdet", lambda lib, a: (lib.det(a), a.det(), lib.logdet(a), a.logdet(), *lib.slogdet(a)),
           [[(3, 3)], [(2, 3, 3)]], F, make_inputs=spd, tol={"float32": (1e-3, 1e-4)}),
    OpCase("logdet_negative", lambda lib, a: lib.logdet(a), [[(3, 3)]], F, grad=False,
           make_inputs=lambda rng, s, d: [np.diag([-1.0, 2.0, 3.0]).astype(d)]),
    OpCase("inverse", lambda lib, a: (lib.inverse(a), a.inverse(), lib.pinverse(a), a.pinverse()),
           [[(3, 3)], [(2, 3, 3)]], F, make_inputs=well_conditioned, tol={"float32": (1e-3, 1e-4)}),
    OpCase("cholesky_family", lambda lib, a, b: cholesky_family(lib, (a + a.mT) * 0.5, b),
           [[(3, 3), (3, 2)], [(2, 4, 4), (2, 4, 1)]], F, make_inputs=spd, tol={"float32": (1e-3, 1e-4)}),
    OpCase("svd_deprecated", lambda lib, a: svd_fixed(lib, a), [[(4, 3)], [(3, 3)]], F,
           tol={"float32": (1e-3, 1e-4)}),
    OpCase("svd_no_uv", lambda lib, a: tuple(lib.svd(a, compute_uv=False)), [[(4, 3)]], F, gradcheck=False,
           tol={"float32": (1e-3, 1e-4)}),  # U and V are constant zeros (no graph) in both libraries
    OpCase("qr_deprecated", lambda lib, a: tuple(x.abs() for x in lib.qr(a)) + tuple(x.abs() for x in a.qr(some=False)),
           [[(4, 3)], [(3, 3)]], F, grad=False, tol={"float32": (1e-3, 1e-4)}),
    OpCase("triangular_solve", lambda lib, b, a: (*lib.triangular_solve(b, a.triu()),
                                                  *lib.triangular_solve(b, a.tril(), upper=False, transpose=True),
                                                  lib.triangular_solve(b, a, unitriangular=True)[0]),
           [[(3, 2), (3, 3)], [(2, 3, 1), (2, 3, 3)]], F,
           make_inputs=lambda rng, s, d: [rng.uniform(-1, 1, s[0]).astype(d),
                                          (rng.uniform(-1, 1, s[1]) + 3 * np.eye(s[1][-1])).astype(d)],
           tol={"float32": (1e-3, 1e-4)}),
    OpCase("lu_unpack_solve", lambda lib, a, b: (*lib.lu_unpack(*lib.linalg.lu_factor(a)),
                                                 lib.lu_solve(b, *lib.linalg.lu_factor(a)),
                                                 *a.lu()),
           [[(3, 3), (3, 2)], [(2, 4, 4), (2, 4, 1)]], F, grad=False, make_inputs=well_conditioned,
           tol={"float32": (1e-3, 1e-4)}),
    OpCase("matrix_power", lambda lib, a: (lib.matrix_power(a, 3), a.matrix_power(-1), a.matrix_power(0)),
           [[(3, 3)], [(2, 2, 2)]], F, make_inputs=well_conditioned, tol={"float32": (1e-3, 1e-4)}),
]

test_matches_torch, test_gradcheck = op_tests(CASES)


def test_tri_indices():
    for args in [(3, 3), (4, 3, 1), (3, 5, -1), (0, 0), (2, 4, 10), (3, 3, -5)]:
        for name in ("tril_indices", "triu_indices"):
            got = getattr(ember, name)(*args)
            want = getattr(torch, name)(*args)
            assert got.dtype == ember.int64 and got.tolist() == want.tolist(), (name, args)
    assert ember.tril_indices(3, 3, dtype=ember.int32).dtype == ember.int32


def test_errors():
    with pytest.raises(RuntimeError, match=r"\[mv\] size mismatch"):
        ember.mv(ember.ones(2, 3), ember.ones(4))
    with pytest.raises(RuntimeError, match=r"\[addbmm\]"):
        ember.addbmm(ember.ones(2, 2), ember.ones(2, 2, 3), ember.ones(3, 3, 2))
    with pytest.raises(RuntimeError, match=r"\[inner\] .*last dimension must match"):
        ember.inner(ember.ones(2, 3), ember.ones(2, 4))
    with pytest.raises(RuntimeError, match=r"\[cdist\] X1 and X2 must have the same number of columns"):
        ember.cdist(ember.ones(2, 3), ember.ones(2, 4))
    with pytest.raises(RuntimeError, match=r"\[renorm\] non-positive-norm"):
        ember.renorm(ember.ones(2, 3), 0, 0, 1.0)
    with pytest.raises(RuntimeError, match=r"\[block_diag\] Input tensors must have 2 or fewer dimensions"):
        ember.block_diag(ember.ones(1, 1, 1))
    with pytest.raises(RuntimeError, match=r"\[diag\] matrix or a vector expected"):
        ember.diag(ember.ones(1, 1, 1))
    with pytest.raises(RuntimeError, match=r"\[combinations\] Expect a 1D vector"):
        ember.combinations(ember.ones(2, 2))
    with pytest.raises(RuntimeError, match=r"\[baddbmm\] For integral input tensors, argument beta must not be a "
                                           r"floating point number"):
        ember.baddbmm(ember.ones(1, 2, 2, dtype=ember.int64), ember.ones(1, 2, 2, dtype=ember.int64),
                      ember.ones(1, 2, 2, dtype=ember.int64), beta=0.5)


def test_beta_zero_ignores_nan_input_like_torch():
    nan = ember.full((2, 2), float("nan"))
    out = ember.addbmm(nan, ember.ones(3, 2, 2), ember.ones(3, 2, 2), beta=0)
    assert out.tolist() == [[6.0, 6.0], [6.0, 6.0]]


@pytest.mark.parametrize("n", [4, 30])  # the direct path, and torch's matmul path above 25 rows
def test_cdist_self_distance_gradients(n):
    """Zero distances (a point and itself) get zero gradient, as in torch, on both paths: in float64
    equal to torch's; in float32 no further from the float64 result than torch's own float32 is."""
    rng = np.random.default_rng(n)
    a, w = rng.standard_normal((2, n, 3)), rng.standard_normal((2, n, n))

    def grad(lib, dtype):
        x = (torch.from_numpy(a.astype(dtype)) if lib is torch else ember.from_numpy(a.astype(dtype)))
        x.requires_grad_(True)
        weights = torch.from_numpy(w.astype(dtype)) if lib is torch else ember.from_numpy(w.astype(dtype))
        (lib.cdist(x, x) * weights).sum().backward()
        return x.grad.numpy().astype(np.float64)

    reference = grad(torch, np.float64)
    np.testing.assert_allclose(grad(ember, np.float64), reference, rtol=1e-6, atol=1e-7)
    ours = np.abs(grad(ember, np.float32) - reference).max()
    assert np.isfinite(ours) and ours <= max(np.abs(grad(torch, np.float32) - reference).max(), 1e-4)
