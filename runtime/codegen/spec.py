"""Loads runtime/spec/*.yaml into typed records and checks them against the sources.

Entry kinds (docs/adding_an_op.md has the recipe, runtime/spec/README.md every field):
  - attrs: Name          a shared attributes struct (NameAttrs) that several ops use
  - op: name             an op-table row (OpId::name): attrs, kernels, backward; usually with `func`
  - func: signature      a frontend without its own row (a composite, or a Python-only overload)
"""
from __future__ import annotations

import dataclasses
import os
import re

import yaml

import schema

# attrs field type -> (C++ type, zero value)
ATTR_TYPES = {
    "bool": ("bool", "false"), "int": ("int64_t", "0"), "float": ("double", "0.0"), "Scalar": ("Scalar", ""),
    "Scalar?": ("std::optional<Scalar>", ""), "float?": ("std::optional<double>", ""), "int[]": ("DimVector", ""),
    "ScalarType": ("ScalarType", "ScalarType::Float32"), "uint64": ("uint64_t", "0"),
}
UNARY_RULES = {"same": "Same", "same_any": "SameAny", "to_float": "ToFloat", "float_only": "FloatOnly",
               "integral": "Integral", "predicate": "Predicate"}
BINARY_RULES = {"result_type": "ResultType", "no_bool": "NoBool", "to_float": "ToFloat", "bool_out": "BoolOut",
                "integral": "Integral", "float_only": "FloatOnly"}
DTYPE_SETS = {"all": "All", "numeric": "Numeric", "float": "Float", "integral": "Integral"}
SAVE_FLAGS = {"none": "kSaveNone", "inputs": "kSaveInputs", "outputs": "kSaveOutputs", "both": "kSaveBoth"}
VARIANTS = {"function", "method", "inplace", "property"}
FUNCTORS_HEADER = "pointwise/functors.h"
OP_KEYS = {"op", "func", "doc", "attrs", "cpu", "cuda", "functor", "dtypes", "backward", "save", "view", "python",
           "py_name", "aliases", "frontend", "unary", "binary", "test", "factory", "call", "__line__"}
FUNC_KEYS = OP_KEYS - {"op", "attrs", "cpu", "cuda", "functor", "dtypes", "backward", "save", "view"}


class SpecError(Exception):
    pass


@dataclasses.dataclass
class Field:
    name: str
    type: str
    default: str | None

    @property
    def cpp_type(self) -> str:
        return ATTR_TYPES[self.type][0]

    @property
    def cpp_init(self) -> str:
        return self.default if self.default is not None else ATTR_TYPES[self.type][1]


BUILTIN = "builtin"  # where of the entries the loader adds itself (NoAttrs): generated/op_attrs_builtin.h


def family_of(where: str) -> str:
    """The family (spec file stem) of an entry at `spec/<family>.yaml:<line>`; BUILTIN for the loader's own."""
    return BUILTIN if where == BUILTIN else os.path.basename(where.split(":")[0])[:-len(".yaml")]


@dataclasses.dataclass
class Attrs:
    name: str                 # C++ struct name, e.g. LayerNormAttrs
    fields: list[Field]
    doc: str = ""
    where: str = ""

    @property
    def family(self) -> str:
        return family_of(self.where)


@dataclasses.dataclass
class Func:
    sig: schema.Signature
    python: list[str]         # variants (function, method, inplace, __add__, ...) or ['internal']
    py_name: str
    aliases: list[str]
    frontend: str | None      # file defining the C++ frontend; None when generated or a Python adapter
    unary: str | None         # generated frontend body: dtype rule of the unary family
    binary: str | None        # ... of the binary family
    call: str | None          # Python-only adapter: the C++ expression the binding evaluates
    factory: bool             # Python adds requires_grad=False
    test: str | None
    doc: str
    where: str
    op: "Op | None" = None

    @property
    def internal(self) -> bool:
        return self.python == ["internal"]

    @property
    def generated_body(self) -> bool:
        return self.unary is not None or self.binary is not None


