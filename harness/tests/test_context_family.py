"""The context's family mechanisms on small fixture trees: the Python side of a family (defs,
import lists, `__all__`, module wrappers), excerpt regions ranked by closeness, comment
companions of a missing op, definitions over callers, and what an intent's code names."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from harness.config import load_goals, pick_goal
from harness.context import (
    ContextBuilder,
    find_family,
    find_specs,
    goal_terms,
    ranked_regions,
    span_around,
)
from harness.context_python import find_py_family, parse_module
from harness.suite.recall import shown_lines
from harness.tests.support import REAL_REPO

LOSSES = (
    '''\
"""Losses (the functional forms)."""
import ember

__all__ = ["mse_loss", "smooth_l1_loss",
           "cross_entropy"]


def _reduce(x, reduction):
    return x.mean() if reduction == "mean" else x


def mse_loss(input, target, reduction="mean"):
    return _reduce((input - target) ** 2, reduction)


def _clamp(x):
    return x.clamp_min(0)


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    d = (input - target).abs()
    return _reduce(ember.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction)


def cross_entropy(input, target):
'''
    + "".join(f"    step{i} = input.log_softmax({i})\n" for i in range(40))
    + "    return step0\n"
)

FUNCTIONAL = """\
from ._losses import (cross_entropy, mse_loss,  # noqa: F401
                      smooth_l1_loss)


def relu(x):
    return x.relu()
"""

MODULES_LOSS = """\
from .. import functional as F

__all__ = ["MSELoss", "SmoothL1Loss"]


class _Loss:
    def __init__(self, reduction="mean"):
        self.reduction = reduction


class MSELoss(_Loss):
    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction)


class Unrelated(_Loss):
    pass
"""

MODULES_INIT = """\
from .linear import Linear
from .loss import MSELoss, SmoothL1Loss

__all__ = ["Linear", "MSELoss", "SmoothL1Loss"]
"""

SPEC = "".join(
    f"OP({op}, {n})\n"
    for n, op in enumerate(
        ["abs", "exp", "log", "sum", "masked_fill", "nonzero", "index_put", "where", "clamp"]
    )
)

KERNELS = """\
// Indexing kernels: masked_fill, index_put, masked_select / nonzero.
#include "spec.h"

void masked_fill(float* out, const bool* mask, float value, int n) {
  for (int i = 0; i < n; ++i) {
    if (mask[i]) out[i] = value;
  }
}

// ---- masked_select / nonzero: outputs sized by a host count ----

void index_put(float* out, const long* index, const float* values, int n) {
  for (int i = 0; i < n; ++i) {
    out[index[i]] = values[i];
  }
}

void nonzero(const float* x, long* out, int n) {
  int k = 0;
  for (int i = 0; i < n; ++i) {
    if (x[i] != 0) out[k++] = i;
  }
}
"""

CALLER = """\
#include "spec.h"

