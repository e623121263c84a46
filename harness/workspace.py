"""Git worktrees for attempts (gitpython), protected-path hashing, accept and merge."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
from pathlib import Path

import git
import psutil

from .edits import matches_any
from .errors import ConfigError

HARNESS_DIR = ".harness"
AUTHOR = [
    "-c",
    "user.name=ember-harness",
    "-c",
    "user.email=harness@ember.invalid",
    "-c",
    "commit.gpgsign=false",
]


def open_repo(path: Path) -> git.Repo:
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise ConfigError(f"{path} is not inside a git repository") from None


def resolve_base(repo: git.Repo, ref: str) -> str:
    try:
        return repo.commit(ref).hexsha
    except (git.BadName, ValueError, git.GitCommandError):
        raise ConfigError(
            f"goal base {ref!r} does not name a commit in {repo.working_tree_dir}"
            " (a fresh repository needs at least one commit)"
        ) from None


def blob_sha(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Workspace:
    """One worktree slot per goal, reset to the base commit before every attempt.

    Keeping the slot's path stable keeps its build dir valid: a reset rewrites only the
    files an earlier attempt touched, so the next build recompiles exactly those.
    """

    def __init__(self, repo_root: Path, goal_id: str, run_id: str, slot: str | None = None):
        """`slot` names the worktree/build dir to reuse (default: the goal's); `harness bench`
        gives each of its parallel lanes one, so a lane's build stays incremental."""
        self.repo = open_repo(repo_root)
        self.root = Path(str(self.repo.working_tree_dir))
        self.harness_dir = self.root / HARNESS_DIR
        (self.harness_dir / "locks").mkdir(parents=True, exist_ok=True)
        slot = slot or goal_id
        # held for the run's lifetime, released in close()
        self._lock = open(self.harness_dir / "locks" / f"{slot}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another run holds the slot: use a private one
            slot = f"{slot}--{run_id}"
        self.worktree = self.harness_dir / "worktrees" / slot
        self.build_dir = self.harness_dir / "build" / slot
        self.pgid_file = self.harness_dir / "running" / f"{slot}.pgid"

    def close(self):
        try:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
        finally:
            self._lock.close()

    def prepare(self, base: str) -> Path:
        """A clean checkout of `base` in the slot, reusing the directory when it exists."""
        self.kill_orphans()
        self.build_dir.mkdir(parents=True, exist_ok=True)
        if (self.worktree / ".git").exists():
            try:
                wt = git.Repo(self.worktree)
                wt.git.checkout("--detach", "--force", base)
                wt.git.reset("--hard", "-q", base)
                wt.git.clean("-ffdxq", "-e", "_C*.so", "-e", "_C*.pyd")
                return self.worktree
            except git.GitCommandError:
                shutil.rmtree(self.worktree, ignore_errors=True)
        if self.worktree.exists():
            shutil.rmtree(self.worktree, ignore_errors=True)
        self.repo.git.worktree("prune")
        self.worktree.parent.mkdir(parents=True, exist_ok=True)
        self.repo.git.worktree("add", "--detach", "-f", str(self.worktree), base)
        return self.worktree

    def seed_prebuilt(self, patterns=("runtime/python/ember/_C*.so",)) -> list[str]:
        """Copy the main checkout's built extension into the worktree (goals with build: false).

        Only for goals that skip the build: a copied artifact must never mask a stale build.
        """
        copied = []
        for pattern in patterns:
            for source in self.root.glob(pattern):
                rel = source.relative_to(self.root)
                target = self.worktree / rel
                if (
                    not target.exists()
                    or target.stat().st_size != source.stat().st_size
                    or target.stat().st_mtime < source.stat().st_mtime
                ):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)
                    copied.append(str(rel))
        return copied

    def kill_orphans(self):
        """Kill a build/test group left running by a harness that was SIGKILLed."""
        if not self.pgid_file.exists():
            return
        try:
            pgid = int(self.pgid_file.read_text())
            for proc in psutil.process_iter(["pid"]):
                try:
                    if os.getpgid(proc.pid) == pgid and str(self.worktree) in (proc.cwd() or ""):
                        os.killpg(pgid, signal.SIGKILL)
                        break
                except (psutil.Error, ProcessLookupError, PermissionError):
                    continue
        except ValueError:
            pass
        self.pgid_file.unlink(missing_ok=True)

    def wt(self) -> git.Repo:
        return git.Repo(self.worktree)

    def diff(self, base: str) -> str:
        wt = self.wt()
        wt.git.add("-A")  # stage so new files show up; called before any build output exists
        return wt.git.diff("--cached", "--binary", base) + "\n"

    def changed_paths(self, base: str) -> list[str]:
        wt = self.wt()
        wt.git.add("-A")
        out = wt.git.diff("--cached", "--name-only", base)
        return [p for p in out.splitlines() if p]

    def protected_violations(self, base: str, protected: list) -> list[str]:
        """Protected files whose content differs from the base commit, plus new ones."""
        wt = self.wt()
        problems = []
        for line in wt.git.ls_tree("-r", base).splitlines():
            meta, path = line.split("\t", 1)
            if not matches_any(path, protected):
                continue
            sha = meta.split()[2]
            file = self.worktree / path
            if file.is_symlink() or not file.is_file():
                problems.append(f"{path}: removed or replaced")
            elif blob_sha(file) != sha:
                problems.append(f"{path}: content hash changed")
        base_paths = {ln.split("\t", 1)[1] for ln in wt.git.ls_tree("-r", base).splitlines()}
        for path in wt.git.ls_files("-o").splitlines():
            if (
                path not in base_paths
                and matches_any(path, protected)
                and "__pycache__" not in path
            ):
                problems.append(f"{path}: new file on a protected path")
        return problems

    def commit(self, paths: list[str], message: str, branch: str) -> str:
        wt = self.wt()
        wt.git.add("-A", "--", *paths)
        wt.git.execute(["git", *AUTHOR, "commit", "--no-verify", "-q", "-m", message])
        sha = wt.head.commit.hexsha
        self.repo.git.branch("-f", branch, sha)
        return sha

    def merge(self, branch: str, message: str) -> tuple[bool, str]:
        """Integrate the accepted branch into the current branch of the main checkout."""
        try:
            self.repo.git.execute(
                ["git", *AUTHOR, "merge", "--no-ff", "--no-edit", "-m", message, branch]
            )
            return True, self.repo.head.commit.hexsha
        except git.GitCommandError as exc:
            try:
                self.repo.git.merge("--abort")
            except git.GitCommandError:
                pass
            return False, str(exc.stderr or exc).strip()
