"""The op spec (runtime/spec/*.yaml) against the sources and the built module, in CPU-only CI:
every op is exposed to Python or marked internal, and every kernel (CUDA ones included), backward
rule, frontend and test an entry names exists."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

import ember

RUNTIME = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(RUNTIME / "codegen"))
import generate  # noqa: E402
import spec as spec_mod  # noqa: E402

SPEC = spec_mod.load(str(RUNTIME / "spec"))


def test_spec_matches_the_sources():
    problems = spec_mod.check_sources(SPEC, str(RUNTIME / "csrc"), str(RUNTIME))
    assert not problems, "\n".join(problems)


def test_every_op_is_exposed_or_internal():
    for op in SPEC.ops:
        assert op.func.python, f"{op.where}: {op.name} is neither exposed to Python nor marked internal"


def test_exposed_names_exist_in_ember():
    missing = []
    for fn in SPEC.funcs:
        for name in [fn.py_name] + fn.aliases:
            if "function" in fn.python and not hasattr(ember._C, name):
                missing.append(f"{fn.where}: ember.{name}")
            if ("method" in fn.python or "property" in fn.python) and not hasattr(ember.Tensor, name):
                missing.append(f"{fn.where}: Tensor.{name}")
            if "inplace" in fn.python and not hasattr(ember.Tensor, name + "_"):
                missing.append(f"{fn.where}: Tensor.{name}_")
    assert not missing, "\n".join(missing)


def _spec_dir(tmp_path: Path, entry: str) -> Path:
    d = tmp_path / "spec"
    d.mkdir()
    (d / "toy.yaml").write_text(entry)
    return d


def test_unexposed_op_is_rejected(tmp_path):
    entry = "- op: toy\n  func: toy(Tensor self) -> Tensor\n  frontend: ops/toy.cpp\n  cpu: cpu/toy.cpp\n  cuda: none\n"
    with pytest.raises(spec_mod.SpecError, match="toy: say how Python sees it"):
        spec_mod.load(str(_spec_dir(tmp_path, entry)))


def test_missing_cuda_kernel_is_reported(tmp_path):
    # The CUDA file exists but defines no kernel for the op: a link error in CUDA builds only,
    # caught here without CUDA.
    entry = ("- op: toy\n  func: toy(Tensor self) -> Tensor\n  frontend: ops/toy.cpp\n  cpu: cpu/toy.cpp\n"
             "  cuda: cuda/toy.cu\n  python: internal\n")
    csrc = tmp_path / "csrc"
    include = '#include "generated/kernels_toy.h"\n'
    for rel, text in [("ops/toy.cpp", "Tensor toy(const Tensor& self) { return self; }\n"),
                      ("cpu/toy.cpp", include + "void toy(const KernelArgs& args, const NoAttrs& attrs) {}\n"),
                      ("cuda/toy.cu", include + "void other(const KernelArgs& args, const NoAttrs& attrs) {}\n")]:
        (csrc / rel).parent.mkdir(parents=True, exist_ok=True)
        (csrc / rel).write_text(text)
    shutil.copytree(RUNTIME / "csrc" / "pointwise", csrc / "pointwise")
    spec = spec_mod.load(str(_spec_dir(tmp_path, entry)))
    problems = spec_mod.check_sources(spec, str(csrc), str(tmp_path))
    assert problems == [f"spec/toy.yaml:1: toy: csrc/cuda/toy.cu defines no `void toy(const KernelArgs&, "
                        "const NoAttrs&)` (cuda kernel named in the spec)"]


def test_kernel_file_without_its_family_header_is_reported(tmp_path):
    entry = ("- op: toy\n  func: toy(Tensor self) -> Tensor\n  frontend: ops/toy.cpp\n  cpu: cpu/toy.cpp\n"
             "  cuda: none\n  python: internal\n")
    csrc = tmp_path / "csrc"
    for rel, text in [("ops/toy.cpp", "Tensor toy(const Tensor& self) { return self; }\n"),
                      ("cpu/toy.cpp", '#include "generated/kernels.h"\n'
                                      "void toy(const KernelArgs& args, const NoAttrs& attrs) {}\n")]:
        (csrc / rel).parent.mkdir(parents=True, exist_ok=True)
        (csrc / rel).write_text(text)
    shutil.copytree(RUNTIME / "csrc" / "pointwise", csrc / "pointwise")
    spec = spec_mod.load(str(_spec_dir(tmp_path, entry)))
    problems = spec_mod.check_sources(spec, str(csrc), str(tmp_path))
    assert problems == ['spec/toy.yaml: csrc/cpu/toy.cpp defines kernels or backward rules of toy but does not '
                        'include "generated/kernels_toy.h" (their declarations)']


@pytest.mark.parametrize("removed", ["exp2", "prod", "roll"])
def test_removing_an_op_leaves_other_families_kernel_headers_alone(removed):
    # Note [Per-family kernel headers]: what a suite goal's base tree (one op removed) rebuilds.
    before = generate.outputs(SPEC)
    spec = spec_mod.load(str(RUNTIME / "spec"))
    (op,) = [o for o in spec.ops if o.name == removed]
    spec.ops.remove(op)
    after = generate.outputs(spec)
    changed = {name for name in before if before[name] != after[name] and name.startswith(("kernels_", "op_attrs_"))}
    assert changed <= {f"kernels_{op.family}.h", f"op_attrs_{op.family}.h"}
    assert f"kernels_{op.family}.h" in changed
    kernel_tus = {"pointwise_cpu.cpp", "pointwise_cuda.cu"}
    if op.family != "elementwise":  # the generated pointwise kernels include only what they define
        assert all(before[name] == after[name] for name in kernel_tus)
