"""Null mode: change nothing and submit, so the Grader judges the goal's starting tree.

The suite's null agent (agents/null.yaml) uses it: every suite goal must reject it (a goal that
accepts its own starting tree measures nothing).
"""

from __future__ import annotations

from pathlib import Path

from ..config import AgentConfig
from .base import AttemptContext, Submission


class NullAgent:
    mode = "null"

    def __init__(self, repo: Path, config: AgentConfig):
        self.config = config

    def attempt(self, ctx: AttemptContext) -> Submission:
        ctx.write("response.txt", "(null agent: no edits; the starting tree is graded as is)\n")
        return Submission(True, steps=0)
