"""torch's matrix and vector products and matrix builders, as compositions of ember ops (so autograd
and every device come for free): baddbmm/addbmm/addmv/addr, mv, inner, ger, vdot, chain_matmul,
trace, kron, cdist, dist, renorm, block_diag, diag, diag_embed, diagflat, tril/triu_indices,
cartesian_prod, combinations, cross; and the top-level spellings of torch.linalg's factorizations
(det, logdet, inverse, pinverse, cholesky*, qr, svd, triangular_solve, lu_unpack, lu_solve,
matrix_power, matrix_exp)."""
from __future__ import annotations

import collections
import itertools
import warnings

from . import _C, linalg
from ._C import Tensor
from ._shape_ops import diagonal_view
from .autograd.function import Function

__all__ = ["baddbmm", "addbmm", "addmv", "addr", "mv", "inner", "ger", "vdot", "chain_matmul", "trace", "kron",
           "cdist", "dist", "renorm", "block_diag", "diag", "diag_embed", "diagflat", "tril_indices", "triu_indices",
           "cartesian_prod", "combinations", "cross", "det", "logdet", "slogdet", "inverse", "pinverse", "cholesky",
           "cholesky_solve", "cholesky_inverse", "qr", "svd", "triangular_solve", "lu_unpack", "lu_solve",
           "matrix_power", "matrix_exp"]


def _check_scalars(op: str, dtype, beta, alpha) -> None:
    if not dtype.is_floating_point and dtype != _C.bool:
        for name, v in (("beta", beta), ("alpha", alpha)):
            if isinstance(v, float) and not v.is_integer():
                raise RuntimeError(f"[{op}] For integral input tensors, argument {name} must not be a floating point "
                                   f"number.")


def _scaled_sum(op: str, input: Tensor, product: Tensor, beta, alpha) -> Tensor:
    """beta * input + alpha * product; beta == 0 ignores input (NaN and inf included), as torch does."""
    _check_scalars(op, product.dtype, beta, alpha)
    if input.dtype != product.dtype:
        raise RuntimeError(f"[{op}] expected self and the product to have the same dtype, got {input.dtype} and "
                           f"{product.dtype}")
    out_shape = _C.broadcast_to(input, tuple(product.shape)).shape  # torch requires input to broadcast to it
    scaled = product if alpha == 1 else product * alpha
    if beta == 0:
        return scaled.expand(out_shape).clone() if tuple(scaled.shape) != tuple(out_shape) else scaled
    return scaled + (input if beta == 1 else input * beta)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    return _scaled_sum("baddbmm", input, _C.bmm(batch1, batch2), beta, alpha)


