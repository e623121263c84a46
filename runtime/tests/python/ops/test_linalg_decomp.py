"""Matrix decompositions, solvers and the torch.linalg composites vs torch: values, gradients (and
float64 finite differences), batches, broadcasting, empty matrices and torch's errors.

Covers the native ops of spec/decomp.yaml (linalg_lu_factor_ex, linalg_lu_factor, linalg_lu_solve,
linalg_solve_ex, linalg_solve, linalg_inv_ex, linalg_inv, linalg_det, linalg_slogdet,
linalg_cholesky_ex, linalg_cholesky, linalg_qr, linalg_svd, linalg_eigh, linalg_solve_triangular)
through ember.linalg, which is what users call.

Singular vectors, eigenvectors and Q are unique only up to the sign of each column (and LAPACK
builds may pick differently), so those outputs are compared after a sign normalization that both
libraries apply identically.
"""
import dataclasses

import numpy as np
import pytest
import torch

import ember
from optest import OpCase, op_tests

F = ["float32", "float64"]
TOL = {"float32": (1e-3, 1e-4)}


def _cast(a, dtype):
    return np.asarray(a).astype("float32" if dtype == "bfloat16" else dtype)


def well_conditioned(rng, shapes, dtype):
    """The first input, when square, with a dominant diagonal of random signs; the rest uniform."""
    out = []
    for k, s in enumerate(shapes):
        a = rng.uniform(-1, 1, size=s)
        if k == 0 and len(s) >= 2 and s[-1] and s[-1] == s[-2]:
            n = s[-1]
            a = a + n * np.eye(n) * rng.choice([-1, 1], size=s[:-2] + (1, n))
        out.append(_cast(a, dtype))
    return out


def spd(rng, shapes, dtype):
    out = []
    for k, s in enumerate(shapes):
        a = rng.uniform(-1, 1, size=s)
        if k == 0:
            a = a @ np.swapaxes(a, -1, -2) + s[-1] * np.eye(s[-1])
        out.append(_cast(a, dtype))
    return out


def general(rng, shapes, dtype):
    return [_cast(rng.uniform(-1, 1, size=s), dtype) for s in shapes]


def singular(rng, shapes, dtype):
    """Square matrices whose last row is the sum of the others (det 0, rank n - 1)."""
    a = rng.uniform(-1, 1, size=shapes[0])
    a[..., -1, :] = a[..., :-1, :].sum(-2)
    return [_cast(a, dtype)]


def triangular_system(rng, shapes, dtype):
    a = rng.uniform(-1, 1, size=shapes[0]) + 3 * np.eye(shapes[0][-1])
    return [_cast(a, dtype)] + [_cast(rng.uniform(-1, 1, size=s), dtype) for s in shapes[1:]]


def col_signs(lib, M, row=0):
    """Signs making entry `row` of every column of M positive (a gauge both libraries share)."""
    return lib.sign(M[..., row:row + 1, :]).detach()


def svd_fixed(lib, a, full=False):
    U, S, Vh = lib.linalg.svd(a, full_matrices=full)
    s = col_signs(lib, U)
    return U * s, S, Vh * s.mT


def eigh_fixed(lib, a, uplo="L"):
    L, V = lib.linalg.eigh(a, UPLO=uplo)
    return L, V * col_signs(lib, V)


def qr_fixed(lib, a, mode="reduced"):
    Q, R = lib.linalg.qr(a, mode=mode)
    d = lib.sign(lib.diagonal(R, 0, -2, -1)).detach()
    k = d.shape[-1]
    return Q[..., :k] * d.unsqueeze(-2), R * d.unsqueeze(-1)


def sym(a):
    return a + a.mT


def half_sym(a):
    return (a + a.mT) * 0.5


def lu_solve_b(lib, a, b, adjoint=False, left=True):
    LU, piv = lib.linalg.lu_factor(a.detach())
    return lib.linalg.lu_solve(LU, piv, b, adjoint=adjoint, left=left)


SQ = [[(3, 3)], [(2, 4, 4)], [(1, 1)], [(0, 0)], [(2, 0, 0)]]

