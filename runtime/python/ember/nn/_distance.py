"""pairwise_distance and pdist of ember.nn.functional."""
from __future__ import annotations

import ember
from ember import Tensor

__all__ = ["pairwise_distance", "pdist"]


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p over the last dim (of the broadcast shape), as torch."""
    d = max(x1.dim(), x2.dim())
    if d == 0:
        return (x1 - x2 + eps).abs()
    return (x1 - x2 + eps).norm(p, d - 1, keepdim=keepdim)


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm distances between all pairs of rows i < j of an (N, M) input, row-major (N(N-1)/2 values)."""
    if input.dim() != 2:
        raise RuntimeError(f"[pdist] pdist only supports 2D tensors, got: {input.dim()}D (input of shape "
                           f"{list(input.shape)})")
    if p < 0:
        raise RuntimeError(f"[pdist] pdist only supports non-negative p values, got {p}")
    n = input.shape[0]
    rows = [i for i in range(n) for _ in range(i + 1, n)]
    cols = [j for i in range(n) for j in range(i + 1, n)]
    if not rows:
        return input.reshape(-1).narrow(0, 0, 0)  # empty, still attached to input's graph
    ii = ember.tensor(rows, dtype=ember.int64, device=input.device)
    jj = ember.tensor(cols, dtype=ember.int64, device=input.device)
    diff = ember.index_select(input, 0, ii) - ember.index_select(input, 0, jj)
    return diff.norm(p, 1)
