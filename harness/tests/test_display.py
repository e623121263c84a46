"""The live display renders goal, attempt n/N, stage, elapsed and tokens; the summary table."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from harness.display import RichReporter, print_summary


def test_live_display_and_summary():
    out = io.StringIO()
    reporter = RichReporter(Console(file=out, force_terminal=True, width=100))
    goal = SimpleNamespace(id="g1", title="Title")
    agent = SimpleNamespace(name="a", provider="openai", model="m")
    reporter.start("run-1", goal, agent, 3)
    reporter.attempt(2)
    reporter.stage("numerics", "failed", SimpleNamespace(ok=False, seconds=1.5, summary="bad"))
    reporter.usage(1234, 0.5)
    reporter.stop()
    text = out.getvalue()
    for needle in ("g1", "2/3", "numerics: failed", "1,234", "elapsed", "[FAIL] numerics"):
        assert needle in text, needle
    out = io.StringIO()
    print_summary(
        {
            "run_id": "r",
            "outcome": "accepted",
            "reason": "ok",
            "record": "runs/r",
            "attempts": [{"attempt": 1, "ok": True, "seconds": 2.0}],
            "branch": "harness/g/r",
            "commit": "abc",
            "regressions": ["regressions/t.py"],
        },
        Console(file=out, width=120),
    )
    assert "harness/g/r" in out.getvalue() and "regressions/t.py" in out.getvalue()
