"""SGD with momentum, dampening, Nesterov and (coupled) weight decay, as torch.optim.SGD."""
from __future__ import annotations

from .optimizer import Optimizer, check_foreach, required


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, *, maximize: bool = False, foreach=None, differentiable: bool = False,
                 fused=None):
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        check_foreach("SGD", foreach, fused)
        if fused:
            raise NotImplementedError("[SGD] fused=True: ember has no fused SGD kernel; pass fused=None or False")
        if differentiable:
            raise NotImplementedError("[SGD] differentiable=True (autograd through the update) is not supported")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize, foreach=foreach))

    def _update_group(self, group, params):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        wd, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
        for p in params:
            d_p = p.grad
            if maximize:
                d_p = -d_p
            if wd != 0:
                d_p = d_p.add(p, alpha=wd)
            if momentum != 0:
                state = self._param_state(p)
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = d_p.clone()
                    state["momentum_buffer"] = buf
                else:
                    buf.mul_(momentum).add_(d_p, alpha=1.0 - dampening)
                d_p = d_p.add(buf, alpha=momentum) if nesterov else buf
            p.add_(d_p, alpha=-lr)
