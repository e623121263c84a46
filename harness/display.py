"""Live progress (rich) and the final summary; a silent reporter for --json."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


class Reporter:
    """No-op reporter; the loop calls these hooks as the run progresses."""

    def start(self, run_id, goal, agent, max_attempts): ...
    def attempt(self, number): ...
    def step(self, number, limit, what): ...  # tools mode: a model turn or a tool call
    def stage(self, name, status, result=None): ...
    def usage(self, tokens, dollars): ...
    def note(self, text): ...
    def stop(self): ...


class RichReporter(Reporter):
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.live: Live | None = None
        self.started = time.monotonic()
        self.state: dict[str, Any] = {
            "attempt": 0,
            "stage": "starting",
            "tokens": 0,
            "dollars": 0.0,
        }
        self.history: list[str] = []

    def _render(self):
        s = self.state
        head = Table.grid(padding=(0, 2))
        head.add_row("goal", f"[bold]{s.get('goal', '')}[/] {s.get('title', '')}")
        head.add_row("run", s.get("run_id", ""))
        head.add_row("agent", s.get("agent", ""))
        head.add_row("attempt", f"{s['attempt']}/{s.get('max', '?')}")
        head.add_row("stage", f"[cyan]{s['stage']}[/]")
        head.add_row("elapsed", f"{time.monotonic() - self.started:.1f}s")
        head.add_row("tokens", f"{s['tokens']:,}  (${s['dollars']:.4f})")
        lines = Text("\n".join(self.history[-8:]))
        return Panel(Group(head, lines), title="ember harness", border_style="blue")

    def _refresh(self):
        if self.live:
            self.live.refresh()

    def start(self, run_id, goal, agent, max_attempts):
        self.state.update(
            run_id=run_id,
            goal=goal.id,
            title=goal.title,
            max=max_attempts,
            agent=f"{agent.name} ({agent.provider}:{agent.model})",
        )
        # get_renderable re-renders on every auto refresh, so elapsed time ticks during builds
        self.live = Live(
            console=self.console, refresh_per_second=4, transient=False, get_renderable=self._render
        )
        self.live.start()

    def attempt(self, number):
        self.state.update(attempt=number, stage="prompting model")
        self.history.append(f"attempt {number}: started")
        self._refresh()

    def step(self, number, limit, what):
        self.state["stage"] = f"step {number}/{limit}: {what}"
        self._refresh()

    def stage(self, name, status, result=None):
        self.state["stage"] = f"{name}: {status}"
        if result is not None:
            mark = "[ok]" if result.ok else "[FAIL]"
            self.history.append(f"  {mark} {name} {result.seconds:.1f}s  {result.summary}")
        self._refresh()

    def usage(self, tokens, dollars):
        self.state.update(tokens=tokens, dollars=dollars)
        self._refresh()

    def note(self, text):
        self.history.append(text)
        self._refresh()

    def stop(self):
        if self.live:
            self._refresh()
            self.live.stop()
            self.live = None


def summary_table(summary: dict) -> Table:
    table = Table(title=f"run {summary['run_id']} — {summary['outcome'].upper()}")
    for column in ("attempt", "verdict", "failed stage", "seconds", "tokens", "cost $", "note"):
        table.add_column(column)
    for row in summary["attempts"]:
        table.add_row(
            str(row["attempt"]),
            "accepted" if row["ok"] else "rejected",
            row.get("failed_stage") or "-",
            f"{row.get('seconds', 0):.1f}",
            str(row.get("tokens", 0)),
            f"{row.get('cost_usd', 0):.4f}",
            (row.get("note") or "")[:70],
        )
    return table


def print_summary(summary: dict, console: Console | None = None):
    console = console or Console()
    console.print(summary_table(summary))
    console.print(f"outcome: [bold]{summary['outcome']}[/]  reason: {summary['reason']}")
    if summary.get("branch"):
        console.print(f"branch: {summary['branch']}  commit: {summary.get('commit', '')[:12]}")
    for path in summary.get("regressions", []):
        console.print(f"regression test added: {path}")
    if summary.get("merge"):
        console.print(f"merge: {summary['merge']}")
    console.print(f"record: {summary['record']}")


# ---------------------------------------------------------------- harness bench


def bench_counts(total: int, running: int, results: list[dict]) -> str:
    accepted = sum(r["accepted"] for r in results)
    errors = sum(r["outcome"] == "error" for r in results)
    return (
        f"done {len(results)}/{total}  running {running}  accepted {accepted}  "
        f"rejected {len(results) - accepted - errors}  errors {errors}"
    )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class BenchDisplay:
    """Plain progress for logs and pipes: a line per start and finish, a heartbeat every 30 s."""

    heartbeat_s = 30.0

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, highlight=False)
        self.started_at = time.monotonic()
        self.last_beat = self.started_at
        self.total = 0

    def start(self, plan, total: int, results: list[dict]):
        self.total = total
        self.console.print(
            f"bench {plan.bench_id}: {total} runs ({len(results)} already done), "
            f"agents {', '.join(plan.agents)}, {plan.samples} sample(s), {plan.jobs} at a time"
        )

    def started(self, job, lane: int):
        self.console.print(f"  start  {job.goal} / {job.agent} #{job.sample} (lane {lane})")

    def update(self, running: list, results: list[dict]):
        now = time.monotonic()
        if now - self.last_beat >= self.heartbeat_s:
            self.last_beat = now
            doing = "; ".join(f"{p.job.run_id}: {p.status}" for p in running)
            counts = bench_counts(self.total, len(running), results)
            self.console.print(
                f"  [{_clock(now - self.started_at)}] {counts}" + (f" — {doing}" if doing else ""),
                markup=False,
                soft_wrap=True,
            )

    def finished(self, result: dict):
        verdict = "ACCEPTED" if result["accepted"] else result["outcome"]
        self.console.print(
            f"  done   {result['goal']} / {result['agent']} #{result['sample']}: {verdict} "
            f"({result['attempts']} attempt(s), {result['wall_s']:.1f}s)"
        )

    def stop(self, results: list[dict]):
        self.console.print(f"bench: {bench_counts(self.total, 0, results)}")


class RichBenchDisplay(BenchDisplay):
    """Live table: counts, every running run's attempt and stage, the latest results."""

    def __init__(self, console: Console | None = None):
        super().__init__(console)
        self.live: Live | None = None
        self.running: list = []
        self.results: list[dict] = []
        self.title = ""

    def _render(self):
        now = time.monotonic()
        table = Table(expand=True, box=None, padding=(0, 1))
        for column in ("lane", "goal", "agent", "#", "attempt", "doing", "time"):
            table.add_column(column)
        for p in sorted(self.running, key=lambda p: p.lane):
            table.add_row(
                str(p.lane),
                p.job.goal,
                p.job.agent,
                str(p.job.sample),
                str(p.attempt or "-"),
                f"[cyan]{p.status}[/]",
                _clock(now - p.started),
            )
        recent = Text()
        for r in self.results[-5:]:
            mark = "[ok]  " if r["accepted"] else "[FAIL]"
            recent.append(
                f"{mark} {r['goal']} / {r['agent']} #{r['sample']}: {r['outcome']} "
                f"({r['attempts']} attempt(s))\n",
                style="green" if r["accepted"] else "red",
            )
        head = Text(
            f"{bench_counts(self.total, len(self.running), self.results)}  "
            f"elapsed {_clock(now - self.started_at)}"
        )
        return Panel(Group(head, table, recent), title=self.title, border_style="blue")

    def start(self, plan, total: int, results: list[dict]):
        self.total, self.results = total, results
        self.title = f"harness bench {plan.bench_id} — {', '.join(plan.agents)}"
        self.live = Live(console=self.console, refresh_per_second=2, get_renderable=self._render)
        self.live.start()

    def started(self, job, lane: int): ...

    def update(self, running: list, results: list[dict]):
        self.running, self.results = running, results

    def finished(self, result: dict): ...

    def stop(self, results: list[dict]):
        self.running, self.results = [], results
        if self.live:
            self.live.stop()
            self.live = None
        super().stop(results)
