"""`harness` command line: goals, run, bench, report, show.

Exit codes: 0 accepted, 1 not accepted, 2 usage/config error, 3 internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from rich.console import Console

from .config import AgentConfig, Goal, load_agent, load_goals, pick_goal
from .errors import ConfigError
from .records import RunRecord, new_run_id
from .sandbox import secret_values
from .workspace import open_repo

EXIT_INTERNAL = 3


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
        record = RunRecord.open_existing(runs_dir, args.resume, secret_values())
        goal = Goal.from_dict(json.loads((record.dir / "goal.json").read_text()))
        agent = AgentConfig.from_dict(json.loads((record.dir / "agent.json").read_text()))
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
    )
    code, summary = open_loop(settings, reporter).run()
    if args.json:
        print(json.dumps(dict(summary, exit_code=code), indent=1))
    else:
        print_summary(summary)
    return code


def cmd_show(args) -> int:
    repo = repo_root(args.repo)
    runs_dir = Path(args.runs_dir) if args.runs_dir else repo / "runs"
    record = RunRecord.open_existing(runs_dir, args.run, [])
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
    if summary:
        print_summary(summary, console)
    else:
        console.print(f"(run not finished: resume it with `harness run --resume {args.run}`)")
    return 0


def cmd_bench(args) -> int:
    from .bench import Bench, create_bench, new_plan, resume_plan
    from .display import BenchDisplay, RichBenchDisplay

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
    try:
        code = Bench(repo, bench_dir, plan, display).run()
    except KeyboardInterrupt:
        hint = f"harness bench --resume {plan.bench_id}"
        print(f"harness: bench interrupted; continue with `{hint}`", file=sys.stderr)
        return 130
    print(f"results: {bench_dir / 'results.jsonl'}\nreport:  harness report {bench_dir}")
    return code


def cmd_report(args) -> int:
    from .report import find_results, write_report

    repo = repo_root(args.repo)
    sources = find_results(repo, args.runs)
    out = Path(args.out) if args.out else sources[0].parent / "report"
    path = write_report(sources, out)
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__)
    parser.add_argument("--repo", help="repository root (default: the git repo around cwd)")
    sub = parser.add_subparsers(dest="command", required=True)
    goals = sub.add_parser("goals", help="list goals from goals.yaml")
    goals.add_argument("--check", action="store_true", help="validate and report")
    goals.add_argument("--goals", help="path to goals.yaml")
    goals.add_argument("--json", action="store_true")
    run = sub.add_parser("run", help="drive the agent to a verified change")
    run.add_argument("--goal", help="goal id (default: the goal with default: true)")
    run.add_argument("--agent", help="agent name in agents/ or path to an agent YAML")
    run.add_argument("--resume", metavar="RUN", help="continue an interrupted run")
    run.add_argument("--merge", action="store_true", help="merge the accepted branch")
    run.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    run.add_argument("--goals", help="path to goals.yaml")
    run.add_argument("--runs-dir", help="where run records go (default: <repo>/runs)")
    bench = sub.add_parser("bench", help="run goals x agents x samples, N at a time")
    bench.add_argument("--goals", default="goals.yaml", help="goal files or dirs, comma-separated")
    bench.add_argument("--goal-ids", help="only these goals (comma-separated)")
    bench.add_argument("--agents", help="agent names, comma-separated")
    bench.add_argument("--samples", type=int, default=1, help="runs per (goal, agent)")
    bench.add_argument("--jobs", type=int, help="runs at a time (default 1)")
    bench.add_argument("--bench-id", help="name of the bench (default: a timestamp)")
    bench.add_argument("--resume", metavar="BENCH", help="continue a bench; finished runs stay")
    bench.add_argument("--runs-dir", help="where benches go (default: <repo>/runs)")
    report = sub.add_parser("report", help="markdown + PNG report of bench results")
    report.add_argument("runs", nargs="+", metavar="RUN", help="bench dirs, ids or results.jsonl")
    report.add_argument("--out", help="output dir (default: <first bench>/report)")
    show = sub.add_parser("show", help="print a run record")
    show.add_argument("run")
    show.add_argument("--json", action="store_true")
    show.add_argument("--trajectory", action="store_true", help="print a replay trajectory")
    show.add_argument("--runs-dir")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {
        "goals": cmd_goals,
        "run": cmd_run,
        "bench": cmd_bench,
        "report": cmd_report,
        "show": cmd_show,
    }[args.command]
    try:
        return handler(args)
    except ConfigError as exc:
        for message in exc.messages:
            print(f"harness: error: {message}", file=sys.stderr)
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
