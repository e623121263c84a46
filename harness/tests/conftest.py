"""Fixtures: a tiny fake-runtime git repo and loopback OpenAI/Anthropic servers."""

from __future__ import annotations

import pytest

from harness.tests.support import FixtureRepo, ScriptedServer, make_fixture_repo


@pytest.fixture
def fixture_repo(tmp_path) -> FixtureRepo:
    return make_fixture_repo(tmp_path / "repo")


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


@pytest.fixture(autouse=True)
def fake_keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-OPENAI-0123456789abcdef")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-ANTHROPIC-0123456789")
