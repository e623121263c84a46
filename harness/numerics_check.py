"""Harness-owned numerics diff of an ember op against its PyTorch reference.

Runs as a CHILD process with PYTHONPATH at the worktree's runtime/python; it is the only
harness code that imports ember. Usage: python numerics_check.py SPEC.json RESULT.json
Standalone on purpose (no harness imports), so the regression tests can reuse it.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def resolve(expr: str, namespace: dict):
    """A dotted path imports submodules as needed (ember.contrib.x.f); else eval the expression."""
    if DOTTED.match(expr):
        parts = expr.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for name in parts[cut:]:
                obj = getattr(obj, name)
            return obj
    return eval(expr, namespace)


def to_numpy(value):
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "numpy"):
        return np.array(value.numpy(), copy=True)
    return np.asarray(value)


def make_ember_tensor(ember, array: np.ndarray):
    if hasattr(ember, "from_numpy"):
        return ember.from_numpy(np.ascontiguousarray(array.copy()))
    return ember.tensor(array.copy())


def _with_grad(x):
    returned = x.requires_grad_()  # torch returns self; tolerate runtimes that return None
    return x if returned is None else returned


def poison_allocator(ember, shape, dtype, rounds: int = 4):
    """Allocate and drop NaN-filled tensors so a kernel reading unwritten memory sees NaN."""
    for _ in range(rounds):
        junk = make_ember_tensor(ember, np.full(shape, np.nan, dtype=dtype))
        del junk


def compare(got: np.ndarray, want: np.ndarray, atol: float, rtol: float) -> dict:
    if got.shape != want.shape:
        return {
            "ok": False,
            "error": f"shape mismatch: ember {list(got.shape)} vs torch {list(want.shape)}",
            "max_abs": None,
            "max_rel": None,
        }
    if got.dtype != want.dtype:
        return {
            "ok": False,
            "error": f"dtype mismatch: ember {got.dtype} vs torch {want.dtype}",
            "max_abs": None,
            "max_rel": None,
        }
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    nan_got, nan_want = np.isnan(got64), np.isnan(want64)
    diff = np.abs(np.where(nan_got | nan_want, 0.0, got64 - want64))
    rel = diff / np.maximum(np.abs(want64), 1e-12)
    result: dict[str, Any] = {
        "max_abs": float(diff.max(initial=0.0)),
        "max_rel": float(rel.max(initial=0.0)),
    }
    if (nan_got != nan_want).any():
        result.update(
            ok=False,
            error=f"NaN mismatch at {int((nan_got != nan_want).sum())} "
            "positions (unwritten output buffer?)",
        )
        return result
    bad = diff > atol + rtol * np.abs(want64)
    result["ok"] = not bad.any()
    if bad.any():
        worst = np.unravel_index(int(np.argmax(np.where(bad, diff, -1))), diff.shape)
        result["error"] = (
            f"{int(bad.sum())}/{diff.size} elements out of tolerance; worst at "
            f"index {list(map(int, worst))}: ember {got64[worst]:.8g} vs torch "
            f"{want64[worst]:.8g}"
        )
    return result


def run_case(check, ember_fn, torch_fn, ember, torch, shape, dtype, seed, order):
    rng = np.random.default_rng(seed)
    low, high = check["input_range"]
    inputs = [rng.uniform(low, high, size=shape).astype(dtype) for _ in range(check["num_inputs"])]
    backward = check["backward"]
    big = dtype == "float64"
    atol = check["atol_float64"] if big else check["atol"]
    rtol = check["rtol_float64"] if big else check["rtol"]

    def grad_for(out_shape):
        return np.random.default_rng(seed + 7919).standard_normal(out_shape).astype(dtype)

    def run_ember():
        poison_allocator(ember, shape, dtype)
        xs = [make_ember_tensor(ember, a) for a in inputs]
        if backward:
            xs = [_with_grad(x) for x in xs]
        if check["supports_out"]:
            out = make_ember_tensor(ember, np.full(shape, np.nan, dtype=dtype))
            ember_fn(*xs, out=out)
            y = out
        else:
            y = ember_fn(*xs)
        y_np = to_numpy(y)
        grads = []
        if backward:
            y.backward(make_ember_tensor(ember, grad_for(y_np.shape)))
            grads = [to_numpy(x.grad) if x.grad is not None else None for x in xs]
        return y_np, grads

    def run_torch():
        xs = [torch.from_numpy(a.copy()).requires_grad_(backward) for a in inputs]
        y = torch_fn(*xs)
        y_np = y.detach().numpy().copy()
        grads = []
        if backward:
            y.backward(torch.from_numpy(grad_for(y_np.shape)))
            grads = [x.grad.numpy().copy() for x in xs]
        return y_np, grads

    results = {}
    runners = [("ember", run_ember), ("torch", run_torch)]
    for name, runner in runners if order == "ember_first" else runners[::-1]:
        results[name] = runner()
    base = {
        "check": check["name"],
        "shape": list(shape),
        "dtype": dtype,
        "seed": seed,
        "order": order,
        "atol": atol,
        "rtol": rtol,
        "ember": check["ember"],
        "torch": check["torch"],
        "input_range": [low, high],
        "num_inputs": check["num_inputs"],
    }
    cases = [
        dict(base, phase="forward", **compare(results["ember"][0], results["torch"][0], atol, rtol))
    ]
    for i, (got, want) in enumerate(zip(results["ember"][1], results["torch"][1], strict=False)):
        if got is None:
            cases.append(
                dict(
                    base,
                    phase=f"backward[input {i}]",
                    ok=False,
                    max_abs=None,
                    max_rel=None,
                    error="ember produced no gradient (x.grad is None)",
                )
            )
        else:
            cases.append(dict(base, phase=f"backward[input {i}]", **compare(got, want, atol, rtol)))
    return cases


def run_checks(spec: dict) -> dict:
    report: dict[str, Any] = {"ok": True, "cases": [], "error": None}
    try:
        import ember
        import torch
    except Exception:
        report.update(ok=False, error="import failed:\n" + traceback.format_exc(limit=3))
        return report
    namespace = {"ember": ember, "torch": torch, "np": np}
    for check in spec["checks"]:
        try:
            ember_fn, torch_fn = (
                resolve(check["ember"], namespace),
                resolve(check["torch"], namespace),
            )
        except Exception as exc:
            report["ok"] = False
            report["cases"].append(
                {
                    "check": check["name"],
                    "phase": "resolve",
                    "ok": False,
                    "error": f"cannot resolve {check['ember']!r}: {type(exc).__name__}: {exc}",
                }
            )
            continue
        grid = [
            (tuple(shape), dtype, seed)
            for shape in check["shapes"]
            for dtype in check["dtypes"]
            for seed in check["seed_values"]
        ]
        for order in ("ember_first", "torch_first"):
            for shape, dtype, seed in grid if order == "ember_first" else grid[::-1]:
                try:
                    cases = run_case(
                        check, ember_fn, torch_fn, ember, torch, shape, dtype, seed, order
                    )
                except Exception as exc:
                    tb = traceback.format_exc(limit=4).strip().splitlines()
                    big = dtype == "float64"
                    cases = [
                        {
                            "check": check["name"],
                            "shape": list(shape),
                            "dtype": dtype,
                            "seed": seed,
                            "order": order,
                            "phase": "call",
                            "ok": False,
                            "atol": check["atol_float64" if big else "atol"],
                            "rtol": check["rtol_float64" if big else "rtol"],
                            "error": f"{type(exc).__name__}: {exc}",
                            "traceback": tb[-6:],
                        }
                    ]
                report["cases"].extend(cases)
                report["ok"] = report["ok"] and all(c["ok"] for c in cases)
    return report


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    report = run_checks(spec)
    with open(argv[2], "w") as handle:
        json.dump(report, handle, indent=1, default=str)
    failed = [c for c in report["cases"] if not c["ok"]]
    print(f"numerics: {len(report['cases']) - len(failed)}/{len(report['cases'])} cases passed")
    for case in failed[:10]:
        print(
            f"FAIL {case['check']} {case.get('phase')} shape={case.get('shape')} "
            f"dtype={case.get('dtype')} seed={case.get('seed')}: {case.get('error')}"
        )
    if report["error"]:
        print(report["error"])
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
