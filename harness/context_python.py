"""The Python side of an op family: where the functions and module classes closest to what the
goal adds are defined, imported and exported.

A Python function or `nn` module the goal adds goes where its siblings are: next to a sibling's
`def`, into the import lists that re-export the siblings and into the `__all__` lists that name
them, and (for a module class) next to the class that wraps a sibling. A new name also joins the
export lists around its home module (Note [re-exports of a new name]). A model writing SEARCH
blocks needs those exact lines, so this section shows them as excerpts, found by parsing the
in-scope Python files (`ast`), never by file name.
"""

from __future__ import annotations

import ast
import posixpath
import re
from bisect import bisect_left
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
    is_all: bool = False
    at: dict[str, int] = field(default_factory=dict)  # name -> the 0-based line listing it
    # where a `from m import` reads from: repository paths, or path suffixes for an absolute import
    sources: tuple[str, ...] = ()
    reexports: bool = False  # an import the module does not use itself, or names in `__all__`

    def reads(self, path: str) -> bool:
        return any(path == s or path.endswith("/" + s) for s in self.sources)


@dataclass
class PyModule:
    path: str
    definitions: list[PyDefinition]
    exports: list[PyExport]
    bound: set[str] = field(default_factory=set)  # names its top level binds
    documented: set[str] = field(default_factory=set)  # code names its docstring mentions
    # names in its literal tables (`{"erf": ..., "logsumexp": ...}`) next to names it exports
    tabled: set[str] = field(default_factory=set)

    def defines(self, name: str) -> PyDefinition | None:
        return next((d for d in self.definitions if d.name == name), None)

    def names(self, name: str) -> bool:
        return name in self.bound or name in self.documented or name in self.tabled


IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
CODE_NAME = re.compile(r"[A-Z0-9_]")  # past its first letter: no English word


def import_sources(rel: str, node: ast.ImportFrom) -> tuple[str, ...]:
    """The files a `from m import ...` may read: `m.py` or `m/__init__.py`, relative to `rel`
    for a relative import, any path ending so for an absolute one."""
    if not node.module:
        return ()
    tail = node.module.replace(".", "/")
    if node.level:
        base = posixpath.dirname(rel)
        for _ in range(node.level - 1):
            base = posixpath.dirname(base)
        tail = posixpath.join(base, tail)
    return (f"{tail}.py", f"{tail}/__init__.py")


def parse_module(rel: str, text: str) -> PyModule | None:
    """The top-level definitions and export statements of a Python file (None: not parseable)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    definitions, exports, bound = [], [], set()
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        end = node.end_lineno or node.lineno
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            uses = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            uses |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            definitions.append(
                PyDefinition(node.name, start, end, isinstance(node, ast.ClassDef), uses)
            )
            bound.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            at = {a.asname or a.name: a.lineno - 1 for a in node.names}
            exports.append(PyExport(start, end, set(at), False, at, import_sources(rel, node)))
            bound |= set(at)
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            bound |= {t.id for t in targets if isinstance(t, ast.Name)}
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                at = {
                    n.value: n.lineno - 1
                    for n in ast.walk(node)
                    if isinstance(n, ast.Constant) and isinstance(n.value, str)
                }
                exports.append(PyExport(start, end, set(at), True, at))
    exported = {n for e in exports if e.is_all for n in e.names}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    for export in exports:
        re_exported = export.names & exported or export.names - used
        export.reexports = not export.is_all and bool(re_exported)
    tabled: set[str] = set()
    for table in ast.walk(tree):
        items = (
            [*table.keys, *table.values]
            if isinstance(table, ast.Dict)
            else table.elts
            if isinstance(table, ast.List | ast.Tuple | ast.Set)
            else []
        )
        names = {
            n.value
            for n in items
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
            if IDENTIFIER.fullmatch(n.value)
        }
        if names & exported and not names <= exported:  # a table of names, not `__all__` itself
            tabled |= names
    documented = {  # code names (`CosineSimilarity`, `log_softmax`), not prose (`diagonal`)
        n for n in IDENTIFIER.findall(ast.get_docstring(tree) or "") if CODE_NAME.search(n[1:])
    }
    return PyModule(rel, definitions, exports, bound, documented, tabled)


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


def definition_regions(d: PyDefinition, lines: list[str], rank: int) -> list[tuple]:
    """A definition with the line before it; a long one as its head and its tail."""
    start = previous_code_line(lines, d.start)
    if d.end - d.start <= MAX_DEF_LINES:
        return [(rank, start, d.end)]
    return [(rank, start, d.start + DEF_HEAD_LINES), (rank, d.end - DEF_TAIL_LINES, d.end)]


def family_regions(module: PyModule, lines: list[str], family: PyFamily) -> list[tuple]:
    """(rank, start, end) regions of one module: its export statements naming the family, then
    the family's definitions (closest first), each with the line before it."""
    listed = set(family.names) | set(family.new)
    regions = [(0, e.start, e.end) for e in module.exports if e.names & listed]
    for rank, name in enumerate(family.names, start=1):
        d = module.defines(name)
        if d is not None:
            regions += definition_regions(d, lines, rank)
    return regions