float* clear_masked(float* out, const bool* mask, int n) {
  masked_fill(out, mask, 0.0f, n);
  return out;
}
"""

HUBER = (
    "ember is missing `ember.nn.functional.huber_loss(input, target, reduction='mean', "
    "delta=1.0)`: 0.5 * d^2 where |d| < delta, delta * (|d| - delta / 2) elsewhere. The module "
    "class `ember.nn.HuberLoss` wraps it and is missing too. It belongs with `smooth_l1_loss`, "
    "which ember has."
)
MASKED_SELECT = (
    "ember is missing `ember.masked_select(x, mask)`: a 1-d tensor of the elements of x where "
    "the mask is True. It belongs with `masked_fill`, which ember has."
)


def fixture_tree(root: Path) -> Path:
    files = {
        "pkg/nn/_losses.py": LOSSES,
        "pkg/nn/functional.py": FUNCTIONAL,
        "pkg/nn/modules/loss.py": MODULES_LOSS,
        "pkg/nn/modules/__init__.py": MODULES_INIT,
        "pkg/nn/modules/linear.py": "class Linear:\n    pass\n",
        "pkg/csrc/spec.h": SPEC,
        "pkg/csrc/kernels.cpp": KERNELS,
        "pkg/csrc/caller.cpp": CALLER,
        "pkg/csrc/fill.cu": KERNELS.split("// ----")[0].split("\n", 1)[1],  # defines masked_fill
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


def make_goal(intent: str):
    goal = pick_goal(load_goals(REAL_REPO / "goals.yaml"), "op-softsign")
    acceptance = dataclasses.replace(goal.acceptance, numerics=[])
    return dataclasses.replace(
        goal, intent=intent, scope=["pkg/**"], context_files=[], acceptance=acceptance
    )


def line_numbers(text: str, *needles: str) -> set[int]:
    """1-based numbers of the lines of `text` that contain any needle."""
    return {n for n, line in enumerate(text.splitlines(), 1) if any(s in line for s in needles)}


def test_code_names_skip_parameters_and_strings_and_prose_calls_stay_out_of_the_family(tmp_path):
    intent = (
        "ember is missing `ember.logsumexp(x, dim, keepdim=False)`: log(sum(exp(x))) along "
        "dim, `reduction='mean'` style. It belongs with `where` and `clamp`, which ember has."
    )
    terms = goal_terms(make_goal(intent))
    assert "logsumexp" in terms.code and {"where", "clamp"} <= set(terms.code)
    for name in ("dim", "keepdim", "mean", "x"):  # a parameter, a keyword, a string value
        assert name not in terms.strong, name
    assert {"log", "sum", "exp"} <= set(terms.strong) and not {"log", "sum", "exp"} & set(
        terms.code
    )
    root = fixture_tree(tmp_path)
    specs = find_specs(["pkg/csrc/spec.h"], lambda rel: (root / rel).read_text().splitlines())
    family = find_family(specs, terms, None, lambda rel: (root / rel).read_text().splitlines())
    assert family.named == ["where", "clamp"] and family.new == ["logsumexp"]
    # With no op written as code, the prose calls are what the goal has.
    prose = goal_terms(make_goal("ember is missing `ember.logsumexp`: log(sum(exp(x)))."))
    family = find_family(specs, prose, None, lambda rel: (root / rel).read_text().splitlines())
    assert family.named == ["log", "sum", "exp"]


def test_python_family_shows_definitions_import_lists_all_and_module_wrappers(tmp_path):
    root = fixture_tree(tmp_path)
    builder = ContextBuilder(root, make_goal(HUBER))
    section = builder.section_python(4000)
    shown = shown_lines(section.body, root)
    # the lines a change adding huber_loss and HuberLoss edits or anchors on
    losses, loss_module = LOSSES.splitlines(), MODULES_LOSS.splitlines()
    smooth = losses.index('def smooth_l1_loss(input, target, reduction="mean", beta=1.0):')
    wrapper = loss_module.index("class SmoothL1Loss(_Loss):")
    expected = {
        "pkg/nn/_losses.py": line_numbers(LOSSES, "__all__", '"cross_entropy"]')
        | set(range(smooth + 1, smooth + 4))  # the sibling's def, whole
        | {smooth - 2},  # the last line of the def before it (an insertion there anchors on it)
        "pkg/nn/functional.py": {1, 2},  # the whole multi-line import statement
        "pkg/nn/modules/loss.py": line_numbers(MODULES_LOSS, "__all__")
        | set(range(wrapper + 1, wrapper + 4)),
        "pkg/nn/modules/__init__.py": line_numbers(MODULES_INIT, "from .loss", "__all__"),
    }
    for rel, lines in expected.items():
        assert lines <= shown.get(rel, set()), (rel, sorted(lines - shown.get(rel, set())))
    # Only the module class over the sibling, not every class of the module; a long unrelated
    # definition stays out, and every excerpt says where it is.
    assert "class SmoothL1Loss" in section.body and "class Unrelated" not in section.body
    assert "step30" not in section.body and "def relu" not in section.body
    assert "--- pkg/nn/_losses.py (excerpt: " in section.body and "@@ lines " in section.body
    assert "closest: smooth_l1_loss, SmoothL1Loss" in section.title
    # within a tight budget the export statements come first
    tight = ContextBuilder(root, make_goal(HUBER)).section_python(60)
    assert "__all__" in tight.body and "def smooth_l1_loss" not in tight.body


def test_python_family_needs_a_new_class_to_show_wrappers_and_a_defined_sibling(tmp_path):
    root = fixture_tree(tmp_path)
    modules = [
        m
        for rel in ("pkg/nn/_losses.py", "pkg/nn/modules/loss.py")
        if (m := parse_module(rel, (root / rel).read_text())) is not None
    ]
    only_function = find_py_family(modules, ["huber_loss"], ["smooth_l1_loss"])
    assert only_function.siblings == ["smooth_l1_loss"] and only_function.wrappers == []
    with_class = find_py_family(modules, ["huber_loss", "HuberLoss"], ["smooth_l1_loss"])
    assert with_class.wrappers == ["SmoothL1Loss"]
    # a name already defined is no new name, and a sibling must be defined somewhere
    family = find_py_family(modules, ["mse_loss", "huber_loss"], ["no_such_fn", "mse_loss"])
    assert family.new == ["huber_loss"] and family.siblings == ["mse_loss"]
    assert parse_module("broken.py", "def f(:\n") is None
    # an existing function the goal names is its own family; a name nothing defines has none
    relu = ContextBuilder(root, make_goal("Make `ember.relu` faster.")).section_python(4000)
    assert "def relu(x):\n    return x.relu()" in relu.body
    none = ContextBuilder(root, make_goal("Make `ember.softsign` faster.")).section_python(4000)
    assert none.body == "" and none.shown == []


def test_excerpt_regions_go_by_rank_within_budget_and_never_start_on_a_blank_line():
    lines = ["int a() {", "  return 1;", "}", "", "", "int b() {", "  return 2;", "}", ""]
    assert span_around(lines, 5, before=2, after=0) == (2, 8)  # back to `}` over the blanks
    lines = [f"line {i}" for i in range(100)]
    ranked = [(2, 0, 10), (0, 50, 60), (1, 80, 90)]
    assert ranked_regions([(0, 50, 60)], lines, 10) == []  # nothing fits
    # room for two: the closest two, in file order
    assert ranked_regions(ranked, lines, 60) == [(50, 60), (80, 90)]
    assert ranked_regions(ranked, lines, 1000) == [(0, 10), (50, 60), (80, 90)]


def test_comment_companions_and_defining_files_lead_the_family(tmp_path):
    root = fixture_tree(tmp_path)
    builder = ContextBuilder(root, make_goal(MASKED_SELECT))
    family = builder.family
    assert family.new == ["masked_select"] and family.named == ["masked_fill"]
    # the comments naming masked_select name nonzero twice, index_put once (too weak), and
    # masked_fill, which is the family already
    assert family.companions == ["nonzero"]
    scores = builder.file_scores
    assert scores["pkg/csrc/kernels.cpp"] > scores["pkg/csrc/caller.cpp"] > 0
    # both name masked_fill once: the one defining it counts double
    assert scores["pkg/csrc/fill.cu"] == 2 * scores["pkg/csrc/caller.cpp"]
    section = builder.section_family(4000)
    shown = shown_lines(section.body, root)["pkg/csrc/kernels.cpp"]
    kernels = KERNELS.splitlines()
    before_nonzero = kernels.index("void nonzero(const float* x, long* out, int n) {") - 1
    assert kernels[before_nonzero - 1] == "}" and before_nonzero in shown  # 1-based: the `}`
    masked_fill = kernels.index(
        "void masked_fill(float* out, const bool* mask, float value, int n) {"
    )
    assert set(range(masked_fill + 1, masked_fill + 6)) <= shown


def test_a_missing_op_named_in_many_files_has_no_companions(tmp_path):
    root = fixture_tree(tmp_path)
    for n in range(6):
        (root / f"pkg/csrc/user{n}.cpp").write_text("// masked_select, nonzero and abs\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    assert ContextBuilder(root, make_goal(MASKED_SELECT)).family.companions == []


REEXPORT_TREE = {
    "pkg/__init__.py": (
        "from .nn.functional import (adaptive_pool, avg_pool,  # noqa: F401\n"
        "                            batch_norm, conv1d,\n"
        "                            dropout, elu,\n"
        "                            gelu, linear,\n"
        "                            prelu, relu)\n"
    ),
    "pkg/nn/functional.py": (
        '"""The functional forms."""\n\n\n'
        "def normalize(x, dim=1):\n    return x / x.norm(dim=dim, keepdim=True)\n\n\n"
        "def pairwise_distance(x1, x2):\n    return (x1 - x2).norm(dim=-1)\n"
    ),
    "pkg/nn/modules/distance.py": (
        '"""PairwiseDistance and CosineSimilarity (torch.nn.modules.distance)."""\n'
        "from .. import functional as F\n\n\n"
        "class PairwiseDistance:\n"
        "    def forward(self, x1, x2):\n"
        "        return F.pairwise_distance(x1, x2)\n"
    ),
    "pkg/nn/modules/loss.py": (  # imports a distance module for its own use: no re-export
        "from .distance import PairwiseDistance\n\n"
        '__all__ = ["TripletLoss"]\n\n\n'
        "class TripletLoss:\n"
        "    def forward(self, a, p):\n"
        "        return PairwiseDistance().forward(a, p)\n"
    ),
    "pkg/nn/modules/__init__.py": (
        "from .distance import PairwiseDistance\n"
        "from .loss import TripletLoss\n\n"
        '__all__ = ["TripletLoss",\n'
        '           "PairwiseDistance",\n'
        '           "Unfold"]\n'
    ),
    "pkg/special.py": (
        '"""Special functions."""\n'
        '__all__ = ["erf",\n'
        '           "expit", "ndtr",\n'
        '           "xlogy"]\n\n'
        '_ALIASES = {"erf": "erf", "expit": "sigmoid", "logsumexp": "logsumexp"}\n'
    ),
    "pkg/linalg.py": (
        '"""Linear algebra."""\n'
        '__all__ = ["cross", "det",\n'
        '           "eig",\n'
        '           "inv"]\n\n\n'
        "def _diagonal(A):\n    return A\n\n\n"
        "diagonal = _diagonal\n"
    ),
    "pkg/einsum.py": (  # names `diagonal` in prose only
        '"""einsum from diagonal views and sums."""\n'
        '__all__ = ["einsum"]\n\n\n'
        "def einsum(eq, *xs):\n    return xs[0]\n"
    ),
}
COSINE = (
    "ember is missing `ember.nn.functional.cosine_similarity(x1, x2)`. The module class "
    "`ember.nn.CosineSimilarity` wraps it and is missing too. It belongs with `normalize`, "
    "which ember has."
)


def reexport_tree(root: Path) -> Path:
    for rel, text in REEXPORT_TREE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


def test_a_new_name_joins_the_export_lists_around_its_home(tmp_path):
    """Note [re-exports of a new name]: the import lists re-exporting from the new function's
    home (where its sibling is defined) and from the module whose docstring promises the new
    class, the `__all__` lines naming what those import, and that module's definitions."""
    root = reexport_tree(tmp_path)
    section = ContextBuilder(root, make_goal(COSINE)).section_python(4000)
    shown = shown_lines(section.body, root)
    init = REEXPORT_TREE["pkg/nn/modules/__init__.py"]
    expected = {
        "pkg/__init__.py": {2, 3},  # cosine_similarity sorts in between conv1d and dropout
        "pkg/nn/modules/__init__.py": line_numbers(init, "from .distance", '"PairwiseDistance"'),
        "pkg/nn/modules/distance.py": {2, 5, 6, 7},  # the class it goes next to, and its anchor
    }
    for rel, lines in expected.items():
        assert lines <= shown.get(rel, set()), (rel, sorted(lines - shown.get(rel, set())))
    assert {4, 5} & shown["pkg/__init__.py"] == set()  # a long list shows where the name goes
    assert "pkg/nn/modules/loss.py" not in shown  # an import for its own use re-exports nothing


