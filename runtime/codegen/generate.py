"""Generates ember's op boilerplate from runtime/spec/*.yaml (CMake runs it; see runtime/CMakeLists.txt).

    python runtime/codegen/generate.py --spec runtime/spec --csrc runtime/csrc --out <dir>   # write files
    python runtime/codegen/generate.py --spec runtime/spec --csrc runtime/csrc --check       # checks only

The checks (kernels, backward rules, frontends and tests that the spec names must exist) fail the
build with the spec line to fix. Files are rewritten only when their text changes, so an unrelated
spec edit does not rebuild everything.
"""
from __future__ import annotations

import argparse
import os
import sys

import emit_cpp
import emit_python
import spec as spec_mod


def outputs(spec: spec_mod.Spec) -> dict[str, str]:
    files = {
        "op_ids.h": emit_cpp.op_ids_h(spec),
        "op_attrs.h": emit_cpp.op_attrs_h(spec),
        "kernels.h": emit_cpp.kernels_h(spec),
        "op_table.cpp": emit_cpp.op_table_cpp(spec),
        "functions.h": emit_cpp.functions_h(spec),
        "functions.cpp": emit_cpp.functions_cpp(spec),
        "backward_formulas.cpp": emit_cpp.backward_formulas_cpp(spec),
        "pointwise_cpu.cpp": emit_cpp.pointwise_cpu_cpp(spec),
        "pointwise_cuda.cu": emit_cpp.pointwise_cuda_cu(spec),
        "python_bindings.h": emit_python.bindings_h(spec),
    }
    files[f"op_attrs_{spec_mod.BUILTIN}.h"] = emit_cpp.op_attrs_family_h(spec, spec_mod.BUILTIN)
    for family in spec.families:
        files[f"python_{family}.cpp"] = emit_python.family_cpp(spec, family)
        files[f"op_attrs_{family}.h"] = emit_cpp.op_attrs_family_h(spec, family)
        files[f"kernels_{family}.h"] = emit_cpp.kernels_family_h(spec, family)
    return files


def write_if_changed(path: str, text: str) -> None:
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return
    with open(path, "w") as f:
        f.write(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--csrc", required=True)
    ap.add_argument("--out")
    ap.add_argument("--check", action="store_true", help="only check the spec against the sources")
    args = ap.parse_args(argv)
    try:
        spec = spec_mod.load(args.spec)
        files = outputs(spec)
    except (spec_mod.SpecError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    problems = spec_mod.check_sources(spec, args.csrc, os.path.dirname(os.path.abspath(args.csrc)))
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if problems:
        return 1
    if args.out and not args.check:
        os.makedirs(args.out, exist_ok=True)
        for name, text in files.items():
            write_if_changed(os.path.join(args.out, name), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
