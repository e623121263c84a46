"""torch's elementwise functions that are short compositions of ember ops (their gradients follow
torch's, including at the special points): addcmul/addcdiv, xlogy, logit, sinc, fmax/fmin,
float_power, heaviside, deg2rad/rad2deg, frac, sgn, signbit, isin, isneginf/isposinf, isreal,
fmod, copysign.
The single-kernel math (atan2, hypot, logaddexp, erfinv, the inverse trig family) is native:
runtime/spec/elementwise.yaml."""
from __future__ import annotations

import math

from . import _C
from ._C import Tensor
from .autograd.function import Function

__all__ = ["addcmul", "addcdiv", "xlogy", "logit", "sinc", "fmax", "fmin", "float_power", "heaviside", "deg2rad",
           "rad2deg", "frac", "sgn", "signbit", "isin", "isneginf", "isposinf", "isreal", "absolute", "fix", "fmod",
           "copysign"]


def _tensor(x, like: Tensor) -> Tensor:
    return x if isinstance(x, Tensor) else _C.scalar_tensor(x, device=like.device)


def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    """input + value * tensor1 * tensor2."""
    if isinstance(value, float) and not value.is_integer() and not (
            input.dtype.is_floating_point or tensor1.dtype.is_floating_point or tensor2.dtype.is_floating_point):
        raise RuntimeError("[addcmul] For integral input tensors, argument value must not be a floating point number.")
    prod = tensor1 * tensor2
    return input + (prod if value == 1 else prod * value)


def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    """input + value * tensor1 / tensor2 (true division; integer tensors are refused, as in torch)."""
    if not tensor1.dtype.is_floating_point and not tensor2.dtype.is_floating_point:
        raise RuntimeError("[addcdiv] Integer division with addcdiv is no longer supported, and in a future release "
                           "addcdiv will perform a true division of tensor1 and tensor2. The historic addcdiv "
                           "behavior can be implemented as (input + value * torch.trunc(tensor1 / tensor2)).to("
                           "input.dtype) for integer inputs and as (input + value * tensor1 / tensor2) for float "
                           "inputs. The future addcdiv behavior is just the latter implementation: (input + value * "
                           "tensor1 / tensor2), for all dtypes.")
    quot = tensor1 / tensor2
    return input + (quot if value == 1 else quot * value)


def _reduce_to(g: Tensor, shape: tuple) -> Tensor:
    """g summed over the dims broadcasting added to a tensor of `shape`."""
    if tuple(g.shape) == shape:
        return g
    return g.sum().reshape(()) if not shape else g.sum_to_size(*shape)


class _XLogY(Function):
    """x * log(y) (log1p(y) for xlog1py), 0 where x is 0 unless y is NaN, with torch's gradients
    (NaNs included): y gets g * x / y (g * x / (1 + y)); x gets g * xlogy(x != 0, y), or, when y
    was a Python number, xlogy(g, y), zeroed where x == 0 and y is outside log's domain."""

    @staticmethod
    def forward(ctx, x, y, plus_one, scalar_other):
        ctx.save_for_backward(x, y)
        ctx.plus_one, ctx.scalar_other = plus_one, scalar_other
        zero = _C.zeros((), dtype=x.dtype, device=x.device)
        out = _C.where(x == 0, zero, x * _log(y, plus_one))
        return _C.where(y.isnan(), y, out)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        zero = _C.zeros((), dtype=x.dtype, device=x.device)
        log_y = _log(y, ctx.plus_one)
        if ctx.scalar_other:
            gx = _C.where(g == 0, zero, g * log_y)
            outside = (y <= -1) if ctx.plus_one else (y <= 0)
            gx = _C.where((x == 0).logical_and(outside), zero, gx)
        else:
            gx = g * _C.where(x != 0, log_y, _C.where(y.isnan(), y, zero))
        gy = g * x / ((1 + y) if ctx.plus_one else y)
        return _reduce_to(gx, tuple(x.shape)), _reduce_to(gy, tuple(y.shape)), None, None


def _log(y: Tensor, plus_one: bool) -> Tensor:
    """log(y), or log(1 + y) kept accurate for small y by Kahan's correction log(u) * y / (u - 1)."""
    if not plus_one:
        return _C.log(y)
    u = 1 + y
    corrected = _C.log(u) * y / _C.where(u == 1, _C.ones_like(u), u - 1)
    return _C.where(u == 1, y, _C.where(u == math.inf, u, corrected))


