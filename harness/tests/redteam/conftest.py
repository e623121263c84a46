"""Print the red-team table (case, mechanism, stage per attempt, result) after the run."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter):
    from harness.tests.redteam.fixtures import RESULTS

    if not RESULTS:
        return
    terminalreporter.section("red team")
    width = max(len(name) for name, *_ in RESULTS)
    for name, mechanism, stages, result in RESULTS:
        terminalreporter.write_line(f"{name:<{width}}  {result:<8}  {stages:<22}  {mechanism}")
