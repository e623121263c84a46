"""Git worktrees for attempts (gitpython), the tree and build-output checks, commit and merge.

Every git call goes through the hardening of gitsafe.py. The worktree's `.git`, the repository
and the run records are never visible inside the sandbox; the build dir and the compiler cache
are writable only by the build stage and fingerprinted after it (see Note [build outputs]).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import git
import psutil

from .edits import matches_any
from .errors import ConfigError
from .gitsafe import git_command, git_env, overrides
from .sandbox import Sandbox
from .tree import REGULAR, Entry, Policy, StatCache, TreeState, blob_sha, compare, scan, violations

HARNESS_DIR = ".harness"
AUTHOR_ENV = {
    "GIT_AUTHOR_NAME": "ember-harness",
    "GIT_AUTHOR_EMAIL": "harness@ember.invalid",
    "GIT_COMMITTER_NAME": "ember-harness",
    "GIT_COMMITTER_EMAIL": "harness@ember.invalid",
}
# Files the build writes into the worktree (EMBER_PYTHON_OUT); kept across attempts.
BUILD_OUTPUTS = ["runtime/python/ember/_C*.so", "runtime/python/ember/_C*.pyd"]
# Build-dir files ctest writes at test time (results, gtest discovery); deleted before attempts.
VOLATILE_BUILD_FILES = ["Testing/**", "**/*_tests.cmake", "**/*_tests-b*.cmake"]
# Changes to these make the build stage run the attempt's own code (CMake, generators).
BUILD_DEFINING = [
    "**/CMakeLists.txt",
    "**/*.cmake",
    "**/*.cmake.in",
    "runtime/tools/**",
    "runtime/codegen/**",
]


class WorkspaceTampered(RuntimeError):
    """The repository's git config, hooks or info/ changed while a run was going on."""


def open_repo(path: Path) -> git.Repo:
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise ConfigError(f"{path} is not inside a git repository") from None
    harden(repo)
    return repo


def harden(repo: git.Repo) -> git.Repo:
    repo.git.set_persistent_git_options(c=overrides(repo.working_tree_dir or repo.git_dir))
    for key, value in git_env().items():
        if key.startswith("GIT_"):
            repo.git.update_environment(**{key: value})
    return repo


def resolve_base(repo: git.Repo, ref: str) -> str:
    try:
        return repo.commit(ref).hexsha
    except (git.BadName, ValueError, git.GitCommandError):
        raise ConfigError(
            f"goal base {ref!r} does not name a commit in {repo.working_tree_dir}"
            " (a fresh repository needs at least one commit)"
        ) from None


