"""`harness bench` on the fixture repo (--jobs 2, resume), `harness report`, pass@k."""

from __future__ import annotations

import io
import itertools
import json
import math
import threading
import time
from types import SimpleNamespace

import pytest
from rich.console import Console

from harness.bench import Bench, BenchJob, BenchPlan
from harness.display import BenchDisplay, RichBenchDisplay
from harness.executor import LocalExecutor, RunOutcome
from harness.report import pass_at_k, write_report
from harness.tests.support import GOALS, GOOD

MALFORMED = "runtime/python/ember/ops.py\n<<<<<<< SEARCH\n    return x * 2\n>>>>>>> REPLACE\n"


def test_pass_at_k_matches_the_combinatorial_definition():
    for n, c, k in itertools.product(range(1, 7), range(0, 7), range(1, 7)):
        if c > n or k > n:
            continue
        # P(at least one correct among k drawn without replacement from n with c correct)
        exact = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert math.isclose(pass_at_k(n, c, k), exact, abs_tol=1e-12), (n, c, k)


def test_bench_two_at_a_time_resumes_and_reports(fixture_repo, capsys):
    fixture_repo.write_agent("good", "replay", trajectory=[GOOD])
    fixture_repo.write_agent("sloppy", "replay", trajectory=[MALFORMED])
    fixture_repo.write_goals(agent="good", attempts=1, light=True)
    args = ["bench", "--agents", "good,sloppy", "--samples", "2", "--jobs", "2", "--bench-id", "t"]
    assert fixture_repo.run(*args) == 0
    bench = fixture_repo.runs / "bench-t"
    results = [json.loads(line) for line in (bench / "results.jsonl").read_text().splitlines()]
    assert sorted((r["agent"], r["sample"], r["accepted"]) for r in results) == [
        ("good", 1, True),
        ("good", 2, True),
        ("sloppy", 1, False),
        ("sloppy", 2, False),
    ]
    assert {r["lane"] for r in results} == {0, 1}  # two lanes, each with its own worktree
    assert results[0]["run_id"].startswith("t--triple--")  # branch names stay unique per bench
    slots = sorted(p.name for p in (fixture_repo.root / ".harness/slots").iterdir())
    assert slots == ["bench-lane-0", "bench-lane-1"]
    good = next(r for r in results if r["agent"] == "good")
    assert good["outcome"] == "accepted" and good["tests_s"] > 0 and good["build_s"] > 0
    sloppy = next(r for r in results if r["agent"] == "sloppy")
    assert sloppy["failing_stages"] == ["apply"] and sloppy["edit_failures"] == 1
    # A bench killed before writing a result redoes only that run (its record says finished).
    lines = (bench / "results.jsonl").read_text().splitlines()
    (bench / "results.jsonl").write_text("\n".join(lines[:3]) + "\n")
    events_before = len(
        (bench / "runs" / results[3]["run_id"] / "events.jsonl").read_text().splitlines()
    )
    assert fixture_repo.run("bench", "--resume", "t") == 0
    assert len((bench / "results.jsonl").read_text().splitlines()) == 4
    events_after = (bench / "runs" / results[3]["run_id"] / "events.jsonl").read_text().splitlines()
    assert len(events_after) == events_before  # a finished run is reported, not run again
    capsys.readouterr()
    assert fixture_repo.run("report", "t") == 0
    report = (bench / "report" / "report.md").read_text()
    assert "| good | patch | 2 | 1 | 1.00 | 1.00 (2) | 2 |" in report
    assert "| sloppy | patch | 2 | 1 | 0.00 | 0.00 (2) | 0 |" in report
    assert "| apply | 2 |" in report
    for png in ("pass_rates", "to_acceptance", "cost", "wall_time", "failures"):
        data = (bench / "report" / f"{png}.png").read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000, png
        assert f"]({png}.png)" in report


def row(goal, agent, sample, accepted, category="c", **extra):
    base = {
        "goal": goal, "category": category, "agent": agent, "sample": sample,
        "run_id": f"{goal}--{agent}--s{sample}", "mode": "patch", "outcome": "accepted" if accepted else "budget",
        "accepted": accepted, "attempts": 1 if accepted else 3, "accepted_attempt": 1 if accepted else None,
        "steps": 1, "tool_calls": 0, "tokens": 1000, "dollars": 0.01, "wall_s": 10.0, "model_s": 2.0,
        "build_s": 5.0, "tests_s": 2.0, "numerics_s": 1.0, "other_s": 0.0,
        "failing_stages": [] if accepted else ["build", "numerics", "numerics"],
        "edit_blocks": 2, "edit_failures": 0, "reason": "r",
    }  # fmt: skip
    return dict(base, **extra)


def test_report_tables_and_unsolved_goals(tmp_path):
    rows = [row("g1", "a", s, s == 1) for s in (1, 2, 3)]  # 1 of 3: pass@1 1/3, pass@3 1
    rows += [row("g2", "a", s, False, category="d") for s in (1, 2, 3)]
    rows += [row("g1", "b", s, True, edit_failures=1) for s in (1, 2, 3)]
    rows += [row("g2", "b", s, False, category="d") for s in (1, 2, 3)]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = write_report([tmp_path / "results.jsonl"], tmp_path / "out").read_text()
    assert "| a | patch | 6 | 2 | 0.17 | 0.50 (3) | 1 |" in report
    assert "| b | patch | 6 | 2 | 0.50 | 0.50 (3) | 3 |" in report
    assert "| c | 1 | 0.33 / 1.00 (k=3) | 1.00 / 1.00 (k=3) |" in report
    assert "| g2 | d | 6 | numerics |" in report  # nobody solved g2; numerics failed most
    assert (
        "| b | patch | 6 | 2 | 0.50 | 0.50 (3) | 3 | 1.00 | 1.00 | 2,000 | 0.0200 | 25.0% |"
        in report
    )


