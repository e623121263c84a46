"""Resume after SIGKILL, and secrets never reaching run records or child environments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from harness.tests.support import GOOD, REAL_REPO, git

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
    slow = tmp_path / "slow-build"
    slow.write_text("hang")
    env = dict(
        os.environ,
        FIXTURE_SLOW_MARKER=str(slow),
        FIXTURE_PID_FILE=str(tmp_path / "pid"),
        PYTHONPATH=str(REAL_REPO),
    )
    cmd = [sys.executable, "-m", "harness", "--repo", str(fixture_repo.root), "run"]
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
