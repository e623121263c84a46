"""SGD with momentum, dampening, Nesterov and (coupled) weight decay, as torch.optim.SGD.

Every path runs ember's multi-tensor op `_C._sgd_multi_step_` (Note [Optimizer implementations] in
optimizer.py): one call per param group by default, with foreach=True or fused=True; once per
parameter with foreach=False. A tensor lr is read by the op on the device.
"""
from __future__ import annotations

import ember

from .optimizer import Optimizer, check_flags, check_fused_param, required, use_multi_tensor


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, *, maximize: bool = False, foreach=None, differentiable: bool = False,
                 fused=None):
        if isinstance(lr, ember.Tensor) and lr.numel() != 1:
            raise ValueError(f"[SGD] Tensor lr must be 1-element, got shape {tuple(lr.shape)}")
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        check_flags("SGD", foreach, fused, differentiable)
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize, foreach=foreach, differentiable=False,
                                      fused=fused))

    def _update_group(self, group, params):
        momentum = group["momentum"]
        hyper = dict(momentum=momentum, dampening=group["dampening"], weight_decay=group["weight_decay"],
                     nesterov=group["nesterov"], maximize=group["maximize"])
        if group["fused"]:
            for p in params:
                check_fused_param("SGD", p)
        runs = [(params, False)]
        if momentum != 0:
            # A param without a buffer starts it from its gradient (torch's first step: buf = grad), in a
            # call of its own.
            states = [self._param_state(p) for p in params]
            fresh = [st.get("momentum_buffer") is None for st in states]
            for p, st, new in zip(params, states, fresh):
                if new:
                    st["momentum_buffer"] = ember.empty_like(p)
            runs = [([p for p, new in zip(params, fresh) if not new], False),
                    ([p for p, new in zip(params, fresh) if new], True)]
        multi = use_multi_tensor(group)
        for run, first in runs:
            for chunk in ([run] if multi else [[p] for p in run]):
                if not chunk:
                    continue
                bufs = [self._param_state(p)["momentum_buffer"] for p in chunk] if momentum != 0 else []
                ember._C._sgd_multi_step_(chunk, [p.grad for p in chunk], bufs, lr=group["lr"], first_step=first,
                                          **hyper)
