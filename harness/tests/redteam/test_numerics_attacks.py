"""The split numerics pipeline's own guarantees: an honest change passes both draws and the grown
regression; the PyTorch child ignores site customization; the ember child cannot import torch.
The hostile numerics replies are rows of the red-team table (cases.py, NUMERICS_CASES)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from harness.numerics import ReferenceServer, child_command
from harness.tests.numerics_support import DOUBLE_CASE, triple_goal
from harness.tests.support import GOOD
from numcheck.wire import CaseRequest, Request, dump_request, load_outcomes


@pytest.fixture
def hostile_repo(fixture_repo):
    (fixture_repo.root / "goals.yaml").write_text(triple_goal("hostile"))
    cases = fixture_repo.root / "regressions" / "cases"
    (cases / "double_earlier_a1.json").write_text(json.dumps(DOUBLE_CASE, indent=1))
    fixture_repo.commit("hostile goal and a grown regression")
    return fixture_repo


def play(repo, reply: str) -> dict:
    repo.write_agent("hostile", "replay", trajectory=[reply])
    code = repo.run("run")
    finished = [e for e in repo.events() if e["kind"] == "attempt_finished"]
    return {"code": code, **finished[-1]}


def test_honest_control_is_accepted_with_regressions(hostile_repo):
    result = play(hostile_repo, GOOD)
    assert result["code"] == 0 and result["ok"], result["feedback"]
    stages = {
        s["name"]: s
        for s in json.loads((hostile_repo.run_dir() / "attempts/001/verdict.json").read_text())[
            "stages"
        ]
    }
    assert stages["numerics"]["details"]["draws"] == 2
    assert stages["regression"]["details"]["cases"] == 2  # the grown case on two draws


def test_reference_child_ignores_site_customization(tmp_path, monkeypatch):
    """PYTHONPATH, sitecustomize, usercustomize and .pth files change nothing in the reference."""
    evil = tmp_path / "evil"
    evil.mkdir()
    patch = "import numpy\nnumpy.multiply = lambda *a, **k: 0\nraise SystemExit('loaded')\n"
    for name in ("sitecustomize.py", "usercustomize.py", "torch.py"):
        (evil / name).write_text(patch)
    (evil / "evil.pth").write_text("import sitecustomize\n")
    monkeypatch.setenv("PYTHONPATH", str(evil))
    monkeypatch.setenv("PYTHONSTARTUP", str(evil / "sitecustomize.py"))
    monkeypatch.chdir(evil)
    server = ReferenceServer(tmp_path / "reference.log", 120)
    x = np.arange(6.0).reshape(2, 3)
    try:
        reply = server.ask(dump_request(Request([CaseRequest("lambda x: x * 3", "float64", [x])])))
    finally:
        server.close()
    (outcome,) = load_outcomes(reply, 1)
    assert outcome.raised is None and np.array_equal(outcome.outputs[0], x * 3)


def test_ember_child_cannot_import_torch(tmp_path):
    runtime = tmp_path / "runtime"
    (runtime / "ember").mkdir(parents=True)
    (runtime / "ember" / "__init__.py").write_text("import torch\n")
    request = tmp_path / "request.npz"
    request.write_bytes(
        dump_request(Request([CaseRequest("ember.anything", "float64", [np.zeros(2)])]))
    )
    output = tmp_path / "out.npz"
    argv = child_command(
        "ember", "--request", str(request), "--output", str(output), path=[str(runtime)]
    )
    done = subprocess.run(argv, capture_output=True, text=True, env={"PYTHONPATH": str(runtime)})
    assert done.returncode == 0, done.stderr
    (outcome,) = load_outcomes(output.read_bytes(), 1)
    assert outcome.raised and outcome.raised.where == "import"
    assert "not importable while ember is graded" in outcome.raised.message
    assert sys.executable in argv and "-I" in argv and "-S" in argv
