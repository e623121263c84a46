"""Source surgery for the suite generator: find and cut C++ definitions, YAML spec entries and
Python units (defs, statements, list rows) by name, in text, without a parser per language.

Everything here works on one file's text and returns the new text plus what was cut, so the
generator can diff before/after and the tests can check each rule on a few lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ---------------------------------------------------------------- C++

STRING_LITERAL = re.compile(r'"(?:\\.|[^"\\])*"' + r"|'(?:\\.|[^'\\])*'")


def code_of(line: str) -> str:
    """A C++/CUDA line without string/char literals and // comments (for brace counting)."""
    return STRING_LITERAL.sub('""', line).split("//", 1)[0]


def _cpp_header(name: str) -> re.Pattern:
    """A column-0 definition or declaration of function or type `name`."""
    qualifiers = (
        r"(?:template\s*<[^>]*>\s*)?"
        r"(?:(?:static|inline|constexpr|__global__|__device__|__host__)\s+)*"
    )
    function = rf"(?:[\w:]+(?:<[^()]*>)?[\s&*]+)+{re.escape(name)}\s*\("
    record = rf"(?:struct|class)\s+{re.escape(name)}\b"
    return re.compile(rf"^{qualifiers}(?:{function}|{record})")


def _block_end(lines: list[str], start: int) -> int:
    """Index after the definition starting at `start`: its braces balanced, or a `;` first."""
    depth, opened = 0, False
    for i in range(start, len(lines)):
        code = code_of(lines[i])
        for ch in code:
            if ch == "{":
                depth, opened = depth + 1, True
            elif ch == "}":
                depth -= 1
            elif ch == ";" and not opened and depth == 0:
                return i + 1
        if opened and depth <= 0:
            end = i + 1
            # a record ends with `};` on this line; a definition list may continue with `;`
            return end
    return len(lines)


def _attached_start(lines: list[str], start: int) -> int:
    """Include the comment lines and template header directly above a definition."""
    while start > 0:
        prev = lines[start - 1].strip()
        if prev.startswith("//") or prev.startswith("template <") or prev.startswith("template<"):
            start -= 1
        else:
            break
    return start


@dataclass
class Cut:
    """A span of lines removed from a file (0-based, end exclusive) and the name it defined."""

    name: str
    start: int
    end: int


def find_cpp_defs(text: str, name: str) -> list[Cut]:
    lines = text.splitlines()
    header = _cpp_header(name)
    cuts, i = [], 0
    while i < len(lines):
        line = lines[i]
        if header.match(line) and not line.startswith(("//", "#", "return", "using")):
            end = _block_end(lines, i)
            cuts.append(Cut(name, _attached_start(lines, i), end))
            i = end
        else:
            i += 1
    return cuts


def cpp_names_defined(text: str) -> list[str]:
    """Names of column-0 functions and records (candidates for helper removal)."""
    names = []
    pattern = re.compile(
        r"^(?:template\s*<[^>]*>\s*)?(?:(?:static|inline|constexpr|__global__|__device__)\s+)*"
        r"(?:(?:struct|class)\s+(\w+)|(?:[\w:]+(?:<[^()]*>)?[\s&*]+)+(\w+)\s*\()"
    )
    for line in text.splitlines():
        m = pattern.match(line)
        if m and not line.startswith(("//", "#", "return", "using", "namespace")):
            names.append(m.group(1) or m.group(2))
    return names


def remove_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """Drop line spans; a blank line left doubled by a cut goes too."""
    lines = text.splitlines()
    drop: set[int] = set()
    for start, end in spans:
        drop.update(range(start, end))
    kept: list[str] = []
    for i, line in enumerate(lines):
        if i in drop:
            continue
        if not line.strip() and kept and not kept[-1].strip() and (i - 1) in drop:
            continue
        kept.append(line)
    return "\n".join(kept) + ("\n" if text.endswith("\n") else "")


