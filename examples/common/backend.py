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
        pkg = os.path.join(_REPO, "runtime", "python")
        if pkg not in sys.path and os.path.isdir(os.path.join(pkg, "ember")):
            sys.path.insert(0, pkg)
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


def repo_root() -> str:
    return _REPO
