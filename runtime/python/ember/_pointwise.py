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
from ._compat import return_type
from ._shape_ops import broadcast_tensors
from .autograd.function import Function

__all__ = ["addcmul", "addcdiv", "xlogy", "logit", "sinc", "fmax", "fmin", "float_power", "heaviside", "deg2rad",
           "rad2deg", "frac", "sgn", "signbit", "isin", "isneginf", "isposinf", "isreal", "absolute", "fix", "fmod",
           "copysign", "frexp", "ldexp", "gcd", "lcm"]


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
    fn's backward saved are not the ones overwritten. As in torch, the result must keep self's
    shape and be castable to its dtype (copy_ would broadcast or truncate silently)."""
    def method(self, *args, **kwargs):
        out = fn(self.clone() if self.requires_grad else self, *args, **kwargs)
        if tuple(out.shape) != tuple(self.shape):
            raise RuntimeError(f"[{method.__name__}] output with shape {list(self.shape)} doesn't match the broadcast "
                               f"shape {list(out.shape)}")
        if not _can_cast(out.dtype, self.dtype):
            raise RuntimeError(f"[{method.__name__}] result type {_dtype_title(out.dtype)} can't be cast to the desired "
                               f"output type {_dtype_title(self.dtype)}")
        return self.copy_(out)
    method.__name__ = getattr(fn, "__name__", "op").lstrip("_") + "_"
    return method


def _can_cast(src, dst) -> bool:
    """torch.can_cast: no floating -> integral and no non-bool -> bool (same-kind casting)."""
    if src.is_floating_point and not dst.is_floating_point:
        return False
    return not (dst == _C.bool and src != _C.bool)


def _dtype_title(d) -> str:
    """torch's scalar-type name in messages (Float, Long, Bool, BFloat16)."""
    names = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16", "int64": "Long",
             "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}
    name = repr(d).split(".", 1)[-1]
    return names.get(name, name)


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


_Frexp = return_type("frexp", "mantissa exponent")


def frexp(input: Tensor):
    """input = mantissa * 2**exponent with |mantissa| in [0.5, 1) (0, inf and NaN keep exponent 0).
    The exponent is estimated from log|x| in float64, then corrected by checking the mantissa's
    range; the scaling is split in two so 2**exponent never overflows or flushes to zero."""
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"[frexp] torch.frexp() only supports floating-point dtypes, got {input.dtype}")
    x = input.to(_C.float64)
    with _no_grad():
        a = x.detach().abs()
        regular = a.isfinite().logical_and(a != 0)
        a = _C.where(regular, a, _C.ones_like(a))
        exponent = _C.trunc(_C.log(a) / math.log(2.0)) + 1
        for _ in range(3):  # the estimate is within 2 of the exponent
            m = _scale_down(a, exponent)
            exponent = exponent + (m >= 1).to(_C.float64) - (m < 0.5).to(_C.float64)
        exponent = _C.where(regular, exponent, _C.zeros_like(exponent))
    mantissa = _C.where(regular, _scale_down(x, exponent), x)
    return _Frexp(mantissa.to(input.dtype), exponent.to(_C.int32))


def _scale_down(x: Tensor, exponent: Tensor) -> Tensor:
    half = _C.trunc(exponent / 2)
    return x * _C.pow(2.0, -half) * _C.pow(2.0, half - exponent)


def ldexp(input: Tensor, other: Tensor) -> Tensor:
    """input * 2**other, as torch computes it (so the result's dtype follows that product's)."""
    return input * _C.pow(2.0, other)


def _check_integral(op: str, input, other):
    dtype = _C.result_type(input, other)
    if dtype.is_floating_point or dtype == _C.bool:
        raise NotImplementedError(f"[{op}] \"{op}_cpu\" not implemented for '{_dtype_title(dtype)}'")
    like = input if isinstance(input, Tensor) else other
    return broadcast_tensors(_tensor(input, like).to(dtype), _tensor(other, like).to(dtype))


def gcd(input: Tensor, other: Tensor) -> Tensor:
    """The non-negative greatest common divisor of integer tensors, by Euclid's algorithm run on
    every element at once (at most ~90 rounds for int64)."""
    a, b = _check_integral("gcd", input, other)
    a, b = _C.abs(a), _C.abs(b)
    zero = _C.zeros((), dtype=a.dtype, device=a.device)
    while bool((b != 0).any().item()):
        done = b == 0
        r = _C.remainder(a, _C.where(done, _C.ones_like(b), b))
        a, b = _C.where(done, a, b), _C.where(done, zero, r)
    return a


def lcm(input: Tensor, other: Tensor) -> Tensor:
    """|a / gcd(a, b) * b| (0 where gcd is 0), with torch's order of operations."""
    a, b = _check_integral("lcm", input, other)
    g = gcd(a, b)
    zero = g == 0
    return _C.where(zero, g, _C.abs(_C.div(a, _C.where(zero, _C.ones_like(g), g), rounding_mode="trunc") * b))


def _no_grad():
    from .autograd.grad_mode import no_grad
    return no_grad()


def _method_function(name: str):
    """torch.<name>(input, ...) as input.<name>(...), for torch's top-level in-place forms."""
    def fn(input: Tensor, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)
    fn.__name__ = name
    return fn


# torch's top-level in-place functions whose Tensor methods ember has (torch.relu_(x) is x.relu_()).
_INPLACE_FUNCTIONS = ("abs_", "acos_", "arccos_", "arcsin_", "arctan_", "asin_", "atan_", "clamp_", "clamp_max_",
                      "clamp_min_", "clip_", "cos_", "cosh_", "deg2rad_", "erf_", "erfc_", "exp_", "fix_", "frac_",
                      "log10_", "log_", "logit_", "neg_", "negative_", "rad2deg_", "relu_", "round_", "rsqrt_",
                      "sigmoid_", "sinc_", "sinh_", "sqrt_", "tanh_", "trunc_", "xlogy_", "addmv_", "index_put_",
                      "fill_", "zero_", "detach_", "gcd_", "lcm_", "ldexp_")
globals().update({_name: _method_function(_name) for _name in _INPLACE_FUNCTIONS})
__all__ += list(_INPLACE_FUNCTIONS)


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


def _subtract_(self: Tensor, other, *, alpha=1) -> Tensor:
    return self.sub_(other, alpha=alpha)


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
    "frexp": frexp, "ldexp": ldexp, "ldexp_": _inplace(ldexp), "gcd": gcd, "gcd_": _inplace(gcd), "lcm": lcm,
    "lcm_": _inplace(lcm), "remainder_": _inplace(_C.remainder), "subtract_": _subtract_,
    "logical_and_": _inplace(_C.logical_and), "logical_or_": _inplace(_C.logical_or),
    # in-place comparisons write 0/1 in self's dtype; greater_ & co are torch's aliases
    **{name: _inplace(getattr(_C, op)) for op, names in (("eq", ("eq_",)), ("ne", ("ne_", "not_equal_")),
                                                         ("lt", ("lt_", "less_")), ("le", ("le_", "less_equal_")),
                                                         ("gt", ("gt_", "greater_")),
                                                         ("ge", ("ge_", "greater_equal_"))) for name in names},
}
