"""The safetensors format of ember.save / ember.load (chosen for paths ending in .safetensors).

Note [Checkpoint layout]: every tensor reachable in `obj` is stored as one safetensors entry named
by its path ("layer.weight", "state.0.exp_avg"); a flat dict of tensors therefore gives the same
file torch's `safetensors.torch.save_file` would, readable by any safetensors loader. The
structure around the tensors (dicts, lists, tuples, ints/floats/strings/None leaves, requires_grad
flags) is JSON in the header's `__metadata__["__ember__"]`, so nested objects such as optimizer
state dicts round-trip. bfloat16 is written as raw BF16 bytes through the library's TensorSpec
API (its numpy front end has no bfloat16).
"""
import json
import os
import struct

import numpy as np

from .. import _C
from .._C import Tensor

__all__ = ["save", "load", "save_file", "load_file"]

_FORMAT_KEY = "__ember__"
_FORMAT_VERSION = 1

# ember dtype name -> (TensorSpec dtype name, header code)
_SPEC_NAMES = {
    "bool": ("bool", "BOOL"), "uint8": ("uint8", "U8"), "int8": ("int8", "I8"), "int32": ("int32", "I32"),
    "int64": ("int64", "I64"), "float16": ("float16", "F16"), "bfloat16": ("bfloat16", "BF16"),
    "float32": ("float32", "F32"), "float64": ("float64", "F64"),
}
_CODE_TO_DTYPE = {code: name for name, (_, code) in _SPEC_NAMES.items()}
_BITS_DTYPE = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _safetensors():
    """The safetensors package, imported on first use: it is an optional extra (`ember[safetensors]`)."""
    try:
        import safetensors
    except ImportError as exc:
        raise ImportError("[save/load] the safetensors format needs the safetensors package: "
                          "pip install 'ember[safetensors]'") from exc
    return safetensors


def _dtype_name(dtype):
    return repr(dtype).split(".", 1)[1]


# ---- structure <-> JSON ---------------------------------------------------------------------------

class _Encoder:
    def __init__(self):
        self.tensors = {}

    def _name_for(self, path):
        base = ".".join(path) if path else "tensor"
        name, k = base, 1
        while name in self.tensors:
            name, k = f"{base}__{k}", k + 1
        return name

    def encode(self, obj, path):
        if isinstance(obj, Tensor):
            name = self._name_for(path)
            self.tensors[name] = obj
            node = {"T": name}
            if obj.requires_grad:
                node["rg"] = True
            return node
        if isinstance(obj, dict):
            items = []
            for k, v in obj.items():
                if not (k is None or isinstance(k, (str, int, float, bool))):
                    raise TypeError(f"[save] dict keys must be str/int/float/bool/None, got {type(k).__name__} at "
                                    f"{'.'.join(path) or '<root>'}")
                items.append([k, self.encode(v, path + [str(k)])])
            return {"D": items}
        if isinstance(obj, list):
            return {"L": [self.encode(v, path + [str(i)]) for i, v in enumerate(obj)]}
        if isinstance(obj, tuple):
            return {"U": [self.encode(v, path + [str(i)]) for i, v in enumerate(obj)]}
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return {"V": obj}
        if isinstance(obj, _C.dtype):
            return {"dtype": _dtype_name(obj)}
        raise TypeError(f"[save] cannot serialize an object of type {type(obj).__name__} at "
                        f"{'.'.join(path) or '<root>'}; supported: tensors, dicts, lists, tuples, "
                        f"None/bool/int/float/str, ember dtypes")


def _decode(node, tensors):
    if "T" in node:
        t = tensors[node["T"]]
        if node.get("rg"):
            t.requires_grad_(True)
        return t
    if "D" in node:
        return {k: _decode(v, tensors) for k, v in node["D"]}
    if "L" in node:
        return [_decode(v, tensors) for v in node["L"]]
    if "U" in node:
        return tuple(_decode(v, tensors) for v in node["U"])
    if "V" in node:
        return node["V"]
    if "dtype" in node:
        return getattr(_C, node["dtype"])
    raise ValueError(f"[load] unknown structure node {node!r}")


# ---- save -----------------------------------------------------------------------------------------

