"""The differential op table's engine: runs one function against ember and torch side by side.

An OpCase names a function written once for both libraries, `fn(lib, *tensors)`, where lib is the
`ember` or `torch` module (their APIs match). `check_case` draws fresh random inputs (seeded per
call; the seed is in every failure message), builds contiguous and non-contiguous copies, runs both
libraries, compares outputs (NaNs must match position for position), then compares gradients of a
random upstream gradient. Float64 finite differences live in `finite_difference_check`.
"""
from __future__ import annotations

import dataclasses
import os
import random
from typing import Any, Callable, Sequence

import numpy as np
import torch

import ember

FLOAT_DTYPES = ["float32", "float64", "float16", "bfloat16"]
INT_DTYPES = ["int64", "int32", "int8", "uint8"]
ALL_DTYPES = FLOAT_DTYPES + INT_DTYPES + ["bool"]

# (rtol, atol) by dtype; low-precision types get the slack their 8/11-bit mantissas need.
TOLERANCES = {
    "float64": (1e-7, 1e-7),
    "float32": (1e-4, 1e-5),
    "float16": (1e-2, 1e-2),
    "bfloat16": (3e-2, 3e-2),
}


def devices() -> list[str]:
    devs = ["cpu"]
    cuda = getattr(ember, "cuda", None)
    if cuda is not None and cuda.is_available() and torch.cuda.is_available():
        devs.append("cuda")
    return devs


@dataclasses.dataclass
class OpCase:
    name: str
    fn: Callable[..., Any]                     # fn(lib, *tensors) -> tensor or tuple of tensors
    shapes: Sequence[Sequence[tuple]]          # each entry: the shapes of the inputs of one call
    dtypes: Sequence[str] = ("float32", "float64")
    grad: bool = True                          # also compare gradients (float dtypes only)
    low: float = -3.0                          # input value range
    high: float = 3.0
    make_inputs: Callable | None = None        # make_inputs(rng, shapes, dtype) -> list[np.ndarray]
    grad_inputs: Sequence[int] | None = None   # which inputs get gradients (default: all float ones)
    tol: dict | None = None                    # per-dtype (rtol, atol) overrides
    noncontiguous: bool = True
    gradcheck: bool = True                     # float64 finite-difference check
    input_dtypes: Sequence[str] | None = None  # per-input dtype overrides (e.g. int64 indices)

    def __str__(self):
        return self.name


def _np_dtype(dtype: str):
    return np.dtype(np.float32) if dtype == "bfloat16" else np.dtype(dtype)


def random_array(rng: np.random.Generator, shape, dtype: str, low=-3.0, high=3.0) -> np.ndarray:
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in INT_DTYPES:
        lo = 0 if dtype == "uint8" else int(max(low, -100))
        hi = int(min(high, 100)) + 1
        if hi <= lo:
            hi = lo + 1
        return rng.integers(lo, hi, size=shape).astype(dtype)
    x = rng.uniform(low, high, size=shape)
    return x.astype(_np_dtype(dtype))


def to_torch(a: np.ndarray, dtype: str, device="cpu") -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a).reshape(np.shape(a)))  # ascontiguousarray makes 0-dim 1-dim
    return t.to(getattr(torch, dtype)).to(device)


def to_ember(a: np.ndarray, dtype: str, device="cpu", noncontiguous=False):
    if noncontiguous and a.ndim >= 1 and a.size > 1:
        # Same values, non-unit strides: every other element of a twice-as-wide buffer.
        wide = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), dtype=a.dtype)
        wide[..., ::2] = a
        t = ember.from_numpy(wide)
        t = ember.as_strided(t, a.shape, [s * 2 if i == a.ndim - 1 else s for i, s in enumerate(t.stride())])
        if dtype == "bfloat16":
            t = t.to(ember.bfloat16)
    else:
        t = ember.from_numpy(np.ascontiguousarray(a).reshape(np.shape(a)))
        if dtype == "bfloat16":
            t = t.to(ember.bfloat16)
    if device != "cpu":
        t = t.to(device)
    return t


