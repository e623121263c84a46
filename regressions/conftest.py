"""Regression tests grown by the harness import ember from this checkout's runtime/python."""
import sys
from pathlib import Path

RUNTIME_PYTHON = Path(__file__).resolve().parents[1] / "runtime" / "python"
if str(RUNTIME_PYTHON) not in sys.path:
    sys.path.insert(0, str(RUNTIME_PYTHON))