def _xlogy(input, other, plus_one: bool) -> Tensor:
    like = input if isinstance(input, Tensor) else other
    dtype = _C.result_type(input, other)
    if not dtype.is_floating_point:
        dtype = _C.float32
    x, y = _tensor(input, like).to(dtype), _tensor(other, like).to(dtype)
    return _XLogY.apply(x, y, plus_one, not isinstance(other, Tensor))


def xlogy(input, other) -> Tensor:
    """input * log(other), 0 where input is 0 (unless other is NaN)."""
    return _xlogy(input, other, False)


def logit(input: Tensor, eps=None) -> Tensor:
    """log(p / (1 - p)), p clamped to [eps, 1 - eps] when eps is given (zero gradient outside)."""
    p = input if input.dtype.is_floating_point else input.to(_C.float32)
    if eps is not None:
        p = p.clamp(eps, 1 - eps)
    return _C.log(p / (1 - p))


def sinc(input: Tensor) -> Tensor:
    """sin(pi x) / (pi x), 1 at 0 (the division is never evaluated there, so no NaN gradients)."""
    x = input if input.dtype.is_floating_point else input.to(_C.float32)
    zero = x == 0
    safe = _C.where(zero, _C.ones_like(x), x) * math.pi
    return _C.where(zero, _C.ones_like(x), _C.sin(safe) / safe)


def fmax(input: Tensor, other: Tensor) -> Tensor:
    """maximum ignoring NaN (NaN only when both are); the gradient goes to input on ties, as in torch."""
    return _C.where((input >= other).logical_or(other.isnan()), input, other)


def fmin(input: Tensor, other: Tensor) -> Tensor:
    return _C.where((input <= other).logical_or(other.isnan()), input, other)


def float_power(input, exponent) -> Tensor:
    """pow computed in float64."""
    x = input.double() if isinstance(input, Tensor) else float(input)
    e = exponent.double() if isinstance(exponent, Tensor) else float(exponent)
    return _C.pow(x, e)


def heaviside(input: Tensor, values: Tensor) -> Tensor:
    if input.dtype != values.dtype:
        raise RuntimeError(f"[heaviside] heaviside is not yet implemented for tensors with different dtypes (got "
                           f"{input.dtype} and {values.dtype})")
    step = (input > 0).to(input.dtype)
    return _C.where(input == 0, values, step)


def deg2rad(input: Tensor) -> Tensor:
    x = input if input.dtype.is_floating_point else input.to(_C.float32)
    return x * (math.pi / 180.0)


def rad2deg(input: Tensor) -> Tensor:
    x = input if input.dtype.is_floating_point else input.to(_C.float32)
    return x * (180.0 / math.pi)


def frac(input: Tensor) -> Tensor:
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"[frac] \"frac_cpu\" not implemented for {input.dtype}")
    return input - _C.trunc(input)


def sgn(input: Tensor) -> Tensor:
    return _C.sign(input)


def signbit(input: Tensor) -> Tensor:
    """True where the sign bit is set: negatives and -0.0 (1 / -0.0 is -inf)."""
    if input.dtype == _C.bool:
        return _C.zeros_like(input)
    if not input.dtype.is_floating_point:
        return input < 0
    return (input < 0).logical_or((input == 0).logical_and((1 / input) < 0))


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False) -> Tensor:
    """Whether each element occurs in test_elements (binary search in the sorted test values)."""
    like = elements if isinstance(elements, Tensor) else test_elements
    e, t = _tensor(elements, like), _tensor(test_elements, like)
    dtype = _C.result_type(elements, test_elements)
    e, t = e.to(dtype), t.to(dtype).reshape(-1)
    if t.numel() == 0:
        found = _C.zeros(tuple(e.shape), dtype=_C.bool, device=e.device)
    else:
        s, _ = _C.sort(t)
        pos = _C.searchsorted(s, e).clamp_max(s.shape[0] - 1)
        found = s[pos.reshape(-1)].reshape(tuple(e.shape)) == e
    return found.logical_not() if invert else found


def isneginf(input: Tensor) -> Tensor:
    return input == -math.inf if input.dtype.is_floating_point else _C.zeros_like(input, dtype=_C.bool)


def isposinf(input: Tensor) -> Tensor:
    return input == math.inf if input.dtype.is_floating_point else _C.zeros_like(input, dtype=_C.bool)


def isreal(input: Tensor) -> Tensor:
    """Every element of a real tensor is real (ember has no complex dtypes)."""
    return _C.ones_like(input, dtype=_C.bool)


