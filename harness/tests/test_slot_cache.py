"""Note [slot layout]: what one bench lane compiles is a compiler-cache hit in every other lane."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from harness.workspace import Workspace

from .support import git

# A generated header in the build dir and a source in the checkout: the two kinds of path a
# runtime compile sees (`-I<build>/generated`, `<worktree>/runtime/...`).
CMAKE = """cmake_minimum_required(VERSION 3.20)
project(slotcache LANGUAGES CXX)
file(WRITE ${CMAKE_BINARY_DIR}/generated/answer.h "#pragma once\\nconstexpr int kAnswer = 42;\\n")
add_library(slotcache OBJECT a.cpp b.cpp)
target_include_directories(slotcache PRIVATE ${CMAKE_BINARY_DIR}/generated)
"""
SOURCE = '#include "answer.h"\nint {name}() {{ return kAnswer; }}\n'

needs_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("ccache", "cmake", "ninja", "c++")),
    reason="needs ccache, cmake, ninja and a C++ compiler",
)


def _stats(env: dict) -> dict[str, int]:
    out = subprocess.run(
        ["ccache", "--print-stats"], env=env, capture_output=True, text=True, check=True
    ).stdout
    return {k: int(v) for k, v in (line.split("\t") for line in out.splitlines() if "\t" in line)}


def _build(ws: Workspace) -> dict[str, int]:
    """Configure and build the slot's checkout as the grader does; the cache's counters after."""
    env = {**os.environ, **ws.compiler_cache_env()}
    env.pop("CCACHE_CONFIGPATH", None)
    src = ws.worktree / "cpp"
    for argv in (
        ["cmake", "-S", str(src), "-B", str(ws.build_dir), "-G", "Ninja",
         "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"],
        ["cmake", "--build", str(ws.build_dir)],
    ):  # fmt: skip
        subprocess.run(argv, env=env, capture_output=True, check=True)
    return _stats(env)


@needs_tools
def test_a_second_slot_hits_what_the_first_compiled(tmp_path):
    root = tmp_path / "repo"
    (root / "cpp").mkdir(parents=True)
    (root / "cpp/CMakeLists.txt").write_text(CMAKE)
    for name in ("a", "b"):
        (root / f"cpp/{name}.cpp").write_text(SOURCE.format(name=name))
    (root / ".gitignore").write_text(".harness/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "fixture")
    base = git(root, "rev-parse", "HEAD").strip()

    lanes = [Workspace(root, "g", "run", slot=f"bench-lane-{i}") for i in (0, 1)]
    try:
        for ws in lanes:
            ws.prepare(base)
        assert lanes[0].worktree.relative_to(lanes[0].slot_dir) == lanes[1].worktree.relative_to(
            lanes[1].slot_dir
        )
        first = _build(lanes[0])
        assert first.get("cache_miss", 0) == 2
        second = _build(lanes[1])
        hits = sum(second.get(k, 0) for k in ("direct_cache_hit", "preprocessed_cache_hit"))
        assert hits == 2 and second.get("cache_miss", 0) == 2  # lane 1 compiled nothing anew
    finally:
        for ws in lanes:
            ws.close()


def test_a_slot_of_the_old_layout_is_replaced(fixture_repo):
    old = fixture_repo.root / ".harness/worktrees/triple"
    base = git(fixture_repo.root, "rev-parse", "HEAD").strip()
    git(fixture_repo.root, "worktree", "add", "--detach", "-f", str(old), base)
    (fixture_repo.root / ".harness/build/triple").mkdir(parents=True)
    ws = Workspace(fixture_repo.root, "triple", "run")
    try:
        ws.prepare(base)
    finally:
        ws.close()
    assert not old.exists() and not (fixture_repo.root / ".harness/build/triple").exists()
    listed = git(fixture_repo.root, "worktree", "list", "--porcelain")
    assert str(old) not in listed and str(ws.worktree) in listed
