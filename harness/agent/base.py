"""The Agent protocol: one attempt, given its collaborators; the Grader judges what it leaves.

Mini-swe-agent style: an agent owns no infrastructure. The loop hands it, per attempt, the
provider, the prepared worktree, a tool Grader, the run record and the reporter; the agent
changes the worktree and says whether it is ready to be graded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..config import AgentConfig, Goal
from ..display import Reporter
from ..grading import Grader
from ..providers import Completion, Provider
from ..records import RunRecord
from ..workspace import Workspace


@dataclass
class Submission:
    """What an attempt hands back: grade the worktree, or why it cannot be graded."""

    graded: bool
    failed_stage: str | None = None  # when not graded: apply | limit | budget
    feedback: str = ""
    steps: int = 0  # model turns (1 in patch mode)
    edit_blocks: int = 0
    edit_failures: int = 0  # blocks / edit calls that failed or were rejected


@dataclass
class AttemptHistory:
    """What the record already holds for this attempt (a resumed run replays it)."""

    responses: list[dict] = field(default_factory=list)  # llm_response events, in order
    tool_calls: list[dict] = field(default_factory=list)  # tool_call events, in order

    @classmethod
    def from_events(cls, events: list[dict], attempt: int) -> AttemptHistory:
        mine = [e for e in events if e.get("attempt") == attempt]
        return cls(
            [e for e in mine if e["kind"] == "llm_response"],
            [e for e in mine if e["kind"] == "tool_call"],
        )

    def response(self, step: int | None = None) -> dict | None:
        return next((e for e in self.responses if e.get("step") == step), None)

    def tool_call(self, step: int, call_id: str) -> dict | None:
        return next(
            (e for e in self.tool_calls if e["step"] == step and e["call_id"] == call_id), None
        )


@dataclass
class AttemptContext:
    number: int
    base: str
    goal: Goal
    config: AgentConfig
    repo: Path
    workspace: Workspace
    feedback: list[str]  # feedback of the earlier failed attempts, oldest first
    provider: Provider
    record: RunRecord
    reporter: Reporter
    tool_grader: Grader  # tools mode runs build/tests/numerics through its stages
    history: AttemptHistory
    on_usage: Callable[[Completion], None]  # counts a fresh model call against the budgets
    budget_problem: Callable[[], str | None]

    @property
    def worktree(self) -> Path:
        return self.workspace.worktree

    def path(self, rel: str) -> Path:
        return self.record.attempt_path(self.number, rel)

    def write(self, rel: str, content) -> Path:
        return self.record.write(f"attempts/{self.number:03d}/{rel}", content)

    def record_response(self, completion: Completion, step: int | None = None) -> dict:
        """The commit point of a model call: once this event is written it is never paid again."""
        extra: dict[str, Any] = {} if step is None else {"step": step}
        if completion.tool_calls or step is not None:
            extra["tool_calls"] = [c.name for c in completion.tool_calls]
            extra["stop_reason"] = completion.stop_reason
        return self.record.event(
            "llm_response",
            attempt=self.number,
            **extra,
            provider=completion.provider,
            model=completion.model,
            input_tokens=completion.input_tokens,
            output_tokens=completion.output_tokens,
            cost_usd=completion.cost_usd,
            usage_source=completion.usage_source,
            seconds=round(completion.model_seconds, 3),
            tries=completion.tries,
        )


class Agent(Protocol):
    """One kind of agent (`mode` in the agent yaml)."""

    mode: str

    def attempt(self, ctx: AttemptContext) -> Submission: ...
