"""Backend selection: the same model/training code runs on `torch` or `ember` (same API)."""
from __future__ import annotations

import os
import sys

import numpy as np

_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def load_backend(name: str):
    if name == "torch":
        import torch
        return torch
    if name == "ember":
        try:
            import ember
        except ImportError:  # not installed and not on PYTHONPATH: use the in-tree package
            sys.path.insert(0, os.path.join(_REPO, "runtime", "python"))
            import ember
        return ember
    raise ValueError(f"unknown backend '{name}' (expected torch or ember)")


def set_threads(lib, threads: int | None) -> None:
    if threads:
        lib.set_num_threads(threads)


def to_tensor(lib, array: np.ndarray, device: str = "cpu"):
    t = lib.from_numpy(np.ascontiguousarray(array))
    return t if device == "cpu" else t.to(device)


def to_numpy(t) -> np.ndarray:
    t = t.detach()
    if str(t.device) != "cpu":
        t = t.to("cpu")
    return t.numpy()


def no_grad(lib):
    if hasattr(lib, "no_grad"):
        return lib.no_grad()
    from ember.nn._grad import no_grad as ember_no_grad  # until ember.no_grad lands
    return ember_no_grad()


def save(lib, obj, path):
    fn = getattr(lib, "save", None)
    if fn is None:  # ember before the package exports it
        from ember.serialization import save as fn
    fn(obj, path)


def load(lib, path):
    fn = getattr(lib, "load", None)
    if fn is None:
        from ember.serialization import load as fn
    return fn(path)


def repo_root() -> str:
    return _REPO
