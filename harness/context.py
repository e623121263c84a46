"""Context packing: what the goal needs, most relevant first, within a token budget.

Sections, in this order, each taking what it needs from what is left of `context_tokens`:
  1. files the goal names (`edit_targets`, `context_files`, paths in the intent), whole
  2. the op-spec rows of the op family the intent names
  3. the family's Python side: the closest functions' and module classes' definitions, import
     lists and `__all__` lines (context_python.py)
  4. the family's files, as excerpts around its ops, closest op first
  5. files defining symbols the intent mentions
  6. a repository map ranked by relevance
Nothing here knows today's file names: op-spec files are found by content (OP_ROW_FORMATS),
the family by the op names the goal writes as code, its files by which of them define or
mention those ops.
"""

from __future__ import annotations

import math
import re
import string
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .config import AgentConfig, Goal
from .context_python import (
    PyModule,
    family_regions,
    find_py_family,
    homes,
    module_rank,
    parse_module,
    reexport_regions,
)
from .edits import matches_any
from .errors import ConfigError
from .gitsafe import git_command, git_env
from .providers import estimate_tokens

PY_SYMBOL = re.compile(r"^(?:def|class|async def) +([A-Za-z_]\w*)", re.MULTILINE)
CPP_SYMBOL = re.compile(
    r"^(?:template *<[^>]*> *)?(?:class|struct|enum class|enum) +([A-Za-z_]\w*)[^;]*$"
    r"|^[A-Za-z_][\w:<>,\s\*&]*?[\s\*&]([A-Za-z_][\w:]*)\s*\([^;]*\)\s*(?:const)?\s*\{?\s*$",
    re.MULTILINE,
)
CPP_KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "catch", "defined"}
SOURCE_SUFFIXES = {".py", ".h", ".hpp", ".cpp", ".cc", ".cu", ".cuh"}
MAX_FILE_BYTES = 400_000

# How a file that lists every op writes one row, per format; a file with at least
# MIN_SPEC_ROWS such rows is an op spec. X-macro tables and YAML spec files today.
OP_ROW_FORMATS: list[tuple[tuple[str, ...], re.Pattern]] = [
    ((".h", ".hpp", ".def", ".inc"), re.compile(r"^\s*OP\(\s*(?P<name>[a-z_]\w*)\s*,")),
    (
        (".yaml", ".yml"),
        re.compile(
            r"^\s*(?:-\s+)?(?:name|op|func|signature|schema)\s*:\s*['\"]?(?P<name>[a-z_]\w*)\b"
        ),
    ),
]
MIN_SPEC_ROWS = 8
# A comment line with a run of dashes starts a section (a family) of the op spec.
SECTION_HEADER = re.compile(r"^\s*(?:/\*+|//+|#+)\s*-{3,}\s*(?P<title>.*?)[\s\-*/\\]*$")

# Words too common to identify anything in an intent.
STOP_WORDS = {
    "a",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "by",
    "do",
    "does",
    "for",
    "from",
    "has",
    "have",
    "in",
    "into",
    "is",
    "it",
    "its",
    "make",
    "must",
    "no",
    "not",
    "of",
    "on",
    "or",
    "so",
    "that",
    "the",
    "their",
    "them",
    "then",
    "these",
    "this",
    "to",
    "use",
    "using",
    "with",
    "without",
    "x",
    "y",
    "z",
    "none",
    "true",
    "false",
    "null",
    "self",
    "tensor",
    "tensors",
    "ember",
    "torch",
    "nn",
    "functional",
    "python",
    "c",
    "cpp",
    "cuda",
    "cpu",
    "op",
    "ops",
    "new",
    "file",
    "files",
    "function",
    "module",
    "code",
    "test",
    "tests",
    "should",
    "also",
    "like",
    "same",
    "see",
    "each",
    "every",
    "both",
    "only",
    "than",
    "via",
    "when",
    "where",
    "which",
    "while",
    "shape",
    "shapes",
    "dtype",
    "dtypes",
    "float32",
    "float64",
    "forward",
    "backward",
}
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DOTTED = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
PATH_IN_TEXT = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)+[\w.-]+\.[A-Za-z]\w*)")


def tracked_files(worktree: Path, under: str = ".") -> list[str]:
    out = subprocess.run(  # hardened git: nothing the worktree holds runs (gitsafe.py)
        [*git_command(worktree), "ls-files", "-z", "--", under],
        cwd=worktree,
        capture_output=True,
        text=True,
        env=git_env(),
    )
    return sorted(p for p in out.stdout.split("\0") if p)


def symbols_of(path: Path, text: str | None = None) -> list[str]:
    if text is None:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return []
    if path.suffix == ".py":
        return PY_SYMBOL.findall(text)
    if path.suffix in SOURCE_SUFFIXES:
        names = []
        for cls, fn in CPP_SYMBOL.findall(text):
            name = cls or fn
            if name and name.split("::")[-1] not in CPP_KEYWORDS and name not in names:
                names.append(name)
        return names
    return []


# ---------------------------------------------------------------- what the goal talks about