def _stat_key(path: str) -> list[int]:
    st = os.lstat(path)
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


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
        self.slot = slot
        # Note [slot layout]: the checkout and its build dir are siblings in one slot dir, and the
        # compiler cache's base dir is the slot dir (compiler_cache_env), so every slot compiles
        # `../src/runtime/...` with `-Igenerated`: a lane hits what any other lane compiled.
        self.slot_dir = self.harness_dir / "slots" / slot
        self.worktree = self.slot_dir / "src"
        self.build_dir = self.slot_dir / "build"
        self.ccache_dir = self.harness_dir / "ccache"
        self.scratch_dir = self.harness_dir / "scratch" / slot
        self.state_file = self.harness_dir / "state" / f"{slot}.json"
        self.pgid_file = self.harness_dir / "running" / f"{slot}.pgid"
        self._stats = StatCache()
        self._base_entries: dict[str, dict[str, Entry]] = {}

    def close(self):
        try:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
        finally:
            self._lock.close()
            self.repo.close()  # ends gitpython's persistent `git cat-file` helpers

    # ------------------------------------------------------------ sandboxes
    def sandbox(self, stage: str, allow_unsandboxed: bool = False, **extra) -> Sandbox:
        """The sandbox of a stage: the worktree (its .git masked); the build stage also gets the
        build dir and the compiler cache, the C++ test stage the build dir."""
        writable = [self.worktree]
        if stage in ("build", "cpp_tests"):
            writable.append(self.build_dir)
        if stage == "build":
            writable.append(self.ccache_dir)
        return Sandbox(
            writable=writable + list(extra.get("writable", [])),
            readable=list(extra.get("readable", [])),
            hidden=[self.worktree / ".git"],
            replaced=list(extra.get("replaced", [])),
            allow_unsandboxed=allow_unsandboxed,
        )

    def compiler_cache_env(self) -> dict[str, str]:
        """ccache's settings for this slot's commands: the shared cache, paths relative to the
        slot dir (Note [slot layout]) and no working directory in the hash."""
        return {
            "CCACHE_DIR": str(self.ccache_dir),
            "CCACHE_BASEDIR": str(self.slot_dir),
            "CCACHE_NOHASHDIR": "1",
        }

    def scratch(self, name: str) -> Path:
        """A fresh directory outside the worktree for one command's reports (e.g. JUnit XML)."""
        path = self.scratch_dir / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    # ------------------------------------------------------------ preparing a slot
    def prepare(self, base: str) -> Path:
        """A clean checkout of `base` in the slot, reusing the directory when it exists."""
        self.kill_orphans()
        self._drop_old_layout()
        self._check_build_dir()
        self.build_dir.mkdir(parents=True, exist_ok=True)
        if (self.worktree / ".git").is_file():
            try:
                self._drop_untracked_git_metadata(base)
                excludes = [arg for p in BUILD_OUTPUTS for arg in ("-e", p.rsplit("/", 1)[1])]
                with self.wt() as wt:
                    wt.git.checkout("--detach", "--force", base)
                    wt.git.reset("--hard", "-q", base)
                    wt.git.clean("-ffdxq", *excludes)
                self._check_worktree_outputs()
                return self.worktree
            except git.GitCommandError:
                shutil.rmtree(self.worktree, ignore_errors=True)
        if self.worktree.exists():
            shutil.rmtree(self.worktree, ignore_errors=True)
        self.repo.git.worktree("prune")
        self.worktree.parent.mkdir(parents=True, exist_ok=True)
        # -f twice: a harness killed inside `worktree add` leaves the slot registered and locked
        self.repo.git.worktree("add", "--detach", "-f", "-f", str(self.worktree), base)
        return self.worktree

    def _drop_old_layout(self):
        """Delete this slot's checkout and build dir of the older layout
        (`.harness/worktrees/<slot>`, `.harness/build/<slot>`): their cache entries name it."""
        old_worktree = self.harness_dir / "worktrees" / self.slot
        old_build = self.harness_dir / "build" / self.slot
        if old_worktree.exists() or old_build.exists():
            shutil.rmtree(old_worktree, ignore_errors=True)
            shutil.rmtree(old_build, ignore_errors=True)
            self.state_file.unlink(missing_ok=True)
            self.repo.git.worktree("prune")

    def _drop_untracked_git_metadata(self, base: str):
        """Delete .gitattributes, .gitmodules and nested .git an attempt left, before git runs."""
        tracked = set(self.base_entries(base))
        for dirpath, dirnames, filenames in os.walk(self.worktree):
            rel_dir = os.path.relpath(dirpath, self.worktree)
            for name in [*dirnames, *filenames]:
                rel = os.path.normpath(os.path.join(rel_dir, name))
                if rel == ".git" or name not in (".git", ".gitattributes", ".gitmodules"):
                    continue
                if rel in tracked:
                    continue
                full = os.path.join(dirpath, name)
                if os.path.isdir(full) and not os.path.islink(full):
                    shutil.rmtree(full, ignore_errors=True)
                    dirnames.remove(name)
                else:
                    os.unlink(full)

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
        self.record_outputs()
        return copied

    def kill_orphans(self):
        """Kill a command left running by a harness that was SIGKILLed (unsandboxed runs only:
        a sandbox dies with the harness through --die-with-parent)."""
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

    # ------------------------------------------------------------ build outputs
    # Note [build outputs]: the build dir, the compiler cache and the extension the build writes
    # into the worktree persist across attempts (that is what makes a one-file change fast).
    # Only the build stage may write them. After it, the harness records (inode, size, mtime,
    # ctime) of every output; after each later stage and before the next attempt they must be
    # unchanged (ctime cannot be set back from user space). A mismatch fails the stage and the
    # build dir is wiped. An attempt that changes build-defining files runs its own code in the
    # build stage: it builds with the compiler cache read-only and its build dir is wiped after.
    def _load_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _save_state(self, state: dict):
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_file)

    def _manifest(self) -> dict:
        build: dict[str, list[int]] = {}
        for dirpath, _, filenames in os.walk(self.build_dir):
            for name in filenames:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, self.build_dir)
                if not matches_any(rel, VOLATILE_BUILD_FILES):
                    build[rel] = _stat_key(full)
        outputs = {str(p.relative_to(self.worktree)): _stat_key(str(p)) for p in self.outputs()}
        return {"build": build, "worktree": outputs}

    def build_starting(self, untrusted: bool):
        state = self._load_state()
        state.update(running="build", untrusted=state.get("untrusted", False) or untrusted)
        self._save_state(state)

    def record_outputs(self):
        """Fingerprint the build outputs (after the build stage or seeding)."""
        state = self._load_state()
        state.update(running=None, manifest=self._manifest())
        self._save_state(state)

    def outputs_changed(self) -> list[str]:
        """Build outputs that differ from their fingerprint; [] when none was recorded."""
        recorded = self._load_state().get("manifest")
        if not recorded:
            return []
        now = self._manifest()
        problems = []
        for part, where in (("build", "build dir"), ("worktree", "worktree")):
            old, new = recorded.get(part, {}), now[part]
            for rel in sorted(set(old) | set(new)):
                if old.get(rel) != new.get(rel):
                    what = "removed" if rel not in new else "added" if rel not in old else "changed"
                    problems.append(f"{where}: {rel} {what}")
        return problems

    def configured_with(self) -> str | None:
        return self._load_state().get("configured")

    def mark_configured(self, command: str):
        state = self._load_state()
        state["configured"] = command
        self._save_state(state)

    def mark_untrusted(self):
        state = self._load_state()
        state["untrusted"] = True
        self._save_state(state)

    def wipe_build(self):
        shutil.rmtree(self.build_dir, ignore_errors=True)
        for path in self.outputs():
            path.unlink(missing_ok=True)
        self.state_file.unlink(missing_ok=True)

    def _check_build_dir(self):
        state = self._load_state()
        if state.get("untrusted") or (state.get("running") != "build" and self.outputs_changed()):
            self.wipe_build()
            return
        for dirpath, _, filenames in os.walk(self.build_dir):
            for name in filenames:
                full = os.path.join(dirpath, name)
                if matches_any(os.path.relpath(full, self.build_dir), VOLATILE_BUILD_FILES):
                    os.unlink(full)
        if state.get("running") == "build":  # killed mid-build: ninja resumes; refingerprint later
            state.update(running=None, manifest=None)
            self._save_state(state)

    def _check_worktree_outputs(self):
        recorded = (self._load_state().get("manifest") or {}).get("worktree", {})
        for path in self.outputs():
            rel = str(path.relative_to(self.worktree))
            if recorded.get(rel) != _stat_key(str(path)):
                path.unlink()

    # ------------------------------------------------------------ the tree
    def no_symlinks(self, rel: str) -> bool:
        """Is every existing component of worktree/rel a real directory or file (no symlink)?

        Sandboxed code may have swapped a directory for a symlink to a host path; the harness
        must not follow it when it writes or deletes in the worktree.
        """
        current = self.worktree
        for part in Path(rel).parts:
            current = current / part
            if current.is_symlink():
                return False
            if not current.exists():
                return True
        return True

    def outputs(self) -> list[Path]:
        """The build outputs in the worktree, never through a symlink."""
        found = []
        for pattern in BUILD_OUTPUTS:
            folder, name = pattern.rsplit("/", 1)
            if self.no_symlinks(folder) and (self.worktree / folder).is_dir():
                found += [p for p in (self.worktree / folder).glob(name) if not p.is_symlink()]
        return sorted(found)

    def wt(self) -> git.Repo:
        return harden(git.Repo(self.worktree))

    def base_entries(self, base: str) -> dict[str, Entry]:
        if base not in self._base_entries:
            out = self.repo.git.ls_tree("-r", "-z", "--full-tree", base)
            entries = {}
            for record in filter(None, out.split("\0")):
                meta, path = record.split("\t", 1)
                mode, _, sha = meta.split()
                entries[path] = Entry(mode, sha)
            self._base_entries[base] = entries
        return self._base_entries[base]

    def base_files(self, base: str, paths: list[str]) -> dict[str, bytes | None]:
        """The base commit's content of `paths` (None where the base has no such file)."""
        entries = self.base_entries(base)
        return {
            p: self.repo.odb.stream(bytes.fromhex(entries[p].sha)).read() if p in entries else None
            for p in paths
        }

    def _scan(self) -> dict:
        return scan(self.worktree, BUILD_OUTPUTS, self._stats)

    def snapshot(self, base: str, policy: Policy) -> tuple[TreeState, list[str]]:
        """What the attempt changed, read from disk, and every change the policy refuses."""
        base_entries = self.base_entries(base)
        changes = compare(base_entries, self._scan(), self.worktree)
        state = TreeState(base, changes=changes)
        for change in changes:
            path = self.worktree / change.path
            if change.kind == "deleted":
                state.files[change.path] = None
            elif change.kind in ("added", "modified"):
                state.files[change.path] = path.read_bytes()
        return state, violations(changes, policy, set(base_entries))

    def drift(self, state: TreeState) -> list[str]:
        """Paths whose content differs from the graded tree `state` (empty: unchanged)."""
        expected = dict(self.base_entries(state.base))
        for path, data in state.files.items():
            if data is None:
                expected.pop(path, None)
            else:
                expected[path] = Entry(REGULAR, blob_sha(data))
        return [f"{c.path} ({c.kind})" for c in compare(expected, self._scan(), self.worktree)]

    def _objects_env(self, tmp: str, keep: bool) -> dict:
        """A private index in `tmp`; unless `keep`, new objects go to `tmp` too (the repository's
        objects are only read), so a rejected attempt's content never lands in .git."""
        extra = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        if not keep:
            objects = self.repo.git.rev_parse("--git-path", "objects")
            objects = objects if os.path.isabs(objects) else str(self.root / objects)
            os.makedirs(os.path.join(tmp, "objects"), exist_ok=True)
            extra.update(
                GIT_OBJECT_DIRECTORY=os.path.join(tmp, "objects"),
                GIT_ALTERNATE_OBJECT_DIRECTORIES=objects,
            )
        return git_env(extra)

    def _write_tree(self, base: str, files: dict[str, bytes | None], env: dict) -> str:
        """A tree object: `base` with `files` replaced (None deletes); filters never run."""
        git = git_command(self.root)

        def run(args, stdin: bytes = b"") -> str:
            done = subprocess.run([*git, *args], cwd=self.root, env=env, input=stdin,
                                  check=True, capture_output=True)  # fmt: skip
            return done.stdout.decode().strip()

        lines = []
        for path, data in sorted(files.items()):
            if data is None:
                lines.append(f"0 {'0' * 40}\t{path}")
            else:
                sha = run(["hash-object", "-w", "--no-filters", "--stdin"], data)
                lines.append(f"100644 {sha}\t{path}")
        run(["read-tree", base])
        if lines:  # NUL-terminated: a path may contain any byte but NUL
            run(["update-index", "-z", "--index-info"], ("\0".join(lines) + "\0").encode())
        return run(["write-tree"])

    def render_diff(self, base: str, files: dict[str, bytes | None]) -> str:
        """The unified diff of `files` against `base` (for the record), via throwaway objects."""
        with tempfile.TemporaryDirectory(dir=self.harness_dir) as tmp:
            env = self._objects_env(tmp, keep=False)
            tree = self._write_tree(base, files, env)
            done = subprocess.run(
                [*git_command(self.root), "diff", "--no-ext-diff", "--no-textconv", "--binary",
                 base, tree],
                cwd=self.root, env=env, capture_output=True, check=True,
            )  # fmt: skip
            return done.stdout.decode(errors="replace") + "\n"

    # ------------------------------------------------------------ commit and merge
    def git_fingerprint(self) -> str:
        """sha256 over the repository's config, hooks, info/ and this slot's admin files."""
        common = Path(self.repo.git.rev_parse("--git-common-dir"))
        common = common if common.is_absolute() else self.root / common
        digest = hashlib.sha256()
        paths = [common / "config", common / "config.worktree"]
        for sub in ("hooks", "info"):
            paths += sorted(p for p in (common / sub).rglob("*"))
        admin = common / "worktrees"
        if admin.is_dir():
            paths += sorted(admin.glob("*/config.worktree"))
        for path in paths:
            if path.is_file() or path.is_symlink():
                digest.update(str(path.relative_to(common)).encode() + b"\0")
                digest.update(oct(path.lstat().st_mode).encode() + b"\0")
                digest.update(path.read_bytes() if path.is_file() else os.readlink(path).encode())
        return digest.hexdigest()

    def commit(
        self, state: TreeState, extra: dict[str, bytes], message: str, branch: str,
        fingerprint: str | None = None,
    ) -> str:  # fmt: skip
        """Commit exactly the graded tree (plus harness-written files) on `branch`; no hooks."""
        if fingerprint and self.git_fingerprint() != fingerprint:
            raise WorkspaceTampered(
                "the repository's git config, hooks or info/ changed during the run; "
                "refusing to commit"
            )
        with tempfile.TemporaryDirectory(dir=self.harness_dir) as tmp:
            files = {**state.files, **extra}
            tree = self._write_tree(state.base, files, self._objects_env(tmp, keep=True))
        commit = self.repo.git.commit_tree(tree, "-p", state.base, "-m", message, env=AUTHOR_ENV)
        self.repo.git.update_ref(f"refs/heads/{branch}", commit)
        return commit

    def branch_commit(self, branch: str) -> str | None:
        try:
            return self.repo.git.rev_parse("--verify", "-q", f"refs/heads/{branch}^{{commit}}")
        except git.GitCommandError:
            return None

    def merge(self, branch: str, message: str, fingerprint: str | None = None) -> tuple[bool, str]:
        """Integrate the accepted branch into the current branch of the main checkout."""
        if fingerprint and self.git_fingerprint() != fingerprint:
            return False, "the repository's git config, hooks or info/ changed during the run"
        try:
            self.repo.git.merge("--no-ff", "--no-edit", "-m", message, branch, env=AUTHOR_ENV)
            return True, self.repo.head.commit.hexsha
        except git.GitCommandError as exc:
            try:
                self.repo.git.merge("--abort")
            except git.GitCommandError:
                pass
            return False, str(exc.stderr or exc).strip()
