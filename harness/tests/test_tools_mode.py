"""Tools mode against loopback OpenAI / Anthropic servers (the official SDKs' wire formats):
a full tool-using attempt, refused calls fed back, step and token limits, resume mid-attempt."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from harness.tests.support import REAL_REPO, git, sandbox_missing, turn, unsandboxed_flag
from harness.tests.test_resume_and_secrets import wait_for

OPS = "runtime/python/ember/ops.py"
ADD_TRIPLE = {
    "path": OPS,
    "search": "    return x * 2\n",
    "replace": "    return x * 2\n\n\ndef triple(x):\n    return x * 3\n",
}
LOOK = turn(
    "Look first.",
    ("read_file", {"path": OPS}),
    ("search", {"pattern": r"def \w+", "path": "runtime/python"}),
)
EDIT = turn("Add triple.", ("edit", ADD_TRIPLE))
CHECK = turn("", ("run", {"target": "pytest"}))
SUBMIT = turn("Done.", ("submit", {"summary": "triple added"}))
TOOL_NAMES = ["read_file", "search", "list_dir", "edit", "run", "submit"]


def tools_agent(repo, name, flavor, server, attempts=2, **extra):
    repo.write_agent(name, flavor, base_url=server.base_url, mode="tools", **extra)
    repo.write_goals(agent=name, light=True, attempts=attempts)


def tool_events(repo, **match):
    return [
        e
        for e in repo.events()
        if e["kind"] == "tool_call" and all(e.get(k) == v for k, v in match.items())
    ]


def test_openai_tool_calls_edit_run_submit_accepted(fixture_repo, serve, capsys):
    server = serve("openai", [LOOK, EDIT, CHECK, SUBMIT])
    tools_agent(fixture_repo, "tools-openai", "openai", server)
    assert fixture_repo.run("run") == 0
    first = server.requests[0]["body"]
    assert [t["function"]["name"] for t in first["tools"]] == TOOL_NAMES
    assert all(t["type"] == "function" for t in first["tools"])
    assert "Add triple(x)" in first["messages"][1]["content"]
    # Turn 2 carries turn 1's calls and their results, paired by tool_call_id.
    messages = server.requests[1]["body"]["messages"]
    assistant = messages[2]
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["read_file", "search"]
    results = [m for m in messages if m["role"] == "tool"]
    assert [r["tool_call_id"] for r in results] == [c["id"] for c in assistant["tool_calls"]]
    assert (
        "def double(x):" in results[0]["content"]
        and "ops.py:4: def double" in results[1]["content"]
    )
    run_result = server.requests[3]["body"]["messages"][-1]
    assert run_result["role"] == "tool" and "[pytest] passed" in run_result["content"]
    events = fixture_repo.events()
    steps = [e["step"] for e in events if e["kind"] == "llm_response"]
    assert steps == [1, 2, 3, 4]
    calls = [(e["step"], e["name"], e["ok"]) for e in events if e["kind"] == "tool_call"]
    assert calls == [
        (1, "read_file", True),
        (1, "search", True),
        (2, "edit", True),
        (3, "run", True),
        (4, "submit", True),
    ]
    assert tool_events(fixture_repo, name="run")[0]["category"] == "tests"
    finished = next(e for e in events if e["kind"] == "attempt_finished")
    assert finished["ok"] and finished["steps"] == 4 and finished["tokens"] == 4 * 1200
    accepted = next(e for e in events if e["kind"] == "accepted")
    assert "def triple" in git(fixture_repo.root, "show", f"{accepted['branch']}:{OPS}")
    # The recorded run replays offline: same calls, same verdict, no server.
    capsys.readouterr()
    assert fixture_repo.run("show", fixture_repo.run_dir().name, "--trajectory") == 0
    trajectory = json.loads(capsys.readouterr().out)
    assert trajectory["provenance"].startswith("recorded: run ")
    assert [[c["name"] for c in t["tool_calls"]] for t in trajectory["attempts"][0]] == [
        ["read_file", "search"],
        ["edit"],
        ["run"],
        ["submit"],
    ]
    fixture_repo.write_agent("replayed", "replay", trajectory=trajectory, mode="tools")
    shutil.rmtree(fixture_repo.runs)
    assert fixture_repo.run("run", "--agent", "replayed") == 0
    replayed = [
        (e["step"], e["name"], e["ok"]) for e in fixture_repo.events() if e["kind"] == "tool_call"
    ]
    assert replayed == calls and len(server.requests) == 4


def test_anthropic_refused_calls_are_fed_back_and_the_attempt_goes_on(fixture_repo, serve):
    outside = fixture_repo.root.parent / "outside.py"
    escape = turn(
        "Try the walls.",
        ("read_file", {"path": "../../etc/passwd"}),
        ("read_file", {"path": "/etc/passwd"}),
        ("list_dir", {"path": ".git"}),
        ("edit", {"path": "runtime/tests/python/test_ops.py", "content": "def test_x(): pass\n"}),
        ("edit", {"path": "../outside.py", "content": "x = 1\n"}),
        ("search", {"pattern": "root", "path": "../"}),
    )
    server = serve("anthropic", [escape, EDIT, SUBMIT])
    tools_agent(fixture_repo, "tools-anthropic", "anthropic", server)
    assert fixture_repo.run("run") == 0
    first = server.requests[0]["body"]
    assert [t["name"] for t in first["tools"]] == TOOL_NAMES
    assert first["tools"][0]["input_schema"]["required"] == ["path"]
    # The refusals come back as tool_result blocks with is_error, paired with tool_use ids.
    sent = server.requests[1]["body"]["messages"]
    uses = [b["id"] for b in sent[1]["content"] if b["type"] == "tool_use"]
    results = sent[2]["content"]
    assert sent[2]["role"] == "user" and [r["tool_use_id"] for r in results] == uses
    assert all(r["is_error"] and r["content"].startswith("refused") for r in results)
    assert "PROTECTED" in results[3]["content"]
    refused = tool_events(fixture_repo, step=1)
    assert len(refused) == 6 and all(e["refused"] for e in refused)
    assert not outside.exists()
    accepted = next(e for e in fixture_repo.events() if e["kind"] == "accepted")
    tests = git(fixture_repo.root, "show", f"{accepted['branch']}:runtime/tests/python/test_ops.py")
    assert tests.startswith("import numpy as np")
    finished = next(e for e in fixture_repo.events() if e["kind"] == "attempt_finished")
    assert (finished["edit_blocks"], finished["edit_failures"]) == (3, 2)


def test_step_and_token_limits_end_the_attempt_without_grading(fixture_repo, serve):
    server = serve("openai", [LOOK])  # reads forever
    tools_agent(fixture_repo, "tools-steps", "openai", server, max_steps=2, attempts=1)
    assert fixture_repo.run("run") == 1
    finished = next(e for e in fixture_repo.events() if e["kind"] == "attempt_finished")
    assert finished["failed_stage"] == "limit" and "step limit reached" in finished["feedback"]
    assert len(server.requests) == 2 and finished["steps"] == 2
    assert not any(e["kind"] == "stage" for e in fixture_repo.events())  # never graded
    # The last steps carry a note that the limit is near.
    assert "1 step(s) left" in server.requests[1]["body"]["messages"][-1]["content"]

    server = serve("openai", [LOOK])
    shutil.rmtree(fixture_repo.runs)
    tools_agent(fixture_repo, "tools-tokens", "openai", server, attempt_tokens=2000, attempts=1)
    assert fixture_repo.run("run") == 1
    finished = next(e for e in fixture_repo.events() if e["kind"] == "attempt_finished")
    assert finished["failed_stage"] == "limit" and "token limit" in finished["feedback"]
    assert len(server.requests) == 2  # 1200 tokens per reply: 2400 >= 2000 after two


def test_resume_mid_attempt_replays_recorded_steps_without_model_calls(fixture_repo, serve):
    server = serve("openai", [LOOK, EDIT, ("hang", 30)])
    tools_agent(fixture_repo, "tools-resume", "openai", server)
    cmd = [sys.executable, "-m", "harness", "--repo", str(fixture_repo.root), "run"]
    cmd += unsandboxed_flag(("run",))
    env = dict(os.environ, PYTHONPATH=str(REAL_REPO))
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:  # killed while waiting for the model's third turn
        assert wait_for(lambda: len(server.requests) == 3), proc.stderr.read1()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    run_id = fixture_repo.run_dir().name
    assert [e["name"] for e in tool_events(fixture_repo)] == ["read_file", "search", "edit"]
    server.script[:] = [CHECK, SUBMIT]
    assert fixture_repo.run("run", "--resume", run_id) == 0
    assert len(server.requests) == 5  # steps 3 and 4 only: steps 1-2 were not asked again
    resumed = server.requests[3]["body"]["messages"]
    roles = ["system", "user", "assistant", "tool", "tool", "assistant", "tool"]
    assert [m["role"] for m in resumed] == roles
    assert "def double(x):" in resumed[3]["content"]  # step 1's output, read back
    events = fixture_repo.events()
    assert [e["step"] for e in events if e["kind"] == "llm_response"] == [1, 2, 3, 4]
    assert not any(e["kind"] == "replay_diverged" for e in events)
    accepted = next(e for e in events if e["kind"] == "accepted")
    shown = git(fixture_repo.root, "show", f"{accepted['branch']}:{OPS}")
    assert "def triple" in shown  # the step-2 edit, executed again on the fresh worktree
    assert json.loads((fixture_repo.run_dir() / "summary.json").read_text())["mode"] == "tools"


def test_toolbox_reads_searches_and_polices_selectors(fixture_repo):
    from harness.agent.toolbox import Toolbox
    from harness.config import load_goals
    from harness.grading import Grader
    from harness.providers import ToolCall
    from harness.workspace import Workspace, resolve_base

    fixture_repo.write_goals(light=True)
    (goal,) = load_goals(fixture_repo.root / "goals.yaml")
    ws = Workspace(fixture_repo.root, goal.id, "unit")
    try:
        base = resolve_base(ws.repo, "HEAD")
        ws.prepare(base)
        box = Toolbox(ws, goal, base, Grader(ws, goal, base, []), fixture_repo.root / "logs", 300)

        def call(name, **args):
            return box.execute(ToolCall("c1", name, args), 1)

        read = call("read_file", path=OPS, start_line=4, end_line=5)
        assert (
            read.content.startswith(f"{OPS} lines 4-5 of 5\n")
            and "     4\tdef double(x):" in read.content
        )
        assert "cut:" in call("read_file", path="tools/build.py").content  # 300-char output limit
        found = call("search", pattern=r"^def ", path="runtime/**/*.py")
        assert "runtime/python/ember/ops.py:4: def double(x):" in found.content
        assert call("search", pattern="(").is_error  # invalid regex: an error, not a crash
        for selector in ("--rootdir=/ x", "../elsewhere", "/etc -k x"):
            outcome = call("run", target="pytest", selector=selector)
            assert outcome.refused, selector
        assert call("run", target="cpp_tests", selector="-E x").refused
        assert call("frobnicate").is_error and "unknown tool" in call("frobnicate").content
        assert "bad arguments" in call("read_file", nope=1).content
        bad_json = box.execute(ToolCall("c2", "edit", {}, "arguments are not valid JSON"), 1)
        assert bad_json.is_error and "not valid JSON" in bad_json.content
        assert call("edit", path=OPS).is_error  # neither search/replace nor content
    finally:
        ws.close()


def test_tool_run_is_sandboxed_and_its_output_reaches_the_model_clean(
    fixture_repo, serve, tmp_path
):
    """The tools agent's `run` executes model code in the sandbox: no write outside the
    worktree, no secret in its environment, nothing of the harness's processes visible."""
    if sandbox_missing():
        pytest.skip(sandbox_missing())
    canary = tmp_path / "canary.txt"
    probe_code = (
        "import os, pathlib\n"
        "try:  # bwrap made the bound worktree's parents on the private /tmp: this may 'work'\n"
        f"    pathlib.Path({str(canary)!r}).write_text('escaped')\n"
        "except OSError:\n"
        "    pass\n"
        "keys = sorted(k for k in os.environ if 'KEY' in k)\n"
        "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "raise RuntimeError(f'probe: keys={keys} own_pid_namespace={len(pids) < 20}')\n"
    )
    hostile = dict(ADD_TRIPLE, replace=ADD_TRIPLE["replace"] + "\n\n" + probe_code)
    server = serve("openai", [turn("Add triple.", ("edit", hostile)), CHECK, SUBMIT])
    tools_agent(fixture_repo, "tools-hostile", "openai", server, attempts=1)
    assert fixture_repo.run("run") == 1
    run_result = server.requests[2]["body"]["messages"][-1]["content"]
    assert "[pytest] FAILED" in run_result
    assert "probe: keys=[] own_pid_namespace=True" in run_result, run_result
    assert not canary.exists()  # not on the host
    assert "sk-test-OPENAI" not in json.dumps([r["body"] for r in server.requests])
