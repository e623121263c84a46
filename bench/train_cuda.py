"""Mini-GPT training step on CUDA: ember eager vs torch eager, and ember with the whole step captured
in a CUDA graph (ember.cuda.make_graphed_step). Config from the issue: 6 layers, 6 heads, d=384,
block 256, batch 64 (override with flags). Random token batches (vocab 65): this times steps, it
does not train to a target loss (examples/minigpt_shakespeare.py --device cuda does that).
Usage: python bench/train_cuda.py [--layers 6 --heads 6 --dim 384 --block 256 --batch 64 --steps 20]
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))


def build(lib, args, vocab):
    from common.transformer import blocks
    nn = lib.nn
    B = blocks(lib)

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok_emb = nn.Embedding(vocab, args.dim)
            self.pos_emb = nn.Embedding(args.block, args.dim)
            self.encoder = B.Encoder(args.dim, args.heads, args.layers, causal=True)
            self.head = nn.Linear(args.dim, vocab, bias=False)

        def forward(self, idx):
            pos = lib.arange(idx.shape[1], device=idx.device)
            return self.head(self.encoder(self.tok_emb(idx) + self.pos_emb(pos)))

    return GPT().to("cuda")


def time_steps(lib, step, batches, sync, warmup=3):
    for i in range(warmup):
        step(*batches[i % len(batches)])
    sync()
    times = []
    for i in range(len(batches)):
        t0 = time.perf_counter()
        step(*batches[i])
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def random_batches(args, vocab):
    """args.steps (input, target) pairs of random token ids, [batch, block] int64 each."""
    rng = np.random.default_rng(0)
    return [(rng.integers(0, vocab, size=(args.batch, args.block)).astype(np.int64),
             rng.integers(0, vocab, size=(args.batch, args.block)).astype(np.int64)) for _ in range(args.steps)]


def make_training(name, args, vocab, data):
    """(lib, step, batches): the model, AdamW and one training step on `name` ("torch" or "ember")."""
    lib = importlib.import_module(name)
    lib.manual_seed(0)
    model = build(lib, args, vocab)
    opt = lib.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    F = lib.nn.functional
    batches = [(lib.from_numpy(x).to("cuda"), lib.from_numpy(y).to("cuda")) for x, y in data]

    def step(x, y):
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        return loss

    return lib, step, batches


def run_backend(name, args, vocab, data):
    lib, step, batches = make_training(name, args, vocab, data)
    sync = lib.cuda.synchronize
    eager_ms = time_steps(lib, step, batches, sync)
    graph_ms = None
    if name == "ember" and args.graph:
        try:
            sx, sy = batches[0][0].clone(), batches[0][1].clone()
            run = lib.cuda.make_graphed_step(step, [sx, sy], warmup=3)
            graph_ms = time_steps(lib, lambda x, y: run(x, y), batches, sync, warmup=2)
        except Exception as e:  # report, don't hide the eager numbers
            print(f"[train_cuda] graph capture failed: {type(e).__name__}: {e}")
            traceback.print_exc(limit=3)
    return eager_ms, graph_ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--block", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--no-graph", dest="graph", action="store_false")
    args = ap.parse_args()
    vocab = 65
    data = random_batches(args, vocab)
    res = {}
    for name in ("torch", "ember"):
        try:
            res[name] = run_backend(name, args, vocab, data)
        except Exception as e:
            print(f"[train_cuda] {name} failed: {type(e).__name__}: {e}")
            traceback.print_exc(limit=6)
    print(f"mini-GPT step (L={args.layers} H={args.heads} d={args.dim} T={args.block} B={args.batch}), median ms:")
    for name, (eager, graph) in res.items():
        print(f"  {name:<6} eager {eager:8.2f} ms" + (f"   graphed {graph:8.2f} ms" if graph else ""))
    if "torch" in res and "ember" in res:
        te, ee = res["torch"][0], res["ember"][0]
        print(f"  ember eager / torch eager = {ee / te:.2f} (target <= 1.0)")
        if res["ember"][1]:
            print(f"  torch eager / ember graphed = {te / res['ember'][1]:.2f}x (target >= 5x)")


if __name__ == "__main__":
    main()
