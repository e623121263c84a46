"""What an attempt actually changed: the worktree on disk against the base commit's tree.

Note [the tree is the truth]: the apply policy in edits.py judges what the edit parser *thinks*
an edit does; a hostile reply can disagree with it (binary diffs, mode changes, symlinks,
gitlinks, files written at test time). So after applying, and after every grading stage, the
harness walks the worktree itself (every file, tracked, untracked or ignored; only `.git` and
the known build outputs are skipped, the latter being checked by their own manifest) and
compares it with the base tree read from the object database. Git's index, attributes, filters
and ignore rules play no part, so nothing in the worktree can hide a change.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .edits import forbidden_name, matches_any

REGULAR, EXECUTABLE, SYMLINK, GITLINK = "100644", "100755", "120000", "160000"


def blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Entry:
    mode: str  # git mode, or "special" for fifos, sockets and devices
    sha: str


@dataclass
class Change:
    path: str
    kind: str  # added | modified | deleted | mode | symlink | special | nested-git | binary
    detail: str = ""


@dataclass
class TreeState:
    """An attempt's files that differ from the base: path -> bytes (None = deleted)."""

    base: str
    files: dict[str, bytes | None] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        return sorted(self.files)


class StatCache:
    """Blob hashes keyed by (inode, size, mtime, ctime): ctime cannot be forged from user space."""

    def __init__(self):
        self._known: dict[str, tuple[tuple, str]] = {}

    def sha(self, path: str, st: os.stat_result) -> str:
        key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        hit = self._known.get(path)
        if hit and hit[0] == key:
            return hit[1]
        with open(path, "rb") as handle:
            digest = blob_sha(handle.read())
        self._known[path] = (key, digest)
        return digest


def scan(root: Path, skip: list[str], cache: StatCache) -> dict[str, Entry]:
    """Every non-directory entry under `root` (symlinks not followed), keyed by POSIX path."""
    found: dict[str, Entry] = {}
    root_str = str(root)
    for dirpath, dirnames, filenames in os.walk(root_str):
        rel_dir = os.path.relpath(dirpath, root_str)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        if not rel_dir and ".git" in dirnames + filenames:
            dirnames[:] = [d for d in dirnames if d != ".git"]
            filenames = [f for f in filenames if f != ".git"]
        for name in list(dirnames):  # os.walk does not descend symlinked dirs: record them
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                filenames.append(name)
                dirnames.remove(name)
            elif name == ".git":  # a nested repository would become a gitlink on `git add`
                found[posixpath.join(rel_dir, name)] = Entry("nested-git", "")
                dirnames.remove(name)
        for name in filenames:
            rel = posixpath.join(rel_dir, name)
            if matches_any(rel, skip):
                continue
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = Entry(SYMLINK, blob_sha(os.readlink(full).encode()))
            elif stat.S_ISREG(st.st_mode):
                mode = EXECUTABLE if st.st_mode & stat.S_IXUSR else REGULAR
                found[rel] = Entry(mode, cache.sha(full, st))
            else:
                found[rel] = Entry("special", "")
    return found


def compare(base: dict[str, Entry], now: dict[str, Entry], root: Path) -> list[Change]:
    changes = []
    for path in sorted(set(base) | set(now)):
        old, new = base.get(path), now.get(path)
        if old == new:
            continue
        if new is None:
            changes.append(Change(path, "deleted"))
        elif new.mode == "special":
            changes.append(Change(path, "special", "a fifo, socket or device file"))
        elif new.mode == "nested-git":
            changes.append(Change(path, "nested-git", "a nested git repository (gitlink)"))
        elif new.mode == SYMLINK:
            changes.append(Change(path, "symlink", f"-> {os.readlink(root / path)}"))
        elif old is not None and old.mode != new.mode:
            changes.append(Change(path, "mode", f"{old.mode} -> {new.mode}"))
        elif old is None and new.mode != REGULAR:
            changes.append(Change(path, "mode", f"new file with mode {new.mode}"))
        elif not _is_text(root / path):
            changes.append(Change(path, "binary", "not UTF-8 text"))
        else:
            changes.append(Change(path, "added" if old is None else "modified"))
    return changes


def _is_text(path: Path) -> bool:
    data = path.read_bytes()
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass
class Policy:
    """What an attempt may change: regular text files inside `scope`, outside `protected`."""

    scope: list[str]
    protected: list[str]
    import_roots: list[str] = field(default_factory=list)  # dirs on the children's PYTHONPATH


def violations(changes: list[Change], policy: Policy, base_paths: set[str]) -> list[str]:
    """Every change the policy refuses, each with its reason."""
    problems = []
    for change in changes:
        path = change.path
        if change.kind not in ("added", "modified", "deleted"):
            problems.append(f"{path}: {change.kind} ({change.detail}) is never accepted")
            continue
        bad_name = forbidden_name(path)
        if bad_name:
            problems.append(f"{path}: {bad_name}")
        elif matches_any(path, policy.protected):
            problems.append(f"{path}: {change.kind} on a PROTECTED path")
        elif not matches_any(path, policy.scope):
            problems.append(f"{path}: {change.kind} outside the goal's scope")
        elif change.kind == "added":
            shadow = _shadows(path, policy.import_roots, base_paths)
            if shadow:
                problems.append(f"{path}: {shadow}")
    return problems


def _shadows(path: str, import_roots: list[str], base_paths: set[str]) -> str | None:
    """A new top-level module next to `ember` would shadow torch, numpy, pytest... for children."""
    for root in import_roots:
        prefix = root.rstrip("/") + "/"
        if not path.startswith(prefix):
            continue
        top = path[len(prefix) :].split("/", 1)[0]
        if not any(p.startswith(prefix + top + "/") or p == prefix + top for p in base_paths):
            return (
                f"new top-level module {top!r} on the import path {root}/ (it could shadow "
                "installed packages); add code inside an existing package"
            )
    return None
