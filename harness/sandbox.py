"""Running untrusted build/test commands: scrubbed env, rlimits, process-group kill."""

from __future__ import annotations

import os
import re
import resource
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|PRIVATE", re.IGNORECASE)
MIN_SECRET_LEN = 6  # shorter values would redact ordinary words


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def secret_values(environ=None) -> list[str]:
    environ = os.environ if environ is None else environ
    values = {v for k, v in environ.items() if is_secret_name(k) and len(v) >= MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    """Replace every secret value from the environment with a marker."""
    if not text:
        return text
    for value in secrets if secrets is not None else secret_values():
        if value in text:
            text = text.replace(value, "[REDACTED]")
    return text


def scrubbed_env(extra: dict | None = None) -> dict:
    """The child environment: ours minus anything that looks like a credential."""
    env = {k: v for k, v in os.environ.items() if not is_secret_name(k)}
    for key in ("PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV_PROMPT"):
        env.pop(key, None)
    env.update(extra or {})
    return env


@dataclass
class Limits:
    wall_s: float = 900.0
    cpu_s: int = 1800
    memory_mb: int = 8192
    file_mb: int = 2048


@dataclass
class CommandResult:
    argv: list
    returncode: int
    seconds: float
    timed_out: bool
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _limit_child(limits: Limits):
    def apply():
        # Runs in the child between fork and exec; keep it to setrlimit calls only.
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
        memory = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        size = limits.file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

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
        elif token == "{ccache_flag}":
            argv.extend([values["ccache_flag"]] if values.get("ccache_flag") else [])
        else:
            argv.append(token.format(**values))
    return argv


def run_command(
    argv: list[str],
    cwd: Path,
    log_path: Path,
    limits: Limits,
    env_extra: dict | None = None,
    secrets: list[str] | None = None,
    pgid_file: Path | None = None,
) -> CommandResult:
    """Run argv in its own process group; kill the whole group on timeout."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    timed_out = False
    with open(log_path, "wb") as log:
        log.write(("$ " + shlex.join(argv) + "\n").encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=scrubbed_env(env_extra),
                start_new_session=True,
                preexec_fn=_limit_child(limits),
            )
        except OSError as exc:
            log.write(f"cannot start: {exc}\n".encode())
            returncode = 127
        else:
            if pgid_file:  # lets a resumed run kill a group orphaned by SIGKILL of the harness
                pgid_file.parent.mkdir(parents=True, exist_ok=True)
                pgid_file.write_text(str(proc.pid))
            try:
                returncode = proc.wait(timeout=limits.wall_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(proc.pid)
                returncode = proc.wait()
            kill_group(proc.pid)  # stray grandchildren left in the group
            if pgid_file:
                pgid_file.unlink(missing_ok=True)
    seconds = time.monotonic() - start
    output = log_path.read_text(errors="replace")
    if timed_out:
        output += f"\n[harness] killed process group after {limits.wall_s:.0f}s wall limit\n"
    output = redact(output, secrets)
    log_path.write_text(output)
    return CommandResult(argv, returncode, seconds, timed_out, output)


def trim(text: str, head: int = 60, tail: int = 120) -> str:
    """Keep the start and the end of a long log; the middle is rarely what failed."""
    lines = text.splitlines()
    if len(lines) <= head + tail:
        return text
    return "\n".join(
        [*lines[:head], f"... [{len(lines) - head - tail} lines trimmed] ...", *lines[-tail:]]
    )
