"""Python-level parts of ember.Tensor (repr, conversions) attached to the C++ class.

Formatting follows torch/_tensor_str.py so `repr(ember_t) == repr(torch_t).replace("torch.", "ember.")`
for the same values: 4 digits of precision, integer mode for integral floats, scientific notation for
wide ranges, summarization with '...' above 1000 elements, dtype/device/grad suffixes.
"""
import builtins
import dataclasses
import math

import numpy as np

from . import _C
from ._C import Tensor

__all__ = ["set_printoptions", "get_printoptions"]


@dataclasses.dataclass
class _PrintOptions:
    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: object = None


_OPTS = _PrintOptions()


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None):
    """torch.set_printoptions."""
    if profile is not None:
        presets = {"default": (4, 1000, 3, 80), "short": (2, 1000, 2, 80), "full": (4, math.inf, 3, 80)}
        if profile not in presets:
            raise ValueError(f"[set_printoptions] unknown profile {profile!r}; expected one of {list(presets)}")
        _OPTS.precision, _OPTS.threshold, _OPTS.edgeitems, _OPTS.linewidth = presets[profile]
    if precision is not None:
        _OPTS.precision = precision
    if threshold is not None:
        _OPTS.threshold = threshold
    if edgeitems is not None:
        _OPTS.edgeitems = edgeitems
    if linewidth is not None:
        _OPTS.linewidth = linewidth
    _OPTS.sci_mode = sci_mode


def get_printoptions():
    return dataclasses.asdict(_OPTS)


# ---- values as numpy (host, float64 for floats) ---------------------------------------------------

def _host_values(t):
    """A numpy array with t's values: floats as float64, others in their own dtype."""
    if t.device.type != "cpu":
        t = t.detach().to("cpu")
    if t.dtype == _C.bfloat16:
        bits = t.detach()._numpy_bits().astype(np.uint32) << 16
        return bits.view(np.float32).astype(np.float64)
    a = t.detach().numpy()
    return a.astype(np.float64) if t.dtype.is_floating_point else a


def _summarized(a):
    """The elements the formatter sizes itself on: the printed edges only (torch's get_summarized_data)."""
    e = _OPTS.edgeitems
    if a.ndim == 0:
        return a.reshape(-1)
    if a.shape[0] > 2 * e:
        idx = list(range(e)) + list(range(a.shape[0] - e, a.shape[0]))
        a = a[idx]
    if a.ndim == 1:
        return a
    return np.concatenate([_summarized(a[i]) for i in range(a.shape[0])]) if a.shape[0] else a.reshape(-1)


class _Formatter:
    def __init__(self, values, floating):
        self.floating = floating
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = values.reshape(-1)
        if not floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(f"{v}"))
            return
        finite = flat[np.isfinite(flat) & (flat != 0)]
        if finite.size == 0:
            return
        absval = np.abs(finite)
        lo, hi = float(absval.min()), float(absval.max())
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        self.sci_mode = (hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4) if _OPTS.sci_mode is None else _OPTS.sci_mode
        p = _OPTS.precision
        for v in finite.tolist():
            if self.sci_mode:
                s = f"{v:.{p}e}"
            elif self.int_mode:
                s = f"{v:.0f}" + "."
            else:
                s = f"{v:.{p}f}"
            self.max_width = max(self.max_width, len(s))

    def width(self):
        return self.max_width

    def format(self, value):
        if self.floating:
            p = _OPTS.precision
            if self.sci_mode:
                ret = f"{value:{self.max_width}.{p}e}"
            elif self.int_mode:
                ret = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    ret += "."
            else:
                ret = f"{value:.{p}f}"
        else:
            ret = f"{value}"
        return (self.max_width - len(ret)) * " " + ret


