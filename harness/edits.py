"""Parsing LLM edits (search/replace blocks, unified diffs) and applying them safely."""

from __future__ import annotations

import difflib
import os
import posixpath
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

SEARCH_MARK = re.compile(r"^\s*<{5,9} ?SEARCH\s*$")
DIVIDER_MARK = re.compile(r"^\s*={5,9}\s*$")
REPLACE_MARK = re.compile(r"^\s*>{5,9} ?REPLACE\s*$")
FENCE = re.compile(r"^\s*```")
DIFF_FENCE = re.compile(r"```(?:diff|patch|udiff)[^\n]*\n(.*?)```", re.DOTALL)


@dataclass
class Edit:
    kind: str  # "search_replace" | "diff" | "malformed"
    index: int
    path: str = ""
    search: str = ""
    replace: str = ""
    diff: str = ""
    paths: list = field(default_factory=list)
    problem: str = ""


@dataclass
class EditResult:
    index: int
    kind: str
    path: str
    status: str  # applied | failed | rejected
    method: str = ""  # exact | whitespace | create | git-apply | git-apply-ws | git-apply-3way
    message: str = ""


@dataclass
class ApplyReport:
    results: list

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.status == "applied" for r in self.results)

    @property
    def changed_paths(self) -> list:
        return sorted({r.path for r in self.results if r.status == "applied"})

    def feedback(self) -> str:
        if not self.results:
            return (
                "No edits found in your response. Use SEARCH/REPLACE blocks or a ```diff "
                "fenced unified diff, exactly as described in the instructions."
            )
        lines = []
        for r in self.results:
            if r.status != "applied":
                lines.append(
                    f"- edit #{r.index + 1} ({r.kind}, {r.path or '?'}): {r.status.upper()}"
                    f": {r.message}"
                )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "results": [asdict(r) for r in self.results]}


# ---------------------------------------------------------------- parsing


def _clean_filename(line: str) -> str:
    name = line.strip().strip("`*#:").strip()
    if name.lower().startswith(("file:", "path:")):
        name = name.split(":", 1)[1].strip()
    return name.strip("`'\" ")


def parse_search_replace(text: str, start_index: int = 0) -> list[Edit]:
    lines = text.splitlines()
    edits: list[Edit] = []
    i, last_path = 0, ""
    while i < len(lines):
        if not SEARCH_MARK.match(lines[i]):
            i += 1
            continue
        path = ""
        for back in range(i - 1, max(-1, i - 4), -1):
            candidate = lines[back]
            if (
                candidate.strip()
                and not FENCE.match(candidate)
                and not REPLACE_MARK.match(candidate)
            ):
                path = _clean_filename(candidate)
                break
            if FENCE.match(candidate) and re.match(r"^\s*```\s*\S+/", candidate):
                path = _clean_filename(candidate.strip()[3:])
                break
        path = path if path and " " not in path else last_path
        index = start_index + len(edits)
        j = i + 1
        while (
            j < len(lines) and not DIVIDER_MARK.match(lines[j]) and not SEARCH_MARK.match(lines[j])
        ):
            j += 1
        if j >= len(lines) or not DIVIDER_MARK.match(lines[j]):
            edits.append(
                Edit(
                    "malformed",
                    index,
                    path=path,
                    problem=f"SEARCH marker at response line {i + 1} has no '=======' divider",
                )
            )
            i = j
            continue
        k = j + 1
        while (
            k < len(lines) and not REPLACE_MARK.match(lines[k]) and not SEARCH_MARK.match(lines[k])
        ):
            k += 1
        if k >= len(lines) or not REPLACE_MARK.match(lines[k]):
            edits.append(
                Edit(
                    "malformed",
                    index,
                    path=path,
                    problem=f"block starting at response "
                    f"line {i + 1} has no '>>>>>>> REPLACE' marker",
                )
            )
            i = k
            continue
        if not path:
            edits.append(
                Edit(
                    "malformed",
                    index,
                    problem=f"block at response line {i + 1} has no "
                    "file path on the line before '<<<<<<< SEARCH'",
                )
            )
        else:
            search = "\n".join(lines[i + 1 : j])
            replace = "\n".join(lines[j + 1 : k])
            edits.append(
                Edit(
                    "search_replace",
                    index,
                    path=path,
                    search=search + "\n" if search else "",
                    replace=replace + "\n" if replace else "",
                )
            )
            last_path = path
        i = k + 1
    return edits


