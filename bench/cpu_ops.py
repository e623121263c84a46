"""CPU op benchmark: ember vs torch in one process, same inputs, same thread count.

Each family module (bench/cpu_ops_<family>.py) lists CASES = [(label, setup)], where setup(lib)
returns a zero-argument callable running the op once with `lib` = ember or torch. We time both
interleaved, take medians over repeats and print ratio = torch_time / ember_time (>1: ember faster).
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILIES = ["elementwise", "reduce", "linalg"]


def load_family(name):
    path = os.path.join(HERE, f"cpu_ops_{name}.py")
    if not os.path.exists(path):
        return []
    spec = importlib.util.spec_from_file_location(f"cpu_ops_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return [(name, label, setup) for label, setup in mod.CASES]


def time_callable(fn, min_time=0.05, repeats=7):
    """Median seconds per call: calibrate a batch to ~min_time, then `repeats` batches."""
    fn()
    n, t = 1, 0.0
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        t = time.perf_counter() - start
        if t >= min_time or n >= 1 << 20:
            break
        n *= 4
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n)
    return statistics.median(samples)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--filter", default="", help="substring of the case label")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)

    import torch
    import ember

    threads = ember.get_num_threads()
    torch.set_num_threads(threads)
    cases = [c for fam in args.families.split(",") for c in load_family(fam) if args.filter in c[1]]
    print(f"ember vs torch {torch.__version__} on {platform.processor() or platform.machine()}, "
          f"{threads} threads, {datetime.date.today()}")
    print(f"{'family':<12} {'case':<40} {'ember':>10} {'torch':>10} {'ratio':>7}")
    rows = []
    for family, label, setup in cases:
        e_fn, t_fn = setup(ember), setup(torch)
        # Interleave to share the machine's noise between both libraries.
        e_times, t_times = [], []
        for _ in range(3):
            e_times.append(time_callable(e_fn, repeats=args.repeats))
            t_times.append(time_callable(t_fn, repeats=args.repeats))
        e, t = statistics.median(e_times), statistics.median(t_times)
        rows.append({"family": family, "case": label, "ember_s": e, "torch_s": t, "ratio": t / e})
        print(f"{family:<12} {label:<40} {fmt(e):>10} {fmt(t):>10} {t / e:>7.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": str(datetime.date.today()), "threads": threads, "torch": torch.__version__,
                       "python": sys.version.split()[0], "rows": rows}, f, indent=1)


def fmt(seconds):
    return f"{seconds * 1e6:.1f}us" if seconds < 1e-3 else f"{seconds * 1e3:.2f}ms"


if __name__ == "__main__":
    main()
