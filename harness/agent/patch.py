"""Patch mode: one prompt with ranked context, one reply of edits, applied in one go."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..config import AgentConfig
from ..context import REQUIRED, build_prompt, load_templates
from ..edits import apply_edits, parse_edits
from .base import AttemptContext, Submission


class PatchAgent:
    mode = "patch"

    def __init__(self, repo: Path, config: AgentConfig):
        load_templates(repo, config, REQUIRED[self.mode])  # bad templates fail at start

    def attempt(self, ctx: AttemptContext) -> Submission:
        text = self.response(ctx)
        edits = parse_edits(text)
        ctx.write("edits.json", [asdict(e) for e in edits])
        goal = ctx.goal
        report = apply_edits(ctx.worktree, edits, goal.scope, goal.all_protected)
        ctx.write("apply.json", report.to_dict())
        failures = sum(r.status != "applied" for r in report.results)
        ctx.record.event(
            "edits_applied",
            attempt=ctx.number,
            ok=report.ok,
            blocks=len(edits),
            changed=ctx.workspace.changed_paths(ctx.base),
            results=report.to_dict()["results"],
        )
        if not report.ok:
            ctx.reporter.stage("apply", "failed")
            return Submission(
                False,
                "apply",
                "[stage apply] edits could not be applied:\n" + report.feedback(),
                1,
                len(edits),
                failures or 1,  # "no edits found" is an apply failure too
            )
        return Submission(True, steps=1, edit_blocks=len(edits))

    def response(self, ctx: AttemptContext) -> str:
        if ctx.history.response() is not None:  # resumed: never pay for (or change) a reply twice
            return ctx.path("response.txt").read_text()
        prompt = build_prompt(
            ctx.repo, ctx.worktree, ctx.goal, ctx.config, ctx.number, ctx.feedback
        )
        ctx.write(
            "prompt.md", f"<!-- system -->\n{prompt.system}\n\n<!-- user -->\n{prompt.user}\n"
        )
        ctx.write("prompt_sizes.json", prompt.sizes)
        ctx.reporter.stage("model", "waiting")
        completion = ctx.provider.complete(prompt.system, prompt.user, ctx.number)
        ctx.write("response.txt", completion.text)
        ctx.record_response(completion)
        ctx.on_usage(completion)
        return completion.text
