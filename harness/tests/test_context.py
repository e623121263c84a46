"""Context ranking on the real repository (a git snapshot of it: the `real_repo` fixture), op-spec
detection by content, strict templates."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from harness.config import load_agent, load_goals, pick_goal
from harness.context import PromptTemplate, build_prompt, find_family, goal_terms, parse_op_spec
from harness.errors import ConfigError
from harness.suite.recall import goal_recall
from harness.tests.support import REAL_REPO


def softsign_prompt(repo: Path, **changes):
    goal = pick_goal(load_goals(repo / "goals.yaml"), "op-softsign")
    goal = dataclasses.replace(goal, **changes)
    agent = load_agent(repo, "openai")
    return goal, agent, build_prompt(repo, repo, goal, agent, 1, [])


def files_mentioning(repo: Path, word: str, globs: list[str], ignore_case=False) -> list[str]:
    out = subprocess.run(
        ["git", "grep", "-l", "-w", *(["-i"] if ignore_case else []), word, "--", *globs],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def assert_family_in_prompt(repo: Path, goal, user: str):
    """softplus is softsign's closest op: every in-scope source file that defines it (its spec
    entry, which generates the rest, and its Python wrappers) is shown, with every line that
    names it. Callers (losses and activations composed from softplus) may give way to the budget."""
    mentioning = files_mentioning(repo, "softplus", [g for g in goal.scope if "/tests/" not in g])
    defines = re.compile(r"^\s*(def softplus\b|class Softplus\b|- op: softplus$)", re.M)
    needed = [rel for rel in mentioning if defines.search((repo / rel).read_text())]
    assert len(needed) >= 2, needed
    for rel in needed:
        assert f"--- {rel}" in user, rel
        text = (repo / rel).read_text()
        for line in text.splitlines():
            if re.search(r"\bsoftplus\b", line):
                assert line in user, (rel, line)
    # The spec rows of the family: the closest op's schema and a neighbour's.
    lines = user.splitlines()
    for op in ("softplus", "sigmoid", "sign"):
        assert any(f"{op}(Tensor self" in ln for ln in lines), op


def test_op_softsign_first_prompt_has_the_spec_rows_and_the_family_files(real_repo):
    goal, agent, prompt = softsign_prompt(real_repo)
    assert_family_in_prompt(real_repo, goal, prompt.user)
    assert prompt.sizes["system_tokens"] + prompt.sizes["user_tokens"] <= agent.context_tokens
    sections = [s["section"] for s in prompt.sizes["sections"]]
    assert sections == ["named", "op_spec", "python", "family", "symbols", "repo_map"]
    # The files of the recipe (docs/adding_an_op.md) that the goal names are all there.
    for rel in ("runtime/spec/elementwise.yaml", "docs/adding_an_op.md"):
        if (real_repo / rel).exists():
            assert f"--- {rel}" in prompt.user, rel


def test_the_op_spec_is_found_by_content_when_the_goal_names_no_file(real_repo):
    intent = (
        "Add `ember.softsign(x)` = x / (1 + |x|) as a native op with a CPU kernel, a backward "
        "rule and a Python binding, matching torch.nn.functional.softsign."
    )
    goal, _, prompt = softsign_prompt(real_repo, intent=intent, context_files=[])
    spec = next(s for s in prompt.sizes["sections"] if s["section"] == "op_spec")
    assert spec["files"] and spec["files"][0]["how"] == "excerpt"
    assert "closest existing: softplus, sign" in prompt.user
    assert_family_in_prompt(real_repo, goal, prompt.user)
    # The repo map is ranked: the family's files first, not the alphabet (the functor of
    # softplus is spelled `Softplus`).
    repo_map = prompt.user.split("## Repository map (most relevant first)\n", 1)[1].splitlines()
    family = files_mentioning(real_repo, "softplus", ["."], ignore_case=True)
    assert repo_map[0].split(":")[0] in family


def test_an_ablated_ops_first_prompt_shows_every_line_its_solution_edits(real_repo, tmp_path):
    """Context recall (`harness suite recall`) of ablations whose reference solutions edit lines
    far from the op's name: `ember.special`'s and `ember.linalg`'s `__all__` (an alias table, a
    binding), the import lists and `__all__` re-exporting `nn.modules.distance` and
    `nn.functional`, and the functor struct a spec row names (`functor: LogAddExp`)."""
    wt = tmp_path / "wt"
    subprocess.run(["git", "clone", "-q", "--shared", str(real_repo), str(wt)], check=True)
    goals = {g.id: g for g in load_goals(real_repo / "goals/suite/ablation.yaml")}
    agent = load_agent(real_repo, "oracle")
    for goal_id in ("ablate-logsumexp", "ablate-diagonal", "ablate-cosine-similarity",
                    "ablate-logaddexp2"):  # fmt: skip
        goal, suite = goals[goal_id], real_repo / "goals/suite" / goal_id
        subprocess.run(["git", "checkout", "-q", "--force", "HEAD"], cwd=wt, check=True)
        subprocess.run(["git", "clean", "-qfd"], cwd=wt, check=True)
        subprocess.run(["git", "apply", str(suite / "base.patch")], cwd=wt, check=True)
        recall = goal_recall(real_repo, wt, goal, agent, (suite / "solution.patch").read_text())
        assert recall.needed > 0 and recall.missing == [], goal_id
        assert recall.prompt_tokens <= agent.context_tokens


def test_yaml_op_spec_rows_and_sections_are_parsed():
    spec_text = "# ---- elementwise ----\n" + "".join(
        f"- name: {op}\n  signature: {op}(Tensor self) -> Tensor\n  cpu: {op}\n\n"
        for op in ("exp", "log", "tanh", "sigmoid", "softplus", "relu", "gelu", "silu")
    )
    spec_text += "# ---- reductions ----\n- name: sum\n  signature: sum(Tensor self, int dim)\n"
    spec = parse_op_spec("runtime/spec/ops.yaml", spec_text.splitlines())
    assert spec is not None and [r.name for r in spec.rows][-2:] == ["silu", "sum"]
    softplus = next(r for r in spec.rows if r.name == "softplus")
    assert spec_text.splitlines()[softplus.start : softplus.end] == [
        "- name: softplus",
        "  signature: softplus(Tensor self) -> Tensor",
        "  cpu: softplus",
    ]
    assert softplus.section == "elementwise" and spec.rows[-1].section == "reductions"
    goal = pick_goal(load_goals(REAL_REPO / "goals.yaml"), "op-softsign")
    family = find_family([spec], goal_terms(goal), 1, lambda rel: spec_text.splitlines())
    assert family.new == ["softsign"] and family.siblings == ["softplus"]
    assert family.sections == ["elementwise"]


def test_templates_fail_on_unknown_and_missing_placeholders(fixture_repo, tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text("Goal $goal_id\n\nsee $no_such_thing here\n")
    with pytest.raises(ConfigError, match=r"bad.md:3: unknown placeholder \$no_such_thing"):
        PromptTemplate(tmp_path, "bad.md").render({"goal_id": "g"})
    bad.write_text("costs $5\n")
    with pytest.raises(ConfigError, match=r"bad.md:1: a '\$' that starts no placeholder"):
        PromptTemplate(tmp_path, "bad.md")
    # An agent whose templates drop $feedback would never show the model its failures.
    root = fixture_repo.root
    attempt = (root / "prompts/attempt.md").read_text()
    (root / "prompts/lossy.md").write_text(attempt.replace("$feedback", "(none)"))
    fixture_repo.write_agent(
        "lossy", "openai", base_url="http://127.0.0.1:9", prompts={"attempt": "prompts/lossy.md"}
    )
    fixture_repo.write_goals(agent="lossy")
    assert fixture_repo.run("run") == 2
    assert not fixture_repo.runs.exists() or not any(fixture_repo.runs.iterdir())
