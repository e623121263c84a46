"""Regression tests grown by the harness import ember from this checkout's runtime/python and the
comparison engine (numcheck) from this checkout's root."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for entry in (ROOT, ROOT / "runtime" / "python"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from numcheck.pytest_hooks import pytest_report_header, pytest_terminal_summary  # noqa: E402,F401
