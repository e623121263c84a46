"""Parses the torch-style signatures of runtime/spec/*.yaml and maps their types to C++ and Python.

A signature is `name[.overload](params) -> returns`, e.g.
    add(Operand self, Operand other, *, Scalar alpha=1) -> Tensor
    max_dim(Tensor self, int dim, bool keepdim=False) -> (Tensor values, Tensor indices)
Parameters after `*` are keyword-only in Python. The types are listed in TYPES below; `int...` is an
int list that Python may also pass as varargs (x.view(2, 3)).
"""
from __future__ import annotations

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class CppType:
    param: str          # C++ frontend parameter type
    py: str             # pybind lambda parameter type
    to_cpp: str         # expression turning the pybind parameter `{}` into the C++ argument
    none_default: str   # C++ default spelling of None ('' when None is not allowed)


# schema type -> how it crosses C++ and Python. Optional variants are looked up as 'T?'.
TYPES: dict[str, CppType] = {
    "Tensor": CppType("const Tensor&", "const Tensor&", "{}", ""),
    "Tensor(a)": CppType("const Tensor&", "const Tensor&", "{}", ""),
    "Tensor(a!)": CppType("Tensor&", "Tensor&", "{}", ""),
    "Tensor?": CppType("const Tensor&", "std::optional<Tensor>", "{}.value_or(Tensor())", "Tensor()"),
    "Tensor[]": CppType("const TensorList&", "py::handle", "tensor_list({}, \"{name}\")", ""),
    "Tensor?[]": CppType("const TensorList&", "py::handle", "optional_tensor_list({})", ""),
    "Operand": CppType("const Operand&", "const Operand&", "{}", ""),
    "Operand?": CppType("const std::optional<Operand>&", "const std::optional<Operand>&", "{}", "std::nullopt"),
    "Scalar": CppType("Scalar", "Scalar", "{}", ""),
    "Scalar?": CppType("std::optional<Scalar>", "std::optional<Scalar>", "{}", "std::nullopt"),
    "int": CppType("int64_t", "int64_t", "{}", ""),
    "int?": CppType("std::optional<int64_t>", "std::optional<int64_t>", "{}", "std::nullopt"),
    "int[]": CppType("IntSpan", "const DimVector&", "{}", ""),
    "int[]?": CppType("IntSpan", "const std::optional<DimVector>&", "opt_dims({})", "{}"),
    "int...": CppType("IntSpan", "py::args", "sizes_or_kw({}, {}_kw, \"{name}\")", ""),
    "float": CppType("double", "double", "{}", ""),
    "float?": CppType("std::optional<double>", "std::optional<double>", "{}", "std::nullopt"),
    "bool": CppType("bool", "bool", "{}", ""),
    "str": CppType("std::string_view", "std::string_view", "{}", ""),
    "str?": CppType("std::optional<std::string_view>", "std::optional<std::string_view>", "{}", "std::nullopt"),
    "ScalarType": CppType("ScalarType", "ScalarType", "{}", ""),
    "ScalarType?": CppType("std::optional<ScalarType>", "std::optional<ScalarType>", "{}", "std::nullopt"),
    "Device?": CppType("std::optional<Device>", "std::optional<Device>", "{}", "std::nullopt"),
    "Generator?": CppType("Generator*", "py::handle", "generator_of({})", "nullptr"),
}

RETURNS = {"Tensor": "Tensor", "Tensor(a)": "Tensor", "Tensor(a!)": "Tensor&", "Tensor[]": "TensorList",
           "()": "void", "Scalar": "Scalar", "int": "int64_t", "bool": "bool", "float": "double",
           "ScalarType": "ScalarType", "int[]": "DimVector"}


