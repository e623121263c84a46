"""The sandbox: namespaces, the allow-listed environment, limits, nothing outliving a command."""

from __future__ import annotations

import os
import socket
import sys
import textwrap
import time
import uuid

import psutil
import pytest

from harness.sandbox import (
    Limits,
    Sandbox,
    SandboxUnavailable,
    child_env,
    format_command,
    run_command,
)
from harness.secrets import SecretSet
from harness.tests.support import sandbox_missing

needs_sandbox = pytest.mark.skipif(bool(sandbox_missing()), reason=sandbox_missing())


def sandbox_here(path) -> Sandbox:
    """For the tests of what holds sandboxed or not (wall and memory limits, redaction): where
    namespaces are refused (inside the nightly's verification sandbox, which cannot nest) the
    command runs unsandboxed, explicitly allowed, as `--allow-unsandboxed` would run it."""
    return Sandbox.for_dir(path, allow_unsandboxed=bool(sandbox_missing()))


def run_here(argv, tmp_path, limits, **kw):
    result = run_command(
        argv, tmp_path, tmp_path / "log", limits, sandbox=sandbox_here(tmp_path), **kw
    )
    assert result.sandboxed == (not sandbox_missing())
    return result


def py(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_child_env_is_allow_listed(monkeypatch):
    monkeypatch.setenv("SOME_API_KEY", "abcdef123456")
    monkeypatch.setenv("INNOCENT_LOOKING", "abcdef123456")  # a secret under an innocent name
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    secrets = SecretSet(["abcdef123456"])
    env = child_env({"PYTHONPATH": "/x"}, secrets)
    assert "SOME_API_KEY" not in env and "INNOCENT_LOOKING" not in env
    assert env["PYTHONPATH"] == "/x" and env["OMP_NUM_THREADS"] == "2"
    assert env["HOME"] == "/tmp/home"
    with pytest.raises(ValueError):
        child_env({"MY_TOKEN": "x"})


@needs_sandbox
def test_namespaces_hide_the_host(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sandbox-test-0123456789")
    work = tmp_path / "wt"
    work.mkdir()
    (work / ".git").write_text("gitdir: /somewhere\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("host file")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    code = f"""
        import os, socket, pathlib
        print("=" * 3 + "BEGIN")
        print("pid", os.getpid(), "ppid", os.getppid(), "procs", sorted(
            p for p in os.listdir("/proc") if p.isdigit()))
        print("key", os.environ.get("OPENAI_API_KEY"))
        for path in ["{outside}", "/proc/{os.getpid()}/environ"]:
            print(path, os.path.exists(path))
        try:
            open(".git").read()
        except OSError as exc:
            print("git hidden", type(exc).__name__)
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2)
            print("connected to the host")
        except OSError as exc:
            print("no host network", type(exc).__name__)
        for target in ["{sys.prefix}/evil.pth", "/usr/evil", "{tmp_path.parent}/evil"]:
            try:
                pathlib.Path(target).write_text("x")
                print("wrote", target)
            except OSError as exc:
                print("read-only", target, type(exc).__name__)
        pathlib.Path("ok.txt").write_text("inside")
        print("home", os.environ["HOME"], os.access(os.environ["HOME"], os.W_OK))
    """
    result = run_command(py(code), work, tmp_path / "log", Limits(wall_s=60))
    listener.close()
    assert result.ok, result.output
    out = result.output.split("===BEGIN", 1)[1]
    assert "ppid 1 procs ['1', '2']" in out  # a private PID namespace: no harness in view
    assert "key None" in out
    assert f"{outside} False" in out and f"/proc/{os.getpid()}/environ False" in out
    assert "git hidden PermissionError" in out
    assert "no host network" in out and "connected" not in out
    assert "wrote" not in out.replace(f"wrote {tmp_path.parent}/evil", "")
    assert out.count("read-only") == 2  # the venv and the system; /tmp is a private tmpfs
    assert not (tmp_path.parent / "evil").exists() and not (tmp_path / "evil").exists()
    assert (work / "ok.txt").read_text() == "inside"
    assert "home /tmp/home True" in out


@needs_sandbox
def test_daemons_die_with_the_command(tmp_path):
    marker = f"ember-daemon-{uuid.uuid4().hex}"
    code = f"""
        import subprocess, os
        subprocess.Popen(["setsid", "sh", "-c", "exec -a {marker} sleep 300"],
                         start_new_session=True, stdout=subprocess.DEVNULL)
        if os.fork() == 0:
            os.setsid()
            os.execvp("sh", ["sh", "-c", "exec -a {marker}-2 sleep 300"])
        print("started")
    """
    result = run_command(py(code), tmp_path, tmp_path / "log", Limits(wall_s=60))
    assert result.ok and "started" in result.output
    time.sleep(0.3)
    alive = [
        p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])
    ]
    assert not alive, alive


def test_timeout_kills_everything_quickly(tmp_path):
    start = time.monotonic()
    argv = py("import subprocess,time; subprocess.Popen(['sleep','60']); time.sleep(60)")
    result = run_here(argv, tmp_path, Limits(wall_s=1.5))
    assert result.timed_out and not result.ok and time.monotonic() - start < 10
    assert "wall limit" in result.output


def test_memory_limit_applies(tmp_path):
    argv = py("x = bytearray(900 * 1024 * 1024); x[::4096] = b'1' * len(x[::4096]); print('ok')")
    result = run_here(argv, tmp_path, Limits(memory_mb=400))
    assert result.returncode != 0 and "ok" not in result.output.splitlines()[-1:]


@needs_sandbox
def test_fork_bomb_is_contained(tmp_path):
    code = """
        import os, time
        n = 0
        try:
            for _ in range(400):
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                n += 1
            print("forked", n)
        except OSError as exc:
            print("fork refused after", n, exc)
    """
    result = run_command(py(code), tmp_path, tmp_path / "log", Limits(wall_s=20, pids=64))
    assert "fork refused after" in result.output, result.output
    assert time.monotonic() and result.seconds < 20  # the children did not keep it alive


def test_refuses_without_namespaces_unless_allowed(tmp_path, monkeypatch):
    import harness.sandbox as sandbox

    monkeypatch.setattr(sandbox, "probe", lambda: sandbox.Probe(False, "no user namespaces"))
    with pytest.raises(SandboxUnavailable, match="no user namespaces"):
        run_command(["true"], tmp_path, tmp_path / "log", Limits())
    allowed = Sandbox.for_dir(tmp_path, allow_unsandboxed=True)
    result = run_command(["true"], tmp_path, tmp_path / "log", Limits(), sandbox=allowed)
    assert result.ok and not result.sandboxed and "UNSANDBOXED" in result.output


def test_output_is_redacted(tmp_path):
    secrets = SecretSet(["sk-visible-0123456789"])
    argv = py("import base64; s='sk-visible-0123456789'; print(s, base64.b64encode(s.encode()))")
    result = run_here(argv, tmp_path, Limits(), secrets=secrets)
    assert "sk-visible" not in result.output and "[REDACTED]" in result.output
    assert "sk-visible" not in (tmp_path / "log").read_text()


def test_format_command_placeholders():
    argv = format_command(
        "{python} -m pytest -q {selector} {ccache_flag}",
        {"python": "py", "selector": "tests -k 'a or b'", "ccache_flag": ""},
    )
    assert argv == ["py", "-m", "pytest", "-q", "tests", "-k", "a or b"]
