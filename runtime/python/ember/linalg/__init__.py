"""ember.linalg: torch.linalg's API.

The factorizations and solvers are native LAPACK-backed ops (runtime/spec/decomp.yaml: inv, solve,
det, slogdet, cholesky, qr, svd, eigh, solve_triangular, lu_factor, lu_solve) with torch's backward
rules; on CUDA they run on host copies (Note [linalg on CUDA] in csrc/cuda/decomp.cpp). Everything
else here composes them with ember ops (norms, pinv, lstsq, matrix_rank, cond, matrix_power,
multi_dot, cross, ...), so gradients and devices follow. Complex dtypes (eig, eigvals) are not
available: ember has none.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _C
from .._C import Tensor
from .._compat import return_type
from ..autograd.function import Function

__all__ = ["LinAlgError", "cholesky", "cholesky_ex", "cond", "cross", "det", "diagonal", "eig", "eigh", "eigvals",
           "eigvalsh", "inv", "inv_ex", "lstsq", "lu", "lu_factor", "lu_factor_ex", "lu_solve", "matmul",
           "matrix_exp", "matrix_norm", "matrix_power", "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet",
           "solve", "solve_ex", "solve_triangular", "svd", "svdvals", "vander", "vecdot", "vector_norm"]

LinAlgError = _C._LinAlgError


_SlogdetResult = return_type("linalg_slogdet", "sign logabsdet")
_QRResult = return_type("linalg_qr", "Q R")
_SVDResult = return_type("linalg_svd", "U S Vh")
_EighResult = return_type("linalg_eigh", "eigenvalues eigenvectors")
_InvExResult = return_type("linalg_inv_ex", "inverse info")
_SolveExResult = return_type("linalg_solve_ex", "result info")
_CholeskyExResult = return_type("linalg_cholesky_ex", "L info")
_LUFactorResult = return_type("linalg_lu_factor", "LU pivots")
_LUFactorExResult = return_type("linalg_lu_factor_ex", "LU pivots info")
_LUResult = return_type("linalg_lu", "P L U")
_LstsqResult = return_type("linalg_lstsq", "solution residuals rank singular_values")


def _needs_grad(*ts) -> bool:
    return _C.is_grad_enabled() and any(t.requires_grad for t in ts)


def _eps(dtype) -> float:
    return 1.1920928955078125e-07 if dtype == _C.float32 else 2.220446049250313e-16


def _check_no_pivot(pivot: bool, api: str) -> None:
    if not pivot:
        raise RuntimeError(f"[{api}] LU without pivoting is not implemented (pivot=False)")


def _check_matrix(A: Tensor, api: str, square: bool = False) -> None:
    """The shape checks of the compositions, in torch's words (the native ops check their own)."""
    if A.dim() < 2:
        raise RuntimeError(f"[{api}] The input tensor A must have at least 2 dimensions (got shape {list(A.shape)}).")
    if square and A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"[{api}] A must be batches of square matrices, but they are {A.shape[-2]} by "
                           f"{A.shape[-1]} matrices")


# ---- factorizations and solvers ---------------------------------------------------------------------

def det(A: Tensor) -> Tensor:
    return _C._linalg_det(A)


def slogdet(A: Tensor):
    return _SlogdetResult(*_C._linalg_slogdet(A))


def inv(A: Tensor) -> Tensor:
    return _C._linalg_inv(A)


def inv_ex(A: Tensor, *, check_errors: bool = False):
    return _InvExResult(_C._linalg_inv(A), _C.zeros(tuple(A.shape[:-2]), dtype=_C.int32, device=A.device)) \
        if check_errors else _InvExResult(*_C._linalg_inv_ex(A))


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    return _C._linalg_solve(A, B, left=left)


