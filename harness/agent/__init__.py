"""Agents: how a model turns a goal into a change of the worktree (`mode` in agents/*.yaml).

- patch: one prompt with ranked context, one reply of search/replace blocks or diffs.
- tools: a conversation with native tool calls (read, search, list, edit, run, submit).
Both are driven the same way by the loop (harness/loop.py) and judged by the same Grader.
"""

from __future__ import annotations

from pathlib import Path

from ..config import AgentConfig
from .base import Agent, AttemptContext, AttemptHistory, Submission
from .patch import PatchAgent
from .tools import ToolsAgent

__all__ = ["Agent", "AttemptContext", "AttemptHistory", "Submission", "make_agent"]


def make_agent(repo: Path, config: AgentConfig) -> Agent:
    kinds: dict[str, type] = {"patch": PatchAgent, "tools": ToolsAgent}
    return kinds[config.mode](repo, config)
