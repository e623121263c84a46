"""AdamW: Adam with decoupled weight decay (p *= 1 - lr * wd before the Adam step); fused as Adam is."""
from __future__ import annotations

from .adam import Adam, _check
from .optimizer import Optimizer, check_foreach


class AdamW(Adam):
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False, foreach=None, fused: bool | None = None):
        _check(lr, betas, eps, weight_decay)
        check_foreach(type(self).__name__, foreach, fused)
        Optimizer.__init__(self, params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                              amsgrad=amsgrad, maximize=maximize, foreach=foreach, fused=fused))