def test_bench_progress_never_silent():
    plan = BenchPlan("x", ["goals.yaml"], ["a"], 1, 1, [], "now")
    job = BenchJob("goals.yaml", "g", "c", "a", 1, "x")
    running = [SimpleNamespace(job=job, lane=0, started=0.0, attempt=2, status="numerics ok")]
    out = io.StringIO()
    plain = BenchDisplay(Console(file=out, width=200))
    plain.heartbeat_s = 0.0
    plain.start(plan, 2, [])
    plain.started(job, 0)
    plain.update(running, [])
    plain.finished(row("g", "a", 1, True))
    plain.stop([row("g", "a", 1, True)])
    text = out.getvalue()
    for needle in (
        "2 runs",
        "start  g / a #1",
        "running 1",
        "x--g--a--s1: numerics ok",
        "ACCEPTED",
    ):
        assert needle in text, needle
    out = io.StringIO()
    live = RichBenchDisplay(Console(file=out, force_terminal=True, width=120))
    live.start(plan, 2, [])
    live.update(running, [])
    live.live.refresh()
    live.stop([])
    text = out.getvalue()
    for needle in ("done 0/2", "running 1", "numerics ok", "harness bench x"):
        assert needle in text, needle


class RecordingLanes(LocalExecutor):
    """Local lanes that run nothing: each run takes 0.3 s and its start and end are recorded."""

    def __init__(self, repo, jobs):
        super().__init__(repo, jobs)
        self.spans: dict[str, tuple[float, float]] = {}

    def run(self, spec, log, on_start=None):
        lane = self.lanes.get()
        started = time.monotonic()
        time.sleep(0.3)
        self.spans[spec.goal["id"]] = (started, time.monotonic())
        self.lanes.put(lane)
        return RunOutcome(0, lane=lane, node="local")


def test_a_cold_compiler_cache_is_filled_by_one_build_first(fixture_repo):
    """Note [cold compiler cache]: the first building run goes alone, Python-only runs beside."""
    text = GOALS.format(agent="a", attempts=1, tokens=1000, stuck=3, stage_timeout=60)
    goal = text[text.index("  - id: triple") :].replace("    default: true\n", "")
    variants = [("b1", "true"), ("b2", "true"), ("b3", "true"), ("py", "false")]
    body = "".join(
        goal.replace("id: triple", f"id: {g}").replace("build: true", f"build: {b}")
        for g, b in variants
    )
    (fixture_repo.root / "suite.yaml").write_text("version: 1\ngoals:\n" + body)
    fixture_repo.write_agent("a", "replay", trajectory=[GOOD])

    def spans(bench_id):
        plan = BenchPlan(bench_id, ["suite.yaml"], ["a"], 1, 2, [], "now")
        lanes = RecordingLanes(fixture_repo.root, 2)
        display = BenchDisplay(Console(file=io.StringIO()))
        bench = Bench(fixture_repo.root, fixture_repo.runs / bench_id, plan, display, lanes)
        bench.run()
        return lanes.spans

    cold = spans("cold")
    first_done = cold["b1"][1]
    assert cold["py"][0] < first_done  # beside the first build
    assert all(cold[g][0] >= first_done for g in ("b2", "b3"))  # after it
    (fixture_repo.root / ".harness/ccache").mkdir(parents=True, exist_ok=True)
    (fixture_repo.root / ".harness/ccache/ccache.conf").write_text("")
    warm = spans("warm")
    assert warm["b2"][0] < warm["b1"][1]  # a warm cache: two builds at once


class BlockingLanes(LocalExecutor):
    """Lanes whose runs last until `stop()` (or 30 s): what a long build looks like."""

    def __init__(self, repo, jobs):
        super().__init__(repo, jobs)
        self.stopped = threading.Event()

    def run(self, spec, log, on_start=None):
        self.stopped.wait(30)
        return RunOutcome(1, lane=0, node="local")

    def stop(self):
        self.stopped.set()


def test_an_interrupted_bench_stops_its_running_runs_at_once(fixture_repo, monkeypatch):
    fixture_repo.write_goals(agent="a", attempts=1, light=True)
    fixture_repo.write_agent("a", "replay", trajectory=[GOOD])
    plan = BenchPlan("int", ["goals.yaml"], ["a"], 2, 2, [], "now")
    lanes = BlockingLanes(fixture_repo.root, 2)
    display = BenchDisplay(Console(file=io.StringIO()))
    bench = Bench(fixture_repo.root, fixture_repo.runs / "bench-int", plan, display, lanes)
    polls = iter([None, None])

    def poll():  # Ctrl-C arrives while both runs are going
        if next(polls, "interrupt") == "interrupt":
            raise KeyboardInterrupt

    monkeypatch.setattr(bench, "poll", poll)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        bench.run()
    assert lanes.stopped.is_set() and time.monotonic() - started < 10
