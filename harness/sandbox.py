"""Running model-written code: bubblewrap namespaces, an allow-listed environment, limits.

Note [the sandbox]: every command that runs code an LLM wrote (configure, build, tests,
numerics, regressions, an agent's `run` tool) goes through `run_command`, which starts it under
bubblewrap with
  - new user (no capabilities, no nested user namespaces), PID, network (loopback only), IPC,
    UTS and cgroup namespaces; a new session; killed with the harness (--die-with-parent);
    when the command exits the PID namespace's init exits and the kernel kills every process
    left in it, daemons included;
  - a root that holds only the system (/usr, /etc, /opt, /sys, the Python installation and the
    virtual environment) read-only, the `writable` paths read-write (the worktree, and for the
    build stage its build dir and the compiler cache), a private /tmp and a throwaway HOME;
    the worktree's `.git` is masked, the run records and the repository are not there at all;
  - an allow-listed environment (no secret can be inherited), rlimits, and memory/pids limits
    through a cgroup where the harness may create one (else RLIMIT_DATA, which, unlike
    RLIMIT_AS, does not count the huge PROT_NONE reservations CUDA makes).
Where the kernel refuses namespaces, `run_command` refuses to run unless the caller explicitly
allowed an unsandboxed run (goal `limits.allow_unsandboxed` or `harness run --allow-unsandboxed`).
"""

from __future__ import annotations

import functools
import os
import resource
import secrets as pysecrets
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .secrets import SecretSet, is_secret_name

# Variables a child may inherit from the harness; everything else (keys included) is dropped.
ENV_ALLOW = {
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TERM",
    "CC",
    "CXX",
    "CUDACXX",
    "CUDA_HOME",
    "CUDA_PATH",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "LD_LIBRARY_PATH",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "CMAKE_PREFIX_PATH",
    "CMAKE_GENERATOR",
    "SOURCE_DATE_EPOCH",
}
ENV_ALLOW_PREFIXES = ("EMBER_",)
SANDBOX_HOME = "/tmp/home"
SYSTEM_DIRS = ("/usr", "/etc", "/opt", "/sys")
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
LOG_CAP_BYTES = 20 * 1024 * 1024  # a child printing without end cannot fill the disk


class SandboxUnavailable(RuntimeError):
    """Namespaces (bubblewrap) cannot be used here and no unsandboxed run was allowed."""


@dataclass
class Limits:
    wall_s: float = 900.0
    cpu_s: int = 1800
    memory_mb: int = 8192
    file_mb: int = 2048
    pids: int = 2048


@dataclass
class Sandbox:
    """What a sandboxed command sees: `writable` paths read-write, `readable` ones read-only,
    `hidden` ones masked (inside a writable path), each `replaced` (source, target) pair's
    target showing the source instead, read-only; the system read-only; nothing else."""

    writable: list[Path] = field(default_factory=list)
    readable: list[Path] = field(default_factory=list)
    hidden: list[Path] = field(default_factory=list)
    replaced: list[tuple[Path, Path]] = field(default_factory=list)
    allow_unsandboxed: bool = False

    @classmethod
    def for_dir(cls, path: Path, **kw) -> Sandbox:
        """A directory read-write, its `.git` (file or dir) masked: the default for `cwd`."""
        return cls(writable=[Path(path)], hidden=[Path(path) / ".git"], **kw)


@dataclass
class CommandResult:
    argv: list
    returncode: int
    seconds: float
    timed_out: bool
    output: str
    sandboxed: bool = True
    oom_killed: bool = False
    redactions: int = 0  # secret values scrubbed from the output (each one is flagged)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


# ---------------------------------------------------------------- environment


def child_env(extra: dict | None = None, secrets: SecretSet | None = None) -> dict:
    """The allow-listed environment of a child; `extra` (from the harness) is added on top."""
    env = {
        k: v for k, v in os.environ.items() if k in ENV_ALLOW or k.startswith(ENV_ALLOW_PREFIXES)
    }
    env = {k: v for k, v in env.items() if not is_secret_name(k)}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        HOME=SANDBOX_HOME,
        TMPDIR="/tmp",
        USER="sandbox",
        LOGNAME="sandbox",
        PYTHONNOUSERSITE="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
    )
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in env["PATH"].split(os.pathsep):
        env["PATH"] = venv_bin + os.pathsep + env["PATH"]
    for key, value in (extra or {}).items():
        if is_secret_name(key):
            raise ValueError(f"refusing to pass {key!r} to a child: secrets never reach children")
        env[key] = str(value)
    if secrets:
        env = {k: v for k, v in env.items() if secrets.redact(v)[1] == 0}
    return env


# ---------------------------------------------------------------- bubblewrap


