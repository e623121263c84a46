"""Lazy modules (torch.nn.LazyLinear & co): the input size is inferred from the first forward.

Note [Lazy materialisation]
Until its first forward a lazy module holds UninitializedParameter/UninitializedBuffer placeholders.
The first forward builds the module it becomes (torch's cls_to_become) from the inferred size and
the stored arguments, takes over its parameters, buffers and attributes (its own hooks and training
flag stay) and changes class. torch swaps the placeholders' storage in place; ember cannot rebind
storage, so the parameters are new objects: build optimizers after a dry run (torch's own advice).
"""
from __future__ import annotations

import ember

from ..parameter import Parameter, _ParameterMeta
from .batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .instancenorm import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
from .linear import Linear
from .module import Module

__all__ = ["UninitializedParameter", "UninitializedBuffer", "LazyModuleMixin", "LazyLinear", "LazyConv1d",
           "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d",
           "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d",
           "LazyInstanceNorm3d"]


class _UninitializedMeta(_ParameterMeta):
    def __instancecheck__(cls, obj):
        return getattr(obj, "_uninitialized", None) == cls.__name__


class UninitializedParameter(Parameter, metaclass=_UninitializedMeta):
    """A parameter whose shape is not known yet: an empty placeholder a lazy module replaces."""

    def __new__(cls, requires_grad=True, device=None, dtype=None):
        obj = Parameter(ember.empty(0, device=device, dtype=dtype), requires_grad)
        obj._uninitialized = "UninitializedParameter"
        return obj


class UninitializedBuffer(ember.Tensor, metaclass=_UninitializedMeta):
    def __new__(cls, requires_grad=False, device=None, dtype=None):
        obj = ember.empty(0, device=device, dtype=dtype).requires_grad_(requires_grad)
        obj._uninitialized = "UninitializedBuffer"
        return obj


class LazyModuleMixin(Module):
    """Note [Lazy materialisation]. Subclasses set cls_to_become and _infer (the size from an input)."""

    cls_to_become: type = Module

    def __init__(self, *args, **kwargs):
        super().__init__()
        self._lazy_args, self._lazy_kwargs = args, kwargs

    def has_uninitialized_params(self) -> bool:
        return any(isinstance(p, UninitializedParameter) for p in self._parameters.values())

    def initialize_parameters(self, input) -> None:
        """Builds the real module from input's size and takes it over (the first forward calls this)."""
        target = self.cls_to_become(self._infer(input), *self._lazy_args, **self._lazy_kwargs)
        own = set(vars(Module()))
        for name, value in vars(target).items():
            if name in ("_parameters", "_buffers", "_non_persistent_buffers"):
                object.__setattr__(self, name, value)
            elif name not in own:
                object.__setattr__(self, name, value)
        for name in ("_lazy_args", "_lazy_kwargs"):
            object.__delattr__(self, name)
        self.__class__ = self.cls_to_become

    def forward(self, input, *args, **kwargs):
        self.initialize_parameters(input)
        return self.forward(input, *args, **kwargs)

    def extra_repr(self) -> str:
        return ", ".join([repr(a) for a in self._lazy_args] + [f"{k}={v!r}" for k, v in self._lazy_kwargs.items()])


def _channels(name: str, input, spatial: int) -> int:
    """The channel count of a (batched or unbatched) input with `spatial` spatial dims."""
    if input.dim() not in (spatial + 1, spatial + 2):
        raise RuntimeError(f"[{name}] Expected {spatial + 1}D (unbatched) or {spatial + 2}D (batched) input to "
                           f"{name}, but got input of size: {list(input.shape)}")
    return input.shape[1] if input.dim() == spatial + 2 else input.shape[0]


class LazyLinear(LazyModuleMixin):
    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__(out_features, bias, device=device, dtype=dtype)
        self.in_features, self.out_features = 0, out_features
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.bias = UninitializedParameter(device=device, dtype=dtype) if bias else None

    def _infer(self, input) -> int:
        if input.dim() == 0:
            raise RuntimeError(f"[LazyLinear] expected an input with at least 1 dimension, got shape {list(input.shape)}")
        return input.shape[-1]


def _lazy_conv(name: str, target: type, spatial: int) -> type:
    def __init__(self, out_channels: int, kernel_size, *args, **kwargs):
        LazyModuleMixin.__init__(self, out_channels, kernel_size, *args, **kwargs)
        bias = args[4] if len(args) > 4 else kwargs.get("bias", True)  # after stride, padding, dilation|output_padding, groups
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        self.in_channels, self.out_channels = 0, out_channels
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.bias = UninitializedParameter(device=device, dtype=dtype) if bias else None

    return type(name, (LazyModuleMixin,), {"cls_to_become": target, "__init__": __init__, "__module__": __name__,
                                           "_infer": lambda self, input: _channels(name, input, spatial)})


def _lazy_norm(name: str, target: type, spatial: int) -> type:
    # torch's lazy norms default to affine=True, track_running_stats=True (InstanceNorm's own defaults are False)
    def __init__(self, eps: float = 1e-5, momentum=0.1, affine: bool = True, track_running_stats: bool = True,
                 device=None, dtype=None):
        LazyModuleMixin.__init__(self, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)
        self.num_features = 0
        if affine:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            self.bias = UninitializedParameter(device=device, dtype=dtype)
        if track_running_stats:
            self.register_buffer("running_mean", UninitializedBuffer(device=device, dtype=dtype))
            self.register_buffer("running_var", UninitializedBuffer(device=device, dtype=dtype))
            self.register_buffer("num_batches_tracked", ember.tensor(0, dtype=ember.int64, device=device))

    def infer(self, input) -> int:
        if target.__name__.startswith("BatchNorm") and spatial == 0:  # BatchNorm1d takes (N, C) or (N, C, L)
            if input.dim() not in (2, 3):
                raise ValueError(f"[{name}] expected 2D or 3D input (got {input.dim()}D input)")
            return input.shape[1]
        return _channels(name, input, spatial)

    return type(name, (LazyModuleMixin,), {"cls_to_become": target, "__init__": __init__, "__module__": __name__,
                                           "_infer": infer})


LazyConv1d = _lazy_conv("LazyConv1d", Conv1d, 1)
LazyConv2d = _lazy_conv("LazyConv2d", Conv2d, 2)
LazyConv3d = _lazy_conv("LazyConv3d", Conv3d, 3)
LazyConvTranspose1d = _lazy_conv("LazyConvTranspose1d", ConvTranspose1d, 1)
LazyConvTranspose2d = _lazy_conv("LazyConvTranspose2d", ConvTranspose2d, 2)
LazyConvTranspose3d = _lazy_conv("LazyConvTranspose3d", ConvTranspose3d, 3)
LazyBatchNorm1d = _lazy_norm("LazyBatchNorm1d", BatchNorm1d, 0)
LazyBatchNorm2d = _lazy_norm("LazyBatchNorm2d", BatchNorm2d, 2)
LazyBatchNorm3d = _lazy_norm("LazyBatchNorm3d", BatchNorm3d, 3)
LazyInstanceNorm1d = _lazy_norm("LazyInstanceNorm1d", InstanceNorm1d, 1)
LazyInstanceNorm2d = _lazy_norm("LazyInstanceNorm2d", InstanceNorm2d, 2)
LazyInstanceNorm3d = _lazy_norm("LazyInstanceNorm3d", InstanceNorm3d, 3)
