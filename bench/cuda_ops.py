"""CUDA op benchmarks: ember vs torch in the same process on the same GPU.

Reports (each a median over repeats, device time from CUDA events unless noted):
  * launch overhead of a small op (host wall time per call, 1-element add, no sync in the loop)
  * large elementwise (add, mul by scalar, exp), reductions (sum, amax, softmax rows) and the fused
    rms_norm / rotary embedding (bf16) as % of the measured device-to-device copy bandwidth (bytes
    read + written)
  * GEMM (fp32 with TF32 off and on, fp16, bf16) in TFLOP/s
Usage: python bench/cuda_ops.py [--quick] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch

import ember


def time_device(fn, sync, event_cls, reps=20, warmup=3):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        s, e = event_cls(enable_timing=True), event_cls(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    return statistics.median(times)


def t_ember(fn, reps=20):
    return time_device(fn, ember.cuda.synchronize, ember.cuda.Event, reps)


def t_torch(fn, reps=20):
    return time_device(fn, torch.cuda.synchronize, torch.cuda.Event, reps)


def launch_overhead(n=20000):
    res = {}
    ex = ember.ones((1,), device="cuda")
    tx = torch.ones((1,), device="cuda")
    for name, lib_add, a, sync in (("ember", ember.add, ex, ember.cuda.synchronize),
                                    ("torch", torch.add, tx, torch.cuda.synchronize)):
        best = float("inf")
        for _ in range(3):
            sync()
            t0 = time.perf_counter()
            for _ in range(n):
                lib_add(a, a)
            sync()
            best = min(best, (time.perf_counter() - t0) / n * 1e6)
        res[name] = best
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    n = 1 << (24 if args.quick else 26)
    rows = []

    def row(name, e_ms, t_ms, nbytes=None, flops=None, bw=None):
        r = {"name": name, "ember_ms": e_ms, "torch_ms": t_ms, "ratio_torch_over_ember": t_ms / e_ms}
        if nbytes:
            r["ember_GBps"] = nbytes / e_ms / 1e6
            r["torch_GBps"] = nbytes / t_ms / 1e6
            if bw:
                r["ember_pct_copy_bw"] = 100 * r["ember_GBps"] / bw
                r["torch_pct_copy_bw"] = 100 * r["torch_GBps"] / bw
        if flops:
            r["ember_TFLOPs"] = flops / e_ms / 1e9
            r["torch_TFLOPs"] = flops / t_ms / 1e9
        rows.append(r)
        return r

    lo = launch_overhead(5000 if args.quick else 20000)
    rows.append({"name": "launch_overhead_add_1elem_us", "ember_us": lo["ember"], "torch_us": lo["torch"],
                 "ratio_torch_over_ember": lo["torch"] / lo["ember"]})

    rng = np.random.default_rng(0)
    a_np = rng.standard_normal(n).astype(np.float32)
    b_np = rng.standard_normal(n).astype(np.float32)
    ea, eb = ember.from_numpy(a_np).cuda(), ember.from_numpy(b_np).cuda()
    ta, tb = torch.from_numpy(a_np).cuda(), torch.from_numpy(b_np).cuda()
    eo, to = ember.empty((n,), device="cuda"), torch.empty((n,), device="cuda")

    # Copy bandwidth: torch's D2D copy (bytes read + written).
    t_copy = t_torch(lambda: to.copy_(ta))
    e_copy = t_ember(lambda: eo.copy_(ea))
    bw = 2 * 4 * n / t_copy / 1e6
    row("copy", e_copy, t_copy, 8 * n, bw=bw)
    row("add", t_ember(lambda: ember.add(ea, eb)), t_torch(lambda: torch.add(ta, tb)), 12 * n, bw=bw)
    row("mul_scalar", t_ember(lambda: ea * 1.5), t_torch(lambda: ta * 1.5), 8 * n, bw=bw)
    row("exp", t_ember(lambda: ember.exp(ea)), t_torch(lambda: torch.exp(ta)), 8 * n, bw=bw)
    eh, th = ea.to(ember.bfloat16), ta.to(torch.bfloat16)
    row("add_bf16", t_ember(lambda: eh + eh), t_torch(lambda: th + th), 6 * n, bw=bw)
    row("sum_all", t_ember(lambda: ea.sum()), t_torch(lambda: ta.sum()), 4 * n, bw=bw)
    e2, t2 = ea.view(n // 4096, 4096), ta.view(n // 4096, 4096)
    row("sum_rows", t_ember(lambda: e2.sum(1)), t_torch(lambda: t2.sum(1)), 4 * n, bw=bw)
    row("sum_cols", t_ember(lambda: e2.sum(0)), t_torch(lambda: t2.sum(0)), 4 * n, bw=bw)
    row("amax_all", t_ember(lambda: ember.amax(ea)), t_torch(lambda: torch.amax(ta)), 4 * n, bw=bw)
    row("softmax_rows4096", t_ember(lambda: ember.softmax(e2, -1)), t_torch(lambda: torch.softmax(t2, -1)), 8 * n, bw=bw)
    # Fused RMSNorm (torch's rms_norm) and rotary embedding (torch has no op: its composite), bf16:
    # read x, write y (the weight and the (T, D/2) tables are negligible).
    e2h, t2h = e2.to(ember.bfloat16), t2.to(torch.bfloat16)
    ewh, twh = ember.ones((4096,), device="cuda").to(ember.bfloat16), torch.ones(4096, device="cuda").to(torch.bfloat16)
    row("rms_norm_rows4096_bf16", t_ember(lambda: ember.nn.functional.rms_norm(e2h, (4096,), ewh)),
        t_torch(lambda: torch.nn.functional.rms_norm(t2h, (4096,), twh)), 4 * n, bw=bw)
    ex4, tx4 = e2h.view(n // (2048 * 128), 2048, 128), t2h.view(n // (2048 * 128), 2048, 128)
    theta = np.outer(np.arange(2048), 1.0 / 10000 ** (np.arange(0, 128, 2) / 128))
    ecos, esin = (ember.from_numpy(f(theta).astype(np.float32)).cuda().to(ember.bfloat16) for f in (np.cos, np.sin))
    tcos, tsin = (torch.from_numpy(f(theta).astype(np.float32)).cuda().to(torch.bfloat16) for f in (np.cos, np.sin))

    def torch_rope(x, cos, sin):
        xa, xb = x[..., :64], x[..., 64:]
        return torch.cat([xa * cos - xb * sin, xb * cos + xa * sin], -1)
    row("rotary_T2048_D128_bf16", t_ember(lambda: ember.nn.functional.rotary_embedding(ex4, ecos, esin)),
        t_torch(lambda: torch_rope(tx4, tcos, tsin)), 4 * n, bw=bw)

    for dtype, tf32 in (("float32", False), ("float32", True), ("float16", False), ("bfloat16", False)):
        m = 4096 if not args.quick else 2048
        ember.cuda.matmul.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        x = rng.standard_normal((m, m)).astype(np.float32)
        y = rng.standard_normal((m, m)).astype(np.float32)
        ex, ey = ember.from_numpy(x).cuda().to(getattr(ember, dtype)), ember.from_numpy(y).cuda().to(getattr(ember, dtype))
        tx, ty = torch.from_numpy(x).cuda().to(getattr(torch, dtype)), torch.from_numpy(y).cuda().to(getattr(torch, dtype))
        row(f"mm_{m}_{dtype}{'_tf32' if tf32 else ''}", t_ember(lambda: ember.mm(ex, ey), 10),
            t_torch(lambda: torch.mm(tx, ty), 10), flops=2 * m ** 3)
    ember.cuda.matmul.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False

    print(f"GPU: {torch.cuda.get_device_name()}  copy bandwidth (torch D2D, read+write): {bw:.0f} GB/s")
    print(f"{'benchmark':<28}{'ember':>12}{'torch':>12}{'torch/ember':>13}  notes")
    for r in rows:
        if "ember_us" in r:
            print(f"{r['name']:<28}{r['ember_us']:>10.2f}us{r['torch_us']:>10.2f}us{r['ratio_torch_over_ember']:>13.2f}")
            continue
        note = ""
        if "ember_pct_copy_bw" in r:
            note = f"ember {r['ember_pct_copy_bw']:.0f}% / torch {r['torch_pct_copy_bw']:.0f}% of copy bw"
        if "ember_TFLOPs" in r:
            note = f"ember {r['ember_TFLOPs']:.0f} / torch {r['torch_TFLOPs']:.0f} TFLOP/s"
        print(f"{r['name']:<28}{r['ember_ms']:>10.3f}ms{r['torch_ms']:>10.3f}ms{r['ratio_torch_over_ember']:>13.2f}  {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "copy_bw_GBps": bw, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
