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
    for rel, text in [("ops/toy.cpp", "Tensor toy(const Tensor& self) { return self; }\n"),
                      ("cpu/toy.cpp", "void toy(const KernelArgs& args, const NoAttrs& attrs) {}\n"),
                      ("cuda/toy.cu", "void other(const KernelArgs& args, const NoAttrs& attrs) {}\n")]:
        (csrc / rel).parent.mkdir(parents=True, exist_ok=True)
        (csrc / rel).write_text(text)
    shutil.copytree(RUNTIME / "csrc" / "pointwise", csrc / "pointwise")
    spec = spec_mod.load(str(_spec_dir(tmp_path, entry)))
    problems = spec_mod.check_sources(spec, str(csrc), str(tmp_path))
    assert problems == [f"spec/toy.yaml:1: toy: csrc/cuda/toy.cu defines no `void toy(const KernelArgs&, "
                        "const NoAttrs&)` (cuda kernel named in the spec)"]
