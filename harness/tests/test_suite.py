"""The generated goal suite: ablation surgery, determinism, recall, and one goal end to end
(oracle accepted, null rejected) on the fixture repo."""

from __future__ import annotations

import filecmp
import json
import shutil

import git

from harness.suite.ablate import Snapshot, ablate
from harness.suite.build import generate, write
from harness.suite.catalog import AblationOp, Numerics
from harness.suite.recall import GoalRecall, preimage_lines, recall_table, shown_lines
from harness.tests.support import REAL_REPO

SPEC = """\
- defaults: {test: tests/python/ops/test_elementwise.py}

# ---- unary math ----
- op: exp
  func: exp(Tensor self) -> Tensor
  functor: Exp
  backward: {self: grad * result}
  python: [function, method]
- op: softsign
  func: softsign(Tensor self) -> Tensor
  functor: Softsign
  backward: {self: grad / ((abs(self) + 1) * (abs(self) + 1))}
  python: [function, method]
- func: softsign_(Tensor(a!) self) -> Tensor(a!)
  frontend: ops/elementwise.cpp
  python: [method]
"""

FUNCTORS = """\
namespace ember::pw {
template <typename T> struct Exp {
  template <typename O> EMBER_HD O operator()(O v) const { return pm::exp(v); }
};
// x / (1 + |x|)
template <typename T> struct Softsign {
  template <typename O> EMBER_HD O operator()(O v) const { return v / (O(1) + (v < O(0) ? -v : v)); }
};
}  // namespace ember::pw
"""

FRONTEND = """\
namespace ember {

Tensor exp_twice(const Tensor& x) { return exp(exp(x)); }

Tensor& softsign_(Tensor& self) {
  return copy_(self, softsign(self));
}

}  // namespace ember
"""

FUNCTIONAL = '''\
"""nn.functional."""
__all__ = ["relu", "softsign"]


def relu(x):
    return ember.relu(x)


def softsign(x):
    """x / (1 + |x|)."""
    return ember.softsign(x)
'''

MODULES = """\
from ..functional import relu, softsign


class ReLU(Module):
    def forward(self, x):
        return relu(x)


class Softsign(Module):
    def forward(self, x):
        return softsign(x)
"""

TESTS = """\
import ember

CASES = [
    OpCase("exp", lambda lib, x: lib.exp(x), SHAPES, FLOATS),
    OpCase("softsign", lambda lib, x: lib.softsign(x), SHAPES, FLOATS),
    OpCase("softsign_wide", lambda lib, x: lib.softsign(x),
           [[(4000,)]], FLOATS),
]


def test_softsign_rejects_ints():
    with pytest.raises(TypeError):
        ember.softsign(ember.ones(2, dtype=ember.int64))


def test_exp_keeps_shape():
    assert ember.exp(ember.ones(2)).shape == (2,)
"""

SOFTSIGN = AblationOp(
    "softsign",
    "elementwise",
    "`ember.softsign(x)`: x / (1 + |x|).",
    Numerics("ember.softsign", "torch.nn.functional.softsign"),
)


def mini_runtime(**overrides) -> Snapshot:
    files = {
        "runtime/spec/elementwise.yaml": SPEC,
        "runtime/csrc/pointwise/functors.h": FUNCTORS,
        "runtime/csrc/ops/elementwise.cpp": FRONTEND,
        "runtime/python/ember/nn/functional.py": FUNCTIONAL,
        "runtime/python/ember/nn/modules/activation.py": MODULES,
        "runtime/tests/python/ops/test_elementwise.py": TESTS,
        **overrides,
    }
    return Snapshot(files.__getitem__, sorted(files))


def test_ablation_removes_every_piece_and_hides_the_test_rows():
    ab = ablate(mini_runtime(), SOFTSIGN)
    assert ab.problem is None
    spec = ab.changed["runtime/spec/elementwise.yaml"]
    assert "softsign" not in spec and "- op: exp" in spec
    functors = ab.changed["runtime/csrc/pointwise/functors.h"]
    assert (
        "Softsign" not in functors and "x / (1 + |x|)" not in functors and "struct Exp" in functors
    )
    frontend = ab.changed["runtime/csrc/ops/elementwise.cpp"]
    assert "softsign" not in frontend and "exp_twice" in frontend
    functional = ab.changed["runtime/python/ember/nn/functional.py"]
    assert "softsign" not in functional and '__all__ = ["relu"]' in functional
    modules = ab.changed["runtime/python/ember/nn/modules/activation.py"]
    assert "Softsign" not in modules and "from ..functional import relu\n" in modules
    assert ab.wrappers == ["Softsign"]
    tests = ab.changed["runtime/tests/python/ops/test_elementwise.py"]
    assert 'OpCase("exp"' in tests and "test_exp_keeps_shape" in tests
    assert 'OpCase("softsign' not in tests and "test_softsign_rejects_ints" not in tests
    assert "    # (softsign: rows hidden for this suite goal" in tests  # keeps the spec check happy
    assert ab.test_paths == ["runtime/tests/python/ops/test_elementwise.py"]
    assert ab.selectors == [
        'runtime/tests/python/ops/test_elementwise.py -k "softsign or softsign_wide or test_softsign_rejects_ints"'
    ]


