"""`harness nightly` on the fixture repo: runs, re-verification on the current target,
integration, the report and its trend; dry run, lock, budget; kills at several points."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import psutil

from harness.nightly import NightLock
from harness.tests.conftest import FAKE_KEYS
from harness.tests.nightly_support import (
    GOOD,
    events,
    finals,
    journal,
    make_night_repo,
    merges_of,
    night_log,
    results,
    slow,
    start_night,
    wait_for,
)
from harness.tests.support import git, sandbox_missing

DATE = "2031-01-02"


def night_dir(repo, date=DATE):
    return repo.runs / f"nightly-{date}"


def test_night_verifies_on_the_target_integrates_and_reports(fixture_repo, capsys):
    repo = make_night_repo(fixture_repo, mode="merge")
    base = git(repo.root, "rev-parse", "main").strip()
    assert repo.run("nightly", "--date", DATE) == 0
    night = night_dir(repo)
    rows = {r["goal"]: r for r in results(night)}
    assert sorted(rows) == ["negate", "quad", "triple"]  # not-tonight is not marked
    assert all(r["accepted"] for r in rows.values())
    assert rows["triple"]["accepted_attempt"] == 2  # numerics failed first: a regression grew
    final = {rows[g]["run_id"]: g for g in rows}
    by_goal = {final[run]: entry for run, entry in finals(night).items()}
    triple = by_goal["triple"]
    assert triple["kind"] == "integrated" and triple["how"] == "merge" and triple["onto"] == base
    assert len(triple["regressions"]) == 1
    # quad edits the same lines as triple: after triple landed it no longer applies.
    assert by_goal["quad"]["kind"] == "rejected" and by_goal["quad"]["stage"] == "merge"
    assert "conflicts in runtime/python/ember/ops.py" in by_goal["quad"]["reason"]
    # negate passed its own acceptance but breaks a test only the full suite runs.
    assert by_goal["negate"]["kind"] == "rejected"
    assert by_goal["negate"]["stage"].endswith("pytest")
    assert "test_double_of_two_is_four" in by_goal["negate"]["feedback"]
    # main moved to the verified merge, and its checkout with it: change + regression test.
    tip = git(repo.root, "rev-parse", "main").strip()
    assert tip == triple["merge_commit"] and merges_of(repo, rows["triple"]["run_id"]) == 1
    parents = git(repo.root, "rev-parse", f"{tip}^1", f"{tip}^2").split()
    assert (
        parents[0] == base
        and parents[1] == events(night, rows["triple"]["run_id"])[-1]["accepted"]["commit"]
    )
    assert "def triple" in (repo.root / "runtime/python/ember/ops.py").read_text()
    assert (repo.root / triple["regressions"][0]).exists()
    assert git(repo.root, "status", "--porcelain", "--untracked-files=no") == ""
    assert not (repo.root / "runtime/python/ember/negate.py").exists()
    # Every run started from the night's base, capped by the night's budget.
    for row in rows.values():
        started = next(e for e in events(night, row["run_id"]) if e["kind"] == "run_started")
        assert started["base"] == base
    # The report: the changes and why the others were not integrated; plots; trend; summary.
    report = (night / "report.md").read_text()
    for needle in (
        "# Nightly 2031-01-02",
        "**integrated**",
        "no longer applies on main",
        "fails on main",
        "test_double_of_two_is_four",
        "| 2031-01-02 | 3 | 100% |",
        "![trend: every night up to this one](trend.png)",
        "(bench/report.md)",
    ):
        assert needle in report, needle
    for png in ("night.png", "trend.png", "bench/pass_rates.png", "bench/cost.png"):
        data = (night / png).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000, png
    summary = json.loads((night / "summary.json").read_text())
    assert summary["push"] == ["main"] and len(summary["integrated"]) == 1
    # The keys the night had reached neither the verification (it runs the model's code) nor
    # any file the night wrote.
    checks = sorted(night.glob("verify/*/01-*.log"))
    assert len(checks) == 2 and all("keys seen: []" in p.read_text() for p in checks)
    for path in (p for p in night.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not any(key.encode() in data for key in FAKE_KEYS.values()), path
    # A second run of the same night is refused; --resume of a finished night changes nothing.
    capsys.readouterr()
    assert repo.run("nightly", "--date", DATE) == 2
    assert "--resume" in capsys.readouterr().err
    before = journal(night)
    assert repo.run("nightly", "--resume") == 0
    assert journal(night) == before and git(repo.root, "rev-parse", "main").strip() == tip


def test_review_mode_leaves_the_target_alone_and_trends_over_nights(fixture_repo):
    repo = make_night_repo(
        fixture_repo, mode="review", numerics=False, triple=[GOOD], goals=["triple", "quad"]
    )
    main = git(repo.root, "rev-parse", "main").strip()
    assert repo.run("nightly", "--date", "2031-01-01", "--agents", "night-replay") == 0
    assert git(repo.root, "rev-parse", "main").strip() == main
    review = git(repo.root, "rev-parse", "nightly/2031-01-01").strip()
    assert git(repo.root, "rev-parse", f"{review}^1").strip() == main
    assert "def triple" in git(repo.root, "show", f"{review}:runtime/python/ember/ops.py")
    # The next night starts from main again (the review branch was not merged): triple is
    # integrated into that night's branch again, quad conflicts with it again; goals still
    # open count across nights.
    assert repo.run("nightly", "--date", "2031-01-02") == 0
    second = night_dir(repo, "2031-01-02")
    report = (second / "report.md").read_text()
    assert "| 2031-01-01 | 2 | 100% |" in report and "| 2031-01-02 | 2 | 100% |" in report
    stats = json.loads((second / "summary.json").read_text())["stats"]
    assert stats["integrated_goals"] == ["triple"] and stats["goals_open"] == 1
    assert json.loads((second / "summary.json").read_text())["push"] == ["nightly/2031-01-02"]


def test_a_suite_goal_is_measured_never_integrated(fixture_repo):
    """A goal starting from a generated tree (here: a file dropped) is run and graded, but
    merging its change would merge the generated base too."""
    repo = make_night_repo(
        fixture_repo, mode="merge", numerics=False, triple=[GOOD], goals=["triple"]
    )
    (repo.root / "NOTES.md").write_text("kept on main\n")
    goals = (repo.root / "goals.yaml").read_text()
    goals = goals.replace(
        "    title: Add ember.ops.triple\n",
        "    title: Add ember.ops.triple\n    base_drop: [NOTES.md]\n",
    )
    (repo.root / "goals.yaml").write_text(goals)
    repo.commit("triple starts from a generated base")
    main = git(repo.root, "rev-parse", "main").strip()
    assert repo.run("nightly", "--date", DATE) == 0
    night = night_dir(repo)
    (row,) = results(night)
    assert row["goal"] == "triple" and row["accepted"]
    (entry,) = finals(night).values()
    assert entry["kind"] == "rejected" and entry["stage"] == "measurement"
    assert "never integrated" in entry["reason"]
    assert git(repo.root, "rev-parse", "main").strip() == main
    assert (repo.root / "NOTES.md").read_text() == "kept on main\n"


def snapshot(repo) -> dict:
    files = sorted(
        str(p.relative_to(repo.root)) for d in ("runs", ".harness") for p in (repo.root / d).rglob("*")
    ) if any((repo.root / d).exists() for d in ("runs", ".harness")) else []  # fmt: skip
    return {
        "refs": git(repo.root, "for-each-ref", "--format=%(refname) %(objectname)"),
        "worktrees": git(repo.root, "worktree", "list", "--porcelain"),
        "status": git(repo.root, "status", "--porcelain", "--ignored"),
        "files": files,
    }


def test_dry_run_plans_the_night_and_touches_nothing(fixture_repo, capsys):
    repo = make_night_repo(fixture_repo, budget="{dollars: 1.5, tokens: 1000000, wall_seconds: 60}")
    before = snapshot(repo)
    capsys.readouterr()
    assert repo.run("nightly", "--dry-run", "--date", DATE) == 0
    out = capsys.readouterr().out
    assert snapshot(repo) == before
    for needle in (
        "night nightly-2031-01-02 (dry run",
        "runs:        3 (3 goal(s) x 1 agent(s)",
        "triple with night-replay (replay:replay-test-model); cap $1.00",
        "would not start (budget)",  # $1.50 of night budget: the third goal gets no share
        "lock:        free",
    ):
        assert needle in out, needle
    assert repo.run("nightly", "--dry-run", "--agents", "no-such-agent") == 2
    assert snapshot(repo) == before


def test_a_second_night_on_the_repo_is_refused_naming_the_holder(fixture_repo, capsys):
    repo = make_night_repo(fixture_repo)
    lock = NightLock(repo.root)
    lock.acquire("nightly-other")
    try:
        capsys.readouterr()
        assert repo.run("nightly", "--date", DATE) == 2
        err = capsys.readouterr().err
        assert f"pid {os.getpid()}" in err and "nightly-other" in err and "nightly.lock" in err
        assert not night_dir(repo).exists()
    finally:
        lock.release()


def test_night_budget_caps_runs_and_skips_what_does_not_fit(fixture_repo):
    # A run starts only with 10% of its own budget (100k tokens) left: the first run gets the
    # night's 10,500 tokens as its cap and spends some; the other two do not start.
    repo = make_night_repo(
        fixture_repo, numerics=False, triple=[GOOD],
        budget="{dollars: 10.0, tokens: 10500, wall_seconds: 3600}",
    )  # fmt: skip
    assert repo.run("nightly", "--date", DATE) == 0
    night = night_dir(repo)
    state = json.loads((night / "state.json").read_text())
    (ran,) = results(night)
    assert ran["goal"] == "triple" and 0 < ran["tokens"] <= 10500
    assert sorted(state["not_started"]) == sorted(
        r for r in (f"nightly-{DATE}--{g}--night-replay--s1" for g in ("quad", "negate"))
    )
    goal = json.loads((night / "runs" / ran["run_id"] / "goal.json").read_text())
    assert goal["budget"]["tokens"] == 10500  # capped by the night, not the goal's 100k
    assert "night budget: not enough tokens" in (night / "report.md").read_text()


# ---------------------------------------------------------------- killed and resumed


def kill_group(proc: subprocess.Popen):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def assert_nothing_repeated(repo, night, trajectories: dict[str, int]):
    rows = results(night)
    assert len({r["run_id"] for r in rows}) == len(rows) == len(trajectories)
    for row in rows:
        evs = events(night, row["run_id"])
        calls = [e["attempt"] for e in evs if e["kind"] == "llm_response"]
        assert calls == list(range(1, trajectories[row["goal"]] + 1)), (row["goal"], calls)
        assert sum(e["kind"] == "accepted" for e in evs) == 1
    integrated = [e for e in finals(night).values() if e["kind"] == "integrated"]
    for entry in integrated:
        assert merges_of(repo, entry["run_id"]) <= 1


def recorded(night, kind: str) -> bool:
    return any(f'"kind": "{kind}"' in p.read_text() for p in night.glob("runs/*/events.jsonl"))


def verify_processes(repo) -> list[psutil.Process]:
    """Processes running in the verification slot's checkout."""
    slot = str(repo.root / ".harness/slots/nightly-verify/src")
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.cwd().startswith(slot):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def killed_at(repo, failpoint: str) -> None:
    """`harness nightly --resume` SIGKILLed by itself at `failpoint`."""
    proc = start_night(repo, "--resume", env={"HARNESS_NIGHTLY_FAILPOINT": failpoint})
    assert proc.wait(timeout=120) == -signal.SIGKILL, night_log(repo)


