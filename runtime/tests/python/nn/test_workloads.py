"""Short CI versions of the example workloads: from identical numpy init and batch order, ember's
and torch's loss trajectories agree (within LOSS_ATOL per step) and the loss falls."""
import os
import pickle
import sys

import numpy as np
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "examples"))

import minigpt_shakespeare  # noqa: E402
import seq_reversal  # noqa: E402
import vit  # noqa: E402

# float32 rounding differences between the two libraries grow slowly over training; over tens of
# steps the per-step losses stay within this absolute tolerance.
LOSS_ATOL = 2e-3

COMMON = ["--threads", "1", "--quiet", "--log-every", "1000"]


@pytest.fixture(autouse=True)
def _restore_threads():
    """The runs pin both libraries to one thread (deterministic, fast for tiny models); give the
    rest of the test session its thread counts back."""
    import ember
    import torch
    saved = ember.get_num_threads(), torch.get_num_threads()
    yield
    ember.set_num_threads(saved[0])
    torch.set_num_threads(saved[1])


def _both(module, args, tmp_path):
    out = {}
    for backend in ("torch", "ember"):
        out[backend] = module.main(args + COMMON + ["--backend", backend,
                                                    "--metrics", str(tmp_path / f"{backend}.json")])
    return out["torch"], out["ember"]


def _check_trajectories(t, e, falls_by=0.0):
    lt, le = np.array(t["loss"]), np.array(e["loss"])
    assert len(lt) == len(le) > 0
    np.testing.assert_allclose(le, lt, atol=LOSS_ATOL, rtol=0)
    k = max(1, len(le) // 5)
    assert le[-k:].mean() < le[:k].mean() - falls_by, f"loss did not fall: {le[:k].mean()} -> {le[-k:].mean()}"
    for ev_t, ev_e in zip(t["eval"], e["eval"]):
        assert abs(ev_t["val_loss"] - ev_e["val_loss"]) < 5 * LOSS_ATOL


def test_seq_reversal_short(tmp_path):
    t, e = _both(seq_reversal, ["--steps", "40", "--batch-size", "32", "--dim", "32", "--layers", "1",
                                "--eval-every", "0", "--eval-batches", "1", "--warmup", "5", "--lr", "1e-2"], tmp_path)
    _check_trajectories(t, e, falls_by=0.2)
    assert 0.0 <= e["final"]["token_accuracy"] <= 1.0


def test_vit_digits_short(tmp_path):
    t, e = _both(vit, ["--steps", "30", "--batch-size", "32", "--dim", "32", "--layers", "1", "--eval-every", "0",
                       "--eval-limit", "200", "--warmup", "5", "--lr", "1e-2"], tmp_path)
    _check_trajectories(t, e, falls_by=0.2)


def test_minigpt_short(tmp_path):
    data = os.path.join(REPO, "..", "shared", "data", "tinyshakespeare.txt")
    if not os.path.exists(data):
        pytest.skip("tiny shakespeare not available offline")
    t, e = _both(minigpt_shakespeare, ["--data", data, "--steps", "20", "--batch-size", "8", "--block", "32",
                                       "--dim", "32", "--layers", "1", "--heads", "2", "--eval-every", "0",
                                       "--eval-batches", "1", "--sample-chars", "20", "--warmup", "5",
                                       "--lr", "3e-3"], tmp_path)
    _check_trajectories(t, e, falls_by=0.3)
    assert e["sample"].startswith("ROMEO:") and len(e["sample"]) == 26


def _write_fake_cifar(path, n_train=20, n_test=10, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(path, exist_ok=True)
    for name, n in [("data_batch_1", n_train), ("test_batch", n_test)]:
        batch = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
                 b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"filenames": [f"img{i}.png".encode() for i in range(n)]}
        with open(os.path.join(path, name), "wb") as f:
            pickle.dump(batch, f)
    return path


def test_cifar10_loader_and_training(tmp_path):
    path = _write_fake_cifar(str(tmp_path / "cifar-10-batches-py"))
    x_train, y_train, x_test, y_test = vit.load_cifar10(str(tmp_path))
    assert x_train.shape == (20, 3, 32, 32) and x_test.shape == (10, 3, 32, 32) and x_train.dtype == np.float32
    with open(os.path.join(path, "data_batch_1"), "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    pixel = raw[b"data"][3].reshape(3, 32, 32)[1, 5, 7] / 255.0
    assert x_train[3, 1, 5, 7] == pytest.approx((pixel - vit.CIFAR_MEAN[1]) / vit.CIFAR_STD[1], rel=1e-5)
    assert y_train.tolist() == list(raw[b"labels"])
    with pytest.raises(FileNotFoundError, match="no CIFAR-10"):
        vit.load_cifar10(str(tmp_path / "missing"))
    m = vit.main(["--dataset", "cifar10", "--data-path", path, "--steps", "3", "--batch-size", "8", "--dim", "16",
                  "--layers", "1", "--patch", "8", "--backend", "ember", "--metrics", str(tmp_path / "m.json")] + COMMON)
    assert len(m["loss"]) == 3 and np.isfinite(m["loss"]).all() and 0 <= m["final"]["test_accuracy"] <= 1


def test_resume_from_checkpoint_matches_straight_run(tmp_path):
    args = ["--steps", "12", "--batch-size", "16", "--dim", "16", "--layers", "1", "--eval-every", "0",
            "--eval-batches", "1", "--backend", "ember"] + COMMON
    straight = seq_reversal.main(args + ["--metrics", str(tmp_path / "a.json")])
    ckpt = str(tmp_path / "ckpt.safetensors")
    seq_reversal.main(args + ["--stop-at", "6", "--save", ckpt, "--metrics", str(tmp_path / "b.json")])
    resumed = seq_reversal.main(args + ["--resume", ckpt, "--metrics", str(tmp_path / "c.json")])
    assert resumed["step"] == list(range(6, 12))
    np.testing.assert_allclose(resumed["loss"], straight["loss"][6:], rtol=1e-6, atol=1e-6)
