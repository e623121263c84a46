"""Full runs against loopback OpenAI / Anthropic servers and the fake runtime fixture."""

from __future__ import annotations

import json

from harness.tests.support import GOOD, WRONG, git, sr


def test_accept_on_first_try_openai(fixture_repo, serve, capsys):
    server = serve("openai", [GOOD])
    fixture_repo.write_agent("fake-openai", "openai", base_url=server.base_url)
    assert fixture_repo.run("run", "--goal", "triple") == 0
    events = fixture_repo.events()
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    response = next(e for e in events if e["kind"] == "llm_response")
    assert (response["input_tokens"], response["output_tokens"]) == (1000, 200)
    assert abs(response["cost_usd"] - (1000 * 1.0 + 200 * 2.0) / 1e6) < 1e-9
    accepted = next(e for e in events if e["kind"] == "accepted")
    message = git(fixture_repo.root, "log", "-1", "--format=%B", accepted["branch"])
    for needle in ("Goal: triple", "Attempt: 1", "Model: openai:openai-test-model", "Usage:"):
        assert needle in message
    shown = git(fixture_repo.root, "show", f"{accepted['branch']}:runtime/python/ember/ops.py")
    assert "def triple" in shown
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert "Add triple(x)" in request["body"]["messages"][1]["content"]
    run_dir = fixture_repo.run_dir()
    for rel in (
        "goal.json",
        "agent.json",
        "summary.json",
        "attempts/001/prompt.md",
        "attempts/001/response.txt",
        "attempts/001/edits.json",
        "attempts/001/diff.patch",
        "attempts/001/verdict.json",
    ):
        assert (run_dir / rel).exists(), rel
    verdict = json.loads((run_dir / "attempts/001/verdict.json").read_text())
    assert [s["name"] for s in verdict["stages"]] == [
        "protected",
        "build",
        "pytest",
        "numerics",
        "regression",
        "protected_after",
    ]
    capsys.readouterr()
    assert fixture_repo.run("show", run_dir.name, "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["summary"]["outcome"] == "accepted" and len(shown["events"]) == len(events)
    assert fixture_repo.run("show", "no-such-run") == 2


def test_accept_after_retry_anthropic_grows_regression_and_merges(fixture_repo, serve):
    server = serve("anthropic", [WRONG, GOOD])
    fixture_repo.write_agent("fake-anthropic", "anthropic", base_url=server.base_url)
    fixture_repo.write_goals(agent="fake-anthropic")
    assert fixture_repo.run("run", "--merge") == 0
    assert [r["path"] for r in server.requests] == ["/v1/messages", "/v1/messages"]
    second_prompt = server.requests[1]["body"]["messages"][0]["content"]
    assert "numerics cases failed vs PyTorch" in second_prompt and "max_abs=" in second_prompt
    events = fixture_repo.events()
    finished = [e for e in events if e["kind"] == "attempt_finished"]
    assert [(e["attempt"], e["ok"], e["failed_stage"]) for e in finished] == [
        (1, False, "numerics"),
        (2, True, None),
    ]
    accepted = next(e for e in events if e["kind"] == "accepted")
    assert len(accepted["regressions"]) == 1
    regression = accepted["regressions"][0]
    # Merged into the current branch: the change and the grown regression test are there.
    assert "def triple" in (fixture_repo.root / "runtime/python/ember/ops.py").read_text()
    grown = json.loads((fixture_repo.root / regression).read_text())
    assert regression.startswith("regressions/cases/") and regression.endswith(".json")
    assert grown["provenance"] | {"run": None, "failure": None} == {
        "goal": "triple",
        "run": None,
        "failed_attempt": 1,
        "accepted_attempt": 2,
        "model": "anthropic:anthropic-test-model",
        "failure": None,
    }
    case = grown["cases"][0]
    assert case["dtype"] == "float64" and isinstance(case["seed"], int)
    assert (case["ember"], case["torch"]) == ("ember.ops.triple", "lambda x: x * 3")
    assert "out of tolerance" in case["note"]
    # The grown case passes on the accepted code (make test's in-process collector) and fails on
    # the wrong patch.
    import subprocess
    import sys

    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "regressions"]
    ok = subprocess.run(command, cwd=fixture_repo.root, capture_output=True, text=True)
    assert ok.returncode == 0 and f"{len(grown['cases'])} passed" in ok.stdout, ok.stdout
    ops = fixture_repo.root / "runtime/python/ember/ops.py"
    ops.write_text(ops.read_text().replace("x * 3\n", "x * 3.01\n"))
    bad = subprocess.run(command, cwd=fixture_repo.root, capture_output=True, text=True)
    assert bad.returncode == 1 and "out of tolerance" in bad.stdout, bad.stdout