@dataclasses.dataclass
class Op:
    name: str
    attrs: Attrs
    cpu: str | None           # file defining cpu::<name>; None with a functor
    cuda: str | None          # file defining cuda::<name>; None: no CUDA kernel
    functor: str | None       # pw::<Functor> in pointwise/functors.h: CPU and CUDA kernels generated
    dtypes: str | None
    backward: str | dict | None  # file defining backward::<name>, or {input: formula}, or None
    save: str
    view: bool
    func: Func
    doc: str
    where: str
    index: int = 0

    @property
    def family(self) -> str:
        return family_of(self.where)

    @property
    def declared(self) -> bool:
        """Declared in generated/kernels_<family>.h: has a kernel or a backward rule."""
        return not self.view or self.backward is not None

    @property
    def cuda_generated(self) -> bool:
        return self.functor is not None and self.cuda is None

    @property
    def cpu_generated(self) -> bool:
        return self.functor is not None and self.cpu is None


@dataclasses.dataclass
class Spec:
    attrs: dict[str, Attrs]
    ops: list[Op]
    funcs: list[Func]         # every func, the ops' own included, in spec order
    families: dict[str, list[Func]]  # spec file stem -> its funcs (one generated binding file each)


class _LineLoader(yaml.SafeLoader):
    pass


def _mapping_with_line(loader, node):
    m = loader.construct_mapping(node, deep=True)
    m["__line__"] = node.start_mark.line + 1
    return m


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def _camel(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("_"))


def _parse_fields(raw: dict, where: str) -> list[Field]:
    fields = []
    for name, t in raw.items():
        if name == "__line__":
            continue
        t = str(t)
        default = None
        if "=" in t:
            t, default = (s.strip() for s in t.split("=", 1))
        if t not in ATTR_TYPES:
            raise SpecError(f"{where}: attrs field {name}: unknown type {t!r} (types: {', '.join(ATTR_TYPES)})")
        fields.append(Field(name, t, default))
    return fields


def _as_list(v) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else list(v)


def _make_func(e: dict, where: str) -> Func:
    for k in e:
        if k not in (OP_KEYS if "op" in e else FUNC_KEYS):
            raise SpecError(f"{where}: unknown key {k!r}")
    try:
        sig = schema.parse(e["func"])
    except schema.SchemaError as err:
        raise SpecError(f"{where}: {err}") from None
    python = _as_list(e.get("python"))
    if not python:
        raise SpecError(f"{where}: {sig.name}: say how Python sees it: `python: [function, method, ...]`, "
                        "or `python: internal`")
    for v in python:
        if v != "internal" and v not in VARIANTS and not re.fullmatch(r"__\w+__", v):
            raise SpecError(f"{where}: {sig.name}: unknown python variant {v!r}")
    unary, binary = e.get("unary"), e.get("binary")
    if unary is not None and unary not in UNARY_RULES:
        raise SpecError(f"{where}: unary rule {unary!r} is not one of {', '.join(UNARY_RULES)}")
    if binary is not None and binary not in BINARY_RULES:
        raise SpecError(f"{where}: binary rule {binary!r} is not one of {', '.join(BINARY_RULES)}")
    frontend, call = e.get("frontend"), e.get("call")
    if sum(x is not None for x in (frontend, call, unary, binary)) != 1:
        raise SpecError(f"{where}: {sig.name}: give exactly one of `frontend: <file>` (hand-written), "
                        "`unary:`/`binary:` (generated body) or `call:` (a Python-only adapter)")
    if "inplace" in python and call is not None:
        raise SpecError(f"{where}: {sig.name}: a Python-only adapter has no in-place variant")
    return Func(sig=sig, python=python, py_name=e.get("py_name", sig.name), aliases=_as_list(e.get("aliases")),
                frontend=frontend, unary=unary, binary=binary, call=call, factory=bool(e.get("factory", False)),
                test=e.get("test"), doc=e.get("doc", ""), where=where)