# ---------------------------------------------------------------- YAML op spec


def spec_entries(text: str) -> list[tuple[int, int, str]]:
    """(start, end, entry text) of each `- ` entry of a spec file (entries end at the next
    entry, a column-0 comment or a blank line)."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        if lines[i].startswith("- "):
            j = i + 1
            while j < len(lines) and lines[j].startswith(" ") and lines[j].strip():
                j += 1
            out.append((i, j, "\n".join(lines[i:j])))
            i = j
        else:
            i += 1
    return out


_FUNC = re.compile(r"^\s*-?\s*func:\s*([\w]+)(?:\.\w+)?\(", re.M)
_OP = re.compile(r"^-\s*op:\s*(\w+)\s*$", re.M)


def entry_names(entry: str) -> tuple[str | None, str | None]:
    """(op row name, func base name) of one spec entry."""
    op, func = _OP.search(entry), _FUNC.search(entry)
    return (op.group(1) if op else None, func.group(1) if func else None)


def entry_field(entry: str, key: str) -> str | None:
    m = re.search(rf"^\s*-?\s*{key}:\s*(.+?)\s*$", entry, re.M)
    return m.group(1) if m else None


# ---------------------------------------------------------------- Python


def _py_balance(line: str) -> int:
    code = STRING_LITERAL.sub('""', line).split("#", 1)[0]
    return sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")


def python_code_lines(text: str) -> list[str]:
    """Python (or YAML) lines with strings, docstrings, comments and YAML `doc:` values blanked
    (line numbers kept)."""
    text = re.sub(
        r'(?s)""".*?"""|\'\'\'.*?\'\'\'', lambda m: '""' + "\n" * m.group(0).count("\n"), text
    )
    out = []
    for line in text.splitlines():
        line = STRING_LITERAL.sub('""', line).split("#", 1)[0]
        out.append(re.sub(r"^(\s*-?\s*doc:).*", r"\1", line))
    return out


def python_units(lines: list[str], indent: int, start: int = 0, stop: int | None = None) -> list:
    """Logical units at exactly `indent` spaces between start and stop: (start, end, kind).
    kind is 'def' (a def/class with its body and decorators) or 'stmt' (brackets balanced)."""
    stop = len(lines) if stop is None else stop
    units, i = [], start
    pad = " " * indent
    code = python_code_lines("\n".join(lines))
    code += [""] * (len(lines) - len(code))
    while i < stop:
        line = lines[i]
        if (
            not code[i].strip()
            or not line.strip()
            or not line.startswith(pad)
            or (len(line) > indent and line[indent] == " ")
        ):
            i += 1
            continue
        body = line[indent:]
        if body.startswith("#"):
            i += 1
            continue
        first = i
        while body.startswith("@"):  # decorators belong to the def below
            i += 1
            body = lines[i][indent:] if i < stop else ""
        if re.match(r"(async\s+)?(def|class)\s", body):
            j = i + 1
            while j < stop and (
                not lines[j].strip()
                or lines[j].startswith(pad + " ")
                or lines[j].startswith(pad + ")")
            ):
                j += 1
            while j > i + 1 and not lines[j - 1].strip():
                j -= 1
            units.append((first, j, "def"))
            i = j
            continue
        depth, j = 0, i
        while j < stop:
            depth += _py_balance(code[j])
            j += 1
            if depth <= 0:
                break
        units.append((first, j, "stmt"))
        i = j
    return units


def mentions(text: str, names: list[str]) -> bool:
    return any(re.search(rf"(?<![\w.]){re.escape(n)}\b|\.{re.escape(n)}\b", text) for n in names)


def mentions_quoted(text: str, names: list[str]) -> bool:
    """A name as code or as the start of a quoted case name ("huber", f"normalize-p{p}")."""
    return mentions(text, names) or any(
        re.search(rf"""f?["']{re.escape(n)}(?:["'_\-]|\{{)""", text) for n in names
    )
