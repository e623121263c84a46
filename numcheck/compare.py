"""Comparing one array against its reference: shape, dtype, NaN/inf positions, then values."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .tolerances import Tolerance, tolerance_for

REL_FLOOR = 1e-12  # |expected| below this counts as this when reporting relative error


@dataclass
class Comparison:
    """The verdict on one array, with the worst element when values differ."""

    what: str
    ok: bool
    message: str = ""
    max_abs: float | None = None
    max_rel: float | None = None
    mismatched: int = 0
    total: int = 0
    worst_index: list[int] | None = None
    rtol: float | None = None
    atol: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _value(x) -> str:
    return (
        f"{x:.8g}"
        if isinstance(x, (float, np.floating))
        else repr(x.item() if hasattr(x, "item") else x)
    )


def compare(
    actual,
    expected,
    *,
    what: str = "output",
    actual_dtype: str | None = None,
    expected_dtype: str | None = None,
    tol: Tolerance | None = None,
    names: tuple[str, str] = ("ember", "torch"),
) -> Comparison:
    """Compare `actual` to the reference `expected` (arrays, or anything np.asarray takes).

    Dtype names default to the arrays' numpy dtypes; pass the tensors' own names where numpy
    cannot hold them (bfloat16 arrives as float32). NaN must sit where the reference has NaN and
    inf where it has inf of the same sign; finite values must satisfy
    |actual - expected| <= atol + rtol * |expected| (exact for integer, bool and other dtypes).
    """
    mine, ref = names
    a, e = np.asarray(actual), np.asarray(expected)
    a_dtype, e_dtype = actual_dtype or str(a.dtype), expected_dtype or str(e.dtype)
    tol = tol or tolerance_for(e_dtype)
    base = Comparison(what, False, total=int(e.size), rtol=tol.rtol, atol=tol.atol)
    if a.shape != e.shape:
        base.message = f"{what}: shape {list(a.shape)} != {ref} {list(e.shape)}"
        return base
    if a_dtype != e_dtype:
        base.message = f"{what}: dtype {a_dtype} != {ref} {e_dtype}"
        return base
    if e.dtype.kind not in "fc":
        return _compare_exact(a, e, base, names)
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    for label, mask_a, mask_e in (
        ("NaN", np.isnan(a64), np.isnan(e64)),
        ("+inf", np.isposinf(a64), np.isposinf(e64)),
        ("-inf", np.isneginf(a64), np.isneginf(e64)),
    ):
        differ = mask_a != mask_e
        if differ.any():
            first = tuple(int(i) for i in np.argwhere(differ)[0])
            base.mismatched = int(differ.sum())
            base.worst_index = list(first)
            base.message = (
                f"{what}: {label} positions differ at {base.mismatched}/{e.size} elements "
                f"({mine} {int(mask_a.sum())}, {ref} {int(mask_e.sum())}); first at {list(first)}: "
                f"{mine} {_value(a64[first])} vs {ref} {_value(e64[first])}"
            )
            return base
    finite = np.isfinite(e64)  # non-finite positions now coincide exactly
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf where both are inf
        diff = np.where(finite, np.abs(a64 - e64), 0.0)
        rel = diff / np.maximum(np.abs(e64), REL_FLOOR)
        bad = diff > tol.atol + tol.rtol * np.where(finite, np.abs(e64), 0.0)
    base.max_abs, base.max_rel = float(diff.max(initial=0.0)), float(rel.max(initial=0.0))
    base.mismatched = int(bad.sum())
    if not base.mismatched:
        base.ok = True
        return base
    worst = tuple(
        int(i) for i in np.unravel_index(int(np.argmax(np.where(bad, diff, -1.0))), diff.shape)
    )
    base.worst_index = list(worst)
    base.message = (
        f"{what}: {base.mismatched}/{e.size} elements out of tolerance (rtol={tol.rtol:g}, "
        f"atol={tol.atol:g}): max_abs={base.max_abs:.3g} max_rel={base.max_rel:.3g}; worst at "
        f"{list(worst)}: {mine} {_value(a64[worst])} vs {ref} {_value(e64[worst])}"
    )
    return base


def _compare_exact(a: np.ndarray, e: np.ndarray, base: Comparison, names) -> Comparison:
    mine, ref = names
    differ = np.asarray(a != e)
    if differ.shape != e.shape:  # object arrays of Python values: compare as a whole
        differ = np.full(e.shape, not np.array_equal(a, e))
    if not differ.any():
        base.ok, base.max_abs, base.max_rel = True, 0.0, 0.0
        return base
    first = tuple(int(i) for i in np.argwhere(differ)[0])
    base.mismatched, base.worst_index = int(differ.sum()), list(first)
    base.message = (
        f"{base.what}: {base.mismatched}/{e.size} elements differ; first at {list(first)}: "
        f"{mine} {_value(a[first])} vs {ref} {_value(e[first])}"
    )
    return base


def assert_close(actual, expected, **kwargs) -> Comparison:
    """`compare`, raising AssertionError with the report when the arrays differ."""
    result = compare(actual, expected, **kwargs)
    if not result.ok:
        raise AssertionError(result.message)
    return result