CASES = [
    # ---- determinants and inverses ----------------------------------------------------------------
    OpCase("det", lambda lib, a: lib.linalg.det(a), SQ, F, make_inputs=well_conditioned, tol=TOL),
    # Gradients at singular matrices: test_det_gradient_at_singular_matrices_is_the_adjugate.
    OpCase("det_singular", lambda lib, a: lib.linalg.det(a), [[(3, 3)], [(2, 4, 4)]], F, make_inputs=singular,
           grad=False, tol={"float32": (1e-3, 1e-4)}),
    OpCase("slogdet", lambda lib, a: tuple(lib.linalg.slogdet(a)), SQ, F, make_inputs=well_conditioned, tol=TOL),
    OpCase("inv", lambda lib, a: lib.linalg.inv(a), SQ, F, make_inputs=well_conditioned, tol=TOL),
    OpCase("inv_ex", lambda lib, a: tuple(lib.linalg.inv_ex(a)), [[(2, 3, 3)]], F, make_inputs=well_conditioned,
           tol=TOL),
    # ---- solvers ----------------------------------------------------------------------------------
    OpCase("solve", lambda lib, a, b: lib.linalg.solve(a, b),
           [[(3, 3), (3,)], [(3, 3), (3, 2)], [(2, 3, 3), (3, 2)], [(3, 3), (2, 3, 1)], [(2, 3, 3), (2, 3)],
            [(0, 0), (0, 2)], [(2, 2), (2, 0)]], F, make_inputs=well_conditioned, tol=TOL),
    OpCase("solve_right", lambda lib, a, b: lib.linalg.solve(a, b, left=False), [[(3, 3), (2, 3)], [(2, 3, 3), (4, 3)]],
           F, make_inputs=well_conditioned, tol=TOL),
    OpCase("solve_ex", lambda lib, a, b: tuple(lib.linalg.solve_ex(a, b)), [[(2, 3, 3), (2, 3, 2)]], F,
           make_inputs=well_conditioned, tol=TOL),
    OpCase("solve_triangular", lambda lib, a, b: (lib.linalg.solve_triangular(a.triu(), b, upper=True),
                                                  lib.linalg.solve_triangular(a.tril(), b, upper=False)),
           [[(3, 3), (3, 2)], [(2, 4, 4), (4, 1)], [(3, 3), (2, 3, 3)]], F, make_inputs=triangular_system, tol=TOL),
    OpCase("solve_triangular_right_unit",
           lambda lib, a, b: (lib.linalg.solve_triangular(a, b, upper=False, left=False),
                              lib.linalg.solve_triangular(a, b, upper=True, left=False, unitriangular=True)),
           [[(3, 3), (2, 3)], [(2, 3, 3), (2, 4, 3)]], F, make_inputs=triangular_system, tol=TOL),
    OpCase("lu_factor", lambda lib, a: (*lib.linalg.lu_factor(a), *lib.linalg.lu(a)), [[(3, 3)], [(2, 4, 4)], [(4, 3)],
                                                                                       [(3, 5)]],
           F, grad=False, make_inputs=general, tol=TOL),
    OpCase("lu_solve", lambda lib, a, b: (lu_solve_b(lib, a, b), lu_solve_b(lib, a, b, adjoint=True),
                                          lu_solve_b(lib, a, b.mT, left=False)),
           [[(3, 3), (3, 2)], [(2, 4, 4), (2, 4, 3)]], F, make_inputs=well_conditioned, grad_inputs=[1], tol=TOL),
    # ---- factorizations ---------------------------------------------------------------------------
    # Symmetrized inside, so finite differences see the dependence on both triangles.
    OpCase("cholesky", lambda lib, a: (lib.linalg.cholesky(half_sym(a)), lib.linalg.cholesky(half_sym(a), upper=True)),
           [[(3, 3)], [(2, 4, 4)], [(1, 1)], [(0, 0)]], F, make_inputs=spd, tol=TOL),
    OpCase("cholesky_ex", lambda lib, a: tuple(lib.linalg.cholesky_ex(half_sym(a))), [[(3, 3)]], F, make_inputs=spd,
           tol=TOL),
    OpCase("cholesky_one_triangle", lambda lib, a: (lib.linalg.cholesky(a), lib.linalg.cholesky(a, upper=True)),
           [[(3, 3)]], F, make_inputs=spd, tol=TOL, gradcheck=False),
    OpCase("qr", lambda lib, a: qr_fixed(lib, a), [[(4, 3)], [(3, 3)], [(3, 5)], [(2, 4, 3)]], F, make_inputs=general,
           tol=TOL),
    OpCase("qr_complete", lambda lib, a: qr_fixed(lib, a, "complete"), [[(3, 5)], [(3, 3)]], F, make_inputs=general,
           tol=TOL),
    OpCase("qr_r", lambda lib, a: lib.linalg.qr(a, mode="r")[1].abs(), [[(4, 3)], [(3, 5)]], F, grad=False,
           make_inputs=general, tol=TOL),
    OpCase("qr_empty", lambda lib, a: tuple(lib.linalg.qr(a)), [[(0, 3)], [(2, 3, 0)]], F, grad=False),
    OpCase("svd", lambda lib, a: svd_fixed(lib, a), [[(4, 3)], [(3, 5)], [(3, 3)], [(2, 4, 3)]], F,
           make_inputs=general, tol=TOL),
    OpCase("svd_full_square", lambda lib, a: svd_fixed(lib, a, full=True), [[(3, 3)]], F, make_inputs=general,
           tol=TOL),
    OpCase("svd_empty", lambda lib, a: tuple(lib.linalg.svd(a)), [[(0, 3)], [(3, 0)]], F, grad=False),
    OpCase("svdvals", lambda lib, a: lib.linalg.svdvals(a), [[(4, 3)], [(2, 3, 5)], [(0, 2)]], F, make_inputs=general,
           tol=TOL),
    OpCase("eigh", lambda lib, a: eigh_fixed(lib, sym(a)), [[(3, 3)], [(2, 4, 4)], [(1, 1)]], F, make_inputs=general,
           tol=TOL),
    OpCase("eigh_upper", lambda lib, a: eigh_fixed(lib, a, "U"), [[(4, 4)]], F, make_inputs=general, tol=TOL,
           gradcheck=False),  # one triangle is read: finite differences see no dependence on the other
    OpCase("eigvalsh", lambda lib, a: lib.linalg.eigvalsh(sym(a)), [[(3, 3)], [(2, 4, 4)], [(0, 0)]], F,
           make_inputs=general, tol=TOL),
    # ---- composites -------------------------------------------------------------------------------
    OpCase("pinv", lambda lib, a: lib.linalg.pinv(a), [[(4, 3)], [(3, 5)], [(2, 3, 3)]], F, make_inputs=general,
           tol=TOL),
    OpCase("pinv_hermitian", lambda lib, a: lib.linalg.pinv(sym(a), hermitian=True), [[(3, 3)]], F,
           make_inputs=general, tol=TOL),
    OpCase("pinv_rank_deficient", lambda lib, a: lib.linalg.pinv(a), [[(4, 4)]], F, make_inputs=singular, tol=TOL,
           grad=False),
    OpCase("lstsq", lambda lib, a, b: lib.linalg.lstsq(a, b).solution, [[(5, 3), (5, 2)], [(5, 3), (5,)],
                                                                         [(2, 4, 2), (2, 4, 3)]],
           F, make_inputs=general, tol=TOL),
    OpCase("lstsq_drivers", lambda lib, a, b: (*lib.linalg.lstsq(a, b, driver="gelsd"),
                                               *lib.linalg.lstsq(a, b, driver="gels")[:2],
                                               *lib.linalg.lstsq(a, b)[:3]),
           [[(5, 3), (5, 2)], [(3, 5), (3, 2)]], F, grad=False, make_inputs=general, tol=TOL),
    OpCase("matrix_rank", lambda lib, a, b: (lib.linalg.matrix_rank(a), lib.linalg.matrix_rank(b),
                                             lib.linalg.matrix_rank(b, hermitian=True)),
           [[(4, 4), (3, 3)]], F, grad=False, make_inputs=lambda rng, s, d: [singular(rng, s[:1], d)[0],
                                                                              spd(rng, s[1:], d)[0]]),
    *[OpCase(f"matrix_norm_{o}", (lambda o: lambda lib, a: lib.linalg.matrix_norm(a, o))(o),
             [[(3, 4)], [(2, 3, 3)]], F, make_inputs=general, tol=TOL)
      for o in ["fro", "nuc", 2, -2, 1, -1, float("inf"), float("-inf")]],
    OpCase("matrix_norm_dims", lambda lib, a: (lib.linalg.matrix_norm(a, "nuc", dim=(0, 2), keepdim=True),
                                               lib.linalg.matrix_norm(a, 1, dim=(2, 0))),
           [[(3, 2, 4)]], F, make_inputs=general, tol=TOL),
    OpCase("vector_norm", lambda lib, x: (lib.linalg.vector_norm(x), lib.linalg.vector_norm(x, 1, dim=-1),
                                          lib.linalg.vector_norm(x, float("inf"), dim=(0,), keepdim=True),
                                          lib.linalg.vector_norm(x, 3.5)),
           [[(3, 4)], [(5,)]], F, make_inputs=general, tol=TOL),
    OpCase("norm", lambda lib, x: (lib.linalg.norm(x), lib.linalg.norm(x, dim=1), lib.linalg.norm(x, "fro"),
                                   lib.linalg.norm(x, 2), lib.linalg.norm(x, float("inf"), dim=(0, 1))),
           [[(3, 4)]], F, make_inputs=general, tol=TOL),
    OpCase("cond", lambda lib, a: (lib.linalg.cond(a), lib.linalg.cond(a, -2)), [[(3, 3)], [(2, 4, 4)], [(3, 5)]], F,
           make_inputs=well_conditioned, tol=TOL),
    # torch's own backward of these fails (it modifies inv's output in place): values only.
    OpCase("cond_norms", lambda lib, a: (lib.linalg.cond(a, "fro"), lib.linalg.cond(a, 1), lib.linalg.cond(a, "nuc"),
                                         lib.linalg.cond(a, float("-inf"))),
           [[(3, 3)], [(2, 4, 4)]], F, grad=False, make_inputs=well_conditioned, tol=TOL),
    OpCase("matrix_power", lambda lib, a: tuple(lib.linalg.matrix_power(a, n) for n in (0, 1, 3, 6, -2)),
           [[(3, 3)], [(2, 2, 2)], [(0, 0)]], F, make_inputs=well_conditioned, tol={"float32": (1e-3, 1e-3)}),
    OpCase("multi_dot", lambda lib, a, b, c: (lib.linalg.multi_dot([a, b, c]), lib.linalg.multi_dot([a[0], b, c[:, 0]])),
           [[(2, 3), (3, 4), (4, 2)]], F, make_inputs=general, tol=TOL),
    OpCase("cross", lambda lib, a, b: (lib.linalg.cross(a, b), lib.linalg.cross(a.mT, b.mT, dim=0)),
           [[(4, 3), (4, 3)], [(1, 3), (5, 3)], [(2, 4, 3), (1, 4, 3)]], F + ["int64"], make_inputs=general),
    OpCase("cross_bad", lambda lib, a, b: lib.linalg.cross(a, b), [[(2, 4, 3), (4, 3)], [(2, 2), (2, 2)]], F,
           grad=False),
    OpCase("vecdot_diagonal", lambda lib, a, b: (lib.linalg.vecdot(a, b), lib.linalg.diagonal(a),
                                                 lib.linalg.diagonal(a, offset=1, dim1=0, dim2=1),
                                                 lib.linalg.matmul(a, b.mT)),
           [[(3, 4), (3, 4)], [(2, 3, 3), (3, 3)]], F, make_inputs=general),
    OpCase("vander", lambda lib, x: (lib.linalg.vander(x), lib.linalg.vander(x, N=2)), [[(4,)], [(2, 3)]], F,
           make_inputs=general),
    OpCase("matrix_exp", lambda lib, a: (lib.linalg.matrix_exp(a), lib.linalg.matrix_exp(a * 6)),
           [[(3, 3)], [(2, 2, 2)]], F, make_inputs=general, tol={"float32": (1e-3, 1e-3)}),
]

