"""The tools a tools-mode agent calls: read, search, list, edit, run, submit.

Every path is checked before use: reads stay inside the worktree and out of `.git`; writes go
through `harness.edits.apply_edits` (the same path policy and apply cascade as patch mode);
`run` goes through the Grader's stages, i.e. the harness's sandboxed command runner.
A refused call is an error result the model reads; the attempt goes on.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..config import Goal
from ..edits import Edit, apply_edits, matches_any
from ..grading import Grader, StageResult
from ..providers import ToolCall, ToolSpec
from ..workspace import Workspace

READ_LINES = 400  # default window of read_file
SEARCH_RESULTS = 60
LIST_ENTRIES = 300

TOOLS = [
    ToolSpec(
        "read_file",
        "Read a file of the repository (path relative to the repository root), with line "
        f"numbers. At most {READ_LINES} lines per call: pass start_line/end_line (1-based, "
        "inclusive) for other parts. The numbers are not part of the file.",
        {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "start_line": {"type": "integer", "minimum": 1},
                "end_line": {"type": "integer", "minimum": 1},
            },
            "required": ["path"],
        },
    ),
    ToolSpec(
        "search",
        "Search the repository's files with a Python regular expression; prints path:line: "
        "text for each matching line. `path` limits the search to a directory or a glob "
        "(e.g. runtime/csrc or runtime/**/*.h).",
        {
            "type": "object",
            "properties": {
                "pattern": {"type": "string"},
                "path": {"type": "string"},
                "max_results": {"type": "integer", "minimum": 1, "maximum": 200},
            },
            "required": ["pattern"],
        },
    ),
    ToolSpec(
        "list_dir",
        "List a directory of the repository (default: the root); directories end with '/'.",
        {"type": "object", "properties": {"path": {"type": "string"}}},
    ),
    ToolSpec(
        "edit",
        "Change one file. Either replace text: `search` (exact existing lines, without line "
        "numbers; must occur once) and `replace`; or write the whole file: `content` (creates "
        "it when missing). Only files in the goal's writable scope can be changed.",
        {
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "search": {"type": "string"},
                "replace": {"type": "string"},
                "content": {"type": "string"},
            },
            "required": ["path"],
        },
    ),
    ToolSpec(
        "run",
        "Run a check in the sandbox and see its result: `build` (compile the runtime), "
        "`cpp_tests` (ctest; selector = a test-name regex), `pytest` (selector = test paths "
        "and -k EXPR), `numerics` (the goal's numerics check against PyTorch). Without a "
        "selector the goal's own selectors run. Long output is cut.",
        {
            "type": "object",
            "properties": {
                "target": {"type": "string", "enum": ["build", "cpp_tests", "pytest", "numerics"]},
                "selector": {"type": "string"},
            },
            "required": ["target"],
        },
    ),
    ToolSpec(
        "submit",
        "Hand the change to the harness's grader (build, tests, numerics, regressions). Call "
        "it once the change is complete; this ends the attempt.",
        {"type": "object", "properties": {"summary": {"type": "string"}}},
    ),
]
TOOL_NAMES = {t.name for t in TOOLS}
PYTEST_FLAGS_WITH_VALUE = {"-k", "-m"}
PYTEST_FLAGS = {"-x", "-q", "-v", "-rf"}


@dataclass
class ToolOutcome:
    content: str
    is_error: bool = False
    refused: bool = False  # the path policy said no
    category: str = "read"  # read | edit | build | tests | numerics | submit
    submitted: bool = False
    detail: dict = field(default_factory=dict)


def read_problem(worktree: Path, rel: str) -> str | None:
    """Why `rel` may not be read, or None: relative, no '..', not .git, inside the worktree."""
    if not isinstance(rel, str) or not rel.strip():
        return "empty path"
    rel = rel.strip()
    if rel.startswith(("/", "~")) or "\\" in rel or re.match(r"^[A-Za-z]:", rel):
        return f"absolute path {rel!r} refused: paths are relative to the repository root"
    parts = PurePosixPath(rel).parts
    if ".." in parts:
        return f"path {rel!r} leaves the repository ('..'): refused"
    if parts and parts[0] == ".git":
        return f"{rel}: the git directory is not readable"
    real = os.path.realpath(Path(worktree) / rel)
    root = os.path.realpath(worktree)
    if real != root and not real.startswith(root + os.sep):
        return f"{rel} resolves outside the repository (a symlink?): refused"
    return None


def cut(text: str, limit: int, what: str) -> str:
    if len(text) <= limit:
        return text
    return (
        text[: limit // 2]
        + f"\n... [{what} cut: {len(text) - limit} characters not shown] ...\n"
        + text[-limit // 2 :]
    )


class Toolbox:
    def __init__(
        self,
        workspace: Workspace,
        goal: Goal,
        base: str,
        grader: Grader,
        logs: Path,
        output_chars: int,
    ):
        self.ws, self.goal, self.base, self.grader = workspace, goal, base, grader
        self.worktree = workspace.worktree
        self.logs = logs
        self.output_chars = output_chars

    def execute(self, call: ToolCall, step: int) -> ToolOutcome:
        if call.error:
            return ToolOutcome(f"error: {call.error}", is_error=True)
        if call.name not in TOOL_NAMES:
            return ToolOutcome(
                f"error: unknown tool {call.name!r}; tools: {', '.join(sorted(TOOL_NAMES))}",
                is_error=True,
            )
        handler = getattr(self, f"tool_{call.name}")
        try:
            outcome = handler(step=step, **call.arguments)
        except TypeError as exc:  # missing or unexpected arguments
            return ToolOutcome(f"error: bad arguments for {call.name}: {exc}", is_error=True)
        outcome.content = cut(outcome.content, self.output_chars, f"{call.name} output")
        return outcome

    # -- reading
    def tool_read_file(self, path: str, start_line: int = 1, end_line: int | None = None, step=0):
        problem = read_problem(self.worktree, path)
        if problem:
            return ToolOutcome(f"refused: {problem}", is_error=True, refused=True)
        target = self.worktree / path
        if target.is_dir():
            return ToolOutcome(f"error: {path} is a directory; use list_dir", is_error=True)
        if not target.is_file():
            return ToolOutcome(f"error: {path} does not exist", is_error=True)
        lines = target.read_text(errors="replace").splitlines()
        start = max(1, int(start_line))
        end = min(len(lines), int(end_line) if end_line else start + READ_LINES - 1)
        end = min(end, start + READ_LINES - 1)
        body = "\n".join(f"{n:6d}\t{lines[n - 1]}" for n in range(start, end + 1))
        more = (
            f" (file has {len(lines)} lines; read more with start_line)" if end < len(lines) else ""
        )
        return ToolOutcome(f"{path} lines {start}-{end} of {len(lines)}{more}\n{body}")

    def _files(self) -> list[str]:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=self.worktree,
            capture_output=True,
            text=True,
        )
        return sorted({p for p in out.stdout.split("\0") if p})

    def tool_search(self, pattern: str, path: str = "", max_results: int = SEARCH_RESULTS, step=0):
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            return ToolOutcome(f"error: invalid regular expression: {exc}", is_error=True)
        if path:
            problem = read_problem(self.worktree, path.rstrip("/") or ".")
            if problem:
                return ToolOutcome(f"refused: {problem}", is_error=True, refused=True)
        scope = path.rstrip("/")
        wanted = [
            f
            for f in self._files()
            if not scope
            or f == scope
            or f.startswith(scope + "/")
            or ("*" in scope and matches_any(f, [scope]))
        ]
        hits: list[str] = []
        limit = max(1, min(int(max_results), 200))
        for rel in wanted:
            file = self.worktree / rel
            try:
                if file.is_symlink() or file.stat().st_size > 2_000_000:
                    continue
                text = file.read_text()
            except (OSError, UnicodeDecodeError):
                continue
            for number, line in enumerate(text.splitlines(), 1):
                if regex.search(line):
                    hits.append(f"{rel}:{number}: {line.strip()[:200]}")
                    if len(hits) > limit:
                        break
            if len(hits) > limit:
                break
        if not hits:
            return ToolOutcome(f"no match for {pattern!r} in {len(wanted)} file(s)")
        note = (
            f"\n[first {limit} matches shown; narrow the pattern or path]"
            if len(hits) > limit
            else ""
        )
        return ToolOutcome("\n".join(hits[:limit]) + note)

    def tool_list_dir(self, path: str = ".", step=0):
        problem = read_problem(self.worktree, path or ".")
        if problem:
            return ToolOutcome(f"refused: {problem}", is_error=True, refused=True)
        target = self.worktree / (path or ".")
        if not target.is_dir():
            return ToolOutcome(f"error: {path} is not a directory", is_error=True)
        names = sorted(
            n + ("/" if (target / n).is_dir() else "")
            for n in os.listdir(target)
            if n not in (".git", "__pycache__")
        )
        shown = names[:LIST_ENTRIES]
        extra = f"\n... {len(names) - LIST_ENTRIES} more" if len(names) > LIST_ENTRIES else ""
        return ToolOutcome("\n".join(shown) + extra if shown else "(empty directory)")

    # -- changing the worktree
    def tool_edit(
        self,
        path: str,
        search: str | None = None,
        replace: str | None = None,
        content: str | None = None,
        step=0,
    ):
        if content is None and (search is None or replace is None):
            return ToolOutcome(
                "error: pass either `search` and `replace`, or `content`",
                is_error=True,
                category="edit",
            )
        rel = posixpath.normpath(path.strip()) if isinstance(path, str) and path.strip() else ""
        if content is not None:
            target = self.worktree / rel if rel and not read_problem(self.worktree, rel) else None
            current = target.read_text() if target is not None and target.is_file() else ""
            edit = Edit("search_replace", 0, path=rel, search=current, replace=content)
        else:
            edit = Edit("search_replace", 0, path=rel, search=search or "", replace=replace or "")
        report = apply_edits(self.worktree, [edit], self.goal.scope, self.goal.all_protected)
        result = report.results[0]
        detail = {"edit_status": result.status, "path": rel}
        if result.status != "applied":
            refused = result.status == "rejected"
            return ToolOutcome(
                f"{'refused' if refused else 'failed'}: {result.message}",
                is_error=True,
                refused=refused,
                category="edit",
                detail=detail,
            )
        detail["tree"] = self.tree_digest()
        how = "written" if content is not None else f"replaced ({result.method} match)"
        return ToolOutcome(f"{rel}: {how}", category="edit", detail=detail)

    def tree_digest(self) -> str:
        """Identifies the worktree's change; a replayed edit must reproduce it."""
        return hashlib.sha1(self.ws.diff(self.base).encode()).hexdigest()[:16]

    # -- running checks
    def tool_run(self, target: str, selector: str = "", step=0):
        acc, commands = self.goal.acceptance, self.goal.commands
        logs = self.logs / f"{step:03d}-{target}"
        logs.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        if target == "build":
            if not acc.build:
                return ToolOutcome("this goal needs no build (its change is Python only)")
            result = self.grader.stage_build(logs)
            category = "build"
        elif target in ("cpp_tests", "pytest"):
            selectors = [selector] if selector else getattr(acc, target)
            problem = self._selector_problem(target, selector)
            if problem:
                return ToolOutcome(f"refused: {problem}", is_error=True, refused=True)
            if not selectors:
                return ToolOutcome(
                    f"error: give a selector (the goal has no {target} selectors)", is_error=True
                )
            template = commands.cpp_test if target == "cpp_tests" else commands.pytest
            result = self.grader.stage_tests(target, template, selectors, logs)
            category = "tests"
        elif target == "numerics":
            if not acc.numerics:
                return ToolOutcome("error: this goal has no numerics check", is_error=True)
            try:
                result = self.grader.stage_numerics(logs)
            finally:
                self.grader.close()  # the PyTorch reference child lives for one check
            category = "numerics"
        else:
            return ToolOutcome(
                f"error: unknown target {target!r} (build, cpp_tests, pytest, numerics)",
                is_error=True,
            )
        result.seconds = round(time.monotonic() - started, 3)
        return ToolOutcome(
            self._stage_text(target, result),
            is_error=not result.ok,
            category=category,
            detail={"summary": result.summary},
        )

    def _selector_problem(self, target: str, selector: str) -> str | None:
        if not selector:
            return None
        try:
            tokens = shlex.split(selector)
        except ValueError as exc:
            return f"selector {selector!r} cannot be parsed: {exc}"
        if target == "cpp_tests":
            if len(tokens) != 1 or tokens[0].startswith("-"):
                return "a cpp_tests selector is one test-name regex"
            return None
        expect_value = False
        for token in tokens:
            if expect_value:
                expect_value = False
            elif token in PYTEST_FLAGS_WITH_VALUE:
                expect_value = True
            elif token in PYTEST_FLAGS:
                continue
            elif token.startswith("-"):
                return f"pytest option {token!r} is not allowed (allowed: -k, -m, -x, -q, -v)"
            else:
                problem = read_problem(self.worktree, token.split("::")[0])
                if problem:
                    return problem
        return None

    @staticmethod
    def _stage_text(target: str, result: StageResult) -> str:
        verdict = "passed" if result.ok else "FAILED"
        head = f"[{target}] {verdict} in {result.seconds:.1f}s: {result.summary}"
        parts = [head]
        if result.feedback:
            parts.append(result.feedback)
        if result.log and not result.ok:
            parts.append("--- log (start and end) ---\n" + result.log)
        return "\n".join(parts)

    def tool_submit(self, summary: str = "", step=0):
        return ToolOutcome(
            "submitted: the grader takes it from here", category="submit", submitted=True
        )
