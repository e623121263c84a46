"""A night on the fixture repo: goals marked `nightly: true`, a multi-goal replay agent, and a
full suite (`verify`) that runs more tests than each goal's own acceptance."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness.tests.support import GOOD, REAL_REPO, WRONG, FixtureRepo, git, sr, unsandboxed_flag

# Sleeps while the worktree has runtime/python/ember/SLOW (the mid-run kill test), then builds.
SLOW_BUILD = """\
import pathlib, runpy, time
if pathlib.Path("runtime/python/ember/SLOW").exists():
    time.sleep(float(pathlib.Path("runtime/python/ember/SLOW").read_text() or 4))
runpy.run_path("tools/build.py", run_name="__main__")
"""

DOUBLE_TEST = """\
import ember.ops


def test_double_of_two_is_four():
    assert ember.ops.double(2) == 4
"""

NIGHT_GOALS = """\
version: 1
goals:
  - id: triple
    title: Add ember.ops.triple
    nightly: true
    intent: Add triple(x) returning 3 * x to runtime/python/ember/ops.py.
    scope: ["runtime/python/ember/**"]
    commands: {{configure: "{{python}} -c pass", build: "{{python}} tools/slow_build.py {{build_dir}}"}}
    acceptance:
      pytest: ["runtime/tests/python/test_ops.py"]
{numerics}      regression_suite: {regression_suite}
    budget: {{attempts: 2, wall_seconds: 300, tokens: 100000, dollars: 1.0, stuck_after: 3}}
    limits: {{stage_timeout_s: 60, memory_mb: 4096}}
  - id: quad
    title: Add ember.ops.quad
    nightly: true
    intent: Add quad(x) returning 4 * x to runtime/python/ember/ops.py.
    scope: ["runtime/python/ember/**"]
    commands: {{configure: "{{python}} -c pass", build: "{{python}} tools/slow_build.py {{build_dir}}"}}
    acceptance:
      regression_suite: false
    budget: {{attempts: 1, wall_seconds: 300, tokens: 100000, dollars: 1.0}}
  - id: negate
    title: Add ember.negate (a new module)
    nightly: true
    intent: Add runtime/python/ember/negate.py with negate(x) = -x; make double accept lists.
    scope: ["runtime/python/ember/**"]
    commands: {{configure: "{{python}} -c pass", build: "{{python}} tools/slow_build.py {{build_dir}}"}}
    acceptance:
      regression_suite: false
    budget: {{attempts: 1, wall_seconds: 300, tokens: 100000, dollars: 1.0}}
  - id: not-tonight
    title: A goal not marked for the night
    intent: Nothing.
    scope: ["runtime/python/ember/**"]
    acceptance: {{build: false}}
"""

NUMERICS = """\
      numerics:
        - name: triple
          ember: ember.ops.triple
          torch: "lambda x: x * 3"
          shapes: [[5], [2, 3]]
          dtypes: [float64]
          seeds: 1
