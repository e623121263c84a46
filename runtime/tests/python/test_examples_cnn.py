"""End to end: examples/cnn_mnist_like.py (Conv2d, BatchNorm2d, MaxPool2d, Dropout2d, Flatten, Adam,
StepLR, TensorDataset + DataLoader) runs once on PyTorch and once, unchanged, on ember through
`python -m ember.torchcompat`, from the same initial weights and batches: the losses agree to float32
noise and both runs learn."""
import json
import os
import subprocess
import sys

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(REPO, "runtime", "python"),
                                                    os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}


def run(*args, ember_alias):
    cmd = [sys.executable] + (["-m", "ember.torchcompat"] if ember_alias else []) + \
        [os.path.join(REPO, "examples", "cnn_mnist_like.py"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr[-3000:]}"
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return [r["loss"] for r in lines if "loss" in r], [r["test_accuracy"] for r in lines if "test_accuracy" in r][0]


def test_cnn_example_runs_the_same_on_torch_and_on_ember(tmp_path):
    init = str(tmp_path / "init.pt")
    # Dropout2d off: its masks come from each library's own generator.
    args = ["--steps", "30", "--train-size", "1024", "--test-size", "256", "--batch-size", "32", "--dropout", "0"]
    torch_losses, torch_acc = run(*args, "--save-init", init, ember_alias=False)
    ember_losses, ember_acc = run(*args, "--init", init, ember_alias=True)
    assert len(torch_losses) == len(ember_losses) == 30
    assert np.mean(torch_losses[-5:]) < 0.85 * torch_losses[0]  # it learns (2.3 -> ~1.8 in 30 steps)
    np.testing.assert_allclose(ember_losses, torch_losses, rtol=2e-3, atol=2e-3)
    assert abs(ember_acc - torch_acc) <= 2 / 256  # an image or two may flip at a near-tie
