"""`harness nightly`: run the night's goals, re-verify and integrate what was accepted, report.

A night is a directory `<reports>/nightly-<date>/` holding its plan (`night.json`), its bench
(`bench.json`, `runs/`, `logs/`, `results.jsonl`: the runs go through the same executor as
`harness bench`), the integration journal (`integration.jsonl`), the verification logs and the
report. Three phases, each resumable:

1. runs: every (goal, agent, sample) the config selects, each capped by what is left of the
   night's budget (dollars and tokens reserved while a run is in flight, wall time until the
   night's deadline); finished runs are kept and an interrupted one is resumed by the loop;
2. integration: harness/integrate.py (verify on the current target, then merge), journaled;
3. report: harness/night_report.py (this night, and the trend over the nights before it).

`--resume` continues the latest (or a named) night; one night at a time per repository
(`.harness/nightly.lock`, naming the holder's pid).
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import random
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from .bench import Bench, BenchJob, BenchPlan, goal_files, load_results, resolve
from .config import (
    DEFAULT_COMMANDS,
    Goal,
    OneOf,
    Optional,
    Required,
    _apply_defaults,
    _check,
    load_agent,
    load_goals,
    load_yaml,
)
from .errors import ConfigError
from .executor import Executor
from .integrate import Change, Integrator, VerifyConfig, failpoint
from .workspace import HARNESS_DIR, open_repo

CONFIG = "nightly.yaml"
PLAN = "night.json"
STATE = "state.json"
SUMMARY = "summary.json"
MIN_SHARE = 0.1  # a run starts only if the night can still give it 10% of its own budget

# `make test` in the merged checkout (placeholders as in goal commands): the build, ctest, and
# pytest over the Makefile's paths, harness/tests included (its tests that need nested namespaces
# skip in the verification sandbox; CI runs them). test_nightly_workflow checks it against make.
DEFAULT_VERIFY = [
    DEFAULT_COMMANDS["configure"],
    DEFAULT_COMMANDS["build"],
    "ctest --test-dir {build_dir} --output-on-failure -j {jobs}",
    "{python} -m pytest -q -p no:cacheprovider --import-mode=importlib "
    "runtime/tests/python numcheck/tests harness/tests regressions",
]

NIGHT_SCHEMA = {
    "version": Optional(int, 1),
    "goals": Required(
        {
            "files": Optional([str], ["goals.yaml"]),  # their `nightly: true` goals run
            "ids": Optional([str], []),  # these run too, marked or not
            "suite": Optional(  # plus a sample of a suite directory of goal files
                {"dir": Required(str), "sample": Required(int), "seed": Optional(str)}
            ),
        }
    ),
    "agents": Required([str]),
    "samples": Optional(int, 1),
    "jobs": Optional(int, 1),
    "budget": Required(
        {"dollars": Required(float), "tokens": Required(int), "wall_seconds": Required(float)}
    ),
    "integration": Optional(
        {
            "mode": Optional(OneOf("merge", "review"), "review"),
            "target": Optional(str, "main"),
            "fast_forward": Optional(bool, False),
            "review_branch": Optional(str, "nightly/{date}"),
        }
    ),
    "verify": Optional(
        {
            "commands": Optional([str], DEFAULT_VERIFY),
            "timeout_s": Optional(float, 5400.0),
            "memory_mb": Optional(int, 16384),
        }
    ),
    "reports": Optional(str, "runs"),  # the nights' directories go here
    "executor": Optional(
        {
            "kind": Optional(OneOf("local", "ray"), "local"),
            "address": Optional(str, "auto"),
            "num_gpus": Optional(float, 0.0),
        }
    ),
}


@dataclass
class NightBudget:
    dollars: float
    tokens: int
    wall_seconds: float


@dataclass
class NightConfig:
    path: str
    goal_files: list[str]
    goal_ids: list[str]
    suite: dict | None
    agents: list[str]
    samples: int
    jobs: int
    budget: NightBudget
    mode: str
    target: str
    fast_forward: bool
    review_branch: str
    verify: VerifyConfig
    reports: str
    executor: dict

    @classmethod
    def load(cls, path: Path) -> NightConfig:
        data = load_yaml(path)
        errors: list[str] = []
        if not isinstance(data, dict):
            raise ConfigError(f"{path}:1: top level must be a mapping")
        _check(data, NIGHT_SCHEMA, "nightly", 1, errors, path.name)
        if errors:
            raise ConfigError(errors)
        v = _apply_defaults(data, NIGHT_SCHEMA)
        suite = v["goals"]["suite"] if (data.get("goals") or {}).get("suite") else None
        for key, low in (("samples", 1), ("jobs", 1)):
            if v[key] < low:
                errors.append(f"{path.name}: {key} must be at least {low}")
        if suite and suite["sample"] < 1:
            errors.append(f"{path.name}: goals.suite.sample must be at least 1")
        if errors:
            raise ConfigError(errors)
        return cls(
            path=str(path),
            goal_files=v["goals"]["files"],
            goal_ids=v["goals"]["ids"],
            suite=suite,
            agents=v["agents"],
            samples=v["samples"],
            jobs=v["jobs"],
            budget=NightBudget(**v["budget"]),
            mode=v["integration"]["mode"],
            target=v["integration"]["target"],
            fast_forward=v["integration"]["fast_forward"],
            review_branch=v["integration"]["review_branch"],
            verify=VerifyConfig(**v["verify"]),
            reports=v["reports"],
            executor=v["executor"],
        )


@dataclass
class NightPlan:
    """night.json: what a night is, fixed when it starts (a resume follows it exactly)."""

    night_id: str
    date: str
    created: str
    host: str
    config: str
    base: str  # the target's tip when the night started; every run starts from it
    target: str  # the branch changes are integrated into
    upstream: str  # the configured target (review mode integrates into a branch off it)
    mode: str
    fast_forward: bool
    goals: list[dict]  # {file, id, title}
    agents: list[str]
    samples: int
    jobs: int
    budget: dict
    verify: dict
    executor: dict

    def bench_plan(self) -> BenchPlan:
        files = sorted({g["file"] for g in self.goals})
        return BenchPlan(
            bench_id=self.night_id,
            goals_files=files,
            agents=self.agents,
            samples=self.samples,
            jobs=self.jobs,
            goal_ids=[g["id"] for g in self.goals],
            created=self.created,
        )

    def save(self, night_dir: Path):
        night_dir.mkdir(parents=True, exist_ok=True)
        write_json(night_dir / PLAN, asdict(self))

    @classmethod
    def load(cls, night_dir: Path) -> NightPlan:
        return cls(**json.loads((night_dir / PLAN).read_text()))


def write_json(path: Path, data):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


# ---------------------------------------------------------------- choosing the goals


def select_goals(repo: Path, config: NightConfig, night_id: str) -> list[dict]:
    """goals.yaml entries marked `nightly: true` (or named in `ids`), plus a seeded sample of
    the suite directory; the same night id always draws the same sample."""
    picked: list[dict] = []
    known: set[str] = set()
    for path in goal_files(repo, ",".join(config.goal_files)):
        for goal in load_goals(Path(path)):
            known.add(goal.id)
            if goal.nightly or goal.id in config.goal_ids:
                picked.append({"file": rel(repo, path), "id": goal.id, "title": goal.title})
    missing = [g for g in config.goal_ids if g not in known]
    if missing:
        raise ConfigError(f"{config.path}: goals.ids names unknown goal(s): {', '.join(missing)}")
    if config.suite:
        pool = []
        for path in goal_files(repo, config.suite["dir"]):
            pool += [(path, g) for g in load_goals(Path(path)) if g.id not in known]
        rng = random.Random(config.suite.get("seed") or night_id)
        for path, goal in rng.sample(pool, min(config.suite["sample"], len(pool))):
            picked.append({"file": rel(repo, path), "id": goal.id, "title": goal.title})
    if not picked:
        raise ConfigError(
            f"{config.path}: no goals for the night (mark goals `nightly: true`, "
            "list goals.ids, or sample a suite)"
        )
    return picked


def rel(repo: Path, path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(repo.resolve()))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------- one night at a time


class NightLock:
    """`.harness/nightly.lock`: an flock the kernel drops when the holder dies, naming it."""

    def __init__(self, repo: Path):
        self.path = repo / HARNESS_DIR / "nightly.lock"
        self.handle: TextIO | None = None

    def holder(self) -> str | None:
        """Who holds the lock now (None: free); does not take it."""
        if not self.path.exists():
            return None
        with open(self.path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return handle.read().strip() or "unknown"
            fcntl.flock(handle, fcntl.LOCK_UN)
        return None

    def acquire(self, night_id: str):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115  (held until release)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            who = handle.read().strip() or "unknown"
            handle.close()
            raise ConfigError(
                f"another `harness nightly` is running on this repository ({who}); it holds "
                f"{self.path}. Wait for it to finish, or stop it and run "
                "`harness nightly --resume`"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            f"pid {os.getpid()} on {socket.gethostname()}, night {night_id}, "
            f"since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        )
        handle.flush()
        self.handle = handle

    def release(self):
        if self.handle:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


# ---------------------------------------------------------------- the night's budget


class NightAdmission:
    """Caps each run by what is left of the night: dollars and tokens of finished runs are
    spent, those of runs in flight reserved (their caps); wall time runs to the deadline."""

    def __init__(self, plan: NightPlan, results: list[dict], wall_used: float, runs_dir: Path):
        self.budget = NightBudget(**plan.budget)
        self.base = plan.base
        self.runs_dir = runs_dir
        self.lock = threading.Lock()
        self.spent_dollars = sum(r.get("dollars", 0.0) for r in results)
        self.spent_tokens = sum(r.get("tokens", 0) for r in results)
        self.reserved: dict[str, tuple[float, int]] = {}
        self.wall_before = wall_used
        self.session_start = time.monotonic()
        self.not_started: dict[str, str] = {}

    def wall_used(self) -> float:
        return self.wall_before + time.monotonic() - self.session_start

    def left(self) -> tuple[float, int, float]:
        dollars = (
            self.budget.dollars - self.spent_dollars - sum(d for d, _ in self.reserved.values())
        )
        tokens = self.budget.tokens - self.spent_tokens - sum(t for _, t in self.reserved.values())
        return dollars, tokens, self.budget.wall_seconds - self.wall_used()

    def admit(self, job: BenchJob, goal: Goal, resume: bool) -> Goal | None:
        with self.lock:
            if resume:  # it runs under the cap it started with (its record's goal.json)
                recorded = json.loads((self.runs_dir / job.run_id / "goal.json").read_text())
                cap = recorded["budget"]
                self.reserved[job.run_id] = (cap["dollars"], cap["tokens"])
                return goal
            dollars, tokens, wall = self.left()
            own = goal.budget
            short = [
                what
                for what, have, need in (
                    ("dollars", dollars, own.dollars),
                    ("tokens", tokens, own.tokens),
                    ("wall time", wall, own.wall_seconds),
                )
                if have < MIN_SHARE * need
            ]
            if short:
                self.not_started[job.run_id] = (
                    f"night budget: not enough {' and '.join(short)} left "
                    f"(${max(dollars, 0):.2f}, {max(tokens, 0)} tokens, {max(wall, 0):.0f}s)"
                )
                return None
            capped = copy.deepcopy(goal)
            capped.budget.dollars = round(min(own.dollars, dollars), 6)
            capped.budget.tokens = int(min(own.tokens, tokens))
            capped.budget.wall_seconds = round(min(own.wall_seconds, wall), 1)
            if capped.base == "HEAD":  # every run of the night starts from the same commit
                capped.base = self.base
            self.reserved[job.run_id] = (capped.budget.dollars, capped.budget.tokens)
            return capped

    def release(self, job: BenchJob, result: dict | None):
        with self.lock:
            self.reserved.pop(job.run_id, None)
            if result:
                self.spent_dollars += result.get("dollars", 0.0)
                self.spent_tokens += result.get("tokens", 0)
        if result:
            failpoint("after_run")


# ---------------------------------------------------------------- the night


class Night:
    def __init__(
        self,
        repo: Path,
        night_dir: Path,
        plan: NightPlan,
        display,
        log=None,
        allow_unsandboxed: bool = False,
    ):
        self.repo, self.dir, self.plan, self.display = repo, night_dir, plan, display
        self.allow_unsandboxed = allow_unsandboxed  # for re-verification (runs: the executor's)
        self.log = log or (lambda text: print(f"harness nightly: {text}", file=sys.stderr))

    # -- state.json: the phase and the wall time used so far (saved as the night goes)
    def state(self) -> dict:
        path = self.dir / STATE
        return json.loads(path.read_text()) if path.exists() else {"wall_s": 0.0, "phase": "runs"}

    def save_state(self, **changes):
        write_json(self.dir / STATE, dict(self.state(), **changes))

    def run(self, executor: Executor) -> int:
        state = self.state()
        self.save_state(sessions=state.get("sessions", 0) + 1)
        bench = Bench(self.repo, self.dir, self.plan.bench_plan(), self.display, executor)
        admission = NightAdmission(
            self.plan, load_results(bench.results_path), state["wall_s"], bench.runs_dir
        )
        bench.admission = admission
        last_save = [time.monotonic()]

        def tick():
            if time.monotonic() - last_save[0] > 5:
                self.save_state(wall_s=round(admission.wall_used(), 1))
                last_save[0] = time.monotonic()

        bench.on_poll = tick
        code = 0
        if state["phase"] == "runs":
            code = bench.run()
            self.save_state(
                wall_s=round(admission.wall_used(), 1),
                phase="integration",
                not_started=admission.not_started,
            )
        self.integrate(bench)
        self.save_state(wall_s=round(admission.wall_used(), 1), phase="done")
        from .night_report import write_night_report

        report = write_night_report(self.dir)
        self.log(f"report: {report}")
        return code

    def integrate(self, bench: Bench):
        order = {job.run_id: i for i, job in enumerate(self.plan.bench_plan().expand(self.repo))}
        results = sorted(load_results(bench.results_path), key=lambda r: order.get(r["run_id"], 0))
        integrator = Integrator(
            self.repo,
            self.dir,
            self.plan.night_id,
            self.plan.target,
            self.plan.fast_forward,
            VerifyConfig(**self.plan.verify),
            log=self.log,
            allow_unsandboxed=self.allow_unsandboxed,
        )
        goal_of = {r["run_id"]: r["goal"] for r in results}
        done_goals: dict[str, str] = {}  # one change per goal and night
        for entry in integrator.journal.entries():
            if entry["kind"] == "integrated" and entry["run_id"] in goal_of:
                done_goals.setdefault(goal_of[entry["run_id"]], entry["run_id"])
        for row in results:
            if not row["accepted"]:
                continue
            change = Change.from_record(bench.runs_dir / row["run_id"])
            if change is None:
                continue
            last = integrator.journal.last(change.run_id)
            if last and last["kind"] in ("integrated", "rejected"):
                continue
            if change.goal in done_goals:
                integrator.journal.write(
                    "rejected",
                    change.run_id,
                    stage="superseded",
                    reason=f"goal {change.goal} was integrated tonight by "
                    + done_goals[change.goal],
                )
                continue
            integrator.ensure_target(self.plan.base)
            outcome = integrator.integrate(change)
            self.log(f"{change.run_id}: {outcome['kind']} {outcome.get('reason', '')}".rstrip())
            if outcome["kind"] == "integrated":
                done_goals[change.goal] = change.run_id


# ---------------------------------------------------------------- starting a night


def night_dir_of(repo: Path, config: NightConfig, runs_dir: str | None, night_id: str) -> Path:
    base = Path(runs_dir) if runs_dir else resolve(repo, config.reports)
    return base / night_id


def new_plan(repo: Path, config: NightConfig, date: str, agents: list[str] | None) -> NightPlan:
    git_repo = open_repo(repo)
    try:
        base = git_repo.commit(f"refs/heads/{config.target}").hexsha
    except Exception:  # gitpython raises several kinds for a missing ref
        raise ConfigError(
            f"{config.path}: integration.target {config.target!r} is not a branch of {repo}"
        ) from None
    night_id = f"nightly-{date}"
    names = agents or config.agents
    for name in names:
        load_agent(repo, name)
    target = config.target
    if config.mode == "review":
        target = config.review_branch.format(date=date)
    return NightPlan(
        night_id=night_id,
        date=date,
        created=time.strftime("%Y-%m-%d %H:%M:%S"),
        host=socket.gethostname(),
        config=rel(repo, config.path),
        base=base,
        target=target,
        upstream=config.target,
        mode=config.mode,
        fast_forward=config.fast_forward,
        goals=select_goals(repo, config, night_id),
        agents=names,
        samples=config.samples,
        jobs=config.jobs,
        budget=asdict(config.budget),
        verify=asdict(config.verify),
        executor=config.executor,
    )


def latest_unfinished(reports: Path) -> Path | None:
    nights = sorted(p.parent for p in reports.glob(f"nightly-*/{PLAN}"))
    for night in reversed(nights):
        state = night / STATE
        if not state.exists() or json.loads(state.read_text()).get("phase") != "done":
            return night
    return nights[-1] if nights else None


def dry_run(repo: Path, plan: NightPlan, night_dir: Path, lock: NightLock, out=print) -> int:
    """Print what the night would do; write nothing, start nothing, call no model."""
    jobs = plan.bench_plan().expand(repo)
    goals = {
        (path, g.id): g
        for path in plan.bench_plan().goals_files
        for g in load_goals(resolve(repo, path))
    }
    out(f"night {plan.night_id} (dry run: nothing is written, nothing runs)")
    out(
        f"  directory:   {night_dir}"
        + ("  [exists: --resume continues it]" if night_dir.exists() else "")
    )
    out(f"  base:        {plan.upstream} at {plan.base[:12]}")
    if plan.mode == "review":
        out(f"  integrate:   review branch {plan.target} (off {plan.upstream})")
    else:
        how = (
            "fast-forward when possible, else a merge commit"
            if plan.fast_forward
            else "merge commit"
        )
        out(f"  integrate:   into {plan.target} ({how}) after the full suite passes on its tip")
    budget = NightBudget(**plan.budget)
    out(
        f"  budget:      ${budget.dollars:.2f}, {budget.tokens:,} tokens, "
        f"{budget.wall_seconds / 3600:.1f} h wall"
    )
    ex = plan.executor
    where = f"ray at {ex['address']}" if ex["kind"] == "ray" else f"local, {plan.jobs} at a time"
    out(f"  executor:    {where}")
    holder = lock.holder()
    out(f"  lock:        {'HELD by ' + holder if holder else 'free'} ({lock.path})")
    out("  verify:      " + "\n               ".join(plan.verify["commands"]))
    out(
        f"  runs:        {len(jobs)} ({len(plan.goals)} goal(s) x {len(plan.agents)} agent(s)"
        f" x {plan.samples} sample(s))"
    )
    dollars, tokens = budget.dollars, budget.tokens
    for job in jobs:
        goal = goals[(job.goals_file, job.goal)]
        agent = load_agent(repo, job.agent)
        key = ""
        if agent.provider != "replay" and agent.api_key_env:
            have = "set" if os.environ.get(agent.api_key_env) else "MISSING"
            key = f", key ${agent.api_key_env} {have}"
        cap_d, cap_t = min(goal.budget.dollars, dollars), min(goal.budget.tokens, tokens)
        starts = (
            dollars >= MIN_SHARE * goal.budget.dollars and tokens >= MIN_SHARE * goal.budget.tokens
        )
        note = f"cap ${cap_d:.2f} / {cap_t:,} tokens" if starts else "would not start (budget)"
        out(
            f"    {job.run_id}: {goal.id} with {agent.name} "
            f"({agent.provider}:{agent.model}{key}); {note}"
        )
        if starts:  # worst case: every run spends its whole cap
            dollars, tokens = dollars - cap_d, tokens - cap_t
    return 0