def _inplace(fn):
    """fn's result written into self. A self in the graph is read through a copy, so the values
    fn's backward saved are not the ones overwritten."""
    def method(self, *args, **kwargs):
        return self.copy_(fn(self.clone() if self.requires_grad else self, *args, **kwargs))
    method.__name__ = getattr(fn, "__name__", "op").lstrip("_") + "_"
    return method


def _float_power_(self: Tensor, exponent) -> Tensor:
    if self.dtype != _C.float64:
        raise RuntimeError(f"[float_power_] the base given to float_power_ has dtype {self.dtype} but the operation's "
                           f"result requires dtype float64")
    return _inplace(float_power)(self, exponent)


def fmod(input: Tensor, other) -> Tensor:
    """The remainder of truncated division (the sign of input), as a - trunc(a / b) * b, like ember's
    remainder (torch uses the C library's fmod: for floats the two can differ in the last bits when
    |a / b| is large). Integer division by zero raises, as in torch."""
    b = _tensor(other, input)
    dtype = _C.result_type(input, other)
    if dtype == _C.bool:
        raise NotImplementedError("[fmod] \"fmod_cpu\" not implemented for 'Bool'")
    a, b = input.to(dtype), b.to(dtype)
    if not dtype.is_floating_point:
        if bool((b == 0).any().item()):
            raise RuntimeError("[fmod] ZeroDivisionError")
        return a - _C.div(a, b, rounding_mode="trunc") * b
    return a - _C.trunc(a / b) * b


def copysign(input, other) -> Tensor:
    """|input| with the sign bit of other (-0.0 counts as negative), computed in floating point."""
    like = input if isinstance(input, Tensor) else other
    dtype = _C.result_type(input, other)
    if not dtype.is_floating_point:
        dtype = _C.float32
    return _CopySign.apply(_tensor(input, like).to(dtype), _tensor(other, like).to(dtype))


class _CopySign(Function):
    """torch's gradients: input gets g * result / input (0 where input is 0), other a zero gradient."""

    @staticmethod
    def forward(ctx, x, y):
        magnitude = _C.abs(x)
        out = _C.where(signbit(y), -magnitude, magnitude)
        ctx.save_for_backward(x, y, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, y, out = ctx.saved_tensors
        ratio = _C.where(x == 0, _C.zeros_like(x), out / _C.where(x == 0, _C.ones_like(x), x))
        return _reduce_to(g * ratio, tuple(x.shape)), _C.zeros_like(y)


def absolute(input: Tensor) -> Tensor:
    return _C.abs(input)


def fix(input: Tensor) -> Tensor:
    return _C.trunc(input)


def _square(self: Tensor) -> Tensor:
    return self * self


def _reciprocal(self: Tensor) -> Tensor:
    if not self.dtype.is_floating_point:
        raise RuntimeError(f"[reciprocal_] result type Float can't be cast to the desired output type {self.dtype}")
    return 1 / self


def _cumprod(self: Tensor, dim: int, *, dtype=None) -> Tensor:
    return _C.cumprod(self, dim, dtype=dtype)


TENSOR_METHODS = {
    # in-place forms of native ops and torch's aliases of them
    "absolute": absolute, "absolute_": _inplace(absolute), "fix": fix, "fix_": _inplace(fix),
    "square_": _inplace(_square), "reciprocal_": _inplace(_reciprocal), "cumprod_": _inplace(_cumprod),
    "float_power_": _float_power_,
    "heaviside_": _inplace(heaviside), "fmod": fmod, "fmod_": _inplace(fmod), "copysign": copysign,
    "copysign_": _inplace(copysign),
    "addcmul": addcmul, "addcmul_": _inplace(addcmul), "addcdiv": addcdiv, "addcdiv_": _inplace(addcdiv),
    "xlogy": xlogy, "xlogy_": _inplace(xlogy), "logit": logit, "logit_": _inplace(logit), "sinc": sinc,
    "sinc_": _inplace(sinc), "fmax": fmax, "fmin": fmin, "float_power": float_power, "heaviside": heaviside,
    "deg2rad": deg2rad, "deg2rad_": _inplace(deg2rad), "rad2deg": rad2deg, "rad2deg_": _inplace(rad2deg),
    "frac": frac, "frac_": _inplace(frac), "sgn": sgn, "sgn_": _inplace(sgn), "signbit": signbit,
    "isin": isin, "isneginf": isneginf, "isposinf": isposinf, "isreal": isreal,
}