@dataclass(frozen=True)
class Probe:
    ok: bool
    reason: str
    bwrap: str | None = None
    disable_userns: bool = False
    tmpfs_size: bool = False  # bwrap knows --size (a bounded private /tmp)


@functools.lru_cache(maxsize=1)
def probe() -> Probe:
    """Can this machine run bubblewrap with user, PID and network namespaces?"""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return Probe(
            False,
            "bubblewrap (bwrap) is not installed; `make` installs it as root "
            "(Debian/Ubuntu package `bubblewrap`)",
        )
    help_text = subprocess.run([bwrap, "--help"], capture_output=True, text=True).stdout
    disable_userns = "--disable-userns" in help_text
    argv = _bwrap_prefix(bwrap, disable_userns) + _system_binds() + [
        "--tmpfs", "/tmp", "--", "/bin/sh", "-c", "exit 0"]  # fmt: skip
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Probe(False, f"bwrap could not start: {exc}", bwrap)
    if done.returncode != 0:
        return Probe(
            False,
            "the kernel refused the namespaces bubblewrap needs: "
            + (done.stderr.strip() or f"exit {done.returncode}")
            + " (enable unprivileged user namespaces, e.g. sysctl "
            "kernel.unprivileged_userns_clone=1 or kernel.apparmor_restrict_unprivileged_userns=0)",
            bwrap,
        )
    return Probe(True, "bubblewrap: user, pid, net, ipc, uts, cgroup namespaces", bwrap,
                 disable_userns, "--size" in help_text)  # fmt: skip


def require_sandbox(allow_unsandboxed: bool) -> Probe:
    """Raise SandboxUnavailable unless namespaces work or an unsandboxed run was allowed."""
    status = probe()
    if not status.ok and not allow_unsandboxed:
        raise SandboxUnavailable(
            f"cannot sandbox model-written code: {status.reason}. Refusing to grade. "
            "Pass --allow-unsandboxed (or set limits.allow_unsandboxed in the goal) only on a "
            "throwaway machine."
        )
    return status


def _bwrap_prefix(bwrap: str, disable_userns: bool) -> list[str]:
    uid = os.getuid() or 65534  # root outside maps to nobody inside, with no capabilities
    gid = os.getgid() or 65534
    argv = [
        bwrap,
        "--unshare-all",
        "--unshare-user",
        "--uid", str(uid),
        "--gid", str(gid),
        "--cap-drop", "ALL",
        "--die-with-parent",
        "--new-session",
        "--hostname", "ember-sandbox",
    ]  # fmt: skip
    return argv + (["--disable-userns"] if disable_userns else [])


def _system_binds() -> list[str]:
    argv: list[str] = []
    for top in SYSTEM_DIRS:
        if os.path.isdir(top) and not os.path.islink(top):
            argv += ["--ro-bind", top, top]
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            argv += ["--ro-bind", link, link]
    return [*argv, "--proc", "/proc", "--dev", "/dev"]


