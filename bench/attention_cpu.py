"""CPU attention benchmark: ember's fused op (FlashAttention-2 on OpenBLAS blocks, cpu/attention.cpp)
vs ember's composite path (bmm + fused softmax + bmm) vs torch's CPU SDPA, in one process on the
same float32 inputs, with the same thread count for both libraries.

Forward (no autograd) and forward+backward; the three variants run interleaved, each repeat
timing one call; medians over repeats. Ratios > 1: ember's fused op is faster. FLOPs count the two
matrix products, 4*B*H*Tq*Tk*D, halved when causal; backward adds 2.5x the forward.
Usage: python bench/attention_cpu.py [--reps N] [--threads N] [--shape B,H,T,D] [--causal]
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch

import ember
import ember.nn.functional as F


def variants(causal: bool):
    scale_of = lambda q: 1.0 / math.sqrt(q.shape[-1])  # noqa: E731
    return {
        "ember fused": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
        "ember composite": lambda q, k, v: F._composite_attention(q, k, v, None, 0.0, causal, scale_of(q)),
        "torch sdpa": lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal),
    }


def make_inputs(shape, rng):
    arrays = [rng.standard_normal(shape).astype(np.float32) for _ in range(4)]
    return [ember.from_numpy(a.copy()) for a in arrays], [torch.from_numpy(a.copy()) for a in arrays]


def step(lib, fn, tensors, backward: bool):
    q, k, v, g = tensors
    if not backward:
        with (torch.no_grad() if lib is torch else ember.no_grad()):
            fn(q, k, v)
        return
    xs = [x.detach().requires_grad_() for x in (q, k, v)]
    fn(*xs).backward(g)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shape", default="4,8,512,64", help="B,H,T,D")
    ap.add_argument("--causal", action="store_true")
    args = ap.parse_args(argv)
    b, h, t, d = (int(x) for x in args.shape.split(","))
    ember.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    e_in, t_in = make_inputs((b, h, t, d), np.random.default_rng(0))
    fns = variants(args.causal)
    print(f"attention CPU float32 B={b} H={h} T={t} D={d} causal={args.causal} threads={args.threads} "
          f"reps={args.reps} (torch {torch.__version__})")
    for backward in (False, True):
        times = {name: [] for name in fns}
        for name, fn in fns.items():  # warm-up (first-call allocations, BLAS thread start)
            step(torch if name.startswith("torch") else ember, fn, t_in if name.startswith("torch") else e_in, backward)
        for _ in range(args.reps):
            for name, fn in fns.items():
                lib, tensors = (torch, t_in) if name.startswith("torch") else (ember, e_in)
                start = time.perf_counter()
                step(lib, fn, tensors, backward)
                times[name].append(time.perf_counter() - start)
        flops = 4 * b * h * t * t * d * (0.5 if args.causal else 1.0) * (3.5 if backward else 1.0)
        fused = statistics.median(times["ember fused"])
        print(f"\n{'forward+backward' if backward else 'forward'}:")
        for name, samples in times.items():
            med = statistics.median(samples)
            print(f"  {name:16s} {med * 1e3:8.2f} ms  {flops / med / 1e9:6.1f} GFLOP/s  "
                  f"fused speedup {med / fused:5.2f}x")


if __name__ == "__main__":
    main()
