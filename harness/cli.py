"""`harness` command line: goals, run, bench, nightly, report, show, suite.

Exit codes: 0 accepted, 1 not accepted, 2 usage/config error (also: no sandbox), 3 internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

from rich.console import Console

from .config import AgentConfig, Goal, load_agent, load_goals, pick_goal
from .errors import ConfigError
from .records import RunRecord, new_run_id
from .sandbox import SandboxUnavailable, require_sandbox
from .secrets import make_undumpable
from .suite import cli as suite_cli
from .workspace import HARNESS_DIR, open_repo

EXIT_INTERNAL = 3
EXIT_CODES = """exit codes:
  0  accepted (or the command succeeded)
  1  not accepted: budget spent, stuck, provider failure or an integrity violation
  2  usage or configuration error (also: no sandbox available and none allowed)
  3  internal error of the harness (HARNESS_DEBUG=1 prints the trace)"""


def repo_root(arg: str | None) -> Path:
    repo = open_repo(Path(arg or os.getcwd()))
    return Path(str(repo.working_tree_dir))


def cmd_goals(args) -> int:
    repo = repo_root(args.repo)
    path = Path(args.goals) if args.goals else repo / "goals.yaml"
    goals = load_goals(path)
    if args.json:
        print(json.dumps([g.to_dict() for g in goals], indent=1))
        return 0
    console = Console()
    if args.check:
        console.print(f"{path}: {len(goals)} goal(s) valid")
        return 0
    from rich.table import Table

    table = Table(title=str(path))
    for column in ("id", "title", "default", "agent", "attempts", "scope"):
        table.add_column(column)
    for goal in goals:
        table.add_row(
            goal.id,
            goal.title,
            "yes" if goal.default else "",
            goal.agent,
            str(goal.budget.attempts),
            ", ".join(goal.scope),
        )
    console.print(table)
    return 0


def cmd_run(args) -> int:
    from .display import Reporter, RichReporter, print_summary
    from .loop import RunSettings, open_loop

    repo = repo_root(args.repo)
    runs_dir = Path(args.runs_dir) if args.runs_dir else repo / "runs"
    if args.resume:
        run_dir = runs_dir / args.resume
        if not (run_dir / "goal.json").exists() or not (run_dir / "agent.json").exists():
            raise ConfigError(f"no resumable run {args.resume!r} under {runs_dir}")
        goal = Goal.from_dict(json.loads((run_dir / "goal.json").read_text()))
        agent = AgentConfig.from_dict(json.loads((run_dir / "agent.json").read_text()))
        run_id = args.resume
    else:
        goals = load_goals(Path(args.goals) if args.goals else repo / "goals.yaml")
        goal = pick_goal(goals, args.goal)
        agent = load_agent(repo, args.agent or goal.agent)
        run_id = new_run_id(goal.id)
    show_live = not args.json and sys.stderr.isatty()
    reporter = RichReporter() if show_live else Reporter()
    if not args.json and not show_live:
        print(
            f"harness: run {run_id} goal {goal.id} agent {agent.name} "
            f"({agent.provider}:{agent.model})",
            file=sys.stderr,
            flush=True,
        )
    settings = RunSettings(
        repo=repo,
        goal=goal,
        agent=agent,
        runs_dir=runs_dir,
        run_id=run_id,
        resume=bool(args.resume),
        merge=args.merge,
        allow_unsandboxed=args.allow_unsandboxed,
    )
    code, summary = open_loop(settings, reporter).run()  # validates sandbox, base, key first
    if args.json:
        print(json.dumps(dict(summary, exit_code=code), indent=1))
    else:
        print_summary(summary)
    return code


def cmd_show(args) -> int:
    repo = repo_root(args.repo)
    runs_dir = Path(args.runs_dir) if args.runs_dir else repo / "runs"
    record = RunRecord.open_existing(runs_dir, args.run, [], repo / HARNESS_DIR / "keys")
    if args.trajectory:  # the model's replies, replayable with `provider: replay`
        from .agent.replay import trajectory_from_run

        print(json.dumps(trajectory_from_run(record.dir), indent=1))
        return 0
    events = record.load_events(record.events_path)
    summary_path = record.dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    if args.json:
        print(json.dumps({"run_id": args.run, "summary": summary, "events": events}, indent=1))
        return 0
    console = Console()
    from .display import print_summary

    for ev in events:
        detail = {
            k: v
            for k, v in ev.items()
            if k not in ("seq", "t", "kind", "results", "feedback", "tries")
        }
        console.print(
            f"[dim]{ev['seq']:4d}[/] [bold]{ev['kind']}[/] "
            + json.dumps(detail, default=str)[:200],
            markup=True,
            highlight=False,
        )
        if ev["kind"] == "attempt_finished" and ev.get("feedback"):
            console.print(
                "      " + ev["feedback"][:1500].replace("\n", "\n      "),
                markup=False,
                highlight=False,
            )
    if record.tamper_reason:
        console.print(f"[bold red]record does not verify:[/] {record.tamper_reason}")
    if summary:
        print_summary(summary, console)
    else:
        console.print(f"(run not finished: resume it with `harness run --resume {args.run}`)")
    return 0


def cmd_bench(args) -> int:
    from .bench import Bench, create_bench, new_plan, resume_plan
    from .display import BenchDisplay, RichBenchDisplay
    from .executor import make_executor

    require_sandbox(args.allow_unsandboxed)  # every lane would refuse: say so once, now
    repo = repo_root(args.repo)
    runs_dir = Path(args.runs_dir) if args.runs_dir else repo / "runs"
    if args.resume:
        bench_dir, plan = resume_plan(runs_dir, args.resume, args.jobs)
    else:
        if not args.agents:
            raise ConfigError("harness bench needs --agents a,b (or --resume BENCH)")
        plan = new_plan(
            repo,
            args.goals,
            args.agents,
            args.samples,
            args.jobs or 1,
            args.bench_id,
            args.goal_ids,
        )
        bench_dir = create_bench(repo, runs_dir, plan)
    display = RichBenchDisplay() if sys.stderr.isatty() else BenchDisplay()
    jobs = args.jobs or (None if args.executor == "ray" else plan.jobs)
    executor = make_executor(
        args.executor, repo, jobs, args.address, args.num_gpus, args.allow_unsandboxed
    )
    try:
        code = Bench(repo, bench_dir, plan, display, executor).run()
    except KeyboardInterrupt:
        hint = f"harness bench --resume {plan.bench_id}"
        print(f"harness: bench interrupted; continue with `{hint}`", file=sys.stderr)
        return 130
    finally:
        executor.close()
    print(f"results: {bench_dir / 'results.jsonl'}\nreport:  harness report {bench_dir}")
    return code


def cmd_nightly(args) -> int:
    from .bench import resolve
    from .display import BenchDisplay, RichBenchDisplay
    from .executor import make_executor
    from .night_report import find_night
    from .nightly import (
        CONFIG,
        PLAN,
        Night,
        NightConfig,
        NightLock,
        NightPlan,
        dry_run,
        latest_unfinished,
        new_plan,
    )

    repo = repo_root(args.repo)
    config = NightConfig.load(Path(args.config) if args.config else repo / CONFIG)
    reports = Path(args.runs_dir) if args.runs_dir else resolve(repo, config.reports)
    agents = [a for a in (args.agents or "").split(",") if a] or None
    lock = NightLock(repo)
    if args.resume is not None:
        night_dir = find_night(reports, args.resume) if args.resume else latest_unfinished(reports)
        if night_dir is None:
            raise ConfigError(f"no night to resume under {reports}")
        plan = NightPlan.load(night_dir)
    else:
        plan = new_plan(repo, config, args.date or time.strftime("%Y-%m-%d"), agents)
        night_dir = reports / plan.night_id
        if (night_dir / PLAN).exists() and not args.dry_run:
            raise ConfigError(
                f"{night_dir} exists; continue it with `harness nightly --resume` "
                "(or name another night with --date)"
            )
    if args.executor:
        plan.executor = dict(plan.executor, kind=args.executor)
    if args.address:
        plan.executor = dict(plan.executor, address=args.address)
    if args.num_gpus:
        plan.executor = dict(plan.executor, num_gpus=args.num_gpus)
    if args.jobs:
        plan.jobs = args.jobs
    if args.dry_run:
        return dry_run(repo, plan, night_dir, lock)
    require_sandbox(args.allow_unsandboxed)  # runs and re-verification run model-written code
    lock.acquire(plan.night_id)
    executor = None
    try:
        if args.resume is None:
            plan.save(night_dir)
        ex = plan.executor
        jobs = args.jobs or (None if ex["kind"] == "ray" else plan.jobs)
        executor = make_executor(
            ex["kind"], repo, jobs, ex["address"], ex["num_gpus"], args.allow_unsandboxed
        )
        display = RichBenchDisplay() if sys.stderr.isatty() else BenchDisplay()
        night = Night(repo, night_dir, plan, display, allow_unsandboxed=args.allow_unsandboxed)
        code = night.run(executor)
    except KeyboardInterrupt:
        print(
            "harness: night interrupted; continue with `harness nightly --resume`", file=sys.stderr
        )
        return 130
    finally:
        if executor:
            executor.close()
        lock.release()
    print(f"night:  {night_dir}\nreport: {night_dir / 'report.md'}")
    return code


def cmd_report(args) -> int:
    from .report import find_results, write_report

    repo = repo_root(args.repo)
    sources = find_results(repo, args.runs)
    out = Path(args.out) if args.out else sources[0].parent / "report"
    path = write_report(sources, out)
    print(path)
    return 0


def add_executor_args(parser: argparse.ArgumentParser, default: str | None = "local"):
    parser.add_argument(
        "--executor",
        choices=["local", "ray"],
        default=default,
        help="where runs execute: child processes here (default) or tasks on a Ray cluster",
    )
    parser.add_argument(
        "--address", help="Ray cluster: auto (default) or HOST:PORT of its head (--executor ray)"
    )
    parser.add_argument(
        "--num-gpus", type=float, default=0.0, help="GPUs each run asks of a Ray node (CUDA goals)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repo", help="repository root (default: the git repo around cwd)")
    sub = parser.add_subparsers(dest="command", required=True)
    goals = sub.add_parser("goals", help="list goals from goals.yaml")
    goals.add_argument("--check", action="store_true", help="validate and report")
    goals.add_argument("--goals", help="path to goals.yaml")
    goals.add_argument("--json", action="store_true")
    run = sub.add_parser(
        "run",
        help="drive the agent to a verified change",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--goal", help="goal id (default: the goal with default: true)")
    run.add_argument("--agent", help="agent name in agents/ or path to an agent YAML")
    run.add_argument("--resume", metavar="RUN", help="continue an interrupted run")
    run.add_argument("--merge", action="store_true", help="merge the accepted branch")
    run.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    run.add_argument("--goals", help="path to goals.yaml")
    run.add_argument("--runs-dir", help="where run records go (default: <repo>/runs)")
    unsandboxed = (
        "grade even where the kernel refuses namespaces (model code then runs with only "
        "rlimits and an allow-listed environment: throwaway machines only)"
    )
    run.add_argument("--allow-unsandboxed", action="store_true", help=unsandboxed)
    bench = sub.add_parser("bench", help="run goals x agents x samples, N at a time")
    bench.add_argument("--goals", default="goals.yaml", help="goal files or dirs, comma-separated")
    bench.add_argument("--goal-ids", help="only these goals (comma-separated)")
    bench.add_argument("--agents", help="agent names, comma-separated")
    bench.add_argument("--samples", type=int, default=1, help="runs per (goal, agent)")
    bench.add_argument("--jobs", type=int, help="runs at a time (default 1)")
    bench.add_argument("--bench-id", help="name of the bench (default: a timestamp)")
    bench.add_argument("--resume", metavar="BENCH", help="continue a bench; finished runs stay")
    bench.add_argument("--runs-dir", help="where benches go (default: <repo>/runs)")
    bench.add_argument("--allow-unsandboxed", action="store_true", help=unsandboxed)
    add_executor_args(bench)
    nightly = sub.add_parser("nightly", help="run the night's goals, verify, integrate, report")
    nightly.add_argument("--config", help="nightly config (default: <repo>/nightly.yaml)")
    nightly.add_argument("--date", help="the night's date/name (default: today)")
    nightly.add_argument(
        "--resume", nargs="?", const="", metavar="NIGHT", help="continue the last or a named night"
    )
    nightly.add_argument(
        "--dry-run", action="store_true", help="print the plan; write, run and call nothing"
    )
    nightly.add_argument("--agents", help="agents for this night instead of the config's")
    nightly.add_argument("--jobs", type=int, help="runs at a time (default: the config's)")
    nightly.add_argument("--runs-dir", help="where nights go (default: the config's reports)")
    nightly.add_argument("--allow-unsandboxed", action="store_true", help=unsandboxed)
    add_executor_args(nightly, default=None)
    report = sub.add_parser("report", help="markdown + PNG report of bench results")
    report.add_argument("runs", nargs="+", metavar="RUN", help="bench dirs, ids or results.jsonl")
    report.add_argument("--out", help="output dir (default: <first bench>/report)")
    show = sub.add_parser("show", help="print a run record")
    show.add_argument("run")
    show.add_argument("--json", action="store_true")
    show.add_argument("--trajectory", action="store_true", help="print a replay trajectory")
    show.add_argument("--runs-dir")
    suite_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    make_undumpable()  # no ptrace, /proc/<pid>/mem or core dump of the process holding the key
    args = build_parser().parse_args(argv)
    handler = {
        "goals": cmd_goals,
        "run": cmd_run,
        "bench": cmd_bench,
        "nightly": cmd_nightly,
        "report": cmd_report,
        "show": cmd_show,
        "suite": suite_cli.cmd_suite,
    }[args.command]
    try:
        return handler(args)
    except ConfigError as exc:
        for message in exc.messages:
            print(f"harness: error: {message}", file=sys.stderr)
        return 2
    except SandboxUnavailable as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted; resume with `harness run --resume RUN`", file=sys.stderr)
        return 130
    except Exception as exc:  # a harness bug: short message, full trace only on request
        print(f"harness: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("HARNESS_DEBUG"):
            traceback.print_exc()
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
