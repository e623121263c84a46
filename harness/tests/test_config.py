"""Goal/agent validation: line-numbered errors, exit code 2, no tracebacks."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.config import load_agent, load_goals
from harness.errors import ConfigError

VALID = """\
version: 1
goals:
  - id: a
    title: A
    intent: do a
    scope: ["runtime/**"]
    acceptance:
      numerics:
        - name: n
          ember: ember.exp
          torch: torch.exp
          shapes: [[3]]
"""


def errors_for(tmp_path, text):
    path = tmp_path / "goals.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_goals(path)
    return info.value.messages


def test_valid_goals_get_defaults(tmp_path):
    (tmp_path / "goals.yaml").write_text(VALID)
    (goal,) = load_goals(tmp_path / "goals.yaml")
    assert goal.budget.attempts == 3 and goal.acceptance.build is True
    assert goal.acceptance.numerics[0].dtypes == ["float32"]
    assert "harness/**" in goal.all_protected and "**/conftest.py" in goal.all_protected
    assert goal.commands.build.startswith("cmake --build")


def test_unknown_key_reports_its_line(tmp_path):
    messages = errors_for(tmp_path, VALID.replace("    scope:", "    scoop: 1\n    scope:"))
    assert any(m.startswith("goals.yaml:6: goals[0]: unknown key 'scoop'") for m in messages)


def test_wrong_type_reports_its_line(tmp_path):
    text = VALID + "    budget:\n      attempts: three\n"
    messages = errors_for(tmp_path, text)
    assert messages == [
        "goals.yaml:14: goals[0].budget.attempts: expected integer, got str 'three'"
    ]


def test_nested_numerics_errors(tmp_path):
    text = VALID.replace("shapes: [[3]]", "shapes: [[3]]\n          dtypes: [float16]")
    messages = errors_for(tmp_path, text)
    assert any("goals.yaml:13:" in m and "numerics[0].dtypes[0]" in m for m in messages), messages


def test_duplicate_ids_and_missing_keys(tmp_path):
    text = VALID + "  - id: a\n    title: again\n"
    messages = errors_for(tmp_path, text)
    assert any(
        "goals.yaml:13: goals[1]: duplicate goal id 'a' (first defined at line 3)" in m
        for m in messages
    ), messages
    assert any("missing required key 'intent'" in m for m in messages)


def test_duplicate_yaml_key_and_syntax_error(tmp_path):
    messages = errors_for(tmp_path, VALID.replace("    title: A\n", "    title: A\n    title: B\n"))
    assert any("line 5: duplicate key 'title' (first at line 4)" in m for m in messages)
    messages = errors_for(tmp_path, "goals: [\n  - id: x\n")
    assert messages[0].startswith(f"{tmp_path / 'goals.yaml'}:") and "invalid YAML" in messages[0]


def test_cli_check_exits_2_without_traceback(tmp_path, capsys):
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "goals.yaml").write_text(VALID.replace("id: a", "id: [a]"))
    assert main(["--repo", str(tmp_path), "goals", "--check"]) == 2
    err = capsys.readouterr().err
    assert "goals.yaml:3: goals[0].id: expected string" in err and "Traceback" not in err
    (tmp_path / "goals.yaml").write_text(VALID)
    assert main(["--repo", str(tmp_path), "goals", "--check"]) == 0
    assert main(["--repo", str(tmp_path), "run", "--goal", "nope"]) == 2
    assert "unknown goal 'nope'" in capsys.readouterr().err


def test_agent_validation(tmp_path):
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "x.yaml").write_text("role: coder\nprovider: gpt\nmodel: m\n")
    with pytest.raises(ConfigError) as info:
        load_agent(tmp_path, "x")
    assert "x.yaml:2: agent.provider: expected one of 'openai'" in info.value.messages[0]
    with pytest.raises(ConfigError, match="not found"):
        load_agent(tmp_path, "missing")


def test_shipped_goals_and_agents_are_valid():
    from harness.tests.support import REAL_REPO

    goals = load_goals(REAL_REPO / "goals.yaml")
    assert sum(g.default for g in goals) == 1
    for path in (REAL_REPO / "agents").glob("*.yaml"):
        agent = load_agent(REAL_REPO, path.stem)
        assert agent.provider in ("openai", "anthropic", "openai-compatible", "replay")
