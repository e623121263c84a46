"""Training throughput of the example workloads, ember vs torch, in one process.

    PYTHONPATH=runtime/python .venv/bin/python bench/train_cpu.py [--steps 10] [--rounds 3] [--threads 1] [--json out.json]

Each workload runs its CPU config with identical init and batches on both backends: a few warm-up
steps, then `--rounds` interleaved rounds of `--steps` timed full training steps (forward, backward,
clip, AdamW, scheduler) per backend; each backend's fastest round counts (the machine is shared).
Reports tokens/s (images/s for the ViT) and the ember/torch ratio (>1 means ember is faster)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO, "examples"))
try:
    import ember  # noqa: F401  (an installed or PYTHONPATH ember wins)
except ImportError:
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


class Runner:
    """One backend's model/optimizer for a workload, able to time rounds of training steps."""

    def __init__(self, name, backend, threads, extra):
        cls, defaults, wl_args = WORKLOADS[name]
        self.workload = cls()
        self.args = base_parser(self.workload, defaults).parse_args(wl_args + extra + ["--backend", backend])
        self.lib = load_backend(backend)
        self.threads = threads
        self.lib.set_num_threads(threads)
        self.lib.manual_seed(0)
        self.workload.setup(self.args)
        self.model = self.workload.build_model(self.lib, self.args)
        self.opt, self.sched = make_optimizer(self.lib, self.model, self.args)
        self.step = 0

    def run(self, steps):
        self.lib.set_num_threads(self.threads)
        t0 = time.perf_counter()
        for _ in range(steps):
            loss, _, _ = train_step(self.lib, self.workload, self.model, self.opt, self.sched, self.args, self.step)
            loss.item()
            self.step += 1
        return time.perf_counter() - t0


def measure(name, steps, warmup, rounds, threads, extra):
    """Interleaves timed rounds of the two backends (the machine is shared: load drifts) and keeps
    each backend's fastest round."""
    runners = {b: Runner(name, b, threads, extra) for b in ("torch", "ember")}
    for r in runners.values():
        r.run(warmup)
    best = {b: float("inf") for b in runners}
    for _ in range(rounds):
        for b, r in runners.items():
            best[b] = min(best[b], r.run(steps))
    wl = runners["torch"].workload
    per_step = wl.items_per_step(runners["torch"].args)
    return {b: per_step * steps / best[b] for b in runners}, {b: best[b] / steps for b in runners}, wl.unit


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    p.add_argument("--steps", type=int, default=10, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per backend (best is kept)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json", default=None)
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="extra workload args (after --extra)")
    a = p.parse_args(argv)
    results = []
    print(f"{'workload':22s} {'torch':>14s} {'ember':>14s} {'ember/torch':>12s}   (threads={a.threads})")
    for name in a.workloads:
        rates, step_s, unit = measure(name, a.steps, a.warmup, a.rounds, a.threads, a.extra)
        row = {"workload": name, "unit": unit, "threads": a.threads}
        for backend in ("torch", "ember"):
            row[backend] = rates[backend]
            row[f"{backend}_step_ms"] = step_s[backend] * 1e3
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