def _python_dirs() -> list[str]:
    """The interpreter and the virtual environment (read-only): sys.prefix and its base."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    dirs.add(str(Path(os.path.realpath(sys.executable)).parents[1]))
    return sorted(d for d in dirs if d and not _under(d, SYSTEM_DIRS))


def _under(path: str, roots) -> bool:
    path = os.path.realpath(path)
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _gpu_binds() -> list[str]:
    argv: list[str] = []
    for dev in sorted(Path("/dev").glob("nvidia*")):
        argv += ["--dev-bind", str(dev), str(dev)]
    return argv


def bwrap_argv(
    sandbox: Sandbox, cwd: Path, argv: list[str], status: Probe, limits: Limits
) -> list[str]:
    assert status.bwrap
    out = _bwrap_prefix(status.bwrap, status.disable_userns) + _system_binds() + _gpu_binds()
    for tmp in ("/tmp", "/var/tmp", "/dev/shm"):  # RAM-backed: bounded like the memory
        size = ["--size", str(limits.memory_mb * 1024 * 1024)] if status.tmpfs_size else []
        out += [*size, "--tmpfs", tmp]
    out += ["--dir", SANDBOX_HOME]
    bound = list(SYSTEM_DIRS)
    for path in _python_dirs():
        out += ["--ro-bind", path, path]
        bound.append(path)
    for path in map(str, sandbox.readable):
        if os.path.exists(path):
            out += ["--ro-bind", path, path]
    for path in map(str, sandbox.writable):
        os.makedirs(path, exist_ok=True)
        out += ["--bind", path, path]
    for path in map(str, sandbox.hidden):
        if os.path.isdir(path) and not os.path.islink(path):
            out += ["--tmpfs", path, "--remount-ro", path]
        elif os.path.lexists(path):
            out += ["--ro-bind", "/dev/null", path]
    for source, target in sandbox.replaced:
        if os.path.exists(source) and os.path.exists(target):
            out += ["--ro-bind", str(source), str(target)]
    out += ["--chdir", str(cwd), "--"]
    return out + list(argv)


# ---------------------------------------------------------------- cgroups


class Cgroup:
    """A throwaway cgroup (v2, or v1 memory + pids hierarchies) holding one command's processes."""

    def __init__(self, dirs: list[Path], version: int):
        self.dirs, self.version = dirs, version

    @staticmethod
    def create(limits: Limits) -> Cgroup | None:
        layout = _cgroup_layout()
        if layout is None:
            return None
        version, parents = layout
        _remove_stale(parents)
        name = f"ember-sandbox-{os.getpid()}-{pysecrets.token_hex(4)}"
        dirs: list[Path] = []
        try:
            for parent in parents:
                path = parent / name
                path.mkdir()
                dirs.append(path)
            memory = limits.memory_mb * 1024 * 1024
            if version == 2:
                _write(dirs[0] / "memory.max", memory)
                _write(dirs[0] / "memory.swap.max", 0, optional=True)
                _write(dirs[0] / "pids.max", limits.pids)
            else:
                for path in dirs:
                    if (path / "memory.limit_in_bytes").exists():
                        _write(path / "memory.limit_in_bytes", memory)
                        _write(path / "memory.memsw.limit_in_bytes", memory, optional=True)
                    if (path / "pids.max").exists():
                        _write(path / "pids.max", limits.pids)
        except OSError:
            Cgroup(dirs, version).remove()
            return None
        return Cgroup(dirs, version)

    def describe(self) -> str:
        return f"cgroup v{self.version} memory + pids limits"

    def join_paths(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> list[int]:
        found: set[int] = set()
        for path in self.dirs:
            try:
                found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return sorted(found)

    def oom_killed(self) -> bool:
        for path in self.dirs:
            for name in ("memory.events", "memory.oom_control"):
                try:
                    for line in (path / name).read_text().splitlines():
                        key, _, value = line.partition(" ")
                        if key == "oom_kill" and int(value) > 0:
                            return True
                except (OSError, ValueError):
                    continue
        return False

    def kill(self):
        """SIGKILL whatever is left (the PID namespace's death normally did it already)."""
        for _ in range(50):
            left = self.pids()
            if not left:
                return
            if self.version == 2 and (self.dirs[0] / "cgroup.kill").exists():
                _write(self.dirs[0] / "cgroup.kill", 1, optional=True)
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)

    def remove(self):
        for path in reversed(self.dirs):
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def _remove_stale(parents: list[Path]):
    """Remove cgroups left by a harness that was SIGKILLed (their processes died with it)."""
    for parent in parents:
        for path in parent.glob("ember-sandbox-*"):
            pid = path.name.split("-")[2]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                try:
                    path.rmdir()
                except OSError:
                    pass


def _write(path: Path, value, optional: bool = False):
    try:
        path.write_text(str(value))
    except OSError:
        if not optional:
            raise


@functools.lru_cache(maxsize=1)
def _cgroup_layout() -> tuple[int, list[Path]] | None:
    """Where this process may create child cgroups with memory and pids control, if anywhere."""
    mounts: dict[str, Path] = {}
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fstype, _, options = right.split(" ", 2)
            point = Path(left.split()[4])
            if fstype == "cgroup2":
                mounts.setdefault("unified", point)
            elif fstype == "cgroup":
                for option in options.split(","):
                    if option in ("memory", "pids"):
                        mounts.setdefault(option, point)
        own = {}
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else ["unified"]:
                own[controller] = path.lstrip("/")
    except (OSError, ValueError):
        return None
    if "memory" in mounts and "pids" in mounts:  # v1 (or hybrid with v1 memory)
        parents = [mounts[c] / own.get(c, "") for c in ("memory", "pids")]
        if all(os.access(p, os.W_OK) for p in parents):
            return 1, parents
    if "unified" in mounts:
        parent = mounts["unified"] / own.get("unified", "")
        try:
            available = (parent / "cgroup.controllers").read_text().split()
            if {"memory", "pids"} <= set(available):
                enabled = (parent / "cgroup.subtree_control").read_text().split()
                if not {"memory", "pids"} <= set(enabled):
                    (parent / "cgroup.subtree_control").write_text("+memory +pids")
                return 2, [parent]
        except OSError:
            return None
    return None


# ---------------------------------------------------------------- running


def _preexec(limits: Limits, cgroup: Cgroup | None):
    join = cgroup.join_paths() if cgroup else []

    def apply():
        # Runs in the child between fork and exec: join the cgroup, set rlimits, nothing else.
        for path in join:
            fd = os.open(path, os.O_WRONLY)
            os.write(fd, b"0")
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
        size = limits.file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if cgroup is None:
            memory = limits.memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
        if os.getuid() != 0:  # the kernel ignores RLIMIT_NPROC for root; the cgroup covers it
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.pids, limits.pids))

    return apply


