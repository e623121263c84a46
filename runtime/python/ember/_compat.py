"""Top-level pieces of torch's API that real scripts use and that are plain compositions of ember
ops: isclose/allclose/equal, meshgrid, legacy tensor-type constructors (ember.LongTensor(...)),
Tensor.data/.type()/.new_tensor, deepcopy/pickle of tensors, and compile (a pass-through)."""
from __future__ import annotations

import builtins
import copy
import collections
import functools
import warnings

import numpy as np

from . import _C
from ._C import Tensor

__all__ = ["isclose", "allclose", "equal", "meshgrid", "compile", "FloatTensor", "DoubleTensor", "HalfTensor",
           "BFloat16Tensor", "LongTensor", "IntTensor", "CharTensor", "ByteTensor", "BoolTensor", "is_tensor", "numel",
           "Size", "get_default_dtype", "set_default_dtype", "set_float32_matmul_precision",
           "get_float32_matmul_precision"]


# ---- small queries and settings --------------------------------------------------------------------

def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return input.numel()


class Size(tuple):
    """torch.Size: a tuple of dimension sizes (ember's .shape is a plain tuple, equal to a Size of the same sizes)."""

    def __repr__(self):
        return f"ember.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n


def get_default_dtype():
    """ember's default floating dtype: float32 (fixed; see set_default_dtype)."""
    return _C.float32


def set_default_dtype(d) -> None:
    """Only float32, ember's fixed default floating dtype, is accepted (others raise, rather than be ignored)."""
    if d != _C.float32:
        raise NotImplementedError(f"[set_default_dtype] ember's default floating dtype is fixed to float32; got {d}")


_matmul_precision = "highest"
_PRECISIONS = ("highest", "high", "medium")


def set_float32_matmul_precision(precision: str) -> None:
    """'highest' keeps float32 GEMMs in full float32; 'high' and 'medium' allow TF32 on CUDA (ember has no
    bfloat16-internal GEMM, which torch's 'medium' uses only where available). Sets ember.cuda.matmul.allow_tf32."""
    global _matmul_precision
    if precision not in _PRECISIONS:
        raise ValueError(f"[set_float32_matmul_precision] precision must be one of {_PRECISIONS}, got {precision!r}")
    _matmul_precision = precision
    from . import cuda
    cuda.matmul.allow_tf32 = precision != "highest"


def get_float32_matmul_precision() -> str:
    from . import cuda
    if cuda.is_built():  # allow_tf32 may have been set directly
        allow = cuda.matmul.allow_tf32
        return _matmul_precision if allow and _matmul_precision != "highest" else "high" if allow else "highest"
    return _matmul_precision


# ---- comparisons ---------------------------------------------------------------------------------

def isclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    """|input - other| <= atol + rtol * |other| elementwise (equal values, infinities included, are
    close; NaNs only with equal_nan). Both tensors must have the same dtype, as in torch."""
    if input.dtype != other.dtype:
        raise RuntimeError(f"[isclose] expected both inputs to be of the same dtype, got {input.dtype} and "
                           f"{other.dtype}")
    if rtol < 0 or atol < 0:
        raise RuntimeError(f"[isclose] rtol and atol must be non-negative, got rtol={rtol}, atol={atol}")
    same = input == other
    if input.dtype == _C.bool:
        return same
    if not input.dtype.is_floating_point:
        diff = (input.to(_C.float64) - other.to(_C.float64)).abs()
        return same.logical_or(diff <= atol + rtol * other.to(_C.float64).abs())
    finite = input.isfinite().logical_and(other.isfinite())
    close = same.logical_or(finite.logical_and((input - other).abs() <= atol + rtol * other.abs()))
    if equal_nan:
        close = close.logical_or(input.isnan().logical_and(other.isnan()))
    return close


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    return builtins.bool(isclose(input, other, rtol, atol, equal_nan).all().item())


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and the same values (NaN is never equal)."""
    if tuple(input.shape) != tuple(other.shape):
        return False
    return builtins.bool((input == other).all().item())


# ---- meshgrid ------------------------------------------------------------------------------------

def meshgrid(*tensors, indexing: str | None = None) -> tuple:
    """Coordinate grids from 1-D tensors: indexing='ij' (matrix, torch's default) gives outputs of
    shape (len(t0), len(t1), ...); 'xy' (Cartesian) swaps the first two dims."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the indexing argument.",
                      stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise ValueError(f"[meshgrid] indexing must be one of 'xy' or 'ij', got '{indexing}'")
    for i, t in enumerate(tensors):
        if t.dim() > 1:
            raise ValueError(f"[meshgrid] expects 0-d or 1-d tensors, got tensor {i} of shape {list(t.shape)}")
    if not tensors:
        raise ValueError("[meshgrid] expects a non-empty list of tensors")
    swap = indexing == "xy" and len(tensors) >= 2
    ts = [t.reshape(-1) for t in tensors]
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = [t.shape[0] for t in ts]
    out = []
    for i, t in enumerate(ts):
        view = [1] * len(ts)
        view[i] = shape[i]
        out.append(t.reshape(view).expand(*shape))
    if swap:
        out[0], out[1] = out[1], out[0]
    return tuple(out)


# ---- legacy tensor types -------------------------------------------------------------------------

class _TensorTypeMeta(type):
    """ember.FloatTensor & co: calling one builds a tensor of that dtype (from data, or uninitialised
    from sizes); isinstance(x, ember.LongTensor) checks x's dtype and that it lives on the CPU."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype and obj.device.type == "cpu"

    def __call__(cls, *args, device=None):
        if len(args) == 1 and not isinstance(args[0], int):
            data = args[0]
            if isinstance(data, Tensor):
                return data.to(cls.dtype) if device is None else data.to(cls.dtype).to(device)
            return _C.tensor(data, dtype=cls.dtype, device=device)
        if len(args) == 1 and isinstance(args[0], (tuple, list)):
            args = tuple(args[0])
        return _C.empty(*args, dtype=cls.dtype, device=device) if args else _C.empty(0, dtype=cls.dtype, device=device)

    def __repr__(cls):
        return f"<class 'ember.{cls.__name__}'>"


def _tensor_type(name: str, dtype) -> type:
    return _TensorTypeMeta(name, (), {"dtype": dtype, "__module__": "ember"})


FloatTensor = _tensor_type("FloatTensor", _C.float32)
DoubleTensor = _tensor_type("DoubleTensor", _C.float64)
HalfTensor = _tensor_type("HalfTensor", _C.float16)
BFloat16Tensor = _tensor_type("BFloat16Tensor", _C.bfloat16)
LongTensor = _tensor_type("LongTensor", _C.int64)
IntTensor = _tensor_type("IntTensor", _C.int32)
CharTensor = _tensor_type("CharTensor", _C.int8)
ByteTensor = _tensor_type("ByteTensor", _C.uint8)
BoolTensor = _tensor_type("BoolTensor", _C.bool)
_TYPES = [FloatTensor, DoubleTensor, HalfTensor, BFloat16Tensor, LongTensor, IntTensor, CharTensor, ByteTensor,
          BoolTensor]
_TYPE_OF_DTYPE = {t.dtype: t for t in _TYPES}


def _type_name(t: Tensor) -> str:
    name = _TYPE_OF_DTYPE[t.dtype].__name__
    return f"ember.cuda.{name}" if t.device.type == "cuda" else f"ember.{name}"


def _tensor_type_method(self, dtype=None, non_blocking: bool = False, **kwargs):
    """x.type() names x's legacy tensor type ('ember.FloatTensor', 'ember.cuda.LongTensor');
    x.type(t) converts to t: a dtype, a type such as ember.LongTensor, or its name (the 'torch.'
    spelling is accepted too)."""
    if kwargs:
        raise TypeError(f"type() got unexpected keyword arguments {sorted(kwargs)}")
    if dtype is None:
        return _type_name(self)
    if isinstance(dtype, _C.dtype):
        return self.to(dtype)
    if isinstance(dtype, _TensorTypeMeta):
        return self.to(dtype.dtype)
    if isinstance(dtype, str):
        module, _, name = dtype.rpartition(".")
        target = next((t for t in _TYPES if t.__name__ == name), None)
        if target is None or module not in ("torch", "ember", "torch.cuda", "ember.cuda"):
            raise ValueError(f"[type] invalid type: '{dtype}'")
        out = self.to(target.dtype)
        return out.to("cuda") if module.endswith("cuda") else out.to("cpu")
    raise TypeError(f"[type] expected a dtype, a tensor type or its name, got {type(dtype).__name__}")


# ---- Tensor.data, new_tensor ----------------------------------------------------------------------

def _get_data(self) -> Tensor:
    """An alias of the same memory outside autograd (requires_grad False), like torch's .data."""
    return self.detach()


def _set_data(self, value: Tensor) -> None:
    """x.data = y writes y's values into x's memory. torch rebinds x to y's storage instead; the two
    agree unless y is written to afterwards, and a y of another shape, dtype or device (which
    needs the rebinding) is refused."""
    if not isinstance(value, Tensor):
        raise TypeError(f"[Tensor.data] expected a Tensor, got {type(value).__name__}")
    if tuple(value.shape) != tuple(self.shape) or value.dtype != self.dtype or value.device != self.device:
        raise NotImplementedError(
            f"[Tensor.data] assigning a tensor of shape {list(value.shape)}, {value.dtype} on {value.device} to a "
            f"tensor of shape {list(self.shape)}, {self.dtype} on {self.device} would rebind its storage, which "
            f"ember cannot do; build a new tensor/Parameter (or use Module.to) instead")
    self.detach().copy_(value.detach())


def _new_tensor(self, data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    out = _C.tensor(data, dtype=self.dtype if dtype is None else dtype,
                    device=self.device if device is None else device)
    return out.requires_grad_(True) if requires_grad else out


# ---- copying and pickling tensors -----------------------------------------------------------------

def _rebuild_from_bits(bits: np.ndarray, dtype_name: str, device: str, requires_grad: bool):
    t = _C._from_numpy_bits(np.ascontiguousarray(bits), getattr(_C, dtype_name))
    if device != "cpu":
        t = t.to(device)
    return t.requires_grad_(True) if requires_grad else t


def _reduce_ex(self, protocol):
    """Pickling (multiprocessing queues, copy): values, dtype, device, requires_grad and Python attributes."""
    t = self.detach()
    if t.device.type != "cpu":
        t = t.to("cpu")
    bits = np.ascontiguousarray(t._numpy_bits())
    state = dict(self.__dict__) or None
    return (_rebuild_from_bits, (bits, repr(self.dtype).split(".", 1)[1], str(self.device), self.requires_grad),
            state)


def _deepcopy(self, memo):
    """A new leaf with copied values, requires_grad, Parameter-ness, Python attributes and .grad."""
    if id(self) in memo:
        return memo[id(self)]
    if not self.is_leaf:
        raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol "
                           "at the moment.")
    with _no_grad():
        values = self.clone()
    if getattr(self, "_is_param", False):
        from .nn.parameter import Parameter
        new = Parameter(values, self.requires_grad)
    else:
        new = values.detach().requires_grad_(self.requires_grad)
    memo[id(self)] = new
    for k, v in self.__dict__.items():
        if k != "_is_param":
            setattr(new, k, copy.deepcopy(v, memo))
    if self.grad is not None:
        new.grad = copy.deepcopy(self.grad, memo)
    return new


def _no_grad():
    from .autograd.grad_mode import no_grad
    return no_grad()


def _get_device(self) -> int:
    """-1 for a CPU tensor, the CUDA device index otherwise (torch's convention)."""
    return -1 if self.device.type == "cpu" else (self.device.index or 0)


def return_type(name: str, fields: str):
    """A named result tuple like torch's `torch.return_types.<name>`, reported as ember.return_types."""
    t = collections.namedtuple(name, fields)
    t.__module__ = "ember.return_types"
    return t


def _install_tensor_methods() -> None:
    Tensor.nelement = Tensor.numel
    Tensor.ndimension = Tensor.dim
    Tensor.get_device = _get_device
    Tensor.data = property(_get_data, _set_data)
    Tensor.type = _tensor_type_method
    Tensor.new_tensor = _new_tensor
    Tensor.__reduce_ex__ = _reduce_ex
    Tensor.__deepcopy__ = _deepcopy


# ---- compile ------------------------------------------------------------------------------------

_warned_compile = False


def compile(model=None, *, fullgraph: bool = False, dynamic=None, backend="inductor", mode=None, options=None,
            disable: bool = False):
    """A pass-through: ember has no graph compiler, so this returns `model` (or, used as a
    decorator factory, the function) unchanged and warns once. The result computes exactly what
    the uncompiled model does, at eager speed."""
    global _warned_compile
    if not _warned_compile and not disable:
        warnings.warn("ember.compile is a pass-through: ember runs eagerly and returns the model unchanged",
                      stacklevel=2)
        _warned_compile = True
    if model is None:
        return functools.partial(compile, fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode,
                                 options=options, disable=disable)
    return model
