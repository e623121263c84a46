"""ember.special: the part of torch.special that ember's ops cover (aliases and short compositions).
Functions needing special-function kernels ember lacks (gamma family, Bessel, zeta, ...) are absent,
so a script using them stops with torchcompat's "ember does not implement" error."""
from __future__ import annotations

import math

from . import _C
from ._C import Tensor
from ._pointwise import _xlogy, logit, sinc, xlogy
from .autograd.function import Function

__all__ = ["entr", "erf", "erfc", "erfinv", "exp2", "expit", "expm1", "log1p", "log_softmax", "logit", "logsumexp",
           "ndtr", "ndtri", "round", "sinc", "softmax", "xlog1py", "xlogy"]

# torch.special names for ember's own ops, looked up when used (an op ember lacks is then absent
# here too, with the usual AttributeError).
_ALIASES = {"erf": "erf", "erfc": "erfc", "erfinv": "erfinv", "exp2": "exp2", "expit": "sigmoid", "expm1": "expm1",
            "log1p": "log1p", "logsumexp": "logsumexp", "round": "round"}


def __getattr__(name: str):
    if name in _ALIASES:
        return getattr(_C, _ALIASES[name])
    raise AttributeError(f"module 'ember.special' has no attribute '{name}'")


def __dir__():
    return sorted(set(globals()) | set(_ALIASES))


def softmax(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    return _C.softmax(input, dim, dtype)


def log_softmax(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    return _C.log_softmax(input, dim, dtype)


def _float(x: Tensor) -> Tensor:
    return x if x.dtype.is_floating_point else x.to(_C.float32)


def ndtr(input: Tensor) -> Tensor:
    """The standard normal CDF, (1 + erf(x / sqrt 2)) / 2."""
    return (1 + _C.erf(_float(input) * (1 / math.sqrt(2)))) * 0.5


def ndtri(input: Tensor) -> Tensor:
    """The inverse of ndtr: sqrt 2 * erfinv(2p - 1)."""
    return _C.erfinv(_float(input) * 2 - 1) * math.sqrt(2)


class _Entr(Function):
    """-x log x: 0 at 0, -inf below 0, NaN for NaN; torch's gradient -(1 + log x) everywhere."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        safe = _C.where(x > 0, x, _C.ones_like(x))
        out = _C.where(x > 0, -safe * _C.log(safe), _C.zeros_like(x))
        out = _C.where(x < 0, _C.full_like(x, -math.inf), out)
        return _C.where(x.isnan(), x, out)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return -g * (1 + _C.log(x))


def entr(input: Tensor) -> Tensor:
    return _Entr.apply(_float(input))


def xlog1py(input, other) -> Tensor:
    """input * log1p(other), 0 where input is 0 (unless other is NaN)."""
    return _xlogy(input, other, True)
