"""The Python side of an op family: where the functions and module classes closest to what the
goal adds are defined, imported and exported.

A Python function or `nn` module the goal adds goes where its siblings are: next to a sibling's
`def`, into the import lists that re-export the siblings and into the `__all__` lists that name
them, and (for a module class) next to the class that wraps a sibling. A model writing SEARCH
blocks needs those exact lines, so this section shows them as excerpts, found by parsing the
in-scope Python files (`ast`), never by file name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

# A sibling definition longer than this shows its head and its tail, not its body.
MAX_DEF_LINES = 30
DEF_HEAD_LINES = 10
DEF_TAIL_LINES = 3
MAX_SIBLINGS = 4


@dataclass
class PyDefinition:
    name: str
    start: int  # 0-based line range [start, end), decorators included
    end: int
    is_class: bool
    uses: set[str] = field(default_factory=set)  # names and attributes its body refers to


@dataclass
class PyExport:
    """A top-level `from m import (...)` or `__all__ = [...]` statement and the names it lists."""

    start: int
    end: int
    names: set[str]


@dataclass
class PyModule:
    path: str
    definitions: list[PyDefinition]
    exports: list[PyExport]

    def defines(self, name: str) -> PyDefinition | None:
        return next((d for d in self.definitions if d.name == name), None)


def parse_module(rel: str, text: str) -> PyModule | None:
    """The top-level definitions and export statements of a Python file (None: not parseable)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    definitions, exports = [], []
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        end = node.end_lineno or node.lineno
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            uses = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            uses |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            definitions.append(
                PyDefinition(node.name, start, end, isinstance(node, ast.ClassDef), uses)
            )
        elif isinstance(node, ast.ImportFrom):
            exports.append(PyExport(start, end, {a.asname or a.name for a in node.names}))
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                names = {
                    n.value
                    for n in ast.walk(node)
                    if isinstance(n, ast.Constant) and isinstance(n.value, str)
                }
                exports.append(PyExport(start, end, names))
    return PyModule(rel, definitions, exports)


@dataclass
class PyFamily:
    new: list[str]  # names the goal adds that no in-scope Python file defines
    siblings: list[str]  # defined functions/classes closest to them, closest first
    wrappers: list[str]  # classes whose body calls a sibling (an `nn` module over a function)

    @property
    def names(self) -> list[str]:
        return self.siblings + self.wrappers


def find_py_family(modules: list[PyModule], wanted_new: list[str], near: list[str]) -> PyFamily:
    """`wanted_new`: names the goal adds (ember./torch. callables); `near`: names the goal or the
    op family points at, closest first. Siblings are those of `near` a module defines."""
    defined = {d.name for m in modules for d in m.definitions}
    new = [n for n in wanted_new if n not in defined]
    siblings = [n for n in dict.fromkeys(near) if n in defined and n not in new][:MAX_SIBLINGS]
    wrappers: list[str] = []
    if any(n[:1].isupper() for n in new):  # the goal adds a class: show the classes over siblings
        functions = {
            d.name for m in modules for d in m.definitions if not d.is_class and d.name in siblings
        }
        for module in modules:
            for d in module.definitions:
                if d.is_class and d.uses & functions and d.name not in siblings + wrappers:
                    wrappers.append(d.name)
    return PyFamily(new, siblings, wrappers[:MAX_SIBLINGS])


def previous_code_line(lines: list[str], at: int) -> int:
    """The last non-blank line before `at` (where an insertion before `at` is anchored)."""
    n = at - 1
    while n > 0 and not lines[n].strip():
        n -= 1
    return max(0, n)


def family_regions(module: PyModule, lines: list[str], family: PyFamily) -> list[tuple]:
    """(rank, start, end) regions of one module: its export statements naming the family, then
    the family's definitions (closest first), each with the line before it."""
    listed = set(family.names) | set(family.new)
    regions = [(0, e.start, e.end) for e in module.exports if e.names & listed]
    for rank, name in enumerate(family.names, start=1):
        d = module.defines(name)
        if d is None:
            continue
        start = previous_code_line(lines, d.start)
        if d.end - d.start <= MAX_DEF_LINES:
            regions.append((rank, start, d.end))
        else:
            regions.append((rank, start, d.start + DEF_HEAD_LINES))
            regions.append((rank, d.end - DEF_TAIL_LINES, d.end))
    return regions


def module_rank(module: PyModule, family: PyFamily) -> tuple:
    """Modules defining the closest sibling first, then those exporting the family."""
    ranks = [i for i, n in enumerate(family.names) if module.defines(n)]
    listed = set(family.names) | set(family.new)
    exports = sum(len(e.names & listed) for e in module.exports)
    return (min(ranks, default=len(family.names)), -exports, module.path)
