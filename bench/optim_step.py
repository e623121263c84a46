"""One AdamW step over a nanoGPT-sized parameter set (6 layers, d=384, vocab 65, context 256: 76 tensors,
10.8M parameters, nanoGPT's two groups: weight decay 0.1 on matrices, 0 on vectors): ember vs torch
in one process, same initial params and gradients, for each implementation (per-parameter
foreach=False, foreach=True, fused=True; on CUDA also fused with capturable=True and a tensor lr).

Each repeat times `--steps` consecutive opt.step() calls of ember and then of torch (alternating, so
load drifts hit both) and reports milliseconds per step (host wall time; on CUDA the loop ends with a
synchronize, so it is device time for all but tiny steps); the table shows medians over `--reps`
repeats, effective GB/s (AdamW reads param, grad, exp_avg, exp_avg_sq and writes param, exp_avg,
exp_avg_sq: 28 bytes per fp32 element) and torch_ms / ember_ms (> 1: ember is faster).
Usage: python bench/optim_step.py [--device cpu|cuda|all] [--threads N] [--reps R] [--steps S] [--json out]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import torch

import ember


def nanogpt_shapes(layers=6, d=384, vocab=65, block=256):
    """wte, wpe, per layer (ln_1 w/b, attn c_attn w/b, c_proj w/b, ln_2 w/b, mlp c_fc w/b, c_proj w/b),
    ln_f w/b (lm_head is tied to wte)."""
    per_layer = [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,), (d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,)]
    return [(vocab, d), (block, d)] + per_layer * layers + [(d,), (d,)]


IMPLS = {
    "foreach=False": dict(foreach=False),
    "foreach=True": dict(foreach=True),
    "fused=True": dict(fused=True),
    "fused+capturable, tensor lr": dict(fused=True, capturable=True, tensor_lr=True),  # CUDA only
}


def build(lib, device, inits, grads, flags):
    flags = dict(flags)
    lr = 6e-4
    if flags.pop("tensor_lr", False):
        lr = lib.tensor(lr, device=device)

    def to(a):
        return lib.from_numpy(a.copy()).to(device)

    params = [lib.nn.Parameter(to(a)) for a in inits]
    for p, g in zip(params, grads):
        p.grad = to(g)
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return lib.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), **flags)


def per_step_ms(opt, steps, sync):
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.step()
    sync()
    return (time.perf_counter() - t0) / steps * 1e3


def bench_device(device, reps, steps, shapes):
    rng = np.random.default_rng(0)
    inits = [rng.standard_normal(s).astype(np.float32) * 0.02 for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    numel = sum(int(np.prod(s)) for s in shapes)
    sync_e = ember.cuda.synchronize if device == "cuda" else (lambda: None)
    sync_t = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rows = []
    for name, flags in IMPLS.items():
        if flags.get("capturable") and device != "cuda":
            continue
        opt_e, opt_t = build(ember, device, inits, grads, flags), build(torch, device, inits, grads, flags)
        for _ in range(3):  # warm-up: state creation, caches
            opt_e.step()
            opt_t.step()
        e_ms, t_ms = [], []
        for _ in range(reps):
            e_ms.append(per_step_ms(opt_e, steps, sync_e))
            t_ms.append(per_step_ms(opt_t, steps, sync_t))
        e, t = statistics.median(e_ms), statistics.median(t_ms)
        rows.append({"device": device, "impl": name, "ember_ms": e, "torch_ms": t, "torch_over_ember": t / e,
                     "ember_GBps": 28 * numel / e / 1e6, "torch_GBps": 28 * numel / t / 1e6,
                     "ember_ms_min": min(e_ms), "torch_ms_min": min(t_ms)})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads for both libraries")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--steps", type=int, default=10, help="steps per timed repeat")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ember.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or (ember.cuda.is_available() and torch.cuda.is_available())]
    shapes = nanogpt_shapes()
    numel = sum(int(np.prod(s)) for s in shapes)
    print(f"AdamW step, {len(shapes)} tensors, {numel / 1e6:.2f}M fp32 params; torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, {args.threads} threads; median of {args.reps} x "
          f"{args.steps} steps")
    if "cuda" in devices:
        print(f"GPU: {torch.cuda.get_device_name()}")
    rows = []
    for device in devices:
        rows += bench_device(device, args.reps, args.steps, shapes)
    print(f"{'device':6} {'implementation':28} {'ember ms':>9} {'torch ms':>9} {'ember GB/s':>10} {'torch GB/s':>10} "
          f"{'torch/ember':>11}")
    for r in rows:
        print(f"{r['device']:6} {r['impl']:28} {r['ember_ms']:9.3f} {r['torch_ms']:9.3f} {r['ember_GBps']:10.1f} "
              f"{r['torch_GBps']:10.1f} {r['torch_over_ember']:10.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "threads": args.threads, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