"""

QUAD = "Plan: add quad.\n" + sr(
    "runtime/python/ember/ops.py",
    "    return x * 2\n",
    "    return x * 2\n\n\ndef quad(x):\n    return x * 4\n",
)
# Passes its own (empty) acceptance but breaks double for numbers: the full suite catches it.
NEGATE = (
    "Plan: a new module; double of a list doubles each item.\n"
    + sr("runtime/python/ember/negate.py", "", "def negate(x):\n    return -x\n")
    + sr(
        "runtime/python/ember/__init__.py",
        "    return Tensor(y, [(x, lambda g: g * (1 - y * y))])\n",
        "    return Tensor(y, [(x, lambda g: g * (1 - y * y))])\n\n\n"
        "from . import ops  # noqa: E402\n\n"
        "ops.double = lambda x: [2 * v for v in x]\n",
    )
)


# A verification command that fails when a model key is in its environment.
KEYS_CHECK = (
    "{python} -c \"import os, sys; leaked = [k for k in os.environ if k.endswith('_API_KEY')]; "
    "print('keys seen:', leaked); sys.exit(bool(leaked))\""
)


def slow(seconds: float = 4.0) -> str:
    """An edit that makes the build of its attempt take `seconds`."""
    return sr("runtime/python/ember/SLOW", "", f"{seconds}\n")


def make_night_repo(
    repo: FixtureRepo,
    mode: str = "merge",
    triple: list[str] | None = None,
    numerics: bool = True,
    budget: str = "{dollars: 10.0, tokens: 1000000, wall_seconds: 3600}",
    jobs: int = 1,
    goals: list[str] | None = None,
    verify_build: str = "tools/build.py",
) -> FixtureRepo:
    """Goals triple (wrong, then right: a regression grows), quad (conflicts with triple) and
    negate (fails the full suite); one replay agent plays all three. The full suite also fails
    if a model key reached it (verification runs the model's code)."""
    root = repo.root
    (root / "tools/slow_build.py").write_text(SLOW_BUILD)
    # regressions/conftest.py imports numcheck from the repository root, as in the real repo:
    # the full suite runs sandboxed and sees nothing of the harness's own checkout
    ignore = shutil.ignore_patterns("__pycache__", "tests")
    shutil.copytree(REAL_REPO / "numcheck", root / "numcheck", ignore=ignore)
    (root / "runtime/tests/python/test_double.py").write_text(DOUBLE_TEST)
    (root / "goals.yaml").write_text(
        NIGHT_GOALS.format(
            numerics=NUMERICS if numerics else "",
            regression_suite="true" if numerics else "false",
        )
    )
    responses = {
        "triple": triple or [WRONG, GOOD],
        "quad": [QUAD],
        "negate": [NEGATE],
    }
    trajectory = {
        "goals": {g: {"responses": [{"text": t} for t in r]} for g, r in responses.items()}
    }
    repo.write_agent("night-replay", "replay", trajectory=trajectory)
    config = {
        "goals": {"files": ["goals.yaml"], **({"ids": goals} if goals else {})},
        "agents": ["night-replay"],
        "jobs": jobs,
        "budget": "BUDGET",
        "integration": {"mode": mode, "target": "main"},
        "verify": {
            "commands": [
                f"{{python}} {verify_build} {{build_dir}}",
                KEYS_CHECK,
                "{python} -m pytest -q -p no:cacheprovider runtime/tests/python regressions",
            ],
            "timeout_s": 120,
            "memory_mb": 4096,
        },
    }
    text = json.dumps(config, indent=1).replace('"BUDGET"', budget)
    (root / "nightly.yaml").write_text(text)
    if goals:  # only these: unmark the rest
        marked = (root / "goals.yaml").read_text()
        (root / "goals.yaml").write_text(marked.replace("    nightly: true\n", ""))
    repo.commit("nightly fixture")
    return repo


def journal(night: Path) -> list[dict]:
    path = night / "integration.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def finals(night: Path) -> dict[str, dict]:
    return {e["run_id"]: e for e in journal(night)}


def results(night: Path) -> list[dict]:
    path = night / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def events(night: Path, run_id: str) -> list[dict]:
    path = night / "runs" / run_id / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def start_night(repo: FixtureRepo, *args, env: dict | None = None) -> subprocess.Popen:
    """`harness nightly` as its own process (killed by the tests), output to a log file."""
    log = open(repo.root.parent / "night.log", "ab")  # noqa: SIM115  (closed with the process)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "--repo",
            str(repo.root),
            "nightly",
            *unsandboxed_flag(("nightly",)),
            *args,
        ],
        env=dict(os.environ, PYTHONPATH=str(REAL_REPO), **(env or {})),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def night_log(repo: FixtureRepo) -> str:
    path = repo.root.parent / "night.log"
    return path.read_text(errors="replace") if path.exists() else ""


def wait_for(predicate, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def merges_of(repo: FixtureRepo, run_id: str, ref: str = "main") -> int:
    return git(repo.root, "log", "--merges", "--format=%H", f"--grep=Run: {run_id}", ref).count(
        "\n"
    )