def diff_paths(diff: str) -> tuple[list, bool]:
    """Target paths of a unified diff, and whether it mentions a symlink mode."""
    paths, symlink = [], False
    for line in diff.splitlines():
        if line.startswith(("+++ ", "--- ")):
            raw = line[4:].split("\t")[0].strip()
            if raw != "/dev/null":
                raw = raw[2:] if raw.startswith(("a/", "b/")) else raw
                if raw not in paths:
                    paths.append(raw)
        elif line.startswith(("rename to ", "copy to ", "rename from ", "copy from ")):
            paths.append(line.split(" ", 2)[2].strip())
        if re.match(r"^(new file mode|old mode|new mode|deleted file mode) 120000", line):
            symlink = True
    return paths, symlink


def parse_unified_diffs(text: str, start_index: int = 0) -> list[Edit]:
    blocks = DIFF_FENCE.findall(text)
    if not blocks and re.search(r"^--- .*\n\+\+\+ ", text, re.MULTILINE):
        header = re.search(r"^(diff --git|--- )", text, re.MULTILINE)
        blocks = [text[header.start() :]] if header else []
    edits: list[Edit] = []
    for block in blocks:
        if not re.search(r"^\+\+\+ ", block, re.MULTILINE):
            continue
        paths, _ = diff_paths(block)
        edits.append(
            Edit("diff", start_index + len(edits), path=", ".join(paths), diff=block, paths=paths)
        )
    return edits


def parse_edits(text: str) -> list[Edit]:
    edits = parse_search_replace(text)
    edits += parse_unified_diffs(text, start_index=len(edits))
    return edits


# ---------------------------------------------------------------- path policy


