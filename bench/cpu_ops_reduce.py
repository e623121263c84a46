"""Reduction / softmax / sort benchmark cases (ember vs torch, same inputs and thread count).

CASES = [(label, setup)]: setup(lib) builds inputs for `lib` (ember or torch) from the same numpy
arrays and returns a zero-arg callable. Run directly for a table (ms, ratio = torch / ember).
"""
from __future__ import annotations

import numpy as np

_cache = {}


def _array(shape, dtype="float32", seed=0):
    key = (shape, dtype, seed)
    if key not in _cache:
        rng = np.random.default_rng(seed)
        _cache[key] = rng.standard_normal(shape).astype(dtype)
    return _cache[key]


def _case(shape, op, dtype="float32", transpose=False):
    def setup(lib):
        x = lib.from_numpy(_array(shape, dtype))
        if transpose:
            x = x.t()
        return lambda: op(lib, x)
    return setup


M16 = (4096, 4096)
CASES = [
    ("sum full 1M f32", _case((1 << 20,), lambda lib, x: lib.sum(x))),
    ("sum full 16M f32", _case(M16, lambda lib, x: lib.sum(x))),
    ("sum last-dim 16M f32 (4096x4096)", _case(M16, lambda lib, x: lib.sum(x, -1))),
    ("sum last-dim 1M f32 (16384x64)", _case((16384, 64), lambda lib, x: lib.sum(x, -1))),
    ("sum dim0 16M f32 (4096x4096)", _case(M16, lambda lib, x: lib.sum(x, 0))),
    ("sum dim0 1M f32 (1024x1024)", _case((1024, 1024), lambda lib, x: lib.sum(x, 0))),
    ("sum full 16M f32 (transposed view)", _case(M16, lambda lib, x: lib.sum(x), transpose=True)),
    ("mean full 16M f32", _case(M16, lambda lib, x: lib.mean(x))),
    ("mean last-dim 1M f32 (1024x1024)", _case((1024, 1024), lambda lib, x: lib.mean(x, -1))),
    ("amax full 16M f32", _case(M16, lambda lib, x: lib.amax(x))),
    ("amax last-dim 16M f32 (4096x4096)", _case(M16, lambda lib, x: lib.amax(x, -1))),
    ("amax last-dim 1M f32 (1024x1024)", _case((1024, 1024), lambda lib, x: lib.amax(x, -1))),
    ("amax dim0 1M f32 (1024x1024)", _case((1024, 1024), lambda lib, x: lib.amax(x, 0))),
    ("softmax last-dim 1M f32 (1024x1024)", _case((1024, 1024), lambda lib, x: lib.softmax(x, -1))),
    ("softmax last-dim 16M f32 (4096x4096)", _case(M16, lambda lib, x: lib.softmax(x, -1))),
    ("softmax last-dim 1M f32 (8192x128)", _case((8192, 128), lambda lib, x: lib.softmax(x, -1))),
    ("log_softmax last-dim 1M f32 (1024x1024)", _case((1024, 1024), lambda lib, x: lib.log_softmax(x, -1))),
    ("softmax dim0 1M f32 (1024x1024)", _case((1024, 1024), lambda lib, x: lib.softmax(x, 0))),
    ("sum full 1M f64", _case((1 << 20,), lambda lib, x: lib.sum(x), "float64")),
    ("var last-dim 1M f32 (1024x1024)", _case((1024, 1024), lambda lib, x: lib.var(x, -1))),
    ("norm full 1M f32", _case((1 << 20,), lambda lib, x: lib.norm(x))),
    ("logsumexp last-dim 1M f32 (1024x1024)", _case((1024, 1024), lambda lib, x: lib.logsumexp(x, -1))),
    ("argmax last-dim 1M f32 (1024x1024)", _case((1024, 1024), lambda lib, x: lib.argmax(x, -1))),
    ("max dim 1M f32 (1024x1024)", _case((1024, 1024), lambda lib, x: lib.max(x, -1))),
    ("cumsum last-dim 1M f32 (1024x1024)", _case((1024, 1024), lambda lib, x: lib.cumsum(x, -1))),
    ("sort last-dim 1M f32 (1024x1024)", _case((1024, 1024), lambda lib, x: lib.sort(x, -1))),
    ("topk k=10 last-dim 1M f32 (1024x1024)", _case((1024, 1024), lambda lib, x: lib.topk(x, 10))),
]


if __name__ == "__main__":
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from cpu_ops import main

    main(["--families", "reduce"] + sys.argv[1:])
