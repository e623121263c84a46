"""Activations of ember.nn.functional beyond the fused ones (relu, gelu, silu, softplus, ...):
composites of ember ops whose values and gradients are torch's, including at the kinks (torch's
hardtanh/hardsigmoid pass no gradient at their bounds, elu's negative branch owns x = 0, ...).

Note [In-place activations]
`F.elu(x, inplace=True)` and friends compute out = f(x) and copy it into x. When autograd records
the call, f runs on a clone of x: the ops inside f save their inputs for backward, and writing into
the very tensor they saved would fail the version check at backward time (torch's fused in-place
kernels save the result instead). The clone is skipped when nothing needs gradients.
"""
from __future__ import annotations

import ember
from ember import Tensor

__all__ = ["threshold", "threshold_", "glu", "hardtanh", "hardtanh_", "relu6", "elu", "elu_", "selu", "selu_",
           "celu", "celu_", "leaky_relu_", "prelu", "rrelu", "rrelu_", "hardshrink", "softshrink", "tanhshrink",
           "softsign", "softmin", "hardsigmoid", "hardswish", "mish", "logsigmoid"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _check_float(op: str, input: Tensor) -> None:
    if not input.is_floating_point():  # torch: '"elu_cpu" not implemented for 'Long''
        raise NotImplementedError(f"[{op}] not implemented for {input.dtype} (input of shape {list(input.shape)}); "
                                  f"expected a floating-point input")


def _in_place(op: str, input: Tensor, fn, *args) -> Tensor:
    """input <- fn(input, *args), returning input (Note [In-place activations])."""
    recording = input.requires_grad and ember.is_grad_enabled()
    if recording and input.is_leaf:
        raise RuntimeError(f"[{op}] a leaf Variable that requires grad ({input.dtype}{list(input.shape)}) is being "
                           f"used in an in-place operation.")
    input.copy_(fn(input.clone() if recording else input, *args))
    return input


def _maybe_in_place(op: str, input: Tensor, inplace: bool, fn, *args) -> Tensor:
    return _in_place(op + "_", input, fn, *args) if inplace else fn(input, *args)


# ---- piecewise-linear ------------------------------------------------------------------------------

def _threshold(x: Tensor, threshold: float, value: float) -> Tensor:
    return ember.where(x > threshold, x, ember.full_like(x, value))


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value (gradient 0 there, NaN maps to value as in torch)."""
    return _maybe_in_place("threshold", input, inplace, _threshold, threshold, value)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    return _in_place("threshold_", input, _threshold, threshold, value)


def _hardtanh(x: Tensor, min_val: float, max_val: float) -> Tensor:
    _check_float("hardtanh", x)
    outside = (x <= min_val).logical_or(x >= max_val)  # torch passes no gradient at the bounds
    return ember.where(outside, x.detach().clamp(min_val, max_val), x)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    if min_val > max_val:
        raise ValueError(f"[hardtanh] min_val cannot be greater than max_val (got min_val={min_val}, "
                         f"max_val={max_val})")
    return _maybe_in_place("hardtanh", input, inplace, _hardtanh, min_val, max_val)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, inplace=True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


def _leaky_relu(x: Tensor, negative_slope: float) -> Tensor:
    return ember.leaky_relu(x, negative_slope)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return _in_place("leaky_relu_", input, _leaky_relu, negative_slope)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else weight * x; weight holds one slope or one per channel (dim 1; an input of
    fewer dims has one channel)."""
    _check_float("prelu", input)
    if weight.dim() > 1:
        raise RuntimeError(f"[prelu] Expected `weight` to be a scalar or 1D tensor, but got: ndim = {weight.dim()}")
    n = weight.numel()
    if n != 1:
        if input.dim() == 0:
            raise RuntimeError(f"[prelu] Not allow zero-dim input tensor (weight has {n} parameters).")
        channels = input.shape[1] if input.dim() >= 2 else 1
        if n != channels:
            raise RuntimeError(f"[prelu] Mismatch of parameter numbers and input channel size. Found parameter "
                               f"numbers = {n} and channel size = {channels} (input of shape {list(input.shape)}).")
        if input.dim() >= 2:
            weight = weight.reshape((1, n) + (1,) * (input.dim() - 2))
    elif weight.dim() == 1 and input.dim() == 0:
        weight = weight.reshape(())
    return ember.where(input > 0, input, weight * input)


def _rrelu(x: Tensor, lower: float, upper: float, training: bool) -> Tensor:
    _check_float("rrelu", x)
    if not training:
        return ember.leaky_relu(x, (lower + upper) / 2)
    slopes = ember.rand_like(x) * (upper - lower) + lower  # one uniform slope per element, as torch draws
    return ember.where(x <= 0, x * slopes, x)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    """Randomized leaky ReLU: in training each negative element gets a slope drawn from U(lower,
    upper) (from ember's generator, so not torch's draws); in eval the fixed slope (lower + upper) / 2."""
    if lower > upper:
        raise RuntimeError(f"[rrelu] Lower bound should be less than or equal to the upper bound (got lower={lower}, "
                           f"upper={upper})")
    return _maybe_in_place("rrelu", input, inplace, _rrelu, lower, upper, training)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False) -> Tensor:
    return rrelu(input, lower, upper, training, inplace=True)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0."""
    _check_float("hardshrink", input)
    keep = (input > lambd).logical_or(input < -lambd)
    return ember.where(keep, input, ember.zeros_like(input))


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    _check_float("softshrink", input)
    if lambd < 0:
        raise RuntimeError(f"[softshrink] lambda must be in range [0, inf) for input dtype {input.dtype}, but found "
                           f"{lambd}")
    zero = ember.zeros_like(input)
    return ember.where(input > lambd, input - lambd, ember.where(input < -lambd, input + lambd, zero))


# ---- exponential family ----------------------------------------------------------------------------

def _elu(x: Tensor, alpha: float, scale: float = 1.0, input_scale: float = 1.0, op: str = "elu") -> Tensor:
    _check_float(op, x)
    # expm1 sees min(x, 0): the unused branch of where must stay finite, or its zero gradient times
    # exp(large x) = inf would poison the sum with NaN.
    negative = ember.expm1(x.clamp_max(0.0) * input_scale) * (alpha * scale)
    positive = x * scale if scale != 1.0 else x
    return ember.where(x > 0, positive, negative)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return _maybe_in_place("elu", input, inplace, _elu, alpha)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return _in_place("elu_", input, _elu, alpha)


def _selu(x: Tensor) -> Tensor:
    return _elu(x, _SELU_ALPHA, _SELU_SCALE, 1.0, "selu")


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants of Klambauer et al."""
    return _maybe_in_place("selu", input, inplace, _selu)


