"""Adam (L2 weight decay added to the gradient), as torch.optim.Adam (amsgrad included).

Without amsgrad every parameter takes one fused op, `_C._adam_step_` (Note [Fused Adam step] in
runtime/csrc/ops/optim.cpp), instead of ~11 small ops. state["step"] is a 0-dim float32 tensor on the
parameter's device that the op reads and increments itself, so a step captured in a CUDA graph
(ember.cuda.make_graphed_step) computes fresh bias corrections on every replay. The amsgrad path stays
in Python: it reads the step on the host, so it is not graph-capturable.
"""
from __future__ import annotations

import math

import ember

from .optimizer import Optimizer, check_foreach

_FUSED_DTYPES = (ember.float16, ember.bfloat16, ember.float32, ember.float64)


def _check(lr, betas, eps, weight_decay):
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0 or not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameters: {betas}")
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


def _step_tensor(value, device):
    """A loaded state["step"] as the fused op keeps it: a new 0-dim float32 tensor on `device`.
    Converts the int steps of older checkpoints and CPU step tensors; never aliases `value`."""
    if not isinstance(value, ember.Tensor):
        return ember.tensor(float(value), dtype=ember.float32, device=device)
    if value.dim() == 0 and value.dtype == ember.float32 and value.device == device:
        return value.clone()
    if value.numel() != 1:
        raise ValueError(f"[Adam] state['step'] must hold one number, got a tensor of shape {tuple(value.shape)}")
    return value.detach().reshape(()).to(ember.float32).to(device).clone()


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, maximize: bool = False, foreach=None, fused: bool | None = None):
        # fused: None/True use the fused op wherever it applies (not amsgrad); False forces the Python path.
        _check(lr, betas, eps, weight_decay)
        check_foreach(type(self).__name__, foreach, fused)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize, foreach=foreach, fused=fused))

    def _load_step(self, value, param):
        return _step_tensor(value, param.device)

    def _update_group(self, group, params):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        wd, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
        use_fused = not amsgrad and group.get("fused") is not False
        for p in params:
            state = self._param_state(p)
            if not state:
                state["step"] = ember.zeros((), dtype=ember.float32, device=p.device)
                state["exp_avg"] = ember.zeros_like(p)
                state["exp_avg_sq"] = ember.zeros_like(p)
            step = state["step"]  # a device tensor from creation or load_state_dict (_load_step)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            # The op itself rejects a grad or state of another shape, dtype or device with a clear error.
            if use_fused and p.dtype in _FUSED_DTYPES:
                ember._C._adam_step_(p, p.grad, exp_avg, exp_avg_sq, step, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                                     weight_decay=wd, decoupled=self._decoupled, maximize=maximize)
            else:
                self._python_update(p, state, step, lr, beta1, beta2, eps, wd, amsgrad, maximize)

    def _python_update(self, p, state, step, lr, beta1, beta2, eps, wd, amsgrad, maximize):
        grad = -p.grad if maximize else p.grad
        step.add_(1)
        step_value = float(step.item())  # a host read, as torch's non-capturable path
        if wd != 0:
            if self._decoupled:
                p.mul_(1.0 - lr * wd)
            else:
                grad = grad.add(p, alpha=wd)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1.0 - beta1)
        exp_avg_sq.mul_(beta2).add_(grad * grad, alpha=1.0 - beta2)
        if amsgrad:
            if "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = ember.zeros_like(p)
            state["max_exp_avg_sq"].copy_(ember.maximum(state["max_exp_avg_sq"], exp_avg_sq))
            second = state["max_exp_avg_sq"]
        else:
            second = exp_avg_sq
        bias_correction1 = 1.0 - beta1 ** step_value
        bias_correction2_sqrt = math.sqrt(1.0 - beta2 ** step_value)
        denom = (second.sqrt() / bias_correction2_sqrt).add_(eps)
        p.add_(exp_avg / denom, alpha=-lr / bias_correction1)