def kill_group(pgid: int):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def format_command(template: str, values: dict) -> list[str]:
    """Split a command template and fill {placeholders}; values are never shell-parsed."""
    argv = []
    for token in shlex.split(template):
        if token == "{selector}":  # a selector may carry several args, e.g. "tests -k gelu"
            argv.extend(shlex.split(values.get("selector", "")))
        elif token == "{ccache_flag}":  # the launcher flags (config.CCACHE_FLAGS), or nothing
            argv.extend(values.get("ccache_flag", "").split())
        else:
            argv.append(token.format(**values))
    return argv


def _pump(stream, log, cap: int):
    """Copy the child's output into the log, keeping the first `cap` bytes and the last 1 MiB."""
    written, tail = 0, bytearray()
    try:
        for chunk in iter(lambda: stream.read1(65536), b""):
            if written < cap:
                keep = chunk[: cap - written]
                log.write(keep)
                written += len(keep)
                chunk = chunk[len(keep) :]
            if chunk:
                tail += chunk
                del tail[: max(0, len(tail) - 1024 * 1024)]
        if tail:
            log.write(b"\n[harness] output over the log cap; last MiB follows\n" + bytes(tail))
    except (OSError, ValueError):  # the log was closed: an unsandboxed daemon kept the pipe open
        pass


def run_command(
    argv: list[str],
    cwd: Path,
    log_path: Path,
    limits: Limits,
    env_extra: dict | None = None,
    secrets: SecretSet | None = None,
    pgid_file: Path | None = None,
    sandbox: Sandbox | None = None,
) -> CommandResult:
    """Run argv sandboxed (see Note [the sandbox]); kill everything it started when it ends."""
    sandbox = sandbox or Sandbox.for_dir(cwd)
    status = require_sandbox(sandbox.allow_unsandboxed)
    env = child_env(env_extra, secrets)
    cgroup = Cgroup.create(limits)
    full = bwrap_argv(sandbox, Path(cwd), argv, status, limits) if status.ok else list(argv)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    timed_out = False
    with open(log_path, "wb") as log:
        log.write(("$ " + shlex.join(argv) + "\n").encode())
        if not status.ok:
            log.write(b"[harness] WARNING: UNSANDBOXED run (explicitly allowed): " +
                      status.reason.encode() + b"\n")  # fmt: skip
        log.flush()
        try:
            proc = subprocess.Popen(
                full,
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                preexec_fn=_preexec(limits, cgroup),
            )
        except OSError as exc:
            log.write(f"cannot start: {exc}\n".encode())
            returncode = 127
        else:
            if pgid_file:  # lets a resumed run kill a group orphaned by SIGKILL of the harness
                pgid_file.parent.mkdir(parents=True, exist_ok=True)
                pgid_file.write_text(str(proc.pid))
            pump = threading.Thread(
                target=_pump, args=(proc.stdout, log, LOG_CAP_BYTES), daemon=True
            )
            pump.start()
            try:
                returncode = proc.wait(timeout=limits.wall_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(proc.pid)
                returncode = proc.wait()
            kill_group(proc.pid)  # unsandboxed: stray grandchildren left in the group
            if cgroup:
                cgroup.kill()
            pump.join(timeout=10)
            if pgid_file:
                pgid_file.unlink(missing_ok=True)
    oom = bool(cgroup and cgroup.oom_killed())
    if cgroup:
        cgroup.remove()
    seconds = time.monotonic() - start
    output = log_path.read_text(errors="replace")
    if timed_out:
        output += f"\n[harness] killed the sandbox after the {limits.wall_s:.0f}s wall limit\n"
    if oom:
        output += f"\n[harness] killed: out of memory (limit {limits.memory_mb} MB)\n"
    redactions = 0
    if secrets:
        output, redactions = secrets.redact(output)
    log_path.write_text(output)
    return CommandResult(argv, returncode, seconds, timed_out, output, status.ok, oom, redactions)


def describe_limits(limits: Limits) -> str:
    """How memory and process counts are limited on this machine (for records and docs)."""
    layout = _cgroup_layout()
    memory = f"cgroup v{layout[0]}" if layout else "RLIMIT_DATA"
    pids = f"cgroup v{layout[0]} pids.max" if layout else "RLIMIT_NPROC (not enforced for root)"
    return f"memory {limits.memory_mb} MB via {memory}; processes {limits.pids} via {pids}"


def trim(text: str, head: int = 60, tail: int = 120) -> str:
    """Keep the start and the end of a long log; the middle is rarely what failed."""
    lines = text.splitlines()
    if len(lines) <= head + tail:
        return text
    return "\n".join(
        [*lines[:head], f"... [{len(lines) - head - tail} lines trimmed] ...", *lines[-tail:]]
    )