# Note [re-exports of a new name]
# A name the goal adds is listed where its home module's names are listed: in the import lists
# re-exporting from its home (`from .distance import PairwiseDistance` gains CosineSimilarity),
# in the `__all__` lines naming what those import, and in the `__all__` of a module that binds
# it, names it in its docstring or in a table beside names it exports (an alias table) but does
# not export it. Its home: a module that binds it or whose docstring names it, else the ones
# defining its siblings (a function's) or the classes wrapping them (a class's). In a long list
# only the lines that matter are shown: where the name sorts in, and those naming what the home
# exports.
MAX_WHOLE_EXPORT_LINES = 4


def homes(modules: list[PyModule], family: PyFamily) -> dict[str, set[str]]:
    """New name -> the paths of the modules it is meant to live in."""
    found = {}
    for name in family.new:
        kin = family.wrappers if name[:1].isupper() else family.siblings
        found[name] = {m.path for m in modules if name in m.bound | m.documented} or {
            m.path for m in modules if any(m.defines(k) for k in kin)
        }
    return found


def sorts_in(export: PyExport, name: str) -> set[int]:
    """The lines of an export list holding the names that `name` sorts in between."""
    order = sorted(export.names, key=str.lower)
    at = bisect_left([n.lower() for n in order], name.lower())
    return {export.at[n] for n in order[max(0, at - 1) : at + 1]}


def reexport_regions(
    module: PyModule, lines: list[str], family: PyFamily, home: dict[str, set[str]]
) -> list[tuple]:
    """(rank, start, end) regions of `module` that a new name joins (Note [re-exports of a new
    name]): export lines first, then, in a module whose docstring promises the name, its
    definitions (the name goes next to them)."""
    shown: set[int] = set()
    from_home: set[str] = set()  # what the module re-exports from a home: its `__all__` names them
    joining = {n for n in family.new if module.names(n)}  # the new names its `__all__` gains
    for export in module.exports:
        gained = [
            n
            for n in family.new
            if n not in export.names and any(export.reads(h) for h in home.get(n, ()))
        ]
        if not export.reexports or not gained:
            continue
        from_home |= export.names
        joining |= set(gained)
        if export.end - export.start <= MAX_WHOLE_EXPORT_LINES:
            shown |= set(range(export.start, export.end))
        else:
            shown |= {line for n in gained for line in sorts_in(export, n)}
    for export in module.exports:
        if export.is_all and (joining - export.names or from_home & export.names):
            shown |= {line for n in joining - export.names for line in sorts_in(export, n)}
            shown |= {export.at[n] for n in from_home & export.names}
    regions: list[tuple] = [(0, n, n + 1) for n in sorted(shown)]
    promised = [n for n in family.new if n in module.documented and n not in module.bound]
    if promised:
        for d in module.definitions[-MAX_SIBLINGS:]:
            regions += definition_regions(d, lines, 1)
    return regions


def module_rank(module: PyModule, family: PyFamily) -> tuple:
    """Modules defining the closest sibling first, then those exporting the family."""
    ranks = [i for i, n in enumerate(family.names) if module.defines(n)]
    listed = set(family.names) | set(family.new)
    exports = sum(len(e.names & listed) for e in module.exports)
    return (min(ranks, default=len(family.names)), -exports, module.path)
