"""`harness suite build | check | recall` (wired into harness/cli.py)."""

from __future__ import annotations

import argparse
import dataclasses
import filecmp
import json
import tempfile
from pathlib import Path

from ..config import load_agent, load_goals
from ..errors import ConfigError
from ..goal_base import derive
from ..workspace import open_repo
from .build import SUITE_DIR, generate, write
from .recall import recall_table, suite_recall


def add_parser(sub) -> None:
    suite = sub.add_parser("suite", help="the generated goal suite: build, check, context recall")
    action = suite.add_subparsers(dest="suite_command", required=True)
    build = action.add_parser("build", help=f"generate {SUITE_DIR}/ from the runtime")
    build.add_argument("--ref", default="HEAD", help="commit to generate from (default HEAD)")
    check = action.add_parser(
        "check",
        help=f"fail if {SUITE_DIR}/ differs from a fresh build or a goal's patches do not "
        "round-trip to the source tree",
    )
    check.add_argument("--ref", default="HEAD")
    recall = action.add_parser("recall", help="context recall of the patch mode per suite goal")
    recall.add_argument("--agent", default="oracle", help="agent whose context_tokens to use")
    recall.add_argument(
        "--context-tokens", type=int, help="pack this budget instead of the agent's context_tokens"
    )
    recall.add_argument("--goals", default=SUITE_DIR, help="goal files or a directory of them")
    recall.add_argument("--goal-ids", help="only these goals (comma-separated)")
    recall.add_argument("--json", action="store_true")


def _goal_files(repo: Path, spec: str) -> list[Path]:
    path = repo / spec
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    return files


def cmd_suite(args: argparse.Namespace) -> int:
    repo = open_repo(Path(args.repo or Path.cwd()))
    root = Path(str(repo.working_tree_dir))
    if args.suite_command in ("build", "check"):
        built = generate(repo, args.ref)
        if args.suite_command == "check":
            with tempfile.TemporaryDirectory() as tmp:
                write(built, Path(tmp))
                diff = filecmp.dircmp(Path(tmp) / SUITE_DIR, root / SUITE_DIR)
                stale = _differences(diff)
            for line in stale:
                print(f"stale: {line}")
            broken = roundtrip_problems(root, args.ref, built)
            for line in broken:
                print(f"broken: {line}")
            stale += broken
            verdict = "rebuild with `harness suite build`" if stale else "up to date"
            print(f"{SUITE_DIR}: {verdict}")
            return 1 if stale else 0
        written = write(built, root)
        for reason in built.skipped:
            print(f"skipped {reason}")
        counts = ", ".join(f"{k} {v}" for k, v in sorted(built.counts().items()))
        print(f"{len(built.goals)} goals ({counts}); {len(written)} files in {SUITE_DIR}/")
        return 0
    agent = load_agent(root, args.agent)
    if agent.mode != "patch":
        raise ConfigError(
            f"recall measures the patch mode's prompt; agent {agent.name} is {agent.mode}"
        )
    if args.context_tokens is not None:
        if args.context_tokens < 1000:
            raise ConfigError(f"--context-tokens {args.context_tokens}: at least 1000")
        agent = dataclasses.replace(agent, context_tokens=args.context_tokens)
    goals = [g for f in _goal_files(root, args.goals) for g in load_goals(f)]
    if args.goal_ids:
        wanted = set(args.goal_ids.split(","))
        goals = [g for g in goals if g.id in wanted]
    results = suite_recall(root, goals, agent, root / ".harness" / "slots" / "suite-recall" / "src")
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=1))
    else:
        print(f"context recall at context_tokens={agent.context_tokens} (agent {agent.name})\n")
        print(recall_table(results))
        for r in results:
            if r.missing:
                print(f"{r.goal}: not shown: {', '.join(r.missing[:8])}")
    return 0


def roundtrip_problems(root: Path, ref: str, built) -> list[str]:
    """Each goal's starting tree plus its solution and hidden tests must be `ref`'s tree again
    (minus the suite): then the oracle grades exactly the runtime `ref` holds."""
    repo = open_repo(root)
    parent = repo.commit(ref).hexsha
    want = repo.commit(derive(root, parent, "", [SUITE_DIR], "suite check")).tree.hexsha
    problems = []
    for goal in built.goals:
        base = derive(root, parent, goal.base_patch, [SUITE_DIR], f"base of {goal.id}")
        back = derive(root, base, goal.solution_patch + goal.hidden_patch, [], f"{goal.id} solved")
        if repo.commit(back).tree.hexsha != want:
            problems.append(f"{goal.id}: base + solution + hidden tests is not {ref}'s tree")
    return problems


def _differences(cmp: filecmp.dircmp, prefix: str = "") -> list[str]:
    out = [f"{prefix}{n} (only in the fresh build)" for n in cmp.left_only]
    out += [f"{prefix}{n} (not generated)" for n in cmp.right_only]
    out += [f"{prefix}{n}" for n in cmp.diff_files]
    for name, sub in cmp.subdirs.items():
        out += _differences(sub, f"{prefix}{name}/")
    return out
