"""`harness suite build`: goals generated from the runtime, each with its reference solution and
hidden acceptance, written deterministically under goals/suite/.

Layout (all generated; rebuilding from the same commit gives the same bytes):

    goals/suite/ablation.yaml       ablation goals (one op removed; add it back)
    goals/suite/bugs.yaml           bug goals (a realistic bug injected; fix it from a report)
    goals/suite/<goal>/base.patch      on the goal's `base` commit: the tree the agent starts from
    goals/suite/<goal>/solution.patch  the reference solution (what the oracle agent replays;
                                       the grader holds attempts to its test outcomes)
    goals/suite/<goal>/hidden.patch    test rows the grader adds after the agent is done
    goals/suite/oracle/trajectory.yaml  the oracle agent's replies: each solution as a diff

A goal's starting tree also drops goals/suite itself (`base_drop`), so no agent can read the
solutions or hidden tests from its worktree.
"""

from __future__ import annotations

import difflib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import git
import yaml

from ..config import DEFAULT_COMMANDS
from ..errors import ConfigError
from .ablate import Ablation, Snapshot, ablate
from .bugs import BUGS, Bug
from .catalog import ABLATIONS, AblationOp, Numerics

SUITE_DIR = "goals/suite"
ORACLE = (
    "oracle/trajectory.yaml"  # under SUITE_DIR; a subdirectory, so `--goals goals/suite` skips it
)
SCOPE = ["runtime/csrc/**", "runtime/spec/**", "runtime/python/**"]
BUDGET = {"attempts": 3, "wall_seconds": 3600, "tokens": 400000, "dollars": 5.0}
LIMITS = {"stage_timeout_s": 1800}
# The runtime as `make build CMAKE_ARGS=-DEMBER_CUDA_ARCHS=90` builds it (the default configure
# compiles CUDA for sm_90 only), minus the GoogleTest binary no suite acceptance runs.
CONFIGURE = DEFAULT_COMMANDS["configure"] + " -DEMBER_BUILD_TESTS=OFF"


@dataclass
class GeneratedGoal:
    id: str
    category: str
    goal: dict
    base_patch: str
    solution_patch: str
    hidden_patch: str = ""


@dataclass
class SuiteBuild:
    goals: list[GeneratedGoal] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "op: why" for ablations left out

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for g in self.goals:
            out[g.category] = out.get(g.category, 0) + 1
        return out


def snapshot(repo: git.Repo, ref: str) -> Snapshot:
    tree = repo.commit(ref).tree
    paths = sorted(repo.git.ls_tree("-r", "--name-only", ref).splitlines())
    return Snapshot(lambda p: (tree / p).data_stream.read().decode(), paths)


def unified(path: str, before: str, after: str) -> str:
    """A git-style unified diff of one file (apply with `git apply`)."""
    if before == after:
        return ""
    lines = list(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            f"a/{path}",
            f"b/{path}",
            n=3,
        )
    )
    return f"diff --git a/{path} b/{path}\n" + "".join(
        ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n" for ln in lines
    )


def patch(snap: Snapshot, changed: dict[str, str], paths: list[str], reverse: bool) -> str:
    parts = []
    for path in sorted(paths):
        original, new = snap.read(path), changed[path]
        parts.append(unified(path, new, original) if reverse else unified(path, original, new))
    return "".join(parts)


def numerics_entry(name: str, n: Numerics) -> dict:
    return {
        "name": name,
        "ember": n.ember,
        "torch": n.torch,
        "shapes": [list(s) for s in n.shapes],
        "dtypes": list(n.dtypes),
        "num_inputs": n.num_inputs,
        "input_range": [float(n.input_range[0]), float(n.input_range[1])],
        "seeds": 2,
        "backward": n.backward,
    }


def goal_dict(goal_id: str, title: str, category: str, intent: str, acceptance: dict) -> dict:
    return {
        "id": goal_id,
        "title": title,
        "category": category,
        "agent": "oracle",
        "intent": intent,
        "base": "HEAD",
        "base_patch": f"{SUITE_DIR}/{goal_id}/base.patch",
        "base_drop": [SUITE_DIR],
        "reference_solution": f"{SUITE_DIR}/{goal_id}/solution.patch",
        "scope": list(SCOPE),
        "commands": {"configure": CONFIGURE},
        "acceptance": acceptance,
        "budget": dict(BUDGET),
        "limits": dict(LIMITS),
    }


def ablation_intent(op: AblationOp, ab: Ablation) -> str:
    if op.module:
        how = (
            "It is written in Python on top of existing ember ops, so autograd gives its "
            "gradient; no C++ is needed."
        )
    else:
        how = (
            "Write it the way ember's other ops are written (docs/adding_an_op.md): its spec "
            "entry, kernels for CPU and CUDA, a backward rule where it is differentiable, and its "
            "Python binding."
        )
    wrappers = ""
    if ab.wrappers:
        names = ", ".join(f"`ember.nn.{w}`" for w in ab.wrappers)
        wrappers = f" The module class {names} wraps it and is missing too; add it back as well."
    siblings = ""
    if ab.neighbors:
        names = " and ".join(f"`{n}`" for n in ab.neighbors[:2])
        siblings = f" It belongs with {names}, which ember has."
    return (
        f"ember is missing {op.semantics} Add it, matching PyTorch in values, dtypes, gradients "
        f"and errors (a clear exception naming the op for bad input).{wrappers}{siblings}\n"
        f"{how}\n"
    )


