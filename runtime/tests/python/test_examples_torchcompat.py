"""End to end: the example PyTorch programs (examples/char_mlp.py with DataLoader workers,
examples/transformer_lm.py with nn.TransformerEncoder) run once on PyTorch and once, unchanged, on
ember through `python -m ember.torchcompat`, from the same initial weights (a torch.save checkpoint
read by ember.load) and the same batches: the loss curves agree to float32 noise."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SHAKESPEARE = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "tinyshakespeare.txt"))
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(REPO, "runtime", "python"),
                                                    os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """tiny Shakespeare when the shared copy exists (as on the dev machines), else a synthetic text."""
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    if os.path.exists(SHAKESPEARE):
        with open(SHAKESPEARE, encoding="utf-8") as f:
            path.write_text(f.read()[:60_000])
    else:
        rng = np.random.default_rng(0)
        words = ["the", "king", "shall", "speak", "of", "love", "and", "war", "my", "lord", "good", "night"]
        path.write_text("\n".join(" ".join(rng.choice(words, 8)) for _ in range(3000)))
    return str(path)


def run(script, *args, ember_alias):
    cmd = [sys.executable] + (["-m", "ember.torchcompat"] if ember_alias else []) + \
        [os.path.join(REPO, "examples", script), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr[-3000:]}"
    return [json.loads(line)["loss"] for line in proc.stdout.splitlines() if line.startswith("{")]


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