def solve_ex(A: Tensor, B: Tensor, *, left: bool = True, check_errors: bool = False):
    """solve, returning LAPACK's info per matrix (nonzero: singular) instead of raising, unless check_errors."""
    if check_errors:
        X = _C._linalg_solve(A, B, left=left)
        return _SolveExResult(X, _C.zeros(tuple(X.shape[:-2 if not _is_vector_rhs(A, B) else -1]), dtype=_C.int32,
                                          device=A.device))
    vector = _is_vector_rhs(A, B)
    if vector and not left:
        _C._linalg_solve(A, B, left=left)  # raises torch's error for this combination
    Bm = B.unsqueeze(-1) if vector else B
    if not left:
        X, info = _C._linalg_solve_ex(A.mT, Bm.mT)
        return _SolveExResult(X.mT, info)
    X, info = _C._linalg_solve_ex(A, Bm)
    return _SolveExResult(X.squeeze(-1) if vector else X, info)


def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:
    return _C._linalg_cholesky(A, upper=upper)


def cholesky_ex(A: Tensor, *, upper: bool = False, check_errors: bool = False):
    if check_errors:
        L = _C._linalg_cholesky(A, upper=upper)
        return _CholeskyExResult(L, _C.zeros(tuple(A.shape[:-2]), dtype=_C.int32, device=A.device))
    return _CholeskyExResult(*_C._linalg_cholesky_ex(A, upper))


def qr(A: Tensor, mode: str = "reduced"):
    return _QRResult(*_C._linalg_qr(A, mode))


def _check_driver(A: Tensor, driver, api: str) -> None:
    if driver is not None and A.device.type != "cuda":
        raise RuntimeError(f"[{api}] keyword argument `driver=` is only supported on CUDA inputs with cuSOLVER "
                           f"backend.")


def svd(A: Tensor, full_matrices: bool = True, *, driver=None):
    _check_driver(A, driver, "linalg.svd")
    return _SVDResult(*_C._linalg_svd(A, full_matrices, True))


def svdvals(A: Tensor, *, driver=None) -> Tensor:
    """Singular values; U and V are computed only when a gradient will need them."""
    _check_driver(A, driver, "linalg.svdvals")
    return _C._linalg_svd(A, False, _needs_grad(A))[1]


def _uplo(UPLO: str, api: str) -> bool:
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"[{api}] Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return UPLO == "U"


def eigh(A: Tensor, UPLO: str = "L"):
    return _EighResult(*_C._linalg_eigh(A, _uplo(UPLO, "linalg.eigh"), True))


def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:
    return _C._linalg_eigh(A, _uplo(UPLO, "linalg.eigvalsh"), _needs_grad(A))[0]


def eig(A: Tensor):
    raise NotImplementedError("[linalg.eig] eigenvalues of general matrices are complex and ember has no complex "
                              "dtypes; for symmetric matrices use linalg.eigh")


def eigvals(A: Tensor):
    raise NotImplementedError("[linalg.eigvals] eigenvalues of general matrices are complex and ember has no "
                              "complex dtypes; for symmetric matrices use linalg.eigvalsh")


def solve_triangular(A: Tensor, B: Tensor, *, upper: bool, left: bool = True, unitriangular: bool = False) -> Tensor:
    return _C._linalg_solve_triangular(A, B, upper=upper, left=left, unitriangular=unitriangular)


def lu_factor(A: Tensor, *, pivot: bool = True):
    _check_no_pivot(pivot, "linalg.lu_factor")
    return _LUFactorResult(*_C._linalg_lu_factor(A))


def lu_factor_ex(A: Tensor, *, pivot: bool = True, check_errors: bool = False):
    _check_no_pivot(pivot, "linalg.lu_factor_ex")
    if check_errors:
        LU, pivots = _C._linalg_lu_factor(A)
        return _LUFactorExResult(LU, pivots, _C.zeros(tuple(A.shape[:-2]), dtype=_C.int32, device=A.device))
    return _LUFactorExResult(*_C._linalg_lu_factor_ex(A))


def lu_solve(LU: Tensor, pivots: Tensor, B: Tensor, *, left: bool = True, adjoint: bool = False) -> Tensor:
    if left:
        return _C._linalg_lu_solve(LU, pivots, B, adjoint=adjoint)
    # X A = B  <=>  A^T X^T = B^T
    return _C._linalg_lu_solve(LU, pivots, B.mT, adjoint=not adjoint).mT


