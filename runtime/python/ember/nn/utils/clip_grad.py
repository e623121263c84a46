"""Gradient clipping by global norm."""
from __future__ import annotations

import ember

from .._grad import no_grad


def _sum(scalars):
    return ember.stack(scalars).sum()


def _check_foreach(op: str, foreach) -> None:
    if foreach:
        raise NotImplementedError(f"[{op}] foreach=True: ember has no multi-tensor (foreach) kernels; pass foreach=None "
                                  f"or False")


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None):
    """Scales all gradients in place so their joint norm is at most max_norm; returns the norm
    before clipping (a 0-dim tensor), like torch."""
    _check_foreach("clip_grad_norm_", foreach)
    if isinstance(parameters, ember.Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return ember.zeros(())
    norm_type = float(norm_type)
    with no_grad():
        if norm_type == float("inf"):
            total = ember.stack([g.abs().amax() for g in grads]).amax()
        elif norm_type == 2.0:
            total = _sum([(g * g).sum() for g in grads]).sqrt()
        else:
            total = _sum([(g.abs() ** norm_type).sum() for g in grads]) ** (1.0 / norm_type)
        if error_if_nonfinite and not bool(ember.isfinite(total).item()):
            raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                               "so it cannot be clipped.")
        coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef)
    return total


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    _check_foreach("clip_grad_value_", foreach)
    if isinstance(parameters, ember.Tensor):
        parameters = [parameters]
    with no_grad():
        for p in parameters:
            if p.grad is not None:
                p.grad.copy_(p.grad.clamp(-clip_value, clip_value))