@dataclass
class GoalTerms:
    strong: list[str]  # names written precisely: `code`, dotted names, calls, numerics callables
    words: set[str]  # the intent's other words (weak evidence)
    paths: list[str]  # repository paths written in the intent
    callables: list[str]  # last components of ember./torch. names and numerics callables
    # names written as code (a `name` span, a dotted ember./torch. name): the ones the goal is
    # about, unlike a call in prose (`log(sum(exp(x)))` explains a formula)
    code: list[str] = field(default_factory=list)


STRING_LITERAL = re.compile(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'")


def code_span_names(span: str) -> list[tuple[str, bool]]:
    """(name, whole span) for the identifiers of a code span that name something: not string
    contents (`reduction='mean'`), keyword arguments (`dim=None`), or the bare parameters of a
    call (`f(x, dim)`)."""
    code = STRING_LITERAL.sub(lambda m: " " * len(m[0]), span)
    names = []
    for match in IDENT.finditer(code):
        before, after = code[: match.start()], code[match.end() :]
        if re.match(r"\s*=(?!=)", after):
            continue
        inside = before.count("(") > before.count(")")
        if inside and not re.match(r"\s*[(.\[]", after) and not before.rstrip().endswith("."):
            continue  # a parameter (or argument variable) of the call
        names.append((match[0], span.strip() == match[0]))
    return names


def goal_terms(goal: Goal) -> GoalTerms:
    text = goal.intent
    strong: list[str] = []
    callables: list[str] = []
    code: list[str] = []

    def add(name: str, into: list[str], as_code: bool = False):
        """as_code: written as code (`any`), so an English stop word still counts."""
        common = name.lower() in STOP_WORDS and not as_code
        if name and not common and len(name) > 1 and name not in into:
            into.append(name)

    sources = [text] + [f"{c.ember} {c.torch}" for c in goal.acceptance.numerics]
    for chunk in sources:
        for dotted in DOTTED.findall(chunk):
            parts = dotted.split(".")
            if parts[-1] in ("py", "h", "cpp", "cu", "md", "yaml"):
                continue  # a file name, handled as a path
            add(parts[-1], strong)
            if parts[0] in ("ember", "torch", "F", "nn"):
                add(parts[-1], callables)
                add(parts[-1], code)
        for call in re.findall(r"\b([A-Za-z_]\w*)\(", chunk):
            add(call, strong)
    for quoted in re.findall(r"`([^`]+)`", text):
        for name, whole in code_span_names(quoted):
            add(name, strong, as_code=whole)
            add(name, code, as_code=whole)
    paths = [p.strip(".,;:") for p in PATH_IN_TEXT.findall(text)]
    words = {w.lower() for w in IDENT.findall(text) if w.lower() not in STOP_WORDS and len(w) > 2}
    return GoalTerms(strong, words, paths, callables, code)


# ---------------------------------------------------------------- the repository, read once


class RepoIndex:
    """Tracked files of a worktree the model may see, with their text read on demand."""

    def __init__(self, worktree: Path, goal: Goal):
        self.worktree = Path(worktree)
        self.goal = goal
        named = set(goal.context_files) | set(goal.edit_targets)
        self.files = [
            p
            for p in tracked_files(self.worktree)
            if (not matches_any(p, goal.all_protected) or p in named) and self._is_text(p)
        ]
        self._text: dict[str, str] = {}

    def _is_text(self, rel: str) -> bool:
        path = self.worktree / rel
        try:
            return path.is_file() and path.stat().st_size <= MAX_FILE_BYTES
        except OSError:
            return False

    def text(self, rel: str) -> str:
        if rel not in self._text:
            try:
                data = (self.worktree / rel).read_bytes()
            except OSError:
                data = b""
            self._text[rel] = "" if b"\0" in data[:4096] else data.decode(errors="replace")
        return self._text[rel]

    def lines(self, rel: str) -> list[str]:
        return self.text(rel).splitlines()

    def in_scope(self, rel: str) -> bool:
        return matches_any(rel, self.goal.scope)

    @cached_property
    def symbols(self) -> dict[str, list[str]]:
        return {rel: symbols_of(self.worktree / rel, self.text(rel)) for rel in self.files}

    def files_mentioning(self, word: str) -> list[str]:
        pattern = re.compile(rf"\b{re.escape(word)}\b")
        return [
            rel for rel in self.files if word in self.text(rel) and pattern.search(self.text(rel))
        ]


# ---------------------------------------------------------------- op specs and families


@dataclass
class OpRow:
    name: str
    path: str
    start: int  # 0-based line range [start, end)
    end: int
    section: str
    section_line: int  # where the section's header is (-1: none)


@dataclass
class OpSpec:
    path: str
    rows: list[OpRow]
    header_end: int  # lines [0, header_end) explain the spec (its leading comment)

    def names(self) -> set[str]:
        return {r.name for r in self.rows}


def parse_op_spec(rel: str, lines: list[str], min_rows: int = MIN_SPEC_ROWS) -> OpSpec | None:
    pattern = next((p for suffixes, p in OP_ROW_FORMATS if rel.endswith(suffixes)), None)
    if pattern is None:
        return None
    rows: list[OpRow] = []
    section, section_line, first = "", -1, None
    for number, line in enumerate(lines):
        header = SECTION_HEADER.match(line)
        match = pattern.match(line)
        if header and not match:
            section, section_line = header["title"].strip() or section, number
            if rows:
                rows[-1].end = min(rows[-1].end, number)
            first = number if first is None else first
            continue
        if not match:
            continue
        first = number if first is None else first
        if rows and rows[-1].name == match["name"] and rows[-1].end == len(lines):
            continue  # the same entry again (YAML: name and signature lines)
        if rows and rows[-1].end == len(lines):
            rows[-1].end = number
        rows.append(OpRow(match["name"], rel, number, len(lines), section, section_line))
    if rows and rows[-1].end == len(lines):  # the last row: up to the next blank line
        blank = next(
            (n for n in range(rows[-1].start + 1, len(lines)) if not lines[n].strip()), None
        )
        rows[-1].end = blank if blank is not None else len(lines)
    for row in rows:
        while row.end > row.start + 1 and not lines[row.end - 1].strip():
            row.end -= 1
        if row.end - row.start > 40:  # a runaway "row" is a parsing accident: keep its first line
            row.end = row.start + 1
    if len({r.name for r in rows}) < max(1, min_rows):
        return None
    return OpSpec(rel, rows, first or 0)


def find_specs(files: list[str], lines_of) -> list[OpSpec]:
    """Op-spec files by content: at least MIN_SPEC_ROWS rows, or fewer next to such a file (a
    spec split into one file per op family has small files too)."""
    suffixes = tuple(s for sfx, _ in OP_ROW_FORMATS for s in sfx)
    parsed = [
        spec
        for rel in files
        if rel.endswith(suffixes) and (spec := parse_op_spec(rel, lines_of(rel), 1)) is not None
    ]
    dirs = {
        spec.path.rsplit("/", 1)[0]
        for spec in parsed
        if len({r.name for r in spec.rows}) >= MIN_SPEC_ROWS
    }
    return [
        spec
        for spec in parsed
        if len({r.name for r in spec.rows}) >= MIN_SPEC_ROWS or spec.path.rsplit("/", 1)[0] in dirs
    ]


def spellings(op: str) -> list[str]:
    """An op's name as code writes it: `leaky_relu`, and its functor/struct `LeakyRelu`."""
    camel = "".join(part[:1].upper() + part[1:] for part in op.split("_") if part)
    return [op, camel] if camel != op else [op]


def spec_aliases(specs: list[OpSpec], lines_of) -> dict[str, list[str]]:
    """Op -> the other spellings its spec rows give it: an identifier equal to the op's name up
    to case and underscores (`functor: LogAddExp` for logaddexp), which `spellings` cannot guess."""
    aliases: dict[str, list[str]] = {}
    for spec in specs:
        lines = lines_of(spec.path)
        for row in spec.rows:
            key = row.name.replace("_", "").lower()
            for word in IDENT.findall("\n".join(lines[row.start : row.end])):
                if word.replace("_", "").lower() == key and word not in spellings(row.name):
                    aliases.setdefault(row.name, [])
                    if word not in aliases[row.name]:
                        aliases[row.name].append(word)
    return aliases


def common_run(a: str, b: str) -> int:
    """Length of the longest common substring."""
    best = 0
    for i in range(len(a)):
        for j in range(len(b)):
            k = 0
            while i + k < len(a) and j + k < len(b) and a[i + k] == b[j + k]:
                k += 1
            best = max(best, k)
    return best


def similarity(new: str, existing: str) -> float:
    run = common_run(new, existing)
    return run / len(new) if run >= 3 and new else 0.0


@dataclass
class Family:
    named: list[str]  # ops of the spec the goal names
    new: list[str]  # ops the goal names that the spec does not have yet
    siblings: list[str]  # existing ops whose names resemble the new ones
    sections: list[str]  # spec sections holding them
    # existing ops a comment names together with a new one (`// masked_select / nonzero`):
    # where the new op's code went, the least sure evidence
    companions: list[str] = field(default_factory=list)

    @property
    def exemplars(self) -> list[str]:
        return self.named + [s for s in self.siblings if s not in self.named]


def schema_arity(row_text: str, name: str) -> tuple[int, int] | None:
    """(tensor parameters, required other parameters) of a torch-style schema in a row."""
    match = re.search(rf"\b{re.escape(name)}_?(?:\.\w+)?\s*\(([^)]*)\)", row_text)
    if match is None:
        return None
    tensors = required = 0
    for param in match[1].split(","):
        param = param.strip()
        if not param or param == "*":
            continue
        if param.startswith(("Tensor", "Operand")):
            tensors += 1
        elif "=" not in param:
            required += 1
    return tensors, required


def find_family(specs: list[OpSpec], terms: GoalTerms, arity: int | None, lines_of) -> Family:
    """The spec's ops the goal names, and for a new op its closest existing ops: similar
    names, preferring those whose schema takes the same number of tensors and nothing else."""
    rows = [r for spec in specs for r in spec.rows]
    known = {r.name for r in rows}
    candidates = [t for t in terms.strong if re.fullmatch(r"[a-z_][a-z0-9_]*", t)]
    named = [t for t in candidates if t in known]
    if any(t in terms.code for t in named):  # ops written in prose calls only explain a formula
        named = [t for t in named if t in terms.code]
    new = [t for t in terms.callables if t not in known and re.fullmatch(r"[a-z_][a-z0-9_]*", t)]
    scored: dict[str, float] = {}
    for op in new:
        for row in rows:
            score = similarity(op, row.name)
            if score < 0.4 or row.name.endswith("_backward"):
                continue
            shape = schema_arity("\n".join(lines_of(row.path)[row.start : row.end]), row.name)
            if arity is not None and shape == (arity, 0):
                score += 0.3
            scored[row.name] = max(scored.get(row.name, 0.0), score)
    best = max(scored.values(), default=0.0)
    # when the goal names existing ops, only a close name adds a sibling
    floor = max(best - 0.2, 0.75 if named else 0.0)
    siblings = sorted(
        (n for n in scored if scored[n] >= floor),
        key=lambda n: (-scored[n], abs(len(n) - len(new[0]))),
    )[:4]
    by_name = {r.name: r for r in rows}
    sections = []
    for name in named + siblings:
        if by_name[name].section not in sections:
            sections.append(by_name[name].section)
    if not sections and rows:  # no op matched: the section whose title shares the intent's words
        titles = {r.section for r in rows if r.section}
        overlap = {
            t: len({w[:6] for w in IDENT.findall(t.lower())} & {w[:6] for w in terms.words})
            for t in titles
        }
        top = max(overlap, key=lambda t: overlap[t], default=None)
        if top is not None and overlap[top] > 0:
            sections.append(top)
    return Family(named, new, siblings, sections)


# ---------------------------------------------------------------- excerpts


def _code(line: str) -> str:
    """A line without string literals and comments, for bracket counting."""
    return re.sub(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|//.*|#.*", "", line)


def _balance(line: str) -> int:
    code = _code(line)
    return sum(code.count(c) for c in "({[") - sum(code.count(c) for c in ")}]")


def block_end(lines: list[str], start: int, cap: int = 40) -> int:
    """End (exclusive) of the statement or definition at `start`: brackets for C-like code,
    indentation for a Python block."""
    if lines[start].split("#")[0].rstrip().endswith(":"):  # a Python block: by indentation
        indent = len(lines[start]) - len(lines[start].lstrip())
        n = start + 1
        while n < min(len(lines), start + cap):
            line = lines[n]
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            n += 1
        return n
    depth = 0
    for n in range(start, min(len(lines), start + cap)):
        depth += _balance(lines[n])
        if depth <= 0:
            return n + 1
    return min(len(lines), start + 1)


def enclosing_block(lines: list[str], at: int, cap: int = 40) -> tuple[int, int] | None:
    """The innermost bracketed block around line `at` (a short function, switch or table),
    when it spans at most `cap` lines."""
    depth, start = 0, None
    for n in range(at - 1, max(-1, at - cap), -1):
        depth -= _balance(lines[n])
        if depth < 0:
            start = n
            break
    if start is None:
        return None
    depth = 0
    for n in range(start, min(len(lines), start + cap)):
        depth += _balance(lines[n])
        if depth <= 0:
            return (start, n + 1) if n >= at else None
    return None


def span_around(lines: list[str], hit: int, before: int = 2, after: int = 2) -> tuple[int, int]:
    """[start, end) window around a hit line: its definition whole, the short block around it
    (a table, a switch) whole too, and never starting on a blank line (the line before a
    definition anchors what is inserted in front of it)."""
    start = max(0, hit - before)
    end = min(len(lines), max(block_end(lines, hit), hit + 1 + after))
    block = enclosing_block(lines, hit)
    if block:
        start, end = min(start, block[0]), max(end, block[1])
    while start > 0 and not lines[start].strip():
        start -= 1
    return start, end


def merge_spans(spans: list, gap: int = 1) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1] + gap:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def ranked_regions(ranked: list[tuple[int, int, int]], lines: list[str], budget: int) -> list:
    """The (rank, start, end) spans that fit `budget`, best rank first, merged in file order."""
    chosen: list[tuple[int, int]] = []
    used = 0
    for _, start, end in sorted(ranked):
        while end > start + 1 and not lines[end - 1].strip():
            end -= 1  # trailing blank lines say nothing
        cost = estimate_tokens("\n".join(lines[start:end])) + 8
        if used + cost > budget:
            continue
        chosen.append((start, end))
        used += cost
    return merge_spans(chosen)


@dataclass
class Shown:
    path: str
    how: str  # whole | excerpt | truncated | omitted | missing
    tokens: int


@dataclass
class Section:
    key: str  # named | op_spec | family | symbols | repo_map
    title: str
    body: str = ""
    shown: list[Shown] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.body)


