"""Where a mini-GPT training step spends its GPU time, ember next to torch: runs a few steps of
bench/train_cuda.py's model under torch.profiler (CUPTI records every kernel in the process, ember's
too) and prints the top kernels by total GPU time. A GPU-machine tool, not a test.
Usage: python bench/profile_cuda_step.py [--layers 6 --heads 6 --dim 384 --block 256 --batch 64] [--rows 25]
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_cuda import make_training, random_batches  # noqa: E402


def profile(name, args, vocab, data):
    from torch.profiler import ProfilerActivity, profile as tprofile
    lib, step, batches = make_training(name, args, vocab, data)
    for x, y in batches[:3]:
        step(x, y)
    lib.cuda.synchronize()
    with tprofile(activities=[ProfilerActivity.CUDA]) as prof:
        for x, y in batches[3:]:
            step(x, y)
        lib.cuda.synchronize()
    steps = len(batches) - 3
    rows = sorted(((getattr(e, "self_device_time_total", 0.0), e.count, e.key) for e in prof.key_averages()),
                  reverse=True)
    total = sum(r[0] for r in rows)
    launches = sum(r[1] for r in rows if r[0] > 0)
    print(f"== {name}: GPU time per step {total / steps / 1e3:.2f} ms, kernels+copies per step {launches / steps:.0f}")
    for t, n, key in rows[:args.rows]:
        if t <= 0:
            break
        print(f"  {t / steps / 1e3:8.3f} ms/step {t / total * 100:5.1f}%  x{n // steps:<5} {key[:110]}")


def main():
    ap = argparse.ArgumentParser()
    for flag, default in (("--layers", 6), ("--heads", 6), ("--dim", 384), ("--block", 256), ("--batch", 64),
                          ("--steps", 6), ("--rows", 25)):
        ap.add_argument(flag, type=int, default=default)
    args = ap.parse_args()
    vocab = 65
    data = random_batches(args, vocab)
    for name in ("torch", "ember"):
        profile(name, args, vocab, data)


if __name__ == "__main__":
    main()