def selu_(input: Tensor) -> Tensor:
    return _in_place("selu_", input, _selu)


def _celu(x: Tensor, alpha: float) -> Tensor:
    if alpha == 0:
        raise RuntimeError("[celu] ZeroDivisionError: alpha cannot be 0 for CELU")
    return _elu(x, alpha, 1.0, 1.0 / alpha, "celu")


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    return _maybe_in_place("celu", input, inplace, _celu, alpha)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return _in_place("celu_", input, _celu, alpha)


# torch's hardsigmoid backward multiplies by the float constant 1.0f / 6.0f, even for float64.
_ONE_SIXTH_F32 = 0.1666666716337204


def _hardsigmoid(x: Tensor) -> Tensor:
    _check_float("hardsigmoid", x)
    inside = (x > -3.0).logical_and(x < 3.0)  # torch's gradient: 1/6 strictly inside, 0 elsewhere
    # value (x + 3) / 6 exactly, gradient torch's constant slope
    middle = ((x.detach() + 3.0) / 6.0) + (x - x.detach()) * _ONE_SIXTH_F32
    return ember.where(inside, middle, (x.detach() >= 3.0).to(x.dtype))


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_in_place("hardsigmoid", input, inplace, _hardsigmoid)


def _hardswish(x: Tensor) -> Tensor:
    _check_float("hardswish", x)
    # Written per region so the gradient is torch's: 0 up to -3, x / 3 + 1/2 strictly between, 1 from 3.
    middle = x * (x + 3.0) / 6.0
    return ember.where(x <= -3.0, ember.zeros_like(x), ember.where(x < 3.0, middle, x))


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_in_place("hardswish", input, inplace, _hardswish)


def _mish(x: Tensor) -> Tensor:
    _check_float("mish", x)
    return x * ember.tanh(ember.softplus(x, 1.0, 20.0))


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    return _maybe_in_place("mish", input, inplace, _mish)


def logsigmoid(input: Tensor) -> Tensor:
    return -ember.softplus(-input, 1, 20)


def tanhshrink(input: Tensor) -> Tensor:
    return input - ember.tanh(input)


def softsign(input: Tensor) -> Tensor:
    return input / (input.abs() + 1)


# ---- gating and normalised exponentials ------------------------------------------------------------

def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b), where a and b are the two halves of input along dim."""
    if input.dim() == 0:
        raise RuntimeError("[glu] glu does not support scalars because halving size must be even")
    if not -input.dim() <= dim < input.dim():
        raise IndexError(f"[glu] Dimension out of range (expected to be in range of [{-input.dim()}, "
                         f"{input.dim() - 1}], but got {dim})")
    n = input.shape[dim]
    if n % 2:
        raise RuntimeError(f"[glu] Halving dimension must be even, but dimension {dim % input.dim()} is size {n} "
                           f"(input of shape {list(input.shape)})")
    a, b = input.narrow(dim, 0, n // 2), input.narrow(dim, n // 2, n // 2)
    return a * ember.sigmoid(b)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    from .functional import _softmax_dim
    if dim is None:
        dim = _softmax_dim("softmin", input.dim(), _stacklevel + 1)
    if dtype is not None:
        input = input.to(dtype)
    return ember.softmax(-input, dim)
