"""The grading pipeline, cheap to expensive, stopping at the first failing stage."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import shutil
import stat
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from numcheck.cases import CaseFile
from numcheck.child import TORCH_MODULES
from numcheck.wire import WireError

from . import numerics
from .config import CCACHE_FLAGS, Goal
from .edits import matches_any
from .numerics import CaseResult, ReferenceFailure, ReferenceServer, SplitCheck
from .performance import time_check
from .sandbox import CommandResult, Limits, format_command, run_command, trim
from .secrets import SecretSet
from .tree import EXECUTABLE, Policy, TreeState
from .workspace import BUILD_DEFINING, Workspace

REGRESSION_CASES = "regressions/cases"
COMPILER_ERROR = re.compile(
    r"^(?P<file>[^\s:][^:]*):(?P<line>\d+)(?::\d+)?: (?:fatal )?error: (?P<msg>.*)$"
)
LINKER_ERROR = re.compile(r"(undefined reference to .*|multiple definition of .*|CMake Error.*)")
# Directories the children get on PYTHONPATH: a new top-level module there is refused.
IMPORT_ROOTS = ["runtime/python"]
PYTEST_SUMMARY = re.compile(
    r"^=*\s*(?P<body>(?:\d+ (?:passed|failed|errors?|skipped|xfailed|xpassed|deselected|"
    r"warnings?|rerun)(?:, )?)+) in [\d.]+s\b",
    re.MULTILINE,
)
CTEST_SUMMARY = re.compile(r"\d+% tests passed, \d+ tests? failed out of \d+")
REPORT_LIMIT = 50_000_000


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
    tree: TreeState | None = None  # exactly what was graded (what gets committed)
    baseline_seconds: float = 0.0  # time spent recording the base commit's test outcomes

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
            "graded_paths": self.tree.paths if self.tree else [],
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


@dataclass
class TestRun:
    """One test command's outcome, read from its JUnit report and its closing summary."""

    result: CommandResult
    outcomes: dict[str, str]  # test id -> passed | failed | error | skipped
    problems: list[str]  # integrity problems (no summary, tests missing, ...)
    extra: dict = field(default_factory=dict)  # ctest: gtest id -> completed run seen

    @property
    def ok(self) -> bool:
        return self.result.ok and not self.problems