def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * sum_i batch1[i] @ batch2[i]."""
    if batch1.dim() != 3 or batch2.dim() != 3:
        raise RuntimeError(f"[addbmm] batch1 and batch2 must be 3D tensors, got {list(batch1.shape)} and "
                           f"{list(batch2.shape)}")
    if batch1.shape[0] != batch2.shape[0] or batch1.shape[2] != batch2.shape[1]:
        raise RuntimeError(f"[addbmm] batch1 and batch2 shapes cannot be multiplied ({list(batch1.shape)} and "
                           f"{list(batch2.shape)})")
    b, n, k = batch1.shape
    m = batch2.shape[2]
    # sum_i A_i B_i == [A_0 | A_1 | ...] @ [B_0; B_1; ...]: one GEMM.
    product = _C.mm(batch1.permute(1, 0, 2).reshape(n, b * k), batch2.reshape(b * k, m))
    return _scaled_sum("addbmm", input, product, beta, alpha)


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:
    return _scaled_sum("addmv", input, mv(mat, vec), beta, alpha)


def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta=1, alpha=1) -> Tensor:
    if vec1.dim() != 1 or vec2.dim() != 1:
        raise RuntimeError(f"[addr] 1D tensors expected, but got {vec1.dim()}D and {vec2.dim()}D tensors")
    if input.dtype == _C.bool:  # torch: logical and / or for bool
        prod = _C.logical_and(vec1.unsqueeze(1), vec2.unsqueeze(0))
        if not alpha:
            prod = _C.zeros_like(prod)
        return _C.logical_or(prod, input) if beta else prod
    return _scaled_sum("addr", input, vec1.unsqueeze(1) * vec2.unsqueeze(0), beta, alpha)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    if input.dim() != 2 or vec.dim() != 1:
        raise RuntimeError(f"[mv] vector + matrix @ vector expected, got {input.dim()}D, {vec.dim()}D (shapes "
                           f"{list(input.shape)} and {list(vec.shape)})")
    if input.shape[1] != vec.shape[0]:
        raise RuntimeError(f"[mv] size mismatch, got input ({input.shape[0]}), mat ({input.shape[0]}x"
                           f"{input.shape[1]}), vec ({vec.shape[0]})")
    return _C.matmul(input, vec)


def inner(input: Tensor, other: Tensor) -> Tensor:
    """Sum over the last dims; a 0-dim operand multiplies."""
    if input.dim() == 0 or other.dim() == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise RuntimeError(f"[inner] inner() the last dimension must match on both input tensors but got shapes "
                           f"{list(input.shape)} and {list(other.shape)}")
    from ._einsum import tensordot
    return tensordot(input, other, dims=([-1], [-1]))


def ger(input: Tensor, vec2: Tensor) -> Tensor:
    """The outer product of two vectors (torch's older name for outer)."""
    if input.dim() != 1 or vec2.dim() != 1:
        raise RuntimeError(f"[ger] 1D tensors expected, but got {input.dim()}D and {vec2.dim()}D tensors")
    return input.unsqueeze(1) * vec2.unsqueeze(0)


def vdot(input: Tensor, other: Tensor) -> Tensor:
    return _C.dot(input, other)


def chain_matmul(*matrices) -> Tensor:
    warnings.warn("torch.chain_matmul is deprecated and will be removed in a future PyTorch release. Use "
                  "torch.linalg.multi_dot instead.", stacklevel=2)
    if len(matrices) == 1:
        if matrices[0].dim() != 2:
            raise RuntimeError(f"[chain_matmul] expected a 2D tensor, got {matrices[0].dim()}D")
        return matrices[0].clone()
    for i, t in enumerate(matrices):
        if t.dim() != 2:
            raise RuntimeError(f"[chain_matmul] tensor {i} must be 2D, got {t.dim()}D")
    return linalg.multi_dot(matrices)


def trace(input: Tensor) -> Tensor:
    """Sum of the main diagonal of a matrix (integers sum in int64, like torch.sum)."""
    if input.dim() != 2:
        raise RuntimeError(f"[trace] trace: expected a matrix, but got tensor with dim {input.dim()}")
    return diagonal_view(input).sum()


def kron(input: Tensor, other: Tensor) -> Tensor:
    """Kronecker product: out[i * b + j] = a[i] * b[j] per dim (the lower-rank operand gains leading 1s)."""
    nd = max(input.dim(), other.dim())
    a = input.reshape((1,) * (nd - input.dim()) + tuple(input.shape))
    b = other.reshape((1,) * (nd - other.dim()) + tuple(other.shape))
    # a as [a0, 1, a1, 1, ...] times b as [1, b0, 1, b1, ...], then merge each pair.
    a_shape, b_shape, out_shape = [], [], []
    for sa, sb in zip(a.shape, b.shape):
        a_shape += [sa, 1]
        b_shape += [1, sb]
        out_shape.append(sa * sb)
    return (a.reshape(a_shape) * b.reshape(b_shape)).reshape(out_shape)


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0, compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """p-norm distances between the rows of x1 [*, P, M] and x2 [*, R, M]. Euclidean distances use
    ||x||^2 + ||y||^2 - 2 x.y (one matmul) when torch would (compute_mode, or P or R above 25)."""
    if x1.dim() < 2 or x2.dim() < 2:
        raise RuntimeError(f"[cdist] cdist only supports at least 2D tensors, X1 got: {x1.dim()}D, X2 got: "
                           f"{x2.dim()}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"[cdist] X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: "
                           f"{x2.shape[-1]}")
    if not x1.dtype.is_floating_point or not x2.dtype.is_floating_point:
        raise RuntimeError(f"[cdist] cdist only supports floating-point dtypes, X1 got: {x1.dtype}, X2 got: "
                           f"{x2.dtype}")
    if p < 0:
        raise RuntimeError(f"[cdist] cdist only supports non-negative p values, got {p}")
    modes = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist")
    if compute_mode not in modes:
        raise ValueError(f"[cdist] {compute_mode} is not a valid value for compute_mode")
    P, R = x1.shape[-2], x2.shape[-2]
    use_mm = p == 2 and (compute_mode == "use_mm_for_euclid_dist" or
                         (compute_mode == modes[0] and (P > 25 or R > 25)))
    if use_mm:
        return _EuclideanCdist.apply(x1, x2)
    return _C.norm(x1.unsqueeze(-2) - x2.unsqueeze(-3), float(p), [-1])


class _EuclideanCdist(Function):
    """sqrt(||x||^2 + ||y||^2 - 2 x.y) with one matmul. The backward is torch's (g / d times the
    difference, 0 at zero distance) as matmuls: G = g / d, dx_i = sum_j G_ij x_i - (G y)_i. Squared
    distances within rounding of ||x||^2 + ||y||^2 count as zero: there the forward value is noise
    (torch's too) and g / d would amplify the matmuls' rounding."""

    @staticmethod
    def forward(ctx, x1, x2):
        sq1 = (x1 * x1).sum(-1, keepdim=True)
        sq2 = (x2 * x2).sum(-1, keepdim=True)
        d = (sq1 + sq2.mT - 2 * _C.matmul(x1, x2.mT)).clamp_min(0).sqrt()
        ctx.save_for_backward(x1, x2, d, sq1 + sq2.mT)
        return d

    @staticmethod
    def backward(ctx, g):
        x1, x2, d, scale = ctx.saved_tensors
        eps = 1.1920928955078125e-07 if d.dtype == _C.float32 else 2.220446049250313e-16
        G = _C.where(d * d <= 8 * eps * scale, _C.zeros_like(d), g / d)
        g1 = G.sum(-1, keepdim=True) * x1 - _C.matmul(G, x2)
        g2 = G.sum(-2).unsqueeze(-1) * x2 - _C.matmul(G.mT, x1)
        return _reduce_batch(g1, x1), _reduce_batch(g2, x2)


def _reduce_batch(g: Tensor, like: Tensor) -> Tensor:
    """g summed over the batch dims broadcasting gave it beyond like's shape."""
    return g if tuple(g.shape) == tuple(like.shape) else g.sum_to_size(*like.shape)


def dist(input: Tensor, other: Tensor, p: float = 2) -> Tensor:
    return _C.norm(input - other, float(p))


def renorm(input: Tensor, p: float, dim: int, maxnorm: float) -> Tensor:
    """Each slice along `dim` whose p-norm exceeds maxnorm is scaled to norm maxnorm (torch's factor
    maxnorm / (norm + 1e-7))."""
    if p <= 0:
        raise RuntimeError(f"[renorm] non-positive-norm not supported (p={p})")
    if maxnorm < 0:
        raise RuntimeError(f"[renorm] non-negative maxnorm expected, got {maxnorm}")
    if input.dim() <= 1:
        raise RuntimeError(f"[renorm] input needs at least 2 dimensions, got {input.dim()} dimensions")
    dim = dim % input.dim()
    others = [d for d in range(input.dim()) if d != dim]
    norms = _C.norm(input, float(p), others, True)
    factor = _C.where(norms > maxnorm, maxnorm / (norms + 1e-7), _C.ones_like(norms))
    return input * factor


def block_diag(*tensors) -> Tensor:
    """The tensors (0-d: 1x1, 1-d: a row, 2-d) along the diagonal of a zero matrix of their common dtype."""
    mats = []
    for i, t in enumerate(tensors):
        if t.dim() > 2:
            raise RuntimeError(f"[block_diag] Input tensors must have 2 or fewer dimensions. Input {i} has "
                               f"{t.dim()} dimensions")
        mats.append(t.reshape(1, 1) if t.dim() == 0 else t.unsqueeze(0) if t.dim() == 1 else t)
    if not mats:
        return _C.empty(1, 0)
    dtype = mats[0].dtype
    for m in mats[1:]:
        dtype = _C.promote_types(dtype, m.dtype)
    cols = sum(m.shape[1] for m in mats)
    pieces, c = [], 0
    for m in mats:
        # Each block row: zeros | block | zeros.
        left = _C.zeros(m.shape[0], c, dtype=dtype, device=m.device)
        right = _C.zeros(m.shape[0], cols - c - m.shape[1], dtype=dtype, device=m.device)
        pieces.append(_C.cat([left, m.to(dtype), right], 1))
        c += m.shape[1]
    return _C.cat(pieces, 0)


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices (over result dims dim1, dim2) whose offset-th diagonal holds input's last dim."""
    if input.dim() < 1:
        raise RuntimeError("[diag_embed] input must have at least 1 dimension")
    nd = input.dim() + 1
    d1, d2 = _wrap(dim1, nd, "diag_embed"), _wrap(dim2, nd, "diag_embed")
    if d1 == d2:
        raise RuntimeError(f"[diag_embed] diagonal dimensions cannot be identical {dim1}, {dim2}")
    n = input.shape[-1] + abs(offset)
    line = input
    if offset:
        line = _C.cat([input, _C.zeros(tuple(input.shape[:-1]) + (abs(offset),), dtype=input.dtype,
                                       device=input.device)], -1)
    # Position (i, i + offset): row i holds line[i] when offset >= 0, column j holds line[j] otherwise.
    grid = line.unsqueeze(-1) if offset >= 0 else line.unsqueeze(-2)
    grid = grid.expand(tuple(input.shape[:-1]) + (n, n))
    idx = _C.arange(n, device=input.device)
    mask = (idx.unsqueeze(1) + offset) == idx.unsqueeze(0)
    out = _C.where(mask, grid, _C.zeros((), dtype=input.dtype, device=input.device))
    return out.movedim((-2, -1), (d1, d2))


def _wrap(d: int, nd: int, op: str) -> int:
    if not -nd <= d < nd:
        raise IndexError(f"[{op}] Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but got {d})")
    return d % nd


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D input becomes a matrix with it on the `diagonal`-th diagonal; a 2-D input gives that diagonal."""
    if input.dim() == 1:
        return diag_embed(input, diagonal)
    if input.dim() == 2:
        return diagonal_view(input, diagonal).clone()
    raise RuntimeError(f"[diag] matrix or a vector expected, got a {input.dim()}D tensor")


def diagflat(input: Tensor, offset: int = 0) -> Tensor:
    return diag_embed(input.reshape(-1), offset)


def _tri_indices(row: int, col: int, offset: int, lower: bool, dtype, device) -> Tensor:
    import numpy as np
    r, c = np.tril_indices(row, offset, col) if lower else np.triu_indices(row, offset, col)
    return _C.from_numpy(np.stack([r, c]).astype(np.int64).reshape(2, -1)).to(dtype).to(device)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None) -> Tensor:
    """The 2 x N (row, col) coordinates of the lower triangle (row-major order)."""
    return _tri_indices(row, col, offset, True, _C.int64 if dtype is None else dtype, device or "cpu")


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None, layout=None) -> Tensor:
    return _tri_indices(row, col, offset, False, _C.int64 if dtype is None else dtype, device or "cpu")


def cartesian_prod(*tensors) -> Tensor:
    """Every combination of one element per 1-D input, as rows (itertools.product order)."""
    for i, t in enumerate(tensors):
        if t.dim() != 1:
            raise RuntimeError(f"[cartesian_prod] Expect a 1D vector, but got shape {list(t.shape)} (input {i})")
    if len(tensors) == 1:
        return tensors[0]
    from ._compat import meshgrid
    grids = meshgrid(*tensors, indexing="ij")
    return _C.stack([g.reshape(-1) for g in grids], 1)


def combinations(input: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:
    """The length-r combinations of a 1-D input's elements (itertools order), as rows."""
    if input.dim() != 1:
        raise RuntimeError(f"[combinations] Expect a 1D vector, but got shape {list(input.shape)}")
    if r < 0:
        raise RuntimeError(f"[combinations] Expect a non-negative number, but got {r}")
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = list(pick(range(input.shape[0]), r)) if r else []
    # Indexing even when nothing is picked keeps the result in the graph, as torch's is.
    index = _C.tensor(idx, dtype=_C.int64, device=input.device).reshape(-1)
    picked = input[index]
    return picked if r == 0 else picked.reshape(len(idx), r)


def cross(input: Tensor, other: Tensor, dim=None) -> Tensor:
    """torch.cross: linalg.cross along `dim`; without a dim, the first dim of size 3 (deprecated in
    torch, which warns)."""
    if dim is None:
        warnings.warn("Using torch.cross without specifying the dim arg is deprecated. Please either pass the dim "
                      "explicitly or simply use torch.linalg.cross.", stacklevel=2)
        dim = next((d for d, s in enumerate(input.shape) if s == 3), None)
        if dim is None:
            raise RuntimeError(f"[cross] no dimension of size 3 in input (shape {list(input.shape)})")
    return linalg.cross(input, other, dim=dim)


# ---- torch's top-level names for linalg -----------------------------------------------------------------

det = linalg.det
inverse = linalg.inv
matrix_power = linalg.matrix_power
matrix_exp = linalg.matrix_exp


def slogdet(A: Tensor):
    return linalg.slogdet(A)


def logdet(A: Tensor) -> Tensor:
    """log(det A): NaN for a negative determinant, -inf for a singular matrix."""
    sign, logabs = linalg.slogdet(A)
    return _C.where(sign < 0, _C.full_like(logabs, float("nan")), logabs)


def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    return linalg.pinv(input, atol=0.0, rtol=rcond)


def cholesky(input: Tensor, upper: bool = False) -> Tensor:
    return linalg.cholesky(input, upper=upper)


def cholesky_solve(B: Tensor, L: Tensor, upper: bool = False) -> Tensor:
    """X with (L L^T) X = B (or U^T U X = B for upper): two triangular solves."""
    if upper:
        y = linalg.solve_triangular(L.mT, B, upper=False)
        return linalg.solve_triangular(L, y, upper=True)
    y = linalg.solve_triangular(L, B, upper=False)
    return linalg.solve_triangular(L.mT, y, upper=True)


def cholesky_inverse(L: Tensor, upper: bool = False) -> Tensor:
    eye = _C.eye(L.shape[-1], dtype=L.dtype, device=L.device).expand(L.shape)
    return cholesky_solve(eye, L, upper)


_QR = collections.namedtuple("qr", "Q R")
_SVD = collections.namedtuple("svd", "U S V")
_TriangularSolve = collections.namedtuple("triangular_solve", "solution cloned_coefficient")
for _t in (_QR, _SVD, _TriangularSolve):
    _t.__module__ = "ember.return_types"


def qr(input: Tensor, some: bool = True):
    return _QR(*linalg.qr(input, "reduced" if some else "complete"))


def svd(input: Tensor, some: bool = True, compute_uv: bool = True):
    """torch.svd: U, S and V (not V^T); without compute_uv, U and V are zero matrices."""
    if not compute_uv:
        m, n = input.shape[-2], input.shape[-1]
        S = linalg.svdvals(input)
        batch = tuple(input.shape[:-2])
        return _SVD(_C.zeros(batch + (m, m), dtype=input.dtype, device=input.device), S,
                    _C.zeros(batch + (n, n), dtype=input.dtype, device=input.device))
    U, S, Vh = linalg.svd(input, full_matrices=not some)
    return _SVD(U, S, Vh.mT)


def triangular_solve(b: Tensor, A: Tensor, upper: bool = True, transpose: bool = False,
                     unitriangular: bool = False):
    """torch.triangular_solve (deprecated): X with op(A) X = b, op transposing when asked."""
    coefficient = A.mT if transpose else A
    X = linalg.solve_triangular(coefficient, b, upper=upper != transpose, unitriangular=unitriangular)
    return _TriangularSolve(X, A.clone())


def lu_unpack(LU_data: Tensor, LU_pivots: Tensor, unpack_data: bool = True, unpack_pivots: bool = True):
    P, L, U = linalg._unpack(LU_data, LU_pivots)
    empty = _C.empty(0, dtype=LU_data.dtype, device=LU_data.device)
    return linalg._LUResult(P if unpack_pivots else empty, L if unpack_data else empty, U if unpack_data else empty)


def lu_solve(b: Tensor, LU_data: Tensor, LU_pivots: Tensor) -> Tensor:
    return linalg.lu_solve(LU_data, LU_pivots, b)


# ---- Tensor methods ---------------------------------------------------------------------------------------

def _inplace(fn):
    """fn's result written into self. A self in the graph is read through a copy, so the values
    fn's backward saved are not the ones overwritten."""
    def method(self, *args, **kwargs):
        return self.copy_(fn(self.clone() if self.requires_grad else self, *args, **kwargs))
    method.__name__ = fn.__name__ + "_"
    return method


def _lu_method(self, pivot: bool = True, get_infos: bool = False):
    LU, pivots, info = linalg.lu_factor_ex(self, pivot=pivot)
    return (LU, pivots, info) if get_infos else (LU, pivots)


TENSOR_METHODS = {
    "addmm_": _inplace(_C.addmm), "baddbmm": baddbmm, "baddbmm_": _inplace(baddbmm), "addbmm": addbmm, "addbmm_": _inplace(addbmm),
    "addmv": addmv, "addmv_": _inplace(addmv), "addr": addr, "addr_": _inplace(addr), "mv": mv, "inner": inner,
    "ger": ger, "vdot": vdot, "trace": trace, "kron": kron, "dist": dist, "renorm": renorm,
    "renorm_": _inplace(renorm), "diag": diag, "diag_embed": diag_embed, "diagflat": diagflat, "cross": cross,
    "det": det, "logdet": logdet, "slogdet": slogdet, "inverse": inverse, "pinverse": pinverse,
    "cholesky": cholesky, "cholesky_solve": cholesky_solve, "cholesky_inverse": cholesky_inverse, "qr": qr,
    "svd": svd, "triangular_solve": triangular_solve, "lu_solve": lu_solve, "lu": _lu_method,
    "matrix_power": matrix_power, "matrix_exp": matrix_exp,
}