def ablation_goal(snap: Snapshot, op: AblationOp, ab: Ablation) -> GeneratedGoal:
    goal_id = f"ablate-{op.name.replace('_', '-')}"
    sources = [p for p in ab.changed if p not in ab.test_paths]
    acceptance = {
        "build": op.module is None,
        "pytest": list(ab.selectors),
        "numerics": [numerics_entry(op.name, op.numerics)],
        "regression_suite": False,
    }
    goal = goal_dict(
        goal_id,
        f"Add {op.name} back to ember",
        f"ablation-{op.category}",
        ablation_intent(op, ab),
        acceptance,
    )
    goal["hidden_tests"] = f"{SUITE_DIR}/{goal_id}/hidden.patch"
    return GeneratedGoal(
        goal_id,
        goal["category"],
        goal,
        base_patch=patch(snap, ab.changed, list(ab.changed), reverse=False),
        solution_patch=patch(snap, ab.changed, sources, reverse=True),
        hidden_patch=patch(snap, ab.changed, ab.test_paths, reverse=True),
    )


def bug_goal(snap: Snapshot, bug: Bug) -> GeneratedGoal:
    if bug.path not in snap.all_paths:
        raise ConfigError(f"suite bug {bug.id}: {bug.path} does not exist")
    text = snap.read(bug.path)
    if text.count(bug.search) != 1:
        raise ConfigError(
            f"suite bug {bug.id}: the text to replace occurs {text.count(bug.search)} times in "
            f"{bug.path} (it must occur once): {bug.search!r}"
        )
    changed = {bug.path: text.replace(bug.search, bug.replace)}
    acceptance = {
        "build": True,
        "pytest": list(bug.pytest),
        "numerics": [numerics_entry(bug.id.removeprefix("bug-"), bug.numerics)],
        "regression_suite": False,
    }
    goal = goal_dict(bug.id, bug.title, bug.category, bug.report, acceptance)
    return GeneratedGoal(
        bug.id,
        bug.category,
        goal,
        base_patch=patch(snap, changed, [bug.path], reverse=False),
        solution_patch=patch(snap, changed, [bug.path], reverse=True),
    )


def generate(
    repo: git.Repo,
    ref: str = "HEAD",
    ablations: list[AblationOp] | None = None,
    bugs: list[Bug] | None = None,
) -> SuiteBuild:
    """The suite for commit `ref` (default: the catalog's ablations and bugs)."""
    snap = snapshot(repo, ref)
    result = SuiteBuild()
    for op in ABLATIONS if ablations is None else ablations:
        ab = ablate(snap, op)
        if ab.problem:
            result.skipped.append(f"{op.name}: {ab.problem}")
            continue
        result.goals.append(ablation_goal(snap, op, ab))
    for bug in BUGS if bugs is None else bugs:
        result.goals.append(bug_goal(snap, bug))
    return result


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list(dumper: yaml.SafeDumper, value: list):
    flat = all(
        not isinstance(v, (dict, list))
        or (isinstance(v, list) and not any(isinstance(x, (dict, list)) for x in v))
        for v in value
    )
    return dumper.represent_sequence(
        "tag:yaml.org,2002:seq", value, flow_style=flat and len(value) < 12
    )


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)


def dump(data) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)


HEADER = (
    "# GENERATED by `harness suite build` from the runtime; do not edit (rebuild instead).\n"
    "# Each goal starts from `base` + `base_patch` minus `base_drop`; see docs/harness.md.\n"
)


def write(build: SuiteBuild, root: Path) -> list[Path]:
    """Replace goals/suite with this build's files; returns what was written."""
    out = root / SUITE_DIR
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written = []
    files = {
        "ablation.yaml": [g for g in build.goals if g.category.startswith("ablation-")],
        "bugs.yaml": [g for g in build.goals if not g.category.startswith("ablation-")],
    }
    for name, goals in files.items():
        path = out / name
        path.write_text(HEADER + dump({"version": 1, "goals": [g.goal for g in goals]}))
        written.append(path)
    for g in build.goals:
        folder = out / g.id
        folder.mkdir()
        for kind, text in (
            ("base", g.base_patch),
            ("solution", g.solution_patch),
            ("hidden", g.hidden_patch),
        ):
            if text:
                (folder / f"{kind}.patch").write_text(text)
                written.append(folder / f"{kind}.patch")
    oracle = {
        "provenance": "generated: each goal's reference solution (harness suite build)",
        "goals": {
            g.id: {
                "responses": [{"text": f"Reference solution.\n\n```diff\n{g.solution_patch}```\n"}]
            }
            for g in build.goals
        },
    }
    (out / "oracle").mkdir()
    (out / ORACLE).write_text(
        "# GENERATED by `harness suite build`: the oracle agent's replies (reference solutions).\n"
        + dump(oracle)
    )
    written.append(out / ORACLE)
    return written
