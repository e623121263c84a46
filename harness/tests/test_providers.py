"""Provider edge cases against loopback servers: missing usage, non-JSON bodies, failed tries."""

from __future__ import annotations

import json

import pytest

from harness.config import load_agent
from harness.errors import ProviderError
from harness.providers import make_provider


def provider(repo, flavor, server):
    repo.write_agent(f"p-{flavor}", flavor, base_url=server.base_url, max_retries=2)
    return make_provider(load_agent(repo.root, f"p-{flavor}"), repo.root)


@pytest.mark.parametrize("flavor", ["openai", "anthropic"])
def test_missing_usage_is_estimated_not_free(fixture_repo, serve, flavor):
    server = serve(flavor, [("no-usage", "x" * 400)])
    completion = provider(fixture_repo, flavor, server).complete("s" * 800, "u" * 400, 1)
    assert completion.usage_source == "estimated"
    assert completion.input_tokens == 300 and completion.output_tokens == 100
    assert completion.cost_usd == pytest.approx((300 * 1.0 + 100 * 2.0) / 1e6)


@pytest.mark.parametrize("flavor", ["openai", "anthropic"])
def test_html_body_is_a_clear_provider_error(fixture_repo, serve, flavor):
    server = serve(flavor, [("html", "<html><body>502 Bad Gateway</body></html>")])
    with pytest.raises(ProviderError) as info:
        provider(fixture_repo, flavor, server).complete("s", "u", 1)
    message = str(info.value)
    assert "non-JSON body" in message and "502 Bad Gateway" in message and "base_url" in message
    assert "has no attribute" not in message
    assert len(info.value.tries) == 1 and "BadResponse" in info.value.tries[0]["error"]


def test_failed_call_records_every_try(fixture_repo, serve):
    server = serve("openai", [429, 500, 503])
    with pytest.raises(ProviderError) as info:
        provider(fixture_repo, "openai", server).complete("s", "u", 1)
    assert [t["status"] for t in info.value.tries] == [429, 500, 503]
    assert all(t["retryable"] for t in info.value.tries)


def test_estimated_usage_still_spends_the_token_budget(fixture_repo, serve):
    server = serve("openai", [("no-usage", "no edits in this reply " * 20)])
    fixture_repo.write_agent("fake-openai", "openai", base_url=server.base_url)
    fixture_repo.write_goals(attempts=3, tokens=300, light=True)
    assert fixture_repo.run("run") == 1
    summary = json.loads((fixture_repo.run_dir() / "summary.json").read_text())
    assert summary["outcome"] == "budget" and "token budget" in summary["reason"]
    response = next(e for e in fixture_repo.events() if e["kind"] == "llm_response")
    assert response["usage_source"] == "estimated" and response["input_tokens"] > 300
    assert len(server.requests) == 1
