"""End to end: the example PyTorch programs (examples/char_mlp.py with DataLoader workers,
examples/transformer_lm.py with nn.TransformerEncoder) run once on PyTorch and once, unchanged, on
ember through `python -m ember.torchcompat`, from the same initial weights (a torch.save checkpoint
read by ember.load) and the same batches: the loss curves agree to float32 noise."""
import numpy as np
import pytest

from compat_helpers import corpus, run_example  # noqa: F401  (corpus: a fixture)


def run(script, *args, ember_alias):
    return [r["loss"] for r in run_example(script, *args, ember_alias=ember_alias)]


@pytest.mark.parametrize("script,args", [
    ("char_mlp.py", ["--steps", "25", "--workers", "2", "--chars", "20000", "--n-hidden", "64"]),
    ("transformer_lm.py", ["--steps", "12", "--dropout", "0", "--chars", "20000", "--d-model", "32", "--d-ff", "64",
                           "--bptt", "16", "--batch-size", "8"]),
])
def test_example_runs_the_same_on_torch_and_on_ember(tmp_path, corpus, script, args):
    init = str(tmp_path / "init.pt")
    args = args + ["--data", corpus]
    torch_losses = run(script, *args, "--save-init", init, ember_alias=False)
    ember_losses = run(script, *args, "--init", init, ember_alias=True)
    assert len(torch_losses) == len(ember_losses) > 10
    assert torch_losses[-1] < torch_losses[0]  # it trains
    np.testing.assert_allclose(ember_losses, torch_losses, rtol=2e-4, atol=2e-4)


def test_transformer_checkpoint_written_on_ember_resumes_on_torch(tmp_path, corpus):
    ckpt = str(tmp_path / "ckpt.pt")
    args = ["--steps", "3", "--dropout", "0", "--chars", "5000", "--d-model", "16", "--d-ff", "32", "--data", corpus]
    run("transformer_lm.py", *args, "--checkpoint", ckpt, ember_alias=True)
    import torch
    state = torch.load(ckpt)  # weights_only=True: ember wrote nothing but tensors and plain values
    assert state["step"] == 3 and "encoder.layers.0.self_attn.in_proj_weight" in state["model"]
    assert set(state["optimizer"]) == {"state", "param_groups"}
