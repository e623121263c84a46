"""PyTorch's checkpoint format, read and written without importing torch.

Note [torch checkpoint layout]: torch.save writes an uncompressed zip whose records all sit under one
top-level folder (torch names it "archive"): `data.pkl` (the object, pickled with protocol 2),
`data/<key>` (the raw little-endian bytes of one storage each), `version` ("3") and `byteorder`.
In the pickle a tensor is `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
requires_grad, backward_hooks)`, a Parameter wraps that in `_rebuild_parameter`, and a storage is a
persistent id `("storage", torch.<Type>Storage, key, location, numel)`: tensors that are views of
one storage name the same key, so loading gives views of one ember tensor again.

Saving: ember tensors that share memory share one record spanning the elements they use (torch saves
the whole storage; the result loads the same). The pickle is written by a subclass of the pure-Python
pickler whose dispatch table emits the `torch...` GLOBAL opcodes itself, so no torch module is ever
imported. It runs twice: the first pass only collects the storage ranges that the pid tuples of the
second must state up front.

Loading: a pickle.Unpickler whose find_class maps torch's globals to ember rebuild functions and,
with weights_only=True (the default, as in torch >= 2.6), refuses every other global (Note [Weights
only]).
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import sys
import zipfile

import numpy as np

from .. import _C

__all__ = ["save", "load", "add_safe_globals", "get_safe_globals", "clear_safe_globals", "safe_globals",
           "UnpicklingError"]

_ARCHIVE = "archive"
_ALIGNMENT = 64  # torch aligns each record's data to 64 bytes (mmap-friendly); so do we

# ember dtype name <-> torch legacy storage class name (what the pid tuple names)
_STORAGE_OF_DTYPE = {
    "float32": "FloatStorage", "float64": "DoubleStorage", "float16": "HalfStorage", "bfloat16": "BFloat16Storage",
    "int64": "LongStorage", "int32": "IntStorage", "int8": "CharStorage", "uint8": "ByteStorage",
    "bool": "BoolStorage",
}
_DTYPE_OF_STORAGE = {v: k for k, v in _STORAGE_OF_DTYPE.items()}
# torch storages/dtypes ember has no dtype for: loading them raises a clear error
_UNSUPPORTED_STORAGES = {
    "ShortStorage": "int16", "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
    "QInt8Storage": "qint8", "QUInt8Storage": "quint8", "QInt32Storage": "qint32", "QUInt4x2Storage": "quint4x2",
    "QUInt2x4Storage": "quint2x4", "ComplexHalfStorage": "complex32",
}
_BITS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _dtype_name(dtype) -> str:
    return repr(dtype).split(".", 1)[1]


class UnpicklingError(pickle.UnpicklingError):
    """A checkpoint that cannot be loaded (refused global, unsupported tensor kind, corrupt data)."""


# ==== saving ========================================================================================

class _TorchGlobal:
    """A `module.name` the pickle must reference as a GLOBAL (written verbatim; never imported)."""
    _cache: dict = {}

    def __new__(cls, module: str, name: str):
        key = (module, name)
        if key not in cls._cache:  # singletons: the pickler memoizes by id()
            obj = super().__new__(cls)
            obj.module, obj.name = module, name
            cls._cache[key] = obj
        return cls._cache[key]

    def __call__(self, *args):  # pickle's save_reduce insists on a callable; this one is only ever written
        raise TypeError(f"{self.module}.{self.name} is a placeholder for pickling, not callable")


_REBUILD_TENSOR = _TorchGlobal("torch._utils", "_rebuild_tensor_v2")
_REBUILD_PARAMETER = _TorchGlobal("torch._utils", "_rebuild_parameter")
_TORCH_DEVICE = _TorchGlobal("torch", "device")


class _StorageRange:
    """The part of one ember storage the saved tensors use: [start, end) in elements."""

    def __init__(self, key: str, base, start: int, end: int):
        self.key, self.base, self.start, self.end = key, base, start, end


class _StorageRef:
    def __init__(self, storage: _StorageRange):
        self.storage = storage


def _location(t) -> str:
    d = t.device
    return "cpu" if d.type == "cpu" else f"{d.type}:{d.index if d.index is not None else 0}"


class _TorchPickler(pickle._Pickler):
    """Pickles ember tensors/dtypes/devices as torch.save does (see the module note)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file, protocol, storages: dict, final: bool):
        super().__init__(file, protocol)
        self.storages = storages  # storage identity -> _StorageRange, shared by both passes
        self.final = final

    def persistent_id(self, obj):
        if type(obj) is not _StorageRef:
            return None
        s = obj.storage
        t = s.base
        return ("storage", _TorchGlobal("torch", _STORAGE_OF_DTYPE[_dtype_name(t.dtype)]), s.key, _location(t),
                s.end - s.start)

    def _storage_of(self, t, owner) -> _StorageRange:
        if t.numel() == 0:  # empty tensors own no memory worth sharing: one empty record each (by owner:
            ident = ("empty", id(owner))  # the object being pickled, the same in both passes)
        else:
            ident = (t._storage_ptr(), _dtype_name(t.dtype), str(t.device))
        lo = t.storage_offset()
        hi = lo + (1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride())) if t.numel() else 0)
        s = self.storages.get(ident)
        if s is None:
            if self.final:
                raise pickle.PicklingError("[save] a tensor appeared in the second pickling pass only (the object "
                                           "changed while being saved?)")
            s = self.storages[ident] = _StorageRange(str(len(self.storages)), t, lo, hi)
        elif not self.final:
            s.start, s.end = min(s.start, lo), max(s.end, hi)
        return s

    def save_tensor(self, t):
        if _dtype_name(t.dtype) not in _STORAGE_OF_DTYPE:
            raise pickle.PicklingError(f"[save] ember dtype {t.dtype} has no torch storage type")
        data = t.detach()
        s = self._storage_of(data, t)
        rebuild_args = (_StorageRef(s), data.storage_offset() - s.start, tuple(data.shape), tuple(data.stride()))
        hooks = collections.OrderedDict()
        if getattr(t, "_is_param", False):
            inner = _TensorArgs(rebuild_args + (False, hooks))
            self.save_reduce(_REBUILD_PARAMETER, (inner, t.requires_grad, collections.OrderedDict()), obj=t)
        else:
            self.save_reduce(_REBUILD_TENSOR, rebuild_args + (t.requires_grad, hooks), obj=t)

    def save_tensor_args(self, args):
        self.save_reduce(_REBUILD_TENSOR, args.args)

    def save_torch_global(self, g):
        self.write(pickle.GLOBAL + f"{g.module}\n{g.name}\n".encode("utf-8"))
        self.memoize(g)

    def save_dtype(self, dtype):
        name = _dtype_name(dtype)
        self.save_torch_global(_TorchGlobal("torch", name))

    def save_device(self, device):
        args = ("cpu",) if device.type == "cpu" else (device.type, device.index or 0)
        self.save_reduce(_TORCH_DEVICE, args, obj=device)

    dispatch[_C.Tensor] = save_tensor
    dispatch[_TorchGlobal] = save_torch_global
    dispatch[_C.dtype] = save_dtype
    dispatch[_C.device] = save_device


