"""The data that crosses process boundaries: requests to a child and the outcomes it returns.

Both are .npz archives (no pickles) with a JSON `__meta__` entry. The harness reads outcomes
written by a process running untrusted code, so `load_outcomes` checks every field's type and
every array's dtype, and refuses anything it did not ask for.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .runner import Outcome, Raised

META = "__meta__"
ARRAY_KINDS = "biufcU"  # numbers, bools, and strings (the repr of a Python output)


class WireError(ValueError):
    """An archive that is not what its reader asked for (malformed, forged or truncated)."""


@dataclass
class CaseRequest:
    """One call a child must make: `expr` resolved in the child on inputs of `dtype`."""

    expr: str
    dtype: str
    inputs: list[np.ndarray]
    backward: bool = False
    grad_seed: int = 0
    supports_out: bool = False
    poison: bool = False
    record_inputs: bool = True

    def meta(self) -> dict:
        data = asdict(self)
        data["inputs"] = len(self.inputs)
        return data


@dataclass
class Request:
    cases: list[CaseRequest] = field(default_factory=list)


def _pack(meta: dict, arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    payload: dict[str, Any] = {META: np.array(json.dumps(meta)), **arrays}
    np.savez(buffer, **payload)
    return buffer.getvalue()


def _unpack(data: bytes, max_bytes: int) -> tuple[dict, dict[str, np.ndarray]]:
    if len(data) > max_bytes:
        raise WireError(f"archive of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(str(arrays.pop(META)))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise WireError(f"not a readable archive: {type(exc).__name__}: {exc}") from None
    if not isinstance(meta, dict):
        raise WireError("archive metadata is not a mapping")
    for name, array in arrays.items():
        if array.dtype.kind not in ARRAY_KINDS:
            raise WireError(f"array {name!r} has dtype {array.dtype}, not a number")
    return meta, arrays


def dump_request(request: Request) -> bytes:
    arrays = {
        f"c{i}.in{j}": a for i, case in enumerate(request.cases) for j, a in enumerate(case.inputs)
    }
    return _pack({"cases": [c.meta() for c in request.cases]}, arrays)


def load_request(data: bytes) -> Request:
    meta, arrays = _unpack(data, max_bytes=1 << 40)  # written by the harness itself
    cases = []
    for i, case in enumerate(meta["cases"]):
        inputs = [arrays[f"c{i}.in{j}"] for j in range(case.pop("inputs"))]
        cases.append(CaseRequest(inputs=inputs, **case))
    return Request(cases)


def _storable(array: np.ndarray) -> np.ndarray:
    return array if array.dtype.kind in ARRAY_KINDS else np.asarray(repr(array.tolist()))


def dump_outcomes(outcomes: list[Outcome]) -> bytes:
    metas, arrays = [], {}
    for i, o in enumerate(outcomes):
        metas.append(
            {
                "outputs": len(o.outputs),
                "output_dtypes": o.output_dtypes,
                "output_requires_grad": o.output_requires_grad,
                "backward": o.backward,
                "grads": [g is not None for g in o.grads],
                "grad_dtypes": o.grad_dtypes,
                "inputs": len(o.inputs_after),
                "raised": asdict(o.raised) if o.raised else None,
                "seconds": o.seconds,
                "notes": o.notes,
            }
        )
        arrays.update({f"c{i}.out{k}": _storable(a) for k, a in enumerate(o.outputs)})
        arrays.update({f"c{i}.grad{j}": g for j, g in enumerate(o.grads) if g is not None})
        arrays.update({f"c{i}.before{j}": a for j, a in enumerate(o.inputs_before)})
        arrays.update({f"c{i}.after{j}": a for j, a in enumerate(o.inputs_after)})
    return _pack({"outcomes": metas}, arrays)


def _typed(value, kind, what: str):
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise WireError(
            f"{what}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}"
        )
    return value


def _str_list(value, what: str, n: int, allow_none: bool = False) -> list:
    _typed(value, list, what)
    if len(value) != n:
        raise WireError(f"{what}: {len(value)} entries for {n}")
    for item in value:
        if not (isinstance(item, str) or (allow_none and item is None)):
            raise WireError(f"{what}: entries must be strings")
    return value


def load_outcomes(data: bytes, cases: int, max_bytes: int = 1 << 30) -> list[Outcome]:
    """Outcomes of `cases` requested cases, checked field by field; WireError if anything is off."""
    meta, arrays = _unpack(data, max_bytes)
    metas = _typed(meta.get("outcomes"), list, "outcomes")
    if len(metas) != cases:
        raise WireError(f"{len(metas)} outcomes for {cases} requested cases")
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        if name not in arrays:
            raise WireError(f"missing array {name!r}")
        used.add(name)
        return arrays[name]

    outcomes = []
    for i, m in enumerate(metas):
        _typed(m, dict, f"outcome {i}")
        n_out = _typed(m.get("outputs"), int, f"outcome {i}.outputs")
        n_in = _typed(m.get("inputs"), int, f"outcome {i}.inputs")
        has_grad = _typed(m.get("grads"), list, f"outcome {i}.grads")
        requires = _typed(m.get("output_requires_grad"), list, f"outcome {i}.output_requires_grad")
        if len(requires) != n_out or not all(isinstance(r, bool) for r in requires):
            raise WireError(f"outcome {i}.output_requires_grad: {n_out} booleans expected")
        if not all(isinstance(g, bool) for g in has_grad):
            raise WireError(f"outcome {i}.grads: booleans expected")
        raised = m.get("raised")
        if raised is not None:
            _typed(raised, dict, f"outcome {i}.raised")
            try:
                raised = Raised(**raised)
            except TypeError as exc:
                raise WireError(f"outcome {i}.raised: {exc}") from None
            for name in ("where", "type", "message"):
                _typed(getattr(raised, name), str, f"outcome {i}.raised.{name}")
            _str_list(raised.families, f"outcome {i}.raised.families", len(raised.families))
            _str_list(raised.traceback, f"outcome {i}.raised.traceback", len(raised.traceback))
        seconds = m.get("seconds")
        if seconds is not None and (
            not isinstance(seconds, (int, float)) or isinstance(seconds, bool)
        ):
            raise WireError(f"outcome {i}.seconds: a number expected")
        notes = _typed(m.get("notes", []), list, f"outcome {i}.notes")
        outcomes.append(
            Outcome(
                outputs=[take(f"c{i}.out{k}") for k in range(n_out)],
                output_dtypes=_str_list(
                    m.get("output_dtypes"), f"outcome {i}.output_dtypes", n_out
                ),
                output_requires_grad=requires,
                backward=_typed(m.get("backward"), bool, f"outcome {i}.backward"),
                grads=[take(f"c{i}.grad{j}") if g else None for j, g in enumerate(has_grad)],
                grad_dtypes=_str_list(
                    m.get("grad_dtypes"), f"outcome {i}.grad_dtypes", len(has_grad), True
                ),
                inputs_before=[take(f"c{i}.before{j}") for j in range(n_in)],
                inputs_after=[take(f"c{i}.after{j}") for j in range(n_in)],
                raised=raised,
                seconds=None if seconds is None else float(seconds),
                notes=[str(n)[:500] for n in notes][:20],
            )
        )
    extra = set(arrays) - used
    if extra:
        raise WireError(f"unrequested arrays: {sorted(extra)[:5]}")
    return outcomes
