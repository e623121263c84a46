"""The differential op table: runs one function against ember and torch side by side.

An OpCase names a function written once for both libraries, `fn(lib, *tensors)`, where lib is the
`ember` or `torch` module (their APIs match). `check_case` draws random inputs from a seed that is
fixed per case (EMBER_TEST_FUZZ=1 draws fresh ones; the seed is in every failure message), builds
contiguous and non-contiguous copies, runs both libraries and hands both outcomes to the shared
comparison engine (`numcheck`: tolerances by dtype, NaN/inf positions, gradients of a seeded
upstream gradient, inputs left unchanged, exception parity). Float64 finite differences live in
`finite_difference_check`.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import numpy as np
import torch

import ember
from numcheck import Tolerance, case_seed, compare, compare_outcomes, replay_hint, run, tolerance_for
from numcheck import arrays
from numcheck.arrays import np_dtype as _np_dtype, random_array  # noqa: F401 (re-exported)
from numcheck.runner import as_tuple, dtype_name, to_numpy as _lib_to_numpy

# The float32 reference must be float32: torch's cuDNN convolutions default to TF32 (ember's im2col +
# cuBLAS path follows the matmul TF32 switch, off by default), which put conv_transpose3d 1e-3 off on an H100.
torch.backends.cudnn.allow_tf32 = False

FLOAT_DTYPES = ["float32", "float64", "float16", "bfloat16"]
INT_DTYPES = list(arrays.INT_DTYPES)
ALL_DTYPES = FLOAT_DTYPES + INT_DTYPES + ["bool"]


def devices() -> list[str]:
    devs = ["cpu"]
    cuda = getattr(ember, "cuda", None)
    if cuda is not None and cuda.is_available() and torch.cuda.is_available():
        devs.append("cuda")
    return devs


@dataclasses.dataclass
class OpCase:
    name: str
    fn: Callable[..., Any]                     # fn(lib, *tensors) -> tensor or tuple of tensors
    shapes: Sequence[Sequence[tuple]]          # each entry: the shapes of the inputs of one call
    dtypes: Sequence[str] = ("float32", "float64")
    grad: bool = True                          # also compare gradients (float dtypes only)
    low: float = -3.0                          # input value range
    high: float = 3.0
    make_inputs: Callable | None = None        # make_inputs(rng, shapes, dtype) -> list[np.ndarray]
    grad_inputs: Sequence[int] | None = None   # which inputs get gradients (default: all float ones)
    tol: dict | None = None                    # per-dtype (rtol, atol) overrides
    noncontiguous: bool = True
    gradcheck: bool = True                     # float64 finite-difference check
    input_dtypes: Sequence[str] | None = None  # per-input dtype overrides (e.g. int64 indices)

    def __str__(self):
        return self.name


def to_torch(a: np.ndarray, dtype: str, device="cpu") -> torch.Tensor:
    t = torch.from_numpy(np.array(a, copy=True).reshape(np.shape(a)))  # a copy: torch and ember never share memory
    return t.to(getattr(torch, dtype)).to(device)


def to_ember(a: np.ndarray, dtype: str, device="cpu", noncontiguous=False):
    if noncontiguous and a.ndim >= 1 and a.size > 1:
        # Same values, non-unit strides: every other element of a twice-as-wide buffer.
        wide = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), dtype=a.dtype)
        wide[..., ::2] = a
        t = ember.from_numpy(wide)
        t = ember.as_strided(t, a.shape, [s * 2 if i == a.ndim - 1 else s for i, s in enumerate(t.stride())])
        if dtype == "bfloat16":
            t = t.to(ember.bfloat16)
    else:
        t = ember.from_numpy(np.array(a, copy=True).reshape(np.shape(a)))
        if dtype == "bfloat16":
            t = t.to(ember.bfloat16)
    if device != "cpu":
        t = t.to(device)
    return t


def random_pair(rng, shape, dtype="float64", device="cpu", grad=True, bound=2.0):
    """The same uniform(-bound, bound) values as a torch and an ember tensor (leaves needing grad)."""
    a = rng.uniform(-bound, bound, size=shape).astype(np.float32 if dtype == "bfloat16" else dtype)
    t, e = to_torch(a, dtype, device), to_ember(a, dtype, device)
    if grad:
        t.requires_grad_(True)
        e.requires_grad_(True)
    return t, e


def to_numpy(t) -> np.ndarray:
    return _lib_to_numpy(torch if isinstance(t, torch.Tensor) else ember, t)


def assert_close(actual, expected, dtype: str, what: str, tol: dict | None = None):
    """Compares an ember result to torch's: same shape, dtype, NaN/inf positions, values within tol
    (by the expected dtype: the engine's table unless `tol` overrides it)."""
    expected_dtype = dtype_name(expected)
    result = compare(to_numpy(actual), to_numpy(expected), what=what, actual_dtype=dtype_name(actual),
                     expected_dtype=expected_dtype, tol=tolerance_for(expected_dtype, tol))
    if not result.ok:
        raise AssertionError(result.message + replay_hint())


def _shapes_key(shapes) -> str:
    return "x".join(str(list(s)) for s in shapes)


def check_case(case: OpCase, shapes, dtype: str, device: str = "cpu", noncontiguous=False, seed=None):
    """Runs one (case, shapes, dtype, layout, device) combination; raises AssertionError on mismatch."""
    if seed is None:
        seed = case_seed("check_case", case.name, _shapes_key(shapes), dtype, device, noncontiguous)
    rng = np.random.default_rng(seed)
    where = (f"[{case.name}] shapes={list(shapes)} dtype={dtype} device={device} noncontig={noncontiguous} "
             f"seed={seed}{replay_hint()}")
    in_dtypes = list(case.input_dtypes) if case.input_dtypes else [dtype] * len(shapes)
    in_dtypes = [dtype if d is None else d for d in in_dtypes]
    if case.make_inputs:
        arrays = case.make_inputs(rng, shapes, dtype)
    else:
        arrays = [random_array(rng, s, d, case.low, case.high) for s, d in zip(shapes, in_dtypes)]
    in_dtypes = [d if not isinstance(a, np.ndarray) or a.dtype.kind == "f" or d in ("bool",) + tuple(INT_DTYPES)
                 else str(a.dtype) for a, d in zip(arrays, in_dtypes)]
    want_grad = case.grad and dtype in FLOAT_DTYPES
    grad_ids = [i for i, d in enumerate(in_dtypes) if d in FLOAT_DTYPES] if case.grad_inputs is None else list(case.grad_inputs)
    grad_ids = grad_ids if want_grad else []
    grad_seed = int(rng.integers(2**31))
    tt = [to_torch(a, d, device) for a, d in zip(arrays, in_dtypes)]
    et = [to_ember(a, d, device, noncontiguous) for a, d in zip(arrays, in_dtypes)]
    expected = run(torch, functools.partial(case.fn, torch), tt, grad_ids=grad_ids, grad_seed=grad_seed,
                   device=device)
    roots = [k for k, needs in enumerate(expected.output_requires_grad) if needs]
    actual = run(ember, functools.partial(case.fn, ember), et, grad_ids=grad_ids, grad_seed=grad_seed,
                 device=device, backward_outputs=roots)
    compare_outcomes(actual, expected, tol=case.tol).raise_if_failed(where)


def finite_difference_check(case: OpCase, shapes, eps=1e-6, atol=1e-5, rtol=1e-3, seed=None):
    """Float64 central differences of sum(out * w) against ember's analytic gradient."""
    if seed is None:
        seed = case_seed("gradcheck", case.name, _shapes_key(shapes))
    rng = np.random.default_rng(seed)
    where = f"[{case.name}] gradcheck shapes={list(shapes)} seed={seed}{replay_hint()}"
    in_dtypes = list(case.input_dtypes) if case.input_dtypes else ["float64"] * len(shapes)
    in_dtypes = ["float64" if d is None else d for d in in_dtypes]
    arrays = (case.make_inputs(rng, shapes, "float64") if case.make_inputs
              else [random_array(rng, s, d, case.low, case.high) for s, d in zip(shapes, in_dtypes)])
    grad_ids = ([i for i, a in enumerate(arrays) if a.dtype == np.float64]
                if case.grad_inputs is None else list(case.grad_inputs))
    outs0 = as_tuple(case.fn(ember, *[ember.from_numpy(a.copy()) for a in arrays]))
    weights = [rng.uniform(-1, 1, size=tuple(o.shape)) for o in outs0 if is_float_tensor(o)]

    def objective(arrs):
        outs = [o for o in as_tuple(case.fn(ember, *[ember.from_numpy(a) for a in arrs])) if is_float_tensor(o)]
        return sum(float((to_numpy(o) * w).sum()) for o, w in zip(outs, weights))

    ets = [ember.from_numpy(a.copy()) for a in arrays]
    for i in grad_ids:
        ets[i].requires_grad_(True)
    outs = [o for o in as_tuple(case.fn(ember, *ets)) if is_float_tensor(o)]
    for o, w in zip(outs, weights):
        o.backward(ember.from_numpy(w.copy()), retain_graph=True)
    for i in grad_ids:
        analytic = to_numpy(ets[i].grad) if ets[i].grad is not None else np.zeros_like(arrays[i])
        numeric = np.zeros_like(arrays[i])
        flat = arrays[i].reshape(-1)
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            plus = objective(arrays)
            flat[j] = orig - eps
            minus = objective(arrays)
            flat[j] = orig
            numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        result = compare(analytic, numeric, what=f"input {i} analytic vs numeric gradient",
                         names=("analytic", "numeric"), tol=Tolerance(rtol=rtol, atol=atol))
        assert result.ok, f"{where}: {result.message}"


def is_float_tensor(o) -> bool:
    return hasattr(o, "dtype") and getattr(o.dtype, "is_floating_point", False)


def params(cases: Sequence[OpCase]):
    """pytest parameters: one per (case, shapes, dtype, layout, device)."""
    import pytest
    out = []
    for case in cases:
        for shapes in case.shapes:
            for dtype in case.dtypes:
                for device in devices():
                    layouts = [False, True] if case.noncontiguous else [False]
                    for nc in layouts:
                        tag = f"{case.name}-{'x'.join(str(list(s)) for s in shapes)}-{dtype}-{device}{'-nc' if nc else ''}"
                        out.append(pytest.param(case, shapes, dtype, device, nc, id=tag))
    return out


def gradcheck_params(cases: Sequence[OpCase]):
    import pytest
    out = []
    for case in cases:
        if not (case.grad and case.gradcheck):
            continue
        small = [s for s in case.shapes if all(int(np.prod(x)) <= 24 for x in s)][:2]
        for shapes in small:
            out.append(pytest.param(case, shapes, id=f"{case.name}-{'x'.join(str(list(s)) for s in shapes)}"))
    return out


def op_tests(cases: Sequence[OpCase]):
    """The two tests of a table of cases, for a test module to bind under these names:
    `test_matches_torch, test_gradcheck = op_tests(CASES)` (values, gradients and errors against
    torch on every dtype/device/layout; float64 finite differences)."""
    import pytest

    @pytest.mark.parametrize("case,shapes,dtype,device,noncontig", params(cases))
    def test_matches_torch(case, shapes, dtype, device, noncontig):
        check_case(case, shapes, dtype, device, noncontig)

    @pytest.mark.parametrize("case,shapes", gradcheck_params(cases))
    def test_gradcheck(case, shapes):
        finite_difference_check(case, shapes)

    return test_matches_torch, test_gradcheck
