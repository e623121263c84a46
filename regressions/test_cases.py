"""The one collector of regressions/cases/*.json: each grown case, in-process, on the shared engine.

A case runs on its recorded seed (the draw that failed when it was grown) and, under
EMBER_TEST_FUZZ=1, on a fresh one too. The harness runs the same files through its split pipeline
(harness/numerics.py), where ember cannot see or touch the PyTorch side.
"""
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numcheck import case_seed, compare_outcomes, fuzzing, load_case_file, replay_hint
from numcheck.runner import resolve, run_case

HERE = Path(__file__).resolve().parent
FILES = [(path, load_case_file(path)) for path in sorted((HERE / "cases").glob("*.json"))]
DRAWS = ["recorded", "fuzz"] if fuzzing() else ["recorded"]
CASES = [
    pytest.param(case, draw, id=f"{path.stem}::{case.id}::{draw}")
    for path, grown in FILES
    for case in grown.cases
    for draw in DRAWS
]
SELECTORS = [
    pytest.param(selector, id=f"{path.stem}::{selector}")
    for path, grown in FILES
    for selector in grown.selectors
]


def _outcome(lib, expr, case, inputs, seed, **kwargs):
    fn = resolve(expr, {lib.__name__: lib, "np": np})
    return run_case(lib, fn, inputs, dtype=case.dtype, backward=case.backward, grad_seed=case.grad_seed(seed), **kwargs)


@pytest.mark.parametrize("case,draw", CASES)
def test_numerics_case(case, draw):
    import torch

    import ember

    seed = case.seed if draw == "recorded" else case_seed("regression", case.id)
    inputs = case.inputs(seed)
    expected = _outcome(torch, case.torch, case, inputs, seed)
    actual = _outcome(ember, case.ember, case, inputs, seed, supports_out=case.supports_out, poison=True)
    report = compare_outcomes(actual, expected, tol=case.tolerances(), originals=inputs)
    report.raise_if_failed(f"{case.id} seed={seed}{replay_hint()}")


@pytest.mark.parametrize("selector", SELECTORS)
def test_selector(selector):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *shlex.split(selector)],
                          cwd=HERE.parent, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
