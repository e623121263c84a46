"""`harness bench`: every (goal, agent, sample) is its own run, N at a time.

Each run goes to an executor (harness/executor.py: child processes in lanes on this machine,
or Ray tasks on a cluster) that drives the ordinary loop, so a crash stays in its run and a
killed bench resumes run by run. The head is the only writer of
`runs/bench-<id>/results.jsonl`, one line per finished run, summarised from that run's record.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from .config import AgentConfig, Goal, load_agent, load_goals
from .errors import ConfigError
from .executor import Executor, LocalExecutor, RunSpec
from .records import RunRecord
from .workspace import HARNESS_DIR

RESULTS = "results.jsonl"
PLAN = "bench.json"


@dataclass
class BenchJob:
    goals_file: str
    goal: str
    category: str
    agent: str
    sample: int
    bench_id: str

    @property
    def run_id(self) -> str:
        """Unique across benches: an accepted run's branch is harness/<goal>/<run id>."""
        return f"{self.bench_id}--{self.goal}--{self.agent}--s{self.sample}"


@dataclass
class BenchPlan:
    bench_id: str
    goals_files: list[str]
    agents: list[str]
    samples: int
    jobs: int
    goal_ids: list[str]
    created: str

    def expand(self, repo: Path) -> list[BenchJob]:
        """Sample-major order, so an interrupted bench has covered every goal evenly."""
        goals: list[tuple[str, Goal]] = []
        for path in self.goals_files:
            goals += [(path, g) for g in load_goals(resolve(repo, path))]
        if self.goal_ids:
            known = {g.id for _, g in goals}
            unknown = [g for g in self.goal_ids if g not in known]
            if unknown:
                raise ConfigError(f"unknown goal(s) {', '.join(unknown)}; known: {sorted(known)}")
            goals = [(p, g) for p, g in goals if g.id in self.goal_ids]
        return [
            BenchJob(path, goal.id, goal.category, agent, sample, self.bench_id)
            for sample in range(1, self.samples + 1)
            for path, goal in goals
            for agent in self.agents
        ]


def resolve(repo: Path, path: str) -> Path:
    return Path(path) if Path(path).is_absolute() else repo / path


def goal_files(repo: Path, spec: str) -> list[str]:
    """--goals: files or directories of goal files, comma-separated."""
    files: list[str] = []
    for part in [p for p in spec.split(",") if p]:
        path = resolve(repo, part)
        if path.is_dir():
            files += [str(p) for p in sorted(path.glob("*.yaml"))]
        elif path.is_file():
            files.append(str(path))
        else:
            raise ConfigError(f"--goals: {part} is neither a goals file nor a directory")
    if not files:
        raise ConfigError(f"--goals {spec}: no goal files found")
    return files


# ---------------------------------------------------------------- one run's result


def summarize_run(run_dir: Path, job: BenchJob) -> dict:
    """The results.jsonl line of a finished run, from its record alone."""
    events = RunRecord.load_events(run_dir / "events.jsonl")
    finished = next((e for e in reversed(events) if e["kind"] == "run_finished"), None)
    attempts = [e for e in events if e["kind"] == "attempt_finished"]
    responses = [e for e in events if e["kind"] == "llm_response"]
    calls = [e for e in events if e["kind"] == "tool_call"]
    split = {"model": sum(r.get("seconds", 0.0) for r in responses)}
    for key, stages in (
        ("build", ("build",)),
        ("tests", ("cpp_tests", "pytest", "regression")),
        ("numerics", ("numerics",)),
    ):
        graded = sum(
            e.get("seconds", 0.0) for e in events if e["kind"] == "stage" and e["name"] in stages
        )
        tools = sum(c.get("seconds", 0.0) for c in calls if c.get("category") == key)
        split[key] = graded + tools
    wall = sum(a.get("seconds", 0.0) for a in attempts)
    accepted = next((e for e in events if e["kind"] == "accepted"), None)
    started = next((e for e in events if e["kind"] == "run_started"), {})
    return {
        "goal": job.goal,
        "category": job.category,
        "agent": job.agent,
        "sample": job.sample,
        "run_id": job.run_id,
        "mode": started.get("mode", "patch"),
        "model": f"{started.get('provider', '?')}:{started.get('model', '?')}",
        "outcome": finished["outcome"] if finished else "error",
        "accepted": accepted is not None,
        "attempts": len(attempts),
        "accepted_attempt": accepted["attempt"] if accepted else None,
        "steps": sum(a.get("steps", 0) for a in attempts),
        "tool_calls": len(calls),
        "tokens": sum(r.get("input_tokens", 0) + r.get("output_tokens", 0) for r in responses),
        "dollars": round(sum(r.get("cost_usd", 0.0) for r in responses), 6),
        "usage_estimated": any(r.get("usage_source") == "estimated" for r in responses),
        "wall_s": round(wall, 3),
        **{f"{k}_s": round(v, 3) for k, v in split.items()},
        "other_s": round(max(0.0, wall - sum(split.values())), 3),
        "failing_stages": [a["failed_stage"] for a in attempts if not a["ok"]],
        "edit_blocks": sum(a.get("edit_blocks", 0) for a in attempts),
        "edit_failures": sum(a.get("edit_failures", 0) for a in attempts),
        "reason": finished["reason"] if finished else "the run did not finish",
    }


