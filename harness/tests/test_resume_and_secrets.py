"""Resume after SIGKILL, and secrets never reaching run records or child environments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from harness.tests.support import GOOD, REAL_REPO, WRONG, git, unsandboxed_flag

MALFORMED = "runtime/python/ember/ops.py\n<<<<<<< SEARCH\n    return x * 2\n>>>>>>> REPLACE\n"


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_resume_after_sigkill_neither_loses_nor_duplicates_attempts(fixture_repo, tmp_path):
    fixture_repo.write_agent("replay", "replay", trajectory=[MALFORMED, GOOD])
    fixture_repo.write_goals(agent="replay")
    slow = fixture_repo.root / ".harness" / "slots" / "triple" / "build" / "SLOW_BUILD"
    slow.parent.mkdir(parents=True)
    slow.write_text("hang")
    env = dict(os.environ, PYTHONPATH=str(REAL_REPO))
    cmd = [sys.executable, "-m", "harness", "--repo", str(fixture_repo.root), "run"]
    cmd += unsandboxed_flag(("run",))
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        assert wait_for(lambda: _events_has(fixture_repo, "edits_applied", 2)), proc.stderr.read1()
        time.sleep(1.0)  # now inside the (hanging) build stage of attempt 2
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    run_id = fixture_repo.run_dir().name
    assert not any(e["kind"] == "run_finished" for e in fixture_repo.events())
    slow.unlink()
    assert fixture_repo.run("run", "--resume", run_id) == 0
    events = fixture_repo.events()
    finished = [e["attempt"] for e in events if e["kind"] == "attempt_finished"]
    responses = [e["attempt"] for e in events if e["kind"] == "llm_response"]
    assert finished == [1, 2] and responses == [1, 2]
    assert [e["kind"] for e in events].count("session_resumed") == 1
    assert sum(e["kind"] == "accepted" for e in events) == 1
    # Resuming a finished run reports it again without new attempts.
    assert fixture_repo.run("run", "--resume", run_id) == 0
    assert len(fixture_repo.events()) == len(events)


def _events_has(repo, kind, attempt):
    if not repo.runs.exists():
        return False
    for path in repo.runs.glob("*/events.jsonl"):
        for line in path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event["kind"] == kind and event.get("attempt") == attempt:
                return True
    return False


def test_fake_key_never_written_under_runs(fixture_repo, serve, monkeypatch):
    key = "sk-test-LEAKY-KEY-9f8e7d6c5b4a"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-also-secret-123456")
    leaky = GOOD + f"\n(debug: my key is {key} and tok-also-secret-123456)\n"
    server = serve("openai", [leaky])
    fixture_repo.write_agent("fake-openai", "openai", base_url=server.base_url)
    assert fixture_repo.run("run") == 0
    headers = {k.lower(): v for k, v in server.requests[0]["headers"].items()}
    assert headers["authorization"] == f"Bearer {key}"  # the key did reach the provider
    files = [p for p in fixture_repo.runs.rglob("*") if p.is_file()]
    assert len(files) > 8
    for path in files:
        text = path.read_bytes()
        assert key.encode() not in text, path
        assert b"tok-also-secret-123456" not in text, path
    response = next(fixture_repo.runs.rglob("response.txt")).read_text()
    assert "[REDACTED]" in response
    build_log = next(fixture_repo.runs.rglob("build.log")).read_text()
    assert "env names:" in build_log
    assert "OPENAI_API_KEY" not in build_log and "MY_SERVICE_TOKEN" not in build_log
    assert key not in git(fixture_repo.root, "log", "--all", "-p")


def test_forged_events_are_not_trusted_on_resume(fixture_repo, serve):
    """Events appended by anyone but the harness fail the HMAC chain: resume re-grades."""
    server = serve("openai", [WRONG, GOOD])
    fixture_repo.write_agent("fake-openai", "openai", base_url=server.base_url)
    fixture_repo.write_goals(attempts=2)
    assert fixture_repo.run("run") == 0
    run_dir = fixture_repo.run_dir()
    events_path = run_dir / "events.jsonl"
    lines = events_path.read_text().splitlines()
    # keep attempt 1 only, then forge an "accepted" attempt 2 as a hostile child once did
    keep = [ln for ln in lines if json.loads(ln).get("attempt") in (None, 1)]
    keep = keep[: next(i for i, ln in enumerate(keep) if '"attempt_finished"' in ln) + 1]
    forged = {"seq": len(keep) + 1, "t": 0, "kind": "accepted", "attempt": 2, "branch": "x",
              "commit": "0" * 40, "mac": "0" * 64}  # fmt: skip
    events_path.write_text("\n".join([*keep, json.dumps(forged)]) + "\n")
    assert fixture_repo.run("run", "--resume", run_dir.name) == 0
    events = fixture_repo.events()
    kinds = [e["kind"] for e in events]
    assert "record_tampered" in kinds
    assert list(run_dir.glob("events.jsonl.untrusted-*"))
    finished = [e["attempt"] for e in events if e["kind"] == "attempt_finished"]
    assert finished == [1, 2]  # attempt 2 was graded again, not taken from the forged line
    accepted = [e for e in events if e["kind"] == "accepted"]
    assert len(accepted) == 1 and accepted[0]["commit"] != "0" * 40
    assert (
        git(fixture_repo.root, "rev-parse", accepted[0]["branch"]).strip() == accepted[0]["commit"]
    )


def test_resume_checks_the_accepted_branch_exists(fixture_repo, serve):
    server = serve("openai", [GOOD])
    fixture_repo.write_agent("fake-openai", "openai", base_url=server.base_url)
    assert fixture_repo.run("run") == 0
    run_dir = fixture_repo.run_dir()
    events_path = run_dir / "events.jsonl"
    lines = events_path.read_text().splitlines()
    events_path.write_text("\n".join(lines[:-1]) + "\n")  # killed before run_finished
    branch = next(e for e in fixture_repo.events() if e["kind"] == "accepted")["branch"]
    git(fixture_repo.root, "branch", "-D", branch)
    assert fixture_repo.run("run", "--resume", run_dir.name) == 0
    kinds = [e["kind"] for e in fixture_repo.events()]
    assert "accepted_unverified" in kinds and kinds.count("accepted") == 2
    assert git(fixture_repo.root, "rev-parse", "--verify", branch).strip()


def test_missing_key_or_bad_base_leaves_no_run_dir(fixture_repo, serve, monkeypatch, capsys):
    server = serve("openai", [GOOD])
    fixture_repo.write_agent("fake-openai", "openai", base_url=server.base_url)
    import harness.secrets

    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setattr(harness.secrets, "_TAKEN", {})  # no earlier run in this process
    assert fixture_repo.run("run") == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err
    assert not fixture_repo.runs.exists() or not any(fixture_repo.runs.iterdir())
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-OPENAI-0123456789abcdef")
    goals = fixture_repo.root / "goals.yaml"
    goals.write_text(goals.read_text().replace("default: true", "default: true\n    base: nope"))
    fixture_repo.commit("bad base")
    assert fixture_repo.run("run") == 2
    assert "does not name a commit" in capsys.readouterr().err
    assert not fixture_repo.runs.exists() or not any(fixture_repo.runs.iterdir())


def test_regression_growth_failure_never_loses_an_accepted_attempt(
    fixture_repo, serve, monkeypatch
):
    import harness.loop

    def broken(*args, **kwargs):
        raise KeyError("ember")

    monkeypatch.setattr(harness.loop, "write_regression", broken)
    server = serve("openai", [WRONG, GOOD])
    fixture_repo.write_agent("fake-openai", "openai", base_url=server.base_url)
    assert fixture_repo.run("run") == 0
    events = fixture_repo.events()
    assert any(e["kind"] == "regression_growth_failed" for e in events)
    accepted = next(e for e in events if e["kind"] == "accepted")
    assert accepted["regressions"] == []
    assert "def triple" in git(
        fixture_repo.root, "show", f"{accepted['branch']}:runtime/python/ember/ops.py"
    )


def test_planted_git_filter_and_hooks_never_run(fixture_repo, serve, tmp_path):
    """A filter driver and hooks in the shared .git (planted before the run) stay inert."""
    canary = tmp_path / "filter-ran"
    git_dir = fixture_repo.root / ".git"
    with open(git_dir / "config", "a") as handle:
        handle.write(f'[filter "evil"]\n\tclean = "sh -c \'touch {canary}; cat\'"\n'
                     f'\tsmudge = "sh -c \'touch {canary}; cat\'"\n\trequired = true\n')  # fmt: skip
    (git_dir / "info").mkdir(exist_ok=True)
    (git_dir / "info" / "attributes").write_text("* filter=evil\n")
    for hook in ("pre-commit", "post-commit", "post-checkout", "reference-transaction"):
        (git_dir / "hooks" / hook).write_text(f"#!/bin/sh\ntouch {canary}\n")
        (git_dir / "hooks" / hook).chmod(0o755)
    server = serve("openai", [WRONG, GOOD])
    fixture_repo.write_agent("fake-openai", "openai", base_url=server.base_url)
    canary.unlink(missing_ok=True)  # the fixture's own commit above ran the planted hooks
    assert fixture_repo.run("run", "--merge") == 0
    assert not canary.exists()


def test_help_lists_every_exit_code(capsys):
    from harness.cli import build_parser

    text = build_parser().format_help()
    for code in ("0 ", "1 ", "2 ", "3 "):
        assert f"\n  {code}" in text
