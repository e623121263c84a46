"""CPU training throughput under load: ember vs torch, quiet and beside busy-loop processes.

    PYTHONPATH=runtime/python .venv/bin/python bench/cpu_under_load.py [--workload seq_reversal]
        [--threads 2] [--hogs 0 2] [--steps 10] [--rounds 3] [--repeats 3] [--json out.json]
    ... bench/cpu_under_load.py --first-matmul     # the first 1024^2 matmul after torch ran
    ... bench/cpu_under_load.py --gemm-modes       # mm as one OpenBLAS gang vs blocks, with --hogs

Each cell (library x number of hogs) runs `--repeats` fresh processes, one library per process, the
same thread count for both; each process times `--rounds` rounds of `--steps` training steps of
bench/train_cpu.py's workload and reports its median round. Hogs are `python` busy loops started
before a cell's processes and killed after them (and they exit on their own after `--hog-limit`
seconds or when this script dies). ember and torch processes alternate. The `mixed` rows run both
libraries in one process (rounds alternate, as in train_cpu.py), so each runs beside the other's
thread pool. Reported: median tokens/s, slowdown = quiet / loaded, and ember/torch; the 1-minute
load average before each cell is printed beside it (the machine may be shared: read it).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LIBS = ("ember", "torch")

HOG_SOURCE = """
import os, sys, time
parent, end = os.getppid(), time.monotonic() + float(sys.argv[1])
while time.monotonic() < end and os.getppid() == parent:
    for _ in range(200000):
        pass
"""


def loadavg() -> float:
    return os.getloadavg()[0]


class Hogs:
    """`n` busy-loop processes for the duration of a `with` block (bounded by `limit_s` anyway)."""

    def __init__(self, n: int, limit_s: float):
        self.n, self.limit_s, self.procs = n, limit_s, []

    def __enter__(self):
        for _ in range(self.n):
            self.procs.append(subprocess.Popen([sys.executable, "-c", HOG_SOURCE, str(self.limit_s)]))
        if self.n:
            time.sleep(0.5)  # let them reach full speed
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []


def child_env() -> dict:
    env = dict(os.environ)
    # The caller's PYTHONPATH first (it may point at another ember build), then the in-tree package.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), os.path.join(REPO, "runtime", "python")]))
    return env


def run_child(args, mode: str, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", mode, "--workload", args.workload,
           "--threads", str(args.threads), "--steps", str(args.steps), "--rounds", str(args.rounds),
           "--warmup", str(args.warmup)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=child_env())
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_main(args) -> None:
    """One process: `mode` is a library name, or `mixed` (both, rounds alternating)."""
    sys.path.insert(0, HERE)
    from train_cpu import Runner

    libs = LIBS if args.child == "mixed" else (args.child,)
    runners = {lib: Runner(args.workload, lib, args.threads, []) for lib in libs}
    for r in runners.values():
        r.run(args.warmup)
    rates = {lib: [] for lib in libs}
    for _ in range(args.rounds):
        for lib, r in runners.items():
            seconds = r.run(args.steps)
            wl = r.workload
            rates[lib].append(wl.items_per_step(r.args) * args.steps / seconds)
    print(json.dumps({lib: statistics.median(v) for lib, v in rates.items()}))


def first_matmul_child(args) -> None:
    """Times ember's first and later 1024^2 matmuls, after `--child-first` ran (none, torch, ...)."""
    import ember

    ember.set_num_threads(args.threads)
    a, b = ember.randn(1024, 1024), ember.randn(1024, 1024)
    ember.add(a, b)  # the pool and the allocator are warm; only the matmul path is new
    if args.first_after in ("torch", "torch+sleep"):
        import torch

        torch.set_num_threads(args.threads)
        ta, tb = torch.randn(1024, 1024), torch.randn(1024, 1024)
        for _ in range(3):
            torch.mm(ta, tb)
        if args.first_after == "torch+sleep":
            time.sleep(0.2)
    times = []
    for _ in range(6):
        t0 = time.perf_counter()
        ember.mm(a, b)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"first_ms": times[0] * 1e3, "later_ms": statistics.median(times[1:]) * 1e3}))


def first_matmul(args) -> list:
    rows = []
    print(f"first 1024^2 ember.mm in a fresh process ({args.threads} threads), median of {args.repeats} processes",
          flush=True)
    for after in ("none", "torch", "torch+sleep"):
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "first-matmul", "--first-after", after,
               "--threads", str(args.threads)]
        res, load = [], loadavg()
        for _ in range(args.repeats):
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=child_env())
            if out.returncode != 0:
                raise RuntimeError(f"first-matmul child failed: {out.stderr.strip()[-2000:]}")
            res.append(json.loads(out.stdout.strip().splitlines()[-1]))
        first = statistics.median(r["first_ms"] for r in res)
        later = statistics.median(r["later_ms"] for r in res)
        label = {"none": "nothing before", "torch": "right after torch.mm", "torch+sleep": "torch.mm, 200 ms sleep"}[after]
        print(f"  {label:26s} first {first:7.2f} ms   later {later:7.2f} ms   (load {load:.1f})", flush=True)
        rows.append({"after": after, "first_ms": first, "later_ms": later, "load": load})
    return rows


def gemm_modes_child(args) -> None:
    """Median ember.mm time per size under this process's EMBER_GEMM_THREADS, and torch.mm's."""
    import ember
    import torch

    ember.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    out = {}
    for n in (256, 512, 1024):
        a, b = ember.randn(n, n), ember.randn(n, n)
        ta, tb = torch.randn(n, n), torch.randn(n, n)
        for lib, fn in (("ember", lambda: ember.mm(a, b)), ("torch", lambda: torch.mm(ta, tb))):
            fn()
            times = []
            for _ in range(15):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            out[f"{lib} {n}"] = statistics.median(times) * 1e3
    print(json.dumps(out))