test_matches_torch, test_gradcheck = op_tests(CASES)


def _e(a):
    return ember.from_numpy(np.asarray(a, dtype=np.float64))


def test_det_gradient_at_singular_matrices_is_the_adjugate():
    """torch's default det backward returns 0 at an exactly singular matrix (its perturbed-LU path
    multiplies by det = 0); under create_graph it returns the adjugate, the true derivative, from an
    SVD. ember always returns the adjugate: compare with torch's create_graph result."""
    rng = np.random.default_rng(4)
    for shape in [(3, 3), (2, 4, 4)]:
        a = singular(rng, [shape], "float64")[0]
        t = torch.from_numpy(a.copy()).requires_grad_(True)
        (want,) = torch.autograd.grad(torch.linalg.det(t).sum(), [t], create_graph=True)
        e = _e(a).requires_grad_(True)
        ember.linalg.det(e).sum().backward()
        np.testing.assert_allclose(e.grad.numpy(), want.detach().numpy(), rtol=1e-8, atol=1e-10)
    case = next(c for c in CASES if c.name == "det_singular")
    from optest import finite_difference_check
    finite_difference_check(dataclasses.replace(case, grad=True), [(3, 3)])


def test_lu_reconstructs_and_pivots_match_lapack_semantics():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, size=(3, 5, 4))
    P, L, U = ember.linalg.lu(_e(a))
    np.testing.assert_allclose((P @ L @ U).numpy(), a, atol=1e-12)
    assert np.allclose(np.tril(L.numpy(), -1) + np.eye(5, 4), L.numpy())  # unit lower trapezoidal


