"""Identical initial weights for both backends: drawn in numpy from a seed, loaded by name."""
from __future__ import annotations

import numpy as np

from .backend import to_tensor


def numpy_init(shapes: dict, seed: int, std: float = 0.02, residual_layers: int | None = None) -> dict:
    """GPT-2-style init by parameter name: biases 0, norm weights 1, other weights N(0, std) with
    residual output projections scaled by 1/sqrt(2 * layers). Iterates names in sorted order so the
    draw does not depend on registration order."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(shapes):
        shape = tuple(shapes[name])
        if name.endswith("bias"):
            arr = np.zeros(shape)
        elif "norm" in name or name.split(".")[-2:-1] in (["ln1"], ["ln2"], ["ln_f"]):
            arr = np.ones(shape)
        else:
            s = std
            if residual_layers and (name.endswith("proj.weight") or name.endswith("fc2.weight")):
                s = std / np.sqrt(2 * residual_layers)
            arr = rng.normal(0.0, s, size=shape)
        out[name] = arr.astype(np.float32)
    return out


def load_numpy_weights(lib, model, weights: dict, device: str = "cpu") -> None:
    model.load_state_dict({k: to_tensor(lib, v, device) for k, v in weights.items()}, strict=True)


def init_model(lib, model, seed: int, device: str = "cpu", residual_layers: int | None = None) -> None:
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    load_numpy_weights(lib, model, numpy_init(shapes, seed, residual_layers=residual_layers), device)
