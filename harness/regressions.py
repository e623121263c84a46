"""Regression growth: a failure that a later attempt fixed becomes regressions/cases/*.json.

A grown file is data (numcheck.cases.CaseFile): the failing cases exactly as graded (ember and
torch expressions, shape, dtype, the seed of the failing draw, tolerance) plus provenance, or the
pytest selectors that failed. `make test` runs it in-process (regressions/test_cases.py); the
grader's regression stage runs it through the split pipeline like the numerics stage.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from numcheck.cases import CaseFile, NumericsCase

MAX_CASES = 4


@dataclass
class Candidate:
    """What of a failed attempt can become a regression test (kept in the attempt's event)."""

    kind: str  # "numerics" or "pytest"
    attempt: int
    cases: list[dict] = field(default_factory=list)  # NumericsCase dicts, seeds of the failing draw
    selectors: list[str] = field(default_factory=list)
    failure: str = ""


def slug(text: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


def candidates_from_stage(stage: dict, attempt: int) -> dict | None:
    """The regression candidate of a failed stage (a JSON-able dict), or None. Never raises: rows
    that do not carry a complete case (a stage that failed before any case ran) are skipped."""
    name, details = stage.get("name"), stage.get("details") or {}
    if name == "numerics":
        picked, seen = [], set()
        for row in details.get("failing_cases") or []:
            try:
                case = NumericsCase.from_dict(row["case"])
            except (KeyError, TypeError, ValueError):
                continue
            key = (case.name, tuple(case.shape), case.dtype)
            if key in seen:
                continue
            seen.add(key)
            case.note = str(row.get("error", ""))[:300]
            picked.append(case.to_dict())
        if not picked:
            return None
        failure = f"numerics: {str(details.get('failing_cases', [{}])[0].get('error', ''))[:120]}"
        return asdict(Candidate("numerics", attempt, picked[:MAX_CASES], failure=failure))
    if name == "pytest":
        selectors = [s for s in details.get("failed_selectors") or [] if isinstance(s, str)]
        if selectors:
            return asdict(
                Candidate("pytest", attempt, selectors=selectors, failure="pytest selector failed")
            )
    return None


def case_file(
    candidate: dict, goal_id: str, run_id: str, accepted_attempt: int, model: str
) -> CaseFile | None:
    """The file a candidate grows into; None if it holds nothing usable."""
    cases = []
    for data in candidate.get("cases") or []:
        try:
            cases.append(NumericsCase.from_dict(data))
        except (TypeError, ValueError):
            continue
    selectors = [s for s in candidate.get("selectors") or [] if isinstance(s, str)]
    if not cases and not selectors:
        return None
    provenance = {
        "goal": goal_id,
        "run": run_id,
        "failed_attempt": candidate.get("attempt"),
        "accepted_attempt": accepted_attempt,
        "model": model,
        "failure": str(candidate.get("failure", ""))[:300],
    }
    return CaseFile(provenance, cases, selectors)


def regression_path(worktree: Path, goal_id: str, run_id: str, attempt) -> Path:
    return (
        Path(worktree) / "regressions" / "cases" / f"{slug(f'{goal_id}_{run_id}_a{attempt}')}.json"
    )


def write_regression(worktree: Path, grown: CaseFile, goal_id: str, run_id: str) -> Path:
    path = regression_path(worktree, goal_id, run_id, grown.provenance.get("failed_attempt"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(grown.to_json())
    return path
