"""Random inputs and upstream gradients, drawn the same way wherever a case runs."""

from __future__ import annotations

import numpy as np

INT_DTYPES = ("int64", "int32", "int8", "uint8")


def np_dtype(dtype: str) -> np.dtype:
    """The numpy dtype that carries `dtype`'s values (bfloat16 travels as float32)."""
    return np.dtype(np.float32) if dtype == "bfloat16" else np.dtype(dtype)


def random_array(rng: np.random.Generator, shape, dtype: str, low=-3.0, high=3.0) -> np.ndarray:
    """Uniform values in [low, high) (integers clipped to [-100, 100], uint8 from 0; bool fair)."""
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in INT_DTYPES:
        lo = 0 if dtype == "uint8" else int(max(low, -100))
        hi = max(int(min(high, 100)) + 1, lo + 1)
        return rng.integers(lo, hi, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(np_dtype(dtype))


def upstream_gradient(grad_seed: int, output: int, shape, dtype: str) -> np.ndarray:
    """The gradient fed to `backward` of output number `output` (same in every process)."""
    rng = np.random.default_rng([grad_seed, output])
    return rng.uniform(-3.0, 3.0, size=tuple(shape)).astype(np_dtype(dtype))
