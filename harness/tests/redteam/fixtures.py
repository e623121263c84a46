"""Fixture repositories for the red team and a fingerprint of everything outside the worktree."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sysconfig
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import yaml

from harness.tests.numerics_support import DOUBLE_CASE, triple_goal
from harness.tests.support import GOALS, FixtureRepo, git, make_fixture_repo

RESULTS: list[tuple[str, str, str, str]] = []  # (case, mechanism, stages, result) for the table


def python_repo(root: Path) -> FixtureRepo:
    """The harness tests' fake runtime, with goal variants the red team needs."""
    repo = make_fixture_repo(root)
    base = yaml.safe_load(
        GOALS.format(agent="replay", attempts=1, tokens=10**6, stuck=5, stage_timeout=20)
    )["goals"][0]
    base["budget"]["wall_seconds"] = 900
    wide = dict(base, id="triple-wide", default=False, scope=["runtime/python/**"])
    small = dict(base, id="triple-small-memory", default=False, limits={"memory_mb": 1024})
    numerics = yaml.safe_load(triple_goal("replay"))["goals"][0]  # numerics + regressions only
    numerics.update(id="triple-numerics", default=False, budget=base["budget"])
    goals = [base, wide, small, numerics]
    (root / "goals.yaml").write_text(yaml.safe_dump({"version": 1, "goals": goals}))
    cases = root / "regressions" / "cases"
    cases.mkdir(parents=True, exist_ok=True)
    (cases / "double_earlier_a1.json").write_text(json.dumps(DOUBLE_CASE, indent=1))
    repo.commit("red-team goals and a grown regression case")
    return repo


CPP_CMAKE = """\
cmake_minimum_required(VERSION 3.20)
project(fixture CXX)
set(CMAKE_CXX_STANDARD 17)
enable_testing()
find_package(GTest REQUIRED)
add_library(ops STATIC runtime/csrc/ops.cpp)
target_include_directories(ops PUBLIC runtime/csrc)
add_executable(ops_tests runtime/tests/cpp/test_ops.cpp)
target_link_libraries(ops_tests PRIVATE ops GTest::gtest_main)
include(GoogleTest)
gtest_discover_tests(ops_tests DISCOVERY_MODE PRE_TEST)
"""
CPP_TEST = """\
#include <gtest/gtest.h>
#include "ops.h"
TEST(DoubleTest, Positive) { EXPECT_EQ(doubled(3), 6); }
TEST(DoubleTest, Negative) { EXPECT_EQ(doubled(-4), -8); }
TEST(DoubleTest, Zero) { EXPECT_EQ(doubled(0), 0); }
TEST(TripleTest, Works) { EXPECT_EQ(tripled(5), 15); }
"""
CPP_GOALS = {
    "version": 1,
    "goals": [
        {
            "id": "cpp",
            "title": "Fix tripled",
            "default": True,
            "intent": "tripled(x) must return 3 * x.",
            "scope": ["runtime/csrc/**"],
            "protected": ["CMakeLists.txt"],
            "commands": {
                "configure": "cmake -S . -B {build_dir} -G Ninja {ccache_flag}",
                "build": "cmake --build {build_dir}",
            },
            "acceptance": {"build": True, "cpp_tests": ["."], "regression_suite": False},
            "budget": {"attempts": 1, "wall_seconds": 900, "stuck_after": 5},
            "limits": {"stage_timeout_s": 120},
        }
    ],
}


def cpp_repo(root: Path) -> FixtureRepo:
    from harness.tests.redteam.cases import CPP_BASE

    root.mkdir(parents=True)
    (root / "runtime/csrc").mkdir(parents=True)
    (root / "runtime/tests/cpp").mkdir(parents=True)
    (root / "CMakeLists.txt").write_text(CPP_CMAKE)
    (root / "runtime/csrc/ops.h").write_text("int doubled(int x);\nint tripled(int x);\n")
    (root / "runtime/csrc/ops.cpp").write_text(CPP_BASE)
    (root / "runtime/tests/cpp/test_ops.cpp").write_text(CPP_TEST)
    shutil.copytree(Path(__file__).resolve().parents[3] / "prompts", root / "prompts")
    (root / ".gitignore").write_text(".harness/\nruns/\n")
    (root / "goals.yaml").write_text(yaml.safe_dump(CPP_GOALS))
    git(root, "init", "-q", "-b", "main")
    repo = FixtureRepo(root)
    repo.commit("cpp fixture")
    return repo


# ---------------------------------------------------------------- what must not change


def _tree_digest(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    out = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = [
            d for d in dirnames if os.path.normpath(os.path.join(rel_dir, d)) not in skip
        ]
        for name in filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if os.path.islink(full):
                out[rel] = "link:" + os.readlink(full)
            elif os.path.isfile(full):
                out[rel] = hashlib.sha256(Path(full).read_bytes()).hexdigest()
    return out


def venv_dir() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


@dataclass
class HostState:
    """Everything a hostile attempt must not be able to change."""

    refs: str
    git_meta: dict
    checkout: dict
    home: dict
    canary: dict
    venv: dict

    @classmethod
    def capture(cls, repo: Path, home: Path, canary: Path) -> HostState:
        git_dir = repo / ".git"
        meta = {
            k: v
            for k, v in _tree_digest(git_dir, ("objects", "logs", "worktrees", "refs")).items()
            if k.startswith(("config", "hooks", "info", "HEAD", "packed-refs", "description"))
        }
        return cls(
            refs=git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
            git_meta=meta,
            checkout=_tree_digest(repo, (".git", ".harness", "runs")),
            home=_tree_digest(home),
            canary=_tree_digest(canary),
            venv={p.name: p.stat().st_mtime_ns for p in venv_dir().iterdir() if p.suffix == ".pth"}
            | {"<dir>": venv_dir().stat().st_mtime_ns},
        )

    def changes_since(self, before: HostState, new_branches_ok: bool) -> list[str]:
        problems = []
        for name in ("git_meta", "checkout", "home", "canary", "venv"):
            old, new = getattr(before, name), getattr(self, name)
            if old != new:
                changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                problems.append(f"{name} changed: {changed[:10]}")
        old_refs, new_refs = set(before.refs.splitlines()), set(self.refs.splitlines())
        removed, added = old_refs - new_refs, new_refs - old_refs
        if removed or (added and not new_branches_ok):
            problems.append(f"refs changed: -{sorted(removed)} +{sorted(added)}")
        if any(not r.startswith("refs/heads/harness/") for r in added):
            problems.append(f"unexpected refs: {sorted(added)}")
        return problems


def processes_under(root: Path) -> list[str]:
    """Processes (other than this one) whose working directory lies under `root`."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid != os.getpid() and str(root) in (proc.cwd() or ""):
                found.append(" ".join(proc.info["cmdline"] or [])[:120])
        except (psutil.Error, OSError):
            continue
    return found


@dataclass
class Listener:
    """A TCP listener on the host's loopback; counts connections (there must be none)."""

    sock: socket.socket = field(default_factory=socket.socket)
    connections: list = field(default_factory=list)

    def __post_init__(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, addr = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections.append(addr)
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
