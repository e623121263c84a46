"""Context packing: goal, repo map, files in scope, op table and feedback within a token budget."""

from __future__ import annotations

import re
import string
import subprocess
from pathlib import Path

from .config import AgentConfig, Goal
from .edits import matches_any
from .errors import ConfigError

OP_TABLE = "runtime/csrc/dispatch/op_table.cpp"
PY_SYMBOL = re.compile(r"^(?:def|class|async def) +([A-Za-z_]\w*)", re.MULTILINE)
CPP_SYMBOL = re.compile(
    r"^(?:template *<[^>]*> *)?(?:class|struct|enum class|enum) +([A-Za-z_]\w*)[^;]*$"
    r"|^[A-Za-z_][\w:<>,\s\*&]*?[\s\*&]([A-Za-z_][\w:]*)\s*\([^;]*\)\s*(?:const)?\s*\{?\s*$",
    re.MULTILINE,
)
CPP_KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "catch", "defined"}


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def tracked_files(worktree: Path, under: str = "runtime") -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--", under], cwd=worktree, capture_output=True, text=True
    )
    return sorted(p for p in out.stdout.split("\0") if p)


def symbols_of(path: Path) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    if path.suffix == ".py":
        return PY_SYMBOL.findall(text)
    if path.suffix in (".h", ".hpp", ".cpp", ".cc", ".cu", ".cuh"):
        names = []
        for cls, fn in CPP_SYMBOL.findall(text):
            name = cls or fn
            if name and name.split("::")[-1] not in CPP_KEYWORDS and name not in names:
                names.append(name)
        return names
    return []


def repo_map(worktree: Path, max_symbols: int = 12) -> str:
    lines = []
    for rel in tracked_files(worktree):
        syms = symbols_of(Path(worktree) / rel)
        shown = ", ".join(syms[:max_symbols]) + (
            f", ... (+{len(syms) - max_symbols})" if len(syms) > max_symbols else ""
        )
        lines.append(f"{rel}: {shown}" if shown else rel)
    return "\n".join(lines) or "(no tracked files under runtime/)"


def _fit(text: str, budget_tokens: int, label: str) -> str:
    if estimate_tokens(text) <= budget_tokens:
        return text
    keep = max(0, budget_tokens * 4 - 80)
    return text[:keep] + f"\n... [{label} truncated to fit the context budget]"


def files_in_scope(worktree: Path, goal: Goal) -> list[str]:
    tracked = tracked_files(worktree, ".")
    wanted = [p for p in tracked if matches_any(p, goal.scope) or p in goal.context_files]
    return [p for p in wanted if not matches_any(p, goal.all_protected) or p in goal.context_files]


def render_files(worktree: Path, paths: list[str], budget_tokens: int) -> str:
    chunks, used = [], 0
    for rel in paths:
        try:
            body = (Path(worktree) / rel).read_text(errors="replace")
        except OSError:
            continue
        chunk = f"--- {rel} ---\n{body}"
        cost = estimate_tokens(chunk)
        if used + cost > budget_tokens:
            chunks.append(f"--- {rel} --- (omitted: over the context budget; {cost} tokens)")
            continue
        chunks.append(chunk)
        used += cost
    return "\n".join(chunks) or "(no existing files match the scope yet; create them)"


def read_prompt(repo: Path, rel: str) -> string.Template:
    path = Path(rel) if Path(rel).is_absolute() else Path(repo) / rel
    try:
        return string.Template(path.read_text())
    except OSError:
        raise ConfigError(f"prompt template {path} cannot be read") from None


def acceptance_summary(goal: Goal) -> str:
    acc, lines = goal.acceptance, []
    lines.append(f"- build: {'yes' if acc.build else 'no'}")
    for sel in acc.cpp_tests:
        lines.append(f"- C++ tests matching: {sel}")
    for sel in acc.pytest:
        lines.append(f"- pytest: {sel}")
    for num in acc.numerics:
        lines.append(
            f"- numerics '{num.name}': {num.ember} vs torch reference "
            f"{num.torch}, shapes {num.shapes}, dtypes {num.dtypes}, "
            f"atol {num.atol} rtol {num.rtol}"
            + (", forward AND backward" if num.backward else ", forward only")
        )
    if acc.regression_suite:
        lines.append("- the full regression suite in regressions/ must still pass")
    return "\n".join(lines)


def build_prompt(
    repo: Path,
    worktree: Path,
    goal: Goal,
    agent: AgentConfig,
    attempt: int,
    feedback_history: list[str],
) -> tuple[str, str, dict]:
    """Return (system, user, sizes) with every section trimmed to the agent's token budget."""
    budget = agent.context_tokens
    edit_help = read_prompt(repo, f"prompts/edit_{agent.edit_format}.md").template
    feedback = "(first attempt: no feedback yet)"
    if feedback_history:
        parts = [
            f"### Attempt {n} feedback\n{text}" for n, text in enumerate(feedback_history, start=1)
        ]
        feedback = _fit("\n\n".join(parts[-3:]), budget // 4, "feedback")  # newest matter most
    op_table_path = Path(worktree) / OP_TABLE
    op_table = op_table_path.read_text(errors="replace") if op_table_path.exists() else "(absent)"
    files = render_files(worktree, files_in_scope(worktree, goal), budget // 3)
    used = sum(estimate_tokens(t) for t in (goal.intent, feedback, files, edit_help))
    remaining = max(500, budget - used - 600)
    op_table = _fit(op_table, remaining // 3, "op table")
    rmap = _fit(repo_map(worktree), remaining - estimate_tokens(op_table), "repo map")
    values = {
        "goal_id": goal.id,
        "title": goal.title,
        "intent": goal.intent.strip(),
        "scope": "\n".join(f"- {g}" for g in goal.scope),
        "protected": "\n".join(f"- {g}" for g in goal.all_protected),
        "acceptance": acceptance_summary(goal),
        "edit_instructions": edit_help.strip(),
        "repo_map": rmap,
        "files": files,
        "op_table": op_table,
        "feedback": feedback,
        "attempt": str(attempt),
        "max_attempts": str(goal.budget.attempts),
    }
    system = read_prompt(repo, agent.prompts.system).safe_substitute(values)
    user = read_prompt(repo, agent.prompts.attempt).safe_substitute(values)
    sizes = {
        "system_tokens": estimate_tokens(system),
        "user_tokens": estimate_tokens(user),
        "repo_map_tokens": estimate_tokens(rmap),
        "files_tokens": estimate_tokens(files),
        "feedback_tokens": estimate_tokens(feedback),
        "budget_tokens": budget,
    }
    return system, user, sizes
