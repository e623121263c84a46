"""Fixtures: a tiny fake-runtime git repo, a git snapshot of the real repository, and loopback
OpenAI/Anthropic servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.tests.support import FixtureRepo, ScriptedServer, make_fixture_repo, snapshot_real_repo


@pytest.fixture
def fixture_repo(tmp_path) -> FixtureRepo:
    return make_fixture_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def real_repo(tmp_path_factory) -> Path:
    """The real repository's files in a git repository of their own (support.snapshot_real_repo)."""
    return snapshot_real_repo(tmp_path_factory.mktemp("real") / "repo")


@pytest.fixture
def serve():
    servers = []

    def start(flavor, script):
        server = ScriptedServer(flavor, script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


FAKE_KEYS = {
    "OPENAI_API_KEY": "sk-test-OPENAI-0123456789abcdef",
    "ANTHROPIC_API_KEY": "sk-ant-test-ANTHROPIC-0123456789",
}


@pytest.fixture(autouse=True)
def fake_keys(monkeypatch):
    for name, value in FAKE_KEYS.items():
        monkeypatch.setenv(name, value)