def test_budget_exhaustion_and_stuck_detection(fixture_repo, serve):
    server = serve("openai", [WRONG])
    fixture_repo.write_agent("fake-openai", "openai", base_url=server.base_url)
    fixture_repo.write_goals(attempts=2, stuck=3)
    assert fixture_repo.run("run", "--json") == 1
    summary = json.loads((fixture_repo.run_dir() / "summary.json").read_text())
    assert summary["outcome"] == "budget" and len(summary["attempts"]) == 2
    assert not git(fixture_repo.root, "branch", "--list", "harness/*").strip()

    fixture_repo.write_goals(attempts=5, stuck=2)
    for run in list(fixture_repo.runs.iterdir()):
        import shutil

        shutil.rmtree(run)
    assert fixture_repo.run("run") == 1
    summary = json.loads((fixture_repo.run_dir() / "summary.json").read_text())
    assert summary["outcome"] == "stuck" and len(summary["attempts"]) == 2


def test_token_budget_stops_run(fixture_repo, serve):
    server = serve("openai", [WRONG])
    fixture_repo.write_agent("fake-openai", "openai", base_url=server.base_url)
    fixture_repo.write_goals(attempts=5, tokens=1000)
    assert fixture_repo.run("run") == 1
    summary = json.loads((fixture_repo.run_dir() / "summary.json").read_text())
    assert summary["outcome"] == "budget" and "token budget" in summary["reason"]
    assert len(server.requests) == 1


def test_malformed_edits_give_feedback_then_accept(fixture_repo, serve):
    malformed = "runtime/python/ember/ops.py\n<<<<<<< SEARCH\n    return x * 2\n>>>>>>> REPLACE\n"
    not_found = sr("runtime/python/ember/ops.py", "    return x + x\n", "    return 2 * x\n")
    server = serve("openai", [malformed, not_found, GOOD])
    fixture_repo.write_agent("fake-openai", "openai", base_url=server.base_url)
    fixture_repo.write_goals(attempts=3, stuck=3)
    assert fixture_repo.run("run") == 0
    finished = [e for e in fixture_repo.events() if e["kind"] == "attempt_finished"]
    assert [e["failed_stage"] for e in finished] == ["apply", "apply", None]
    assert "malformed block" in finished[0]["feedback"] and "'======='" in finished[0]["feedback"]
    assert "did you mean lines 5-5" in finished[1]["feedback"]
    third_prompt = server.requests[2]["body"]["messages"][1]["content"]
    assert "SEARCH text not found" in third_prompt


def test_edit_on_protected_path_is_rejected(fixture_repo, serve):
    cheat = sr("runtime/tests/python/test_ops.py", "import numpy as np\n", "import os\n") + GOOD
    server = serve("openai", [cheat, GOOD])
    fixture_repo.write_agent("fake-openai", "openai", base_url=server.base_url)
    assert fixture_repo.run("run") == 0
    events = fixture_repo.events()
    applied = next(e for e in events if e["kind"] == "edits_applied")
    statuses = [r["status"] for r in applied["results"]]
    assert statuses == ["rejected", "applied"]
    assert "PROTECTED" in applied["results"][0]["message"]
    assert "runtime/tests/python/test_ops.py" not in applied["changed"]
    accepted = next(e for e in events if e["kind"] == "accepted")
    test_file = git(
        fixture_repo.root, "show", f"{accepted['branch']}:runtime/tests/python/test_ops.py"
    )
    assert test_file.startswith("import numpy as np")


def test_provider_429_and_500_then_success(fixture_repo, serve):
    server = serve("openai", [429, 500, GOOD])
    fixture_repo.write_agent("fake-openai", "openai", base_url=server.base_url)
    assert fixture_repo.run("run") == 0
    response = next(e for e in fixture_repo.events() if e["kind"] == "llm_response")
    assert [t["status"] for t in response["tries"]] == [429, 500, 200]
    assert len(server.requests) == 3


def test_provider_error_after_retries_exits_1(fixture_repo, serve):
    server = serve("anthropic", [503])
    fixture_repo.write_agent("fake-anthropic", "anthropic", base_url=server.base_url)
    fixture_repo.write_goals(agent="fake-anthropic")
    assert fixture_repo.run("run") == 1
    assert len(server.requests) == 4  # 1 + max_retries
    error = next(e for e in fixture_repo.events() if e["kind"] == "provider_error")
    assert [t["status"] for t in error["tries"]] == [503] * 4


def test_hanging_build_is_killed_with_its_process_group(fixture_repo, serve, tmp_path, monkeypatch):
    import psutil

    pid_file = tmp_path / "grandchild.pid"
    monkeypatch.setenv("FIXTURE_PID_FILE", str(pid_file))
    hang = sr("runtime/python/ember/HANG_BUILD", "", "hang\n") + GOOD
    server = serve("openai", [hang])
    fixture_repo.write_agent("fake-openai", "openai", base_url=server.base_url)
    fixture_repo.write_goals(stage_timeout=3, attempts=1)  # one attempt: later stages need more
    assert fixture_repo.run("run") == 1
    finished = [e for e in fixture_repo.events() if e["kind"] == "attempt_finished"]
    assert finished[0]["failed_stage"] == "build" and "timed out" in finished[0]["feedback"]
    assert finished[0]["seconds"] < 30
    grandchild = int(pid_file.read_text())
    assert (
        not psutil.pid_exists(grandchild)
        or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE
    )