def test_an_op_still_used_elsewhere_is_not_ablatable():
    spec = (
        SPEC
        + "- op: soft2\n  func: soft2(Tensor self) -> Tensor\n  backward: {self: softsign(grad)}\n"
    )
    ab = ablate(mini_runtime(**{"runtime/spec/elementwise.yaml": spec}), SOFTSIGN)
    assert ab.problem and "still used" in ab.problem and "elementwise.yaml" in ab.problem


def test_suite_build_is_deterministic(tmp_path, real_repo):
    repo = git.Repo(real_repo)
    first, second = generate(repo, "HEAD"), generate(repo, "HEAD")
    write(first, tmp_path / "a")
    write(second, tmp_path / "b")
    cmp = filecmp.dircmp(tmp_path / "a", tmp_path / "b")

    def same(c: filecmp.dircmp) -> bool:
        return not (c.left_only or c.right_only or c.diff_files) and all(
            map(same, c.subdirs.values())
        )

    assert same(cmp)
    counts = first.counts()
    assert sum(v for k, v in counts.items() if k.startswith("ablation-")) >= 30
    assert sum(v for k, v in counts.items() if k.startswith("bug-")) >= 10


def test_recall_counts_edited_preimage_lines_shown_in_the_prompt(tmp_path):
    (tmp_path / "a.py").write_text("".join(f"line{i}\n" for i in range(1, 11)))
    patch = (
        "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n"
        "@@ -2,3 +2,4 @@\n line2\n line3\n+inserted\n line4\n"
        "@@ -8,3 +9,2 @@\n line8\n-line9\n line10\n"
        "diff --git a/new.py b/new.py\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+x\n"
    )
    # the insertion's anchor and the removed line; a new file needs none
    assert preimage_lines(patch) == {"a.py": {3, 9}}
    blank_before = (
        "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n"
        "@@ -4,3 +4,4 @@\n line4\n \n \n+inserted\n"
    )
    assert preimage_lines(blank_before) == {"a.py": {4}}  # the last non-blank line places it
    prompt = "intro\n--- a.py (excerpt: 1 region(s) of 10 lines) ---\n@@ lines 2-4 @@\nline2\nline3\nline4\n"
    assert shown_lines(prompt, tmp_path) == {"a.py": {2, 3, 4}}
    whole = "--- a.py ---\n" + "".join(f"line{i}\n" for i in range(1, 11))
    assert shown_lines(whole, tmp_path)["a.py"] == set(range(1, 11))


def test_recall_table_sums_lines_per_category():
    results = [
        GoalRecall("ablate-a", "ablation-x", 4, 4, 100),
        GoalRecall("ablate-b", "ablation-x", 2, 1, 100, ["a.py:3"]),
        GoalRecall("bug-c", "bug-y", 1, 0, 100, ["b.cpp:9"]),
    ]
    table = recall_table(results).splitlines()
    assert "| ablate-b | ablation-x | 2 | 1 | 50% | 100 |" in table
    assert "| ablation-x | 2 | 75.0% | 1/2 | 5/6 |" in table
    assert "| bug-y | 1 | 0.0% | 0/1 | 0/1 |" in table


DOUBLE = AblationOp(
    "double",
    "nn-python",
    "`ember.ops.double(x)`: 2 * x.",
    Numerics("ember.ops.double", "lambda x: x * 2", shapes=[[5], [2, 3]], dtypes=("float64",)),
    module="runtime/python/ember/ops.py",
    tests=("tests/python/test_ops.py",),
)


def with_double_test_and_agents(fixture_repo, agents: tuple[str, ...]):
    """The fixture with a test of ember.ops.double (what DOUBLE's ablation hides) and these
    agent files of the real repo, committed."""
    root = fixture_repo.root
    tests = root / "runtime/tests/python/test_ops.py"
    tests.write_text(
        tests.read_text()
        + "\n\ndef test_double_doubles():\n    assert (ember.ops.double(np.ones(3)) == 2).all()\n"
    )
    for rel in agents:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REAL_REPO / rel, root / rel)
    fixture_repo.commit("double test, suite agents")


