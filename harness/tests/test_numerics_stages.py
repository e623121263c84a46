"""Regression growth (never raises, data files) and the performance stage, on the fixture repo."""

from __future__ import annotations

import json

import pytest

from harness.config import load_goals
from harness.errors import ConfigError
from harness.regressions import candidates_from_stage, case_file
from harness.tests.numerics_support import on_import, triple, triple_goal
from harness.tests.support import GOOD, sr

PERFORMANCE = """\
      performance:
        - name: triple_speed
          ember: {ember}
          torch: "lambda x: x * {factor}"
          baseline: {baseline}
          shape: [64, 64]
          dtype: float64
          repeats: 5
          warmup: 1
          min_speedup: {min_speedup}
          max_speedup: {max_speedup}
"""


def setup(repo, replies, attempts=2, performance=""):
    (repo.root / "goals.yaml").write_text(triple_goal("scripted", attempts, performance))
    repo.commit("goal")
    repo.write_agent("scripted", "replay", trajectory=replies)
    code = repo.run("run")
    return code, [e for e in repo.events() if e["kind"] == "attempt_finished"], repo.events()


def test_raising_attempt_then_accepted_grows_a_regression(fixture_repo):
    """The op raised on attempt 1 (once: KeyError 'ember' while growing, exit 3)."""
    code, finished, events = setup(fixture_repo, [triple("raise RuntimeError('not yet')\n"), GOOD])
    assert code == 0
    assert [(e["failed_stage"], e["ok"]) for e in finished] == [("numerics", False), (None, True)]
    assert "ember raised RuntimeError: not yet in call" in finished[0]["feedback"]
    (written,) = [e for e in events if e["kind"] == "regression_written"]
    grown = json.loads(
        (fixture_repo.root / ".harness/slots/triple/src" / written["path"]).read_text()
    )
    assert grown["provenance"]["failed_attempt"] == 1 and len(grown["cases"]) == 2
    assert "not yet" in grown["cases"][0]["note"]


def test_candidates_never_raise_on_incomplete_rows():
    stage = {
        "name": "numerics",
        "details": {"failing_cases": [{"check": "x", "error": "boom"}, {}]},
    }
    assert candidates_from_stage(stage, 1) is None
    assert candidates_from_stage({"name": "numerics"}, 1) is None
    assert candidates_from_stage({"name": "build", "details": {}}, 1) is None
    assert case_file({"cases": [{"name": "only"}], "attempt": 1}, "g", "r", 2, "m") is None
    pytest_candidate = candidates_from_stage(
        {"name": "pytest", "details": {"failed_selectors": ["t -k a"]}}, 3
    )
    grown = case_file(pytest_candidate, "g", "r", 4, "m")
    assert grown.selectors == ["t -k a"] and grown.provenance["failed_attempt"] == 3


def perf(ember="ember.ops.triple", factor=3, baseline="torch", min_speedup=0.001, max_speedup=10.0):
    return PERFORMANCE.format(
        ember=ember,
        factor=factor,
        baseline=baseline,
        min_speedup=min_speedup,
        max_speedup=max_speedup,
    )


def test_performance_accepts_a_plausible_speed(fixture_repo):
    # microsecond timings on a loaded CI machine once put torch's x * 3 at 10.04x the numpy
    # fixture; the 10x limit itself is test_implausible_speedup_is_flagged_for_a_human's subject
    check = perf(max_speedup=1000.0)
    code, finished, _ = setup(fixture_repo, [GOOD], attempts=1, performance=check)
    assert code == 0, finished[0]["feedback"]
    verdict = json.loads((fixture_repo.run_dir() / "attempts/001/verdict.json").read_text())
    (timing,) = verdict["stages"][-2]["details"]["timings"]
    assert timing["ok"] and timing["ember_s"] > 0 and timing["baseline_s"] > 0


def test_performance_rejects_slow_code_with_the_times(fixture_repo):
    slow = triple("import time\ntime.sleep(0.02)\nreturn x * 3\n")
    code, finished, _ = setup(fixture_repo, [slow], attempts=1, performance=perf(min_speedup=0.5))
    assert code == 1 and finished[0]["failed_stage"] == "performance"
    feedback = finished[0]["feedback"]
    assert "ember " in feedback and "vs torch" in feedback and "needs at least 0.5x" in feedback


def test_performance_checks_outputs_of_the_timed_calls(fixture_repo):
    # right on the small numerics shapes, wrong on the timed [64, 64] inputs
    sized = triple("return x * 3 if x.data.size < 100 else x * 3.5\n")
    code, finished, _ = setup(fixture_repo, [sized], attempts=1, performance=perf())
    assert code == 1 and finished[0]["failed_stage"] == "performance"
    assert "timed calls were wrong" in finished[0]["feedback"]


def test_implausible_speedup_is_flagged_for_a_human(fixture_repo):
    # a clock that runs 10000x slow inside the ember child: ember looks 10000x faster
    fake_clock = GOOD + on_import(
        "import time\n_real = time.perf_counter\ntime.perf_counter = lambda: _real() / 10000\n"
    )
    code, finished, events = setup(fixture_repo, [fake_clock, GOOD], attempts=2, performance=perf())
    assert code == 1 and len(finished) == 1  # the run stops: a human decides
    assert finished[0]["failed_stage"] == "performance"
    assert "flagged for a human to review" in finished[0]["feedback"]
    assert events[-1]["kind"] == "run_finished" and events[-1]["outcome"] == "flagged"


def test_performance_against_the_base_commit(fixture_repo):
    slower_double = sr(
        "runtime/python/ember/ops.py",
        "def double(x):\n    return x * 2\n",
        "def double(x):\n    import time\n    time.sleep(0.02)\n    return x * 2\n",
    )
    # 20 ms against microseconds: far below 0.1x; the honest one is noise around 1x (a loaded
    # 2-core machine swings tiny timings by more than 2x)
    check = perf(
        ember="ember.ops.double", factor=2, baseline="base", min_speedup=0.1, max_speedup=1000.0
    )
    code, finished, _ = setup(
        fixture_repo, [GOOD + slower_double, GOOD], attempts=2, performance=check
    )
    assert code == 0, [f["feedback"] for f in finished]
    assert finished[0]["failed_stage"] == "performance" and "vs base" in finished[0]["feedback"]


def test_performance_config_validation(tmp_path):
    text = triple_goal("scripted", 1, perf(baseline="base")).replace("build: false", "build: true")
    text = text.replace("repeats: 5", "repeats: 2")
    (tmp_path / "goals.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_goals(tmp_path / "goals.yaml")
    messages = "\n".join(info.value.messages)
    assert "baseline: 'base' needs acceptance.build: false" in messages
    assert "repeats: at least 3" in messages
