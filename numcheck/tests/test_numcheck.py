"""The comparison engine on its own: arrays, seeds, outcomes (with torch standing in for both
libraries, so no ember build is needed) and the wire format's checks on untrusted data."""

import io

import numpy as np
import pytest

from numcheck import NumericsCase, Tolerance, compare, compare_outcomes, run, seeds, tolerance_for
from numcheck.arrays import upstream_gradient
from numcheck.cases import CaseFile
from numcheck.runner import Outcome, Raised, run_case
from numcheck.wire import (
    CaseRequest,
    Request,
    WireError,
    dump_outcomes,
    dump_request,
    load_outcomes,
    load_request,
)

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- compare


def test_values_within_and_beyond_tolerance_with_worst_element():
    e = np.array([1.0, 2.0, 100.0], dtype=np.float32)
    tol = tolerance_for("float32")
    inside = e + (tol.atol + tol.rtol * np.abs(e)) * 0.5
    assert compare(inside, e).ok
    a = e.copy()
    a[1], a[2] = 2.01, 100.5
    result = compare(a, e, what="out")
    assert not result.ok and result.mismatched == 2 and result.worst_index == [2]
    assert "worst at [2]: ember 100.5 vs torch 100" in result.message
    assert result.max_abs == pytest.approx(0.5) and result.max_rel == pytest.approx(0.005)


@pytest.mark.parametrize(
    "actual,expected,needle",
    [
        ([np.nan, 1.0], [0.5, 1.0], "NaN positions differ"),
        ([0.5, 1.0], [np.nan, 1.0], "NaN positions differ"),  # NaN never passes silently
        ([np.inf, 1.0], [-np.inf, 1.0], "+inf positions differ"),
        ([1e300, 1.0], [np.inf, 1.0], "+inf positions differ"),
        ([1.0, -np.inf], [1.0, 3.0], "-inf positions differ"),
    ],
)
def test_nan_and_inf_positions_and_signs_must_match(actual, expected, needle):
    result = compare(np.array(actual), np.array(expected))
    assert not result.ok and needle in result.message


def test_matching_nan_and_inf_pass():
    x = np.array([np.nan, np.inf, -np.inf, 1.0])
    assert compare(x.copy(), x).ok


def test_shape_dtype_and_exact_kinds():
    assert "shape [2] != torch [3]" in compare(np.zeros(2), np.zeros(3)).message
    assert "dtype float32 != torch float64" in compare(np.zeros(2, np.float32), np.zeros(2)).message
    assert (
        "dtype float32 != torch bfloat16"
        in compare(
            np.zeros(2, np.float32),
            np.zeros(2, np.float32),
            actual_dtype="float32",
            expected_dtype="bfloat16",
        ).message
    )
    ints = compare(np.array([1, 2, 3]), np.array([1, 2, 4]))
    assert not ints.ok and ints.worst_index == [2] and ints.rtol == 0.0
    assert not compare(np.array([True]), np.array([False])).ok
    assert (
        compare(np.zeros((0, 3)), np.zeros((0, 3))).ok
        and compare(np.float64(2.0), np.float64(2.0)).ok
    )


def test_one_table_and_overrides():
    assert tolerance_for("float32") == Tolerance(1e-4, 1e-5)
    assert tolerance_for("int64").exact and tolerance_for("bool").exact
    assert tolerance_for("float16", {"float16": (0.5, 0.25)}) == Tolerance(0.5, 0.25)


# ---------------------------------------------------------------- seeds


