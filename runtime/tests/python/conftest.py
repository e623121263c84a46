import os
import sys

# Tests run against the in-tree package (built with EMBER_PYTHON_OUT) or an installed one.
_here = os.path.dirname(os.path.abspath(__file__))
_pkg = os.path.abspath(os.path.join(_here, "..", "..", "python"))
if _pkg not in sys.path:
    sys.path.insert(0, _pkg)
sys.path.insert(0, _here)
_root = os.path.abspath(os.path.join(_here, "..", "..", ".."))  # the comparison engine, numcheck/
if _root not in sys.path:
    sys.path.append(_root)

from numcheck.pytest_hooks import pytest_report_header, pytest_terminal_summary  # noqa: E402,F401
from numcheck.seeds import fuzzing  # noqa: E402

try:  # property tests: the same examples every run, fresh ones under EMBER_TEST_FUZZ
    from hypothesis import settings
except ImportError:
    settings = None
if settings is not None:
    settings.register_profile("ember", derandomize=not fuzzing())
    settings.load_profile("ember")
