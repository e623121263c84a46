"""The one tolerance table: |actual - expected| <= atol + rtol * |expected|, by dtype."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float

    @property
    def exact(self) -> bool:
        return self.rtol == 0.0 and self.atol == 0.0


EXACT = Tolerance(0.0, 0.0)

# Low-precision types get the slack their 8/11-bit mantissas need; float32 allows for a different
# summation order or a vectorized transcendental a few ulps off. float64 is ~1e8 ulps of slack yet
# still catches a float64 op that rounds through float32 (up to 6e-8 off).
TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(rtol=1e-8, atol=1e-10),
    "float32": Tolerance(rtol=1e-4, atol=1e-5),
    "float16": Tolerance(rtol=1e-2, atol=1e-2),
    "bfloat16": Tolerance(rtol=3e-2, atol=3e-2),
}

FLOAT_DTYPES = tuple(TOLERANCES)


def as_tolerance(value: Tolerance | tuple[float, float] | Mapping[str, float]) -> Tolerance:
    """A Tolerance from a Tolerance, an (rtol, atol) pair or a {"rtol", "atol"} mapping."""
    if isinstance(value, Tolerance):
        return value
    if isinstance(value, Mapping):
        return Tolerance(float(value["rtol"]), float(value["atol"]))
    rtol, atol = value
    return Tolerance(float(rtol), float(atol))


def tolerance_for(dtype: str, overrides: Mapping | None = None) -> Tolerance:
    """The tolerance of `dtype` (a name such as "float32"); exact for integer and bool dtypes."""
    if overrides and dtype in overrides:
        return as_tolerance(overrides[dtype])
    return TOLERANCES.get(dtype, EXACT)