def _vector_str(a, indent, summarize, fmt):
    element_length = fmt.width() + 2
    per_line = max(1, math.floor((_OPTS.linewidth - indent) / element_length))
    e = _OPTS.edgeitems
    if summarize and not e:
        data = ["..."]
    elif summarize and a.shape[0] > 2 * e:
        data = [fmt.format(v) for v in a[:e].tolist()] + [" ..."] + [fmt.format(v) for v in a[-e:].tolist()]
    else:
        data = [fmt.format(v) for v in a.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _tensor_str_with_formatter(a, indent, summarize, fmt):
    if a.ndim == 0:
        return fmt.format(a.item())
    if a.ndim == 1:
        return _vector_str(a, indent, summarize, fmt)
    e = _OPTS.edgeitems
    if summarize and a.shape[0] > 2 * e:
        rows = ([_tensor_str_with_formatter(a[i], indent + 1, summarize, fmt) for i in range(e)] + ["..."]
                + [_tensor_str_with_formatter(a[i], indent + 1, summarize, fmt)
                   for i in range(a.shape[0] - e, a.shape[0])])
    else:
        rows = [_tensor_str_with_formatter(a[i], indent + 1, summarize, fmt) for i in range(a.shape[0])]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _tensor_str(t, indent):
    if t.numel() == 0:
        return "[]"
    a = _host_values(t)
    summarize = t.numel() > _OPTS.threshold
    fmt = _Formatter(_summarized(a) if summarize else a, t.dtype.is_floating_point)
    return _tensor_str_with_formatter(a, indent, summarize, fmt)


def _add_suffixes(tensor_str, suffixes, indent):
    parts = [tensor_str]
    last_line_len = len(tensor_str) - tensor_str.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > _OPTS.linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


_DEFAULT_DTYPES = (_C.float32, _C.int64, _C.bool)


def _str(self):
    prefix = "tensor("
    indent = len(prefix)
    suffixes = []
    if self.device.type != "cpu":
        suffixes.append(f"device='{self.device}'")
    if self.numel() == 0:
        if self.dim() != 1:
            suffixes.append("size=" + str(tuple(self.shape)))
        if self.dtype != _C.float32:
            suffixes.append(f"dtype={self.dtype!r}")
        body = "[]"
    else:
        if self.dtype not in _DEFAULT_DTYPES:
            suffixes.append(f"dtype={self.dtype!r}")
        body = _tensor_str(self, indent)
    grad_fn = self.grad_fn
    if grad_fn is not None:
        suffixes.append(f"grad_fn=<{grad_fn.name()}>")
    elif self.requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)


# ---- Python protocol methods -------------------------------------------------------------------

def _bool(self):
    if self.numel() != 1:
        raise RuntimeError(f"[bool] Boolean value of Tensor with more than one value is ambiguous "
                           f"(got {self.numel()} elements, shape {list(self.shape)})")
    return builtins.bool(self.item())


def _float(self):
    if self.numel() != 1:
        raise TypeError(f"[float] only one element tensors can be converted to Python scalars "
                        f"(got {self.numel()} elements)")
    return builtins.float(self.item())


def _int(self):
    if self.numel() != 1:
        raise TypeError(f"[int] only one element tensors can be converted to Python scalars "
                        f"(got {self.numel()} elements)")
    return builtins.int(self.item())


def _index(self):
    if self.dtype.is_floating_point or self.numel() != 1:
        raise TypeError("[__index__] only integer tensors of a single element can be converted to an index "
                        f"(got {self.dtype!r} with {self.numel()} elements)")
    return builtins.int(self.item())


def _iter(self):
    if self.dim() == 0:
        raise TypeError("iteration over a 0-d tensor")
    return iter(self.unbind(0))


def _array(self, dtype=None, copy=None):
    a = self.detach().numpy(force=True)
    if dtype is not None:
        a = a.astype(dtype, copy=False)
    return a


def _format(self, spec):
    if self.dim() == 0:
        return self.item().__format__(spec)
    return object.__format__(self, spec)


Tensor.__repr__ = _str
Tensor.__str__ = _str
Tensor.__bool__ = _bool
Tensor.__float__ = _float
Tensor.__int__ = _int
Tensor.__index__ = _index
Tensor.__iter__ = _iter
Tensor.__array__ = _array
Tensor.__hash__ = lambda self: id(self)  # identity, like torch
Tensor.__format__ = _format
Tensor.__array_priority__ = 1000  # numpy defers binary ops to ember