@dataclasses.dataclass(frozen=True)
class Param:
    type: str
    name: str
    default: str | None   # schema spelling ('None', '1', '"none"', '[]', 'True')
    kw_only: bool

    @property
    def cpp(self) -> CppType:
        return TYPES[self.type]

    def cpp_default(self) -> str | None:
        """The C++ default argument, or None when the parameter has none."""
        d = self.default
        if d is None:
            return None
        if d == "None":
            if not self.cpp.none_default:
                raise SchemaError(f"parameter {self.name}: type {self.type} cannot default to None")
            return self.cpp.none_default
        if d in ("True", "False"):
            return d.lower()
        if d == "[]":
            return "{}"
        if self.type.startswith("Scalar") and re.fullmatch(r"-?\d+", d):
            return f"int64_t{{{d}}}"
        return d  # numbers and "strings" are spelled alike in C++

    def py_default(self) -> str | None:
        """The pybind11 default value expression (py::arg("x") = <this>)."""
        d = self.default
        if d is None:
            return None
        if d == "None":
            return "py::none()"
        if d in ("True", "False"):
            return d.lower()
        if d == "[]":
            return "py::tuple()"
        if re.fullmatch(r"-?\d+", d):
            return f"int64_t{{{d}}}"
        return d


@dataclasses.dataclass(frozen=True)
class Return:
    type: str
    name: str | None


@dataclasses.dataclass(frozen=True)
class Signature:
    name: str               # C++ frontend name (and Python name unless the spec says otherwise)
    overload: str           # '' or the part after the dot: a Python-only overload id
    params: tuple[Param, ...]
    returns: tuple[Return, ...]
    text: str

    def cpp_return(self) -> str:
        if len(self.returns) == 1:
            return RETURNS[self.returns[0].type]
        if not self.returns:
            return "void"
        inner = ", ".join(RETURNS[r.type] for r in self.returns)
        return f"std::pair<{inner}>" if len(self.returns) == 2 else f"std::tuple<{inner}>"

    @property
    def tensor_params(self) -> list[Param]:
        return [p for p in self.params if p.type.startswith("Tensor") or p.type == "Operand"]


class SchemaError(ValueError):
    pass


_PARAM = re.compile(r"^(?P<type>[A-Za-z]+(?:\(a!?\))?(?:\[\])?(?:\?\[\])?\??|int\.\.\.)\s+(?P<name>\w+)"
                    r"(?:\s*=\s*(?P<default>.+))?$")


def _split_top(s: str) -> list[str]:
    """Splits on commas outside brackets and quotes."""
    parts, depth, quote, cur = [], 0, None, ""
    for ch in s:
        if quote:
            cur += ch
            quote = None if ch == quote else quote
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def parse(text: str) -> Signature:
    m = re.fullmatch(r"\s*(?P<name>\w+)(?:\.(?P<overload>\w+))?\((?P<params>.*)\)\s*->\s*(?P<ret>.+?)\s*", text)
    if not m:
        raise SchemaError(f"not a signature `name(params) -> returns`: {text!r}")
    params, kw_only = [], False
    for raw in _split_top(m["params"]):
        if raw == "*":
            kw_only = True
            continue
        pm = _PARAM.match(raw)
        if not pm or pm["type"] not in TYPES:
            raise SchemaError(f"{m['name']}: cannot parse parameter {raw!r} (types: {', '.join(TYPES)})")
        default = pm["default"].strip() if pm["default"] else None
        if default is not None and default.startswith("'"):
            default = '"' + default[1:-1] + '"'
        params.append(Param(pm["type"], pm["name"], default, kw_only))
    ret = m["ret"].strip()
    if ret.startswith("(") and ret != "()":
        returns = []
        for raw in _split_top(ret[1:-1]):
            bits = raw.split()
            returns.append(Return(bits[0], bits[1] if len(bits) > 1 else None))
    else:
        returns = [] if ret == "()" else [Return(ret, None)]
    for r in returns:
        if r.type not in RETURNS:
            raise SchemaError(f"{m['name']}: unknown return type {r.type!r} (types: {', '.join(RETURNS)})")
    seen_default = False
    for p in params:
        if p.default is not None:
            seen_default = True
        elif seen_default:
            raise SchemaError(f"{m['name']}: parameter {p.name} without a default follows one with a default")
    return Signature(m["name"], m["overload"] or "", tuple(params), tuple(returns), text.strip())