def load(spec_dir: str) -> Spec:
    attrs: dict[str, Attrs] = {}
    ops: list[Op] = []
    funcs: list[Func] = []
    families: dict[str, list[Func]] = {}
    pending: list[tuple[dict, str, Func]] = []
    for fname in sorted(os.listdir(spec_dir)):
        if not fname.endswith(".yaml"):
            continue
        family = fname[:-5]
        families[family] = []
        with open(os.path.join(spec_dir, fname)) as f:
            try:
                entries = yaml.load(f, Loader=_LineLoader) or []
            except yaml.YAMLError as err:
                raise SpecError(f"spec/{fname}: {err}") from None
        defaults: dict = {}
        for e in entries:
            where = f"spec/{fname}:{e.get('__line__', '?')}"
            if "defaults" in e:
                defaults = {k: v for k, v in e["defaults"].items() if k != "__line__"}
                continue
            if "func" in e:
                e = {**defaults, **e}
            if "attrs" in e and "op" not in e and "func" not in e:
                name = str(e["attrs"]) + "Attrs"
                if name in attrs:
                    raise SpecError(f"{where}: attrs {name} defined twice")
                attrs[name] = Attrs(name, _parse_fields(e.get("fields") or {}, where), e.get("doc", ""), where)
                continue
            if "func" not in e:
                raise SpecError(f"{where}: an entry needs `func:` (every op has a frontend)")
            fn = _make_func(e, where)
            funcs.append(fn)
            families[family].append(fn)
            if "op" in e:
                pending.append((e, where, fn))
    attrs.setdefault("NoAttrs", Attrs("NoAttrs", [], "ops without attributes", BUILTIN))
    for e, where, fn in pending:
        ops.append(_make_op(e, where, fn, attrs))
    _check_unique(ops, funcs)
    for i, op in enumerate(ops):
        op.index = i
    return Spec(attrs, ops, funcs, families)


def _make_op(e: dict, where: str, fn: Func, attrs: dict[str, Attrs]) -> Op:
    name = e["op"]
    raw = e.get("attrs")
    if raw is None:
        a = attrs["NoAttrs"]
    elif isinstance(raw, dict):
        a = Attrs(_camel(name) + "Attrs", _parse_fields(raw, where), "", where)
        if a.name in attrs:
            raise SpecError(f"{where}: {name}: inline attrs would be named {a.name}, which exists")
        attrs[a.name] = a
    else:
        if str(raw) + "Attrs" not in attrs:
            raise SpecError(f"{where}: {name}: unknown attrs {raw!r} (define `- attrs: {raw}` first)")
        a = attrs[str(raw) + "Attrs"]
    view = bool(e.get("view", False))
    functor, cpu, cuda = e.get("functor"), e.get("cpu"), e.get("cuda")
    if not view and functor is None and cpu is None:
        raise SpecError(f"{where}: {name}: needs kernels: `functor: <pw functor>` or `cpu: <file>` (and `cuda:`)")
    if functor is not None and e.get("dtypes") not in DTYPE_SETS:
        raise SpecError(f"{where}: {name}: a functor op needs `dtypes:` one of {', '.join(DTYPE_SETS)}")
    if not view and functor is None and "cuda" not in e:
        raise SpecError(f"{where}: {name}: say where the CUDA kernel is (`cuda: <file>`) or `cuda: none`")
    backward = e.get("backward")
    if isinstance(backward, dict):
        backward = {k: v for k, v in backward.items() if k != "__line__"}
        names = [p.name for p in fn.sig.tensor_params]
        for k in backward:
            if k not in names:
                raise SpecError(f"{where}: {name}: backward formula for {k!r}, which is not an input ({names})")
        save = _derived_save(backward, names)
    else:
        backward = None if backward in (None, "none") else backward
        save = e.get("save", "none")
        if save not in SAVE_FLAGS:
            raise SpecError(f"{where}: {name}: save must be one of {', '.join(SAVE_FLAGS)}")
    op = Op(name=name, attrs=a, cpu=cpu, cuda=None if cuda in (None, "none") else cuda, functor=functor,
            dtypes=e.get("dtypes"), backward=backward, save=save, view=view, func=fn, doc=e.get("doc", ""),
            where=where)
    fn.op = op
    return op


def _derived_save(formulas: dict, inputs: list[str]) -> str:
    text = " ".join(formulas.values())
    ins = any(re.search(rf"\b{n}\b", text) for n in inputs)
    outs = re.search(r"\bresult\b", text) is not None
    return {(False, False): "none", (True, False): "inputs", (False, True): "outputs",
            (True, True): "both"}[(ins, outs)]


def _check_unique(ops: list[Op], funcs: list[Func]) -> None:
    seen: dict[str, str] = {}
    for op in ops:
        if op.name in seen:
            raise SpecError(f"{op.where}: op {op.name} is also defined at {seen[op.name]}")
        seen[op.name] = op.where
    sigs: dict[tuple, str] = {}
    for fn in funcs:
        key = (fn.sig.name, fn.sig.overload, tuple(p.type for p in fn.sig.params))
        if key in sigs:
            raise SpecError(f"{fn.where}: {fn.sig.text} duplicates {sigs[key]}")
        sigs[key] = fn.where


