"""End to end: small PyTorch programs using the newer nn pieces (programs/README.md) run on PyTorch
(in this process) and unchanged on ember (`python -m ember.torchcompat`, a subprocess) from the same
initial weights and batches: the losses and tracked values agree to float32 noise."""
import contextlib
import io
import json
import os
import runpy
import subprocess
import sys

import numpy as np
import pytest
import torch

from compat_helpers import EXAMPLE_ENV, one_thread_each  # noqa: F401  (autouse fixture)

PROGRAMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs")


def _records(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _run_on_torch(script, init):
    out, argv = io.StringIO(), sys.argv
    sys.argv = [script, "--init", init, "--steps", "5"]
    try:
        with contextlib.redirect_stdout(out):
            torch.manual_seed(0)
            runpy.run_path(script, run_name="__main__")
    finally:
        sys.argv = argv
    return _records(out.getvalue())


def _run_on_ember(script, init):
    cmd = [sys.executable, "-m", "ember.torchcompat", script, "--init", init, "--steps", "5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=EXAMPLE_ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _records(proc.stdout)


@pytest.mark.parametrize("program", ["super_resolution.py", "spatial_transformer.py", "siamese_triplet.py"])
def test_program_runs_the_same_on_torch_and_on_ember(tmp_path, program):
    script, init = os.path.join(PROGRAMS, program), str(tmp_path / "init.pt")
    want = _run_on_torch(script, init)  # writes the initial weights
    got = _run_on_ember(script, init)   # reads them
    assert len(got) == len(want) >= 5
    for w, g in zip(want, got, strict=True):
        assert w.keys() == g.keys()
        for key in w:
            np.testing.assert_allclose(g[key], w[key], rtol=1e-4, atol=1e-5, err_msg=f"{program}: {key} in {w}")
