"""Shared by the torch-compatibility tests (test_data, test_serialization_torch, test_torchcompat,
nn/test_losses, nn/test_transformer, nn/test_compat_args) and the end-to-end example tests
(test_examples_*: one script run on torch, then on ember through `python -m ember.torchcompat`)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import ember


@pytest.fixture(autouse=True, scope="module")
def one_thread_each():
    """These tests run tiny ops in both libraries, whose two OpenMP runtimes spin against each other
    on a shared 2-core machine (3-4x slower than single-threaded); both run one thread here."""
    saved = ember.get_num_threads(), torch.get_num_threads()
    ember.set_num_threads(1)
    torch.set_num_threads(1)
    yield
    ember.set_num_threads(saved[0])
    torch.set_num_threads(saved[1])


REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
# the checkout is /work/main on the dev machines, /work/wt/<name> in a helper's worktree
SHAKESPEARE = next((p for p in (os.path.join(REPO, "..", "shared", "data", "tinyshakespeare.txt"),
                                os.path.join(REPO, "..", "..", "shared", "data", "tinyshakespeare.txt"))
                    if os.path.exists(p)), None)
EXAMPLE_ENV = {**os.environ, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([os.path.join(REPO, "runtime", "python"), os.environ.get("PYTHONPATH", "")])}


def run_example(script, *args, ember_alias, timeout=300):
    """Runs examples/<script> on torch, or unchanged on ember through the alias; its JSON lines."""
    cmd = [sys.executable] + (["-m", "ember.torchcompat"] if ember_alias else []) + \
        [os.path.join(REPO, "examples", script), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=EXAMPLE_ENV, cwd=REPO, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr[-3000:]}"
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """tiny Shakespeare when the shared copy exists (as on the dev machines), else a synthetic text."""
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    if SHAKESPEARE:
        with open(SHAKESPEARE, encoding="utf-8") as f:
            path.write_text(f.read()[:60_000])
    else:
        rng = np.random.default_rng(0)
        words = ["the", "king", "shall", "speak", "of", "love", "and", "war", "my", "lord", "good", "night"]
        path.write_text("\n".join(" ".join(rng.choice(words, 8)) for _ in range(3000)))
    return str(path)
