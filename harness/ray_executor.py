"""`--executor ray`: each run is a Ray task on some node of a cluster.

Note [runs on Ray]: the head ships a task everything the run needs: the goal and agent
(resolved), the agent's trajectory and prompt files, the base commit as a git bundle (put in
the object store once per commit; a worker that has the commit does not fetch it), and, when
the run has a record, the head's copy of it. On the worker the task takes a lane (a clone of
the repository under the worker's cache dir, `EMBER_RAY_WORKER_DIR`, default
~/.cache/ember-harness/ray-worker, with its own worktree and build dir, reused from run to
run; all lanes of a node share one compiler cache), checks the base out, and runs the
ordinary loop in a child process. While the run goes on, the task streams the record back
(new bytes of events.jsonl, files as they are written: a streaming generator), so the head's
runs/ holds the same record as a local run; an accepted branch comes back as a bundle.

A worker that dies mid-run (the task's process or its node) is retried on another node if
there is one: the head ships its copy of the record, the loop resumes from it, and a model
response already recorded is replayed, never paid again (the record's `executor_retry` event
says which attempts were replayed). A head that is restarted resumes the same way
(`harness bench --resume`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git

from .config import CCACHE_FLAGS
from .executor import RunOutcome, RunSpec, StartHook, start_worker
from .records import RunRecord
from .sandbox import Limits, Sandbox, format_command, run_command
from .secrets import SecretSet
from .workspace import HARNESS_DIR, open_repo

WORKER_DIR_ENV = "EMBER_RAY_WORKER_DIR"
MAX_TRIES = 3  # a run whose workers die this often is reported as an error
SYNC_S = 0.3
RETRYABLE = (
    "WorkerCrashedError",
    "NodeDiedError",
    "LocalRayletDiedError",
    "OwnerDiedError",
    "ObjectLostError",
    "RaySystemError",
    "ActorDiedError",
)


def harness_package() -> str:
    return str(Path(__file__).resolve().parent)


# ---------------------------------------------------------------- head side


class RayExecutor:
    """Runs as Ray tasks; see Note [runs on Ray]."""

    name = "ray"

    def __init__(
        self,
        repo: Path,
        address: str = "auto",
        jobs: int | None = None,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        allow_unsandboxed: bool = False,
    ):
        import ray

        self.ray = ray
        self.repo_root = Path(repo)
        self.repo = open_repo(repo)
        self.num_cpus, self.num_gpus = num_cpus, num_gpus
        self.allow_unsandboxed = allow_unsandboxed
        if not ray.is_initialized():
            ray.init(
                address=address,
                runtime_env={"py_modules": [harness_package()]},  # workers run this harness
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
        cpus = ray.cluster_resources().get("CPU", 1.0)
        self.slots = jobs or max(1, int(cpus // max(num_cpus, 0.001)))
        self.lock = threading.Lock()
        self.sources: dict[str, Any] = {}  # base commit -> ObjectRef of its bundle
        self.in_flight: dict[str, Any] = {}  # run id -> generator
        self.stopping = False
        self.task = ray.remote(execute_on_worker)

    def describe(self) -> dict:
        return {
            "executor": "ray",
            "slots": self.slots,
            "nodes": sum(1 for n in self.ray.nodes() if n["Alive"]),
        }

    # -- what a task needs
    def source(self, base: str):
        """The base commit as a bundle in the object store (once per commit)."""
        with self.lock:
            if base not in self.sources:
                self.sources[base] = self.ray.put(bundle_of(self.repo, base))
            return self.sources[base]

    def agent_files(self, agent: dict) -> dict[str, bytes]:
        files = {}
        for rel in (
            agent.get("trajectory"),
            agent["prompts"]["system"],
            agent["prompts"]["attempt"],
        ):
            if not rel:
                continue
            path = Path(rel) if Path(rel).is_absolute() else self.repo_root / rel
            if path.is_file():
                files[rel] = path.read_bytes()
        return files

    def other_node(self, lost: str | None) -> str | None:
        alive = [n["NodeID"] for n in self.ray.nodes() if n["Alive"] and n["NodeID"] != lost]
        return alive[0] if alive and lost else None

    # -- one run
    def run(self, spec: RunSpec, log: Path, on_start: StartHook = None) -> RunOutcome:
        run_dir = Path(spec.runs_dir) / spec.run_id
        events = RunRecord.load_events(run_dir / "events.jsonl")
        started = next((e for e in events if e["kind"] == "run_started"), None)
        # a resumed run goes on from the base it started from, wherever HEAD is now
        base = started["base"] if started else self.repo.commit(spec.goal["base"]).hexsha
        goal = dict(spec.goal) if spec.goal["base"] == "HEAD" else dict(spec.goal, base=base)
        retry: dict | None = None
        node = ""
        spec.allow_unsandboxed = self.allow_unsandboxed
        key = run_key(self.repo_root / HARNESS_DIR / "keys", spec.run_id)
        for attempt in range(1, MAX_TRIES + 1):
            payload = {
                "spec": dict(spec.to_dict(), goal=goal),
                "key": key,  # the record's MAC key: a retried run resumes a verified record
                "base": base,
                "source": self.source(base),
                "agent_files": self.agent_files(spec.agent),
                "record": read_tree(run_dir),
                "retry": retry,
            }
            strategy: Any = "DEFAULT"
            prefer = self.other_node(retry["lost_node"]) if retry else None
            if prefer:
                from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

                strategy = NodeAffinitySchedulingStrategy(prefer, soft=True)
            task = self.task.options(
                num_returns="streaming",
                max_retries=0,
                num_cpus=self.num_cpus,
                num_gpus=self.num_gpus,
                scheduling_strategy=strategy,
            )
            generator: Any = task.remote(payload)  # an ObjectRefGenerator
            with self.lock:
                self.in_flight[spec.run_id] = generator
            code = None
            try:
                with open(log, "ab") as handle:
                    for ref in generator:
                        message = self.ray.get(ref)
                        if message["kind"] == "hello":
                            node = message["node"]
                            handle.write(
                                f"[ray] try {attempt} on node {node[:12]} ({message['ip']}) "
                                f"pid {message['pid']}\n".encode()
                            )
                            handle.flush()
                            if on_start and attempt == 1:
                                on_start(None)
                        elif message["kind"] == "done":
                            code = message["exit_code"]
                        else:
                            self.apply(message, run_dir, handle)
                return RunOutcome(
                    code if code is not None else 3, node=node, executor_attempts=attempt
                )
            except self.ray.exceptions.RayError as exc:
                kind = type(exc).__name__
                if self.stopping:
                    return RunOutcome(130, node=node, executor_attempts=attempt, error="stopped")
                with open(log, "ab") as handle:
                    handle.write(f"[ray] try {attempt} lost: {kind}: {exc}\n".encode()[:2000])
                if not any(name in kind for name in RETRYABLE):
                    return RunOutcome(3, node=node, executor_attempts=attempt, error=f"{kind}")
                retry = {
                    "executor_attempt": attempt + 1,
                    "lost_node": node or None,
                    "error": f"{kind}: {str(exc)[:300]}",
                }
            finally:
                with self.lock:
                    self.in_flight.pop(spec.run_id, None)
        return RunOutcome(
            3, node=node, executor_attempts=MAX_TRIES, error=f"worker lost {MAX_TRIES} times"
        )

    def apply(self, message: dict, run_dir: Path, log_handle):
        """One streamed message into the head's copy of the record (idempotent)."""
        kind = message["kind"]
        if kind == "log":
            log_handle.write(message["data"])
            log_handle.flush()
            return
        if kind == "branch":
            self.receive_branch(message)
            return
        path = run_dir / safe_rel(message["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "append":  # events.jsonl: the bytes from `offset` on
            with open(path, "ab") as handle:
                handle.truncate(message["offset"])
                handle.write(message["data"])
                handle.flush()
                os.fsync(handle.fileno())
        elif kind == "file":
            tmp = path.with_name(path.name + ".ray-tmp")
            tmp.write_bytes(message["data"])
            os.replace(tmp, path)

    def receive_branch(self, message: dict):
        """The accepted branch, from the worker's bundle, under the same name here."""
        with tempfile.NamedTemporaryFile(suffix=".bundle") as handle:
            handle.write(message["data"])
            handle.flush()
            self.repo.git.bundle("unbundle", handle.name)
        self.repo.git.update_ref(f"refs/heads/{message['branch']}", message["commit"])

    def stop(self):
        self.stopping = True
        with self.lock:
            generators = list(self.in_flight.values())
        for generator in generators:
            try:
                self.ray.cancel(generator, force=True)
            except Exception:  # already finished or its worker is gone
                pass

    def close(self):
        if self.ray.is_initialized():
            self.ray.shutdown()


def bundle_of(repo: git.Repo, commit: str) -> bytes:
    """A bundle holding `commit` and its history, made without touching the repo's refs: a
    scratch repository borrows the objects (alternates) and names the commit."""
    with tempfile.TemporaryDirectory(prefix="ember-bundle-") as tmp:
        scratch = Path(tmp) / "scratch.git"
        git.Repo.init(scratch, bare=True)
        objects = Path(repo.git.rev_parse("--git-common-dir"))
        if not objects.is_absolute():
            objects = Path(str(repo.working_tree_dir)) / objects
        (scratch / "objects/info/alternates").write_text(str(objects / "objects") + "\n")
        bare = git.Repo(scratch)
        bare.git.update_ref("refs/heads/base", commit)
        out = Path(tmp) / "base.bundle"
        bare.git.bundle("create", str(out), "refs/heads/base")
        return out.read_bytes()


def safe_rel(rel: str) -> str:
    parts = Path(rel).parts
    if Path(rel).is_absolute() or ".." in parts or not parts:
        raise ValueError(f"a worker sent a record path outside the run: {rel!r}")
    return rel


def read_tree(root: Path) -> dict[str, bytes]:
    """A record's files (the head's copy, shipped with a resumed or retried run)."""
    if not root.is_dir():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith((".tmp", ".ray-tmp"))
    }


# ---------------------------------------------------------------- worker side


class Lane:
    """A clone of the repository on the worker, held (flock) for one run at a time."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        for index in range(256):
            handle = open(root / f"lane-{index}.lock", "w")  # noqa: SIM115  (held for the run)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self.index, self.handle = index, handle
            self.dir = root / f"lane-{index}"
            self.repo_dir = self.dir / "repo"
            self.runs_dir = self.dir / "runs"
            return
        raise RuntimeError(f"no free lane under {root}")

    def release(self):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()

    def checkout(self, base: str, source: Any) -> git.Repo:
        """The lane's clone at `base`, fetching it from the head's bundle when missing."""
        if not (self.repo_dir / ".git").exists():
            self.repo_dir.mkdir(parents=True, exist_ok=True)
            git.Repo.init(self.repo_dir)
        repo = open_repo(self.repo_dir)
        try:
            repo.git.cat_file("-e", f"{base}^{{commit}}")
        except git.GitCommandError:
            import ray

            data = ray.get(source)
            with tempfile.NamedTemporaryFile(suffix=".bundle") as handle:
                handle.write(data)
                handle.flush()
                repo.git.bundle("unbundle", handle.name)
        repo.git.update_ref(f"refs/harness/base/{base}", base)  # kept from gc
        repo.git.checkout("--detach", "--force", base)
        repo.git.clean("-ffdxq", "-e", "/.harness", "-e", "_C*.so")
        return repo


def worker_root() -> Path:
    default = Path.home() / ".cache" / "ember-harness" / "ray-worker"
    return Path(os.environ.get(WORKER_DIR_ENV) or default)


def run_key(key_dir: Path, run_id: str) -> str:
    """The run's record key (records.py), made by the head and shipped with every try, so
    the record a lost worker left verifies wherever the run goes on."""
    path = key_dir / f"{run_id}.key"
    if not path.exists():
        key_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_bytes(32).hex())
    return path.read_text().strip()


def install_key(repo_root: Path, run_id: str, key: str) -> Path:
    key_dir = repo_root / HARNESS_DIR / "keys"
    key_dir.mkdir(parents=True, exist_ok=True)
    path = key_dir / f"{run_id}.key"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key_dir


def prebuild(
    lane: Lane, repo_root: Path, goal: dict, base: str, allow_unsandboxed: bool
) -> Iterator[dict]:
    """Goals with `build: false` reuse the checkout's built extension (seed_prebuilt): build
    the lane's checkout once per base commit, as `make build` does on the head. The base may
    hold model-written code: the build runs in the sandbox (the checkout, its build dir and
    the node's compiler cache writable; `.git` masked)."""
    marker = lane.dir / "prebuilt-base"
    if goal["acceptance"]["build"] or (marker.exists() and marker.read_text() == base):
        return
    build_dir = lane.dir / "build-root"
    build_dir.mkdir(parents=True, exist_ok=True)
    values = {
        "python": sys.executable,
        "worktree": str(repo_root),
        "build_dir": str(build_dir),
        "jobs": str(os.cpu_count() or 2),
        "selector": "",
        "ccache_flag": CCACHE_FLAGS if shutil.which("ccache") else "",
    }
    ccache = Path(os.environ.get("CCACHE_DIR") or worker_root() / "ccache")
    ccache.mkdir(parents=True, exist_ok=True)
    env = {"CCACHE_DIR": str(ccache), "CCACHE_BASEDIR": str(repo_root), "CCACHE_NOHASHDIR": "1"}
    limits = Limits(wall_s=goal["limits"]["stage_timeout_s"] * 4, memory_mb=16384)
    sandbox = Sandbox(
        writable=[repo_root, build_dir, ccache],
        hidden=[repo_root / ".git"],
        allow_unsandboxed=allow_unsandboxed,
    )
    for name in ("configure", "build"):
        argv = format_command(goal["commands"][name], values)
        log = lane.dir / f"prebuild-{name}.log"
        result = run_command(
            argv, repo_root, log, limits, env, SecretSet.from_environ(), sandbox=sandbox
        )
        yield {"kind": "log", "data": f"[ray] prebuild {name}: exit {result.returncode}\n".encode()}
        if not result.ok:
            yield {"kind": "log", "data": result.output[-4000:].encode()}
            return
    marker.write_text(base)


class Mirror:
    """What of a run dir the head has; `sync` yields what it lacks (events.jsonl by offset,
    other files whole). Event bytes are read first, so a file an event refers to (written
    before the event) goes out in the same round or earlier."""

    def __init__(self, run_dir: Path):
        self.dir = run_dir
        self.sent: dict[str, tuple[int, int]] = {}
        self.offset = 0
        for path in run_dir.rglob("*") if run_dir.exists() else []:
            if path.is_file():
                self.sent[str(path.relative_to(run_dir))] = _stamp(path)
        events = run_dir / "events.jsonl"
        self.offset = events.stat().st_size if events.exists() else 0

    def sync(self) -> Iterator[dict]:
        events = self.dir / "events.jsonl"
        data = b""
        if events.exists():
            with open(events, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
            data = data[: data.rfind(b"\n") + 1]  # whole lines only
        for path in sorted(self.dir.rglob("*")):
            rel = str(path.relative_to(self.dir))
            if not path.is_file() or rel == "events.jsonl" or path.name.endswith(".tmp"):
                continue
            try:
                stamp = _stamp(path)
                if self.sent.get(rel) == stamp:
                    continue
                content = path.read_bytes()
            except OSError:  # replaced while we looked: the next round has it
                continue
            self.sent[rel] = stamp
            yield {"kind": "file", "path": rel, "data": content}
        if data:
            yield {"kind": "append", "path": "events.jsonl", "offset": self.offset, "data": data}
            self.offset += len(data)


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def tail_log(path: Path, offset: int) -> tuple[bytes, int]:
    if not path.exists():
        return b"", offset
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    return data, offset + len(data)


def execute_on_worker(payload: dict) -> Iterator[dict]:
    """The Ray task (a streaming generator): one run on this node; see Note [runs on Ray]."""
    import ray

    context = ray.get_runtime_context()
    yield {
        "kind": "hello",
        "node": context.get_node_id(),
        "ip": ray.util.get_node_ip_address(),
        "pid": os.getpid(),
    }
    spec = RunSpec(**payload["spec"])
    root = worker_root()
    lane = Lane(root / "lanes")
    try:
        repo = lane.checkout(payload["base"], payload["source"])
        repo_root = Path(str(repo.working_tree_dir))
        for rel, data in payload["agent_files"].items():  # the head's trajectory and prompts
            target = Path(rel) if Path(rel).is_absolute() else repo_root / rel
            if Path(rel).is_absolute():
                target = lane.dir / "agent-files" / Path(rel).relative_to("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        key_dir = install_key(repo_root, spec.run_id, payload["key"])
        yield from prebuild(lane, repo_root, spec.goal, payload["base"], spec.allow_unsandboxed)
        run_dir = lane.runs_dir / spec.run_id
        shutil.rmtree(run_dir, ignore_errors=True)
        for rel, data in payload["record"].items():  # the head's copy: resume from it
            path = run_dir / safe_rel(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        mirror = Mirror(run_dir)
        if payload["retry"]:
            record = RunRecord(lane.runs_dir, spec.run_id, SecretSet.from_environ(), key_dir)
            events = record.load_events(record.events_path)
            answered = {e["attempt"] for e in events if e["kind"] == "llm_response"}
            finished = {e["attempt"] for e in events if e["kind"] == "attempt_finished"}
            record.event(
                "executor_retry",
                **payload["retry"],
                node=context.get_node_id(),
                recorded_responses=sum(e["kind"] == "llm_response" for e in events),
                replayed_attempts=sorted(answered - finished),
            )
        local = RunSpec(
            run_id=spec.run_id,
            goal=spec.goal,
            agent=spec.agent,
            runs_dir=str(lane.runs_dir),
            resume=(run_dir / "events.jsonl").exists(),
            repo=str(repo_root),
            slot=f"ray-lane-{lane.index}",
            allow_unsandboxed=spec.allow_unsandboxed,
        )
        log = lane.dir / "worker.log"
        log.write_bytes(b"")
        offset = 0
        ccache = root / "ccache"  # one compiler cache per node, shared by its lanes
        os.environ.setdefault("CCACHE_DIR", str(ccache))
        with open(log, "ab") as handle:
            child = start_worker(local, lane.dir / "spec.json", handle, repo_root)
            while child.poll() is None:
                time.sleep(SYNC_S)
                yield from mirror.sync()
                data, offset = tail_log(log, offset)
                if data:
                    yield {"kind": "log", "data": data}
        yield from mirror.sync()
        data, offset = tail_log(log, offset)
        if data:
            yield {"kind": "log", "data": data}
        events = RunRecord.load_events(run_dir / "events.jsonl")
        accepted = next((e for e in events if e["kind"] == "accepted"), None)
        if accepted:
            yield branch_message(repo, accepted, payload["base"])
        yield {"kind": "done", "exit_code": child.returncode}
    finally:
        lane.release()


def branch_message(repo: git.Repo, accepted: dict, base: str) -> dict:
    """The accepted branch as a bundle of what it adds to the base."""
    with tempfile.TemporaryDirectory(prefix="ember-branch-") as tmp:
        out = Path(tmp) / "branch.bundle"
        try:
            repo.git.bundle("create", str(out), f"refs/heads/{accepted['branch']}", f"^{base}")
        except git.GitCommandError:  # accepted on a worker that died before sending it
            note = f"[ray] accepted commit {accepted['commit'][:12]} was lost with its worker\n"
            return {"kind": "log", "data": note.encode()}
        data = out.read_bytes()
    return {
        "kind": "branch",
        "branch": accepted["branch"],
        "commit": accepted["commit"],
        "data": data,
    }
