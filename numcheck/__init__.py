"""The one ember-vs-PyTorch comparison engine (numpy only: it imports neither ember nor torch).

Used in-process by the op tests (runtime/tests/python/optest.py) and the grown regression tests
(regressions/), and by the harness, which runs ember and the PyTorch reference in two separate
child processes (`numcheck.child`) and compares their outcomes in its own process.

- `tolerances`: one table of (rtol, atol) by dtype; integer and bool results compare exactly.
- `compare`: shape, dtype, NaN/inf positions, values; a report of the worst element.
- `seeds`: deterministic per-case seeds; `EMBER_TEST_FUZZ=1` draws fresh ones (printed for replay).
- `runner`: calls a function on a library module (`ember` or `torch`, passed in) and records its
  `Outcome` (outputs, input gradients, inputs after the call, or the exception raised);
  `compare_outcomes` judges one against the other (forward, backward, mutation, raise parity).
- `cases`: `NumericsCase`, the data form of a harness check and of a grown regression test.
"""

from .cases import NumericsCase, load_case_file
from .compare import Comparison, assert_close, compare
from .runner import Outcome, Raised, Report, compare_outcomes, run
from .seeds import case_seed, fuzzing, replay_hint, run_seed
from .tolerances import TOLERANCES, Tolerance, tolerance_for

__all__ = [
    "TOLERANCES",
    "Comparison",
    "NumericsCase",
    "Outcome",
    "Raised",
    "Report",
    "Tolerance",
    "assert_close",
    "case_seed",
    "compare",
    "compare_outcomes",
    "fuzzing",
    "load_case_file",
    "replay_hint",
    "run",
    "run_seed",
    "tolerance_for",
]