def glob_to_regex(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def matches_any(path: str, patterns: list) -> bool:
    return any(glob_to_regex(p).match(path) for p in patterns)


def check_path(worktree: Path, rel: str, scope: list, protected: list) -> str | None:
    """Why the agent may not write `rel`, or None when it may."""
    if not rel:
        return "empty path"
    if rel.startswith("/") or "\\" in rel or re.match(r"^[A-Za-z]:", rel):
        return f"absolute or non-POSIX path {rel!r} rejected; use a path relative to the repo root"
    if ".." in PurePosixPath(rel).parts:
        return f"path {rel!r} contains '..'; escapes are rejected"
    norm = posixpath.normpath(rel)
    if matches_any(norm, protected):
        return (
            f"{norm} is a PROTECTED path (harness, grader tests, conftest, goals); never writable"
        )
    if not matches_any(norm, scope):
        return f"{norm} is outside the goal's scope; writable globs: {', '.join(scope)}"
    current = Path(worktree)
    for part in PurePosixPath(norm).parts:
        current = current / part
        if current.is_symlink():
            return f"{norm} goes through a symlink ({current.relative_to(worktree)}); rejected"
    real = os.path.realpath(Path(worktree) / norm)
    if not real.startswith(os.path.realpath(worktree) + os.sep):
        return f"{norm} resolves outside the worktree; rejected"
    return None


# ---------------------------------------------------------------- did-you-mean


def did_you_mean(content: str, search: str, context: int = 0) -> str:
    """The closest window of the file to `search`, with line numbers, plus missing lines."""
    file_lines = content.splitlines()
    want = [ln for ln in search.splitlines()]
    while want and not want[-1].strip():
        want.pop()
    if not file_lines or not want:
        return "the file is empty" if not file_lines else ""
    size = len(want)
    target = "\n".join(ln.strip() for ln in want)
    best, best_at = 0.0, 0
    for start in range(0, max(1, len(file_lines) - size + 1)):
        window = "\n".join(ln.strip() for ln in file_lines[start : start + size])
        matcher = difflib.SequenceMatcher(None, window, target, autojunk=False)
        if matcher.real_quick_ratio() <= best or matcher.quick_ratio() <= best:
            continue
        ratio = matcher.ratio()
        if ratio > best:
            best, best_at = ratio, start
    stripped_file = {ln.strip() for ln in file_lines}
    missing = [ln for ln in want if ln.strip() and ln.strip() not in stripped_file]
    parts = []
    if best >= 0.5:
        lo, hi = max(0, best_at - context), min(len(file_lines), best_at + size + context)
        shown = "\n".join(f"    {n + 1:5d} | {file_lines[n]}" for n in range(lo, hi))
        parts.append(
            f"did you mean lines {best_at + 1}-{best_at + size} ({best:.0%} similar)?\n{shown}"
        )
    if missing:
        parts.append(
            "these SEARCH lines do not occur in the file: "
            + "; ".join(repr(ln.strip()) for ln in missing[:5])
        )
    return "\n".join(parts) or "no similar region found in the file"


# ---------------------------------------------------------------- applying


def _reindent(lines: list, delta: str, remove: int) -> list:
    out = []
    for line in lines:
        if not line.strip():
            out.append(line)
        elif remove and line[:remove].strip() == "":
            out.append(line[remove:])
        else:
            out.append(delta + line)
    return out


def _leading(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def apply_search_replace(worktree: Path, edit: Edit) -> EditResult:
    target = Path(worktree) / edit.path
    result = EditResult(edit.index, edit.kind, edit.path, "failed")
    if not target.exists():
        if edit.search.strip():
            result.message = (
                f"file {edit.path} does not exist; to create it use an empty SEARCH section"
            )
            return result
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(edit.replace)
        result.status, result.method = "applied", "create"
        return result
    content = target.read_text()
    if not edit.search.strip():
        if content.strip():
            result.message = (
                "SEARCH is empty but the file exists and is not empty; quote the lines to replace"
            )
            return result
        target.write_text(edit.replace)
        result.status, result.method = "applied", "create"
        return result
    count = content.count(edit.search)
    if count == 1:
        target.write_text(content.replace(edit.search, edit.replace, 1))
        result.status, result.method = "applied", "exact"
        return result
    if count > 1:
        result.message = f"SEARCH text matches {count} places; include more surrounding lines"
        return result
    # Whitespace-tolerant: compare stripped lines, then shift the replacement's indentation.
    file_lines = content.splitlines(keepends=True)
    want = edit.search.splitlines()
    while want and not want[-1].strip():
        want.pop()
    key = [ln.strip() for ln in want]
    hits = [
        s
        for s in range(len(file_lines) - len(key) + 1)
        if [ln.strip() for ln in file_lines[s : s + len(key)]] == key
    ]
    if len(hits) == 1:
        start = hits[0]
        first = next((n for n, ln in enumerate(want) if ln.strip()), 0)
        have_indent, want_indent = _leading(file_lines[start + first]), _leading(want[first])
        replace_lines = edit.replace.splitlines(keepends=True)
        if have_indent.startswith(want_indent):
            replace_lines = _reindent(replace_lines, have_indent[len(want_indent) :], 0)
        elif want_indent.startswith(have_indent):
            replace_lines = _reindent(replace_lines, "", len(want_indent) - len(have_indent))
        new = file_lines[:start] + replace_lines + file_lines[start + len(key) :]
        target.write_text("".join(new))
        result.status, result.method = "applied", "whitespace"
        return result
    if len(hits) > 1:
        result.message = (
            f"SEARCH text matches {len(hits)} places (ignoring whitespace); add context"
        )
        return result
    result.message = f"SEARCH text not found in {edit.path}.\n" + did_you_mean(content, edit.search)
    return result


def _git_apply(worktree: Path, patch: Path, flags: list) -> tuple[bool, str]:
    base = ["git", "apply", "--recount", "--whitespace=nowarn", *flags]
    check = subprocess.run(
        [*base, "--check", str(patch)], cwd=worktree, capture_output=True, text=True
    )
    if check.returncode != 0:
        return False, check.stderr.strip()
    done = subprocess.run([*base, str(patch)], cwd=worktree, capture_output=True, text=True)
    return done.returncode == 0, done.stderr.strip()


def _hunk_hints(worktree: Path, diff: str) -> list[str]:
    """For each hunk whose old lines are not in the file, say where they probably are."""
    hints: list[str] = []
    old: list[str] = []
    path = None

    def flush():
        if path and old:
            file = Path(worktree) / path
            text = file.read_text() if file.is_file() else ""
            wanted = "\n".join(old) + "\n"
            if text and wanted not in text:
                hints.append(
                    f"hunk for {path}: its context/removed lines were not found. "
                    + did_you_mean(text, wanted)
                )

    for line in diff.splitlines():
        if line.startswith("+++ "):
            flush()
            raw = line[4:].split("\t")[0].strip()
            path, old = (raw[2:] if raw.startswith("b/") else raw), []
        elif line.startswith("@@"):
            flush()
            old = []
        elif line.startswith((" ", "-")) and not line.startswith("--- "):
            old.append(line[1:])
    flush()
    return hints


def apply_diff(worktree: Path, edit: Edit) -> EditResult:
    result = EditResult(edit.index, "diff", edit.path, "failed")
    flags = (
        [] if any(ln.startswith(("+++ b/", "--- a/")) for ln in edit.diff.splitlines()) else ["-p0"]
    )
    with tempfile.NamedTemporaryFile("w", suffix=".patch", delete=False) as handle:
        handle.write(edit.diff if edit.diff.endswith("\n") else edit.diff + "\n")
        patch = Path(handle.name)
    try:
        errors = []
        for method, extra in (
            ("git-apply", []),
            ("git-apply-ws", ["--ignore-whitespace"]),
            ("git-apply-3way", ["--3way"]),
        ):
            ok, message = _git_apply(worktree, patch, flags + extra)
            if ok:
                result.status, result.method = "applied", method
                if method == "git-apply-3way":  # --3way stages changes; keep the index clean
                    subprocess.run(["git", "reset", "-q"], cwd=worktree, capture_output=True)
                return result
            errors.append(f"{method}: {message.splitlines()[0] if message else 'failed'}")
        hints = _hunk_hints(worktree, edit.diff)
        result.message = (
            "diff did not apply ("
            + "; ".join(errors)
            + ")"
            + ("\n" + "\n".join(hints) if hints else "")
        )
        return result
    finally:
        patch.unlink(missing_ok=True)


def apply_edits(worktree: Path, edits: list[Edit], scope: list, protected: list) -> ApplyReport:
    """Apply every edit that passes the path policy; report each block's fate precisely."""
    results = []
    for edit in edits:
        if edit.kind == "malformed":
            results.append(
                EditResult(
                    edit.index,
                    "malformed",
                    edit.path,
                    "failed",
                    message=f"malformed block: {edit.problem}",
                )
            )
            continue
        targets = edit.paths if edit.kind == "diff" else [edit.path]
        if edit.kind == "diff" and diff_paths(edit.diff)[1]:
            results.append(
                EditResult(
                    edit.index,
                    edit.kind,
                    edit.path,
                    "rejected",
                    message="diff creates or changes a symlink; rejected",
                )
            )
            continue
        reasons = [r for r in (check_path(worktree, t, scope, protected) for t in targets) if r]
        if reasons:
            results.append(
                EditResult(
                    edit.index,
                    edit.kind,
                    edit.path,
                    "rejected",
                    message="; ".join(reasons) + " (edit NOT applied)",
                )
            )
            continue
        if edit.kind == "diff":
            results.append(apply_diff(worktree, edit))
        else:
            results.append(apply_search_replace(worktree, edit))
    return ApplyReport(results)
