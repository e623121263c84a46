"""Tools mode: the model works in the worktree through native tool calls until it submits.

Every model turn and every tool call is recorded before the next one starts
(`llm_response` with `step`, then one `tool_call` per call), the turn itself in
`attempts/NNN/steps/SSS.turn.json` and each output next to it. A resumed attempt replays the
recorded turns without calling the model: edits are executed again (and checked against the
recorded worktree digest) on the fresh worktree; the outputs of other tools are read back.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..config import AgentConfig
from ..context import REQUIRED, build_prompt, load_templates
from ..providers import Completion, Message, ToolCall, ToolResult
from .base import AttemptContext, Submission
from .toolbox import TOOLS, Toolbox, ToolOutcome

NO_TOOL_NUDGE = (
    "Continue with the tools (read_file, search, list_dir, edit, run); call submit when the "
    "change is complete."
)


class ToolsAgent:
    mode = "tools"

    def __init__(self, repo: Path, config: AgentConfig):
        load_templates(repo, config, REQUIRED[self.mode])  # bad templates fail at start
        self.config = config

    def attempt(self, ctx: AttemptContext) -> Submission:
        system, user = self.first_prompt(ctx)
        messages = [Message("user", user)]
        box = Toolbox(
            ctx.workspace,
            ctx.goal,
            ctx.base,
            ctx.tool_grader,
            ctx.path("tools"),
            self.config.tool_output_chars,
        )
        tokens = 0
        edits = edit_failures = 0
        for step in range(1, self.config.max_steps + 1):
            problem = ctx.budget_problem()
            if problem:
                return Submission(
                    False, "budget", f"[stage budget] {problem}", step - 1, edits, edit_failures
                )
            if tokens >= self.config.attempt_tokens:
                return Submission(
                    False,
                    "limit",
                    f"[stage limit] token limit of the attempt reached ({tokens} >= "
                    f"{self.config.attempt_tokens}) before submit; work in fewer, smaller steps",
                    step - 1,
                    edits,
                    edit_failures,
                )
            ctx.reporter.step(step, self.config.max_steps, "model")
            turn = self.turn(ctx, system, messages, step)
            tokens += turn.tokens
            messages.append(Message("assistant", turn.text, list(turn.tool_calls)))
            if not turn.tool_calls:
                messages.append(Message("user", NO_TOOL_NUDGE))
                continue
            results, submitted = [], False
            for call in turn.tool_calls:
                if submitted:
                    results.append(
                        ToolResult(call.id, call.name, "ignored: submit ended the attempt", True)
                    )
                    continue
                ctx.reporter.step(step, self.config.max_steps, call.name)
                outcome = self.call_tool(ctx, box, call, step)
                if outcome.category == "edit":
                    edits += 1
                    edit_failures += outcome.is_error
                results.append(ToolResult(call.id, call.name, outcome.content, outcome.is_error))
                submitted = outcome.submitted
            left = self.config.max_steps - step
            note = f"{left} step(s) left: finish and call submit." if 0 < left <= 2 else ""
            messages.append(Message("tool", note, results=results))
            if submitted:
                return Submission(True, steps=step, edit_blocks=edits, edit_failures=edit_failures)
        return Submission(
            False,
            "limit",
            f"[stage limit] step limit reached: {self.config.max_steps} model turns without "
            "submit; read less, edit sooner, and submit when the change is complete",
            self.config.max_steps,
            edits,
            edit_failures,
        )

    def first_prompt(self, ctx: AttemptContext) -> tuple[str, str]:
        saved = ctx.path("prompt.json")
        if saved.exists():  # resumed: the conversation must start as it did
            data = json.loads(saved.read_text())
            return data["system"], data["user"]
        prompt = build_prompt(
            ctx.repo, ctx.worktree, ctx.goal, self.config, ctx.number, ctx.feedback
        )
        ctx.write(
            "prompt.md", f"<!-- system -->\n{prompt.system}\n\n<!-- user -->\n{prompt.user}\n"
        )
        ctx.write("prompt_sizes.json", prompt.sizes)
        ctx.write("prompt.json", {"system": prompt.system, "user": prompt.user})
        return prompt.system, prompt.user

    def turn(
        self, ctx: AttemptContext, system: str, messages: list[Message], step: int
    ) -> Completion:
        rel = f"steps/{step:03d}.turn.json"
        recorded = ctx.history.response(step)
        if recorded is not None:  # resumed: the model already answered this step
            data = json.loads(ctx.path(rel).read_text())
            data["tool_calls"] = [ToolCall(**c) for c in data["tool_calls"]]
            return Completion(**data)
        completion = ctx.provider.chat(system, messages, TOOLS, ctx.number, step)
        ctx.write(rel, completion.to_dict())
        ctx.record_response(completion, step)
        ctx.on_usage(completion)
        return completion

    def call_tool(
        self, ctx: AttemptContext, box: Toolbox, call: ToolCall, step: int
    ) -> ToolOutcome:
        rel = f"steps/{step:03d}-{call.id}.out.txt"
        recorded = ctx.history.tool_call(step, call.id)
        if recorded is not None:
            return self.replay_tool(ctx, box, call, step, recorded, rel)
        started = time.monotonic()
        outcome = box.execute(call, step)
        ctx.write(rel, outcome.content)
        ctx.record.event(
            "tool_call",
            attempt=ctx.number,
            step=step,
            call_id=call.id,
            name=call.name,
            arguments=json.dumps(call.arguments)[:500],
            ok=not outcome.is_error,
            refused=outcome.refused,
            category=outcome.category,
            seconds=round(time.monotonic() - started, 3),
            output_chars=len(outcome.content),
            **outcome.detail,
        )
        return outcome

    def replay_tool(self, ctx, box, call, step, recorded: dict, rel: str) -> ToolOutcome:
        """A recorded call: edits change the worktree, so they run again (and must reproduce
        the recorded tree); every other output is read back from the record."""
        content = ctx.path(rel).read_text()
        outcome = ToolOutcome(
            content,
            is_error=not recorded["ok"],
            refused=recorded.get("refused", False),
            category=recorded.get("category", "read"),
            submitted=call.name == "submit",
        )
        if call.name == "edit":
            again = box.execute(call, step)
            if again.detail.get("tree") != recorded.get("tree"):
                ctx.record.event(
                    "replay_diverged",
                    attempt=ctx.number,
                    step=step,
                    call_id=call.id,
                    recorded=recorded.get("tree"),
                    replayed=again.detail.get("tree"),
                )
        return outcome
