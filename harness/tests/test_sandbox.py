"""Child processes: scrubbed env, limits, process-group kill; redaction."""

from __future__ import annotations

import sys
import time

from harness.sandbox import Limits, format_command, redact, run_command, scrubbed_env


def test_env_scrub_and_redaction(monkeypatch):
    monkeypatch.setenv("SOME_API_KEY", "abcdef123456")
    monkeypatch.setenv("GH_TOKEN", "ghp_zzzzzzzz")
    env = scrubbed_env({"PYTHONPATH": "/x"})
    assert "SOME_API_KEY" not in env and "GH_TOKEN" not in env and env["PYTHONPATH"] == "/x"
    assert redact("key=abcdef123456 tok=ghp_zzzzzzzz") == "key=[REDACTED] tok=[REDACTED]"


def test_timeout_kills_group_quickly(tmp_path):
    start = time.monotonic()
    argv = [
        sys.executable,
        "-c",
        "import subprocess,time; subprocess.Popen(['sleep','60']); time.sleep(60)",
    ]
    result = run_command(argv, tmp_path, tmp_path / "log", Limits(wall_s=1.5))
    assert result.timed_out and not result.ok and time.monotonic() - start < 10
    assert "killed process group" in result.output


def test_memory_limit_applies(tmp_path):
    argv = [sys.executable, "-c", "x = bytearray(900 * 1024 * 1024)"]
    result = run_command(argv, tmp_path, tmp_path / "log", Limits(memory_mb=400))
    assert result.returncode != 0 and "MemoryError" in result.output


def test_format_command_placeholders():
    argv = format_command(
        "{python} -m pytest -q {selector} {ccache_flag}",
        {"python": "py", "selector": "tests -k 'a or b'", "ccache_flag": ""},
    )
    assert argv == ["py", "-m", "pytest", "-q", "tests", "-k", "a or b"]
