"""pybind11 outputs: one binding file per spec file (python_<family>.cpp) with each func's Python
variants (function, Tensor method, in-place method, operators, properties), defaults from the spec."""
from __future__ import annotations

from emit_cpp import HEADER
from schema import Param
from spec import Func, Spec


def bindings_h(spec: Spec) -> str:
    out = [HEADER, "#pragma once\n#include \"python/bindings.h\"\n", "namespace ember::python {\n"]
    out += [f"void bind_{family}(py::module_& m, py::class_<Tensor>& t);" for family in spec.families]
    out.append("\n// Registers every generated function and Tensor method, spec file by spec file.")
    out.append("inline void bind_generated(py::module_& m) {")
    out += [f"  bind_{family}(m, tensor_class());" for family in spec.families]
    out += ["}\n", "}  // namespace ember::python", ""]
    return "\n".join(out)


def _py_name(p: Param) -> str:
    return "input" if p.name == "self" else p.name


def _annotations(fn: Func, params: list[Param], skip_first: bool) -> list[str]:
    """py::arg annotations in lambda order (the method form skips self, which pybind names; py::args
    takes none and makes everything after it keyword-only)."""
    anns, kw_started = [], any(p.type == "int..." for p in params)
    for i, p in enumerate(params):
        if i == 0 and skip_first:
            continue
        if p.type == "int...":
            anns.append(f'py::arg("{p.name}") = py::none()')  # the size= keyword twin of the varargs
            continue
        if p.kw_only and not kw_started:
            anns.append("py::kw_only()")
            kw_started = True
        d = p.py_default()
        anns.append(f'py::arg("{_py_name(p)}")' + (f" = {d}" if d is not None else ""))
    if fn.factory:
        if not kw_started:
            anns.append("py::kw_only()")
        anns.append('py::arg("requires_grad") = false')
    return anns


def _lambda_params(fn: Func, params: list[Param], method: bool) -> list[str]:
    out = []
    for i, p in enumerate(params):
        t = p.cpp.py
        if i == 0 and method:
            t = "Tensor&" if p.type == "Tensor(a!)" else "const Tensor&"
        out.append(f"{t} a{i}")
        if p.type == "int...":
            out.append(f"py::handle a{i}_kw")
    if fn.factory:
        out.append("bool requires_grad")
    return out


def _args(fn: Func, params: list[Param]) -> list[str]:
    args = []
    for i, p in enumerate(params):
        conv = p.cpp.to_cpp
        if p.type == "int...":
            args.append(f'sizes_or_kw(a{i}, a{i}_kw, "{fn.py_name}")')
        else:
            args.append(conv.replace("{}", f"a{i}").replace("{name}", fn.py_name))
    return args


def _result(fn: Func, call: str) -> str:
    rets = fn.sig.returns
    if not rets:
        return f"{call};"
    if len(rets) == 1 and rets[0].type == "Tensor[]":
        value = f"to_tuple({call})"
    elif len(rets) > 1 and rets[0].name:
        value = f'return_tuple("{fn.py_name}", {call})'
    else:
        value = call
    if fn.factory:
        return f"return requires_grad_if(requires_grad, {value});"
    return f"return {value};"


def _body(fn: Func, target: str, params: list[Param], swap: bool = False) -> str:
    args = _args(fn, params)
    if fn.call is not None:
        lets = [f"auto&& {p.name} = {a};" for p, a in zip(params, args)]
        return " ".join(lets + [_result(fn, fn.call)])
    if swap:
        args[0], args[1] = args[1], args[0]
        args = args[:2]
    return _result(fn, f"ember::{target}({', '.join(args)})")


def _ret_type(fn: Func) -> str:
    r = fn.sig.returns
    if len(r) == 1 and r[0].type in ("Tensor(a!)", "Tensor", "Tensor(a)") and not fn.factory:
        return " -> Tensor"
    return ""


def _def(obj: str, name: str, fn: Func, params: list[Param], method: bool, target: str, extra: list[str],
         swap: bool = False) -> str:
    lparams = ", ".join(_lambda_params(fn, params, method))
    body = _body(fn, target, params, swap)
    anns = extra if extra else _annotations(fn, params, method)
    tail = "".join(f",\n      {a}" for a in anns)
    return f'  {obj}.def("{name}", []({lparams}){_ret_type(fn)} {{ {body} }}{tail});'


def _func_bindings(fn: Func) -> list[str]:
    out = [f"  // {fn.where}: {fn.sig.text}"]
    params = list(fn.sig.params)
    names = [fn.py_name] + fn.aliases
    cpp = fn.sig.name
    inplace_target = cpp if cpp.endswith("_") else f"{cpp}_"
    for v in fn.python:
        if v == "function":
            out += [_def("m", n, fn, params, False, cpp, []) for n in names]
        elif v == "method":
            out += [_def("t", n, fn, params, True, cpp, []) for n in names]
        elif v == "inplace":
            inplace_params = [Param("Tensor(a!)", params[0].name, None, False)] + params[1:]
            out += [_def("t", f"{n}_", fn, inplace_params, True, f"{cpp}_", []) for n in names]
        elif v == "property":
            out.append(f'  t.def_property_readonly("{fn.py_name}", [](const Tensor& a0) '
                       f'{{ return ember::{cpp}(a0); }});')
        elif v.startswith("__i") and v not in ("__invert__",):
            p0 = Param("Tensor(a!)", params[0].name, None, False)
            out.append(_def("t", v, fn, [p0, params[1]], True, inplace_target, ["py::is_operator()"]))
        elif v.startswith("__r") and v not in ("__round__",):
            out.append(_def("t", v, fn, params[:2], True, cpp, ["py::is_operator()"], swap=True))
        else:
            unary = len(fn.sig.tensor_params) == 1
            out.append(_def("t", v, fn, params[:1] if unary else params[:2], True, cpp,
                            [] if unary else ["py::is_operator()"]))
    return out


def family_cpp(spec: Spec, family: str) -> str:
    funcs = [fn for fn in spec.families[family] if not fn.internal]
    out = [HEADER, f"// Python bindings of spec/{family}.yaml: ember.<function> and Tensor methods.",
           "#include \"generated/python_bindings.h\"\n#include \"ops/ops.h\"\n", "namespace ember::python {\n",
           f"void bind_{family}(py::module_& m, py::class_<Tensor>& t) {{"]
    if not funcs:
        out.append("  (void)m;\n  (void)t;")
    named = {}
    for fn in funcs:
        if len(fn.sig.returns) > 1 and fn.sig.returns[0].name:
            named[fn.py_name] = " ".join(r.name for r in fn.sig.returns)
    for name, fields in named.items():
        out.append(f'  register_return_type(m, "{name}", "{fields}");')
    for fn in funcs:
        out += _func_bindings(fn)
    out += ["}\n", "}  // namespace ember::python", ""]
    return "\n".join(out)
