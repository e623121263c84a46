"""Optimizer base: param groups with per-group options, per-parameter state, state_dict round trips
(torch's format: {"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]})."""
from __future__ import annotations

import copy

import ember

from ..nn._grad import no_grad, zero_grads


class _RequiredParameter:
    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def check_flags(name: str, foreach, fused, differentiable: bool = False) -> None:
    """The implementation flags torch's optimizers take (Note [Optimizer implementations])."""
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    if differentiable:
        raise NotImplementedError(f"[{name}] differentiable=True (autograd through the update) is not supported")


def check_tensor_lr(name: str, lr, foreach, capturable: bool) -> None:
    """torch's rules for a tensor learning rate: one element; not with foreach=True unless capturable."""
    if not isinstance(lr, ember.Tensor):
        return
    if foreach and not capturable:
        raise ValueError(f"[{name}] lr as a Tensor is not supported for capturable=False and foreach=True")
    if lr.numel() != 1:
        raise ValueError(f"[{name}] Tensor lr must be 1-element, got shape {tuple(lr.shape)}")


def check_fused_param(name: str, p) -> None:
    """torch's check for fused=True: floating point params only (ember's devices all have the kernels)."""
    if not p.is_floating_point():
        raise RuntimeError(f"[{name}] `fused=True` requires all the params to be floating point Tensors of supported "
                           f"devices: ['cpu', 'cuda'] but {p.dtype} and {p.device.type}")


# Note [Optimizer implementations]
# torch's optimizers pick an implementation with `foreach` and `fused`; ember's map them onto its
# multi-tensor ops (_C._adam_multi_step_, _C._sgd_multi_step_, Note [Multi-tensor optimizer steps]):
#   * fused=True, foreach=True, or both None (the default): one op call per param group, which runs
#     once per (device, dtype) of its params (on CUDA a few kernel launches for all of them). torch's
#     foreach and fused paths compute the same update (as a chain of _foreach_ ops and as one kernel);
#     ember has one kernel for both.
#   * foreach=False (fused not True): the per-parameter path, the same op called once per param.
# Both paths read the step count and a tensor lr on the device, so neither synchronizes with the
# host. A step captured in a CUDA graph therefore uses fresh step counts on every replay; a float
# lr is frozen into the graph, a tensor lr (capturable=True, or fused=True) is read at replay and
# follows an LR scheduler, which writes tensor lrs in place.
def use_multi_tensor(group: dict) -> bool:
    return bool(group.get("fused")) or group.get("foreach") is not False


class Optimizer:
    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: dict = {}
        self.param_groups: list = []
        if isinstance(params, ember.Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group: dict) -> None:
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, ember.Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, ember.Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for k, v in self.defaults.items():
            if v is required and k not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {k}")
            group.setdefault(k, v)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        zero_grads((p for g in self.param_groups for p in g["params"]), set_to_none)

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with ember.autograd.enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if params:
                    self._update_group(group, params)
        return loss

    def _update_group(self, group: dict, params: list) -> None:
        raise NotImplementedError

    # ---- state dict ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        index = {}
        groups = []
        for g in self.param_groups:
            packed = {k: v for k, v in g.items() if k != "params"}
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if id(p) in self.state:
                    state[index[id(p)]] = dict(self.state[id(p)])
        return {"state": state, "param_groups": groups}

    # Note [Optimizer state keys]: state is keyed by id(param); the optimizer holds every param for
    # its lifetime, so ids stay unique (and Tensor __eq__ being elementwise makes tensors poor keys).
    def _param_state(self, p) -> dict:
        return self.state.setdefault(id(p), {})

    def load_state_dict(self, state_dict: dict) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(groups)} parameter groups, but the optimizer has "
                             f"{len(self.param_groups)}")
        for i, (mine, saved) in enumerate(zip(self.param_groups, groups)):
            if len(mine["params"]) != len(saved["params"]):
                raise ValueError(f"loaded state dict contains a parameter group {i} of size {len(saved['params'])} "
                                 f"that doesn't match the size of the optimizer's group ({len(mine['params'])})")
        id_map = {}
        for mine, saved in zip(self.param_groups, groups):
            for p, idx in zip(mine["params"], saved["params"]):
                id_map[int(idx)] = p
        self.state = {}
        for idx, st in state_dict["state"].items():
            p = id_map.get(int(idx))
            if p is None:
                continue
            new = {}
            for k, v in st.items():
                if k == "step":
                    new[k] = self._load_step(v, p)
                elif isinstance(v, ember.Tensor):
                    new[k] = v.to(p.device).to(p.dtype).clone() if v.is_floating_point() else v.clone()
                else:
                    new[k] = copy.deepcopy(v)
            self.state[id(p)] = new
        for mine, saved in zip(self.param_groups, groups):
            for k, v in saved.items():
                if k != "params":  # a tensor (lr) is cloned: schedulers write it in place
                    mine[k] = v.clone() if isinstance(v, ember.Tensor) else v

    def _load_step(self, value, param):
        """A loaded state["step"] for `param`, never aliasing the state dict's tensor (optimizers whose
        step lives in a tensor convert it here; Adam keeps a float32 tensor on the param's device)."""
        return value.clone() if isinstance(value, ember.Tensor) else copy.deepcopy(value)

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(k for k in g if k != "params"):
                lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)