def _permutation_matrices(pivots: Tensor, m: int, dtype, device) -> Tensor:
    """P with A = P L U from LAPACK's 1-based row swaps, applied in order to the rows 0..m-1: row
    perm[i] of A is row i of L U, so P[perm[i], i] = 1."""
    batch = tuple(pivots.shape[:-1])
    nb, k = _prod(batch), pivots.shape[-1]
    swaps = pivots.cpu().numpy().reshape(nb, k).astype(np.int64) - 1
    perm = np.tile(np.arange(m), (nb, 1))
    rows = np.arange(nb)
    for i in range(k):
        j = swaps[:, i]
        perm[rows, i], perm[rows, j] = perm[rows, j], perm[rows, i].copy()
    P = np.zeros((nb, m, m))
    P[rows[:, None], perm, np.arange(m)[None, :]] = 1.0
    return _C.from_numpy(P.reshape(batch + (m, m))).to(dtype).to(device)


def lu(A: Tensor, *, pivot: bool = True):
    """P, L, U with A = P L U (L unit lower-trapezoidal, U upper-trapezoidal)."""
    _check_no_pivot(pivot, "linalg.lu")
    LU, pivots = lu_factor(A)
    return _LUResult(*_unpack(LU, pivots))


def _unpack(LU: Tensor, pivots: Tensor):
    m, n = LU.shape[-2], LU.shape[-1]
    k = min(m, n)
    L = LU[..., :, :k].tril(-1) + _C.eye(m, k, dtype=LU.dtype, device=LU.device)
    U = LU[..., :k, :].triu()
    return _permutation_matrices(pivots, m, LU.dtype, LU.device), L, U


# ---- norms ------------------------------------------------------------------------------------------

def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if isinstance(dim, int):
        dim = [dim]
    return _C.norm(x, float(ord), None if dim is None else list(dim), keepdim, dtype=dtype)


def _move_last_two(A: Tensor, dim) -> tuple[Tensor, tuple[int, int]]:
    nd = A.dim()
    d0, d1 = (d % nd if nd else d for d in dim)
    if d0 == d1:
        raise RuntimeError(f"[linalg.matrix_norm] dims must be different. Got ({dim[0]}, {dim[1]})")
    return A.movedim((d0, d1), (-2, -1)), (d0, d1)


def _restore_keepdim(r: Tensor, dims: tuple[int, int], keepdim: bool) -> Tensor:
    if not keepdim:
        return r
    for d in sorted(dims):
        r = r.unsqueeze(d)
    return r


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> Tensor:
    """Frobenius ('fro'), nuclear ('nuc'), spectral (2, -2: largest/smallest singular value) and induced
    1 / inf norms (max column / row sums; -1 / -inf the minimum)."""
    if A.dim() < 2:
        raise RuntimeError(f"[linalg.matrix_norm] The input tensor A must have at least 2 dimensions (got shape "
                           f"{list(A.shape)}).")
    if len(dim) != 2:
        raise RuntimeError(f"[linalg.matrix_norm] dim must be a 2-tuple. Got {tuple(dim)}")
    if not A.dtype.is_floating_point:
        raise RuntimeError(f"[linalg.matrix_norm] Expected a floating point or complex tensor as input. Got "
                           f"{_torch_name(A.dtype)}")
    if dtype is not None:
        A = A.to(dtype)
    if ord == "fro":
        return vector_norm(A, 2, dim, keepdim)
    moved, dims = _move_last_two(A, dim)
    if ord == "nuc" or ord in (2, -2):
        sv = svdvals(moved)
        r = sv.sum(-1) if ord == "nuc" else (sv.amax(-1) if ord == 2 else sv.amin(-1))
        return _restore_keepdim(r, dims, keepdim)
    if ord in (1, -1, math.inf, -math.inf):
        # 1: max over columns of the column sums (sum over rows); inf: max over rows of the row sums.
        sums = moved.abs().sum(-2 if ord in (1, -1) else -1)
        r = sums.amax(-1) if ord > 0 else sums.amin(-1)
        return _restore_keepdim(r, dims, keepdim)
    raise RuntimeError(f"[linalg.matrix_norm] Order {ord} not supported.")


def norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """torch.linalg.norm: a vector norm for 1 dim (or a flattened input), a matrix norm for 2."""
    if isinstance(dim, int):
        dim = (dim,)
    if dim is not None and len(dim) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    if dim is None and ord is not None:
        if A.dim() == 2:
            return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
        if A.dim() != 1:
            raise RuntimeError(f"[linalg.norm] If dim is not specified but ord is, the input must be 1D or 2D. Got "
                               f"{A.dim()}D.")
    if isinstance(ord, str):
        raise RuntimeError(f"[linalg.norm] ord={ord!r} is a matrix norm: pass a 2-tuple dim (got dim={dim})")
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def cond(A: Tensor, p=None) -> Tensor:
    """Condition number: s_max / s_min for p in (None, 2, -2 inverted); norm(A) * norm(A^-1) otherwise."""
    if p is None or p in (2, -2):
        _check_matrix(A, "linalg.cond")
        sv = svdvals(A)
        big, small = sv[..., 0], sv[..., -1]
        return big / small if p != -2 else small / big
    _check_matrix(A, "linalg.cond", square=True)
    return matrix_norm(A, p) * matrix_norm(inv(A), p)


# ---- pseudo-inverse, least squares, rank --------------------------------------------------------------

def _tolerances(A: Tensor, atol, rtol, top: Tensor) -> Tensor:
    """torch's rule: rtol defaults to eps * max(m, n) unless a positive atol is given; the cutoff is
    max(atol, rtol * largest singular value)."""
    atol_given = atol is not None and not (isinstance(atol, (int, float)) and atol == 0)
    if rtol is None:
        rtol = 0.0 if atol_given else _eps(A.dtype) * max(A.shape[-2], A.shape[-1])
    atol = 0.0 if atol is None else atol
    tol = top * rtol
    return _C.maximum(tol, atol if isinstance(atol, Tensor) else _C.full_like(tol, atol))


class _Pinv(Function):
    """pinv through the SVD in the forward; torch's explicit backward (valid for constant rank),
    which unlike the SVD's needs no distinct singular values."""

    @staticmethod
    def forward(ctx, A, atol, rtol, hermitian):
        if hermitian:
            L, V = _C._linalg_eigh(A, False, True)
            tol = _tolerances(A, atol, rtol, L.abs().amax(-1, keepdim=True))
            inv_l = _C.where(L.abs() > tol, L.reciprocal(), _C.zeros_like(L))
            P = (V * inv_l.unsqueeze(-2)) @ V.mT
        else:
            U, S, Vh = _C._linalg_svd(A, False, True)
            top = S[..., :1] if S.shape[-1] else _C.zeros(tuple(S.shape[:-1]) + (1,), dtype=S.dtype, device=S.device)
            tol = _tolerances(A, atol, rtol, top)
            inv_s = _C.where(S > tol, S.reciprocal(), _C.zeros_like(S))
            P = (Vh.mT * inv_s.unsqueeze(-2)) @ U.mT
        ctx.save_for_backward(A, P)
        return P

    @staticmethod
    def backward(ctx, g):
        A, P = ctx.saved_tensors
        m, n = A.shape[-2], A.shape[-1]
        Pt, gt = P.mT, g.mT
        if m <= n:
            K = gt @ P
            KPt = K @ Pt
            gA = -(P @ K).mT + KPt - (A @ P) @ KPt + (Pt @ P) @ (gt - K @ A)
        else:
            K = P @ gt
            PtK = Pt @ K
            gA = -(K @ P).mT + (gt - A @ K) @ P @ Pt + PtK - PtK @ P @ A
        return gA, None, None, None


def pinv(A: Tensor, *, atol=None, rtol=None, hermitian: bool = False, rcond=None) -> Tensor:
    """Moore-Penrose pseudo-inverse; singular values at or below max(atol, rtol * s_max) count as zero."""
    _check_matrix(A, "linalg.pinv")
    if rcond is not None:  # torch's older spelling of rtol
        rtol = rcond
    return _Pinv.apply(A, atol, rtol, hermitian)