# ---- checks against the sources (run by the generator and by tests/python/test_op_spec.py) ----------

def kernel_files(spec: Spec) -> dict[str, dict[str, list[str]]]:
    """csrc file -> family -> the ops whose kernels or backward rule the file defines (spec order)."""
    files: dict[str, dict[str, list[str]]] = {}
    for op in spec.ops:
        for rel in (op.cpu, op.cuda, op.backward if isinstance(op.backward, str) else None):
            if rel is not None:
                names = files.setdefault(rel, {}).setdefault(op.family, [])
                if op.name not in names:
                    names.append(op.name)
    return files


def _definition(kind: str, name: str, attrs: str) -> re.Pattern:
    """A kernel or backward rule definition: `void [cpu::]name(const KernelArgs& a, const XAttrs& b)`."""
    first = r"const\s+KernelArgs\s*&" if kind != "backward" else r"BackwardCtx\s*&"
    return re.compile(rf"^void\s+(?:{kind}::)?{name}\s*\(\s*{first}[^,)]*,\s*const\s+{attrs}\s*&", re.M)


def check_sources(spec: Spec, csrc: str, root: str) -> list[str]:
    """Problems a build would only find late (or only with CUDA): missing kernels, rules, tests."""
    problems: list[str] = []
    cache: dict[str, str] = {}

    def text(rel: str, base: str = csrc) -> str | None:
        path = os.path.join(base, rel)
        if path not in cache:
            cache[path] = open(path).read() if os.path.exists(path) else None
        return cache[path]

    functors = text(FUNCTORS_HEADER) or ""
    for op in spec.ops:
        at = op.attrs.name
        for kind, rel in (("cpu", op.cpu), ("cuda", op.cuda)):
            if rel is None:
                continue
            src = text(rel)
            if src is None:
                problems.append(f"{op.where}: {op.name}: {kind} kernel file csrc/{rel} does not exist")
            elif not _definition(kind, op.name, at).search(src):
                problems.append(f"{op.where}: {op.name}: csrc/{rel} defines no `void {op.name}(const KernelArgs&, "
                                f"const {at}&)` ({kind} kernel named in the spec)")
        if op.functor and not re.search(rf"\bstruct\s+{op.functor}\b", functors):
            problems.append(f"{op.where}: {op.name}: functor pw::{op.functor} not found in csrc/{FUNCTORS_HEADER}")
        if isinstance(op.backward, str):
            src = text(op.backward)
            if src is None:
                problems.append(f"{op.where}: {op.name}: backward file csrc/{op.backward} does not exist")
            elif not _definition("backward", op.name, at).search(src):
                problems.append(f"{op.where}: {op.name}: csrc/{op.backward} defines no `void {op.name}(BackwardCtx&, "
                                f"const {at}&)`")
    # Note [Per-family kernel headers]: a kernel file includes the declarations of its own families only,
    # so removing or changing an op recompiles that family's kernels, not every CPU and CUDA kernel.
    for rel, families in kernel_files(spec).items():
        src = text(rel)
        for family, names in families.items():
            header = f"generated/kernels_{family}.h"
            if src is not None and f'#include "{header}"' not in src:
                ops = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
                problems.append(f"spec/{family}.yaml: csrc/{rel} defines kernels or backward rules of {ops} "
                                f"but does not include \"{header}\" (their declarations)")
    for fn in spec.funcs:
        if fn.frontend:
            src = text(fn.frontend)
            if src is None:
                problems.append(f"{fn.where}: {fn.sig.name}: frontend file csrc/{fn.frontend} does not exist")
            elif not re.search(rf"^[A-Za-z][^;(=\n]*\b{fn.sig.name}\(", src, re.M):
                problems.append(f"{fn.where}: {fn.sig.name}: csrc/{fn.frontend} does not define {fn.sig.name}(...)")
        if not fn.internal and fn.call is None:
            if fn.test is None:
                problems.append(f"{fn.where}: {fn.sig.name}: exposed to Python but names no `test:` file")
            else:
                src = text(fn.test, root)
                if src is None:
                    problems.append(f"{fn.where}: {fn.sig.name}: test file runtime/{fn.test} does not exist")
                elif not re.search(rf"\b({fn.py_name}|{fn.sig.name})\b", src):
                    problems.append(f"{fn.where}: {fn.sig.name}: runtime/{fn.test} never mentions {fn.py_name}")
    return problems
