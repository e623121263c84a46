"""Integrating a night's accepted changes: re-verify on the current target, then merge.

For each accepted run, in plan order: merge its branch onto the target's tip in a fresh
checkout of the verification slot (`.harness/slots/nightly-verify/src`), run the full suite
there (the `make test` equivalent from nightly.yaml, each command through the sandboxed
command runner), and move the target to the merge commit only if everything passed. A change
that no longer merges, or fails on the new tip, is rejected with the reason.

Note [integrating exactly once]: every step is journaled (`integration.jsonl`, fsynced) before
the next. On resume a change whose commit the target already contains was integrated by a
session killed before its journal line (nothing is merged twice); a change verified on the tip
the target still has is merged without verifying again; anything else is verified afresh.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import git

from .config import CCACHE_FLAGS
from .grading import COMPILER_ERROR, compiler_feedback, test_feedback
from .records import RunRecord
from .sandbox import Limits, format_command, run_command, trim
from .secrets import SecretSet
from .workspace import Workspace, harden, open_repo

JOURNAL = "integration.jsonl"
VERIFY_SLOT = "nightly-verify"
FAILPOINT_ENV = "HARNESS_NIGHTLY_FAILPOINT"
IDENTITY = {
    "GIT_AUTHOR_NAME": "ember-nightly",
    "GIT_AUTHOR_EMAIL": "nightly@ember.invalid",
    "GIT_COMMITTER_NAME": "ember-nightly",
    "GIT_COMMITTER_EMAIL": "nightly@ember.invalid",
}


def failpoint(name: str):
    """Tests kill the night at named points (HARNESS_NIGHTLY_FAILPOINT=name) to prove resume."""
    if os.environ.get(FAILPOINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class VerifyConfig:
    commands: list[str]
    timeout_s: float
    memory_mb: int


@dataclass
class Change:
    """An accepted run, as its record tells it."""

    run_id: str
    goal: str
    title: str
    agent: str
    branch: str
    commit: str
    regressions: list[str]
    # A goal whose base is a generated tree (a suite goal: `base_patch`/`base_drop`) measures an
    # agent; merging its change would also merge the generated base (an op removed, goals dropped).
    measurement_only: bool = False

    @classmethod
    def from_record(cls, run_dir: Path) -> Change | None:
        events = RunRecord.load_events(run_dir / "events.jsonl")
        accepted = next((e for e in events if e["kind"] == "accepted"), None)
        if not accepted:
            return None
        started = next(e for e in events if e["kind"] == "run_started")
        goal = json.loads((run_dir / "goal.json").read_text())
        return cls(
            run_dir.name,
            started["goal"],
            goal["title"],
            started["agent"],
            accepted["branch"],
            accepted["commit"],
            accepted.get("regressions", []),
            bool(goal.get("base_patch") or goal.get("base_drop")),
        )


class Journal:
    """Append-only, fsynced JSON lines; the last entry per run says where it stands."""

    def __init__(self, path: Path):
        self.path = path

    def entries(self) -> list[dict]:
        return RunRecord.load_events(self.path)

    def last(self, run_id: str) -> dict | None:
        mine = [e for e in self.entries() if e["run_id"] == run_id]
        return mine[-1] if mine else None

    def write(self, kind: str, run_id: str, **data) -> dict:
        entry = {"kind": kind, "run_id": run_id, "t": round(time.time(), 3), **data}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return entry


class Integrator:
    """Verify-then-merge for each accepted change; see Note [integrating exactly once]."""

    def __init__(
        self,
        repo_root: Path,
        night_dir: Path,
        night_id: str,
        target: str,
        fast_forward: bool,
        verify: VerifyConfig,
        log=print,
        allow_unsandboxed: bool = False,
    ):
        self.repo = open_repo(repo_root)
        self.root = Path(str(self.repo.working_tree_dir))
        self.night_dir, self.night_id, self.target = night_dir, night_id, target
        self.fast_forward, self.verify = fast_forward, verify
        self.journal = Journal(night_dir / JOURNAL)
        self.log = log
        self.allow_unsandboxed = allow_unsandboxed

    # ------------------------------------------------------------ git helpers
    def tip(self) -> str:
        return self.repo.git.rev_parse("--verify", f"refs/heads/{self.target}^{{commit}}")

    def contains(self, ref: str, commit: str) -> bool:
        try:
            self.repo.git.merge_base("--is-ancestor", commit, ref)
            return True
        except git.GitCommandError:
            return False

    def exists(self, commit: str) -> bool:
        try:
            self.repo.git.cat_file("-e", f"{commit}^{{commit}}")
            return True
        except git.GitCommandError:
            return False

    def checkout_of(self, branch: str) -> Path | None:
        """The worktree that has `branch` checked out, if any."""
        path = None
        for line in self.repo.git.worktree("list", "--porcelain").splitlines():
            if line.startswith("worktree "):
                path = Path(line.split(" ", 1)[1])
            elif line == f"branch refs/heads/{branch}" and path is not None:
                return path
        return None

    def ensure_target(self, start: str):
        """The review branch starts at the night's base the first time a change lands."""
        try:
            self.tip()
        except git.GitCommandError:
            self.repo.git.branch(self.target, start)

    # ------------------------------------------------------------ one change
    def integrate(self, change: Change) -> dict:
        last = self.journal.last(change.run_id)
        if last and last["kind"] in ("integrated", "rejected"):
            return last
        if change.measurement_only:
            return self.journal.write(
                "rejected",
                change.run_id,
                stage="measurement",
                reason=f"goal {change.goal} starts from a generated tree (base_patch/base_drop): "
                "it measures the agent and is never integrated",
            )
        if not self.exists(change.commit):
            return self.journal.write(
                "rejected",
                change.run_id,
                stage="missing",
                reason=f"the accepted commit {change.commit[:12]} is not in this repository",
            )
        if self.contains(f"refs/heads/{self.target}", change.commit):
            return self.journal.write(
                "integrated",
                change.run_id,
                target=self.target,
                merge_commit=self.tip(),
                found_on_target=True,
                note="the target already contains this change (a session was killed after "
                "merging it); not merged again",
            )
        tip = self.tip()
        if not (last and last["kind"] == "verified" and last["onto"] == tip):
            last = self.verify_change(change, tip)
            if last["kind"] == "rejected":
                return last
            failpoint("after_verify")
        return self.move_target(change, last["merge_commit"], tip, last["how"])

    def verify_change(self, change: Change, tip: str) -> dict:
        self.journal.write("verify_started", change.run_id, onto=tip, commit=change.commit)
        self.log(f"verify {change.run_id} on {self.target} {tip[:12]}")
        ws = Workspace(self.root, VERIFY_SLOT, f"{self.night_id}-{change.run_id}")
        try:
            wt_path = ws.prepare(tip)
            wt = harden(git.Repo(wt_path))
            how = "merge"
            if self.fast_forward and wt.git.rev_parse(f"{change.commit}^") == tip:
                wt.git.checkout("--detach", "-q", change.commit)
                how = "fast-forward"
            else:
                try:
                    wt.git.merge(
                        "--no-ff", "--no-edit", "-m", self.message(change, tip), change.commit,
                        env=IDENTITY,
                    )  # fmt: skip
                except git.GitCommandError as exc:
                    conflicts = wt.git.diff("--name-only", "--diff-filter=U").split()
                    try:
                        wt.git.merge("--abort")
                    except git.GitCommandError:
                        pass
                    what = f"conflicts in {', '.join(conflicts)}" if conflicts else str(exc.stderr)
                    return self.journal.write(
                        "rejected",
                        change.run_id,
                        stage="merge",
                        onto=tip,
                        reason=f"no longer applies on {self.target} {tip[:12]}: {what.strip()}",
                    )
            merge_commit = wt.head.commit.hexsha
            failed = self.run_suite(ws, change)
            if failed:
                stage, feedback = failed
                return self.journal.write(
                    "rejected",
                    change.run_id,
                    stage=stage,
                    onto=tip,
                    merge_commit=merge_commit,
                    reason=f"fails on {self.target} {tip[:12]} at `{stage}`",
                    feedback=feedback,
                )
            return self.journal.write(
                "verified", change.run_id, onto=tip, merge_commit=merge_commit, how=how
            )
        finally:
            ws.close()

    def run_suite(self, ws: Workspace, change: Change) -> tuple[str, str] | None:
        """The full suite in the merged checkout; (command, feedback) of the first failure.
        The change is model-written: every command runs in the build stage's sandbox (the
        checkout, its build dir and the compiler cache writable, `.git` masked)."""
        worktree = str(ws.worktree)
        values = {
            "python": sys.executable,
            "worktree": worktree,
            "build_dir": str(ws.build_dir),
            "jobs": str(os.cpu_count() or 2),
            "ccache_flag": CCACHE_FLAGS if _has_ccache() else "",
        }
        env = {
            # the checkout's own numcheck (test helpers import it), not the clone's
            "PYTHONPATH": f"{worktree}/runtime/python:{worktree}",
            **ws.compiler_cache_env(),
            "PYTHONDONTWRITEBYTECODE": "1",
            # the suite runs in a sandbox, which cannot nest: the harness's own sandbox and
            # red-team tests skip in it (CI runs them), they must not fail for want of one
            "EMBER_REQUIRE_SANDBOX": "",
        }
        limits = Limits(
            wall_s=self.verify.timeout_s,
            cpu_s=int(self.verify.timeout_s * 2),
            memory_mb=self.verify.memory_mb,
        )
        logs = self.night_dir / "verify" / change.run_id
        ws.build_dir.mkdir(parents=True, exist_ok=True)
        for i, template in enumerate(self.verify.commands):
            argv = format_command(template, values)
            name = _command_name(argv)
            result = run_command(
                argv,
                ws.worktree,
                logs / f"{i:02d}-{name}.log",
                limits,
                env,
                SecretSet.from_environ(),
                pgid_file=ws.pgid_file,
                sandbox=ws.sandbox("build", self.allow_unsandboxed),
            )
            if not result.ok:
                if result.timed_out:
                    feedback = f"timed out after {limits.wall_s:.0f}s"
                elif any(COMPILER_ERROR.match(ln.strip()) for ln in result.output.splitlines()):
                    feedback = compiler_feedback(result.output)
                else:
                    feedback = test_feedback(result.output)
                return f"{i + 1}/{len(self.verify.commands)} {name}", trim(feedback, 30, 30)
        return None

    def move_target(self, change: Change, merge_commit: str, tip: str, how: str) -> dict:
        """Advance the target from `tip` to the verified commit, never over someone else's."""
        checkout = self.checkout_of(self.target)
        try:
            if checkout is None:
                self.repo.git.update_ref(f"refs/heads/{self.target}", merge_commit, tip)
            else:  # keep that checkout's files in step; refuses local changes in the way
                wt = harden(git.Repo(checkout))
                if wt.head.commit.hexsha != tip:
                    raise git.GitCommandError("merge", 1, stderr="the target moved")
                wt.git.merge("--ff-only", "-q", merge_commit)
        except git.GitCommandError as exc:
            return self.journal.write(
                "rejected",
                change.run_id,
                stage="update",
                onto=tip,
                reason=f"{self.target} could not be moved to the verified merge: "
                f"{str(exc.stderr or exc).strip()[:300]}",
            )
        failpoint("after_merge")
        return self.journal.write(
            "integrated",
            change.run_id,
            target=self.target,
            merge_commit=merge_commit,
            onto=tip,
            how=how,
            regressions=change.regressions,
        )

    def message(self, change: Change, tip: str) -> str:
        return (
            f"nightly {self.night_id}: {change.title} (goal {change.goal})\n\n"
            f"Run: {change.run_id}\nAgent: {change.agent}\n"
            f"Accepted-Commit: {change.commit}\nVerified-On: {tip}\n"
            + "".join(f"Regression-Test: {p}\n" for p in change.regressions)
        )


def _has_ccache() -> bool:
    import shutil

    return shutil.which("ccache") is not None


def _command_name(argv: list[str]) -> str:
    """A short file-name-safe label for a command: its program and first argument."""
    words = [os.path.basename(a) for a in argv[:3] if not a.startswith("-")]
    words = [w for w in words if not re.match(r"python[\d.]*$", w)] or ["command"]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(words[:2]))[:40]
