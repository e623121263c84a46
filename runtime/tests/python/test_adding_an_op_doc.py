"""docs/adding_an_op.md cannot drift: its recipe is applied to a copy of runtime/, built, and the new
op's test row must pass against PyTorch.

The copy lives in build/recipe/ (reused between runs: only changed files are rewritten, so ninja
and ccache rebuild what the recipe changes). It is a CPU-only -O0 build of the extension, which is
all the recipe's test row needs.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2]
REPO = RUNTIME.parent
DOC = REPO / "docs" / "adding_an_op.md"
BLOCK = re.compile(r"<!-- recipe: (?P<path>[^,]+), (?P<where>append|before|after)"
                   r"(?: \"(?P<anchor>(?:[^\"\\]|\\.)*)\")? -->\n```\w*\n(?P<body>.*?)```", re.S)
SKIP_COPY = {"__pycache__", ".pytest_cache"}


@dataclasses.dataclass
class Block:
    path: str     # relative to the repository
    where: str    # append, before or after
    anchor: str   # text of the line to insert before/after
    body: str


def recipe_blocks() -> list[Block]:
    text = DOC.read_text()
    blocks = [Block(m["path"], m["where"], (m["anchor"] or "").replace('\\"', '"'), m["body"])
              for m in BLOCK.finditer(text)]
    assert blocks, f"{DOC} has no recipe blocks (<!-- recipe: path, where --> before a code block)"
    return blocks


def apply(block: Block, root: Path) -> None:
    path = root / block.path
    text = path.read_text()
    if block.where == "append":
        path.write_text(text.rstrip("\n") + "\n" + block.body)
        return
    lines = text.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if block.anchor in line]
    assert len(hits) == 1, f"{block.path}: anchor {block.anchor!r} must match one line, matches {len(hits)}"
    at = hits[0] + (1 if block.where == "after" else 0)
    path.write_text("".join(lines[:at]) + block.body + "".join(lines[at:]))


def sync_tree(src: Path, dst: Path) -> None:
    """Makes dst a copy of src, rewriting only files whose bytes differ (mtimes stay for the rest)."""
    dst.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for entry in src.iterdir():
        if entry.name in SKIP_COPY or entry.suffix == ".so":
            continue
        wanted.add(entry.name)
        target = dst / entry.name
        if entry.is_dir():
            sync_tree(entry, target)
        elif not target.exists() or target.read_bytes() != entry.read_bytes():
            shutil.copyfile(entry, target)
    for entry in dst.iterdir():
        if entry.name not in wanted and entry.name not in SKIP_COPY and entry.suffix != ".so":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert p.returncode == 0, f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout[-6000:]}\n{p.stderr[-6000:]}"
    return p


def test_recipe_touches_at_most_five_files():
    files = {b.path for b in recipe_blocks()}
    assert len(files) <= 5, f"the recipe touches {len(files)} files: {sorted(files)}"


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("ninja") is None, reason="needs cmake and ninja")
@pytest.mark.timeout(2400)  # the first run builds a whole runtime copy (-O0): >15 min on 2 busy cores
def test_recipe_builds_and_its_test_row_passes():
    blocks = recipe_blocks()
    op = re.search(r"- op: (\w+)", "".join(b.body for b in blocks))[1]
    assert not re.search(rf"^- op: {op}$", "".join(p.read_text() for p in (RUNTIME / "spec").glob("*.yaml")), re.M), \
        f"{op} is in runtime/spec already: pick another example op for {DOC}"
    work = REPO / "build" / "recipe"
    copy = work / "runtime"
    sync_tree(RUNTIME, copy)
    for block in blocks:
        apply(block, work)
    build = work / "build"
    if not (build / "build.ninja").exists():
        run(["cmake", "-S", str(copy), "-B", str(build), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=None",
             "-DCMAKE_CXX_FLAGS=-O0", "-DEMBER_CUDA=OFF", "-DEMBER_BUILD_TESTS=OFF", "-DEMBER_NATIVE=OFF",
             f"-DPython_EXECUTABLE={sys.executable}", f"-DEMBER_PYTHON_OUT={copy / 'python' / 'ember'}"])
    run(["cmake", "--build", str(build), "--target", "_C", "-j", str(os.cpu_count() or 2)])
    test_file = copy / "tests" / "python" / "ops" / "test_elementwise.py"
    p = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
             str(test_file), "-k", op], cwd=work)
    passed = re.search(r"(\d+) passed", p.stdout)
    assert passed and int(passed[1]) > 0, f"the recipe's test row ran no test:\n{p.stdout[-3000:]}"
