"""A goal's starting commit, and the commit its grader compares protected files against.

Most goals start from `base` itself. A generated goal (harness/suite) starts from a tree derived
from it: `base_patch` applied, `base_drop` paths removed (the suite's own solutions and hidden
tests). Its `hidden_tests` patch holds test rows the agent never sees: the grader writes them into
the worktree after the agent is done (harness/grading.py), and checks protected files against
`graded` = the derived base with that patch applied. A goal with a `reference_solution` also
gets `reference` = graded + that solution: the tree whose test outcomes an attempt is held to.

Derived commits are built in a private index (the main checkout is untouched) with a fixed author
and date, so the same inputs give the same commit id in every clone and run (build dirs and
ccache stay warm); a ref under refs/harness/bases/ keeps each one from garbage collection.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import git

from .config import Goal
from .errors import ConfigError
from .gitsafe import git_command, git_env
from .workspace import resolve_base

IDENTITY = {
    "GIT_AUTHOR_NAME": "ember-harness",
    "GIT_AUTHOR_EMAIL": "harness@ember.invalid",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
    "GIT_COMMITTER_NAME": "ember-harness",
    "GIT_COMMITTER_EMAIL": "harness@ember.invalid",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
}


@dataclass(frozen=True)
class GoalBases:
    base: str  # the commit every attempt starts from
    graded: str | None = None  # base + hidden tests (None: no hidden tests)
    reference: str | None = None  # graded (or base) + the reference solution


def _git(root: Path, *args: str, env: dict | None = None, stdin: str | None = None) -> str:
    proc = subprocess.run(  # hardened: no hooks, filters or attributes (harness/gitsafe.py)
        [*git_command(root), "-C", str(root), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=git_env(env),
    )
    if proc.returncode != 0:
        raise ConfigError(f"git {' '.join(args[:2])} failed: {proc.stderr.strip()[:500]}")
    return proc.stdout.strip()


def _patch_text(root: Path, rel: str, what: str) -> str:
    path = root / rel
    if not path.is_file():
        raise ConfigError(f"{what} {rel} does not exist (run `harness suite build`?)")
    return path.read_text()


def derive(root: Path, parent: str, patch: str, drop: list[str], label: str) -> str:
    """The commit whose tree is `parent`'s with `drop` removed and `patch` applied."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(root, "read-tree", parent, env=env)
        if drop:
            _git(root, "rm", "--cached", "-r", "-q", "--ignore-unmatch", "--", *drop, env=env)
        if patch:
            patch_file = Path(tmp) / "change.patch"
            patch_file.write_text(patch)
            try:
                _git(root, "apply", "--cached", str(patch_file), env=env)
            except ConfigError as exc:
                raise ConfigError(
                    f"{label}: the patch does not apply to {parent[:12]} ({exc}); the suite was "
                    "generated from another runtime: run `harness suite build` again"
                ) from None
        tree = _git(root, "write-tree", env=env)
    message = f"harness: {label}\n"
    return _git(root, "commit-tree", tree, "-p", parent, env=IDENTITY, stdin=message)


def goal_bases(repo: git.Repo, goal: Goal, base: str | None = None) -> GoalBases:
    """Resolve (or, on resume, re-derive from the recorded `base`) a goal's commits."""
    root = Path(str(repo.working_tree_dir))
    if not (goal.base_patch or goal.base_drop or goal.hidden_tests or goal.reference_solution):
        return GoalBases(base or resolve_base(repo, goal.base))
    if base is None:
        parent = resolve_base(repo, goal.base)
        patch = _patch_text(root, goal.base_patch, "base_patch") if goal.base_patch else ""
        base = derive(root, parent, patch, goal.base_drop, f"base of goal {goal.id}")
    graded = None
    if goal.hidden_tests:
        hidden = _patch_text(root, goal.hidden_tests, "hidden_tests")
        graded = derive(root, base, hidden, [], f"hidden tests of goal {goal.id}")
    reference = None
    if goal.reference_solution:
        solution = _patch_text(root, goal.reference_solution, "reference_solution")
        reference = derive(root, graded or base, solution, [], f"reference of goal {goal.id}")
    for name, sha in (("base", base), ("graded", graded), ("reference", reference)):
        if sha:
            key = hashlib.sha1(goal.id.encode()).hexdigest()[:8]
            _git(root, "update-ref", f"refs/harness/bases/{goal.id}-{key}/{name}", sha)
    return GoalBases(base, graded, reference)