def gemm_modes(args) -> list:
    """ember.mm with OpenBLAS's threads as one gang, as single-threaded blocks, and as chosen by the
    pool's contention signal (the default), beside each hog count; torch.mm in the same processes."""
    rows = []
    print(f"mm n^3 median ms ({args.threads} threads), median of {args.repeats} processes per cell", flush=True)
    for hogs in args.hogs:
        with Hogs(hogs, args.hog_limit):
            for mode in ("openblas", "blocks", "auto"):
                env = child_env()
                env.pop("EMBER_GEMM_THREADS", None)
                if mode != "auto":
                    env["EMBER_GEMM_THREADS"] = mode
                cmd = [sys.executable, os.path.abspath(__file__), "--child", "gemm-modes", "--threads", str(args.threads)]
                load, res = loadavg(), []
                for _ in range(args.repeats):
                    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
                    if out.returncode != 0:
                        raise RuntimeError(f"gemm-modes child failed: {out.stderr.strip()[-2000:]}")
                    res.append(json.loads(out.stdout.strip().splitlines()[-1]))
                med = {k: statistics.median(r[k] for r in res) for k in res[0]}
                cells = "  ".join(f"{k} {v:7.2f}" for k, v in med.items())
                print(f"  hogs {hogs} ember {mode:8s} {cells}  (load {load:.1f})", flush=True)
                rows.append({"hogs": hogs, "mode": mode, "load": load, **med})
    return rows


def fmt_rate(v: float) -> str:
    return f"{v / 1e3:7.1f}k" if v >= 1e3 else f"{v:7.0f} "


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", default="seq_reversal", choices=["seq_reversal", "vit", "minigpt_shakespeare"])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--hogs", type=int, nargs="+", default=[0, os.cpu_count()], help="hog counts to measure")
    p.add_argument("--steps", type=int, default=10, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=3, help="rounds per process (its median counts)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3, help="processes per cell (their median counts)")
    p.add_argument("--no-mixed", action="store_true", help="skip the both-libraries-in-one-process rows")
    p.add_argument("--timeout", type=float, default=600, help="seconds per child process")
    p.add_argument("--hog-limit", type=float, default=3600, help="hogs exit by themselves after this")
    p.add_argument("--first-matmul", action="store_true", help="only the first-matmul-after-torch measurement")
    p.add_argument("--gemm-modes", action="store_true", help="only the GEMM threading modes measurement")
    p.add_argument("--json", default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--first-after", default="none", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child == "first-matmul":
        return first_matmul_child(args)
    if args.child == "gemm-modes":
        return gemm_modes_child(args)
    if args.child:
        return child_main(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the hogs' `with` block cleans up

    import ember
    import torch

    print(f"{platform.node()} {os.cpu_count()} cpus, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M')}")
    print(ember.parallel_info() if hasattr(ember, "parallel_info") else "ember (no parallel_info)")
    if args.gemm_modes:
        rows = gemm_modes(args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"gemm_modes": rows}, f, indent=1)
        return rows
    if args.first_matmul:
        rows = first_matmul(args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"first_matmul": rows}, f, indent=1)
        return rows

    modes = list(LIBS) + ([] if args.no_mixed else ["mixed"])
    print(f"workload {args.workload}, {args.threads} threads, {args.steps} steps x {args.rounds} rounds per "
          f"process, {args.repeats} processes per cell")
    print(f"{'hogs':>4s} {'process':8s} {'lib':6s} {'tokens/s':>9s} {'(min - max)':>19s} {'slowdown':>9s} {'load':>5s}")
    cells = {}
    for hogs in args.hogs:
        with Hogs(hogs, args.hog_limit):
            load = loadavg()
            runs = {m: [] for m in modes}
            for rep in range(args.repeats):
                order = modes if rep % 2 == 0 else modes[::-1]
                for m in order:
                    runs[m].append(run_child(args, m, args.timeout))
        for m in modes:
            for lib in (LIBS if m == "mixed" else (m,)):
                vals = [r[lib] for r in runs[m] if lib in r]
                errors = [r["error"] for r in runs[m] if "error" in r]
                cell = {"hogs": hogs, "process": m, "lib": lib, "load": load, "rates": vals, "errors": errors}
                cell["median"] = statistics.median(vals) if vals else float("nan")
                cells[(hogs, m, lib)] = cell
                quiet = cells.get((0, m, lib), {}).get("median")
                cell["slowdown"] = quiet / cell["median"] if quiet and vals else float("nan")
                rng = f"({fmt_rate(min(vals))} - {fmt_rate(max(vals))})" if vals else "(failed)"
                print(f"{hogs:4d} {m:8s} {lib:6s} {fmt_rate(cell['median']):>9s} {rng:>19s} "
                      f"{cell['slowdown']:8.2f}x {load:5.1f}" + (f"  errors: {errors}" if errors else ""), flush=True)
    print("ember/torch (>1: ember faster):")
    for hogs in args.hogs:
        parts = []
        for m in ("separate", "mixed"):
            e = cells.get((hogs, "ember" if m == "separate" else "mixed", "ember"))
            t = cells.get((hogs, "torch" if m == "separate" else "mixed", "torch"))
            if e and t and e["rates"] and t["rates"]:
                parts.append(f"{m} {e['median'] / t['median']:.2f}x (slowdown ember {e['slowdown']:.2f}x, "
                             f"torch {t['slowdown']:.2f}x)")
        print(f"  {hogs} hogs: " + "; ".join(parts))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(list(cells.values()), f, indent=1)
    return cells


if __name__ == "__main__":
    main()
