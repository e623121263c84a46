"""Attention benchmark: ember's fused CUDA attention (cuDNN) vs torch's SDPA vs ember's composite
path (bmm + fused softmax + bmm), in one process on the same inputs.

For each config, forward (no autograd) and forward+backward, bf16: median device time over
repeats (CUDA events of each library's own stream), TFLOP/s and torch/ember ratios (> 1: ember
faster). FLOPs count the two matrix products, 4*B*H*Tq*Tk*D, halved when causal (only the lower
triangle is computed); the backward adds 2.5x the forward (FlashAttention's accounting).
Usage: python bench/attention.py [--reps N] [--json out.json] [--configs big,nanogpt]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

import numpy as np
import torch

import ember
import ember.nn.functional as F


def time_ms(fn, sync, event_cls, reps, warmup=3):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        start, end = event_cls(enable_timing=True), event_cls(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def attention_flops(b, h, tq, tk, d, causal, backward):
    fwd = 4 * b * h * tq * tk * d * (0.5 if causal else 1.0)
    return fwd * (3.5 if backward else 1.0)


CONFIGS = {  # name -> (B, H, T, D, causal)
    "big_causal": (8, 16, 2048, 128, True),
    "big": (8, 16, 2048, 128, False),
    "nanogpt": (64, 6, 256, 64, True),
}


def inputs(shape, rng):
    a = [rng.standard_normal(shape).astype(np.float32) for _ in range(4)]
    e = [ember.from_numpy(x).cuda().to(ember.bfloat16) for x in a]
    t = [torch.from_numpy(x).cuda().to(torch.bfloat16) for x in a]
    return e, t


def bench_config(name, b, h, t, d, causal, reps):
    rng = np.random.default_rng(0)
    (eq, ek, ev, eg), (tq, tk, tv, tg) = inputs((b, h, t, d), rng)
    scale = 1.0 / math.sqrt(d)
    e_sync, t_sync = ember.cuda.synchronize, torch.cuda.synchronize
    rows = []

    def ember_sdpa(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)

    def torch_sdpa(q, k, v):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)

    for backward in (False, True):
        eqr, ekr, evr = (x.detach().requires_grad_(backward) for x in (eq, ek, ev))
        tqr, tkr, tvr = (x.detach().requires_grad_(backward) for x in (tq, tk, tv))

        def e_step():
            out = ember_sdpa(eqr, ekr, evr)
            if backward:
                out.backward(eg)

        def t_step():
            out = torch_sdpa(tqr, tkr, tvr)
            if backward:
                out.backward(tg)

        results = {}
        ember.cuda.cudnn.enabled = True
        e_sync()
        t0 = time.perf_counter()
        e_step()  # the first call of a configuration builds its cuDNN graphs
        e_sync()
        first_call_ms = (time.perf_counter() - t0) * 1e3
        results["ember_fused"] = time_ms(e_step, e_sync, ember.cuda.Event, reps)
        ember.cuda.cudnn.enabled = False
        results["ember_composite"] = time_ms(e_step, e_sync, ember.cuda.Event, max(3, reps // 4))
        ember.cuda.cudnn.enabled = True
        results["torch_sdpa"] = time_ms(t_step, t_sync, torch.cuda.Event, reps)
        flops = attention_flops(b, h, t, t, d, causal, backward)
        row = {"config": name, "shape": [b, h, t, d], "causal": causal, "pass": "fwd+bwd" if backward else "fwd"}
        for k, ms in results.items():
            row[f"{k}_ms"] = ms
            row[f"{k}_tflops"] = flops / ms / 1e9
        row["fused_first_call_ms"] = first_call_ms
        row["torch_over_fused"] = results["torch_sdpa"] / results["ember_fused"]
        row["composite_over_fused"] = results["ember_composite"] / results["ember_fused"]
        rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--json", default=None)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    args = ap.parse_args()
    if not ember.cuda.is_available():
        sys.exit("needs a CUDA GPU")
    reason = ember.cuda.cudnn.fused_attention_unavailable_reason()
    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}, cuDNN (ember) "
          f"{ember.cuda.cudnn.version()}, cuDNN (torch) {torch.backends.cudnn.version()}"
          + (f"; FUSED PATH UNAVAILABLE: {reason}" if reason else ""))
    rows = []
    for name in args.configs.split(","):
        rows += bench_config(name, *CONFIGS[name], args.reps)
    print(f"{'config':<11} {'pass':<8} {'fused ms':>9} {'torch ms':>9} {'comp ms':>9} {'fused TF/s':>10} "
          f"{'torch TF/s':>10} {'comp TF/s':>9} {'torch/fused':>11} {'comp/fused':>10} {'1st call ms':>11}")
    for r in rows:
        print(f"{r['config']:<11} {r['pass']:<8} {r['ember_fused_ms']:9.3f} {r['torch_sdpa_ms']:9.3f} "
              f"{r['ember_composite_ms']:9.3f} {r['ember_fused_tflops']:10.1f} {r['torch_sdpa_tflops']:10.1f} "
              f"{r['ember_composite_tflops']:9.1f} {r['torch_over_fused']:11.2f} {r['composite_over_fused']:10.2f} "
              f"{r['fused_first_call_ms']:11.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
