"""pytest hooks that show the run seed (conftests import them): in the header, and after the
results when fuzzing, so a failing fuzz run can be replayed with EMBER_TEST_SEED."""

from __future__ import annotations

from .seeds import SEED_ENV, fuzzing, run_seed


def pytest_report_header(config) -> str:
    return f"numcheck: run seed {run_seed()}" + (
        f" (fuzzing; replay: {SEED_ENV}={run_seed()})" if fuzzing() else ""
    )


def pytest_terminal_summary(terminalreporter) -> None:
    if fuzzing():
        terminalreporter.write_line(
            f"numcheck: fuzzed with run seed {run_seed()}; replay: {SEED_ENV}={run_seed()}"
        )