def render_whole(rel: str, text: str) -> str:
    return f"--- {rel} ---\n{text.rstrip()}\n"


def render_regions(rel: str, lines: list[str], regions: list, budget: int) -> tuple[str, int]:
    """Excerpt of `rel` (verbatim lines, so SEARCH blocks can quote them) within `budget`."""
    head = f"--- {rel} (excerpt: {{n}} region(s) of {len(lines)} lines) ---\n"
    parts: list[str] = []
    used = estimate_tokens(head)
    for start, end in regions:
        chunk = f"@@ lines {start + 1}-{end} @@\n" + "\n".join(lines[start:end]) + "\n"
        cost = estimate_tokens(chunk)
        if used + cost > budget:
            continue
        parts.append(chunk)
        used += cost
    if not parts:
        return "", 0
    return head.format(n=len(parts)) + "".join(parts), len(parts)


# ---------------------------------------------------------------- the context


class ContextBuilder:
    """Ranks what the model should see for a goal and packs it into a token budget."""

    def __init__(self, worktree: Path, goal: Goal):
        self.index = RepoIndex(worktree, goal)
        self.goal = goal
        self.terms = goal_terms(goal)
        self.specs = find_specs(self.index.files, self.index.lines)
        arities = {c.num_inputs for c in goal.acceptance.numerics}
        arity = arities.pop() if len(arities) == 1 else None
        self.family = find_family(self.specs, self.terms, arity, self.index.lines)
        self.family.companions = self._companions()
        self.aliases = spec_aliases(self.specs, self.index.lines)
        self.file_scores = self._family_file_scores()
        self.shown: set[str] = set()

    # -- ranking
    def spellings(self, op: str) -> list[str]:
        return spellings(op) + self.aliases.get(op, [])

    def _family_file_scores(self) -> dict[str, float]:
        """Files mentioning the family's ops, weighted by how rare each op name is."""
        scores: dict[str, float] = {}
        total = max(1, len(self.index.files))
        spec_paths = {s.path for s in self.specs}
        # siblings count by rank: the closest name carries the family, a farther one (`sign` for
        # softsign) is often an ordinary word in unrelated files
        rank = {n: i for i, n in enumerate(self.family.siblings)}
        for name in self.family.exemplars + self.family.new:
            files = [
                f
                for spelling in self.spellings(name)
                for f in self.index.files_mentioning(spelling)
                if f not in spec_paths
            ]
            files = list(dict.fromkeys(files))
            if not files:
                continue
            weight = math.log(1 + total / len(files)) * (2.0 if name in self.family.new else 1.0)
            if name in rank and name not in self.family.named:
                weight /= 1 + rank[name]
            defining = set(self.spellings(name))
            for rel in files:  # a file defining the op (its kernel, its frontend) over a caller
                defines = any(s.split("::")[-1] in defining for s in self.index.symbols[rel])
                scores[rel] = scores.get(rel, 0.0) + weight * (2.0 if defines else 1.0)
        for rel in scores:
            scores[rel] *= self.placement(rel)
        return scores

    def _companions(self, most: int = 3, traces: int = 4) -> list[str]:
        """Spec ops that in-scope comments name twice or more on the same line as a new op.
        A missing op leaves a few such traces; a name in more files is no missing op (a dtype)."""
        known = {r.name for spec in self.specs for r in spec.rows}
        taken = set(self.family.exemplars) | set(self.family.new)
        counts: dict[str, int] = {}
        for new in self.family.new:
            pattern = re.compile(rf"\b{re.escape(new)}\b")
            files = [rel for rel in self.index.files_mentioning(new) if self.index.in_scope(rel)]
            if len(files) > traces:
                continue
            for rel in files:
                marker = "#" if rel.endswith((".py", ".yaml", ".yml")) else "//"
                for line in self.index.lines(rel):
                    comment = line[line.find(marker) :] if marker in line else ""
                    if pattern.search(comment):
                        for word in IDENT.findall(comment):
                            if word in known and word not in taken:
                                counts[word] = counts.get(word, 0) + 1
        return sorted((w for w in counts if counts[w] >= 2), key=lambda w: (-counts[w], w))[:most]

    def placement(self, rel: str) -> float:
        """Weight of a file by where it lives: in scope, next to the scope, or documentation."""
        if self.index.in_scope(rel):
            return 2.0
        parts = rel.split("/")[:-1]
        for glob in self.goal.scope:
            fixed = re.split(r"[*?\[]", glob)[0].rstrip("/").split("/")
            common = next(
                (i for i, (a, b) in enumerate(zip(parts, fixed, strict=False)) if a != b), None
            )
            common = min(len(parts), len(fixed)) if common is None else common
            if fixed and common / len(fixed) >= 0.75:
                return 1.5
        return 1.0 if Path(rel).suffix in SOURCE_SUFFIXES else 0.5

    def family_files(self) -> list[str]:
        if not self.file_scores:
            return []
        top = max(self.file_scores.values())
        ranked = sorted(self.file_scores, key=lambda r: (-self.file_scores[r], r))
        # files already shown whole (named by the goal) do not use up the family's places
        fresh = [r for r in ranked if r not in self.shown]
        return [r for r in fresh if self.file_scores[r] >= 0.25 * top][:10]

    def symbol_files(self) -> dict[str, list[str]]:
        """Files defining (or named like) a symbol the intent mentions -> those symbols."""
        wanted = set(self.terms.strong) - set(self.family.exemplars)
        found: dict[str, list[str]] = {}
        for rel, symbols in self.index.symbols.items():
            names = {s.split("::")[-1] for s in symbols} | {Path(rel).stem}
            hit = sorted(wanted & names)
            if hit:
                found[rel] = hit
        return found

    def relevance(self, rel: str, symbol_hits: dict[str, list[str]]) -> float:
        score = self.file_scores.get(rel, 0.0) + 2.0 * len(symbol_hits.get(rel, []))
        parts = {p.lower() for p in re.split(r"[/._-]", rel) if p}
        score += 0.5 * len(parts & (self.terms.words | {t.lower() for t in self.terms.strong}))
        if self.index.in_scope(rel):
            score += 0.5
        return score

    # -- sections
    def named_files(self) -> list[str]:
        ordered: list[str] = []
        intent_paths = [  # paths the intent writes: existing files, or ones it asks to create
            p
            for p in self.terms.paths
            if (self.index.worktree / p).is_file() or self.index.in_scope(p)
        ]
        for rel in self.goal.edit_targets + self.goal.context_files + intent_paths:
            if rel not in ordered:
                ordered.append(rel)
        return ordered

    def section_named(self, budget: int) -> Section:
        section = Section("named", "Files the goal names (whole)")
        chunks = []
        for rel in self.named_files():
            path = self.index.worktree / rel
            if not path.is_file():
                note = f"--- {rel} --- (does not exist yet; create it)\n"
                chunks.append(note)
                section.shown.append(Shown(rel, "missing", estimate_tokens(note)))
                continue
            text = self.index.text(rel)
            chunk = render_whole(rel, text)
            how = "whole"
            left = budget - sum(s.tokens for s in section.shown)
            if estimate_tokens(chunk) > left:
                keep = max(0, left * 4 - 200)
                chunk = (
                    render_whole(rel, text[:keep])
                    + f"... [{rel} cut at {keep} of {len(text)} characters: context budget]\n"
                )
                how = "truncated"
            chunks.append(chunk)
            section.shown.append(Shown(rel, how, estimate_tokens(chunk)))
            self.shown.add(rel)
        section.body = "\n".join(chunks)
        return section

    def section_op_spec(self, budget: int) -> Section:
        section = Section("op_spec", "Op spec rows of the op family")
        family = self.family
        chunks = []
        # With one spec file per op family, only the files holding the family's ops (their
        # sections' titles may recur in other files)
        home = {
            (r.path, r.section)
            for spec in self.specs
            for r in spec.rows
            if r.name in family.exemplars
        }
        for spec in self.specs:
            if spec.path in self.shown:
                continue  # already shown whole
            lines = self.index.lines(spec.path)
            rows = [
                r
                for r in spec.rows
                if r.name in family.exemplars
                or ((r.path, r.section) in home if home else r.section in family.sections)
            ]
            if not rows:
                continue
            regions = [(0, min(spec.header_end, 30))] if spec.header_end else []
            regions += [(r.start, r.end) for r in rows]
            firsts: dict[int, int] = {}  # each section's header and legend, up to its first row
            for r in rows:
                if r.section_line >= 0:
                    firsts[r.section_line] = min(firsts.get(r.section_line, r.start), r.start)
            regions += list(firsts.items())
            body, count = render_regions(spec.path, lines, _merge(regions, lines), budget)
            if count:
                chunks.append(body)
                section.shown.append(Shown(spec.path, "excerpt", estimate_tokens(body)))
                budget -= estimate_tokens(body)
        if chunks:
            what = []
            if family.new:
                what.append(f"new op(s) {', '.join(family.new)}")
            if family.exemplars:
                what.append(f"closest existing: {', '.join(family.exemplars)}")
            section.title += f" ({'; '.join(what)})" if what else ""
        section.body = "\n".join(chunks)
        return section

    def _excerpt_section(
        self, key: str, title: str, files: list[str], words: dict[str, list[str]], budget: int
    ) -> Section:
        """Every file (in rank order) as the regions around the lines mentioning `words`, then
        the most relevant ones upgraded to whole files while the budget lasts."""
        plans = []  # [rel, excerpt body, whole body]
        left = budget
        for rel in files:
            if rel in self.shown:
                continue
            lines = self.index.lines(rel)
            whole = render_whole(rel, self.index.text(rel))
            patterns = [re.compile(rf"\b{re.escape(w)}\b") for w in words.get(rel, [])]
            spans = [  # a line naming an earlier (closer) word first
                (rank, *span_around(lines, i, 3, 3))
                for i, line in enumerate(lines)
                for rank in [next((r for r, p in enumerate(patterns) if p.search(line)), None)]
                if rank is not None
            ]
            excerpt = ""
            if spans:
                regions = ranked_regions(spans, lines, left - 30)
                excerpt, _ = render_regions(rel, lines, regions, left)
            first = (
                excerpt if excerpt and estimate_tokens(excerpt) < estimate_tokens(whole) else whole
            )
            if estimate_tokens(first) > left:
                continue
            plans.append([rel, first, whole])
            left -= estimate_tokens(first)
        for plan in plans:  # upgrade in rank order; stop at the first that does not fit
            if not self.index.in_scope(plan[0]):
                continue  # a file the goal may not edit is read, not quoted: its excerpt will do
            extra = estimate_tokens(plan[2]) - estimate_tokens(plan[1])
            if extra > left:
                break
            plan[1] = plan[2]
            left -= max(0, extra)
        section = Section(key, title, "\n".join(p[1] for p in plans))
        for rel, body, whole in plans:
            section.shown.append(
                Shown(rel, "whole" if body is whole else "excerpt", estimate_tokens(body))
            )
            self.shown.add(rel)
        return section

    @cached_property
    def py_modules(self) -> list[PyModule]:
        """The in-scope Python files that parse."""
        return [
            module
            for rel in self.index.files
            if rel.endswith(".py") and self.index.in_scope(rel)
            if (module := parse_module(rel, self.index.text(rel))) is not None
        ]

    def section_python(self, budget: int, max_files: int = 6) -> Section:
        """The in-scope Python modules defining, importing or exporting the family's closest
        functions and module classes: those statements and definitions, then the lines naming
        them; then the export lists a new name joins (context_python.py)."""
        section = Section("python", "Python definitions and exports of the family")
        modules = [m for m in self.py_modules if m.path not in self.shown]
        near = [s for n in self.terms.code + self.family.exemplars for s in self.spellings(n)]
        family = find_py_family(modules, self.terms.callables + self.family.new, near)
        home = homes(modules, family)
        chunks = []
        words = family.new + family.names
        patterns = [re.compile(rf"\b{re.escape(w)}\b") for w in words]
        regions = {m.path: family_regions(m, self.index.lines(m.path), family) for m in modules}
        ranked = sorted(
            (m for m in modules if family.siblings and regions[m.path]),
            key=lambda m: module_rank(m, family),
        )[:max_files]
        for module in modules:  # and the modules whose export lists a new name joins
            more = reexport_regions(module, self.index.lines(module.path), family, home)
            regions[module.path] += more
            if more and module not in ranked:
                ranked.append(module)
        for module in ranked:
            lines = self.index.lines(module.path)
            spans = regions[module.path] + [  # other lines naming the family, after the above
                (len(words) + rank, *span_around(lines, i, 1, 1))
                for i, line in enumerate(lines)
                for rank in [next((r for r, p in enumerate(patterns) if p.search(line)), None)]
                if rank is not None
            ]
            body, count = render_regions(
                module.path, lines, ranked_regions(spans, lines, budget - 30), budget
            )
            if not count:
                continue
            chunks.append(body)
            section.shown.append(Shown(module.path, "excerpt", estimate_tokens(body)))
            self.shown.add(module.path)
            budget -= estimate_tokens(body)
        if family.names:
            section.title += f" (closest: {', '.join(family.names)})"
        section.body = "\n".join(chunks)
        return section

    def section_family(self, budget: int) -> Section:
        family = self.family
        names = [
            s for n in family.new + family.exemplars + family.companions for s in self.spellings(n)
        ]
        files = self.family_files()
        return self._excerpt_section(
            "family",
            "Files of the op family (where the closest ops live)",
            files,
            {rel: names for rel in files},
            budget,
        )

    def section_symbols(self, budget: int) -> Section:
        hits = self.symbol_files()
        ranked = sorted(hits, key=lambda r: (-self.relevance(r, hits), r))[:8]
        return self._excerpt_section(
            "symbols", "Files defining symbols the goal mentions", ranked, hits, budget
        )

    def section_repo_map(self, budget: int, max_symbols: int = 12) -> Section:
        hits = self.symbol_files()
        ranked = sorted(self.index.files, key=lambda r: (-self.relevance(r, hits), r))
        lines, used = [], 0
        for n, rel in enumerate(ranked):
            syms = self.index.symbols.get(rel, [])
            shown = ", ".join(syms[:max_symbols]) + (
                f", ... (+{len(syms) - max_symbols})" if len(syms) > max_symbols else ""
            )
            line = f"{rel}: {shown}" if shown else rel
            if used + estimate_tokens(line) + 20 > budget:
                lines.append(f"... {len(ranked) - n} more files, less relevant to this goal")
                break
            lines.append(line)
            used += estimate_tokens(line) + 1
        return Section(
            "repo_map", "Repository map (most relevant first)", "\n".join(lines) or "(no files)"
        )

    def priority(self):
        return [
            self.section_named,
            self.section_op_spec,
            self.section_python,
            self.section_family,
            self.section_symbols,
        ]

    def build(self, budget: int) -> list[Section]:
        """Sections in priority order; the repo map gets at least a tenth of the budget."""
        reserve = min(1500, max(200, budget // 10))
        left = max(0, budget - reserve)
        sections = []
        for make in self.priority():
            section = make(left)
            left -= section.tokens
            sections.append(section)
        sections.append(self.section_repo_map(left + reserve))
        return sections


def _merge(regions: list, lines: list[str]) -> list:
    merged: list[list[int]] = []
    for start, end in sorted(regions):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [tuple(m) for m in merged]


# ---------------------------------------------------------------- templates


class PromptTemplate:
    """A prompt file whose $placeholders must all be known; `$$` is a literal dollar."""

    def __init__(self, repo: Path, rel: str):
        path = Path(rel) if Path(rel).is_absolute() else Path(repo) / rel
        try:
            self.text = path.read_text()
        except OSError:
            raise ConfigError(f"prompt template {path} cannot be read") from None
        self.path = path
        self.names: dict[str, int] = {}
        for match in string.Template.pattern.finditer(self.text):
            line = self.text.count("\n", 0, match.start()) + 1
            if match.group("invalid") is not None:
                raise ConfigError(f"{path}:{line}: a '$' that starts no placeholder (write $$)")
            name = match.group("named") or match.group("braced")
            if name:
                self.names.setdefault(name, line)

    def render(self, values: dict[str, str]) -> str:
        unknown = [n for n in self.names if n not in values]
        if unknown:
            raise ConfigError(
                [
                    f"{self.path}:{self.names[n]}: unknown placeholder ${n} "
                    f"(known: {', '.join(sorted(values))})"
                    for n in unknown
                ]
            )
        return string.Template(self.text).substitute(values)


def load_templates(repo: Path, agent: AgentConfig, required: set[str]) -> tuple:
    """The agent's system and attempt templates; a required placeholder in neither is an error."""
    system = PromptTemplate(repo, agent.prompts.system)
    attempt = PromptTemplate(repo, agent.prompts.attempt)
    missing = sorted(required - set(system.names) - set(attempt.names))
    if missing:
        raise ConfigError(
            f"prompt templates {agent.prompts.system} and {agent.prompts.attempt} of agent "
            f"{agent.name!r} lack required placeholder(s): {', '.join('$' + m for m in missing)}"
        )
    return system, attempt


# ---------------------------------------------------------------- the prompt


def fit(text: str, budget_tokens: int, label: str) -> str:
    if estimate_tokens(text) <= budget_tokens:
        return text
    keep = max(0, budget_tokens * 4 - 80)
    return text[:keep] + f"\n... [{label} truncated to fit the context budget]"


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


def feedback_text(history: list[str], budget_tokens: int) -> str:
    if not history:
        return "(first attempt: no feedback yet)"
    parts = [f"### Attempt {n} feedback\n{text}" for n, text in enumerate(history, start=1)]
    return fit("\n\n".join(parts[-3:]), budget_tokens, "feedback")  # the newest matter most


# Placeholders every agent's templates must use somewhere, per mode.
REQUIRED = {
    "patch": {"intent", "acceptance", "scope", "feedback", "context", "edit_instructions"},
    "tools": {"intent", "acceptance", "scope", "feedback"},
}


@dataclass
class Prompt:
    system: str
    user: str
    sections: list[Section]
    sizes: dict


def build_prompt(
    repo: Path,
    worktree: Path,
    goal: Goal,
    agent: AgentConfig,
    attempt: int,
    feedback_history: list[str],
) -> Prompt:
    """The first message of an attempt: goal, feedback and ranked context within the budget."""
    system_t, attempt_t = load_templates(repo, agent, REQUIRED[agent.mode])
    budget = agent.context_tokens
    edit_help = PromptTemplate(repo, f"prompts/edit_{agent.edit_format}.md").render({})
    values = {
        "goal_id": goal.id,
        "title": goal.title,
        "intent": goal.intent.strip(),
        "scope": "\n".join(f"- {g}" for g in goal.scope),
        "protected": "\n".join(f"- {g}" for g in goal.all_protected),
        "acceptance": acceptance_summary(goal),
        "edit_instructions": edit_help.strip(),
        "feedback": feedback_text(feedback_history, budget // 4),
        "attempt": str(attempt),
        "max_attempts": str(goal.budget.attempts),
        "max_steps": str(agent.max_steps),
        "context": "",
        "repo_map": "",
        "repo_map_title": "Repository map (most relevant first)",
    }
    fixed = estimate_tokens(system_t.render(values) + attempt_t.render(values))
    builder = ContextBuilder(worktree, goal)
    room = max(500, budget - fixed)
    for _ in range(3):  # section titles and joins cost a little: over budget, pack with less room
        builder.shown = set()
        sections = builder.build(room)
        values["context"] = (
            "\n\n".join(
                f"## {s.title}\n{s.body}" for s in sections if s.key != "repo_map" and s.body
            )
            or "(nothing beyond the repository map matched this goal)"
        )
        values["repo_map"] = next(s.body for s in sections if s.key == "repo_map")
        system, user = system_t.render(values), attempt_t.render(values)
        over = estimate_tokens(system) + estimate_tokens(user) - budget
        if over <= 0 or room <= 500:
            break
        room = max(500, room - over - 16)
    sizes = {
        "system_tokens": estimate_tokens(system),
        "user_tokens": estimate_tokens(user),
        "feedback_tokens": estimate_tokens(values["feedback"]),
        "budget_tokens": budget,
        "sections": [
            {
                "section": s.key,
                "tokens": s.tokens,
                "files": [{"path": f.path, "how": f.how, "tokens": f.tokens} for f in s.shown],
            }
            for s in sections
        ],
    }
    return Prompt(system, user, sections, sizes)
