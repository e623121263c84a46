"""Model providers: OpenAI, Anthropic, OpenAI-compatible servers, and scripted replay.

Two calls: `complete` (one prompt, one reply: patch mode) and `chat` (a conversation with
native tool calling: tools mode). Both retry transient failures with backoff and return a
`Completion` whose usage is what the provider reported, or an estimate marked as such.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from .config import AgentConfig, load_yaml
from .errors import ConfigError, ProviderError

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def estimate_tokens(text: str) -> int:
    """About four characters per token: used where a provider reports no usage."""
    return (len(text) + 3) // 4


# ---------------------------------------------------------------- the neutral conversation


@dataclass
class ToolSpec:
    name: str
    description: str
    parameters: dict  # JSON schema of the arguments object


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict
    error: str = ""  # the arguments were not a JSON object: fed back to the model


@dataclass
class ToolResult:
    call_id: str
    name: str
    content: str
    is_error: bool = False


@dataclass
class Message:
    """One conversation entry. role: user (text), assistant (text + tool_calls) or tool
    (results of the previous assistant turn's calls, plus an optional harness `text` note)."""

    role: str
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    results: list[ToolResult] = field(default_factory=list)


@dataclass
class Reply:
    """What a provider's raw call returns; None usage means the provider reported none."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    stop_reason: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None


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
    tool_calls: list[ToolCall] = field(default_factory=list)
    stop_reason: str = ""

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def model_seconds(self) -> float:
        return sum(t.get("seconds", 0.0) for t in self.tries)

    def to_dict(self) -> dict:
        return asdict(self)


class BadResponse(Exception):
    """The server answered 2xx with something that is not a completion (HTML, an error page)."""


class Provider:
    """Base: subclasses implement `_call` (one prompt) and `_chat` (tool-calling turn)."""

    estimated_usage = False  # replay: usage is always an estimate

    def __init__(self, agent: AgentConfig):
        self.agent = agent

    def complete(self, system: str, user: str, attempt: int) -> Completion:
        return self._retrying(lambda: self._call(system, user, attempt), system + user)

    def chat(
        self, system: str, messages: list[Message], tools: list[ToolSpec], attempt: int, step: int
    ) -> Completion:
        sent = (
            system
            + json.dumps([asdict(m) for m in messages])
            + json.dumps([asdict(t) for t in tools])
        )
        return self._retrying(lambda: self._chat(system, messages, tools, attempt, step), sent)

    def _retrying(self, call: Callable[[], Reply], sent: str) -> Completion:
        tries: list[dict] = []
        for number in range(self.agent.max_retries + 1):
            started = time.monotonic()
            try:
                reply = call()
            except ProviderError as exc:  # raised by replay: nothing to retry
                raise ProviderError(str(exc), tries) from None
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
                        f"{self.agent.provider} call failed after {number + 1} tries: "
                        + _short(exc),
                        tries,
                    ) from None
                delay = min(30.0, self.agent.backoff_s * 2**number) * (0.8 + 0.4 * random.random())
                time.sleep(min(30.0, max(delay, retry_after or 0.0)))
                continue
            tries.append(
                {"try": number + 1, "status": 200, "seconds": round(time.monotonic() - started, 3)}
            )
            return self._completion(reply, sent, tries)
        raise ProviderError("unreachable", tries)

    def _completion(self, reply: Reply, sent: str, tries: list) -> Completion:
        # A response without usage must not count as free: estimate it, and say so.
        reported = reply.input_tokens is not None and reply.output_tokens is not None
        if reported and not self.estimated_usage:
            tokens_in, tokens_out, source = (
                reply.input_tokens or 0,
                reply.output_tokens or 0,
                "provider",
            )
        else:
            produced = reply.text + "".join(json.dumps(asdict(c)) for c in reply.tool_calls)
            tokens_in, tokens_out = estimate_tokens(sent), estimate_tokens(produced)
            source = "estimated"
        cost = self.agent.pricing.cost(tokens_in, tokens_out)
        return Completion(
            reply.text or "",
            tokens_in,
            tokens_out,
            round(cost, 6),
            self.agent.provider,
            self.agent.model,
            source,
            tries,
            reply.tool_calls,
            reply.stop_reason,
        )

    def _call(self, system: str, user: str, attempt: int) -> Reply:
        raise NotImplementedError

    def _chat(
        self, system: str, messages: list[Message], tools: list[ToolSpec], attempt: int, step: int
    ) -> Reply:
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


def _check_body(response, expected: str, base_url: str | None):
    """Turn a 2xx answer that is not a completion into a clear error (not an AttributeError)."""
    if isinstance(response, (str, bytes)):
        head = response.decode(errors="replace") if isinstance(response, bytes) else response
        head = " ".join(head.split())[:120]
        raise BadResponse(
            f"the server at {base_url or 'the default endpoint'} answered with a non-JSON body "
            f"(starts {head!r}); check base_url (OpenAI-compatible servers serve /v1)"
        )
    if getattr(response, expected, None) is None:
        raise BadResponse(
            f"the server at {base_url or 'the default endpoint'} answered without "
            f"'{expected}': not a completion response"
        )


def _api_key(agent: AgentConfig, required: bool) -> str:
    env_name = agent.api_key_env or DEFAULT_KEY_ENV.get(agent.provider)
    value = os.environ.get(env_name, "") if env_name else ""
    if not value and required:
        raise ConfigError(
            f"agent {agent.name!r} needs an API key in the environment variable "
            f"{env_name}; keys are read from the environment only"
        )
    return value or "not-needed"


def _tool_call(call_id: str, name: str, raw) -> ToolCall:
    """A tool call whose arguments arrive as a JSON string (OpenAI) or an object (Anthropic)."""
    if isinstance(raw, dict):
        return ToolCall(call_id, name, raw)
    try:
        value = json.loads(raw or "{}")
    except ValueError as exc:
        return ToolCall(call_id, name, {}, f"arguments are not valid JSON ({exc}): {raw[:200]!r}")
    if not isinstance(value, dict):
        return ToolCall(call_id, name, {}, f"arguments must be a JSON object, got {raw[:200]!r}")
    return ToolCall(call_id, name, value)


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

    def _request(self, messages: list[dict], **extra: Any) -> Reply:
        if self.agent.temperature is not None:
            extra["temperature"] = self.agent.temperature
        extra[self.limit_arg] = self.agent.max_tokens
        response = self.client.chat.completions.create(
            model=self.agent.model, messages=cast(Any, messages), **extra
        )
        _check_body(response, "choices", self.agent.base_url)
        usage = getattr(response, "usage", None)
        reply = Reply("", input_tokens=None, output_tokens=None)
        if usage is not None and getattr(usage, "prompt_tokens", None) is not None:
            reply.input_tokens = usage.prompt_tokens or 0
            reply.output_tokens = getattr(usage, "completion_tokens", 0) or 0
        if response.choices:
            choice = response.choices[0]
            reply.text = choice.message.content or ""
            reply.stop_reason = choice.finish_reason or ""
            for call in choice.message.tool_calls or []:
                function = getattr(call, "function", None)
                if function is not None:
                    reply.tool_calls.append(_tool_call(call.id, function.name, function.arguments))
        return reply

    def _call(self, system, user, attempt):
        return self._request(
            [{"role": "system", "content": system}, {"role": "user", "content": user}]
        )

    def _chat(self, system, messages, tools, attempt, step):
        wire: list[dict] = [{"role": "system", "content": system}]
        for m in messages:
            if m.role == "user":
                wire.append({"role": "user", "content": m.text})
            elif m.role == "assistant":
                entry: dict = {"role": "assistant", "content": m.text or None}
                if m.tool_calls:
                    entry["tool_calls"] = [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                        }
                        for c in m.tool_calls
                    ]
                wire.append(entry)
            else:
                wire += [
                    {"role": "tool", "tool_call_id": r.call_id, "content": r.content}
                    for r in m.results
                ]
                if m.text:
                    wire.append({"role": "user", "content": m.text})
        specs = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in tools
        ]
        return self._request(wire, tools=specs)


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

    def _request(self, system: str, messages: list[dict], **extra: Any) -> Reply:
        if self.agent.temperature is not None:
            extra["temperature"] = self.agent.temperature
        extra["max_tokens"] = self.agent.max_tokens
        response = self.client.messages.create(
            model=self.agent.model, system=system, messages=cast(Any, messages), **extra
        )
        _check_body(response, "content", self.agent.base_url)
        reply = Reply("", stop_reason=getattr(response, "stop_reason", "") or "")
        texts = []
        for block in cast(list[Any], response.content):
            kind = getattr(block, "type", "")
            if kind == "text":
                texts.append(getattr(block, "text", ""))
            elif kind == "tool_use":
                reply.tool_calls.append(_tool_call(block.id, block.name, block.input))
        reply.text = "".join(texts)
        usage = getattr(response, "usage", None)
        if usage is not None and getattr(usage, "input_tokens", None) is not None:
            cached = (getattr(usage, "cache_creation_input_tokens", 0) or 0) + (
                getattr(usage, "cache_read_input_tokens", 0) or 0
            )
            reply.input_tokens = (usage.input_tokens or 0) + cached
            reply.output_tokens = getattr(usage, "output_tokens", 0) or 0
        return reply

    def _call(self, system, user, attempt):
        return self._request(system, [{"role": "user", "content": user}])

    def _chat(self, system, messages, tools, attempt, step):
        wire: list[dict] = []
        for m in messages:
            if m.role == "user":
                wire.append({"role": "user", "content": m.text})
            elif m.role == "assistant":
                blocks: list[dict] = [{"type": "text", "text": m.text}] if m.text else []
                blocks += [
                    {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                    for c in m.tool_calls
                ]
                wire.append({"role": "assistant", "content": blocks or "(no reply)"})
            else:
                content: list[dict] = [
                    {
                        "type": "tool_result",
                        "tool_use_id": r.call_id,
                        "content": r.content,
                        "is_error": r.is_error,
                    }
                    for r in m.results
                ]
                if m.text:
                    content.append({"type": "text", "text": m.text})
                wire.append({"role": "user", "content": content})
        specs = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in tools
        ]
        return self._request(system, wire, tools=specs)


class ReplayProvider(Provider):
    """Plays a recorded (or scripted) trajectory: `responses` (one reply per attempt, patch
    mode) or `attempts` (per attempt, a list of turns with text and tool_calls: tools mode);
    under `goals: {<goal id>: ...}` when one trajectory serves several goals."""

    estimated_usage = True

    def __init__(self, agent: AgentConfig, repo: Path, goal: str | None = None):
        super().__init__(agent)
        path = Path(agent.trajectory or "")
        path = path if path.is_absolute() else Path(repo) / path
        data = load_yaml(path)
        if isinstance(data, dict) and isinstance(data.get("goals"), dict):
            if goal not in data["goals"]:
                raise ConfigError(f"{path}: no trajectory for goal {goal!r}")
            data = data["goals"][goal]
        key = "attempts" if agent.mode == "tools" else "responses"
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise ConfigError(f"{path}: a {agent.mode}-mode trajectory needs an '{key}' list")
        self.path = path
        self.responses = [
            r["text"] if isinstance(r, dict) else str(r) for r in data.get("responses") or []
        ]
        self.turns = [
            _replay_turns(path, n, turns) for n, turns in enumerate(data.get("attempts") or [], 1)
        ]

    def _call(self, system, user, attempt):
        if attempt > len(self.responses):
            raise ProviderError(
                f"trajectory {self.path.name} has no response for attempt {attempt}"
            )
        return Reply(self.responses[attempt - 1])

    def _chat(self, system, messages, tools, attempt, step):
        if attempt > len(self.turns) or step > len(self.turns[attempt - 1]):
            raise ProviderError(
                f"trajectory {self.path.name} has no turn for attempt {attempt} step {step}"
            )
        return self.turns[attempt - 1][step - 1]


def _replay_turns(path: Path, attempt: int, turns) -> list[Reply]:
    if not isinstance(turns, list):
        raise ConfigError(f"{path}: attempts[{attempt - 1}] must be a list of turns")
    replies = []
    for step, turn in enumerate(turns, 1):
        if not isinstance(turn, dict):
            raise ConfigError(f"{path}: attempt {attempt} turn {step} must be a mapping")
        calls = [
            ToolCall(
                c.get("id") or f"call_{attempt}_{step}_{i}",
                c["name"],
                dict(c.get("arguments") or {}),
            )
            for i, c in enumerate(turn.get("tool_calls") or [])
        ]
        replies.append(
            Reply(str(turn.get("text") or ""), calls, "tool_use" if calls else "end_turn")
        )
    return replies


def make_provider(agent: AgentConfig, repo: Path, goal: str | None = None) -> Provider:
    if agent.provider == "replay":
        return ReplayProvider(agent, repo, goal)
    if agent.provider == "anthropic":
        return AnthropicProvider(agent)
    return OpenAIProvider(agent)