def matrix_rank(A: Tensor, *, atol=None, rtol=None, hermitian: bool = False, tol=None) -> Tensor:
    _check_matrix(A, "linalg.matrix_rank")
    if tol is not None:  # torch's deprecated absolute tolerance
        atol, rtol = tol, 0.0
    sv = eigvalsh(A).abs() if hermitian else svdvals(A)
    if sv.shape[-1] == 0:
        return _C.zeros(tuple(sv.shape[:-1]), dtype=_C.int64, device=A.device)
    tol_ = _tolerances(A, atol, rtol, sv.amax(-1, keepdim=True))
    return (sv > tol_).sum(-1)


def _is_vector_rhs(A: Tensor, B: Tensor) -> bool:
    return B.dim() == 1 or (B.dim() == A.dim() - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


def lstsq(A: Tensor, B: Tensor, rcond=None, *, driver=None):
    """Minimum-norm least-squares solutions of A X = B through the pseudo-inverse (the gradient is
    torch's, which also differentiates through pinv). Outputs follow torch's drivers: 'gelsy' (the
    CPU default) returns the rank; 'gels' the residuals for tall full-rank A; 'gelsd'/'gelss' all of
    residuals, rank and singular values."""
    api = "torch.linalg.lstsq"
    if A.dtype != B.dtype:
        raise RuntimeError(f"[{api}] Expected input and other to have the same dtype, but got input's dtype "
                           f"{_torch_name(A.dtype)} and other's dtype {_torch_name(B.dtype)}")
    _check_matrix(A, api)
    drivers = ("gels", "gelsy", "gelsd", "gelss")
    if driver is None:
        driver = "gels" if A.device.type == "cuda" else "gelsy"
    if driver not in drivers:
        raise RuntimeError(f"[{api}] parameter `driver` should be one of {drivers}")
    vector = _is_vector_rhs(A, B)
    Bm = B.unsqueeze(-1) if vector else B
    m, n = A.shape[-2], A.shape[-1]
    if Bm.shape[-2] != m:
        raise RuntimeError(f"[{api}] input.size(-2) should match other.size(-2) (got {list(A.shape)} and "
                           f"{list(B.shape)})")
    rtol = _eps(A.dtype) * max(m, n) if rcond is None or rcond < 0 else rcond
    X = pinv(A, rtol=rtol) @ Bm
    empty = _C.empty(0, dtype=A.dtype, device=A.device)
    rank = empty.long()
    sv = empty
    if driver != "gels":
        with_sv = svdvals(A)
        rank = (with_sv > rtol * with_sv[..., :1]).sum(-1) if with_sv.shape[-1] else \
            _C.zeros(tuple(A.shape[:-2]), dtype=_C.int64, device=A.device)
        if driver in ("gelsd", "gelss"):
            sv = with_sv
    residuals = empty
    if driver != "gelsy" and m > n:
        full_rank = bool((matrix_rank(A) == n).all().item())
        if full_rank:
            residuals = ((A @ X - Bm) ** 2).sum(-2)
            if vector:
                residuals = residuals.squeeze(-1)
    return _LstsqResult(X.squeeze(-1) if vector else X, residuals, rank, sv)


# ---- products and the rest ----------------------------------------------------------------------------

def matrix_power(A: Tensor, n: int) -> Tensor:
    """A^n by repeated squaring; n < 0 inverts first; n == 0 gives identities of A's shape."""
    _check_matrix(A, "linalg.matrix_power", square=True)
    if not isinstance(n, int):
        raise TypeError(f"[linalg.matrix_power] n must be an int, got {type(n).__name__}")
    if n == 0:  # like torch, written into a copy of A: the result stays connected (zero gradient)
        return A.clone().copy_(_C.eye(A.shape[-1], dtype=A.dtype, device=A.device).expand(A.shape))
    base = inv(A) if n < 0 else A
    n = abs(n)
    result = None
    while True:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if not n:
            return result
        base = base @ base


def multi_dot(tensors) -> Tensor:
    """The chained product; the first tensor may be a row vector and the last a column vector."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"[linalg.multi_dot] expected at least 2 tensors but got {len(tensors)}")
    for i, t in enumerate(tensors):
        ok = t.dim() == 2 or (t.dim() == 1 and i in (0, len(tensors) - 1))
        if not ok:
            raise RuntimeError(f"[linalg.multi_dot] tensor {i} must be 2D"
                               f"{' or 1D' if i in (0, len(tensors) - 1) else ''} but got {t.dim()}D")
    out = tensors[0]
    for t in tensors[1:]:
        out = out @ t
    return out


def cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """The 3-vector cross product along `dim` (inputs broadcast): c_i = a_{i+1} b_{i+2} - a_{i+2} b_{i+1}
    (indices mod 3)."""
    if input.dim() != other.dim():
        raise RuntimeError(f"[linalg.cross] inputs must have the same number of dimensions. Got {input.dim()} and "
                           f"{other.dim()}")
    if input.shape[dim] != 3 or other.shape[dim] != 3:
        raise RuntimeError(f"[linalg.cross] inputs dimension {dim} must have length 3. Got {input.shape[dim]} and "
                           f"{other.shape[dim]}")
    next1 = _C.tensor([1, 2, 0], dtype=_C.int64, device=input.device)
    next2 = _C.tensor([2, 0, 1], dtype=_C.int64, device=input.device)
    a1, a2 = _C.index_select(input, dim, next1), _C.index_select(input, dim, next2)
    b1, b2 = _C.index_select(other, dim, next1), _C.index_select(other, dim, next2)
    return a1 * b2 - a2 * b1


def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    return (x * y).sum(dim)


def _linalg_diagonal(A: Tensor, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """torch.linalg.diagonal: torch.diagonal with the last two dims as defaults (a view)."""
    from .._shape_ops import diagonal_view
    return diagonal_view(A, offset, dim1, dim2)


diagonal = _linalg_diagonal


def matmul(input: Tensor, other: Tensor) -> Tensor:
    return _C.matmul(input, other)


def vander(x: Tensor, *, N=None) -> Tensor:
    """Columns x^0, x^1, ..., x^(N-1) (increasing powers) along a new last dim."""
    if x.dim() < 1:
        raise RuntimeError("[linalg.vander] x must have at least one dimension")
    n = x.shape[-1] if N is None else N
    if n < 0:
        raise RuntimeError(f"[linalg.vander] N must be non-negative, got {n}")
    if n == 0:
        return _C.empty(tuple(x.shape) + (0,), dtype=x.dtype, device=x.device)
    powers = [_C.ones_like(x)]
    for _ in range(1, n):
        powers.append(powers[-1] * x)
    return _C.stack(powers, -1)


def matrix_exp(A: Tensor) -> Tensor:
    """exp(A) by scaling and squaring with a degree-[13/13] Padé approximant (Higham 2005), made of
    matmuls and one solve, so it is differentiable like any composite."""
    _check_matrix(A, "linalg.matrix_exp", square=True)
    if A.numel() == 0:
        return A.clone()
    b = [64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0, 129060195264000.0,
         10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0, 40840800.0, 960960.0, 16380.0, 182.0, 1.0]
    theta13 = 5.371920351148152
    norm1 = float(A.detach().abs().sum(-2).amax().item())
    s = max(0, math.ceil(math.log2(norm1 / theta13))) if norm1 > theta13 else 0
    X = A / (2 ** s) if s else A
    eye = _C.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    X2 = X @ X
    X4 = X2 @ X2
    X6 = X4 @ X2
    U = X @ (X6 @ (b[13] * X6 + b[11] * X4 + b[9] * X2) + b[7] * X6 + b[5] * X4 + b[3] * X2 + b[1] * eye)
    V = X6 @ (b[12] * X6 + b[10] * X4 + b[8] * X2) + b[6] * X6 + b[4] * X4 + b[2] * X2 + b[0] * eye
    R = solve(V - U, V + U)
    for _ in range(s):
        R = R @ R
    return R


# ---- helpers ------------------------------------------------------------------------------------------

_TORCH_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16", "int64": "Long",
                "int32": "Int", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def _torch_name(dtype) -> str:
    return _TORCH_NAMES[repr(dtype).split(".")[-1]]


def _prod(xs) -> int:
    p = 1
    for x in xs:
        p *= x
    return p

