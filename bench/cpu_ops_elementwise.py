"""Elementwise CPU benchmark cases: CASES = [(label, setup)], setup(lib) -> zero-arg callable.

Both libraries get tensors made from the same numpy arrays. Run directly for a table:
    PYTHONPATH=runtime/python .venv/bin/python bench/cpu_ops_elementwise.py [--filter exp]
"""
from __future__ import annotations

import numpy as np

_rng = np.random.default_rng(0)
_ARRAYS = {}


def _array(shape, dtype="float32", low=-3.0, high=3.0, key=0):
    k = (shape, dtype, low, high, key)
    if k not in _ARRAYS:
        if dtype == "bool":
            _ARRAYS[k] = _rng.random(shape) < 0.5
        else:
            _ARRAYS[k] = _rng.uniform(low, high, size=shape).astype(dtype)
    return _ARRAYS[k]


def _t(lib, a):
    return lib.from_numpy(a.copy())


def _fn(lib, name):
    """lib.<name>, or torch.nn.functional.<name> for activations torch keeps there."""
    return getattr(lib, name) if hasattr(lib, name) else getattr(lib.nn.functional, name)


def unary(name, n, low=-3.0, high=3.0):
    def setup(lib):
        x = _t(lib, _array((n,), low=low, high=high))
        f = _fn(lib, name)
        return lambda: f(x)
    return setup


def gelu(n, approximate):
    def setup(lib):
        x = _t(lib, _array((n,)))
        f = lib.nn.functional.gelu if lib.__name__ == "torch" else lib.gelu
        return lambda: f(x, approximate=approximate)
    return setup


def binary(name, sa, sb, op=None, dtype="float32"):
    def setup(lib):
        a = _t(lib, _array(sa, dtype, key=1))
        b = _t(lib, _array(sb, dtype, low=0.5, high=3.0, key=2))
        f = op or getattr(lib, name)
        return lambda: f(a, b)
    return setup


def where(n):
    def setup(lib):
        c = _t(lib, _array((n,), "bool", key=3))
        a = _t(lib, _array((n,), key=4))
        b = _t(lib, _array((n,), key=5))
        return lambda: lib.where(c, a, b)
    return setup


def tiny_add(lib):
    a = _t(lib, _array((1,), key=6))
    b = _t(lib, _array((1,), key=7))
    return lambda: a + b


def scalar_mul(n):
    def setup(lib):
        x = _t(lib, _array((n,)))
        return lambda: x * 2.5
    return setup


def to_dtype(n, src, dst):
    def setup(lib):
        x = _t(lib, _array((n,), src))
        d = getattr(lib, dst)
        return lambda: x.to(d)
    return setup


def transpose_contiguous(n):
    def setup(lib):
        x = _t(lib, _array((n, n)))
        return lambda: x.t().contiguous()
    return setup


def inplace_add(n):
    def setup(lib):
        a = _t(lib, _array((n,), key=8))
        b = _t(lib, _array((n,), key=9))
        return lambda: a.add_(b, alpha=1e-9)
    return setup


M1, M4, M16 = 1 << 20, 1 << 22, 1 << 24
CASES = [
    ("add 1 elem (python overhead)", tiny_add),
    ("add 1M", binary("add", (M1,), (M1,))),
    ("add 16M", binary("add", (M16,), (M16,))),
    ("add bcast [1024,1024]+[1024]", binary("add", (1024, 1024), (1024,))),
    ("mul 1M", binary("mul", (M1,), (M1,))),
    ("mul 4M", binary("mul", (M4,), (M4,))),
    ("mul scalar 4M", scalar_mul(M4)),
    ("div 4M", binary("div", (M4,), (M4,))),
    ("add_ inplace 4M", inplace_add(M4)),
    ("maximum 4M", binary("maximum", (M4,), (M4,))),
    ("exp 1M", unary("exp", M1)),
    ("exp 4M", unary("exp", M4)),
    ("log 4M", unary("log", M4, low=0.1, high=10)),
    ("tanh 1M", unary("tanh", M1)),
    ("tanh 4M", unary("tanh", M4)),
    ("sigmoid 4M", unary("sigmoid", M4)),
    ("gelu 4M", gelu(M4, "none")),
    ("gelu tanh 4M", gelu(M4, "tanh")),
    ("relu 4M", unary("relu", M4)),
    ("silu 4M", unary("silu", M4)),
    ("sqrt 4M", unary("sqrt", M4, low=0, high=10)),
    ("sin 4M", unary("sin", M4)),
    ("where 4M", where(M4)),
    ("gt 4M", binary("gt", (M4,), (M4,))),
    ("to float16 4M", to_dtype(M4, "float32", "float16")),
    ("to float64 4M", to_dtype(M4, "float32", "float64")),
    ("transpose contiguous 2048^2", transpose_contiguous(2048)),
]


if __name__ == "__main__":
    import argparse
    import os
    import statistics
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch

    import ember
    from cpu_ops import time_callable

    ap = argparse.ArgumentParser()
    ap.add_argument("--filter", default="")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(ember.get_num_threads())
    print(f"{'case':<34} {'ember ms':>10} {'torch ms':>10} {'torch/ember':>12}")
    for label, setup in CASES:
        if args.filter not in label:
            continue
        e_fn, t_fn = setup(ember), setup(torch)
        es, ts = [], []
        for _ in range(3):
            es.append(time_callable(e_fn, repeats=args.repeats))
            ts.append(time_callable(t_fn, repeats=args.repeats))
        e, t = statistics.median(es), statistics.median(ts)
        print(f"{label:<34} {e * 1e3:>10.4f} {t * 1e3:>10.4f} {t / e:>12.2f}", flush=True)
