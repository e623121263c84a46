"""Regression tests grown by the harness import ember from this checkout's runtime/python and the
comparison engine (numcheck) from this checkout's root."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for entry in (ROOT, ROOT / "runtime" / "python"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))


def pytest_report_header(config):
    from numcheck.seeds import fuzzing, run_seed

    return f"numcheck: run seed {run_seed()}" + (" (EMBER_TEST_FUZZ)" if fuzzing() else "")