def test_ablation_goal_oracle_accepted_null_rejected(fixture_repo):
    root = fixture_repo.root
    agents = ("agents/oracle.yaml", "agents/null.yaml", "agents/trajectories/null.yaml")
    with_double_test_and_agents(fixture_repo, agents)
    built = generate(git.Repo(root), "HEAD", ablations=[DOUBLE], bugs=[])
    assert [g.id for g in built.goals] == ["ablate-double"] and not built.skipped
    write(built, root)
    fixture_repo.commit("suite")
    goals = "goals/suite/ablation.yaml"

    assert (
        fixture_repo.run(
            "run", "--goals", str(root / goals), "--goal", "ablate-double", "--agent", "oracle"
        )
        == 0
    )
    worktree = root / ".harness/slots/ablate-double/src"
    assert not (
        worktree / "goals/suite"
    ).exists()  # solutions and hidden tests never reach the agent
    (oracle_run,) = list(fixture_repo.runs.iterdir())
    events = fixture_repo.events(oracle_run.name)
    stages = [e["name"] for e in events if e["kind"] == "stage"]
    assert (
        stages[:2] == ["protected", "hidden_tests"] and "pytest" in stages and "numerics" in stages
    )
    # held to the reference solution's outcomes (Note [reference baseline]): the hidden test
    # the ablation breaks passes there
    (baseline,) = [json.loads(p.read_text()) for p in (root / ".harness/baselines").iterdir()]
    hidden = baseline["pytest"]
    assert any(
        name.endswith("test_double_doubles") and outcome == "passed"
        for run in hidden.values()
        for name, outcome in run["outcomes"].items()
    ), hidden

    assert (
        fixture_repo.run(
            "run", "--goals", str(root / goals), "--goal", "ablate-double", "--agent", "null"
        )
        == 1
    )
    (null_run,) = [d for d in fixture_repo.runs.iterdir() if d != oracle_run]
    null_events = fixture_repo.events(null_run.name)
    finished = [e for e in null_events if e["kind"] == "attempt_finished"]
    assert finished and all(e["failed_stage"] == "pytest" for e in finished)
    assert "double" in finished[0]["feedback"]
    started = next(e for e in null_events if e["kind"] == "run_started")
    assert started["graded_base"] and started["base"] != started["graded_base"]
    reference = started["reference_base"]
    assert reference not in (started["base"], started["graded_base"])
    # the reference is the tree the suite was generated from, minus the suite itself
    repo = git.Repo(root)
    assert repo.commit(reference).tree == repo.commit("HEAD~1").tree
    assert len(list((root / ".harness/baselines").iterdir())) == 1  # the null run reused it


def test_small_spec_files_next_to_a_big_one_are_specs_too():
    from harness.context import find_specs

    big = "".join(f"- op: op{i}\n  func: op{i}(Tensor self) -> Tensor\n" for i in range(9))
    small = "- func: dot(Tensor self, Tensor other) -> Tensor\n  frontend: ops/linalg.cpp\n"
    files = {"spec/big.yaml": big, "spec/linalg.yaml": small, "other/linalg.yaml": small}
    found = {s.path for s in find_specs(sorted(files), lambda rel: files[rel].splitlines())}
    assert found == {"spec/big.yaml", "spec/linalg.yaml"}


def test_a_reference_solution_failing_its_own_tests_is_a_goal_problem(fixture_repo):
    root = fixture_repo.root
    with_double_test_and_agents(fixture_repo, ("agents/oracle.yaml",))
    write(generate(git.Repo(root), "HEAD", ablations=[DOUBLE], bugs=[]), root)
    solution = root / "goals/suite/ablate-double/solution.patch"
    broken = [
        line.replace("x * 2", "x * 5") if line.startswith("+") else line
        for line in solution.read_text().splitlines(keepends=True)
    ]
    assert broken != solution.read_text().splitlines(keepends=True)
    solution.write_text("".join(broken))
    fixture_repo.commit("suite with a broken reference")
    goals = str(root / "goals/suite/ablation.yaml")
    assert fixture_repo.run("run", "--goals", goals, "--goal", "ablate-double", "--agent", "oracle")
    (run,) = list(fixture_repo.runs.iterdir())
    finished = [e for e in fixture_repo.events(run.name) if e["kind"] == "attempt_finished"]
    assert finished and finished[0]["failed_stage"] == "baseline"
    assert "reference solution does not pass" in finished[0]["feedback"]
    assert "test_double_doubles (failed)" in finished[0]["feedback"]
