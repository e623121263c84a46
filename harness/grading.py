"""The grading pipeline, cheap to expensive, stopping at the first failing stage."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import Goal
from .sandbox import Limits, format_command, run_command, trim
from .workspace import Workspace

NUMERICS_SCRIPT = Path(__file__).with_name("numerics_check.py")
COMPILER_ERROR = re.compile(
    r"^(?P<file>[^\s:][^:]*):(?P<line>\d+)(?::\d+)?: (?:fatal )?error: (?P<msg>.*)$"
)
LINKER_ERROR = re.compile(r"(undefined reference to .*|multiple definition of .*|CMake Error.*)")


@dataclass
class StageResult:
    name: str
    ok: bool
    seconds: float
    summary: str = ""
    feedback: str = ""
    log: str = ""  # trimmed log kept in the record
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Verdict:
    ok: bool
    stages: list
    failed_stage: str | None = None
    feedback: str = ""

    @property
    def signature(self) -> str:
        """Same failure modulo numbers (seeds, values, line counts) -> same signature."""
        stage = self.stages[-1] if self.stages else None
        basis = (
            stage.details.get("signature")
            if stage and stage.details.get("signature")
            else self.feedback
        )
        normalized = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", f"{self.failed_stage}\n{basis}")
        return hashlib.sha256(normalized.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "failed_stage": self.failed_stage,
            "feedback": self.feedback,
            "signature": self.signature,
            "stages": [s.to_dict() for s in self.stages],
        }


def compiler_feedback(log: str, limit: int = 15) -> str:
    seen: set = set()
    lines: list[str] = []
    for raw in log.splitlines():
        match = COMPILER_ERROR.match(raw.strip())
        if match:
            text = f"{os.path.basename(match['file'])}:{match['line']}: error: {match['msg']}"
            key = text
        else:
            linker = LINKER_ERROR.search(raw)
            if not linker:
                continue
            key = text = linker.group(1)
        if key not in seen:
            seen.add(key)
            lines.append(text)
    if not lines:
        return "build failed; last lines of the log:\n" + "\n".join(log.splitlines()[-25:])
    extra = f"\n(+{len(lines) - limit} more distinct errors)" if len(lines) > limit else ""
    return "distinct compiler errors:\n" + "\n".join(lines[:limit]) + extra


def test_feedback(log: str, limit: int = 25) -> str:
    picked, seen = [], set()
    lines = log.splitlines()
    for _i, line in enumerate(lines):
        keep = (
            line.startswith(("FAILED ", "ERROR ", "E   ", "E       "))
            or "[  FAILED  ]" in line
            or re.search(r"\(Failed\)|\*\*\*Failed|\*\*\*Timeout|: Failure$", line)
            or re.match(r"\s*(Expected|Which is|Value of|  Actual|Expected equality)", line)
        )
        if keep and line.strip() not in seen:
            seen.add(line.strip())
            picked.append(line.rstrip())
    if not picked:
        return "tests failed; last lines of the log:\n" + "\n".join(lines[-30:])
    return "\n".join(picked[:limit]) + (
        f"\n(+{len(picked) - limit} more lines)" if len(picked) > limit else ""
    )


def numerics_feedback(report: dict, limit: int = 8) -> str:
    if report.get("error"):
        return "numerics check could not run:\n" + report["error"][-1500:]
    failing = [c for c in report["cases"] if not c["ok"]]
    worst: dict = {}
    for case in failing:  # keep the worst case per (check, phase, dtype)
        key = (case["check"], case.get("phase"), case.get("dtype"))
        if key not in worst or (case.get("max_abs") or 0) > (worst[key].get("max_abs") or 0):
            worst[key] = case
    out = [f"{len(failing)}/{len(report['cases'])} numerics cases failed vs PyTorch:"]
    for case in list(worst.values())[:limit]:
        err = (
            f"max_abs={case['max_abs']:.3g} max_rel={case['max_rel']:.3g}"
            if case.get("max_abs") is not None
            else ""
        )
        out.append(
            f"- {case['check']} {case.get('phase')} shape={case.get('shape')} "
            f"dtype={case.get('dtype')} seed={case.get('seed')} order={case.get('order')} "
            f"(atol={case.get('atol')}, rtol={case.get('rtol')}): {err} {case.get('error', '')}"
            + ("\n  " + "\n  ".join(case["traceback"]) if case.get("traceback") else "")
        )
    return "\n".join(out)


class Grader:
    def __init__(
        self, workspace: Workspace, goal: Goal, base: str, secrets: list[str], on_stage=None
    ):
        self.ws, self.goal, self.base, self.secrets = workspace, goal, base, secrets
        self.on_stage = on_stage or (lambda name, status, result=None: None)
        lim = goal.limits
        self.limits = Limits(
            wall_s=lim.stage_timeout_s, cpu_s=lim.cpu_seconds, memory_mb=lim.memory_mb
        )

    # -- helpers
    def values(self, selector: str = "") -> dict:
        return {
            "python": sys.executable,
            "worktree": str(self.ws.worktree),
            "build_dir": str(self.ws.build_dir),
            "jobs": str(os.cpu_count() or 2),
            "selector": selector,
            "ccache_flag": "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache" if shutil.which("ccache") else "",
        }

    def env(self) -> dict:
        wt = str(self.ws.worktree)
        return {
            "PYTHONPATH": f"{wt}/runtime/python",
            "CCACHE_BASEDIR": wt,
            "CCACHE_NOHASHDIR": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def run(self, template: str, log: Path, selector: str = ""):
        argv = format_command(template, self.values(selector))
        return run_command(
            argv,
            self.ws.worktree,
            log,
            self.limits,
            self.env(),
            self.secrets,
            pgid_file=self.ws.pgid_file,
        )

    def _stage(self, name: str, body) -> StageResult:
        self.on_stage(name, "running")
        start = time.monotonic()
        result = body()
        result.seconds = round(time.monotonic() - start, 3)
        self.on_stage(name, "passed" if result.ok else "failed", result)
        return result

    # -- stages
    def stage_protected(self, name="protected") -> StageResult:
        problems = self.ws.protected_violations(self.base, self.goal.all_protected)
        return StageResult(
            name,
            not problems,
            0.0,
            summary="protected paths intact"
            if not problems
            else f"{len(problems)} protected path(s) changed",
            feedback="protected paths changed (never allowed):\n" + "\n".join(problems)
            if problems
            else "",
        )

    def stage_build(self, logs: Path) -> StageResult:
        commands = self.goal.commands
        marker = self.ws.build_dir / ".harness-configured"
        outputs = []
        if not marker.exists() or marker.read_text() != commands.configure:
            res = self.run(commands.configure, logs / "configure.log")
            outputs.append(res.output)
            if not res.ok:
                return self._failed_command(
                    "build", res, compiler_feedback(res.output), "configure"
                )
            marker.write_text(commands.configure)
        res = self.run(commands.build, logs / "build.log")
        outputs.append(res.output)
        if not res.ok:
            return self._failed_command("build", res, compiler_feedback(res.output), "build")
        return StageResult("build", True, 0.0, summary="built", log=trim("\n".join(outputs)))

    def _failed_command(self, stage, res, feedback, what) -> StageResult:
        if res.timed_out:
            feedback = (
                f"{what} timed out after {self.limits.wall_s:.0f}s; the whole process "
                "group was killed.\n" + "\n".join(res.output.splitlines()[-15:])
            )
        return StageResult(
            stage,
            False,
            0.0,
            summary=f"{what} failed (exit {res.returncode}{', timeout' if res.timed_out else ''})",
            feedback=feedback,
            log=trim(res.output),
            details={"timed_out": res.timed_out, "returncode": res.returncode},
        )

    def stage_tests(self, name: str, template: str, selectors: list, logs: Path) -> StageResult:
        outputs, failures = [], []
        for i, selector in enumerate(selectors):
            res = self.run(template, logs / f"{name}-{i}.log", selector)
            outputs.append(res.output)
            if not res.ok:
                failures.append((selector, res))
        if failures:
            selector, res = failures[0]
            if res.timed_out:
                return self._failed_command(name, res, "", f"{name} {selector!r}")
            return StageResult(
                name,
                False,
                0.0,
                summary=f"{len(failures)}/{len(selectors)} selectors failed",
                feedback="\n".join(
                    f"selector {s!r} failed:\n{test_feedback(r.output)}" for s, r in failures
                ),
                log=trim("\n".join(outputs)),
                details={"failed_selectors": [s for s, _ in failures]},
            )
        return StageResult(
            name,
            True,
            0.0,
            summary=f"{len(selectors)} selector(s) passed",
            log=trim("\n".join(outputs)),
        )

    def stage_numerics(self, logs: Path) -> StageResult:
        rng = random.SystemRandom()  # fresh inputs every attempt; the seeds are recorded
        checks = []
        for check in self.goal.acceptance.numerics:
            checks.append(
                dict(
                    asdict(check), seed_values=[rng.randrange(1, 2**31) for _ in range(check.seeds)]
                )
            )
        spec_path, result_path = logs / "numerics_spec.json", logs / "numerics_result.json"
        spec_path.write_text(json.dumps({"checks": checks}, indent=1))
        template = f"{{python}} {NUMERICS_SCRIPT} {spec_path} {result_path}"
        res = self.run(template, logs / "numerics.log")
        try:
            report = json.loads(result_path.read_text())
        except (OSError, ValueError):
            report = {
                "ok": False,
                "cases": [],
                "error": "numerics child produced no report:\n"
                + "\n".join(res.output.splitlines()[-20:]),
            }
        if res.timed_out:
            report = {
                "ok": False,
                "cases": report.get("cases", []),
                "error": f"numerics timed out after {self.limits.wall_s:.0f}s",
            }
        ok = res.ok and report.get("ok", False)
        cases = report.get("cases", [])
        worst_abs = max((c.get("max_abs") or 0.0 for c in cases), default=0.0)
        worst_rel = max((c.get("max_rel") or 0.0 for c in cases), default=0.0)
        return StageResult(
            "numerics",
            ok,
            0.0,
            summary=f"{sum(c['ok'] for c in cases)}/{len(cases)} cases ok; "
            f"max_abs={worst_abs:.3g} max_rel={worst_rel:.3g}",
            feedback="" if ok else numerics_feedback(report),
            log=trim(res.output),
            details={
                "failing_cases": [c for c in cases if not c["ok"]][:50],
                # seeds differ per attempt: identify a failure by what failed
                "signature": sorted(
                    {
                        f"{c.get('check')}|{c.get('phase')}|"
                        f"{c.get('dtype')}|{c.get('error', '')[:40]}"
                        for c in cases
                        if not c["ok"]
                    }
                ),
                "max_abs": worst_abs,
                "max_rel": worst_rel,
                "cases": len(cases),
            },
        )

    def stage_regression(self, logs: Path) -> StageResult:
        res = self.run(self.goal.commands.regression, logs / "regression.log")
        if res.returncode == 5 and not res.timed_out:  # pytest: nothing collected yet
            return StageResult(
                "regression", True, 0.0, summary="no regression tests yet", log=trim(res.output)
            )
        if not res.ok:
            return self._failed_command(
                "regression", res, test_feedback(res.output), "regression suite"
            )
        return StageResult(
            "regression", True, 0.0, summary="regression suite passed", log=trim(res.output)
        )

    def grade(self, logs: Path) -> Verdict:
        logs.mkdir(parents=True, exist_ok=True)
        acc = self.goal.acceptance
        plan: list[tuple[str, Callable[[], StageResult]]] = [("protected", self.stage_protected)]
        if acc.build:
            plan.append(("build", lambda: self.stage_build(logs)))
        if acc.cpp_tests:
            plan.append(
                (
                    "cpp_tests",
                    lambda: self.stage_tests(
                        "cpp_tests", self.goal.commands.cpp_test, acc.cpp_tests, logs
                    ),
                )
            )
        if acc.pytest:
            plan.append(
                (
                    "pytest",
                    lambda: self.stage_tests("pytest", self.goal.commands.pytest, acc.pytest, logs),
                )
            )
        if acc.numerics:
            plan.append(("numerics", lambda: self.stage_numerics(logs)))
        if acc.regression_suite:
            plan.append(("regression", lambda: self.stage_regression(logs)))
        plan.append(("protected_after", lambda: self.stage_protected("protected_after")))
        stages = []
        for name, body in plan:
            result = self._stage(name, body)
            stages.append(result)
            (logs / f"{name}.stage.log").write_text(result.log or result.summary)
            if not result.ok:
                return Verdict(
                    False, stages, name, f"[stage {name}] {result.summary}\n{result.feedback}"
                )
        return Verdict(True, stages)