def test_seeds_are_deterministic_by_default_and_fresh_when_fuzzing(monkeypatch, capsys):
    monkeypatch.delenv(seeds.FUZZ_ENV, raising=False)
    monkeypatch.delenv(seeds.SEED_ENV, raising=False)
    seeds.run_seed.cache_clear()
    try:
        assert seeds.run_seed() == 0 and seeds.replay_hint() == ""
        assert seeds.case_seed("add", (2, 3), "float32") == seeds.case_seed(
            "add", (2, 3), "float32"
        )
        assert seeds.case_seed("add", (2, 3), "float32") != seeds.case_seed(
            "add", (2, 3), "float64"
        )
        default = seeds.case_seed("add")
        seeds.run_seed.cache_clear()
        monkeypatch.setenv(seeds.FUZZ_ENV, "1")
        fresh = seeds.run_seed()
        assert fresh != 0 and f"EMBER_TEST_SEED={fresh}" in capsys.readouterr().err
        assert (
            seeds.case_seed("add") != default and f"EMBER_TEST_SEED={fresh}" in seeds.replay_hint()
        )
        drawn = seeds.case_seed("add")
        seeds.run_seed.cache_clear()
        monkeypatch.delenv(seeds.FUZZ_ENV)
        monkeypatch.setenv(seeds.SEED_ENV, str(fresh))
        assert seeds.case_seed("add") == drawn  # the replay draws the same inputs
    finally:
        seeds.run_seed.cache_clear()


# ---------------------------------------------------------------- outcomes


def _outcome(fn, *arrays, grad=True, seed=5, **kwargs):
    tensors = [torch.from_numpy(np.array(a)) for a in arrays]
    return run(
        torch,
        fn,
        tensors,
        grad_ids=list(range(len(tensors))) if grad else [],
        grad_seed=seed,
        **kwargs,
    )


def test_forward_and_backward_agree_and_disagree():
    x = np.linspace(-2, 2, 7)
    expected = _outcome(torch.tanh, x)
    assert expected.backward and expected.grads[0] is not None
    assert compare_outcomes(_outcome(torch.tanh, x), expected).ok
    # right forward, wrong backward (a detached tanh with the wrong derivative)
    wrong_grad = _outcome(lambda t: torch.tanh(t.detach()) + 0.0 * t, x)
    report = compare_outcomes(wrong_grad, expected)
    assert [c.what for c in report.failures] == ["backward grad of input 0"]


def test_upstream_gradient_is_the_same_everywhere():
    a = upstream_gradient(11, 0, (2, 3), "float32")
    assert a.dtype == np.float32 and np.array_equal(a, upstream_gradient(11, 0, (2, 3), "float32"))
    assert not np.array_equal(a, upstream_gradient(11, 1, (2, 3), "float32"))


def test_input_mutation_is_caught_unless_the_reference_mutates_too():
    x = np.arange(4.0)
    clean = _outcome(lambda t: t * 2, x, grad=False)
    inplace = _outcome(lambda t: t.mul_(2), x, grad=False)
    report = compare_outcomes(inplace, clean)
    assert not report.ok and "modified input 0 in place" in report.message()
    assert compare_outcomes(_outcome(lambda t: t.mul_(2), x, grad=False), inplace).ok
    # the caller's own copy decides, not what the tested process claims to have seen
    forged = _outcome(lambda t: t.mul_(2), x, grad=False)
    forged.inputs_before = forged.inputs_after
    assert not compare_outcomes(forged, clean, originals=[x]).ok


def _raises(exc):
    def fn(t):
        raise exc

    return fn


@pytest.mark.parametrize(
    "theirs,ours,ok",
    [
        (RuntimeError("bad shape"), RuntimeError("bad"), True),
        (RuntimeError("not implemented"), NotImplementedError("no"), True),  # a RuntimeError
        (IndexError("dim 3"), IndexError("dim"), True),
        (RuntimeError("bad shape"), TypeError("bad"), False),
        (TypeError("bad arg"), ValueError("bad"), False),
        (ZeroDivisionError("x"), KeyError("y"), True),  # outside the four families: any exception
    ],
)
def test_exception_parity(theirs, ours, ok):
    x = np.zeros(2)
    report = compare_outcomes(_outcome(_raises(ours), x), _outcome(_raises(theirs), x))
    assert report.ok is ok, report.message()


def test_reference_raises_and_ours_does_not():
    x = np.zeros(2)
    report = compare_outcomes(_outcome(torch.tanh, x), _outcome(_raises(ValueError("no")), x))
    assert (
        not report.ok and "torch raised ValueError: no but ember did not raise" in report.message()
    )


def test_ours_raises_with_traceback():
    x = np.zeros(2)
    report = compare_outcomes(_outcome(_raises(RuntimeError("boom")), x), _outcome(torch.tanh, x))
    assert "ember raised RuntimeError: boom in call (torch did not)" in report.message()
    assert "raise exc" in report.message()


