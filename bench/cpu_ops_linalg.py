"""Linear-algebra benchmark cases (ember vs torch, same inputs and thread count).

CASES = [(label, setup)]: setup(lib) builds inputs for `lib` (ember or torch) from the same numpy
arrays and returns a zero-arg callable. Run directly for a table (ms, ratio = torch / ember).
"""
from __future__ import annotations

import numpy as np


def _tensor(lib, a):
    return lib.from_numpy(np.ascontiguousarray(a))


def _mm_case(n, dtype="float32", transpose_a=False):
    def setup(lib):
        rng = np.random.default_rng(n)
        a = rng.standard_normal((n, n)).astype(dtype)
        b = rng.standard_normal((n, n)).astype(dtype)
        ta, tb = _tensor(lib, a), _tensor(lib, b)
        if transpose_a:
            ta = ta.T
        return lambda: lib.mm(ta, tb)
    return setup


def _bmm_case(batch, m, k, n):
    def setup(lib):
        rng = np.random.default_rng(batch)
        a = _tensor(lib, rng.standard_normal((batch, m, k)).astype(np.float32))
        b = _tensor(lib, rng.standard_normal((batch, k, n)).astype(np.float32))
        return lambda: lib.bmm(a, b)
    return setup


def _linear_case(batch, fin, fout):
    def setup(lib):
        rng = np.random.default_rng(fin)
        x = _tensor(lib, rng.standard_normal((batch, fin)).astype(np.float32))
        w = _tensor(lib, rng.standard_normal((fout, fin)).astype(np.float32))
        b = _tensor(lib, rng.standard_normal((fout,)).astype(np.float32))
        linear = lib.nn.functional.linear if lib.__name__ == "torch" else lib.linear
        return lambda: linear(x, w, b)
    return setup


def _matmul_broadcast_case():
    def setup(lib):
        rng = np.random.default_rng(5)
        a = _tensor(lib, rng.standard_normal((8, 64, 128)).astype(np.float32))
        b = _tensor(lib, rng.standard_normal((128, 64)).astype(np.float32))
        return lambda: lib.matmul(a, b)
    return setup


CASES = [
    ("mm 256 f32", _mm_case(256)),
    ("mm 512 f32", _mm_case(512)),
    ("mm 1024 f32", _mm_case(1024)),
    ("mm 2048 f32", _mm_case(2048)),
    ("mm 512 f32 (A transposed view)", _mm_case(512, transpose_a=True)),
    ("mm 512 f64", _mm_case(512, "float64")),
    ("mm 64 f32", _mm_case(64)),
    ("bmm 32x64x64x64 f32", _bmm_case(32, 64, 64, 64)),
    ("linear 128x512->256 f32", _linear_case(128, 512, 256)),
    ("matmul 8x64x128 @ 128x64 f32", _matmul_broadcast_case()),
]


if __name__ == "__main__":
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from cpu_ops import main

    main(["--families", "linalg"] + sys.argv[1:])
