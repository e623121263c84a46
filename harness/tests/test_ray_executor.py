"""`--executor ray` on a real local Ray cluster (a head and one more node, loopback only): the
same bench as the local executor gives the same results and records; a worker killed mid-run
is retried on the other node and a head killed mid-run resumes, neither paying a model call
twice. Skipped where Ray is not installed (CI installs it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("ray")

from harness.tests.nightly_support import slow, wait_for
from harness.tests.ray_cluster import start_cluster
from harness.tests.support import GOOD, REAL_REPO, FixtureRepo, git, unsandboxed_flag

pytestmark = pytest.mark.ray

MALFORMED = "runtime/python/ember/ops.py\n<<<<<<< SEARCH\n    return x * 2\n>>>>>>> REPLACE\n"
TIMING_FIELDS = {"wall_s", "model_s", "build_s", "tests_s", "numerics_s", "other_s",
                 "bench_wall_s", "lane", "node", "executor", "executor_attempts"}  # fmt: skip


@pytest.fixture(scope="module")
def cluster():
    started = time.monotonic()
    from harness.tests.conftest import FAKE_KEYS

    cluster = start_cluster(workers=1, keys=FAKE_KEYS)
    print(f"\nray cluster up in {time.monotonic() - started:.1f}s: {cluster.started_s}")
    try:
        yield cluster
    finally:
        stopping = time.monotonic()
        cluster.stop()
        print(f"ray cluster stopped in {time.monotonic() - stopping:.1f}s")


def normalized(bench) -> list[dict]:
    rows = [json.loads(line) for line in (bench / "results.jsonl").read_text().splitlines()]
    return sorted(
        ({k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in rows),
        key=lambda r: r["run_id"],
    )


def record_shape(run_dir) -> dict:
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    files = sorted(
        str(p.relative_to(run_dir))
        for p in run_dir.rglob("*")
        if p.is_file() and "stages" not in p.parts  # stage logs name the worker's paths
    )
    diffs = [p.read_text() for p in sorted(run_dir.glob("attempts/*/diff.patch"))]
    return {"kinds": [e["kind"] for e in events], "files": files, "diffs": diffs}


def test_ray_bench_gives_the_local_results(fixture_repo, tmp_path, cluster):
    fixture_repo.write_agent("good", "replay", trajectory=[GOOD])
    fixture_repo.write_agent("sloppy", "replay", trajectory=[MALFORMED])
    fixture_repo.write_goals(agent="good", attempts=1, light=True)
    clone = tmp_path / "clone"  # the same commits, so the same run ids and base
    git(tmp_path, "clone", "-q", str(fixture_repo.root), str(clone))
    ray_repo = FixtureRepo(clone)
    args = ["bench", "--agents", "good,sloppy", "--bench-id", "same"]
    assert fixture_repo.run(*args) == 0
    started = time.monotonic()
    assert ray_repo.run(*args, "--executor", "ray", "--address", cluster.address) == 0
    print(f"ray bench: {time.monotonic() - started:.1f}s")
    local, remote = fixture_repo.runs / "bench-same", ray_repo.runs / "bench-same"
    assert normalized(remote) == normalized(local)
    rows = [json.loads(line) for line in (remote / "results.jsonl").read_text().splitlines()]
    assert {r["executor"] for r in rows} == {"ray"} and all(r["node"] for r in rows)
    for row in rows:
        assert record_shape(remote / "runs" / row["run_id"]) == record_shape(
            local / "runs" / row["run_id"]
        )
    # The accepted branch came back to the head, with the change in it.
    good = next(r for r in rows if r["agent"] == "good")
    branch = f"harness/triple/{good['run_id']}"
    assert "def triple" in git(clone, "show", f"{branch}:runtime/python/ember/ops.py")
    assert git(clone, "rev-parse", f"{branch}^{{tree}}") == git(
        fixture_repo.root, "rev-parse", f"{branch}^{{tree}}"
    )


def head_log(repo, bench_id: str) -> str:
    logs = list((repo.runs / f"bench-{bench_id}" / "logs").glob("*.log"))
    return "".join(p.read_text(errors="replace") for p in logs)


def start_head(repo, *args) -> subprocess.Popen:
    command = [sys.executable, "-m", "harness", "--repo", str(repo.root), "bench"]
    return subprocess.Popen(
        [*command, *unsandboxed_flag(("bench",)), *args],
        env=dict(os.environ, PYTHONPATH=str(REAL_REPO)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_lost_worker_and_restarted_head_never_pay_twice(fixture_repo, serve, cluster):
    server = serve("openai", [slow(5) + GOOD])
    fixture_repo.write_agent("fake-openai", "openai", base_url=server.base_url)
    fixture_repo.write_goals(agent="fake-openai", attempts=1, light=True)
    tools = fixture_repo.root / "tools"
    (tools / "build.py").write_text(  # the fixture build, slowed by the SLOW file of the reply
        "import pathlib, time\n"
        "slow = pathlib.Path('runtime/python/ember/SLOW')\n"
        "time.sleep(float(slow.read_text()) if slow.exists() else 0)\n"
        + (tools / "build.py").read_text()
    )
    fixture_repo.commit("slow build")
    args = ["--executor", "ray", "--address", cluster.address]
    head = start_head(fixture_repo, "--agents", "fake-openai", "--bench-id", "lost", *args)
    bench = fixture_repo.runs / "bench-lost"
    try:
        # 1. The model answered (the head has that, streamed) and the build runs: kill the
        # task's worker process. The run is retried on the other node, from the record.
        assert wait_for(
            lambda: '"llm_response"' in "".join(
                p.read_text() for p in bench.glob("runs/*/events.jsonl")
            ), timeout=180,
        ), head_log(fixture_repo, "lost")  # fmt: skip
        first = next(
            line for line in head_log(fixture_repo, "lost").splitlines() if "try 1" in line
        )
        os.kill(int(first.rsplit("pid ", 1)[1]), signal.SIGKILL)
        # 2. Once try 2 has resumed the run (the head has that too), kill the head while the
        # build runs; a restarted head resumes the run.
        assert wait_for(
            lambda: '"session_resumed"' in "".join(
                p.read_text() for p in bench.glob("runs/*/events.jsonl")
            ), timeout=120,
        ), head_log(fixture_repo, "lost")  # fmt: skip
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()
    finally:
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
    assert not (bench / "results.jsonl").exists()
    assert fixture_repo.run("bench", "--resume", "lost", *args) == 0
    (row,) = [json.loads(line) for line in (bench / "results.jsonl").read_text().splitlines()]
    assert row["accepted"] and row["executor"] == "ray"
    assert len(server.requests) == 1  # one model call, whatever died
    events = [
        json.loads(line)
        for line in (bench / "runs" / row["run_id"] / "events.jsonl").read_text().splitlines()
    ]
    assert [e["attempt"] for e in events if e["kind"] == "llm_response"] == [1]
    retry = next(e for e in events if e["kind"] == "executor_retry")
    assert retry["replayed_attempts"] == [1] and retry["recorded_responses"] == 1
    assert retry["node"] != retry["lost_node"]  # retried on the other node
    assert [e["kind"] for e in events].count("session_resumed") == 2  # after each death
    assert "def triple" in git(
        fixture_repo.root, "show", f"harness/triple/{row['run_id']}:runtime/python/ember/ops.py"
    )


def test_a_night_on_ray_integrates_the_branch_the_worker_made(fixture_repo, cluster):
    from harness.tests.nightly_support import finals, make_night_repo

    repo = make_night_repo(fixture_repo, numerics=False, triple=[GOOD], goals=["triple"])
    args = ["--executor", "ray", "--address", cluster.address]
    assert repo.run("nightly", "--date", "2031-02-03", *args) == 0
    night = repo.runs / "nightly-2031-02-03"
    (entry,) = finals(night).values()
    assert entry["kind"] == "integrated"  # the accepted commit came back from the worker
    assert "def triple" in (repo.root / "runtime/python/ember/ops.py").read_text()
    (row,) = [json.loads(line) for line in (night / "results.jsonl").read_text().splitlines()]
    assert row["executor"] == "ray" and "executor ray" in (night / "report.md").read_text()