def load_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            break  # cut short by a kill: the run is redone
    return rows


# ---------------------------------------------------------------- live state of the runs


@dataclass
class RunProgress:
    job: BenchJob
    lane: int
    started: float
    attempt: int = 0
    status: str = "starting"


def progress_of(run_dir: Path) -> tuple[int, str]:
    """(attempt, what it is doing) from the tail of a run's events."""
    path = run_dir / "events.jsonl"
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - 4096))
            tail = handle.read().decode(errors="replace").splitlines()[1:]
    except OSError:
        return 0, "starting"
    attempt, status = 0, "starting"
    for line in tail:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        attempt = ev.get("attempt", attempt)
        kind = ev["kind"]
        if kind == "stage":
            status = f"{ev['name']} {'ok' if ev['ok'] else 'FAILED'}"
        elif kind == "tool_call":
            status = f"step {ev['step']}: {ev['name']}"
        elif kind == "llm_response":
            status = f"step {ev['step']}: model" if "step" in ev else "applying"
        elif kind == "attempt_started":
            status = "model"
        elif kind == "attempt_finished":
            status = "accepted" if ev["ok"] else f"rejected at {ev['failed_stage']}"
        else:
            status = kind.replace("_", " ")
    return attempt, status


# ---------------------------------------------------------------- the bench


class Admission(Protocol):
    """Decides, as each run is about to start, what it may spend (`harness nightly` caps runs
    by what is left of the night's budget); None: the run does not start now."""

    def admit(self, job: BenchJob, goal: Goal, resume: bool) -> Goal | None: ...

    def release(self, job: BenchJob, result: dict | None) -> None: ...