class _TensorArgs:
    """The inner _rebuild_tensor_v2 call of a Parameter (a distinct object, so it is not memoized as t)."""

    def __init__(self, args):
        self.args = args


_TorchPickler.dispatch[_TensorArgs] = _TorchPickler.save_tensor_args


def _register_parameter_type():
    # Parameter may be a genuine Tensor subclass (Note [Parameter is a Tensor]); pickle dispatches on type.
    from ..nn.parameter import Parameter
    if Parameter is not _C.Tensor:
        _TorchPickler.dispatch.setdefault(Parameter, _TorchPickler.save_tensor)


def _storage_bytes(s: _StorageRange) -> np.ndarray:
    """The elements [start, end) of the storage behind s.base, as a flat little-endian byte array."""
    n = s.end - s.start
    if n == 0:
        return np.zeros(0, dtype=np.uint8)
    flat = _C.as_strided(s.base, (n,), (1,), s.start)
    if flat.device.type != "cpu":
        flat = flat.to("cpu")
    bits = np.ascontiguousarray(flat._numpy_bits())
    if sys.byteorder != "little":
        bits = bits.byteswap()
    return bits.view(np.uint8)


def _write_record(zf: zipfile.ZipFile, name: str, data) -> None:
    """One stored (uncompressed) record, streamed from `data` (bytes or a uint8 array, not copied),
    whose data starts at a multiple of _ALIGNMENT in the file."""
    view = memoryview(data).cast("B")
    info = zipfile.ZipInfo(f"{_ARCHIVE}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = view.nbytes
    zip64 = view.nbytes >= zipfile.ZIP64_LIMIT
    offset = zf.fp.tell() if zf.fp.seekable() else 0
    header = 30 + len(info.filename.encode("utf-8")) + (20 if zip64 else 0)  # zipfile appends a zip64 field
    pad = (-(offset + header + 4)) % _ALIGNMENT
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad  # the same padding field torch writes
    with zf.open(info, "w", force_zip64=zip64) as out:
        out.write(view)


def save(obj, f, pickle_protocol: int = 2) -> None:
    """Writes `obj` in torch's zip checkpoint format (see the module note) to a path or binary file."""
    _register_parameter_type()
    storages: dict = {}
    _TorchPickler(io.BytesIO(), pickle_protocol, storages, final=False).dump(obj)  # collects storage ranges
    buf = io.BytesIO()
    _TorchPickler(buf, pickle_protocol, storages, final=True).dump(obj)
    own = not hasattr(f, "write")
    fh = open(os.fspath(f), "wb") if own else f
    try:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            _write_record(zf, "data.pkl", buf.getvalue())
            _write_record(zf, "byteorder", b"little")
            for s in storages.values():
                _write_record(zf, f"data/{s.key}", _storage_bytes(s))
            _write_record(zf, "version", b"3\n")
    finally:
        if own:
            fh.close()


# ==== loading =======================================================================================

# Note [Weights only]: with weights_only=True the unpickler resolves only these globals (and those
# added with add_safe_globals); anything else — an arbitrary class or function, which unpickling
# would call — is refused before it is imported.
_user_safe_globals: dict = {}


def _global_name(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def add_safe_globals(safe_globals) -> None:
    """Allows these classes/functions when loading with weights_only=True (torch's API: items are
    objects, or (object, "module.name") pairs for objects pickled under another name)."""
    for g in safe_globals:
        if isinstance(g, tuple):
            obj, name = g
            _user_safe_globals[name] = obj
        else:
            _user_safe_globals[_global_name(g)] = g


def get_safe_globals() -> list:
    return list(_user_safe_globals.values())


def clear_safe_globals() -> None:
    _user_safe_globals.clear()


class safe_globals:
    """Context manager: add_safe_globals for the duration of a `with` block."""

    def __init__(self, globals_list):
        self.globals_list = globals_list

    def __enter__(self):
        self._saved = dict(_user_safe_globals)
        add_safe_globals(self.globals_list)

    def __exit__(self, *exc):
        _user_safe_globals.clear()
        _user_safe_globals.update(self._saved)


class _StorageType:
    """What `torch.<X>Storage` unpickles to: its dtype (None for the untyped byte storage)."""

    def __init__(self, name: str, dtype):
        self.name, self.dtype = name, dtype


class _LoadedStorage:
    """One `data/<key>` record: its bytes (read on first use) and ember tensors viewing them, per dtype."""

    def __init__(self, reader, key: str, location: str, dtype, numel: int):
        self.reader, self.key, self.location, self.dtype, self.numel = reader, key, location, dtype, numel
        self._by_dtype = {}

    def flat(self, dtype):
        """A 1-D ember tensor over the whole record, on its restored device."""
        name = _dtype_name(dtype)
        if name not in self._by_dtype:
            raw = self.reader.record_bytes(self.key, self.numel * (self.dtype.itemsize if self.dtype else 1))
            if raw.nbytes % dtype.itemsize:
                raise UnpicklingError(f"[load] storage {self.key} holds {raw.nbytes} bytes, not a whole number of "
                                      f"{name} elements")
            bits = raw.view(_BITS[dtype.itemsize])
            if self.reader.byteorder != sys.byteorder:
                bits = bits.byteswap()
            self._by_dtype[name] = self.reader.restore(_C._from_numpy_bits(bits, dtype), self.location)
        return self._by_dtype[name]


def _as_size(size):
    return tuple(int(s) for s in size)


def _rebuild_tensor(storage: _LoadedStorage, storage_offset, size, stride, dtype=None):
    if not isinstance(storage, _LoadedStorage):
        raise UnpicklingError(f"[load] expected a storage in a tensor record, got {type(storage).__name__}")
    dtype = dtype if dtype is not None else storage.dtype
    if dtype is None:
        raise UnpicklingError("[load] a tensor over an untyped storage names no dtype")
    flat = storage.flat(dtype)
    return _C.as_strided(flat, _as_size(size), _as_size(stride), int(storage_offset)).detach()


def _set_requires_grad(t, requires_grad):
    if requires_grad:
        t.requires_grad_(True)
    return t


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    return _set_requires_grad(_rebuild_tensor(storage, storage_offset, size, stride), requires_grad)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    return _set_requires_grad(_rebuild_tensor(storage, storage_offset, size, stride, dtype), requires_grad)


def _rebuild_tensor_v1(storage, storage_offset, size, stride):
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    from ..nn.parameter import Parameter
    return Parameter(data, requires_grad)


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    p = _rebuild_parameter(data, requires_grad, backward_hooks)
    _set_state(p, state)
    return p


def _set_state(obj, state):
    if not state:
        return obj
    if isinstance(state, tuple) and len(state) == 2:  # (dict state, slots state)
        state = {**(state[0] or {}), **(state[1] or {})}
    for k, v in state.items():
        setattr(obj, k, v)
    return obj


def _rebuild_from_type_v2(func, new_type, args, state):
    from ..nn.parameter import Parameter
    if new_type is not _C.Tensor and new_type is not Parameter:
        raise UnpicklingError(f"[load] the checkpoint holds a tensor subclass {getattr(new_type, '__name__', new_type)}"
                              f", which ember cannot rebuild")
    out = func(*args)
    if new_type is Parameter and not isinstance(out, Parameter):
        out = Parameter(out, out.requires_grad)
    return _set_state(out, state)


def _rebuild_device_tensor_from_cpu_tensor(data, dtype, device, requires_grad):
    return _set_requires_grad(data.to(dtype).to(device), requires_grad)


def _unsupported_rebuild(kind):
    def fn(*args, **kwargs):
        raise UnpicklingError(f"[load] the checkpoint holds a {kind}, which ember does not support")
    return fn


def _device(*args):
    if len(args) == 1 and isinstance(args[0], str):
        return _C.device(args[0])
    if len(args) == 2:
        return _C.device(args[0], int(args[1]))
    raise UnpicklingError(f"[load] unexpected torch.device arguments {args!r}")


def _codecs_encode(text, encoding="utf-8"):
    import codecs
    return codecs.encode(text, encoding)


def _torch_globals() -> dict:
    """torch's allowed weights-only globals, as ember objects."""
    from .. import nn
    g = {
        "torch._utils._rebuild_tensor": _rebuild_tensor_v1,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
        "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter_with_state,
        "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
        "torch._utils._rebuild_device_tensor_from_cpu_tensor": _rebuild_device_tensor_from_cpu_tensor,
        "torch._utils._rebuild_qtensor": _unsupported_rebuild("quantized tensor"),
        "torch._utils._rebuild_sparse_tensor": _unsupported_rebuild("sparse tensor"),
        "torch._utils._rebuild_nested_tensor": _unsupported_rebuild("nested tensor"),
        "torch._utils._rebuild_wrapper_subclass": _unsupported_rebuild("tensor subclass (wrapper subclass)"),
        "torch._utils._rebuild_meta_tensor_no_storage": _unsupported_rebuild("meta tensor"),
        "torch._utils._rebuild_device_tensor_from_numpy": _unsupported_rebuild("tensor of a non-CPU/CUDA device"),
        "torch.serialization._get_layout": lambda name: name,
        "torch.Tensor": _C.Tensor,
        "torch.nn.parameter.Parameter": nn.Parameter,
        "torch.Size": tuple,
        "torch.device": _device,
        "torch.UntypedStorage": _StorageType("UntypedStorage", None),
    }
    for dtype_name, storage in _STORAGE_OF_DTYPE.items():
        g[f"torch.{dtype_name}"] = getattr(_C, dtype_name)
        g[f"torch.{storage}"] = _StorageType(storage, getattr(_C, dtype_name))
    return g


_SAFE_BUILTINS = {
    "collections.OrderedDict": collections.OrderedDict,
    "collections.Counter": collections.Counter,
    "builtins.set": set,
    "builtins.bytearray": bytearray,
    "builtins.complex": complex,
    "_codecs.encode": _codecs_encode,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, checkpoint: "_CheckpointReader", weights_only: bool, **kwargs):
        super().__init__(file, **kwargs)
        self.checkpoint = checkpoint
        self.weights_only = weights_only
        self.torch_globals = _torch_globals()

    def find_class(self, module, name):
        if module == "__builtin__":  # protocol-2 pickles name builtins the Python 2 way
            module = "builtins"
        full = f"{module}.{name}"
        if full in self.torch_globals:
            return self.torch_globals[full]
        if full in _user_safe_globals:
            return _user_safe_globals[full]
        if full in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[full]
        is_torch = module == "torch" or module.startswith("torch.")
        if is_torch and name.endswith("Storage") or full in _UNSUPPORTED_DTYPE_GLOBALS:
            what = _UNSUPPORTED_STORAGES.get(name, full)
            raise UnpicklingError(f"[load] the checkpoint holds {what} data, a dtype ember does not support")
        if is_torch:
            raise UnpicklingError(f"[load] the checkpoint references `{full}`, a torch object ember cannot rebuild "
                                  f"(ember loads tensors, parameters, dtypes, devices and plain Python containers; "
                                  f"save a state_dict rather than a whole torch module)")
        if self.weights_only:
            raise UnpicklingError(
                f"[load] Weights only load failed: the checkpoint references the global `{full}`, which "
                f"weights_only=True does not allow (unpickling it could run arbitrary code). If you trust the "
                f"source of this file, load it with weights_only=False, or allow this global with "
                f"ember.serialization.add_safe_globals([{full}]).")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise UnpicklingError(f"[load] unknown persistent id {pid!r} in the checkpoint")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise UnpicklingError(f"[load] persistent id names {storage_type!r}, not a storage type")
        return self.checkpoint.storage(str(key), str(location), storage_type.dtype, int(numel))


_UNSUPPORTED_DTYPE_GLOBALS = {f"torch.{n}" for n in (
    "int16", "short", "complex64", "complex128", "cfloat", "cdouble", "complex32", "uint16", "uint32", "uint64",
    "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "qint8", "quint8", "qint32")}


class _CheckpointReader:
    """The records of one torch zip checkpoint (see the module note) and how to restore its storages."""

    def __init__(self, f, map_location, mmap: bool, where: str):
        self.where = where
        try:
            self.zf = zipfile.ZipFile(f)
        except zipfile.BadZipFile as e:
            raise UnpicklingError(f"[load] {where} is not a valid torch checkpoint: {e}") from None
        names = self.zf.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1] or \
              [n for n in names if n == "data.pkl"]
        if not pkl:
            raise UnpicklingError(f"[load] {where} is a zip file without a data.pkl record: not a torch checkpoint")
        self.prefix = pkl[0][:-len("data.pkl")]
        self.byteorder = "little"
        if self.prefix + "byteorder" in names:
            self.byteorder = self.zf.read(self.prefix + "byteorder").decode()
            if self.byteorder not in ("little", "big"):
                raise UnpicklingError(f"[load] {where}: unknown byteorder record {self.byteorder!r}")
        self.map_location = map_location
        self.mmap_path = f if mmap else None
        self.storages = {}

    def data_pickle(self) -> bytes:
        return self.zf.read(self.prefix + "data.pkl")

    def storage(self, key, location, dtype, numel) -> _LoadedStorage:
        if key not in self.storages:
            self.storages[key] = _LoadedStorage(self, key, location, dtype, numel)
        return self.storages[key]

    def record_bytes(self, key: str, nbytes: int) -> np.ndarray:
        name = f"{self.prefix}data/{key}"
        try:
            info = self.zf.getinfo(name)
        except KeyError:
            raise UnpicklingError(f"[load] {self.where}: storage record {name} is missing") from None
        if info.file_size < nbytes:
            raise UnpicklingError(f"[load] {self.where}: storage record {name} has {info.file_size} bytes, the "
                                  f"checkpoint needs {nbytes} (truncated or corrupt)")
        if self.mmap_path is not None and info.compress_type == zipfile.ZIP_STORED and nbytes:
            return np.memmap(self.mmap_path, dtype=np.uint8, mode="c", offset=self._data_offset(info), shape=(nbytes,))
        out = np.empty(nbytes, dtype=np.uint8)
        with self.zf.open(info) as fh:
            got = fh.readinto(memoryview(out))
        if got != nbytes:
            raise UnpicklingError(f"[load] {self.where}: storage record {name} ended after {got} of {nbytes} bytes")
        return out

    def _data_offset(self, info) -> int:
        with open(self.mmap_path, "rb") as fh:
            fh.seek(info.header_offset)
            header = fh.read(30)
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        return info.header_offset + 30 + name_len + extra_len

    def restore(self, t, location: str):
        """Moves a freshly read CPU storage tensor where map_location (or its saved location) says."""
        ml = self.map_location
        if callable(ml) and not isinstance(ml, (str, _C.device)):
            out = ml(t, location)
            if out is not None:
                if not isinstance(out, _C.Tensor):
                    raise TypeError(f"[load] map_location returned {type(out).__name__}; expected a tensor or None")
                return out
        elif isinstance(ml, dict):
            location = ml.get(location, location)
            location = str(location)
        elif ml is not None:
            location = str(ml)
        return _to_location(t, location, self.where)


def _to_location(t, location: str, where: str):
    if location == "cpu":
        return t
    if location.startswith("cuda"):
        from .. import cuda
        if not cuda.is_available():
            raise RuntimeError(f"[load] {where}: attempting to deserialize a tensor on {location} but "
                               f"ember.cuda.is_available() is False. On a CPU-only machine pass "
                               f"map_location='cpu' (or map_location=ember.device('cpu')).")
        return t.to(location)
    raise RuntimeError(f"[load] {where}: cannot restore a tensor saved on device '{location}' (ember supports cpu "
                       f"and cuda); pass map_location='cpu'")


def load(f, map_location=None, weights_only: bool = True, mmap: bool = False, where: str = "checkpoint",
         **unpickler_kwargs):
    if mmap and hasattr(f, "read"):
        raise ValueError("[load] mmap=True needs a file path, not a file object")
    reader = _CheckpointReader(f if hasattr(f, "read") else os.fspath(f), map_location, mmap, where)
    unpickler = _Unpickler(io.BytesIO(reader.data_pickle()), reader, weights_only, **unpickler_kwargs)
    try:
        return unpickler.load()
    except UnpicklingError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError) as e:
        raise UnpicklingError(f"[load] {where}: corrupt data.pkl ({type(e).__name__}: {e})") from None
