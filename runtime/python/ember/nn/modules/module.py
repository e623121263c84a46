"""Module: the base class of every layer (registration of parameters/buffers/submodules,
state_dict round trips, train/eval, device/dtype moves), following torch.nn.Module."""
from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Callable, Iterator

import ember
from ember import Tensor

from ...utils.hooks import RemovableHandle
from ..parameter import Buffer, Parameter
from .._grad import no_grad, zero_grads


def _shape(t) -> list:
    return list(t.shape)


_HOOK_DICTS = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks", "_forward_hooks_with_kwargs",
               "_forward_hooks_always_called", "_backward_hooks", "_backward_pre_hooks")


class Module:
    training: bool

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments")
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        for hooks in _HOOK_DICTS:
            object.__setattr__(self, hooks, OrderedDict())

    def __setstate__(self, state):
        # modules pickled before the hook registries existed get empty ones
        self.__dict__.update(state)
        for hooks in _HOOK_DICTS:
            self.__dict__.setdefault(hooks, OrderedDict())

    # ---- registration --------------------------------------------------------------------------
    def _check_init(self):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign to {type(self).__name__} before Module.__init__() call")

    def register_parameter(self, name: str, param) -> None:
        self._check_init()
        if "." in name or name == "":
            raise KeyError(f'parameter name can\'t contain "." or be empty, got "{name}"')
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                            "(ember.nn.Parameter or None required)")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        self._check_init()
        if "." in name or name == "":
            raise KeyError(f'buffer name can\'t contain "." or be empty, got "{name}"')
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                            "(ember.Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module) -> None:
        self._check_init()
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        d = self.__dict__
        if isinstance(value, Parameter):
            self._check_init()
            for store in (d, d["_buffers"], d["_modules"]):
                store.pop(name, None)
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            self._check_init()
            for store in (d, d["_parameters"], d["_buffers"]):
                store.pop(name, None)
            d["_modules"][name] = value
        elif isinstance(value, Buffer):
            self._check_init()
            for store in (d, d["_parameters"], d["_modules"]):
                store.pop(name, None)
            self.register_buffer(name, value.data, value.persistent)
        elif "_parameters" in d and name in d["_parameters"]:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                                "(ember.nn.Parameter or None expected)")
            d["_parameters"][name] = None
        elif "_modules" in d and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                                "(ember.nn.Module or None expected)")
            d["_modules"][name] = None
        elif "_buffers" in d and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(ember.Tensor or None expected)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(store, ()):
                del self.__dict__[store][name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    # ---- traversal -----------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, get_members, prefix="", recurse=True, remove_duplicate=True):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mod_prefix, module in modules:
            for k, v in get_members(module):
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                if remove_duplicate:
                    seen.add(id(v))
                yield mod_prefix + ("." if mod_prefix else "") + k, v

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named_members(lambda m: m._parameters.items(), prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named_members(lambda m: m._buffers.items(), prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> "Module":
        mod = self
        for item in target.split(".") if target else []:
            if item not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no submodule `{item}`")
            mod = mod._modules[item]
        return mod

    def get_parameter(self, target: str):
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._parameters:
            raise AttributeError(f"{type(mod).__name__} has no parameter `{name}`")
        return mod._parameters[name]

    # ---- modes and functional helpers ----------------------------------------------------------
    def train(self, mode: bool = True):
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        zero_grads(self.parameters(), set_to_none)

    def apply(self, fn: Callable[["Module"], None]):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def __call__(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks or self._backward_hooks or self._backward_pre_hooks):
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(args, kwargs)

    # ---- forward hooks (torch's semantics: pre-hooks may replace the inputs, hooks the output) -------
    def _add_hook(self, hooks: OrderedDict, hook, prepend: bool, flags: dict) -> RemovableHandle:
        extras = [getattr(self, name) for name in flags]
        handle = RemovableHandle(hooks, extra_dict=extras)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        for name, on in flags.items():
            if on:
                getattr(self, name)[handle.id] = True
        return handle

    def register_forward_pre_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False) -> RemovableHandle:
        """hook(module, args) -> None or new args (with_kwargs: hook(module, args, kwargs) -> None or
        (args, kwargs)), run before each forward."""
        return self._add_hook(self._forward_pre_hooks, hook, prepend,
                              {"_forward_pre_hooks_with_kwargs": with_kwargs})

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """hook(module, args, output) -> None or a new output (with_kwargs: hook(module, args, kwargs,
        output)), run after each forward; always_call hooks run even when forward raised."""
        return self._add_hook(self._forward_hooks, hook, prepend, {"_forward_hooks_with_kwargs": with_kwargs,
                                                                     "_forward_hooks_always_called": always_call})

    def register_full_backward_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """hook(module, grad_input, grad_output) -> None or new grad_input, run when the gradients of the
        module's tensor inputs are computed (Note [Module backward hooks])."""
        return self._add_hook(self._backward_hooks, hook, prepend, {})

    def register_full_backward_pre_hook(self, hook, prepend: bool = False) -> RemovableHandle:
        """hook(module, grad_output) -> None or new grad_output, run when the gradients of the module's
        outputs arrive, before they flow into the module."""
        return self._add_hook(self._backward_pre_hooks, hook, prepend, {})

    def _call_with_hooks(self, args: tuple, kwargs: dict):
        for hook_id, hook in list(self._forward_pre_hooks.items()):
            if hook_id in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"forward pre-hook must return None or a tuple of (new_args, new_kwargs), "
                                           f"but got {result}.")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        backward = (self._backward_hooks or self._backward_pre_hooks) and ember.is_grad_enabled()
        if backward:
            state = _BackwardHookState(self, len(args))
            args = _wrap_tensors(_InputGradHook, state, args, record=True)
        called = set()
        try:
            output = self.forward(*args, **kwargs)
            if backward:
                output = _wrap_output(state, output)
            for hook_id, hook in list(self._forward_hooks.items()):
                called.add(hook_id)
                if hook_id in self._forward_hooks_with_kwargs:
                    result = hook(self, args, kwargs, output)
                else:
                    result = hook(self, args, output)
                if result is not None:
                    output = result
        except Exception:
            for hook_id, hook in list(self._forward_hooks.items()):
                if hook_id in self._forward_hooks_always_called and hook_id not in called:
                    try:
                        if hook_id in self._forward_hooks_with_kwargs:
                            hook(self, args, kwargs, None)
                        else:
                            hook(self, args, None)
                    except Exception:  # the forward's own error is the one to report
                        pass
            raise
        return output

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    # ---- device / dtype ------------------------------------------------------------------------
    def _apply_to_tensors(self, fn: Callable[[Tensor], Tensor]):
        """Replaces each parameter (and its grad) and buffer by fn(tensor), keeping Parameter-ness.
        Note: like torch without swap_tensors, optimizers built before a move keep the old tensors."""
        for m in self.modules():
            for name, p in list(m._parameters.items()):
                if p is None:
                    continue
                with no_grad():
                    new = fn(p)
                if new is p or new._is_same(p):  # no-op move: keep the Parameter (optimizers hold it)
                    continue
                newp = Parameter(new, p.requires_grad)
                if p.grad is not None:
                    with no_grad():
                        newp.grad = fn(p.grad)
                m._parameters[name] = newp
            for name, b in list(m._buffers.items()):
                if b is not None:
                    with no_grad():
                        new = fn(b)
                    if not new._is_same(b):
                        m._buffers[name] = new
        return self

    def to(self, *args, **kwargs):
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        non_blocking = kwargs.pop("non_blocking", False)
        memory_format = kwargs.pop("memory_format", None)  # applies to 4-d and 5-d tensors, as in torch
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, ember.dtype):
                dtype = a
            elif isinstance(a, (str, ember.device)):
                device = a
            elif isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            else:
                raise TypeError(f"to() received an invalid argument of type {type(a).__name__}")
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got desired dtype={dtype}")

        def convert(t):
            if device is not None:
                t = t.to(device, non_blocking=non_blocking)
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)
            if memory_format is not None and t.dim() in (4, 5):
                t = t.contiguous(memory_format=memory_format)
            return t

        return self._apply_to_tensors(convert)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else device)

    def float(self):
        return self.to(ember.float32)

    def double(self):
        return self.to(ember.float64)

    def half(self):
        return self.to(ember.float16)

    def bfloat16(self):
        return self.to(ember.bfloat16)

    # ---- state dict ----------------------------------------------------------------------------
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = b if keep_vars else b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copies tensors from state_dict into this module's parameters and buffers. Returns
        (missing_keys, unexpected_keys); raises RuntimeError listing every problem when strict, and
        always for shape mismatches."""
        if not hasattr(state_dict, "items"):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict).__name__}.")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            src = state_dict[key]
            if not isinstance(src, Tensor):
                errors.append(f'While copying the parameter named "{key}", expected ember.Tensor but got '
                              f"{type(src).__name__}.")
            elif tuple(src.shape) != tuple(target.shape):
                errors.append(f"size mismatch for {key}: copying a param with shape {_shape(src)} from checkpoint, "
                              f"the shape in current model is {_shape(target)}.")
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        modules = dict(self.named_modules(remove_duplicate=False))
        with no_grad():
            for key, target in own.items():
                if key not in state_dict:
                    continue
                src = state_dict[key]
                if assign:
                    mod_path, _, name = key.rpartition(".")
                    mod = modules[mod_path]
                    if name in mod._parameters:
                        mod._parameters[name] = Parameter(src, target.requires_grad)
                    else:
                        mod._buffers[name] = src
                else:
                    target.copy_(src)
        return _IncompatibleKeys(missing, unexpected)

    # ---- repr ----------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {sub}")
        main = type(self).__name__ + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"


# Note [Module backward hooks]
# As torch's BackwardHook: the tensors going into forward pass through one identity autograd node and
# the tensors coming out through another. The output node's backward sees grad_output (backward
# pre-hooks may replace it); the input node's backward sees grad_input, where the full backward
# hooks run (and may replace it). A module none of whose inputs needs a gradient gets its hooks
# called from the output node with grad_input all None.

class _BackwardHookState:
    def __init__(self, module: "Module", n_args: int):
        self.module, self.n_args = module, n_args
        self.grad_output = None
        self.input_positions: list = []


def _wrap_tensors(fn, state: _BackwardHookState, values: tuple, record: bool = False) -> tuple:
    positions = [i for i, v in enumerate(values) if isinstance(v, Tensor) and v.requires_grad]
    if record:
        state.input_positions = positions
    if not positions:
        return values
    wrapped = fn.apply(state, *[values[i] for i in positions])
    out = list(values)
    for i, w in zip(positions, wrapped, strict=True):
        out[i] = w
    return tuple(out)


def _wrap_output(state: _BackwardHookState, output):
    if isinstance(output, Tensor):
        return _wrap_tensors(_OutputGradHook, state, (output,))[0]
    if isinstance(output, tuple) and any(isinstance(o, Tensor) for o in output):
        return type(output)(_wrap_tensors(_OutputGradHook, state, output)) if type(output) is tuple else \
            type(output)(*_wrap_tensors(_OutputGradHook, state, tuple(output)))
    return output


class _IdentityHook(ember.autograd.Function):
    """Passes the tensors through as views; subclasses run the module's hooks on their gradients."""

    @staticmethod
    def forward(ctx, state, *tensors):
        ctx.state = state
        ctx.set_materialize_grads(False)
        return tuple(t.view_as(t) for t in tensors)


