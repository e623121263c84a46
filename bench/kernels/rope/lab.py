"""Rotary-embedding (RoPE) kernel lab (in the spirit of llm.c's dev/cuda): every variant is checked
against one reference, then timed, for one shape.

Reference: the composite formula in float64 torch ops (torch has no RoPE op), forward and the
gradient of x. Variants: ember's fused op in both pair layouts, ember as a composite of ops, and the
torch composites (Hugging Face LLaMA's rotate_half, and the interleaved form). A variant is
fn(lib, x, cos, sin) -> out with its layout in VARIANTS; add one and rerun. Prints relative errors,
forward and forward+backward milliseconds, GB/s (forward reads x and writes y, backward reads grad
and writes grad_x; the (T, D/2) tables are negligible), the fraction of the measured device-to-device
copy bandwidth, and the speed relative to the torch composite of the same layout.
Usage: python bench/kernels/rope/lab.py [--b 8 --h 16 --t 2048 --d 128 --dtype bf16 --reps 20]
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


def reference(lib, x, cos, sin, interleaved):
    """The composite (either library): pairs (i, i + D/2) or (2i, 2i + 1)."""
    if interleaved:
        xa, xb = x[..., 0::2], x[..., 1::2]
        return lib.stack([xa * cos - xb * sin, xb * cos + xa * sin], -1).flatten(-2)
    half = x.shape[-1] // 2
    xa, xb = x[..., :half], x[..., half:]
    return lib.cat([xa * cos - xb * sin, xb * cos + xa * sin], -1)


def hf_rotate_half(lib, x, cos, sin, interleaved):
    """Hugging Face LLaMA's apply_rotary_pos_emb: full-width tables and rotate_half."""
    half = x.shape[-1] // 2
    cos2, sin2 = lib.cat([cos, cos], -1), lib.cat([sin, sin], -1)
    return x * cos2 + lib.cat([-x[..., half:], x[..., :half]], -1) * sin2


def fused(lib, x, cos, sin, interleaved):
    return ember.nn.functional.rotary_embedding(x, cos, sin, interleaved=interleaved)


VARIANTS = {  # name -> (library, function, interleaved); the baseline of a layout is its torch_composite
    "torch_composite": ("torch", reference, False),
    "torch_hf_rotate_half": ("torch", hf_rotate_half, False),
    "ember_fused": ("ember", fused, False),
    "ember_composite": ("ember", reference, False),
    "torch_composite_interleaved": ("torch", reference, True),
    "ember_fused_interleaved": ("ember", fused, True),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--b", type=int, default=8)
    ap.add_argument("--h", type=int, default=16)
    ap.add_argument("--t", type=int, default=2048)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="bf16")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--only", default=None, help="comma-separated variant names")
    args = ap.parse_args()
    dname = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[args.dtype]
    e_dt, t_dt = getattr(ember, dname), getattr(torch, dname)
    rng = np.random.default_rng(0)
    inv_freq = 1.0 / 10000 ** (np.arange(0, args.d, 2) / args.d)
    theta = np.outer(np.arange(args.t), inv_freq)  # (T, D/2), as LLaMA's tables
    host = [rng.standard_normal((args.b, args.h, args.t, args.d)).astype(np.float32),
            np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32),
            rng.standard_normal((args.b, args.h, args.t, args.d)).astype(np.float32)]
    t_in = [torch.from_numpy(a).cuda().to(t_dt) for a in host]
    e_in = [ember.from_numpy(a).cuda().to(e_dt) for a in host]

    refs = {}
    for interleaved in (False, True):
        x = t_in[0].double().requires_grad_()
        out = reference(torch, x, t_in[1].double(), t_in[2].double(), interleaved)
        out.backward(t_in[3].double())
        refs[interleaved] = [out.detach(), x.grad]

    size = t_in[0].element_size() * t_in[0].numel()
    fwd_bytes, both_bytes = 2 * size, 4 * size
    bw = copy_bandwidth(fwd_bytes, args.reps)
    print(f"{torch.cuda.get_device_name()}  B={args.b} H={args.h} T={args.t} D={args.d} {args.dtype}  "
          f"torch {torch.__version__}  copy bandwidth {bw:.0f} GB/s")
    print(f"{'variant':<28} {'err y':>8} {'err dx':>8} {'fwd ms':>8} {'fwd GB/s':>9} {'% copy':>7} "
          f"{'f+b ms':>8} {'f+b GB/s':>9} {'% copy':>7} {'fwd vs torch':>12} {'f+b vs torch':>12}")
    base = {}
    chosen = args.only.split(",") if args.only else list(VARIANTS)
    baselines = ["torch_composite", "torch_composite_interleaved"]
    for name in baselines + [n for n in chosen if n not in baselines]:
        lib_name, fn, interleaved = VARIANTS[name]
        lib = ember if lib_name == "ember" else torch
        x_in, cos, sin, g = e_in if lib is ember else t_in
        sync, event = (ember.cuda.synchronize, ember.cuda.Event) if lib is ember else \
            (torch.cuda.synchronize, torch.cuda.Event)
        to_torch = (lambda v: torch.from_numpy(v.detach().to(ember.float32).cpu().numpy())) if lib is ember \
            else (lambda v: v.detach().float().cpu())
        x = x_in.detach().requires_grad_()
        out = fn(lib, x, cos, sin, interleaved)
        (dx,) = lib.autograd.grad(out, [x], g)
        errs = [rel_err(to_torch(v), r.cpu()) for v, r in zip((out, dx), refs[interleaved])]
        nx = x_in.detach()
        fwd_ms = time_ms(lambda: fn(lib, nx, cos, sin, interleaved), sync, event, args.reps)
        both_ms = time_ms(lambda: lib.autograd.grad(fn(lib, x, cos, sin, interleaved), [x], g), sync, event, args.reps)
        if name in baselines:
            base[interleaved] = {"fwd": fwd_ms, "both": both_ms}
        fg, bg = fwd_bytes / fwd_ms / 1e6, both_bytes / both_ms / 1e6
        print(f"{name:<28} " + " ".join(f"{e:8.1e}" for e in errs) +
              f" {fwd_ms:8.3f} {fg:9.0f} {100 * fg / bw:6.0f}% {both_ms:8.3f} {bg:9.0f} {100 * bg / bw:6.0f}%"
              f" {base[interleaved]['fwd'] / fwd_ms:11.2f}x {base[interleaved]['both'] / both_ms:11.2f}x")


if __name__ == "__main__":
    main()