def test_a_night_killed_at_every_point_resumes_losing_and_repeating_nothing(fixture_repo):
    # One night, six sessions: killed inside a run's build, between runs, inside the full
    # suite's build, after a verification, after a merge (before its journal line); then done.
    repo = make_night_repo(
        fixture_repo, numerics=False, triple=[slow(3) + GOOD], goals=["triple", "quad"],
        verify_build="tools/slow_build.py",  # the change's SLOW file slows its verification too
    )  # fmt: skip
    night = night_dir(repo)
    proc = start_night(repo, "--date", DATE)
    try:
        assert wait_for(lambda: recorded(night, "llm_response")), night_log(repo)
    finally:
        kill_group(proc)  # inside the 3 s build of triple's attempt 1
    (triple,) = [d.name for d in (night / "runs").iterdir()]
    assert not any(e["kind"] == "attempt_finished" for e in events(night, triple))

    killed_at(repo, "after_run")  # triple resumed and finished; quad not started
    assert [r["run_id"] for r in results(night)] == [triple]
    evs = events(night, triple)
    assert [e["attempt"] for e in evs if e["kind"] == "llm_response"] == [1]  # replayed
    assert [e["kind"] for e in evs].count("session_resumed") == 1
    finished = len(evs)

    proc = start_night(repo, "--resume")
    try:
        started = lambda: [e["kind"] for e in journal(night)] == ["verify_started"]  # noqa: E731
        assert wait_for(started), night_log(repo)
        assert wait_for(lambda: verify_processes(repo), timeout=20)
    finally:
        kill_group(proc)  # inside the verification's 3 s build
    assert len(results(night)) == 2 and len(events(night, triple)) == finished

    def alive(procs):
        return [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    orphans = verify_processes(repo)
    if sandbox_missing():
        assert orphans  # unsandboxed, the build has its own session: it outlives the night
    else:  # the sandbox (bwrap --die-with-parent, its own PID namespace) dies with the night
        assert wait_for(lambda: not alive(verify_processes(repo)), timeout=10)

    killed_at(repo, "after_verify")  # verified again (the first was cut short), not merged
    assert not alive(orphans)
    assert [e["kind"] for e in journal(night)] == ["verify_started"] * 2 + ["verified"]
    assert merges_of(repo, triple) == 0

    killed_at(repo, "after_merge")  # merged without verifying again; the journal not told
    assert [e["kind"] for e in journal(night)] == ["verify_started"] * 2 + ["verified"]
    assert merges_of(repo, triple) == 1

    assert repo.run("nightly", "--resume") == 0
    final = finals(night)
    assert final[triple]["kind"] == "integrated" and final[triple]["found_on_target"]
    (quad,) = [r["run_id"] for r in results(night) if r["goal"] == "quad"]
    assert final[quad]["kind"] == "rejected" and final[quad]["stage"] == "merge"
    assert merges_of(repo, triple) == 1
    assert_nothing_repeated(repo, night, {"triple": 1, "quad": 1})
    assert json.loads((night / "state.json").read_text())["sessions"] == 6
    assert "**integrated**" in (night / "report.md").read_text()
