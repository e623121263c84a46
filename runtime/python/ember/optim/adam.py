"""Adam (L2 weight decay added to the gradient, or decoupled: AdamW), as torch.optim.Adam, amsgrad
included.

Every path runs ember's multi-tensor op `_C._adam_multi_step_` (Note [Multi-tensor optimizer steps] in
runtime/csrc/ops/optim.cpp; Note [Optimizer implementations] in optimizer.py): one call per param
group by default, with foreach=True or fused=True; once per parameter with foreach=False. state["step"] is a 0-dim float32 tensor on the parameter's device that the op
increments and reads itself, and a tensor lr is read by the op on the device, so no step waits on the
host and a step captured in a CUDA graph (ember.cuda.make_graphed_step) computes fresh bias
corrections on every replay and follows an LR scheduler that writes a tensor lr.
"""
from __future__ import annotations

import ember

from .optimizer import Optimizer, check_flags, check_fused_param, check_tensor_lr, use_multi_tensor


def _check(name, lr, betas, eps, weight_decay):
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if isinstance(betas[0], ember.Tensor) or isinstance(betas[1], ember.Tensor):
        raise NotImplementedError(f"[{name}] betas as Tensors are not supported; pass floats")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


def _step_tensor(value, device):
    """A loaded state["step"] as the op keeps it: a new 0-dim float32 tensor on `device`.
    Converts the int steps of older checkpoints and CPU step tensors; never aliases `value`."""
    if not isinstance(value, ember.Tensor):
        return ember.tensor(float(value), dtype=ember.float32, device=device)
    if value.dim() == 0 and value.dtype == ember.float32 and value.device == device:
        return value.clone()
    if value.numel() != 1:
        raise ValueError(f"[Adam] state['step'] must hold one number, got a tensor of shape {tuple(value.shape)}")
    return value.detach().reshape(()).to(ember.float32).to(device).clone()


class Adam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, foreach=None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None, decoupled_weight_decay: bool = False):
        name = type(self).__name__
        check_tensor_lr(name, lr, foreach, capturable)
        _check(name, lr, betas, eps, weight_decay)
        check_flags(name, foreach, fused, differentiable)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=False, fused=fused,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _load_step(self, value, param):
        return _step_tensor(value, param.device)

    def _check_group(self, group, params):
        """torch's step-time checks, with the optimizer named."""
        name = type(self).__name__
        if group["foreach"] and isinstance(group["lr"], ember.Tensor) and not group["capturable"]:
            raise RuntimeError(f"[{name}] lr as a Tensor is not supported for capturable=False and foreach=True")
        if group["capturable"] and not group["fused"]:
            for p in params:
                if p.device.type != "cuda":
                    raise RuntimeError(f"[{name}] If capturable=True, params and state_steps must be on supported "
                                       f"devices: ['cuda'] (got a param on {p.device}); capturable is for CUDA "
                                       "graphs. Pass capturable=False for CPU params")

    def _init_state(self, group, p):
        state = self._param_state(p)
        if not state:
            if group["fused"]:
                check_fused_param(type(self).__name__, p)
            state["step"] = ember.zeros((), dtype=ember.float32, device=p.device)
            state["exp_avg"] = ember.zeros_like(p)
            state["exp_avg_sq"] = ember.zeros_like(p)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = ember.zeros_like(p)
        return state

    def _update_group(self, group, params):
        self._check_group(group, params)
        (beta1, beta2), amsgrad = group["betas"], group["amsgrad"]
        hyper = dict(beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"], amsgrad=amsgrad,
                     decoupled=group["decoupled_weight_decay"], maximize=group["maximize"])
        states = [self._init_state(group, p) for p in params]
        chunks = [range(len(params))] if use_multi_tensor(group) else [[i] for i in range(len(params))]
        for chunk in chunks:
            st = [states[i] for i in chunk]
            ember._C._adam_multi_step_(
                [params[i] for i in chunk], [params[i].grad for i in chunk], [s["exp_avg"] for s in st],
                [s["exp_avg_sq"] for s in st], [s["max_exp_avg_sq"] for s in st] if amsgrad else [],
                [s["step"] for s in st], lr=group["lr"], **hyper)
