"""ember.save / ember.load: PyTorch's checkpoint format by default, safetensors on request.

- `save(obj, f)` writes torch's zip format (torch_format.py), which `torch.load` reads; a path
  ending in `.safetensors` (or `format="safetensors"`) writes safetensors (safetensors_format.py).
- `load(f)` reads either, recognising the file by its first bytes; torch checkpoints load with
  torch's `map_location`, `weights_only` (default True) and `mmap` semantics.
"""
from __future__ import annotations

import io
import os
import pickle

from . import safetensors_format, torch_format
from .safetensors_format import load_file, save_file
from .torch_format import UnpicklingError, add_safe_globals, clear_safe_globals, get_safe_globals, safe_globals

__all__ = ["save", "load", "save_file", "load_file", "add_safe_globals", "get_safe_globals", "clear_safe_globals",
           "safe_globals", "UnpicklingError"]

_ZIP_MAGIC = b"PK\x03\x04"
_FORMATS = ("torch", "safetensors")


def _is_safetensors_path(f) -> bool:
    return not hasattr(f, "write") and os.fspath(f).endswith(".safetensors")


def save(obj, f, pickle_module=pickle, pickle_protocol: int = 2, _use_new_zipfile_serialization: bool = True,
         _disable_byteorder_record: bool = False, *, format: str | None = None, metadata: dict | None = None):
    """Saves `obj` (tensors, parameters, nested dicts/lists/tuples/sets, numbers, strings, dtypes,
    devices, and any picklable object) to a path or binary file.

    format: "torch" (the default: torch's zip checkpoint, readable by torch.load) or "safetensors"
    (the default for paths ending in .safetensors; `metadata` goes into its header)."""
    fmt = format or ("safetensors" if _is_safetensors_path(f) else "torch")
    if fmt not in _FORMATS:
        raise ValueError(f"[save] format must be one of {_FORMATS}, got {format!r}")
    if fmt == "safetensors":
        return safetensors_format.save(obj, f, metadata)
    if metadata is not None:
        raise ValueError("[save] metadata= applies to the safetensors format only")
    if pickle_module is not pickle:
        raise NotImplementedError("[save] ember writes checkpoints with the standard pickle module only")
    if not _use_new_zipfile_serialization:
        raise NotImplementedError("[save] torch's legacy (pre-1.6, non-zip) format is not supported; ember writes "
                                  "the zip format")
    if _disable_byteorder_record:
        raise NotImplementedError("[save] ember always writes the byteorder record")
    if not 2 <= pickle_protocol <= pickle.HIGHEST_PROTOCOL:
        raise ValueError(f"[save] pickle_protocol must be in [2, {pickle.HIGHEST_PROTOCOL}], got {pickle_protocol}")
    torch_format.save(obj, f, pickle_protocol)


def _peek(f):
    """(first four bytes, a readable source positioned at the start, a name for messages)."""
    if hasattr(f, "read"):
        if not (hasattr(f, "seek") and f.seekable()):
            f = io.BytesIO(f.read())
        start = f.tell()
        head = f.read(4)
        f.seek(start)
        return head, f, getattr(f, "name", "<file object>")
    path = os.fspath(f)
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head, path, path


def load(f, map_location=None, pickle_module=None, *, weights_only: bool | None = None, mmap: bool | None = None,
         **pickle_load_args):
    """Loads what ember.save or torch.save wrote (or a safetensors file).

    map_location: None (where it was saved), a device or device string, a dict mapping saved
    locations ("cuda:0") to new ones, or a callable(storage, location) returning a tensor or None.
    weights_only: True (the default, as torch >= 2.6) allows only tensors and plain containers
    and values (Note [Weights only] in torch_format.py); False unpickles anything — only for files you trust.
    mmap: map the file's tensor data copy-on-write instead of reading it (paths only)."""
    if pickle_module is not None and pickle_module is not pickle:
        raise NotImplementedError("[load] ember reads checkpoints with the standard pickle module only")
    head, src, where = _peek(f)
    if head == _ZIP_MAGIC:
        return torch_format.load(src, map_location, weights_only=True if weights_only is None else weights_only,
                                 mmap=bool(mmap), where=where, **pickle_load_args)
    if head[:2] == b"\x80\x02" or head[:1] == b"\x80":
        raise UnpicklingError(f"[load] {where} looks like torch's legacy (pre-1.6, non-zip) checkpoint format, which "
                              f"ember does not read; re-save it with a current torch.save")
    if mmap:
        raise ValueError("[load] mmap=True applies to torch checkpoints only")
    if pickle_load_args:
        raise TypeError(f"[load] unexpected arguments for a safetensors file: {sorted(pickle_load_args)}")
    return safetensors_format.load(src, map_location)
