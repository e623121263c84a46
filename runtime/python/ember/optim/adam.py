"""Adam (L2 weight decay added to the gradient), as torch.optim.Adam (amsgrad included)."""
from __future__ import annotations

import math

import ember

from .optimizer import Optimizer


def _check(lr, betas, eps, weight_decay):
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameters: {betas}")
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, maximize: bool = False, foreach=None):
        _check(lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _update_group(self, group, params):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        wd, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
        for p in params:
            grad = -p.grad if maximize else p.grad
            state = self._param_state(p)
            if not state:
                state["step"] = 0
                state["exp_avg"] = ember.zeros_like(p)
                state["exp_avg_sq"] = ember.zeros_like(p)
                if amsgrad:
                    state["max_exp_avg_sq"] = ember.zeros_like(p)
            state["step"] += 1
            step = state["step"]
            if wd != 0:
                if self._decoupled:
                    p.mul_(1.0 - lr * wd)
                else:
                    grad = grad.add(p, alpha=wd)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)
            exp_avg_sq.mul_(beta2).add_(grad * grad, alpha=1.0 - beta2)
            if amsgrad:
                state["max_exp_avg_sq"].copy_(ember.maximum(state["max_exp_avg_sq"], exp_avg_sq))
                second = state["max_exp_avg_sq"]
            else:
                second = exp_avg_sq
            bias_correction1 = 1.0 - beta1 ** step
            bias_correction2_sqrt = math.sqrt(1.0 - beta2 ** step)
            denom = second.sqrt().mul_(1.0 / bias_correction2_sqrt).add_(eps)
            p.add_(exp_avg / denom, alpha=-lr / bias_correction1)