class _OutputGradHook(_IdentityHook):
    @staticmethod
    def backward(ctx, *grads):
        state = ctx.state
        module = state.module
        for hook in list(module._backward_pre_hooks.values()):
            result = hook(module, grads)
            if result is not None:
                result = result if isinstance(result, tuple) else (result,)
                if len(result) != len(grads):
                    raise RuntimeError(f"Backward pre hook returned an invalid number of grad_output, got "
                                       f"{len(result)}, but expected {len(grads)}")
                grads = result
        state.grad_output = grads
        if not state.input_positions and module._backward_hooks:
            warnings.warn("Full backward hook is firing when gradients are computed with respect to module outputs "
                          "since no inputs require gradients.", stacklevel=2)
            for hook in list(module._backward_hooks.values()):
                result = hook(module, (None,) * state.n_args, grads)
                if result is not None and not (isinstance(result, tuple) and all(r is None for r in result)):
                    raise RuntimeError("Backward hook for Modules where no input requires gradient should always "
                                       "return None or None for all gradients.")
        return (None, *grads)


class _InputGradHook(_IdentityHook):
    @staticmethod
    def backward(ctx, *grads):
        state = ctx.state
        module = state.module
        full = [None] * state.n_args
        for i, g in zip(state.input_positions, grads, strict=True):
            full[i] = g
        full = tuple(full)
        for hook in list(module._backward_hooks.values()):
            result = hook(module, full, state.grad_output)
            if result is not None:
                result = result if isinstance(result, tuple) else (result,)
                if len(result) != len(full):
                    raise RuntimeError(f"Backward hook returned an invalid number of grad_input, got {len(result)}, "
                                       f"but expected {len(full)}")
                full = result
        return (None, *[full[i] for i in state.input_positions])


class _IncompatibleKeys(tuple):
    def __new__(cls, missing_keys, unexpected_keys):
        obj = super().__new__(cls, (missing_keys, unexpected_keys))
        obj.missing_keys = missing_keys
        obj.unexpected_keys = unexpected_keys
        return obj

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self.missing_keys}, unexpected_keys={self.unexpected_keys})"
