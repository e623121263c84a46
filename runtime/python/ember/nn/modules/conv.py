"""Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d (torch.nn.modules.conv): torch's parameters,
defaults, initialization, state_dict keys and repr; the math is nn/_conv.py's."""
from __future__ import annotations

import math

import ember

from .. import _conv as C
from .. import _conv3d as C3
from .. import init
from .._padding import pad
from ..parameter import Parameter
from .module import Module

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    _dims = 2
    _transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", output_padding=0, device=None,
                 dtype=None):
        super().__init__()
        name, n = type(self).__name__, self._dims
        if groups <= 0:
            raise ValueError(f"[{name}] groups must be a positive integer, got {groups}")
        if in_channels % groups != 0:
            raise ValueError(f"[{name}] in_channels must be divisible by groups ({in_channels} % {groups} != 0)")
        if out_channels % groups != 0:
            raise ValueError(f"[{name}] out_channels must be divisible by groups ({out_channels} % {groups} != 0)")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"[{name}] padding_mode must be one of {_PADDING_MODES}, but got "
                             f"padding_mode='{padding_mode}'")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = C._tuple(name, "kernel_size", kernel_size, n)
        self.stride = C._tuple(name, "stride", stride, n)
        self.dilation = C._tuple(name, "dilation", dilation, n)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"[{name}] Invalid padding string '{padding}', should be one of ('valid', 'same')")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"[{name}] padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = C._tuple(name, "padding", padding, n)
        self.output_padding = C._tuple(name, "output_padding", output_padding, n)
        self.transposed = self._transposed
        self.padding_mode = padding_mode
        # F.pad amounts for the non-zeros modes, last dim first (torch's _reversed_padding_repeated_twice).
        if self.padding == "same":
            left, right = C._same_padding(name, self.kernel_size, self.stride, self.dilation)
            self._reversed_padding_repeated_twice = [v for l, r in zip(reversed(left), reversed(right)) for v in (l, r)]
        elif self.padding == "valid":
            self._reversed_padding_repeated_twice = [0, 0] * n
        else:
            self._reversed_padding_repeated_twice = [p for p in reversed(self.padding) for _ in range(2)]
        kw = dict(dtype=dtype if dtype is not None else ember.float32, device=device if device is not None else "cpu")
        shape = ((in_channels, out_channels // groups) if self.transposed
                 else (out_channels, in_channels // groups)) + self.kernel_size
        self.weight = Parameter(ember.empty(shape, **kw))
        if bias:
            self.bias = Parameter(ember.empty((out_channels,), **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch's default: kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in)), bias U(+-1/sqrt(fan_in)).
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            if fan_in != 0:
                bound = 1.0 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * len(self.padding):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    """Conv1d/2d/3d: one forward over the functional form named by `_functional` (padding modes
    other than zeros pad first, as torch does)."""

    _functional: tuple  # (module, name), looked up per call: autocast rebinds the module's function

    def _conv_forward(self, input, weight, bias):
        conv = getattr(*self._functional)
        if self.padding_mode != "zeros":
            input = pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(input, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)


class Conv2d(_Conv):
    _dims = 2
    _functional = (C, "conv2d")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)


class Conv1d(_Conv):
    _dims = 1
    _functional = (C, "conv1d")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)


class Conv3d(_Conv):
    _dims = 3
    _functional = (C3, "conv3d")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)


class _ConvTransposeNd(_ConvNd):
    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None,
                 dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'[{type(self).__name__}] Only "zeros" padding mode is supported for '
                             f'{type(self).__name__}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device, dtype)

    def _output_padding(self, input, output_size) -> tuple:
        """output_padding, or the one that makes the output `output_size` (torch's rule)."""
        if output_size is None:
            return self.output_padding
        n = self._dims
        size = list(output_size)[-n:]
        out = []
        for d in range(n):
            in_size = input.shape[input.dim() - n + d]
            smallest = ((in_size - 1) * self.stride[d] - 2 * self.padding[d] +
                        self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            extra = size[d] - smallest
            if not 0 <= extra < max(self.stride[d], self.dilation[d]):
                raise ValueError(f"[{type(self).__name__}] requested an output size of {size}, but valid sizes "
                                 f"range from {smallest} to {smallest + max(self.stride[d], self.dilation[d]) - 1} "
                                 f"(for an input of {list(input.shape)[-n:]})")
            out.append(extra)
        return tuple(out)


class ConvTranspose2d(_ConvTransposeNd):
    _dims = 2

    def forward(self, input, output_size=None):
        op = self._output_padding(input, output_size)
        return C.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, op, self.groups,
                                  self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    _dims = 1

    def forward(self, input, output_size=None):
        op = self._output_padding(input, output_size)
        return C.conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding, op, self.groups,
                                  self.dilation)


class ConvTranspose3d(_ConvTransposeNd):
    _dims = 3

    def forward(self, input, output_size=None):
        op = self._output_padding(input, output_size)
        return C3.conv_transpose3d(input, self.weight, self.bias, self.stride, self.padding, op, self.groups,
                                   self.dilation)
