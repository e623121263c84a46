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
