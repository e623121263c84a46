"""Training throughput of the example workloads, ember vs torch, in one process.

    PYTHONPATH=runtime/python .venv/bin/python bench/train_cpu.py [--steps 20] [--threads 2] [--json out.json]

Each workload runs its CPU config with identical init and batches on both backends: a few warm-up
steps, then `--steps` timed full training steps (forward, backward, clip, AdamW, scheduler).
Reports tokens/s (images/s for the ViT) and the ember/torch ratio (>1 means ember is faster)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO, "examples"))
sys.path.insert(0, os.path.join(REPO, "runtime", "python"))

from common.backend import load_backend  # noqa: E402
from common.trainer import base_parser, make_optimizer, train_step  # noqa: E402

import minigpt_shakespeare  # noqa: E402
import seq_reversal  # noqa: E402
import vit  # noqa: E402

WORKLOADS = {
    "seq_reversal": (seq_reversal.SeqReversal, seq_reversal.DEFAULTS, []),
    "vit": (vit.ViT, vit.DEFAULTS, []),
    "minigpt_shakespeare": (minigpt_shakespeare.MiniGPT, minigpt_shakespeare.DEFAULTS, ["--sample-chars", "0"]),
}


def measure(name, backend, steps, warmup, threads, extra):
    cls, defaults, wl_args = WORKLOADS[name]
    workload = cls()
    args = base_parser(workload, defaults).parse_args(wl_args + extra + ["--backend", backend])
    lib = load_backend(backend)
    lib.set_num_threads(threads)
    lib.manual_seed(0)
    workload.setup(args)
    model = workload.build_model(lib, args)
    opt, sched = make_optimizer(lib, model, args)
    for s in range(warmup):
        loss, _, _ = train_step(lib, workload, model, opt, sched, args, s)
        loss.item()
    t0 = time.perf_counter()
    for s in range(warmup, warmup + steps):
        loss, _, _ = train_step(lib, workload, model, opt, sched, args, s)
        loss.item()
    dt = time.perf_counter() - t0
    return workload.items_per_step(args) * steps / dt, dt / steps, workload.unit


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json", default=None)
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="extra workload args (after --extra)")
    a = p.parse_args(argv)
    results = []
    print(f"{'workload':22s} {'torch':>14s} {'ember':>14s} {'ember/torch':>12s}   (threads={a.threads})")
    for name in a.workloads:
        row = {"workload": name}
        for backend in ("torch", "ember"):
            rate, step_s, unit = measure(name, backend, a.steps, a.warmup, a.threads, a.extra)
            row[backend] = rate
            row[f"{backend}_step_ms"] = step_s * 1e3
            row["unit"] = unit
        row["ratio"] = row["ember"] / row["torch"]
        results.append(row)
        print(f"{name:22s} {row['torch']:10.0f} {row['unit'][:3]}/s {row['ember']:10.0f} {row['unit'][:3]}/s "
              f"{row['ratio']:11.2f}x", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
