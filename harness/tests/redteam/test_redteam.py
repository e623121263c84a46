"""The red team: every row of cases.py played against the real CLI, sandbox and grader.

Each hostile case must be rejected at its stage, change nothing outside the worktree (main
branch and refs, .git config/hooks/info, the main checkout, HOME, a canary dir, the virtual
environment), leak no secret into any record, branch or request to the model, and leave no
process behind. Controls must be accepted.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

from harness.secrets import SecretSet
from harness.tests.redteam.cases import CASES, CONTROLS, CPP_CASES, NUMERICS_CASES, Case
from harness.tests.redteam.fixtures import (
    RESULTS,
    HostState,
    Listener,
    cpp_repo,
    processes_under,
    python_repo,
    venv_dir,
)
from harness.tests.support import git, sandbox_missing

KEY = "sk-redteam-OPENAI-7f3a9c2e5b1d8604"
OTHER_SECRET = "tok-redteam-SERVICE-0a1b2c3d4e5f"
HAVE_GTEST = Path("/usr/include/gtest/gtest.h").exists()

pytestmark = pytest.mark.skipif(bool(sandbox_missing()), reason=sandbox_missing())


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Shared fixture repos (baselines are computed once) plus HOME and canary dirs."""
    root = tmp_path_factory.mktemp("redteam")
    home, canary = root / "home", root / "canary"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = someone\n")
    canary.mkdir()
    (canary / "canary.txt").write_text("do not touch\n")
    (canary / "decoy").mkdir()
    (canary / "decoy" / "_C.decoy.so").write_text("a file named like a build output\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        repos = {"python": python_repo(root / "py"), "cpp": None}
        if HAVE_GTEST:
            repos["cpp"] = cpp_repo(root / "cpp")
        started = time.time()
        yield {"root": root, "home": home, "canary": canary, "repos": repos}
    changed = [
        os.path.join(d, f)
        for d, _, files in os.walk(venv_dir())
        for f in files
        if os.lstat(os.path.join(d, f)).st_mtime >= started
    ]
    assert not changed, f"the virtual environment was written: {changed[:10]}"


def fill(text: str, values: dict) -> str:
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def play(case: Case, world, serve, monkeypatch):
    repo = world["repos"]["cpp" if case.goal == "cpp" else "python"]
    if repo is None:
        pytest.skip("GoogleTest is not installed (make system-deps installs libgtest-dev)")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("REDTEAM_SERVICE_TOKEN", OTHER_SECRET)
    listener = Listener()
    runs = repo.root / "runs" / case.name
    values = {
        "repo": repo.root,
        "runs": repo.root / "runs",
        "canary": world["canary"],
        "home": world["home"],
        "venv": venv_dir(),
        "port": listener.port,
        "key": KEY,
        "key_half1": KEY[:16],
        "key_half2": KEY[16:],
    }
    replies = [fill(r, values) for r in case.replies]
    server = serve("openai", replies)
    agent = world["root"] / f"agent-{case.name}.yaml"
    agent.write_text(
        json.dumps(
            {
                "role": "coder",
                "provider": "openai",
                "model": "redteam-model",
                "base_url": server.base_url,
                "max_retries": 0,
                "timeout_s": 30,
            }
        )
    )
    attempts = len(replies)
    goals = repo.root / "goals.yaml"
    text = goals.read_text()
    before = HostState.capture(repo.root, world["home"], world["canary"])
    try:
        goals.write_text(text.replace("attempts: 1", f"attempts: {attempts}"))
        git(repo.root, "update-index", "--assume-unchanged", "goals.yaml")
        code = repo.run(
            "run", "--goal", case.goal, "--agent", str(agent), "--runs-dir", str(runs), "--json"
        )
    finally:
        goals.write_text(text)
        git(repo.root, "update-index", "--no-assume-unchanged", "goals.yaml")
        listener.close()
    return repo, runs, server, listener, before, code


@pytest.mark.parametrize(
    "case", CASES + NUMERICS_CASES + CPP_CASES + CONTROLS, ids=lambda c: c.name
)
def test_redteam(case: Case, world, serve, monkeypatch):
    repo, runs, server, listener, before, code = play(case, world, serve, monkeypatch)
    run_dir = next(runs.iterdir())
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    finished = [e for e in events if e["kind"] == "attempt_finished"]
    accepted = [e for e in events if e["kind"] == "accepted"]
    stages = [e["failed_stage"] for e in finished]
    hostile = stages if not case.control else stages[:-1]
    result = "accepted" if accepted else "rejected"
    RESULTS.append((case.name, case.mechanism, ",".join(s or "-" for s in stages), result))

    # verdict: hostile attempts rejected at their stage, controls accepted
    assert len(finished) == len(case.replies), stages
    assert all(s in case.rejected_at for s in hostile), (stages, case.rejected_at)
    for attempt in finished[: len(hostile)]:
        assert case.needle in attempt["feedback"], attempt["feedback"]
    if case.control:
        assert code == 0 and accepted and stages[-1] is None, stages
    else:
        assert code == 1 and not accepted, (code, stages)

    # nothing outside the worktree changed, nothing left running, no connection made
    after = HostState.capture(repo.root, world["home"], world["canary"])
    assert not after.changes_since(before, new_branches_ok=case.control)
    assert not list(world["canary"].glob("*pwned*")) and not (world["canary"] / "daemon").exists()
    assert not processes_under(repo.root), processes_under(repo.root)
    assert not listener.connections, listener.connections

    # no secret (in any encoding) in any record, request to the model, commit or branch
    secrets = SecretSet([KEY, OTHER_SECRET])
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert not secrets.found_in(path.read_bytes()), path
    for request in server.requests:
        assert not secrets.found_in(json.dumps(request["body"]).encode()), "secret sent to model"
    history = git(repo.root, "log", "--all", "-p", "--format=%H %B")
    assert not secrets.found_in(history.encode())
    if case.name == "leak_key_in_feedback":  # the redactor did fire, and said so
        assert any(e["kind"] == "secret_redacted" for e in events)
        prompt = server.requests[-1]["body"]["messages"][1]["content"]
        assert "[REDACTED]" in prompt
        assert base64.b64encode(KEY.encode()).decode()[:20] not in prompt
