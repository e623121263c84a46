"""Attention kernel lab (in the spirit of llm.c's dev/cuda): every variant is checked against one
reference, then timed, for one shape.

Reference: torch's math SDPA on the inputs upcast to float32 (forward and the three gradients).
Variants: ember's fused cuDNN path, ember's composite path, and torch's SDPA backends (default
choice, flash, cuDNN, memory-efficient). A variant is a function (q, k, v, causal, scale) -> out
on its library's tensors; add one to VARIANTS and rerun. Prints relative errors, milliseconds,
TFLOP/s (causal FLOPs halved) and each variant's speed relative to torch's default choice.
Usage: python bench/kernels/attention/lab.py [--b 8 --h 16 --t 2048 --d 128 --causal 1 --dtype bf16]
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

import ember
import ember.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from attention import attention_flops, time_ms  # noqa: E402  (bench/attention.py)
from kernels.lab_common import rel_err  # noqa: E402


@contextlib.contextmanager
def cudnn_enabled(on):
    prev, ember.cuda.cudnn.enabled = ember.cuda.cudnn.enabled, on
    try:
        yield
    finally:
        ember.cuda.cudnn.enabled = prev


def ember_variant(fused):
    def run(q, k, v, causal, scale):
        with cudnn_enabled(fused):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
    return run


def torch_variant(backend):
    def run(q, k, v, causal, scale):
        ctx = sdpa_kernel([backend]) if backend is not None else contextlib.nullcontext()
        with ctx:
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
    return run


VARIANTS = {  # name -> (library, function)
    "ember_cudnn_fused": ("ember", ember_variant(True)),
    "ember_composite": ("ember", ember_variant(False)),
    "torch_default": ("torch", torch_variant(None)),
    "torch_flash": ("torch", torch_variant(SDPBackend.FLASH_ATTENTION)),
    "torch_cudnn": ("torch", torch_variant(SDPBackend.CUDNN_ATTENTION)),
    "torch_efficient": ("torch", torch_variant(SDPBackend.EFFICIENT_ATTENTION)),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--b", type=int, default=8)
    ap.add_argument("--h", type=int, default=16)
    ap.add_argument("--t", type=int, default=2048)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--causal", type=int, default=1)
    ap.add_argument("--dtype", choices=["bf16", "fp16"], default="bf16")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--only", default=None, help="comma-separated variant names")
    args = ap.parse_args()
    b, h, t, d, causal = args.b, args.h, args.t, args.d, bool(args.causal)
    e_dt, t_dt = (ember.bfloat16, torch.bfloat16) if args.dtype == "bf16" else (ember.float16, torch.float16)
    scale = 1.0 / math.sqrt(d)
    rng = np.random.default_rng(0)
    host = [rng.standard_normal((b, h, t, d)).astype(np.float32) for _ in range(4)]
    t_in = [torch.from_numpy(a).cuda().to(t_dt) for a in host]
    e_in = [ember.from_numpy(a).cuda().to(e_dt) for a in host]

    ref_in = [x.float().requires_grad_() for x in t_in[:3]]
    with sdpa_kernel([SDPBackend.MATH]):
        ref = torch.nn.functional.scaled_dot_product_attention(*ref_in, is_causal=causal, scale=scale)
    ref.backward(t_in[3].float())
    refs = [ref.detach()] + [x.grad for x in ref_in]
    del ref, ref_in

    print(f"{torch.cuda.get_device_name()}  B={b} H={h} T={t} D={d} causal={causal} {args.dtype}  "
          f"torch {torch.__version__} cuDNN ember {ember.cuda.cudnn.version()} torch {torch.backends.cudnn.version()}")
    print(f"{'variant':<18} {'err out':>8} {'err dq':>8} {'err dk':>8} {'err dv':>8} {'fwd ms':>8} {'fwd TF/s':>9} "
          f"{'f+b ms':>8} {'f+b TF/s':>9} {'fwd vs torch':>12} {'f+b vs torch':>12}")
    base = {}
    names = args.only.split(",") if args.only else list(VARIANTS)
    for name in ["torch_default"] + [n for n in names if n != "torch_default"]:
        lib, fn = VARIANTS[name]
        inputs = e_in if lib == "ember" else t_in
        sync, event = (ember.cuda.synchronize, ember.cuda.Event) if lib == "ember" else \
            (torch.cuda.synchronize, torch.cuda.Event)
        to_torch = (lambda x: torch.from_numpy(x.detach().to(ember.float32).cpu().numpy())) if lib == "ember" \
            else (lambda x: x.detach().float().cpu())
        try:
            q, k, v = (x.detach().requires_grad_() for x in inputs[:3])
            out = fn(q, k, v, causal, scale)
            out.backward(inputs[3])
            errs = [rel_err(to_torch(x), r.cpu()) for x, r in zip((out, q.grad, k.grad, v.grad), refs)]
            nq, nk, nv = (x.detach() for x in inputs[:3])
            fwd_ms = time_ms(lambda: fn(nq, nk, nv, causal, scale), sync, event, args.reps)
            gq, gk, gv = (x.detach().requires_grad_() for x in inputs[:3])
            both_ms = time_ms(lambda: fn(gq, gk, gv, causal, scale).backward(inputs[3]), sync, event, args.reps)
        except RuntimeError as e:  # a torch backend that does not support the shape
            print(f"{name:<18} unavailable: {str(e).splitlines()[0][:90]}")
            continue
        if name == "torch_default":
            base = {"fwd": fwd_ms, "both": both_ms}
        ff, fb = attention_flops(b, h, t, t, d, causal, False), attention_flops(b, h, t, t, d, causal, True)
        print(f"{name:<18} " + " ".join(f"{e:8.1e}" for e in errs) +
              f" {fwd_ms:8.3f} {ff / fwd_ms / 1e9:9.1f} {both_ms:8.3f} {fb / both_ms / 1e9:9.1f}"
              f" {base['fwd'] / fwd_ms:11.2f}x {base['both'] / both_ms:11.2f}x")


if __name__ == "__main__":
    main()
