"""RMSNorm kernel lab (in the spirit of llm.c's dev/cuda): every variant is checked against one
reference, then timed, for one shape.

Reference: the formula in float64 torch ops, forward and both gradients. Variants: ember's fused op,
ember as a composite of ops, torch's rms_norm (its fused kernel) and torch's composite. A variant is
fn(lib, x, weight, eps) -> out; add one to VARIANTS and rerun. Prints relative errors, forward and
forward+backward milliseconds, GB/s (bytes the op must move: forward reads x and writes y, backward
reads x and grad and writes grad_x; the weight is negligible), the fraction of the measured
device-to-device copy bandwidth, and each variant's speed relative to torch's rms_norm.
Usage: python bench/kernels/rmsnorm/lab.py [--rows 16384 --n 4096 --dtype bf16 --reps 20]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

import ember

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from attention import time_ms  # noqa: E402  (bench/attention.py)
from kernels.lab_common import copy_bandwidth, rel_err  # noqa: E402


def fused(lib, x, w, eps):
    return lib.nn.functional.rms_norm(x, (x.shape[-1],), w, eps)


def composite(lib, x, w, eps):
    xf = x.float()
    return (xf * lib.rsqrt((xf * xf).mean(-1, keepdim=True) + eps) * w.float()).to(x.dtype)


VARIANTS = {  # name -> (library, function)
    "torch_fused": ("torch", fused),
    "ember_fused": ("ember", fused),
    "ember_composite": ("ember", composite),
    "torch_composite": ("torch", composite),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=16384)
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="bf16")
    ap.add_argument("--eps", type=float, default=1e-6)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--only", default=None, help="comma-separated variant names")
    args = ap.parse_args()
    names = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[args.dtype]
    e_dt, t_dt = getattr(ember, names), getattr(torch, names)
    rng = np.random.default_rng(0)
    host = [rng.standard_normal((args.rows, args.n)).astype(np.float32),
            rng.uniform(0.5, 1.5, size=args.n).astype(np.float32),
            rng.standard_normal((args.rows, args.n)).astype(np.float32)]
    t_in = [torch.from_numpy(a).cuda().to(t_dt) for a in host]
    e_in = [ember.from_numpy(a).cuda().to(e_dt) for a in host]

    ref_x, ref_w = (t.double().requires_grad_() for t in t_in[:2])
    ref = ref_x * torch.rsqrt(ref_x.pow(2).mean(-1, keepdim=True) + args.eps) * ref_w
    ref.backward(t_in[2].double())
    refs = [ref.detach(), ref_x.grad, ref_w.grad]
    del ref, ref_x, ref_w

    size = t_in[0].element_size() * args.rows * args.n
    fwd_bytes, both_bytes = 2 * size, 5 * size
    bw = copy_bandwidth(fwd_bytes, args.reps)
    print(f"{torch.cuda.get_device_name()}  rows={args.rows} N={args.n} {args.dtype}  torch {torch.__version__}  "
          f"copy bandwidth {bw:.0f} GB/s")
    print(f"{'variant':<16} {'err y':>8} {'err dx':>8} {'err dw':>8} {'fwd ms':>8} {'fwd GB/s':>9} {'% copy':>7} "
          f"{'f+b ms':>8} {'f+b GB/s':>9} {'% copy':>7} {'fwd vs torch':>12} {'f+b vs torch':>12}")
    base = {}
    chosen = args.only.split(",") if args.only else list(VARIANTS)
    for name in ["torch_fused"] + [n for n in chosen if n != "torch_fused"]:
        lib_name, fn = VARIANTS[name]
        lib = ember if lib_name == "ember" else torch
        inputs = e_in if lib_name == "ember" else t_in
        sync, event = (ember.cuda.synchronize, ember.cuda.Event) if lib is ember else \
            (torch.cuda.synchronize, torch.cuda.Event)
        to_torch = (lambda v: torch.from_numpy(v.detach().to(ember.float32).cpu().numpy())) if lib is ember \
            else (lambda v: v.detach().float().cpu())
        x, w = (v.detach().requires_grad_() for v in inputs[:2])
        out = fn(lib, x, w, args.eps)
        out.backward(inputs[2])
        errs = [rel_err(to_torch(v), r.cpu()) for v, r in zip((out, x.grad, w.grad), refs)]
        nx, nw = (v.detach() for v in inputs[:2])
        fwd_ms = time_ms(lambda: fn(lib, nx, nw, args.eps), sync, event, args.reps)
        both_ms = time_ms(lambda: lib.autograd.grad(fn(lib, x, w, args.eps), [x, w], inputs[2]), sync, event, args.reps)
        if name == "torch_fused":
            base = {"fwd": fwd_ms, "both": both_ms}
        fg, bg = fwd_bytes / fwd_ms / 1e6, both_bytes / both_ms / 1e6
        print(f"{name:<16} " + " ".join(f"{e:8.1e}" for e in errs) +
              f" {fwd_ms:8.3f} {fg:9.0f} {100 * fg / bw:6.0f}% {both_ms:8.3f} {bg:9.0f} {100 * bg / bw:6.0f}%"
              f" {base['fwd'] / fwd_ms:11.2f}x {base['both'] / both_ms:11.2f}x")


if __name__ == "__main__":
    main()
