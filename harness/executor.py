"""Where the runs of `harness bench` and `harness nightly` execute.

An `Executor` takes a `RunSpec` (the goal and agent, resolved by the head, and where the
record goes) and returns when the run has ended, with its record under the head's runs dir.
Two implementations:

- `LocalExecutor` (the default): each run is a child process on this machine
  (`python -m harness.executor run SPEC`) driving the ordinary loop in one of N lanes; a lane
  keeps its worktree and build dir (`.harness/slots/bench-lane-<i>/{src,build}`) from run to
  run, so Ninja rebuilds only what an attempt touched, and all lanes share one compiler cache.
- `RayExecutor` (harness/ray_executor.py): each run is a Ray task on some node of a cluster.

Either way the run is the loop's own: a record that exists is continued with the loop's
`--resume`, so a run is never paid for twice; and every command it runs on model-written code
goes through the loop's sandbox (`allow_unsandboxed` travels in the RunSpec, set by the
executor from `--allow-unsandboxed`; nothing here runs the goal's commands itself).
"""

from __future__ import annotations

import ctypes
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from .sandbox import kill_group
from .workspace import HARNESS_DIR

StartHook = Callable[[int | None], None] | None  # called with the lane once a run has a place


@dataclass
class RunSpec:
    """One run, as the head resolved it; the worker needs nothing else from the head's config."""

    run_id: str
    goal: dict  # Goal.to_dict(); a resumed run keeps its record's goal.json instead
    agent: dict  # AgentConfig.to_dict()
    runs_dir: str  # the head's runs dir: the record ends up in runs_dir/run_id
    resume: bool = False  # a record exists: continue it
    repo: str = ""  # the repository the worker's loop runs in (set by the executor)
    slot: str | None = None  # worktree/build slot of the worker's loop (set by the executor)
    allow_unsandboxed: bool = False  # `--allow-unsandboxed` (set by the executor)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RunOutcome:
    exit_code: int  # the loop's: 0 accepted, 1 not accepted, other: the worker failed
    lane: int | None = None  # local lane
    node: str = ""  # the machine that ran it last
    executor_attempts: int = 1  # >1: a worker was lost and the run was resumed elsewhere
    error: str = ""  # why the executor could not finish the run (worker lost too often ...)
    extra: dict = field(default_factory=dict)


class Executor(Protocol):
    name: str
    slots: int  # runs at a time

    def run(self, spec: RunSpec, log: Path, on_start: StartHook = None) -> RunOutcome:
        """Run (or resume) one run to its end; blocking; called from several head threads.
        `on_start(lane)` is called once the run has a place to run."""
        ...

    def stop(self) -> None:
        """Stop every run in flight now (Ctrl-C); each can be resumed later."""
        ...

    def close(self) -> None: ...

    def describe(self) -> dict: ...


# ---------------------------------------------------------------- local: child processes


def die_with_parent():
    """Between fork and exec: SIGKILL this child when the harness that started it dies, so a
    killed bench or night never leaves a run going on behind its resumed successor."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def child_env() -> dict:
    """The worker's environment: ours (it is the harness; its own children are scrubbed), with
    this harness importable wherever the repository is."""
    here = str(Path(__file__).resolve().parents[1])
    paths = [here] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


def start_worker(spec: RunSpec, spec_path: Path, log_handle, cwd: Path) -> subprocess.Popen:
    """`python -m harness.executor run SPEC_FILE` in its own session, dying with us."""
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(spec.to_dict()))
    return subprocess.Popen(
        [sys.executable, "-m", "harness.executor", "run", str(spec_path)],
        cwd=cwd,
        stdout=log_handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=child_env(),
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


class LocalExecutor:
    """N lanes on this machine, one child process per run."""

    name = "local"

    def __init__(self, repo: Path, jobs: int, allow_unsandboxed: bool = False):
        self.repo, self.slots = Path(repo), jobs
        self.allow_unsandboxed = allow_unsandboxed
        self.lanes: queue.Queue[int] = queue.Queue()
        for lane in range(jobs):
            self.lanes.put(lane)
        self.lock = threading.Lock()
        self.children: dict[str, tuple[subprocess.Popen, int]] = {}

    def run(self, spec: RunSpec, log: Path, on_start: StartHook = None) -> RunOutcome:
        lane = self.lanes.get()
        if on_start:
            on_start(lane)
        try:
            spec.repo, spec.slot = str(self.repo), f"bench-lane-{lane}"
            spec.allow_unsandboxed = self.allow_unsandboxed
            with open(log, "ab") as handle:
                child = start_worker(spec, log.with_suffix(".spec.json"), handle, self.repo)
                with self.lock:
                    self.children[spec.run_id] = (child, lane)
                code = child.wait()
            with self.lock:
                self.children.pop(spec.run_id, None)
            return RunOutcome(code, lane=lane, node="local")
        finally:
            self.lanes.put(lane)

    def stop(self):
        """Kill every run's worker and its sandboxed command (found by the lane's pgid file)."""
        with self.lock:
            children = list(self.children.values())
        for child, lane in children:
            kill_group(child.pid)
            pgid = self.repo / HARNESS_DIR / "running" / f"bench-lane-{lane}.pgid"
            try:
                kill_group(int(pgid.read_text()))
            except (OSError, ValueError):
                pass

    def close(self):
        pass

    def describe(self) -> dict:
        return {"executor": "local", "slots": self.slots}


def make_executor(
    kind: str,
    repo: Path,
    jobs: int | None,
    address: str | None = None,
    num_gpus: float = 0.0,
    allow_unsandboxed: bool = False,
) -> Executor:
    if kind == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(
            repo, address or "auto", jobs, num_gpus=num_gpus, allow_unsandboxed=allow_unsandboxed
        )
    return LocalExecutor(repo, jobs or 1, allow_unsandboxed)


# ---------------------------------------------------------------- the worker process


def run_spec(spec: dict) -> int:
    """One run in its own process: the ordinary loop, in the slot the executor chose."""
    from .config import AgentConfig, Goal
    from .display import Reporter
    from .loop import RunSettings, open_loop

    repo, runs_dir = Path(spec["repo"]), Path(spec["runs_dir"])
    record_dir = runs_dir / spec["run_id"]
    if spec["resume"]:  # the record's goal and agent, as the run started with them
        goal = Goal.from_dict(json.loads((record_dir / "goal.json").read_text()))
        agent = AgentConfig.from_dict(json.loads((record_dir / "agent.json").read_text()))
    else:
        goal, agent = Goal.from_dict(spec["goal"]), AgentConfig.from_dict(spec["agent"])
    settings = RunSettings(
        repo=repo,
        goal=goal,
        agent=agent,
        runs_dir=runs_dir,
        run_id=spec["run_id"],
        resume=spec["resume"],
        slot=spec["slot"],
        allow_unsandboxed=spec.get("allow_unsandboxed", False),
    )
    code, summary = open_loop(settings, Reporter()).run()
    print(json.dumps({"exit_code": code, "outcome": summary["outcome"]}), flush=True)
    return code


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "run":
        sys.exit("usage: python -m harness.executor run SPEC_FILE (started by an executor)")
    sys.exit(run_spec(json.loads(Path(sys.argv[2]).read_text())))
