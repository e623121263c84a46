"""Regression growth: turn a failure that a later attempt fixed into a pytest in regressions/."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

NUMERICS_TEMPLATE = '''\
"""Regression grown by the Ember harness (numerics vs PyTorch).

goal:     {goal}
run:      {run}
failed:   attempt {failed_attempt} ({failure})
accepted: attempt {accepted_attempt}
model:    {model}
The cases below are the exact inputs (op, shape, dtype, seed, tolerance) that failed.
"""
import numpy as np
import pytest
import torch

import ember  # noqa: F401  (regressions/conftest.py puts runtime/python on sys.path)

CASES = {cases}


def _resolve(expr):
    import importlib
    parts = expr.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    return eval(expr, {{"ember": ember, "torch": torch, "np": np}})


def _to_ember(array):
    make = getattr(ember, "from_numpy", None)
    return make(np.ascontiguousarray(array.copy())) if make else ember.tensor(array.copy())


def _with_grad(x):
    returned = x.requires_grad_()
    return x if returned is None else returned


def _to_numpy(value):
    value = value.detach() if hasattr(value, "detach") else value
    return np.array(value.numpy(), copy=True)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_{name}(case):
    rng = np.random.default_rng(case["seed"])
    low, high = case["input_range"]
    inputs = [rng.uniform(low, high, size=case["shape"]).astype(case["dtype"])
              for _ in range(case["num_inputs"])]
    backward = case["backward"]
    xs = [_to_ember(a) for a in inputs]
    if backward:
        xs = [_with_grad(x) for x in xs]
    ts = [torch.from_numpy(a.copy()).requires_grad_(backward) for a in inputs]
    y, ty = _resolve(case["ember"])(*xs), _resolve(case["torch"])(*ts)
    got, want = _to_numpy(y), ty.detach().numpy()
    np.testing.assert_allclose(got, want, atol=case["atol"], rtol=case["rtol"])
    if backward:
        grad = np.random.default_rng(case["seed"] + 7919).standard_normal(want.shape)
        grad = grad.astype(case["dtype"])
        y.backward(_to_ember(grad))
        ty.backward(torch.from_numpy(grad))
        for x, t in zip(xs, ts):
            assert x.grad is not None, "no gradient reached the input"
            np.testing.assert_allclose(_to_numpy(x.grad), t.grad.numpy(),
                                       atol=case["atol"], rtol=case["rtol"])
'''

SELECTOR_TEMPLATE = '''\
"""Regression grown by the Ember harness (a test selector that failed, then passed).

goal:     {goal}
run:      {run}
failed:   attempt {failed_attempt} ({failure})
accepted: attempt {accepted_attempt}
model:    {model}
"""
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SELECTORS = {selectors}


@pytest.mark.parametrize("selector", SELECTORS)
def test_{name}(selector):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *shlex.split(selector)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
'''


def slug(text: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


def candidates_from_stage(stage: dict, attempt: int) -> dict | None:
    """What of a failed attempt's verdict can become a regression test."""
    if stage["name"] == "numerics":
        cases, picked, seen = stage["details"].get("failing_cases", []), [], set()
        for case in cases:
            key = (case["check"], tuple(case.get("shape") or ()), case.get("dtype"))
            if case.get("seed") is None or key in seen or case.get("phase") == "resolve":
                continue
            seen.add(key)
            picked.append(case)
        return {"kind": "numerics", "attempt": attempt, "cases": picked[:4]} if picked else None
    if stage["name"] == "pytest":
        selectors = stage["details"].get("failed_selectors", [])
        return {"kind": "pytest", "attempt": attempt, "selectors": selectors} if selectors else None
    return None


def write_regression(
    worktree: Path,
    candidate: dict,
    goal_id: str,
    run_id: str,
    accepted_attempt: int,
    model: str,
    backward_by_check: dict,
) -> Path:
    attempt = candidate["attempt"]
    name = slug(f"{goal_id}_{run_id}_a{attempt}")
    path = Path(worktree) / "regressions" / f"test_{name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = dict(
        goal=goal_id,
        run=run_id,
        failed_attempt=attempt,
        accepted_attempt=accepted_attempt,
        model=model,
        name=name,
    )
    if candidate["kind"] == "numerics":
        cases = []
        for case in candidate["cases"]:
            cases.append(
                {
                    "id": f"{case['check']}-{'x'.join(map(str, case['shape']))}-{case['dtype']}-"
                    f"seed{case['seed']}",
                    "ember": case["ember"],
                    "torch": case["torch"],
                    "shape": case["shape"],
                    "dtype": case["dtype"],
                    "seed": case["seed"],
                    "atol": case["atol"],
                    "rtol": case["rtol"],
                    "input_range": case["input_range"],
                    "num_inputs": case["num_inputs"],
                    "backward": backward_by_check.get(case["check"], True),
                    "failed_with": (case.get("error") or "")[:200],
                }
            )
        failure = f"numerics: {candidate['cases'][0].get('error', '')[:80]}"
        body = NUMERICS_TEMPLATE.format(cases=_pretty(cases), failure=_safe(failure), **fields)
    else:
        body = SELECTOR_TEMPLATE.format(
            selectors=_pretty(candidate["selectors"]), failure="pytest selector failed", **fields
        )
    path.write_text(body)
    return path


def _safe(text: str) -> str:
    return text.replace('"""', "'''").replace("\\", "/")


def _pretty(value) -> str:
    import pprint

    return textwrap.indent(pprint.pformat(value, width=96, sort_dicts=False), "").strip()