def test_singular_and_non_pd_raise_linalg_errors():
    assert issubclass(ember.linalg.LinAlgError, RuntimeError)
    with pytest.raises(ember.linalg.LinAlgError, match=r"\[linalg.inv\] The diagonal element 2 is zero"):
        ember.linalg.inv(_e(np.ones((3, 3))))
    with pytest.raises(ember.linalg.LinAlgError, match=r"\(Batch element 1\): The diagonal element"):
        ember.linalg.inv(_e(np.stack([np.eye(2), np.zeros((2, 2))])))
    with pytest.raises(ember.linalg.LinAlgError, match=r"leading minor of order 2 is not positive-definite"):
        ember.linalg.cholesky(_e([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ember.linalg.LinAlgError, match=r"\[linalg.solve\] The solver failed because the input matrix "
                                                       r"is singular"):
        ember.linalg.solve(_e(np.zeros((3, 3))), _e(np.ones(3)))
    with pytest.raises(ember.linalg.LinAlgError, match=r"U\[1,1\] is zero"):
        ember.linalg.lu_factor(_e(np.zeros((3, 3))))
    with pytest.raises(ember.linalg.LinAlgError, match=r"non-finite values"):
        ember.linalg.svd(_e([[np.nan, 1.0], [2.0, 3.0]]))
    # The _ex variants report instead of raising.
    inv, info = ember.linalg.inv_ex(_e(np.stack([np.eye(2), np.zeros((2, 2))])))
    assert info.tolist() == [0, 1]
    _, info = ember.linalg.cholesky_ex(_e([[1.0, 2.0], [2.0, 1.0]]))
    assert info.tolist() == 2
    _, info = ember.linalg.solve_ex(_e(np.zeros((2, 2))), _e(np.ones((2, 1))))
    assert info.tolist() == 1


@pytest.mark.parametrize("call, message", [
    (lambda: ember.linalg.inv(ember.ones(3, 2)), r"\[linalg.inv\] A must be batches of square matrices, but they are "
                                                 r"3 by 2 matrices"),
    (lambda: ember.linalg.inv(ember.ones(3)), r"\[linalg.inv\] The input tensor A must have at least 2 dimensions"),
    (lambda: ember.linalg.inv(ember.ones(3, 3, dtype=ember.int64)), r"Expected a floating point or complex tensor as "
                                                                    r"input. Got Long"),
    (lambda: ember.linalg.det(ember.ones(3, 3, dtype=ember.float16)), r"Low precision dtypes not supported. Got Half"),
    (lambda: ember.linalg.solve(ember.eye(3), ember.ones(4)), r"Incompatible shapes of A and B for the equation AX = B "
                                                              r"\(3x3 and 4x1\)"),
    (lambda: ember.linalg.solve(ember.eye(3), ember.ones(3, dtype=ember.float64)), r"Expected A and B to have the same "
                                                                                   r"dtype"),
    (lambda: ember.linalg.solve(ember.eye(3), ember.ones(3), left=False), r"Vector broadcasting"),
    (lambda: ember.linalg.qr(ember.ones(3, 2), mode="x"), r"unrecognized mode 'x'"),
    (lambda: ember.linalg.eigh(ember.ones(2, 3)), r"\[linalg.eigh\] A must be batches of square matrices"),
    (lambda: ember.linalg.eigh(ember.eye(2), UPLO="X"), r"UPLO"),
    (lambda: ember.linalg.solve_triangular(ember.eye(3), ember.ones(3), upper=True), r"B must have at least 2"),
    (lambda: ember.linalg.cross(ember.ones(2, 2), ember.ones(2, 2)), r"must have length 3"),
    (lambda: ember.linalg.matrix_norm(ember.ones(3)), r"at least 2 dimensions"),
    (lambda: ember.linalg.norm(ember.ones(2, 2, 2), 2), r"must be 1D or 2D"),
    (lambda: ember.linalg.multi_dot([ember.ones(2, 2)]), r"at least 2 tensors"),
    (lambda: ember.linalg.svd(ember.ones(2, 2), driver="gesvd"), r"driver"),
])
def test_errors_match_torch(call, message):
    with pytest.raises(RuntimeError, match=message):
        call()


def test_torch_raises_the_same_classes():
    cases = [
        lambda lib: lib.linalg.inv(lib.ones(3, 2)),
        lambda lib: lib.linalg.det(lib.ones(3, 3, dtype=lib.int64)),
        lambda lib: lib.linalg.cholesky(lib.tensor([[1.0, 2.0], [2.0, 1.0]])),
        lambda lib: lib.linalg.solve(lib.eye(3), lib.ones(4)),
        lambda lib: lib.linalg.qr(lib.ones(3, 2), mode="x"),
    ]
    for case in cases:
        with pytest.raises(RuntimeError) as theirs:
            case(torch)
        with pytest.raises(RuntimeError) as ours:
            case(ember)
        assert isinstance(ours.value, ember.linalg.LinAlgError) == isinstance(theirs.value, torch.linalg.LinAlgError)


def test_gradient_errors_are_clear():
    a = _e(np.eye(3) * 2).requires_grad_(True)
    Q, R = ember.linalg.qr(a, mode="r")
    with pytest.raises(RuntimeError, match="mode='r'"):
        R.sum().backward()
    LU, piv = ember.linalg.lu_factor(a)
    with pytest.raises(NotImplementedError, match=r"\[linalg.lu_factor\]"):
        LU.sum().backward()
    with pytest.raises(NotImplementedError, match="complex"):
        ember.linalg.eig(a)


def test_large_batched_factorizations_run_in_parallel_and_agree():
    rng = np.random.default_rng(3)
    a = rng.uniform(-1, 1, size=(64, 8, 8)) + 8 * np.eye(8)
    inv = ember.linalg.inv(_e(a)).numpy()
    np.testing.assert_allclose(inv, np.linalg.inv(a), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ember.linalg.det(_e(a)).numpy(), np.linalg.det(a), rtol=1e-10)
