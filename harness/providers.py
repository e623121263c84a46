"""Model providers: OpenAI, Anthropic, OpenAI-compatible servers, and scripted replay."""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .config import AgentConfig, load_yaml
from .errors import ConfigError, ProviderError
from .secrets import take_from_environ

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


@dataclass
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    provider: str
    model: str
    usage_source: str  # "provider" or "estimated"
    tries: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class Provider:
    """Base: subclasses implement `_call` returning (text, input_tokens, output_tokens)."""

    usage_source = "provider"

    def __init__(self, agent: AgentConfig):
        self.agent = agent

    def complete(self, system: str, user: str, attempt: int) -> Completion:
        tries = []
        for number in range(self.agent.max_retries + 1):
            started = time.monotonic()
            try:
                text, tokens_in, tokens_out = self._call(system, user, attempt)
            except Exception as exc:  # SDK errors differ per provider; classify below
                status, retry_after = _status_of(exc)
                retryable = status in RETRYABLE_STATUS or _is_transport_error(exc)
                tries.append(
                    {
                        "try": number + 1,
                        "status": status,
                        "error": _short(exc),
                        "seconds": round(time.monotonic() - started, 3),
                        "retryable": retryable,
                    }
                )
                if not retryable or number == self.agent.max_retries:
                    raise ProviderError(
                        f"{self.agent.provider} call failed after {number + 1} tries: {_short(exc)}"
                    ) from None
                delay = min(30.0, self.agent.backoff_s * 2**number) * (0.8 + 0.4 * random.random())
                time.sleep(min(30.0, max(delay, retry_after or 0.0)))
                continue
            tries.append(
                {"try": number + 1, "status": 200, "seconds": round(time.monotonic() - started, 3)}
            )
            cost = self.agent.pricing.cost(tokens_in, tokens_out)
            return Completion(
                text or "",
                tokens_in,
                tokens_out,
                round(cost, 6),
                self.agent.provider,
                self.agent.model,
                self.usage_source,
                tries,
            )
        raise ProviderError("unreachable")

    def _call(self, system: str, user: str, attempt: int):
        raise NotImplementedError


def _status_of(exc) -> tuple:
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    retry_after = None
    if response is not None:
        status = status or getattr(response, "status_code", None)
        try:
            retry_after = float(response.headers.get("retry-after"))
        except (TypeError, ValueError, AttributeError):
            retry_after = None
    return status, retry_after


def _is_transport_error(exc) -> bool:
    name = type(exc).__name__
    return name in ("APITimeoutError", "APIConnectionError", "TimeoutError", "ConnectionError")


def _short(exc) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 400 else text[:400] + "..."


def _api_key(agent: AgentConfig, required: bool) -> str:
    """Read the key once and take it out of os.environ: no later child can inherit it."""
    env_name = agent.api_key_env or DEFAULT_KEY_ENV.get(agent.provider)
    value = take_from_environ(env_name) if env_name else ""
    if not value and required:
        raise ConfigError(
            f"agent {agent.name!r} needs an API key in the environment variable "
            f"{env_name}; keys are read from the environment only"
        )
    return value or "not-needed"


class OpenAIProvider(Provider):
    def __init__(self, agent: AgentConfig):
        super().__init__(agent)
        import openai

        compatible = agent.provider == "openai-compatible"
        self.client = openai.OpenAI(
            api_key=_api_key(agent, required=not compatible),
            base_url=agent.base_url or None,
            timeout=agent.timeout_s,
            max_retries=0,
        )
        # Official OpenAI models take max_completion_tokens; local servers know max_tokens.
        self.limit_arg = "max_tokens" if compatible else "max_completion_tokens"

    def _call(self, system, user, attempt):
        extra: dict[str, Any] = {self.limit_arg: self.agent.max_tokens}
        if self.agent.temperature is not None:
            extra["temperature"] = self.agent.temperature
        response = self.client.chat.completions.create(
            model=self.agent.model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            **extra,
        )
        usage = response.usage
        text = response.choices[0].message.content if response.choices else ""
        return (
            text,
            getattr(usage, "prompt_tokens", 0) or 0,
            getattr(usage, "completion_tokens", 0) or 0,
        )


class AnthropicProvider(Provider):
    def __init__(self, agent: AgentConfig):
        super().__init__(agent)
        import anthropic

        self.client = anthropic.Anthropic(
            api_key=_api_key(agent, required=True),
            base_url=agent.base_url or None,
            timeout=agent.timeout_s,
            max_retries=0,
        )

    def _call(self, system, user, attempt):
        extra: dict[str, Any] = {}
        if self.agent.temperature is not None:
            extra["temperature"] = self.agent.temperature
        response = self.client.messages.create(
            model=self.agent.model,
            system=system,
            max_tokens=self.agent.max_tokens,
            messages=[{"role": "user", "content": user}],
            **extra,
        )
        text = "".join(
            getattr(b, "text", "") for b in response.content if getattr(b, "type", "") == "text"
        )
        usage = response.usage
        return text, usage.input_tokens or 0, usage.output_tokens or 0


class ReplayProvider(Provider):
    """Plays responses from a recorded (or scripted) trajectory, one per attempt."""

    usage_source = "estimated"

    def __init__(self, agent: AgentConfig, repo: Path):
        super().__init__(agent)
        path = Path(agent.trajectory or "")
        path = path if path.is_absolute() else Path(repo) / path
        data = load_yaml(path)
        if not isinstance(data, dict) or not isinstance(data.get("responses"), list):
            raise ConfigError(f"{path}: a trajectory needs a 'responses' list")
        self.path = path
        self.responses = [r["text"] if isinstance(r, dict) else str(r) for r in data["responses"]]

    def _call(self, system, user, attempt):
        if attempt > len(self.responses):
            raise ProviderError(
                f"trajectory {self.path.name} has no response for attempt {attempt}"
            )
        text = self.responses[attempt - 1]
        return text, (len(system) + len(user)) // 4, len(text) // 4


def make_provider(agent: AgentConfig, repo: Path) -> Provider:
    if agent.provider == "replay":
        return ReplayProvider(agent, repo)
    if agent.provider == "anthropic":
        return AnthropicProvider(agent)
    return OpenAIProvider(agent)