def test_run_case_poisons_and_reads_out_buffer():
    x = np.linspace(-1, 1, 6).reshape(2, 3)

    def lazy(t, out):  # writes only half of out=
        out[0] = t[0] * 2

    good = run_case(
        torch,
        lambda t, out: torch.mul(t, 2, out=out),
        [x],
        dtype="float64",
        backward=False,
        grad_seed=0,
        supports_out=True,
        poison=True,
    )
    bad = run_case(
        torch, lazy, [x], dtype="float64", backward=False, grad_seed=0, supports_out=True
    )
    expected = run_case(torch, lambda t: t * 2, [x], dtype="float64", backward=False, grad_seed=0)
    assert compare_outcomes(good, expected).ok
    assert "NaN positions differ" in compare_outcomes(bad, expected).message()


# ---------------------------------------------------------------- cases and wire


def test_case_inputs_are_drawn_from_the_seed_and_files_round_trip():
    case = NumericsCase(
        "gelu",
        "ember.gelu",
        "torch.nn.functional.gelu",
        [3, 4],
        "float32",
        seed=9,
        num_inputs=2,
        tolerance=Tolerance(1e-3, 1e-4),
    )
    a, b = case.inputs(), case.inputs()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)) and a[0].dtype == np.float32
    assert not np.array_equal(case.inputs(10)[0], a[0])
    grown = CaseFile({"goal": "g"}, [case], ["tests -k gelu"])
    again = CaseFile.from_json(grown.to_json())
    assert again.cases == [case] and again.selectors == ["tests -k gelu"]
    with pytest.raises(ValueError, match="unknown case keys"):
        NumericsCase.from_dict({**case.to_dict(), "extra": 1})


def test_wire_round_trip():
    x = np.arange(6.0).reshape(2, 3)
    request = load_request(
        dump_request(Request([CaseRequest("torch.tanh", "float64", [x], backward=True)]))
    )
    assert request.cases[0].expr == "torch.tanh" and np.array_equal(request.cases[0].inputs[0], x)
    outcome = _outcome(torch.tanh, x)
    outcome.raised = None
    (back,) = load_outcomes(dump_outcomes([outcome]), 1)
    assert compare_outcomes(back, outcome).ok and back.grads[0] is not None
    raised = Outcome(raised=Raised.of(RuntimeError("x"), "call"))
    assert load_outcomes(dump_outcomes([raised]), 1)[0].raised.families == ["RuntimeError"]


def _archive(meta, **arrays):
    import json

    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.array(json.dumps(meta)), **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data,needle",
    [
        (b'{"ok": true}', "not a readable archive"),
        (_archive({"outcomes": []}), "0 outcomes for 1 requested"),
        (_archive({"outcomes": [{"outputs": "1"}]}), "expected int"),
        (
            _archive(
                {
                    "outcomes": [
                        {
                            "outputs": 1,
                            "inputs": 0,
                            "grads": [],
                            "output_requires_grad": [False],
                            "output_dtypes": ["float64"],
                            "grad_dtypes": [],
                            "backward": False,
                        }
                    ]
                }
            ),
            "missing array 'c0.out0'",
        ),
        (
            _archive(
                {
                    "outcomes": [
                        {
                            "outputs": 0,
                            "inputs": 0,
                            "grads": [],
                            "output_requires_grad": [],
                            "output_dtypes": [],
                            "grad_dtypes": [],
                            "backward": False,
                        }
                    ]
                },
                extra=np.zeros(2),
            ),
            "unrequested arrays",
        ),
    ],
)
def test_wire_rejects_forged_or_malformed_outcomes(data, needle):
    with pytest.raises(WireError, match=needle):
        load_outcomes(data, 1)


def test_wire_rejects_pickles_and_oversized_archives():
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.array('{"outcomes": []}'), evil=np.array([object()], dtype=object))
    with pytest.raises(WireError, match="not a readable archive"):
        load_outcomes(buffer.getvalue(), 0)
    with pytest.raises(WireError, match="exceeds"):
        load_outcomes(_archive({"outcomes": []}), 0, max_bytes=10)
