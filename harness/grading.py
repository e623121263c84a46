"""The grading pipeline, cheap to expensive, stopping at the first failing stage."""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import shutil
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from numcheck.cases import CaseFile
from numcheck.wire import WireError

from . import numerics
from .config import Goal
from .numerics import CaseResult, ReferenceFailure, ReferenceServer, SplitCheck
from .performance import time_check
from .sandbox import Limits, format_command, run_command, trim
from .workspace import Workspace

REGRESSION_CASES = "regressions/cases"
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
    def flagged(self) -> bool:
        """A result a human must look at before anything is accepted (an implausible speedup)."""
        return any(s.details.get("flagged_for_human") for s in self.stages)

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
            "flagged_for_human": self.flagged,
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
        self._reference: ReferenceServer | None = None

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
        return self.run_argv(format_command(template, self.values(selector)), log)

    def run_argv(self, argv: list[str], log: Path):
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

    # -- numerics, regressions and performance: the split pipeline (harness/numerics.py)
    def split(self, logs: Path) -> SplitCheck:
        if self._reference is None:
            self._reference = ReferenceServer(logs / "reference.log", self.limits.wall_s)
        rng = random.SystemRandom()  # draws no one can predict; the seeds are recorded
        return SplitCheck(
            self._reference,
            lambda payload, tag: self._run_ember_child(payload, logs / f"{tag}.log"),
            lambda: rng.randrange(1, 2**31),
        )

    def close(self) -> None:
        if self._reference is not None:
            self._reference.close()
            self._reference = None

    def _run_ember_child(self, payload: bytes, log: Path, runtime: Path | None = None) -> bytes:
        """Run one request in the sandboxed ember child; the raw outcome bytes it wrote."""
        io_dir = numerics.prepare_io_dir(self.ws.build_dir / "numerics-io")
        request, output = io_dir / "request.npz", io_dir / "outcomes.npz"
        request.write_bytes(payload)
        argv = numerics.child_command(
            "ember",
            "--request",
            str(request),
            "--output",
            str(output),
            path=[str(runtime or self.ws.worktree / "runtime" / "python")],
            script=io_dir / "numcheck" / "child.py",
        )
        res = self.run_argv(argv, log)
        tail = "\n".join(res.output.splitlines()[-20:])
        if res.timed_out:
            raise WireError(f"the ember child timed out after {self.limits.wall_s:.0f}s:\n{tail}")
        if res.returncode != 0:
            raise WireError(f"the ember child exited with status {res.returncode}:\n{tail}")
        try:
            return numerics.read_child_file(output)
        except WireError as exc:
            raise WireError(
                f"the ember child exited 0 without writing its outcomes ({exc}):\n{tail}"
            ) from None

    def _split_stage(self, name: str, results: list[CaseResult], logs: Path) -> StageResult:
        numerics.record(results, logs / f"{name}_cases.json")
        info = numerics.summary(results)
        ok = all(r.ok for r in results)
        rows = [row for r in results if not r.ok for row in r.rows()]
        return StageResult(
            name,
            ok,
            0.0,
            summary=f"{info['passed']}/{info['cases']} cases ok over {info['draws']} draw(s); "
            f"max_abs={info['max_abs']:.3g} max_rel={info['max_rel']:.3g}",
            feedback="" if ok else numerics.feedback(results),
            details={
                "failing_cases": rows[:50],
                # seeds differ per attempt: identify a failure by what failed
                "signature": sorted(
                    {f"{r['check']}|{r['phase']}|{r['dtype']}|{r['error'][:40]}" for r in rows}
                ),
                **info,
            },
        )

    def _reference_failed(self, name: str, exc: ReferenceFailure) -> StageResult:
        return StageResult(
            name,
            False,
            0.0,
            summary="the PyTorch reference failed (a goal or harness problem)",
            feedback=f"{name} could not be checked: {exc}",
            details={"reference_failed": True},
        )

    def stage_numerics(self, logs: Path) -> StageResult:
        cases = numerics.numerics_cases(self.goal.acceptance.numerics)
        try:
            results = self.split(logs).check(cases, "numerics", recorded_seeds=False)
        except ReferenceFailure as exc:
            return self._reference_failed("numerics", exc)
        return self._split_stage("numerics", results, logs)

    def regression_files(self) -> list[tuple[str, CaseFile]]:
        """regressions/cases/*.json as committed at the base (the worktree's copy could be changed
        by the code under test before this stage runs)."""
        try:
            folder = self.ws.repo.commit(self.base).tree / REGRESSION_CASES
        except KeyError:
            return []
        files = []
        for blob in sorted(folder.blobs, key=lambda b: b.name):
            if blob.name.endswith(".json"):
                rel = f"{REGRESSION_CASES}/{blob.name}"
                files.append((rel, CaseFile.from_json(blob.data_stream.read().decode(), rel)))
        return files

    def stage_regression(self, logs: Path) -> StageResult:
        try:
            files = self.regression_files()
        except ValueError as exc:
            return StageResult(
                "regression",
                False,
                0.0,
                summary="malformed regression case file",
                feedback=str(exc),
            )
        cases = [case for _, f in files for case in f.cases]
        selectors = [s for _, f in files for s in f.selectors]
        try:
            results = self.split(logs).check(cases, "regression", recorded_seeds=True)
        except ReferenceFailure as exc:
            return self._reference_failed("regression", exc)
        stage = self._split_stage("regression", results, logs)
        if stage.ok and selectors:
            stage = self.stage_tests("regression", self.goal.commands.pytest, selectors, logs)
        if stage.ok and self.goal.commands.regression.strip():
            res = self.run(self.goal.commands.regression, logs / "regression.log")
            if not res.ok:
                return self._failed_command(
                    "regression", res, test_feedback(res.output), "regression command"
                )
        if stage.ok:
            stage.summary = (
                f"{len(cases)} regression case(s) from {len(files)} file(s) ok on their recorded "
                f"and a fresh draw; {len(selectors)} selector(s)"
            )
        return stage

    def verify_regression(self, case_file: CaseFile, logs: Path) -> tuple[bool, str]:
        """Does a freshly grown regression pass on the accepted change? (ok, why not)"""
        try:
            results = self.split(logs).check(case_file.cases, "regrow", recorded_seeds=True)
        except ReferenceFailure as exc:
            return False, str(exc)
        if not all(r.ok for r in results):
            return False, numerics.feedback(results)
        if case_file.selectors:
            stage = self.stage_tests("regrow", self.goal.commands.pytest, case_file.selectors, logs)
            if not stage.ok:
                return False, stage.feedback
        return True, ""

    def _base_runtime(self) -> Path:
        """The base commit's runtime/python, with the main checkout's built extension."""
        target = self.ws.build_dir / "perf-base"
        if target.is_symlink() or target.is_file():
            target.unlink()
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        data = self.ws.repo.git.archive(self.base, "runtime/python", stdout_as_string=False)
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            archive.extractall(target, filter="data")
        for built in (self.ws.root / "runtime/python/ember").glob("_C*.so"):
            shutil.copy2(built, target / "runtime/python/ember" / built.name)
        return target / "runtime/python"

    def stage_performance(self, logs: Path) -> StageResult:
        split = self.split(logs)
        checks = self.goal.acceptance.performance
        base_runtime = self._base_runtime() if any(c.baseline == "base" for c in checks) else None

        def run_base(payload: bytes, tag: str) -> bytes:
            return self._run_ember_child(payload, logs / f"{tag}.log", base_runtime)

        timings = []
        try:
            for check in checks:
                timing, _ = time_check(check, split, run_base if base_runtime else None)
                timings.append(timing)
        except ReferenceFailure as exc:
            return self._reference_failed("performance", exc)
        ok = all(t.ok for t in timings)
        flagged = any(t.flagged for t in timings)
        return StageResult(
            "performance",
            ok,
            0.0,
            summary=("FLAGGED for human review: " if flagged else "")
            + "; ".join(
                f"{t.name} {t.speedup:.2f}x" if t.speedup else f"{t.name} failed" for t in timings
            ),
            feedback="" if ok else "performance:\n" + "\n".join(f"- {t.message}" for t in timings),
            details={"timings": [t.to_dict() for t in timings], "flagged_for_human": flagged},
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
        if acc.performance:
            plan.append(("performance", lambda: self.stage_performance(logs)))
        plan.append(("protected_after", lambda: self.stage_protected("protected_after")))
        stages = []
        try:
            for name, body in plan:
                result = self._stage(name, body)
                stages.append(result)
                (logs / f"{name}.stage.log").write_text(result.log or result.summary)
                if not result.ok:
                    return Verdict(
                        False, stages, name, f"[stage {name}] {result.summary}\n{result.feedback}"
                    )
        finally:
            self.close()
        return Verdict(True, stages)