class Bench:
    def __init__(
        self,
        repo: Path,
        bench_dir: Path,
        plan: BenchPlan,
        display,
        executor: Executor | None = None,
        admission: Admission | None = None,
    ):
        self.repo, self.dir, self.plan, self.display = repo, bench_dir, plan, display
        self.executor = executor or LocalExecutor(repo, plan.jobs)
        self.admission = admission
        self.runs_dir = bench_dir / "runs"
        self.logs_dir = bench_dir / "logs"
        self.results_path = bench_dir / RESULTS
        self.lock = threading.Lock()
        self.running: dict[str, RunProgress] = {}
        self.stopping = False
        self.skipped: list[BenchJob] = []
        self.on_poll = lambda: None  # the night saves its wall clock here
        self.warm = threading.Event()  # set once the shared compiler cache holds a build
        self.warming: str | None = None  # the run that builds into the cold cache, alone

    # Note [cold compiler cache]: local lanes share one ccache (.harness/ccache), but N lanes
    # compiling the same cold tree at once each compile all of it: a cache fills only as objects
    # finish. So while the cache is empty, the first run that builds goes alone (runs that build
    # nothing go beside it) and the other building runs start once it is done, all hits.
    def _schedule(self, todo: list[BenchJob], goals: dict) -> list[BenchJob]:
        def builds(job: BenchJob) -> bool:
            return goals[(job.goals_file, job.goal)].acceptance.build

        ccache = self.repo / HARNESS_DIR / "ccache"
        cold = isinstance(self.executor, LocalExecutor) and not (
            ccache.is_dir() and any(ccache.iterdir())
        )
        first = next((j for j in todo if builds(j)), None) if cold else None
        if first is None:
            self.warm.set()
            return todo
        self.warming = first.run_id
        rest = [j for j in todo if j is not first]
        return [first] + [j for j in rest if not builds(j)] + [j for j in rest if builds(j)]

    def run(self) -> int:
        jobs = self.plan.expand(self.repo)
        agents = {name: load_agent(self.repo, name) for name in self.plan.agents}  # typos now
        goals = {
            (path, g.id): g
            for path in self.plan.goals_files
            for g in load_goals(resolve(self.repo, path))
        }
        done = {r["run_id"]: r for r in load_results(self.results_path)}
        todo = [j for j in jobs if j.run_id not in done]
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(exist_ok=True)
        self.results = list(done.values())
        todo = self._schedule(todo, goals)
        self.display.start(self.plan, len(jobs), self.results)
        crashed = 0
        try:
            with ThreadPoolExecutor(max_workers=self.executor.slots) as pool:
                futures = [
                    pool.submit(
                        self.run_job, job, goals[(job.goals_file, job.goal)], agents[job.agent]
                    )
                    for job in todo
                ]
                try:
                    while any(not f.done() for f in futures):
                        self.poll()
                        time.sleep(0.5)
                except KeyboardInterrupt:
                    self.stop_children()  # now: the pool's exit waits for the running runs
                    raise
                crashed = sum(1 for f in futures if f.result() == "error")
        finally:
            self.display.stop(self.results)
        return 1 if crashed else 0

    def poll(self):
        with self.lock:
            running = list(self.running.values())
        for item in running:
            item.attempt, item.status = progress_of(self.runs_dir / item.job.run_id)
        self.display.update(running, self.results)
        self.on_poll()

    def run_job(self, job: BenchJob, goal: Goal, agent: AgentConfig) -> str:
        try:
            return self._admit_and_run(job, goal, agent)
        finally:
            if job.run_id == self.warming:
                self.warm.set()  # done, skipped or crashed: the others may build now

    def _admit_and_run(self, job: BenchJob, goal: Goal, agent: AgentConfig) -> str:
        if self.stopping:
            return "skipped"
        run_dir = self.runs_dir / job.run_id
        resume = (run_dir / "events.jsonl").exists()
        admitted = self.admission.admit(job, goal, resume) if self.admission else goal
        if admitted is None:
            with self.lock:
                self.skipped.append(job)
            return "skipped"
        result = None
        try:
            if admitted.acceptance.build and job.run_id != self.warming:
                while not self.warm.wait(1.0):
                    if self.stopping:
                        return "skipped"
            result = self._run_job(job, admitted, agent, resume)
        finally:
            if self.admission:
                self.admission.release(job, result)
        return (
            "error"
            if result and result["outcome"] == "error"
            else ("done" if result else "stopped")
        )

    def _run_job(self, job: BenchJob, goal: Goal, agent: AgentConfig, resume: bool) -> dict | None:
        run_dir = self.runs_dir / job.run_id
        spec = RunSpec(
            run_id=job.run_id,
            goal=goal.to_dict(),
            agent=agent.to_dict(),
            runs_dir=str(self.runs_dir),
            resume=resume,
        )
        started = time.monotonic()
        with self.lock:
            self.running[job.run_id] = RunProgress(job, -1, started)
        log = self.logs_dir / f"{job.run_id}.log"
        outcome = self.executor.run(spec, log, on_start=lambda lane: self._started(job, lane))
        with self.lock:
            self.running.pop(job.run_id, None)
        if self.stopping:
            return None
        try:
            result = summarize_run(run_dir, job)
        except (OSError, ValueError, KeyError) as exc:  # a record too broken to read
            result = dict(summarize_run(Path("/nonexistent"), job), reason=f"record: {exc}")
        result.update(
            exit_code=outcome.exit_code,
            lane=outcome.lane,
            executor=self.executor.name,
            bench_wall_s=round(time.monotonic() - started, 3),
        )
        if outcome.node != "local":
            result.update(node=outcome.node, executor_attempts=outcome.executor_attempts)
        if result["outcome"] == "error":
            text = log.read_text(errors="replace") if log.exists() else ""
            tail = " | ".join(text.strip().splitlines()[-3:])
            why = outcome.error or f"worker exit {outcome.exit_code}"
            result["reason"] += f" ({why}; log: {tail or 'empty'})"
        with self.lock:
            with open(self.results_path, "a") as handle:
                handle.write(json.dumps(result) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            self.results.append(result)
        self.display.finished(result)
        return result

    def _started(self, job: BenchJob, lane: int | None):
        with self.lock:
            if job.run_id in self.running:
                self.running[job.run_id].lane = -1 if lane is None else lane
        self.display.started(job, -1 if lane is None else lane)

    def stop_children(self):
        """Ctrl-C: stop every run now (each resumes later); their sandboxed builds too."""
        self.stopping = True
        self.executor.stop()


def new_plan(
    repo: Path,
    goals: str,
    agents: str,
    samples: int,
    jobs: int,
    bench_id: str | None = None,
    goal_ids: str | None = None,
) -> BenchPlan:
    names = [a for a in agents.split(",") if a]
    if not names:
        raise ConfigError("--agents needs at least one agent name")
    if samples < 1 or jobs < 1:
        raise ConfigError("--samples and --jobs must be at least 1")
    return BenchPlan(
        bench_id=bench_id or time.strftime("%Y%m%d-%H%M%S"),
        goals_files=goal_files(repo, goals),
        agents=names,
        samples=samples,
        jobs=jobs,
        goal_ids=[g for g in (goal_ids or "").split(",") if g],
        created=time.strftime("%Y-%m-%d %H:%M:%S"),
    )


def resume_plan(runs_dir: Path, name: str, jobs: int | None) -> tuple[Path, BenchPlan]:
    bench_dir = runs_dir / (name if name.startswith("bench-") else f"bench-{name}")
    if not (bench_dir / PLAN).exists():
        raise ConfigError(f"no bench {name!r} under {runs_dir}")
    plan = BenchPlan(**json.loads((bench_dir / PLAN).read_text()))
    if jobs:
        plan.jobs = jobs
    return bench_dir, plan


def create_bench(repo: Path, runs_dir: Path, plan: BenchPlan) -> Path:
    bench_dir = runs_dir / f"bench-{plan.bench_id}"
    if (bench_dir / PLAN).exists():
        raise ConfigError(f"{bench_dir} exists; continue it with --resume {plan.bench_id}")
    plan.expand(repo)  # validate the goals before anything is written
    bench_dir.mkdir(parents=True, exist_ok=True)
    (bench_dir / PLAN).write_text(json.dumps(asdict(plan), indent=1))
    return bench_dir
