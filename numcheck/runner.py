"""Running one function on a library module, and judging one run against another.

`run(lib, fn, tensors)` works for `ember` and `torch` alike (their APIs match): it records an
`Outcome` (outputs as numpy, input gradients for a seeded upstream gradient, the inputs before and
after the call, or the exception raised). `compare_outcomes(actual, expected)` is the verdict:
exception parity, forward outputs, gradients, and inputs left as the reference leaves them.
"""

from __future__ import annotations

import importlib
import re
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .arrays import upstream_gradient
from .compare import Comparison, compare
from .tolerances import EXACT, tolerance_for

# Exception families: where the reference raises one of these, the tested library must raise one of
# the same family (NotImplementedError counts as RuntimeError, its base). Others: any exception.
FAMILIES = ("TypeError", "ValueError", "IndexError", "RuntimeError")
DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


@dataclass
class Raised:
    """An exception as data: where it was raised ("call", "backward", ...), its class, message."""

    where: str
    type: str
    families: list[str]
    message: str
    traceback: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, exc: BaseException, where: str) -> Raised:
        kind = type(exc)
        names = {c.__name__ for c in kind.__mro__ if c.__module__ == "builtins"}
        module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
        frames = traceback.format_exception(kind, exc, exc.__traceback__, limit=-4)
        return cls(
            where,
            module + kind.__qualname__,
            [f for f in FAMILIES if f in names],
            str(exc)[:2000],
            [line.rstrip() for chunk in frames for line in chunk.splitlines()][-12:],
        )

    def describe(self) -> str:
        return f"{self.type}: {self.message}"

    def matches(self, reference: Raised) -> bool:
        """Same family as the reference's exception (any exception when it has no family)."""
        return not reference.families or bool(set(self.families) & set(reference.families))


@dataclass
class Outcome:
    """What one library did with one set of inputs; every array is numpy, bfloat16 as float32."""

    outputs: list[np.ndarray] = field(default_factory=list)
    output_dtypes: list[str] = field(default_factory=list)  # tensor dtype name, or "python"
    output_requires_grad: list[bool] = field(default_factory=list)
    backward: bool = False  # whether gradients were computed
    grads: list[np.ndarray | None] = field(default_factory=list)  # one per input
    grad_dtypes: list[str | None] = field(default_factory=list)
    inputs_before: list[np.ndarray] = field(default_factory=list)
    inputs_after: list[np.ndarray] = field(default_factory=list)
    raised: Raised | None = None
    seconds: float | None = None  # wall time of the forward call
    notes: list[str] = field(default_factory=list)


def dtype_name(tensor) -> str:
    return str(tensor.dtype).rsplit(".", 1)[-1]


def is_tensor(lib, value) -> bool:
    return isinstance(value, lib.Tensor)


def to_numpy(lib, tensor) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if dtype_name(tensor) == "bfloat16":
        tensor = tensor.to(lib.float32)
    return np.array(tensor.numpy(), copy=True)


def make_tensor(lib, array: np.ndarray, dtype: str | None = None, device: str = "cpu"):
    """A tensor of `lib` holding a copy of `array` (reshape keeps 0-d arrays 0-d)."""
    tensor = lib.from_numpy(np.array(array, copy=True).reshape(np.shape(array)))
    if dtype is not None and dtype_name(tensor) != dtype:
        tensor = tensor.to(getattr(lib, dtype))
    return tensor if device == "cpu" else tensor.to(device)


def as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def resolve(expr: str, namespace: dict) -> Any:
    """A dotted path (importing submodules as needed, e.g. ember.contrib.x.f) or an expression."""
    if DOTTED.match(expr):
        parts = expr.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for name in parts[cut:]:
                obj = getattr(obj, name)
            return obj
    return eval(expr, dict(namespace))


