"""Harness latency: "patch received" -> verdict for a one-file change to a C++ kernel.

Drives the same code path as `harness run` (worktree reset, apply cascade, grading pipeline:
protected check, incremental build, selected tests, numerics vs PyTorch) on a scripted edit
that appends a comment to one kernel file, so exactly that file recompiles.

    python bench/harness_latency.py                       # auto-picks a kernel file
    python bench/harness_latency.py --file runtime/csrc/cpu/unary.cpp \
        --numerics ember.exp=torch.exp --cpp-selector Unary --pytest-selector "runtime/tests/python -k exp"

Targets: patch->verdict < 60 s on 2 cores; harness overhead (outside build/test) < 1 s.
Round 0 seeds the per-worktree build dir (a cold build) and is reported separately.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.config import DEFAULT_COMMANDS, Goal, from_dict  # noqa: E402
from harness.edits import apply_edits, parse_edits  # noqa: E402
from harness.grading import Grader  # noqa: E402
from harness.sandbox import secret_values  # noqa: E402
from harness.workspace import Workspace, resolve_base  # noqa: E402


def pick_kernel(ws: Workspace, base: str) -> str:
    """A .cpp committed at the base commit, preferring CPU kernels."""
    tracked = ws.repo.git.ls_tree("-r", "--name-only", base, "runtime/csrc").splitlines()
    for prefix in ("runtime/csrc/cpu/", "runtime/csrc/ops/", "runtime/csrc/"):
        files = sorted(f for f in tracked if f.startswith(prefix) and f.endswith(".cpp"))
        if files:
            return files[0]
    raise SystemExit(f"no C++ file under runtime/csrc at {base[:12]}; pass --file")


def make_goal(args) -> Goal:
    numerics = []
    for pair in args.numerics:
        ember_expr, torch_expr = pair.split("=", 1)
        numerics.append({"name": ember_expr, "ember": ember_expr, "torch": torch_expr,
                         "shapes": [[1024], [33, 17]], "dtypes": ["float32", "float64"],
                         "num_inputs": 1, "input_range": [-3.0, 3.0], "seeds": 2, "atol": None,
                         "rtol": None, "atol_float64": None, "rtol_float64": None,
                         "backward": args.backward, "supports_out": False})
    return from_dict(Goal, dict(
        id="bench-latency", title="latency benchmark", intent="bench", default=False,
        agent="replay-demo", base=args.base, scope=[args.file], protected=[], context_files=[],
        commands=dict(DEFAULT_COMMANDS),
        acceptance={"build": True, "cpp_tests": args.cpp_selector, "pytest": args.pytest_selector,
                    "numerics": numerics, "regression_suite": False, "performance": []},
        budget={"attempts": args.rounds + 1, "wall_seconds": 1e9, "tokens": 0, "dollars": 0.0,
                "stuck_after": 0},
        limits={"stage_timeout_s": args.stage_timeout, "cpu_seconds": 7200, "memory_mb": 8192}))


def one_round(ws: Workspace, goal: Goal, base: str, round_no: int, logs: Path) -> dict:
    ws.prepare(base)
    original = (ws.worktree / goal.scope[0]).read_text().splitlines(keepends=True)
    last = original[-1] if original[-1].endswith("\n") else original[-1] + "\n"
    response = (f"{goal.scope[0]}\n<<<<<<< SEARCH\n{last}=======\n{last}"
                f"// harness latency bench, round {round_no}\n>>>>>>> REPLACE\n")
    received = time.monotonic()  # "patch received"
    report = apply_edits(ws.worktree, parse_edits(response), goal.scope, goal.all_protected)
    if not report.ok:
        raise SystemExit("bench edit did not apply:\n" + report.feedback())
    ws.diff(base)  # the record step of a real attempt
    verdict = Grader(ws, goal, base, secret_values()).grade(logs / f"round-{round_no}")
    total = time.monotonic() - received
    stages = {s.name: round(s.seconds, 3) for s in verdict.stages}
    return {"round": round_no, "ok": verdict.ok, "failed_stage": verdict.failed_stage,
            "patch_to_verdict_s": round(total, 3), "stages": stages,
            "harness_overhead_s": round(total - sum(stages.values())
                                        + stages.get("protected", 0)
                                        + stages.get("protected_after", 0), 3),
            "feedback": verdict.feedback[:800]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", help="C++ kernel file to touch (repo-relative)")
    parser.add_argument("--numerics", action="append", default=[], metavar="EMBER=TORCH",
                        help="numerics check, e.g. ember.exp=torch.exp (repeatable)")
    parser.add_argument("--backward", action="store_true", help="also check gradients")
    parser.add_argument("--cpp-selector", action="append", default=[])
    parser.add_argument("--pytest-selector", action="append", default=[])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", default="HEAD")
    parser.add_argument("--stage-timeout", type=float, default=1800)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ws = Workspace(REPO, "bench-latency", f"bench-{int(time.time())}")
    base = resolve_base(ws.repo, args.base)
    args.file = args.file or pick_kernel(ws, base)
    goal = make_goal(args)
    logs = REPO / ".harness" / "bench-logs" / time.strftime("%Y%m%d-%H%M%S")
    results = [one_round(ws, goal, base, n, logs) for n in range(args.rounds + 1)]
    ws.close()
    warm = results[1:]
    summary = {"file": args.file, "base": base, "cold_round": results[0], "rounds": warm,
               "max_patch_to_verdict_s": max((r["patch_to_verdict_s"] for r in warm), default=None),
               "max_harness_overhead_s": max((r["harness_overhead_s"] for r in warm), default=None),
               "targets": {"patch_to_verdict_s": 60, "harness_overhead_s": 1.0}, "logs": str(logs)}
    summary["meets_targets"] = bool(warm) and all(r["ok"] for r in warm) \
        and summary["max_patch_to_verdict_s"] < 60 and summary["max_harness_overhead_s"] < 1.0
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"file: {args.file}  (logs: {logs})")
        print(f"{'round':>5} {'ok':>5} {'patch->verdict s':>17} {'overhead s':>11}  stages")
        for r in results:
            label = "cold" if r["round"] == 0 else str(r["round"])
            print(f"{label:>5} {str(r['ok']):>5} {r['patch_to_verdict_s']:>17.2f} "
                  f"{r['harness_overhead_s']:>11.3f}  {r['stages']}")
            if not r["ok"]:
                print("      " + r["feedback"].replace("\n", "\n      "))
        print(f"targets: patch->verdict < 60 s, overhead < 1 s: "
              f"{'MET' if summary['meets_targets'] else 'NOT MET'}")
    return 0 if summary["meets_targets"] else 1


if __name__ == "__main__":
    sys.exit(main())