def read_report(path: Path) -> bytes | None:
    """A file sandboxed code wrote: a regular file only (never through a symlink), bounded."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > REPORT_LIMIT:
            return None
        return handle.read(REPORT_LIMIT)


def _parse_xml(path: Path) -> ElementTree.Element | None:
    data = read_report(path)
    try:
        return ElementTree.fromstring(data) if data else None
    except ElementTree.ParseError:
        return None


def read_junit(path: Path) -> dict[str, str] | None:
    """test id -> outcome from a JUnit XML file (pytest or ctest), the worst outcome per id."""
    root = _parse_xml(path)
    if root is None:
        return None
    rank = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
    outcomes: dict[str, str] = {}
    for case in root.iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        if case.get("status") in ("notrun", "disabled"):
            outcome = "skipped"
        elif case.get("status") == "fail":
            outcome = "failed"
        for child in case:
            tag = {"failure": "failed", "error": "error", "skipped": "skipped"}.get(child.tag)
            if tag and rank[tag] > rank[outcome]:
                outcome = tag
        if rank[outcome] >= rank.get(outcomes.get(test_id, "passed"), 0):
            outcomes[test_id] = outcome
    return outcomes


def gtest_runs(directory: Path) -> set[str]:
    """`Suite.Name` of every gtest case that ran to completion without failure (GTEST_OUTPUT).

    A test listing (--gtest_list_tests) writes cases without a status: those do not count.
    """
    done = set()
    for path in sorted(directory.glob("*.xml")):
        root = _parse_xml(path)
        for case in root.iter("testcase") if root is not None else []:
            completed = (
                case.get("status") == "run" and case.get("result", "completed") == "completed"
            )
            if completed and not any(child.tag in ("failure", "error") for child in case):
                done.add(f"{case.get('classname')}.{case.get('name')}")
    return done


def _holds(path: Path, data: bytes, mode: int) -> bool:
    """Is `path` a regular file (not a link) with exactly this content and permission bits?"""
    try:
        st = path.lstat()
        return (
            stat.S_ISREG(st.st_mode)
            and stat.S_IMODE(st.st_mode) == mode
            and (st.st_size == len(data) and path.read_bytes() == data)
        )
    except OSError:
        return False


class Grader:
    def __init__(
        self,
        workspace: Workspace,
        goal: Goal,
        base: str,
        secrets: SecretSet | list[str],
        on_stage=None,
        allow_unsandboxed: bool = False,
        graded_base: str | None = None,
        reference_base: str | None = None,
    ):
        self.ws, self.goal, self.base = workspace, goal, base
        self.secrets = secrets if isinstance(secrets, SecretSet) else SecretSet(list(secrets))
        # base + the goal's hidden tests (harness/goal_base.py): written in after `protected`;
        # the base's test outcomes and every later tree check are taken against it
        self.graded_base = graded_base
        # graded (or base) + the goal's reference solution: the outcomes an attempt is held to
        self.reference_base = reference_base
        self.on_stage = on_stage or (lambda name, status, result=None: None)
        lim = goal.limits
        self.limits = Limits(
            wall_s=lim.stage_timeout_s, cpu_s=lim.cpu_seconds, memory_mb=lim.memory_mb
        )
        self.allow_unsandboxed = allow_unsandboxed or lim.allow_unsandboxed
        self.policy = Policy(goal.scope, goal.all_protected, IMPORT_ROOTS)
        self.tree: TreeState | None = None  # the attempt's change against `base` (committed)
        self.expected: TreeState | None = None  # what the worktree must hold during stages
        self.baseline: dict[str, dict] = {}
        self.redactions = 0  # secrets scrubbed from command output during the current stage
        self._reference: ReferenceServer | None = None

    # -- helpers
    def values(self, selector: str = "") -> dict:
        return {
            "python": sys.executable,
            "worktree": str(self.ws.worktree),
            "build_dir": str(self.ws.build_dir),
            "jobs": str(os.cpu_count() or 2),
            "selector": selector,
            "ccache_flag": CCACHE_FLAGS if shutil.which("ccache") else "",
        }

    def env(self) -> dict:
        wt = str(self.ws.worktree)
        return {
            "PYTHONPATH": f"{wt}/runtime/python",
            "PYTHONSAFEPATH": "1",  # no script dir / cwd on sys.path
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # no plugins from entry points
            "PYTHONDONTWRITEBYTECODE": "1",
            **self.ws.compiler_cache_env(),
        }

    def _command(self, argv, log, env, sandbox) -> CommandResult:
        res = run_command(
            argv,
            self.ws.worktree,
            log,
            self.limits,
            env,
            self.secrets,
            pgid_file=self.ws.pgid_file,
            sandbox=sandbox,
        )
        self.redactions += res.redactions
        return res

    def run(
        self,
        template: str,
        log: Path,
        selector: str = "",
        stage: str = "",
        extra_argv: tuple = (),
        env: dict | None = None,
        readable: list | None = None,
        writable: list | None = None,
    ) -> CommandResult:
        argv = format_command(template, self.values(selector)) + list(extra_argv)
        sandbox = self.ws.sandbox(
            stage, self.allow_unsandboxed, readable=readable or [], writable=writable or []
        )
        return self._command(argv, log, {**self.env(), **(env or {})}, sandbox)

    def _stage(self, name: str, body) -> StageResult:
        self.on_stage(name, "running")
        start, self.redactions = time.monotonic(), 0
        result = body()
        if result.ok and name != "protected":
            result = self._integrity(result)
        result.seconds = round(time.monotonic() - start, 3)
        if self.redactions:  # flagged: the loop records a secret_redacted event
            result.details["secrets_redacted"] = self.redactions
        self.on_stage(name, "passed" if result.ok else "failed", result)
        return result

    def check(self, name: str, body: Callable[[], StageResult]) -> StageResult:
        """One stage on the tree as it is now, outside `grade` (the tools agent's `run`): the
        same policy, sandbox and after-stage integrity check as in grading."""
        self.tree, problems = self.ws.snapshot(self.base, self.policy)
        self.expected = self.tree
        if problems:
            return StageResult(
                name,
                False,
                0.0,
                summary=f"{len(problems)} change(s) refused; nothing was run",
                feedback="changes that are never accepted:\n" + "\n".join(problems[:40]),
            )
        return self._stage(name, body)

    def _integrity(self, result: StageResult) -> StageResult:
        """After a stage: the graded tree and the build outputs must be as they were."""
        assert self.expected is not None
        problems = [f"worktree: {p}" for p in self.ws.drift(self.expected)]
        if result.name != "build":
            problems += self.ws.outputs_changed()
        if not problems:
            return result
        self.ws.mark_untrusted()
        return StageResult(
            result.name,
            False,
            0.0,
            summary=f"the {result.name} stage changed {len(problems)} file(s) it may not change",
            feedback=f"code run by the {result.name} stage modified files (never allowed; the "
            "graded tree and the build outputs must stay as they were):\n"
            + "\n".join(problems[:30]),
            log=result.log,
            details={"tampered": problems[:200]},
        )

    # -- stages
    def stage_protected(self, name="protected") -> StageResult:
        """The tree on disk against the base: every change must be a text file in scope."""
        if name == "protected_after" and self.expected is not None:
            problems = [
                f"{p}: changed after the edits were applied" for p in self.ws.drift(self.expected)
            ]
            problems += self.ws.outputs_changed()
        else:
            self.tree, problems = self.ws.snapshot(self.base, self.policy)
            self.expected = self.tree
            problems += [  # a secret in the change would reach a branch (Note [secret handling])
                f"{path}: contains a secret value of the harness's environment"
                for path, data in self.tree.files.items()
                if data is not None and self.secrets.found_in(data)
            ]
        return StageResult(
            name,
            not problems,
            0.0,
            summary="only allowed paths changed"
            if not problems
            else f"{len(problems)} change(s) refused",
            feedback="changes that are never accepted (refused on the tree as applied):\n"
            + "\n".join(problems[:40])
            if problems
            else "",
            details={"changed": self.tree.paths if self.tree else []},
        )

    def stage_hidden_tests(self) -> StageResult:
        """Write the goal's hidden test files into the worktree. Runs after `protected` passed, so
        they replace files the agent could not have changed; they must be protected paths. From
        here on the worktree must equal the graded base plus the attempt's change."""
        assert self.tree is not None and self.graded_base
        changed = sorted(self._changed_between(self.base, self.graded_base))
        exposed = [p for p in changed if not matches_any(p, self.goal.all_protected)]
        if exposed:
            return StageResult(
                "hidden_tests",
                False,
                0.0,
                summary="hidden tests on unprotected paths (a goal problem)",
                feedback="hidden test files must be protected paths: " + ", ".join(exposed),
                details={"goal_problem": True},
            )
        self._checkout_files(self.ws.base_files(self.graded_base, changed), self.graded_base)
        self.expected = TreeState(self.graded_base, files=dict(self.tree.files))
        return StageResult(
            "hidden_tests", True, 0.0, summary=f"{len(changed)} hidden test file(s) written"
        )

    def stage_build(self, logs: Path) -> StageResult:
        assert self.tree is not None
        # An attempt that edits build files runs its own code here: no writes to the cache,
        # and its build dir is wiped before the next attempt (see Note [build outputs]).
        return self._build(logs, any(matches_any(p, BUILD_DEFINING) for p in self.tree.paths))

    def _build(self, logs: Path, untrusted: bool) -> StageResult:
        commands = self.goal.commands
        self.ws.build_starting(untrusted)
        outputs = []
        try:
            if self.ws.configured_with() != commands.configure:
                res = self._build_command(commands.configure, logs / "configure.log", untrusted)
                outputs.append(res.output)
                if not res.ok:
                    return self._failed_command(
                        "build", res, compiler_feedback(res.output), "configure"
                    )
                self.ws.mark_configured(commands.configure)
            res = self._build_command(commands.build, logs / "build.log", untrusted)
        finally:
            self.ws.record_outputs()
        outputs.append(res.output)
        if not res.ok:
            return self._failed_command("build", res, compiler_feedback(res.output), "build")
        return StageResult("build", True, 0.0, summary="built", log=trim("\n".join(outputs)))

    def _build_command(self, template: str, log: Path, untrusted: bool) -> CommandResult:
        argv = format_command(template, self.values())
        sandbox = self.ws.sandbox("build", self.allow_unsandboxed)
        env = self.env()
        # the build's own scripts (runtime/codegen) import their sibling modules
        env.pop("PYTHONSAFEPATH")
        if untrusted:  # the compiler cache read-only
            sandbox.writable.remove(self.ws.ccache_dir)
            sandbox.readable.append(self.ws.ccache_dir)
            env["CCACHE_READONLY"] = "1"
        return self._command(argv, log, env, sandbox)

    def _failed_command(self, stage, res, feedback, what) -> StageResult:
        if res.timed_out:
            feedback = (
                f"{what} timed out after {self.limits.wall_s:.0f}s; everything it started "
                "was killed.\n" + "\n".join(res.output.splitlines()[-15:])
            )
        elif res.oom_killed:
            feedback = (
                f"{what} was killed: out of memory (limit {self.limits.memory_mb} MB).\n"
                + "\n".join(res.output.splitlines()[-15:])
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

    # Note [test integrity]: a test command can "pass" by running fewer tests (a registration
    # trick, a deselecting plugin, a skip raised from the code under test) or by exiting 0
    # before its runner reports (os._exit at import). So each run writes a JUnit report to a
    # scratch dir the harness reads, ctest gets --no-tests=error, gtest processes write their
    # own reports (a process that exits early writes none), pytest runs with a harness-owned
    # configuration (-c /dev/null, explicit rootdir and confcutdir, no plugin autoload, no
    # cache), and the outcome is compared with the same command at the base commit (baseline):
    # every test run there must run now, every test passing there must pass now, and nothing
    # may fail.
    def _run_tests(self, name: str, template: str, selector: str, log: Path, index: int) -> TestRun:
        scratch = self.ws.scratch(f"{name}-{index}")
        report = scratch / "junit.xml"
        argv = format_command(template, self.values(selector))
        extra_argv: list[str] = []
        env: dict[str, str] = {}
        is_ctest = Path(argv[0]).name == "ctest"
        if is_ctest:
            if not any(a.startswith("--no-tests") for a in argv):
                extra_argv.append("--no-tests=error")
            extra_argv += ["--output-junit", str(report)]
            (scratch / "gtest").mkdir()
            env["GTEST_OUTPUT"] = f"xml:{scratch / 'gtest'}/"
        else:
            env["PYTEST_ADDOPTS"] = " ".join(
                [
                    "-c /dev/null",
                    f"--rootdir={self.ws.worktree}",
                    # the collection tree starts at the worktree: with `-c /dev/null` it would
                    # start at `/`, and `-k exp2` would match a slot named `ablate-exp2`
                    f"--confcutdir={self.ws.worktree}",
                    "-p no:cacheprovider",
                    f"--junitxml={report}",
                    "-o junit_family=xunit1",
                ]
            )
        res = self.run(
            template,
            log,
            selector,
            stage=name,
            extra_argv=tuple(extra_argv),
            env=env,
            writable=[scratch],
        )
        outcomes = read_junit(report)
        problems: list[str] = []
        if res.timed_out:
            return TestRun(res, outcomes or {}, problems)
        if is_ctest:
            if not CTEST_SUMMARY.search(res.output):
                problems.append(
                    f"ctest exited {res.returncode} without its closing summary"
                    + (" (no tests were found)" if "No tests were found" in res.output else "")
                )
        else:
            if res.returncode == 5:
                problems.append("pytest collected no tests (exit 5)")
            elif not PYTEST_SUMMARY.search(res.output):
                problems.append(
                    f"pytest exited {res.returncode} without its closing summary line "
                    "(a run that stops early, e.g. with os._exit, is a failure)"
                )
        if outcomes is None:
            problems.append("the test runner wrote no readable report")
        elif not outcomes:
            problems.append("no tests ran")
        extra = {"gtest": sorted(gtest_runs(scratch / "gtest"))} if is_ctest else {}
        return TestRun(res, outcomes or {}, problems, extra)

    def _compare_to_base(self, name: str, selector: str, run: TestRun) -> list[str]:
        base = self.baseline.get(name, {}).get(selector)
        if not base:
            return []
        problems = []
        missing = [t for t in base["outcomes"] if t not in run.outcomes]
        if missing:
            problems.append(
                f"{len(missing)} test(s) that run at the base commit did not run: "
                + ", ".join(missing[:10])
            )
        # passing at the base: must pass; failing there (the goal's own): must pass now;
        # skipped there: may stay skipped. A new skip is how a cheat hides a failure.
        lost = [
            t
            for t, outcome in base["outcomes"].items()
            if t in run.outcomes
            and run.outcomes[t] != "passed"
            and not (outcome == "skipped" and run.outcomes[t] == "skipped")
        ]
        if lost:
            problems.append(
                f"{len(lost)} test(s) did not pass (must pass, or stay skipped only if skipped "
                "at the base commit): "
                + ", ".join(
                    f"{t} ({run.outcomes[t]}, {base['outcomes'][t]} at base)" for t in lost[:10]
                )
            )
        gtest_missing = sorted(set(base.get("gtest", [])) - set(run.extra.get("gtest", [])))
        if gtest_missing:
            problems.append(
                f"{len(gtest_missing)} GoogleTest case(s) reported passing without running to "
                "completion (no report from the test process): " + ", ".join(gtest_missing[:10])
            )
        return problems

    def stage_tests(self, name: str, template: str, selectors: list, logs: Path) -> StageResult:
        outputs, failures = [], []
        for i, selector in enumerate(selectors):
            run = self._run_tests(name, template, selector, logs / f"{name}-{i}.log", i)
            run.problems += self._compare_to_base(name, selector, run)
            outputs.append(run.result.output)
            if not run.ok:
                failures.append((selector, run))
        if failures:
            selector, run = failures[0]
            if run.result.timed_out or run.result.oom_killed:
                return self._failed_command(name, run.result, "", f"{name} {selector!r}")
            feedback = []
            for sel, failed in failures:
                part = f"selector {sel!r} failed:"
                if failed.problems:
                    part += "\n" + "\n".join(f"- {p}" for p in failed.problems)
                if failed.result.returncode != 0:
                    part += "\n" + test_feedback(failed.result.output)
                feedback.append(part)
            return StageResult(
                name,
                False,
                0.0,
                summary=f"{len(failures)}/{len(selectors)} selectors failed",
                feedback="\n".join(feedback),
                log=trim("\n".join(outputs)),
                details={
                    "failed_selectors": [s for s, _ in failures],
                    "integrity": [p for _, f in failures for p in f.problems][:50],
                },
            )
        return StageResult(
            name,
            True,
            0.0,
            summary=f"{len(selectors)} selector(s) passed",
            log=trim("\n".join(outputs)),
        )

    # -- the base commit's test outcomes
    def _test_plan(self) -> list[tuple[str, str, list]]:
        acc, commands = self.goal.acceptance, self.goal.commands
        plan = []
        if acc.cpp_tests:
            plan.append(("cpp_tests", commands.cpp_test, acc.cpp_tests))
        if acc.pytest:
            plan.append(("pytest", commands.pytest, acc.pytest))
        if acc.regression_suite:
            try:
                selectors = [s for _, f in self.regression_files() for s in f.selectors]
            except ValueError:  # a malformed case file: the regression stage says so
                selectors = []
            if selectors:
                plan.append(("regression", commands.pytest, selectors))
            if commands.regression.strip():
                plan.append(("regression_command", commands.regression, [""]))
        return plan

    def _baseline_key(self) -> str:
        acc = self.goal.acceptance
        data = [self.tested_base, asdict(self.goal.commands), acc.build, self._test_plan()]
        data.append(sys.executable)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:24]

    def ensure_baseline(self, logs: Path) -> StageResult | None:
        """Run the test stages once at the tested base (cached per commit); None when cached.

        The attempt's changes are taken out of the worktree meanwhile and put back after.
        """
        plan = self._test_plan()
        path = self.ws.harness_dir / "baselines" / f"{self._baseline_key()}.json"
        if not plan:
            return None
        if path.exists():
            self.baseline = json.loads(path.read_text())
            return None
        assert self.tree is not None
        self.on_stage("baseline", "running")
        start = time.monotonic()
        graded, tested = self.graded_base or self.base, self.tested_base
        solution = self._changed_between(graded, tested) - set(self.tree.files)
        swapped = [*self.tree.files, *sorted(solution)]
        self._checkout_files(self.ws.base_files(tested, swapped), tested)
        try:
            result = self._run_baseline(plan, logs / "baseline")
        finally:
            self._checkout_files(self.tree.files, self.base)
            self._checkout_files(self.ws.base_files(graded, sorted(solution)), graded)
        result.seconds = round(time.monotonic() - start, 3)
        if result.ok:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.baseline, indent=1))
        self.on_stage("baseline", "passed" if result.ok else "failed", result)
        return result

    # Note [reference baseline]: an attempt is held to the test outcomes of the tested base:
    # every test that runs there must run, every one passing there must pass, nothing may fail.
    # For a goal with a reference solution (every suite goal) that is the reference tree, as
    # SWE-bench takes PASS_TO_PASS from the gold patch: stricter (a hidden test that cannot even
    # be collected without the op still counts), and it is the source tree the suite was
    # generated from, which ccache has already compiled, where an ablated base compiles ~50 TUs.
    @property
    def tested_base(self) -> str:
        """The commit whose test outcomes an attempt is held to: the reference solution's tree,
        else the base with hidden tests, else the base."""
        return self.reference_base or self.graded_base or self.base

    def _changed_between(self, a: str, b: str) -> set[str]:
        if a == b:
            return set()
        out = self.ws.repo.git.diff("--no-renames", "--name-only", "-z", a, b)
        return {p for p in out.split("\0") if p}

    def _checkout_files(self, files: dict[str, bytes | None], commit: str):
        base = self.ws.base_entries(commit)
        for rel, data in files.items():
            target = self.ws.worktree / rel
            if data is None:
                target.unlink(missing_ok=True)
                continue
            mode = 0o755 if rel in base and base[rel].mode == EXECUTABLE else 0o644
            if _holds(target, data, mode):
                continue  # an untouched mtime: the build does not recompile an unchanged file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(mode)

    def _run_baseline(self, plan, logs: Path) -> StageResult:
        logs.mkdir(parents=True, exist_ok=True)
        if self.goal.acceptance.build:
            build = self._build(logs, untrusted=False)  # the base commit's own build files
            if not build.ok:
                return StageResult(
                    "baseline",
                    False,
                    0.0,
                    summary="the base commit does not build",
                    feedback="the goal's base commit does not build; no attempt can be "
                    "accepted:\n" + build.feedback,
                    log=build.log,
                )
        self.baseline = {}
        for name, template, selectors in plan:
            for i, selector in enumerate(selectors):
                run = self._run_tests(name, template, selector, logs / f"{name}-{i}.log", i)
                command = name == "regression_command"
                problems = [p for p in run.problems if "no tests ran" not in p or not command]
                if command and run.result.returncode == 5:
                    problems = []  # an empty regression suite is fine
                if problems or run.result.timed_out:
                    return StageResult(
                        "baseline",
                        False,
                        0.0,
                        summary=f"{name} {selector!r} cannot be run at the base commit",
                        feedback=f"the goal's {name} selector {selector!r} is broken at the "
                        "base commit: " + "; ".join(problems or ["timed out"]),
                        log=trim(run.result.output),
                    )
                broken = [t for t, o in run.outcomes.items() if o not in ("passed", "skipped")]
                if self.reference_base and broken:
                    return StageResult(  # SWE-bench's gold-patch check, on every run
                        "baseline",
                        False,
                        0.0,
                        summary=f"the reference solution fails its own {name} selector",
                        feedback=f"the goal's reference solution does not pass {selector!r}: "
                        + ", ".join(f"{t} ({run.outcomes[t]})" for t in broken[:10]),
                        log=trim(run.result.output),
                        details={"goal_problem": True},
                    )
                self.baseline.setdefault(name, {})[selector] = {
                    "outcomes": run.outcomes,
                    **run.extra,
                }
        return StageResult("baseline", True, 0.0, summary="base commit test outcomes recorded")

    # -- numerics, regressions and performance: the split pipeline (harness/numerics.py)
    def split(self, logs: Path, stage: str = "numerics") -> SplitCheck:
        if self._reference is None:
            self._reference = ReferenceServer(logs / "reference.log", self.limits.wall_s)
        rng = random.SystemRandom()  # draws no one can predict; the seeds are recorded
        return SplitCheck(
            self._reference,
            lambda payload, tag: self._run_ember_child(payload, logs / f"{tag}.log", stage),
            lambda: rng.randrange(1, 2**31),
        )

    def close(self) -> None:
        if self._reference is not None:
            self._reference.close()
            self._reference = None

    def _run_ember_child(
        self, payload: bytes, log: Path, stage: str, runtime: Path | None = None
    ) -> bytes:
        """Run one request in the sandboxed ember child; the raw outcome bytes it wrote.

        Its request, outcome file and private copy of numcheck live in a scratch dir outside
        the worktree; PyTorch's packages are replaced by stubs that refuse to import, so ember
        cannot hand its work to PyTorch even after removing the child's import guard.
        """
        io_dir = numerics.prepare_io_dir(self.ws.scratch_dir / f"{stage}-io")
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
        sandbox = self.ws.sandbox(
            stage,
            self.allow_unsandboxed,
            writable=[io_dir],
            readable=[runtime] if runtime else [],
            replaced=self._torch_stubs(),
        )
        res = self._command(argv, log, self.env(), sandbox)
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

    def _torch_stubs(self) -> list[tuple[Path, Path]]:
        """(stub, target) pairs: each installed PyTorch package dir shadowed by a package whose
        import raises, mounted over it in the ember child's sandbox."""
        stub = self.ws.scratch_dir / "no-torch"
        if not (stub / "__init__.py").is_file():
            stub.mkdir(parents=True, exist_ok=True)
            (stub / "__init__.py").write_text(
                "raise ImportError('PyTorch is not available to ember while it is graded (the "
                "harness computes the PyTorch reference in another process)')\n"
            )
        return [
            (stub, Path(site) / name)
            for site in numerics.site_dirs()
            for name in TORCH_MODULES
            if (Path(site) / name).is_dir()
        ]

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
            results = self.split(logs, "regression").check(cases, "regression", recorded_seeds=True)
        except ReferenceFailure as exc:
            return self._reference_failed("regression", exc)
        stage = self._split_stage("regression", results, logs)
        if stage.ok and selectors:
            stage = self.stage_tests("regression", self.goal.commands.pytest, selectors, logs)
        if stage.ok and self.goal.commands.regression.strip():
            stage = self._regression_command(logs)
        if stage.ok:
            stage.summary = (
                f"{len(cases)} regression case(s) from {len(files)} file(s) ok on their recorded "
                f"and a fresh draw; {len(selectors)} selector(s)"
            )
        return stage

    def _regression_command(self, logs: Path) -> StageResult:
        """The goal's own regression command (a pytest command), held to the base's outcomes."""
        name, template = "regression_command", self.goal.commands.regression
        run = self._run_tests(name, template, "", logs / "regression_command.log", 0)
        base = self.baseline.get(name, {}).get("", {"outcomes": {}})
        if run.result.returncode == 5 and not base["outcomes"] and not run.result.timed_out:
            return StageResult(  # pytest: nothing collected yet, and nothing at the base either
                "regression", True, 0.0, summary="no regression tests yet"
            )
        run.problems += self._compare_to_base(name, "", run)
        if not run.ok:
            res = run.result
            feedback = "\n".join(f"- {p}" for p in run.problems)
            if res.returncode != 0:
                feedback += "\n" + test_feedback(res.output)
            return self._failed_command("regression", res, feedback.strip(), "regression command")
        return StageResult("regression", True, 0.0, log=trim(run.result.output))

    def verify_regression(self, case_file: CaseFile, logs: Path) -> tuple[bool, str]:
        """Does a freshly grown regression pass on the accepted change? (ok, why not)"""
        try:
            results = self.split(logs, "regression").check(
                case_file.cases, "regrow", recorded_seeds=True
            )
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
        target = self.ws.scratch_dir / "perf-base"
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
        split = self.split(logs, "performance")
        checks = self.goal.acceptance.performance
        base_runtime = self._base_runtime() if any(c.baseline == "base" for c in checks) else None

        def run_base(payload: bytes, tag: str) -> bytes:
            return self._run_ember_child(payload, logs / f"{tag}.log", "performance", base_runtime)

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
        if self.graded_base:
            plan.append(("hidden_tests", self.stage_hidden_tests))
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
        stages: list[StageResult] = []
        baseline_seconds = 0.0
        # the base's test outcomes, taken once the tree to grade is in place (hidden tests too)
        baseline_after = "hidden_tests" if self.graded_base else "protected"
        try:
            for name, body in plan:
                result = self._stage(name, body)
                stages.append(result)
                (logs / f"{name}.stage.log").write_text(result.log or result.summary)
                if not result.ok:
                    feedback = f"[stage {name}] {result.summary}\n{result.feedback}"
                    return Verdict(False, stages, name, feedback, self.tree, baseline_seconds)
                if name == baseline_after:
                    baseline = self.ensure_baseline(logs)
                    baseline_seconds = baseline.seconds if baseline else 0.0
                    if baseline is not None and not baseline.ok:
                        feedback = f"[stage baseline] {baseline.summary}\n{baseline.feedback}"
                        return Verdict(
                            False, stages, "baseline", feedback, self.tree, baseline_seconds
                        )
        finally:
            self.close()
        return Verdict(True, stages, tree=self.tree, baseline_seconds=baseline_seconds)
