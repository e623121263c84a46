"""LSTM language-model training step on the CPU, ember vs torch, in one process.

    PYTHONPATH=runtime/python .venv/bin/python bench/lstm_cpu.py [--steps 5] [--rounds 7] [--threads 1]

The model is examples/lstm_lm.py's (embedding -> nn.LSTM -> linear decoder, cross-entropy, clip,
Adam), built once per library from the same numpy weights and fed the same batches. Each config
runs warm-up steps, then `--rounds` interleaved rounds of `--steps` timed full training steps per
library (the machine is shared: load drifts, so rounds alternate); the median round counts.
Prints ms/step and the speed ratio torch_time / ember_time (>1: ember is faster; target >= 0.9)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
try:
    import ember
except ImportError:
    sys.path.insert(0, os.path.join(REPO, "runtime", "python"))
    import ember
import torch

# (name, vocab, emb, hidden, layers, bptt, batch)
CONFIGS = [("lstm_lm h256 x2 (lstm_lm.py default)", 65, 128, 256, 2, 64, 32),
           ("lstm_lm h128 x1, batch 16", 65, 64, 128, 1, 32, 16),
           ("lstm_lm h512 x2, batch 64", 65, 256, 512, 2, 64, 64)]


class Runner:
    """One library's model, optimizer and batch for a config."""

    def __init__(self, lib, config, seed=0):
        _, vocab, emb, hidden, layers, bptt, batch = config
        self.lib = lib
        nn = lib.nn
        self.embed = nn.Embedding(vocab, emb)
        self.rnn = nn.LSTM(emb, hidden, layers)
        self.head = nn.Linear(hidden, vocab)
        self.modules = [self.embed, self.rnn, self.head]
        rng = np.random.default_rng(seed)
        for m in self.modules:  # the same weights in both libraries
            state = {k: lib.from_numpy(rng.uniform(-0.1, 0.1, tuple(v.shape)).astype(np.float32))
                     for k, v in m.state_dict().items()}
            m.load_state_dict(state)
        self.params = [p for m in self.modules for p in m.parameters()]
        self.opt = lib.optim.Adam(self.params, lr=1e-3)
        ids = rng.integers(0, vocab, size=(bptt + 1, batch)).astype(np.int64)
        self.x, self.y = lib.from_numpy(ids[:-1].copy()), lib.from_numpy(ids[1:].reshape(-1).copy())
        self.state = (lib.zeros(layers, batch, hidden), lib.zeros(layers, batch, hidden))
        self.vocab = vocab

    def step(self):
        lib = self.lib
        out, _ = self.rnn(self.embed(self.x), self.state)
        loss = lib.nn.functional.cross_entropy(self.head(out).reshape(-1, self.vocab), self.y)
        self.opt.zero_grad()
        loss.backward()
        lib.nn.utils.clip_grad_norm_(self.params, 0.25)
        self.opt.step()
        return loss.item()

    def run(self, steps):
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        return (time.perf_counter() - t0) / steps


def measure(config, steps, rounds, warmup):
    runners = {"torch": Runner(torch, config), "ember": Runner(ember, config)}
    first = {name: r.step() for name, r in runners.items()}  # same weights and batch: same first loss
    if abs(first["torch"] - first["ember"]) > 1e-4 * abs(first["torch"]):
        raise SystemExit(f"losses disagree: {first}")
    for r in runners.values():
        r.run(warmup)
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, r in runners.items():
            times[name].append(r.run(steps))
    med = {name: statistics.median(t) for name, t in times.items()}
    return {"config": config[0], "torch_ms": med["torch"] * 1e3, "ember_ms": med["ember"] * 1e3,
            "ratio": med["torch"] / med["ember"], "rounds": rounds, "steps": steps}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--configs", type=int, nargs="*", default=None, help="indices into CONFIGS (default: all)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ember.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {args.threads}, load {os.getloadavg()[0]:.1f}")
    results = []
    for i, config in enumerate(CONFIGS):
        if args.configs is not None and i not in args.configs:
            continue
        r = measure(config, args.steps, args.rounds, args.warmup)
        results.append(r)
        print(f"{r['config']:40s} torch {r['torch_ms']:8.1f} ms  ember {r['ember_ms']:8.1f} ms  "
              f"ratio {r['ratio']:.2f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
