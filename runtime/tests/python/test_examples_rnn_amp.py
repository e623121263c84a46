"""End to end: examples/lstm_lm.py (nn.LSTM language model) and the nanoGPT-style pair
examples/gpt_amp/{train,sample}.py (autocast, GradScaler, checkpoint resume) run once on PyTorch and
once, unchanged, on ember through `python -m ember.torchcompat`, from the same initial weights and
batches. float32 losses agree to float32 noise; under autocast they agree to the autocast dtype's
precision and GradScaler skips/grows on the same iterations; a checkpoint written by one library
resumes on the other."""
import numpy as np
import pytest

from compat_helpers import corpus, run_example  # noqa: F401  (corpus: a fixture)


def run(script, *args, ember_alias):
    return run_example(script, *args, ember_alias=ember_alias, timeout=600)


def losses(records, key="loss"):
    return [r[key] for r in records if key in r]


def test_lstm_lm_runs_the_same_on_torch_and_on_ember(tmp_path, corpus):
    init = str(tmp_path / "init.pt")
    args = ["--steps", "15", "--dropout", "0", "--chars", "20000", "--emb", "32", "--hidden", "48", "--bptt", "24",
            "--batch-size", "8", "--data", corpus]
    t = losses(run("lstm_lm.py", *args, "--save-init", init, ember_alias=False))
    e = losses(run("lstm_lm.py", *args, "--init", init, "--checkpoint", str(tmp_path / "ckpt.pt"), "--sample", "20",
                   ember_alias=True))
    assert len(t) == len(e) == 15
    assert t[-1] < t[0]  # it trains
    np.testing.assert_allclose(e, t, rtol=2e-4, atol=2e-4)
    import torch
    state = torch.load(str(tmp_path / "ckpt.pt"))  # ember's checkpoint loads in torch (weights_only)
    assert "rnn.weight_hh_l1" in state["model"] and state["step"] == 15


GPT_ARGS = ["--n-layer", "2", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--batch-size", "8",
            "--grad-accum", "2", "--eval-interval", "4", "--eval-iters", "2", "--warmup-iters", "2",
            "--lr-decay-iters", "12", "--always-save-checkpoint", "--chars", "30000"]


def gpt(tmp_path, corpus, lib, dtype, *extra):
    out = str(tmp_path / f"out-{lib}-{dtype}")
    return out, run("gpt_amp/train.py", *GPT_ARGS, "--data", corpus, "--out-dir", out, "--dtype", dtype, *extra,
                    ember_alias=(lib == "ember"))


@pytest.mark.parametrize("dtype,rtol", [("float32", 2e-4), ("bfloat16", 3e-2), ("float16", 1e-2)])
def test_gpt_amp_train_resume_matches_torch(tmp_path, corpus, dtype, rtol):
    init = str(tmp_path / "init.pt")
    # A scale far too large for float16 gradients: the scaler skips steps and backs off first.
    scale = ["--init-scale", str(2.0 ** 24)]
    # torch: 10 iterations in one go.
    _, t_full = gpt(tmp_path, corpus, "torch", dtype, *scale, "--max-iters", "10", "--save-init", init)
    # ember: 6 iterations, then resume from its checkpoint (saved at iteration 4 and at the end) to 10.
    out, e_first = gpt(tmp_path, corpus, "ember", dtype, *scale, "--max-iters", "6", "--init", init)
    _, e_rest = gpt(tmp_path, corpus, "ember", dtype, *scale, "--max-iters", "10", "--init-from", "resume")
    t_loss = losses(t_full)
    e_loss = losses(e_first) + losses(e_rest)
    assert len(t_loss) == len(e_loss) == 10
    np.testing.assert_allclose(e_loss, t_loss, rtol=rtol, atol=rtol)
    # GradScaler (enabled for float16): the same scale after every iteration.
    assert losses(e_first, "scale") + losses(e_rest, "scale") == losses(t_full, "scale")
    if dtype == "float16":
        assert len(set(losses(t_full, "scale"))) > 1  # the scaler backed off at least once
    t_eval = losses(t_full, "val_loss")
    e_eval = losses(e_first, "val_loss") + losses(e_rest, "val_loss")
    np.testing.assert_allclose(e_eval, t_eval, rtol=rtol, atol=rtol)
    # sample.py decodes the ember checkpoint greedily on both libraries: the same text.
    sample_args = ["--out-dir", out, "--top-k", "1", "--max-new-tokens", "30", "--num-samples", "1", "--start", "t"]  # in both corpora
    t_text = run("gpt_amp/sample.py", *sample_args, ember_alias=False)[0]["sample"]
    e_text = run("gpt_amp/sample.py", *sample_args, ember_alias=True)[0]["sample"]
    if dtype == "float32":
        assert e_text == t_text
    assert len(e_text) == 31
