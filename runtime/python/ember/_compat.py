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
           "get_float32_matmul_precision", "is_floating_point", "is_signed", "is_inference", "detach", "fill", "asarray", "frombuffer",
           "use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
           "is_deterministic_algorithms_warn_only_enabled", "set_deterministic_debug_mode",
           "get_deterministic_debug_mode", "set_default_device", "get_default_device", "set_flush_denormal",
           "get_num_interop_threads", "set_num_interop_threads", "set_warn_always", "is_warn_always_enabled"]


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


def is_floating_point(input: Tensor) -> bool:
    return input.dtype.is_floating_point


def is_signed(input: Tensor) -> bool:
    return input.is_signed()


def is_inference(input: Tensor) -> bool:
    return input.is_inference()


def detach(input: Tensor) -> Tensor:
    return input.detach()


def fill(input: Tensor, value) -> Tensor:
    """A copy of input with every element set to value (torch.fill is out of place)."""
    return input.clone().fill_(value)


def set_default_device(device) -> None:
    """Only the CPU, the device ember's factories use, is accepted: they cannot follow another default."""
    if device is not None and _C.device(device).type != "cpu":
        raise NotImplementedError(f"[set_default_device] ember's factory functions always default to the CPU; "
                                  f"pass device={device!r} to them (or move tensors with .to) instead")


def get_default_device():
    return _C.device("cpu")


# Note [Determinism flags]
# ember's CPU kernels and its CUDA kernels without atomics are deterministic run to run; the CUDA
# scatter_add/index_add/index_put(accumulate=True) kernels add in arrival order. The flags are
# recorded and reported (torch's API); ember does not yet refuse or warn on those kernels.
_deterministic = {"enabled": False, "warn_only": False}


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    if not isinstance(mode, builtins.bool):
        raise TypeError(f"[use_deterministic_algorithms] mode must be a bool, got {type(mode).__name__}")
    _deterministic.update(enabled=mode, warn_only=builtins.bool(warn_only))


def are_deterministic_algorithms_enabled() -> bool:
    return _deterministic["enabled"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _deterministic["warn_only"]


_DEBUG_MODES = {"default": 0, "warn": 1, "error": 2}


def set_deterministic_debug_mode(debug_mode) -> None:
    """0/'default': off; 1/'warn': deterministic, warn only; 2/'error': deterministic."""
    mode = _DEBUG_MODES.get(debug_mode, debug_mode) if isinstance(debug_mode, str) else debug_mode
    if mode not in (0, 1, 2):
        raise RuntimeError(f"[set_deterministic_debug_mode] invalid value of debug_mode, expected one of 0, 1, 2 "
                           f"or 'default', 'warn', 'error', but got {debug_mode!r}")
    use_deterministic_algorithms(mode != 0, warn_only=mode == 1)


def get_deterministic_debug_mode() -> int:
    if not _deterministic["enabled"]:
        return 0
    return 1 if _deterministic["warn_only"] else 2


def set_flush_denormal(mode: bool) -> bool:
    """False: ember cannot set the CPU's flush-to-zero flags, so denormals are kept (torch returns
    False, changing nothing, where the flags are unsupported)."""
    return False


_interop_threads = 1


def get_num_interop_threads() -> int:
    return _interop_threads


def set_num_interop_threads(num: int) -> None:
    """Recorded only: ember runs each op on the calling thread (intra-op threads are set_num_threads)."""
    global _interop_threads
    if not isinstance(num, builtins.int) or num < 1:
        raise RuntimeError(f"[set_num_interop_threads] Expected positive number of threads, got {num!r}")
    _interop_threads = num


_warn_always = False


def set_warn_always(b: bool) -> None:
    """Warnings ember gives once per process (ember.compile's) are given every time while on."""
    global _warn_always
    _warn_always = builtins.bool(b)


def is_warn_always_enabled() -> bool:
    return _warn_always


# ---- tensors from Python data and buffers -----------------------------------------------------------

def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad: bool = False) -> Tensor:
    """A tensor from obj, sharing memory where torch does (a tensor, or a NumPy array on the CPU of
    the same dtype) unless copy=True; copy=False raises where a copy is needed."""
    if isinstance(obj, Tensor):
        out = obj
    elif isinstance(obj, np.ndarray) or hasattr(obj, "__array_interface__"):
        out = _C.from_numpy(np.asarray(obj))
    else:
        out = _C.tensor(obj, dtype=dtype, device=device)
        return out.requires_grad_(True) if requires_grad else out
    target_dtype = out.dtype if dtype is None else dtype
    target_device = out.device if device is None else _C.device(device)
    if target_dtype == out.dtype and target_device == out.device:
        converted = out.clone() if copy else out
    elif copy is False:
        raise ValueError(f"[asarray] can't alias a {out.dtype} tensor on {out.device} as {target_dtype} on "
                         f"{target_device} with copy=False")
    else:
        converted = out.to(target_dtype).to(target_device)
    return converted.requires_grad_(True) if requires_grad else converted


def frombuffer(buffer, *, dtype, count: int = -1, offset: int = 0, requires_grad: bool = False) -> Tensor:
    """A 1-D tensor over a Python buffer's bytes (shared, as in torch: writes show through)."""
    view = memoryview(buffer)
    size = view.nbytes
    element = _C.empty(0, dtype=dtype).element_size()
    if size == 0 or count == 0:
        raise ValueError(f"[frombuffer] both buffer length ({size}) and count ({count}) must not be 0")
    if not 0 <= offset < size:
        raise ValueError(f"[frombuffer] offset ({offset} bytes) must be non-negative and no greater than buffer "
                         f"length ({size} bytes) minus 1")
    if count < 0 and (size - offset) % element:
        raise ValueError(f"[frombuffer] buffer length ({size - offset} bytes) after offset ({offset} bytes) must be a "
                         f"multiple of element size ({element})")
    n = (size - offset) // element if count < 0 else count
    if offset + n * element > size:
        raise ValueError(f"[frombuffer] requested buffer length ({n} * {element} bytes) after offset ({offset} bytes) "
                         f"must not be greater than actual buffer length ({size} bytes)")
    if view.readonly:
        warnings.warn("The given buffer is not writable: ember shares it as torch does, and writing to the tensor "
                      "is undefined behavior.", UserWarning, stacklevel=2)
    bits = np.frombuffer(view, dtype=np.dtype(f"u{element}") if element > 1 else np.uint8, count=n, offset=offset)
    out = _C._from_numpy_bits(bits, dtype)
    return out.requires_grad_(True) if requires_grad else out


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
    Tensor.equal, Tensor.isclose, Tensor.allclose = equal, isclose, allclose
    Tensor.is_cpu = property(lambda self: self.device.type == "cpu")
    # ember's inference_mode disables grad but marks no tensor, so no tensor is an inference tensor
    Tensor.is_inference = lambda self: False


# ---- compile ------------------------------------------------------------------------------------

_warned_compile = False


def compile(model=None, *, fullgraph: bool = False, dynamic=None, backend="inductor", mode=None, options=None,
            disable: bool = False):
    """A pass-through: ember has no graph compiler, so this returns `model` (or, used as a
    decorator factory, the function) unchanged and warns once. The result computes exactly what
    the uncompiled model does, at eager speed."""
    global _warned_compile
    if (not _warned_compile or _warn_always) and not disable:
        warnings.warn("ember.compile is a pass-through: ember runs eagerly and returns the model unchanged",
                      stacklevel=2)
        _warned_compile = True
    if model is None:
        return functools.partial(compile, fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode,
                                 options=options, disable=disable)
    return model