def test_a_module_binding_or_tabling_a_new_name_shows_its_all(tmp_path):
    root = reexport_tree(tmp_path)
    special = make_goal("ember is missing `ember.logsumexp(x, dim)`: log(sum(exp(x))).")
    shown = shown_lines(ContextBuilder(root, special).section_python(4000).body, root)
    assert {3, 6} <= shown["pkg/special.py"]  # where it sorts in; its alias table
    assert 2 not in shown["pkg/special.py"] and "pkg/linalg.py" not in shown
    diagonal = make_goal("ember is missing `ember.diagonal(x, offset=0)`.")
    shown = shown_lines(ContextBuilder(root, diagonal).section_python(4000).body, root)
    assert {2, 3} <= shown["pkg/linalg.py"] and 4 not in shown["pkg/linalg.py"]
    assert "pkg/einsum.py" not in shown  # prose in a docstring is no binding


def test_an_op_is_found_by_the_spellings_its_spec_row_gives_it(tmp_path):
    """`logaddexp`'s functor is `LogAddExp`, which no rule derives from the name: its spec row
    says so, and the functor header's struct (where logaddexp2's goes) reaches the prompt."""
    ops = ["abs", "exp", "log", "neg", "sqrt", "atan2", "hypot", "logaddexp"]
    functors = {op: "".join(p.capitalize() for p in op.split("_")) for op in ops}
    functors["logaddexp"] = "LogAddExp"
    spec = "".join(
        f"- op: {op}\n  func: {op}(Tensor self, Tensor other) -> Tensor\n  functor: {f}\n\n"
        for op, f in functors.items()
    )
    header = "".join(
        f"template <typename T> struct {f} {{\n  T operator()(T a, T b) const {{ return a; }}\n}};\n"
        for f in functors.values()
    )
    for rel, text in {"pkg/spec/ops.yaml": spec, "pkg/csrc/functors.h": header}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    goal = make_goal("ember is missing `ember.logaddexp2(a, b)`. It belongs with `logaddexp`.")
    builder = ContextBuilder(tmp_path, goal)
    assert builder.aliases == {"logaddexp": ["LogAddExp"]}  # `Atan2`, `Abs`: spellings() has them
    assert "pkg/csrc/functors.h" in builder.family_files()
    shown = shown_lines(builder.section_family(4000).body, tmp_path)["pkg/csrc/functors.h"]
    struct = header.splitlines().index("template <typename T> struct LogAddExp {") + 1
    assert {struct, struct + 1, struct + 2} <= shown  # its closing `};` anchors logaddexp2's
