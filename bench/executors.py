"""Executors: the wall time of one small bench run locally and on a local Ray cluster.

The same bench (the harness tests' fixture repo: a light goal, a replay agent that is accepted
on its first attempt, `--samples N`) through `--executor local` with 1 and 2 lanes and through
`--executor ray` on a cluster of 1 and of 2 nodes (1 CPU each, so 1 or 2 runs at a time), in
fresh repositories each time. Cluster start and stop are timed apart from the bench.

    python bench/executors.py [--samples 4] [--repeats 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.tests.ray_cluster import start_cluster  # noqa: E402
from harness.tests.support import GOOD, make_fixture_repo  # noqa: E402


def bench_once(executor: str, jobs: int | None, samples: int, address: str | None) -> float:
    with tempfile.TemporaryDirectory(prefix="ember-exec-bench-") as tmp:
        repo = make_fixture_repo(Path(tmp) / "repo")
        repo.write_agent("good", "replay", trajectory=[GOOD])
        repo.write_goals(agent="good", attempts=1, light=True)
        args = ["bench", "--agents", "good", "--samples", str(samples), "--bench-id", "b"]
        args += ["--executor", executor] + (["--jobs", str(jobs)] if jobs else [])
        args += ["--address", address] if address else []
        started = time.monotonic()
        code = repo.run(*args)
        seconds = time.monotonic() - started
        if code != 0:
            raise SystemExit(f"bench failed ({executor}, jobs={jobs}): exit {code}")
        return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4, help="runs in the bench")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "unused-by-replay")
    rows: list[dict] = []

    def measure(name: str, executor: str, jobs: int | None, address: str | None = None):
        times = [bench_once(executor, jobs, args.samples, address) for _ in range(args.repeats)]
        rows.append({"setup": name, "median_s": statistics.median(times), "runs_s": times})
        print(f"{name:28s} median {statistics.median(times):6.1f}s  {times}", flush=True)

    measure("local, 1 lane", "local", 1)
    measure("local, 2 lanes", "local", 2)
    for nodes in (1, 2):
        started = time.monotonic()
        cluster = start_cluster(workers=nodes - 1)
        up = time.monotonic() - started
        try:
            measure(f"ray, {nodes} node(s) x 1 CPU", "ray", None, cluster.address)
        finally:
            stopping = time.monotonic()
            cluster.stop()
            down = time.monotonic() - stopping
        rows[-1].update(cluster_up_s=round(up, 1), cluster_down_s=round(down, 1))
        print(f"{'':28s} cluster up {up:.1f}s, down {down:.1f}s", flush=True)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{platform.node()} ({os.cpu_count()} cores)",
        "load_avg": os.getloadavg(),
        "samples": args.samples,
        "repeats": args.repeats,
    }
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=1))
    else:
        print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