def run(
    lib,
    fn: Callable,
    tensors: list,
    *,
    grad_ids: Sequence[int] = (),
    grad_seed: int = 0,
    device: str = "cpu",
    backward_outputs: Sequence[int] | None = None,
    record_inputs: bool = True,
) -> Outcome:
    """Call fn(*tensors); with grad_ids, backpropagate a seeded gradient from every output that
    requires grad (or those in backward_outputs) and collect the inputs' gradients. With
    record_inputs, keep the inputs before and after the call (to catch in-place mutation)."""

    def snapshot() -> list[np.ndarray]:
        return [to_numpy(lib, t) for t in tensors] if record_inputs else []

    outcome = Outcome(inputs_before=snapshot())
    for i in grad_ids:
        tensors[i].requires_grad_(True)
    try:
        start = time.perf_counter()
        result = fn(*tensors)
        outcome.seconds = time.perf_counter() - start
    except Exception as exc:
        outcome.raised = Raised.of(exc, "call")
        outcome.inputs_after = snapshot()
        return outcome
    outs = as_tuple(result)
    for out in outs:
        if is_tensor(lib, out):
            outcome.outputs.append(to_numpy(lib, out))
            outcome.output_dtypes.append(dtype_name(out))
            outcome.output_requires_grad.append(bool(out.requires_grad))
        else:
            outcome.outputs.append(np.asarray(out))
            outcome.output_dtypes.append("python")
            outcome.output_requires_grad.append(False)
    roots = [k for k, needs in enumerate(outcome.output_requires_grad) if needs]
    if backward_outputs is not None:
        roots = [k for k in backward_outputs if k < len(outs) and is_tensor(lib, outs[k])]
    if grad_ids and roots:
        outcome.backward = True
        try:
            for k in roots:
                grad = upstream_gradient(grad_seed, k, outs[k].shape, dtype_name(outs[k]))
                outs[k].backward(
                    make_tensor(lib, grad, dtype_name(outs[k]), device), retain_graph=True
                )
        except Exception as exc:
            outcome.raised = Raised.of(exc, "backward")
        for i, t in enumerate(tensors):
            has = i in grad_ids and t.grad is not None
            outcome.grads.append(to_numpy(lib, t.grad) if has else None)
            outcome.grad_dtypes.append(dtype_name(t.grad) if has else None)
    outcome.inputs_after = snapshot()
    return outcome


def run_case(
    lib,
    fn: Callable,
    arrays: Sequence[np.ndarray],
    *,
    dtype: str,
    backward: bool,
    grad_seed: int,
    supports_out: bool = False,
    poison: bool = False,
    record_inputs: bool = True,
) -> Outcome:
    """One harness / regression case: every input of `dtype`, all of them differentiable with
    `backward`. `poison` first allocates and drops NaN-filled tensors (a kernel reading unwritten
    memory then returns NaN); `supports_out` passes a NaN-filled `out=` and reads the result."""
    shape = np.shape(arrays[0]) if arrays else ()
    if poison:
        for _ in range(4):
            junk = make_tensor(lib, np.full(shape, np.nan), dtype)
            del junk
    tensors = [make_tensor(lib, a, dtype) for a in arrays]
    call = fn
    if supports_out:
        out = make_tensor(lib, np.full(shape, np.nan), dtype)

        def call(*xs):
            fn(*xs, out=out)
            return out

    grad_ids = range(len(tensors)) if backward else ()
    return run(
        lib,
        call,
        tensors,
        grad_ids=list(grad_ids),
        grad_seed=grad_seed,
        record_inputs=record_inputs,
    )


@dataclass
class Report:
    """The verdict of compare_outcomes: one Comparison per array or check, failures first."""

    comparisons: list[Comparison]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons)

    @property
    def failures(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.ok]

    def message(self, where: str = "", limit: int = 4) -> str:
        lines = [c.message for c in self.failures[:limit]]
        more = len(self.failures) - limit
        return (
            (f"{where}: " if where else "")
            + "\n".join(lines)
            + (f"\n(+{more} more)" if more > 0 else "")
        )

    def raise_if_failed(self, where: str = "") -> None:
        if not self.ok:
            raise AssertionError(self.message(where))

    def to_dict(self) -> dict:
        return {"ok": self.ok, "comparisons": [asdict(c) for c in self.comparisons]}


def _fail(what: str, message: str) -> Comparison:
    return Comparison(what, False, message)


def _raise_parity(actual: Raised | None, expected: Raised, names) -> Comparison:
    mine, ref = names
    what = f"raises ({expected.where})"
    if actual is None:
        return _fail(what, f"{ref} raised {expected.describe()} but {mine} did not raise")
    if actual.where != expected.where:
        return _fail(
            what,
            f"{ref} raised in {expected.where} ({expected.describe()}); "
            f"{mine} raised in {actual.where}: {actual.describe()}",
        )
    if not actual.matches(expected):
        return _fail(
            what,
            f"{ref} raised {expected.describe()} but {mine} raised {actual.describe()}: the "
            f"exception must be a {'/'.join(expected.families)} like {ref}'s",
        )
    return Comparison(what, True, f"both raised: {mine} {actual.type}, {ref} {expected.type}")


