"""Context recall of the patch mode: how much of what the reference solution edits the first
prompt shows.

For every goal, the reference solution's *edited pre-image lines* are the lines of the goal's
starting tree that it removes or replaces, and for an insertion the last non-blank line before
it (the anchor a SEARCH block must quote); new files need none. Recall is the share of those
lines that the first prompt (harness/context.py, exactly as the patch agent builds it) shows
verbatim, whole or in an excerpt.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import git

from ..config import AgentConfig, Goal
from ..context import build_prompt
from ..goal_base import goal_bases
from ..workspace import harden, open_repo

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")
WHOLE = re.compile(r"^--- (\S+) ---$")
EXCERPT = re.compile(r"^--- (\S+) \(excerpt: .*\) ---$")
REGION = re.compile(r"^@@ lines (\d+)-(\d+) @@$")


def preimage_lines(patch: str) -> dict[str, set[int]]:
    """path -> the 1-based pre-image lines a patch edits (removed lines; insertion anchors)."""
    needed: dict[str, set[int]] = {}
    path, old, new_file = None, 0, False
    anchor = 0  # the last non-blank pre-image line of the hunk so far
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            path, new_file = line.split(" b/", 1)[1], False
            continue
        if line.startswith("--- "):
            new_file = line.strip() == "--- /dev/null"
            continue
        if line.startswith("+++ ") or path is None or new_file:
            continue
        m = HUNK.match(line)
        if m:
            old = int(m.group(1))
            if m.group(2) == "0":  # pure insertion after line `old`
                old += 1
            anchor = old - 1
            continue
        lines = needed.setdefault(path, set())
        if line.startswith("-"):
            lines.add(old)
            anchor = old if line[1:].strip() else anchor
            old += 1
        elif line.startswith("+"):
            # an insertion is placed by the last non-blank line before it (blank lines say nothing)
            lines.add(max(anchor, 1))
        elif line.startswith(" "):
            anchor = old if line[1:].strip() else anchor
            old += 1
    return {p: s for p, s in needed.items() if s}


def shown_lines(prompt: str, worktree: Path) -> dict[str, set[int]]:
    """path -> the 1-based lines of that file the prompt shows verbatim."""
    shown: dict[str, set[int]] = {}
    text = prompt.splitlines()
    i = 0
    while i < len(text):
        whole, excerpt = WHOLE.match(text[i]), EXCERPT.match(text[i])
        header = whole or excerpt
        if header is None:
            i += 1
            continue
        rel = header.group(1)
        path = worktree / rel
        if not path.is_file():
            i += 1
            continue
        source = path.read_text(errors="replace").splitlines()
        got = shown.setdefault(rel, set())
        i += 1
        if whole:
            k = 0
            while k < len(source) and i + k < len(text) and text[i + k] == source[k]:
                got.add(k + 1)
                k += 1
            i += k
            continue
        while i < len(text):
            region = REGION.match(text[i])
            if not region:
                break
            start, end = int(region.group(1)), int(region.group(2))
            i += 1
            for number in range(start, end + 1):
                if i < len(text) and number <= len(source) and text[i] == source[number - 1]:
                    got.add(number)
                    i += 1
                else:
                    break
    return shown


@dataclass
class GoalRecall:
    goal: str
    category: str
    needed: int
    shown: int
    prompt_tokens: int
    missing: list[str] = field(default_factory=list)  # "path:line" not shown

    @property
    def recall(self) -> float:
        return 1.0 if self.needed == 0 else self.shown / self.needed

    def to_dict(self) -> dict:
        return {
            "goal": self.goal,
            "category": self.category,
            "needed": self.needed,
            "shown": self.shown,
            "recall": round(self.recall, 4),
            "prompt_tokens": self.prompt_tokens,
            "missing": self.missing,
        }


def goal_recall(
    repo: Path, worktree: Path, goal: Goal, agent: AgentConfig, solution: str
) -> GoalRecall:
    prompt = build_prompt(repo, worktree, goal, agent, 1, [])
    needed = preimage_lines(solution)
    shown = shown_lines(prompt.user, worktree)
    missing = sorted(
        (f"{p}:{n}" for p, lines in needed.items() for n in lines if n not in shown.get(p, set())),
        key=lambda s: (s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[1])),
    )
    total = sum(len(s) for s in needed.values())
    return GoalRecall(
        goal.id,
        goal.category,
        total,
        total - len(missing),
        prompt.sizes["user_tokens"] + prompt.sizes["system_tokens"],
        missing,
    )


def suite_recall(
    repo_root: Path, goals: list[Goal], agent: AgentConfig, scratch: Path
) -> list[GoalRecall]:
    """Recall of every goal with a reference solution (goals/suite/<id>/solution.patch), each
    prompt built in a scratch worktree checked out at the goal's starting commit."""
    repo = open_repo(repo_root)
    results = []
    if scratch.exists():
        shutil.rmtree(scratch)
    repo.git.worktree("prune")
    repo.git.worktree("add", "--detach", "-f", str(scratch), "HEAD")
    try:
        wt = harden(git.Repo(scratch))
        for goal in goals:
            solution = Path(repo_root) / Path(goal.base_patch or "").parent / "solution.patch"
            if not goal.base_patch or not solution.is_file():
                continue
            base = goal_bases(repo, goal).base
            wt.git.checkout("--detach", "--force", base)
            wt.git.clean("-ffdxq")
            results.append(goal_recall(Path(repo_root), scratch, goal, agent, solution.read_text()))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        repo.git.worktree("prune")
    return results


def recall_table(results: list[GoalRecall]) -> str:
    """Markdown: one row per goal, then the mean per category."""
    rows = [
        "| goal | category | edited pre-image lines | shown | recall | prompt tokens |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r.goal} | {r.category} | {r.needed} | {r.shown} | {r.recall:.0%} | "
            f"{r.prompt_tokens} |"
        )
    by_cat: dict[str, list[GoalRecall]] = {}
    for r in results:
        by_cat.setdefault(r.category, []).append(r)
    rows += [
        "",
        "| category | goals | mean recall | at 100% | lines shown |",
        "|---|---|---|---|---|",
    ]
    for cat, goals in sorted(by_cat.items()):
        mean = sum(g.recall for g in goals) / len(goals)
        full = sum(g.recall >= 1.0 for g in goals)
        shown, needed = sum(g.shown for g in goals), sum(g.needed for g in goals)
        rows.append(
            f"| {cat} | {len(goals)} | {mean:.1%} | {full}/{len(goals)} | {shown}/{needed} |"
        )
    return "\n".join(rows) + "\n"