def _host_bits(t):
    """A C-contiguous numpy array with t's bytes (unsigned ints of the element width)."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.to("cpu")
    return np.ascontiguousarray(t._numpy_bits())


def _specs(tensors):
    specs, keep = {}, []
    for name, t in tensors.items():
        spec_name = _SPEC_NAMES[_dtype_name(t.dtype)][0]
        a = _host_bits(t)
        keep.append(a)
        specs[name] = _safetensors().TensorSpec(dtype=spec_name, shape=list(t.shape), data_ptr=a.ctypes.data,
                                             data_len=a.nbytes)
    return specs, keep


def save(obj, f, metadata=None):
    """Saves a tensor, a dict of tensors, or nested dicts/lists/tuples with tensor and plain leaves.

    `f` is a path or a binary file object; `metadata` (str -> str) goes into the file header."""
    enc = _Encoder()
    structure = enc.encode(obj, [])
    header = dict(metadata or {})
    for k, v in header.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"[save] metadata must map str to str, got {k!r}: {v!r}")
    header[_FORMAT_KEY] = json.dumps({"version": _FORMAT_VERSION, "structure": structure})
    specs, keep = _specs(enc.tensors)
    if hasattr(f, "write"):
        f.write(bytes(_safetensors().serialize(specs, metadata=header)))
    else:
        _safetensors().serialize_file(specs, os.fspath(f), metadata=header)
    del keep  # the buffers must outlive the serialize call


def save_file(tensors, filename, metadata=None):
    """safetensors-style alias: saves a flat dict of tensors."""
    if not isinstance(tensors, dict) or not all(isinstance(v, Tensor) for v in tensors.values()):
        raise TypeError("[save_file] expects a dict mapping names to tensors")
    save(tensors, filename, metadata)


# ---- load -----------------------------------------------------------------------------------------

def _read(f):
    if hasattr(f, "read"):
        return f.read(), getattr(f, "name", "<file object>")
    path = os.fspath(f)
    with open(path, "rb") as fh:
        return fh.read(), path


def _parse_header(data, where):
    if len(data) < 8:
        raise RuntimeError(f"[load] {where} is not a valid safetensors file: {len(data)} bytes is too short for "
                           f"the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise RuntimeError(f"[load] {where} is not a valid safetensors file: header length {n} exceeds the file "
                           f"size {len(data)} (truncated or corrupt)")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RuntimeError(f"[load] {where} is not a valid safetensors file: header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise RuntimeError(f"[load] {where} is not a valid safetensors file: header is not a JSON object")
    return header


def _to_tensor(name, entry, where):
    code = entry["dtype"]
    if code not in _CODE_TO_DTYPE:
        raise RuntimeError(f"[load] {where}: tensor {name!r} has dtype {code}, which ember does not support")
    dtype = getattr(_C, _CODE_TO_DTYPE[code])
    bits = np.frombuffer(entry["data"], dtype=_BITS_DTYPE[dtype.itemsize]).reshape(entry["shape"])
    return _C._from_numpy_bits(bits, dtype)


def load(f, map_location=None):
    """Loads what `save` wrote (or any safetensors file, as a dict of tensors)."""
    data, where = _read(f)
    header = _parse_header(data, where)
    try:
        entries = _safetensors().deserialize(data)
    except Exception as e:  # SafetensorError and friends: offsets out of range, bad dtypes, ...
        raise RuntimeError(f"[load] {where} is not a valid safetensors file: {e}") from None
    tensors = {name: _to_tensor(name, entry, where) for name, entry in entries}
    if map_location is not None:
        tensors = {k: v.to(map_location) for k, v in tensors.items()}
    meta = header.get("__metadata__") or {}
    if _FORMAT_KEY not in meta:
        return tensors
    try:
        layout = json.loads(meta[_FORMAT_KEY])
        return _decode(layout["structure"], tensors)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        raise RuntimeError(f"[load] {where}: corrupt ember structure metadata ({type(e).__name__}: {e})") from None


def load_file(filename, device="cpu"):
    """safetensors-style alias: loads a dict of tensors."""
    out = load(filename, map_location=None if device == "cpu" else device)
    if not isinstance(out, dict):
        raise TypeError(f"[load_file] {filename} does not hold a flat dict of tensors; use ember.load")
    return out