def compare_outcomes(
    actual: Outcome,
    expected: Outcome,
    *,
    tol: Mapping | None = None,
    originals: Sequence[np.ndarray] | None = None,
    names: tuple[str, str] = ("ember", "torch"),
) -> Report:
    """Judge `actual` against the reference `expected`.

    tol: per-dtype overrides of the tolerance table. originals: the inputs as the caller made them;
    when given they, not the inputs `actual` reports having seen, decide whether it mutated them.
    """
    mine, ref = names

    def close(what: str, a, e, a_dtype: str | None, e_dtype: str | None) -> Comparison:
        return compare(
            a, e, what=what, actual_dtype=a_dtype, expected_dtype=e_dtype,
            tol=tolerance_for(e_dtype or "", tol), names=names,
        )  # fmt: skip

    if expected.raised and expected.raised.where != "backward":
        return Report([_raise_parity(actual.raised, expected.raised, names)])
    if actual.raised and actual.raised.where != "backward":
        return Report([_raised_alone(actual.raised, names)])
    if len(actual.outputs) != len(expected.outputs):
        counts = f"{mine} returned {len(actual.outputs)} outputs, {ref} {len(expected.outputs)}"
        return Report([_fail("outputs", counts)])
    out = [
        close(f"forward output {k}", a, e, actual.output_dtypes[k], expected.output_dtypes[k])
        for k, (a, e) in enumerate(zip(actual.outputs, expected.outputs, strict=True))
    ]
    if expected.raised:  # the reference's backward raised
        return Report([*out, _raise_parity(actual.raised, expected.raised, names)])
    if actual.raised:
        return Report([*out, _raised_alone(actual.raised, names)])
    if expected.backward:
        for i, e_grad in enumerate(expected.grads):
            a_grad = actual.grads[i] if i < len(actual.grads) else None
            what = f"backward grad of input {i}"
            if e_grad is None and a_grad is not None and np.any(a_grad):
                out.append(_fail(what, f"{what}: {mine} computed a nonzero gradient, {ref} none"))
            elif e_grad is not None and a_grad is None:
                out.append(_fail(what, f"{what}: {mine} produced no gradient ({ref} did)"))
            elif e_grad is not None:
                a_dtype = actual.grad_dtypes[i] if i < len(actual.grad_dtypes) else None
                out.append(close(what, a_grad, e_grad, a_dtype, expected.grad_dtypes[i]))
    before = list(originals) if originals is not None else actual.inputs_before
    for i, e_after in enumerate(expected.inputs_after):
        what = f"input {i} after the call"
        if i >= len(actual.inputs_after) or i >= len(before):
            out.append(_fail(what, f"{mine} reported no input {i} after the call"))
        elif not compare(e_after, expected.inputs_before[i], tol=EXACT).ok:
            # an in-place op: the input must end up as the reference's does
            dtype = str(np.asarray(e_after).dtype)
            out.append(close(what, actual.inputs_after[i], e_after, dtype, dtype))
        else:
            same = compare(
                actual.inputs_after[i], before[i], what=what, tol=EXACT, names=(mine, "before")
            )
            if not same.ok:
                same.message = (
                    f"{mine} modified input {i} in place ({ref} does not): {same.message}"
                )
                out.append(same)
    return Report(out)


def _raised_alone(raised: Raised, names) -> Comparison:
    mine, ref = names
    message = f"{mine} raised {raised.describe()} in {raised.where} ({ref} did not)"
    if raised.traceback:
        message += "\n  " + "\n  ".join(raised.traceback)
    return _fail(f"raises ({raised.where})", message)


def outcome_summary(outcome: Outcome) -> dict[str, Any]:
    """A JSON-able description of an outcome (no arrays), for records."""
    return {
        "outputs": [list(np.shape(o)) for o in outcome.outputs],
        "output_dtypes": outcome.output_dtypes,
        "backward": outcome.backward,
        "raised": asdict(outcome.raised) if outcome.raised else None,
        "seconds": outcome.seconds,
        "notes": outcome.notes,
    }
