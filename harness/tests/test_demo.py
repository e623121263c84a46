"""The shipped offline demo (goals.yaml default goal + replay-demo agent), on the fake runtime."""

from __future__ import annotations

import json
import shutil

from harness.tests.support import REAL_REPO, git


def test_shipped_demo_fails_numerics_then_accepts_with_regression(fixture_repo):
    root = fixture_repo.root
    shutil.copy(REAL_REPO / "goals.yaml", root / "goals.yaml")
    shutil.rmtree(root / "agents")
    shutil.copytree(REAL_REPO / "agents", root / "agents")
    fixture_repo.commit("shipped goals and agents")
    assert fixture_repo.run("run", "--json") == 0  # no --goal: the default goal
    events = fixture_repo.events()
    assert events[0]["goal"] == "contrib-gelu-tanh" and events[0]["agent"] == "replay-demo"
    finished = [e for e in events if e["kind"] == "attempt_finished"]
    assert [(e["ok"], e["failed_stage"]) for e in finished] == [(False, "numerics"), (True, None)]
    assert "gelu_tanh forward" in finished[0]["feedback"]
    assert "max_abs=" in finished[0]["feedback"]
    prompt2 = (fixture_repo.run_dir() / "attempts/002/prompt.md").read_text()
    assert "Attempt 1 feedback" in prompt2 and "numerics cases failed vs PyTorch" in prompt2
    response = next(e for e in events if e["kind"] == "llm_response")
    assert response["usage_source"] == "estimated" and response["cost_usd"] == 0.0
    accepted = next(e for e in events if e["kind"] == "accepted")
    branch = accepted["branch"]
    assert branch.startswith("harness/contrib-gelu-tanh/")
    files = git(root, "show", "--name-only", "--format=", branch).split()
    assert "runtime/python/ember/contrib/activations.py" in files
    assert len(accepted["regressions"]) == 1 and accepted["regressions"][0] in files
    grown = json.loads(git(root, "show", f"{branch}:{accepted['regressions'][0]}"))
    assert grown["provenance"]["model"] == "replay:scripted-demo"
    assert {c["name"] for c in grown["cases"]} == {"gelu_tanh"}
    code = git(root, "show", f"{branch}:runtime/python/ember/contrib/activations.py")
    assert "_CUBIC = 0.044715" in code
    assert "ember/contrib/activations.py" not in git(root, "ls-files")  # no --merge given


def test_shipped_tools_demo_runs_numerics_fixes_and_submits(fixture_repo):
    root = fixture_repo.root
    shutil.copy(REAL_REPO / "goals.yaml", root / "goals.yaml")
    shutil.rmtree(root / "agents")
    shutil.copytree(REAL_REPO / "agents", root / "agents")
    fixture_repo.commit("shipped goals and agents")
    assert fixture_repo.run("run", "--agent", "replay-tools-demo") == 0
    events = fixture_repo.events()
    runs = [e for e in events if e["kind"] == "tool_call" and e["name"] == "run"]
    assert [(e["category"], e["ok"]) for e in runs] == [("numerics", False), ("numerics", True)]
    first_check = (fixture_repo.run_dir() / "attempts/001/steps").glob(f"003-{runs[0]['call_id']}*")
    assert "numerics cases failed vs PyTorch" in next(first_check).read_text()
    finished = [e for e in events if e["kind"] == "attempt_finished"]
    assert [(e["ok"], e["steps"]) for e in finished] == [(True, 6)]
    branch = next(e for e in events if e["kind"] == "accepted")["branch"]
    code = git(root, "show", f"{branch}:runtime/python/ember/contrib/activations.py")
    assert "_CUBIC = 0.044715\n" in code