def to_numpy(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.numpy()
    t = t.detach().cpu()
    if t.dtype == ember.bfloat16:
        t = t.to(ember.float32)
    return t.numpy()


def assert_close(actual, expected, dtype: str, what: str, tol: dict | None = None):
    """Compares an ember result to torch's: same shape, dtype, NaN positions and values within tol."""
    a, e = to_numpy(actual), to_numpy(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != torch {e.shape}"
    ed = str(expected.dtype).replace("torch.", "")
    ad = str(actual.dtype).replace("ember.", "")
    assert ad == ed, f"{what}: dtype {ad} != torch {ed}"
    if a.dtype == np.bool_ or np.issubdtype(a.dtype, np.integer):
        mism = np.argwhere(a != e)
        assert mism.size == 0, f"{what}: {len(mism)} mismatches, first at {tuple(mism[0])}: {a[tuple(mism[0])]} vs {e[tuple(mism[0])]}"
        return
    rtol, atol = (tol or {}).get(ed, TOLERANCES.get(ed, (1e-4, 1e-5)))
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    assert np.array_equal(nan_a, nan_e), (
        f"{what}: NaN positions differ (ember {int(nan_a.sum())} NaNs, torch {int(nan_e.sum())})")
    ok = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    if not ok.all():
        idx = tuple(np.argwhere(~ok)[0])
        err = np.nanmax(np.abs(a.astype(np.float64) - e.astype(np.float64)))
        raise AssertionError(f"{what}: {int((~ok).sum())}/{ok.size} elements differ (max abs err {err:.3g}, "
                             f"rtol={rtol}, atol={atol}); first at {idx}: ember {a[idx]!r} vs torch {e[idx]!r}")


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def check_case(case: OpCase, shapes, dtype: str, device: str = "cpu", noncontiguous=False, seed=None):
    """Runs one (case, shapes, dtype, layout, device) combination; raises AssertionError on mismatch."""
    seed = random.randrange(2**31) if seed is None else seed
    rng = np.random.default_rng(seed)
    where = f"[{case.name}] shapes={list(shapes)} dtype={dtype} device={device} noncontig={noncontiguous} seed={seed}"
    in_dtypes = list(case.input_dtypes) if case.input_dtypes else [dtype] * len(shapes)
    in_dtypes = [dtype if d is None else d for d in in_dtypes]
    if case.make_inputs:
        arrays = case.make_inputs(rng, shapes, dtype)
    else:
        arrays = [random_array(rng, s, d, case.low, case.high) for s, d in zip(shapes, in_dtypes)]
    in_dtypes = [d if not isinstance(a, np.ndarray) or a.dtype.kind == "f" or d in ("bool",) + tuple(INT_DTYPES)
                 else str(a.dtype) for a, d in zip(arrays, in_dtypes)]
    want_grad = case.grad and dtype in FLOAT_DTYPES
    grad_ids = [i for i, d in enumerate(in_dtypes) if d in FLOAT_DTYPES] if case.grad_inputs is None else list(case.grad_inputs)
    tt = [to_torch(a, d, device) for a, d in zip(arrays, in_dtypes)]
    et = [to_ember(a, d, device, noncontiguous) for a, d in zip(arrays, in_dtypes)]
    if want_grad:
        for i in grad_ids:
            tt[i].requires_grad_(True)
            et[i].requires_grad_(True)
    try:
        expected = _as_tuple(case.fn(torch, *tt))
    except Exception as exc:  # torch rejects this combination: ember must reject it too
        try:
            case.fn(ember, *et)
        except Exception:
            return
        raise AssertionError(f"{where}: torch raised {type(exc).__name__}: {exc} but ember did not")
    actual = _as_tuple(case.fn(ember, *et))
    assert len(actual) == len(expected), f"{where}: {len(actual)} outputs vs torch {len(expected)}"
    for k, (a, e) in enumerate(zip(actual, expected)):
        if isinstance(e, torch.Tensor):
            assert_close(a, e, str(e.dtype).replace("torch.", ""), f"{where} output {k}", case.tol)
        else:
            assert a == e, f"{where} output {k}: {a!r} != torch {e!r}"
    if not want_grad or not grad_ids:
        return
    outs = [(a, e) for a, e in zip(actual, expected) if isinstance(e, torch.Tensor) and e.requires_grad]
    if not outs:
        return
    t_roots, e_roots, grads_t, grads_e = [], [], [], []
    for a, e in outs:
        g = random_array(rng, tuple(e.shape), "float64").astype(np.float32 if dtype == "bfloat16" else _np_dtype(str(e.dtype).replace("torch.", "")))
        gd = str(e.dtype).replace("torch.", "")
        t_roots.append(e); e_roots.append(a)
        grads_t.append(to_torch(g, gd, device)); grads_e.append(to_ember(g, gd, device))
    torch.autograd.backward(t_roots, grads_t)
    for (a, _), g in zip(outs, grads_e):
        a.backward(g, retain_graph=True)
    for i in grad_ids:
        if tt[i].grad is None:
            assert et[i].grad is None or not to_numpy(et[i].grad).any(), f"{where}: input {i} got a gradient torch did not"
            continue
        assert et[i].grad is not None, f"{where}: input {i} got no gradient (torch did)"
        assert_close(et[i].grad, tt[i].grad, dtype, f"{where} grad of input {i}", case.tol)


def finite_difference_check(case: OpCase, shapes, eps=1e-6, atol=1e-5, rtol=1e-3, seed=None):
    """Float64 central differences of sum(out * w) against ember's analytic gradient."""
    seed = random.randrange(2**31) if seed is None else seed
    rng = np.random.default_rng(seed)
    where = f"[{case.name}] gradcheck shapes={list(shapes)} seed={seed}"
    in_dtypes = list(case.input_dtypes) if case.input_dtypes else ["float64"] * len(shapes)
    in_dtypes = ["float64" if d is None else d for d in in_dtypes]
    arrays = (case.make_inputs(rng, shapes, "float64") if case.make_inputs
              else [random_array(rng, s, d, case.low, case.high) for s, d in zip(shapes, in_dtypes)])
    grad_ids = ([i for i, a in enumerate(arrays) if a.dtype == np.float64]
                if case.grad_inputs is None else list(case.grad_inputs))
    outs0 = _as_tuple(case.fn(ember, *[ember.from_numpy(a.copy()) for a in arrays]))
    weights = [rng.uniform(-1, 1, size=tuple(o.shape)) for o in outs0 if is_float_tensor(o)]

    def objective(arrs):
        outs = [o for o in _as_tuple(case.fn(ember, *[ember.from_numpy(a) for a in arrs])) if is_float_tensor(o)]
        return sum(float((to_numpy(o) * w).sum()) for o, w in zip(outs, weights))

    ets = [ember.from_numpy(a.copy()) for a in arrays]
    for i in grad_ids:
        ets[i].requires_grad_(True)
    outs = [o for o in _as_tuple(case.fn(ember, *ets)) if is_float_tensor(o)]
    for o, w in zip(outs, weights):
        o.backward(ember.from_numpy(w.copy()), retain_graph=True)
    for i in grad_ids:
        analytic = to_numpy(ets[i].grad) if ets[i].grad is not None else np.zeros_like(arrays[i])
        numeric = np.zeros_like(arrays[i])
        flat = arrays[i].reshape(-1)
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            plus = objective(arrays)
            flat[j] = orig - eps
            minus = objective(arrays)
            flat[j] = orig
            numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        ok = np.isclose(analytic, numeric, atol=atol, rtol=rtol)
        assert ok.all(), (f"{where}: input {i} analytic vs numeric gradient differ, max abs err "
                          f"{np.abs(analytic - numeric).max():.3g}")


def is_float_tensor(o) -> bool:
    return hasattr(o, "dtype") and getattr(o.dtype, "is_floating_point", False)


def params(cases: Sequence[OpCase]):
    """pytest parameters: one per (case, shapes, dtype, layout, device)."""
    import pytest
    out = []
    for case in cases:
        for shapes in case.shapes:
            for dtype in case.dtypes:
                for device in devices():
                    layouts = [False, True] if case.noncontiguous else [False]
                    for nc in layouts:
                        tag = f"{case.name}-{'x'.join(str(list(s)) for s in shapes)}-{dtype}-{device}{'-nc' if nc else ''}"
                        out.append(pytest.param(case, shapes, dtype, device, nc, id=tag))
    return out


def gradcheck_params(cases: Sequence[OpCase]):
    import pytest
    out = []
    for case in cases:
        if not (case.grad and case.gradcheck):
            continue
        small = [s for s in case.shapes if all(int(np.prod(x)) <= 24 for x in s)][:2]
        for shapes in small:
            out.append(pytest.param(case, shapes, id=f"{case.name}-{'x'.join(str(list(s)) for s in shapes)}"))
    return out
