"""Secret collection, encodings the redactor catches, taking the key out of the environment."""

from __future__ import annotations

import base64
import codecs
import os
import urllib.parse

import pytest

from harness.secrets import MARK, SecretSet, take_from_environ

KEY = "sk-test-Zq9v7Lw2Xr4Tb8Nc"


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: s,
        lambda s: s[::-1],
        lambda s: s.upper(),
        lambda s: codecs.encode(s, "rot13"),
        lambda s: base64.b64encode(s.encode()).decode(),
        lambda s: base64.b64encode(b"x" + s.encode()).decode(),  # other alignments
        lambda s: base64.b64encode(b"xy" + s.encode()).decode(),
        lambda s: base64.urlsafe_b64encode(b"prefix:" + s.encode()).decode(),
        lambda s: base64.b32encode(b"ab" + s.encode()).decode(),
        lambda s: s.encode().hex(),
        lambda s: s.encode().hex().upper(),
        lambda s: " ".join(f"{b:02x}" for b in s.encode()),
        lambda s: "".join(f"\\x{b:02x}" for b in s.encode()),
        lambda s: ",".join(str(b) for b in s.encode()),
        lambda s: urllib.parse.quote(s, safe=""),
        lambda s: "".join(f"%{b:02X}" for b in s.encode()),
    ],
)
def test_every_trivial_encoding_is_redacted(encode):
    secrets = SecretSet([KEY])
    text = f"log line before\nleak: <{encode(KEY)}> after\n"
    clean, hits = secrets.redact(text)
    assert hits >= 1 and MARK in clean, clean
    assert "log line before" in clean and "after" in clean


def test_short_values_and_ordinary_text_are_left_alone():
    secrets = SecretSet(["short", KEY])
    assert secrets.values == [KEY]
    text = "nothing to see: 1, 2, 3 and deadbeef"
    assert secrets.redact(text) == (text, 0)


def test_from_environ_collects_by_name_and_extra(monkeypatch):
    monkeypatch.setenv("ACME_API_KEY", "key-value-123456")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/ssh-agent/socket.1234")
    monkeypatch.setenv("PIP_KEYRING_PROVIDER", "disabled")
    monkeypatch.setenv("CUSTOM_VAR", "custom-value-123456")
    secrets = SecretSet.from_environ(extra_names=["CUSTOM_VAR"])
    assert "key-value-123456" in secrets.values and "custom-value-123456" in secrets.values
    assert "/tmp/ssh-agent/socket.1234" not in secrets.values
    assert "disabled" not in secrets.values


def test_take_from_environ_removes_the_key(monkeypatch):
    monkeypatch.setenv("SOME_PROVIDER_KEY", KEY)
    assert take_from_environ("SOME_PROVIDER_KEY") == KEY
    assert "SOME_PROVIDER_KEY" not in os.environ
    assert take_from_environ("SOME_PROVIDER_KEY") == KEY  # a second run in this process
    assert KEY in SecretSet.from_environ().values  # and it is still redacted


def test_nothing_sent_to_the_model_carries_a_secret(tmp_path):
    """Patch prompts and tools-mode conversations (tool results, the model's own calls) are
    redacted before they reach the provider, and each hit is flagged in the record."""
    from harness.loop import RedactingProvider
    from harness.providers import Message, Provider, ToolCall, ToolResult
    from harness.records import RunRecord

    class Recorder(Provider):
        def __init__(self):
            self.sent: list = []

        def complete(self, system, user, attempt):
            self.sent.append((system, user))

        def chat(self, system, messages, tools, attempt, step):
            self.sent.append((system, messages))

    inner = Recorder()
    inner.agent = None
    record = RunRecord(tmp_path / "runs", "r1", SecretSet([KEY]))
    provider = RedactingProvider(inner, SecretSet([KEY]), record)
    encoded = base64.b64encode(KEY.encode()).decode()
    provider.complete("system", f"feedback: {encoded}", 1)
    provider.chat(
        f"sys {KEY}",
        [
            Message("user", "go"),
            Message("assistant", "", [ToolCall("c1", "run", {"selector": KEY[::-1]})]),
            Message("tool", "", results=[ToolResult("c1", "run", f"FAILED {KEY}", True)]),
        ],
        [],
        1,
        2,
    )
    sent = repr(inner.sent)
    assert not SecretSet([KEY]).found_in(sent.encode()) and sent.count(MARK) == 4
    flagged = [e for e in record.load_events(record.events_path) if e["kind"] == "secret_redacted"]
    assert len(flagged) == 4 and all("sent to the model" in e["where"] for e in flagged)
