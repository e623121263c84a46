"""NumericsCase: an ember callable against its PyTorch reference on one shape, dtype and seed.

It is the unit of the harness's numerics and performance checks and, written to
regressions/cases/*.json, of a grown regression test (see regressions/README.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from .arrays import random_array
from .tolerances import Tolerance, as_tolerance

CASE_FILE_FORMAT = 1


@dataclass
class NumericsCase:
    name: str
    ember: str  # expression or dotted path giving the ember callable
    torch: str  # its PyTorch reference
    shape: list[int]  # every input has this shape
    dtype: str
    seed: int
    num_inputs: int = 1
    input_range: list[float] = field(default_factory=lambda: [-4.0, 4.0])
    backward: bool = True
    supports_out: bool = False
    tolerance: Tolerance | None = None  # None: the table's for dtype
    note: str = ""  # provenance of a grown case: how it failed

    @property
    def id(self) -> str:
        return (
            f"{self.name}-{'x'.join(map(str, self.shape)) or 'scalar'}-{self.dtype}-seed{self.seed}"
        )

    def inputs(self, seed: int | None = None) -> list[np.ndarray]:
        """The inputs of the draw `seed` (default: the case's own seed)."""
        rng = np.random.default_rng(self.seed if seed is None else seed)
        low, high = self.input_range
        return [
            random_array(rng, self.shape, self.dtype, low, high) for _ in range(self.num_inputs)
        ]

    @staticmethod
    def grad_seed(seed: int) -> int:
        return seed + 7919

    def tolerances(self) -> dict[str, Tolerance] | None:
        return {self.dtype: self.tolerance} if self.tolerance else None

    def to_dict(self) -> dict:
        data = asdict(self)
        if self.tolerance is None:
            del data["tolerance"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> NumericsCase:
        """Build a case from JSON data; ValueError naming the problem if it is not one."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown case keys {sorted(unknown)} (known: {sorted(known)})")
        values = dict(data)
        try:
            if values.get("tolerance") is not None:
                values["tolerance"] = as_tolerance(values["tolerance"])
            case = cls(**values)
        except (TypeError, KeyError) as exc:
            raise ValueError(f"not a numerics case: {exc}") from None
        for name, kind in (("name", str), ("ember", str), ("torch", str), ("dtype", str)):
            if not isinstance(getattr(case, name), kind):
                raise ValueError(f"case {name!r} must be a {kind.__name__}")
        if not all(isinstance(d, int) and d >= 0 for d in case.shape):
            raise ValueError(f"case shape must be non-negative integers, got {case.shape!r}")
        if not isinstance(case.seed, int) or len(case.input_range) != 2:
            raise ValueError("case needs an integer seed and input_range [low, high]")
        return case


@dataclass
class CaseFile:
    """One regressions/cases/*.json file: where the cases came from, and the cases."""

    provenance: dict
    cases: list[NumericsCase]
    selectors: list[str] = field(default_factory=list)  # pytest selectors that failed, then passed

    def to_json(self) -> str:
        data = {
            "format": CASE_FILE_FORMAT,
            "provenance": self.provenance,
            "cases": [c.to_dict() for c in self.cases],
            "selectors": self.selectors,
        }
        return json.dumps(data, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "") -> CaseFile:
        try:
            data = json.loads(text)
            if data.get("format") != CASE_FILE_FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {CASE_FILE_FORMAT}")
            cases = [NumericsCase.from_dict(c) for c in data.get("cases", [])]
            selectors = data.get("selectors", [])
            if not all(isinstance(s, str) for s in selectors):
                raise ValueError("selectors must be strings")
            return cls(dict(data.get("provenance", {})), cases, list(selectors))
        except (ValueError, AttributeError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None


def load_case_file(path: Path) -> CaseFile:
    return CaseFile.from_json(Path(path).read_text(), str(path))
