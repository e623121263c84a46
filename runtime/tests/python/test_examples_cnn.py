"""End to end: examples/cnn_mnist_like.py (Conv2d, BatchNorm2d, MaxPool2d, Dropout2d, Flatten, Adam,
StepLR, TensorDataset + DataLoader) runs once on PyTorch and once, unchanged, on ember through
`python -m ember.torchcompat`, from the same initial weights and batches: the losses agree to float32
noise and both runs learn."""
import numpy as np

from compat_helpers import run_example


def run(*args, ember_alias):
    lines = run_example("cnn_mnist_like.py", *args, ember_alias=ember_alias)
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
