"""Performance acceptance: ember's median time on fresh inputs against torch's or the base's.

Every timed call gets inputs drawn by the harness for that call only, and its output is checked
against PyTorch's with the shared engine, so a fast wrong answer or a replayed one fails. The times
are medians; ember runs alone (not while the reference computes). A speedup above `max_speedup`
(10x by default, KernelBench's rule) is not accepted but flagged for a human: it is more often a
measurement that was gamed or broken than a real win.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass

from numcheck.cases import NumericsCase
from numcheck.wire import CaseRequest, Request, WireError, dump_request, load_outcomes

from .config import PerformanceCheck
from .numerics import CaseResult, SplitCheck


@dataclass
class Timing:
    name: str
    baseline: str
    ember_s: float | None
    baseline_s: float | None
    speedup: float | None
    ok: bool
    flagged: bool
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


def timing_cases(check: PerformanceCheck) -> list[NumericsCase]:
    case = NumericsCase(
        check.name,
        check.ember,
        check.torch,
        list(check.shape),
        check.dtype,
        seed=0,
        num_inputs=check.num_inputs,
        input_range=list(check.input_range),
        backward=False,
    )
    return [case] * (check.warmup + check.repeats)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def time_check(
    check: PerformanceCheck,
    split: SplitCheck,
    run_base: Callable[[bytes, str], bytes] | None,
) -> tuple[Timing, list[CaseResult]]:
    """Time one check; run_base runs a request on the base commit's ember (baseline: base)."""
    cases = timing_cases(check)
    seeds = [split.fresh_seed() for _ in cases]
    results = split.draw(
        cases, seeds, 1, f"perf-{check.name}", concurrent=False, record_inputs=False
    )
    where = f"{check.name} shape={check.shape} dtype={check.dtype}"

    def timing(ok=False, flagged=False, message="", ember_s=None, baseline_s=None, speedup=None):
        return Timing(
            check.name, check.baseline, ember_s, baseline_s, speedup, ok, flagged, message
        )

    wrong = [r for r in results if not r.ok]
    if wrong:
        first = next(c for c in wrong[0].comparisons if not c.ok)
        return timing(
            message=f"{where}: {len(wrong)}/{len(results)} timed calls were wrong: {first.message}"
        ), results
    timed = results[check.warmup :]
    ember_s = statistics.median(r.ember.seconds or 0.0 for r in timed if r.ember)
    if check.baseline == "torch":
        baseline_s = statistics.median(r.torch.seconds or 0.0 for r in timed if r.torch)
    else:
        assert run_base is not None
        request = Request(
            [
                CaseRequest(c.ember, c.dtype, c.inputs(s), record_inputs=False)
                for c, s in zip(cases, seeds, strict=True)
            ]
        )
        try:
            base = load_outcomes(
                run_base(dump_request(request), f"perf-{check.name}-base"), len(cases)
            )
        except WireError as exc:
            return timing(
                message=f"{where}: the base commit's ember could not be timed: {exc}"
            ), results
        raised = next((o.raised for o in base if o.raised), None)
        if raised:
            return timing(
                message=f"{where}: the base commit's ember raised {raised.describe()}"
            ), results
        baseline_s = statistics.median(o.seconds or 0.0 for o in base[check.warmup :])
    speedup = baseline_s / ember_s if ember_s > 0 else float("inf")
    measured = (
        f"{where}: ember {_ms(ember_s)} vs {check.baseline} {_ms(baseline_s)} "
        f"(median of {check.repeats} calls on fresh inputs): speedup {speedup:.2f}x"
    )
    if speedup > check.max_speedup:
        message = (
            f"{measured} exceeds the {check.max_speedup:g}x plausibility limit: flagged for a "
            "human to review; not accepted"
        )
        return timing(False, True, message, ember_s, baseline_s, speedup), results
    if speedup < check.min_speedup:
        message = f"{measured}, needs at least {check.min_speedup:g}x"
        return timing(False, False, message, ember_s, baseline_s, speedup), results
    return timing(True, False, measured, ember_s, baseline_s, speedup), results
