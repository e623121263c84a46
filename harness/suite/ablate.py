"""Remove one op completely from a snapshot of the repository.

For a spec op `x`: its entries in `runtime/spec/*.yaml` (the row, overloads and the in-place
`x_`), the files they name (frontend, CPU/CUDA kernels, hand-written backward rule: the
definitions named `x`/`x_`, plus helpers named after the op that nothing else uses), its functor
in `csrc/pointwise/functors.h`, Python wrappers named `x` (with their import-list and `__all__`
mentions) and its test units (rows of the op tables, tests mentioning it). For a Python-only piece
the same, starting from its `def`. The test units become the goal's hidden acceptance; a one-line
placeholder comment keeps the test file mentioning the op (the spec check requires it).

If anything left in the runtime still refers to the op, the op is not ablatable as is: the
result says where, and the generator skips it.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .catalog import AblationOp
from .source import (
    STRING_LITERAL,
    code_of,
    cpp_names_defined,
    entry_field,
    entry_names,
    find_cpp_defs,
    mentions,
    mentions_quoted,
    python_code_lines,
    python_units,
    remove_spans,
    spec_entries,
)

SPEC_DIR = "runtime/spec"
FUNCTORS = "runtime/csrc/pointwise/functors.h"
CSRC = "runtime/csrc"
PYTHON = "runtime/python/ember"
PLACEHOLDER = "# ({name}: rows hidden for this suite goal; the grader adds them back)"


@dataclass
class Ablation:
    op: AblationOp
    changed: dict[str, str] = field(default_factory=dict)  # path -> ablated text
    test_paths: list[str] = field(default_factory=list)  # changed files that are hidden tests
    selectors: list[str] = field(default_factory=list)  # pytest selectors of the hidden units
    wrappers: list[str] = field(default_factory=list)  # nn module classes removed with it
    neighbors: list[str] = field(default_factory=list)  # ops next to it in the spec / its module
    problem: str | None = None  # why this op cannot be ablated (then nothing else is valid)


class Snapshot:
    """Read-only files of one commit: `read(path)` and `paths(prefix)`."""

    def __init__(self, read: Callable[[str], str], paths: list[str]):
        self._read, self.all_paths = read, paths
        self._cache: dict[str, str] = {}

    def read(self, path: str) -> str:
        if path not in self._cache:
            self._cache[path] = self._read(path)
        return self._cache[path]

    def paths(self, prefix: str, suffixes: tuple[str, ...]) -> list[str]:
        return [p for p in self.all_paths if p.startswith(prefix) and p.endswith(suffixes)]


class Ablator:
    def __init__(self, snap: Snapshot, op: AblationOp):
        self.snap, self.op = snap, op
        self.result = Ablation(op)
        self.names = [op.name, op.name + "_"]
        self.removed_defs: set[str] = set()

    def text(self, path: str) -> str:
        return self.result.changed.get(path, self.snap.read(path))

    def set(self, path: str, text: str) -> None:
        if text != self.snap.read(path):
            self.result.changed[path] = text
        else:
            self.result.changed.pop(path, None)

    # ---------------------------------------------------------------- steps
    def run(self) -> Ablation:
        test_files = [f"runtime/{t}" for t in self.op.tests]
        entries = self.cut_spec()
        files: set[str] = set()
        for entry in entries:
            for key in ("frontend", "cpu", "cuda", "backward"):
                value = entry_field(entry, key)
                if value and re.fullmatch(r"[\w/]+\.(cpp|cu|h|cuh)", value):
                    files.add(f"{CSRC}/{value}")
            functor = entry_field(entry, "functor")
            if functor:
                self.cut_cpp(FUNCTORS, [functor], required=True)
            test = entry_field(entry, "test")
            if test:
                test_files.append(f"runtime/{test}")
        if entries and not any(entry_field(e, "test") for e in entries):
            default = self.spec_default_test()
            if default:
                test_files.append(f"runtime/{default}")
        for path in sorted(files):
            self.cut_cpp(path, self.names, required=False)
        self.cut_python()
        if not entries and not self.removed_defs:
            return self.fail(f"{self.op.name}: no spec entry and no Python definition found")
        self.cut_helpers(sorted(files))
        for path in dict.fromkeys(test_files):
            self.cut_tests(path)
        if not self.result.test_paths:
            return self.fail(f"{self.op.name}: no test rows found to hide")
        self.check_dependents()
        return self.result

    def fail(self, why: str) -> Ablation:
        self.result.problem = why
        return self.result

    def cut_spec(self) -> list[str]:
        found = []
        for path in self.snap.paths(SPEC_DIR, (".yaml",)):
            text = self.text(path)
            spans = []
            entries = spec_entries(text)
            for k, (start, end, entry) in enumerate(entries):
                op, func = entry_names(entry)
                if op in self.names or func in self.names:
                    spans.append((start, end))
                    found.append(entry)
                    for other in entries[max(0, k - 1) : k] + entries[k + 1 : k + 2]:
                        self.note_neighbor(other[2])
            if spans:
                self.spec_path = path
                self.set(path, remove_spans(text, spans))
        return found

    def note_neighbor(self, entry: str) -> None:
        """The ops next to the removed entry: what a user would name as its siblings."""
        op, func = entry_names(entry)
        name = (func or op or "").rstrip("_")
        internal = entry_field(entry, "python") == "internal"
        if name and not internal and name not in self.names and name not in self.result.neighbors:
            self.result.neighbors.append(name)

    def spec_default_test(self) -> str | None:
        m = re.search(r"^- defaults:\s*\{test:\s*([\w/.]+)\}", self.snap.read(self.spec_path), re.M)
        return m.group(1) if m else None

    def cut_cpp(self, path: str, names: list[str], required: bool) -> None:
        if path not in self.snap.all_paths:
            return
        text = self.text(path)
        cuts = [c for n in names for c in find_cpp_defs(text, n)]
        if required and not cuts:
            self.result.problem = f"{path}: no definition of {names[0]}"
        if cuts:
            self.removed_defs.update(c.name for c in cuts)
            self.set(path, remove_spans(text, [(c.start, c.end) for c in cuts]))

    def cut_helpers(self, files: list[str]) -> None:
        """Definitions named after the op (x_kernel, launch_x) that nothing left uses."""
        token = re.compile(rf"(^|_){re.escape(self.op.name)}(_|$)")
        for path in files:
            if path not in self.snap.all_paths:
                continue
            helpers = [
                n
                for n in cpp_names_defined(self.text(path))
                if token.search(n) and n not in self.names
            ]
            for name in dict.fromkeys(helpers):
                trial = self.text(path)
                cuts = find_cpp_defs(trial, name)
                after = remove_spans(trial, [(c.start, c.end) for c in cuts])
                if cuts and not self.used_anywhere(name, path, after):
                    self.set(path, after)

    def used_anywhere(self, name: str, path: str, text: str) -> bool:
        pattern = re.compile(rf"\b{re.escape(name)}\b")
        for other in self.snap.paths(CSRC, (".cpp", ".cu", ".h", ".cuh")):
            body = text if other == path else self.text(other)
            if any(pattern.search(code_of(line)) for line in body.splitlines()):
                return True
        return False

    def cut_python(self) -> None:
        """Top-level defs named like the op, then the small wrapper classes calling it (an nn
        module over a functional), then their names in import lists and `__all__`."""
        self._cut_python_defs(
            lambda kind, head, unit: (
                kind == "def"
                and re.search(rf"^(?:@.*\n)*def ({'|'.join(self.names)})\(", head, re.M)
            )
        )
        # x.op( is a use, not a wrapper: the class holding it stays and the op counts as used
        calls = re.compile(rf"(?<![\w.])(?:F\.|ember\.)?(?:{'|'.join(self.names)})\(")
        wrappers: list[str] = []

        def wrapper(kind: str, head: str, unit: str) -> bool:
            m = re.match(r"class (\w+)\(", head)
            if (
                kind == "def"
                and m
                and unit.count("\n") < 40
                and calls.search("\n".join(python_code_lines(unit)))
            ):
                wrappers.append(m.group(1))
                return True
            return False

        self._cut_python_defs(wrapper)
        self.names += wrappers
        self.result.wrappers = wrappers
        for path in self.snap.paths(PYTHON, (".py",)):
            self.set(path, self.drop_exports(self.text(path)))

    def _cut_python_defs(self, pick) -> None:
        for path in self.snap.paths(PYTHON, (".py",)):
            text = self.text(path)
            lines = text.splitlines()
            spans = []
            units = python_units(lines, 0)
            public = [
                m.group(1)
                for s, e, _ in units
                for m in [re.match(r"def ([a-z]\w*)\(", lines[s])]
                if m
            ]
            for start, end, kind in units:
                head = "\n".join(
                    ln
                    for ln in lines[start:end]
                    if ln.startswith(("@", "def ", "class ", "async "))
                )
                if pick(kind, head, "\n".join(lines[start:end])):
                    spans.append((start, end))
                    name = re.match(r"def (\w+)\(", lines[start])
                    if self.op.module and name and name.group(1) in public:
                        k = public.index(name.group(1))
                        for other in public[max(0, k - 1) : k] + public[k + 1 : k + 2]:
                            if other not in self.names and other not in self.result.neighbors:
                                self.result.neighbors.append(other)
            if spans:
                self.removed_defs.add(path)
                self.set(path, remove_spans(text, spans))

    def drop_exports(self, text: str) -> str:
        """The op's names out of `__all__` and out of `from x import a, b` lists."""
        m = re.search(r"(?ms)^__all__\s*=\s*[\[(].*?[\])]", text)
        if m:
            block = m.group(0)
            for name in self.names:
                block = re.sub(rf'(?<=[(\[,\s])"{name}",\s*', "", block)
                block = re.sub(rf',\s*"{name}"(?=\s*[\])])', "", block)
            text = text[: m.start()] + block + text[m.end() :]
        for name in self.names:
            text = re.sub(rf"(?m)^(from [\w.]+ import [^(\n]*?)\b{name}, ", r"\1", text)
            text = re.sub(rf"(?s)(from [\w.]+ import \([^)]*?)\b{name},\s*", r"\1", text)
            text = re.sub(rf"(?s)(from [\w.]+ import \([^)]*?),\s*{name}\b(?=\s*\))", r"\1", text)
            text = re.sub(rf"(?m)^(from [\w.]+ import [^(\n]*?),\s*{name}$", r"\1", text)
        return text

    def cut_tests(self, path: str) -> None:
        if path not in self.snap.all_paths:
            return
        text = self.text(path)
        lines = text.splitlines()
        spans, rows, defs = [], [], []
        code = [without_comment(line) for line in lines]  # a comment naming the op is no test
        for start, end, kind in python_units(lines, 0):
            unit = "\n".join(code[start:end])
            if not mentions_quoted(unit, self.names):
                continue
            head = lines[start]
            if kind == "stmt" and re.match(r"\w+\s*=\s*[\[(]\s*$", head.split("#")[0].rstrip()):
                for s, e, _ in python_units(lines, 4, start + 1, end):
                    row = "\n".join(code[s:e])
                    if mentions_quoted(row, self.names):
                        spans.append((s, e))
                        rows += re.findall(r"""OpCase\(\s*f?["']([\w\-.]+)""", row)
                continue
            spans.append((start, end))
            if kind == "def":
                m = re.search(r"^def (test_\w+)", unit, re.M)
                if m:
                    defs.append(m.group(1))
            else:
                rows += re.findall(r"""\(\s*f?["']([\w\-.]+)""", unit)
        if not spans:
            return
        first = min(s for s, _ in spans)
        indent = len(lines[first]) - len(lines[first].lstrip())
        new_lines = [ln for i, ln in enumerate(lines) if not any(s <= i < e for s, e in spans)]
        placeholder = " " * indent + PLACEHOLDER.format(name=self.op.name)
        kept_before = sum(1 for i in range(first) if not any(s <= i < e for s, e in spans))
        new_lines.insert(kept_before, placeholder)
        self.set(path, "\n".join(new_lines) + "\n")
        self.result.test_paths.append(path)
        keys = sorted(set(rows + defs + [self.op.name]))
        self.result.selectors.append(f'{path} -k "{" or ".join(keys)}"')

    # ---------------------------------------------------------------- validation
    def check_dependents(self) -> None:
        """The op must be gone: no code left in the runtime (tests aside) calls or names it."""
        where = []
        names = "|".join(map(re.escape, self.names))
        cpp = re.compile(
            rf"(?<![\w.:])(?:{names})\s*\(|(?:ember|OpId)::(?:{names})\b|&(?:{names})\b"
        )
        # Python: calls, attributes (not math./np. ones) and imports; a builtin (any, all, abs)
        # only counts as ember.x or a method
        bare = "" if self.op.name in dir(builtins) else rf"(?<![\w.])(?:{names})\s*\(|"
        py = re.compile(
            rf"{bare}(?<!math)(?<!np)(?<!numpy)\.(?:{names})\b|import .*\b(?:{names})\b"
        )
        yaml_call = re.compile(rf"(?<![\w.])(?:{names})\s*\(")
        for path in self.snap.paths(CSRC, (".cpp", ".cu", ".h", ".cuh")):
            if path.endswith("pointwise/math.h"):
                continue
            for number, line in enumerate(self.text(path).splitlines(), 1):
                if cpp.search(code_of(line)):
                    where.append(f"{path}:{number}: {line.strip()[:100]}")
        for path in self.snap.paths(PYTHON, (".py",)) + self.snap.paths(SPEC_DIR, (".yaml",)):
            for number, line in enumerate(python_code_lines(self.text(path)), 1):
                if (yaml_call if path.endswith(".yaml") else py).search(line):
                    where.append(f"{path}:{number}: {line.strip()[:100]}")
        if where:
            self.result.problem = f"{self.op.name} is still used: " + "; ".join(where[:3])


def without_comment(line: str) -> str:
    """A Python line without its `#` comment (a `#` inside a string stays)."""
    blanked = STRING_LITERAL.sub(lambda m: "x" * len(m.group(0)), line)
    cut = blanked.find("#")
    return line if cut < 0 else line[:cut].rstrip()


def ablate(snap: Snapshot, op: AblationOp) -> Ablation:
    return Ablator(snap, op).run()


__all__ = ["Ablation", "Snapshot", "ablate", "mentions"]
