"""Sequence builders, windows, numerical integration and unravel_index vs torch (ember/_numeric.py),
plus split_with_sizes, new_empty_strided, asarray/frombuffer and the torch-level settings queries."""
import warnings

import numpy as np
import pytest
import torch

import ember
from optest import OpCase, assert_close, op_tests

F = ["float32", "float64"]
WINDOWS = ["hann_window", "hamming_window", "blackman_window", "bartlett_window"]

CASES = [
    OpCase("trapezoid", lambda lib, y, x: (lib.trapezoid(y), lib.trapezoid(y, dx=0.5), lib.trapezoid(y, x),
                                           lib.trapz(y, x), lib.trapz(y, dx=2.0), lib.trapezoid(y, dim=0)),
           [[(3, 4), (4,)], [(2, 3, 5), (5,)], [(3, 4), (3, 4)], [(3, 1), (1,)]], F),
    OpCase("trapezoid_empty", lambda lib, y: (lib.trapezoid(y), lib.trapezoid(y, dim=0)), [[(3, 0)]], F, gradcheck=False),
    OpCase("trapezoid_int", lambda lib, y: lib.trapezoid(y), [[(3, 4)]], ["int64"], grad=False),
    OpCase("cumulative_trapezoid", lambda lib, y, x: (lib.cumulative_trapezoid(y), lib.cumulative_trapezoid(y, x),
                                                      lib.cumulative_trapezoid(y, dx=0.25, dim=0)),
           [[(3, 6), (6,)], [(2, 9, 9), (9,)], [(3, 1), (1,)], [(2, 17), (2, 17)]], F),
    OpCase("trapezoid_bad_x", lambda lib, y, x: lib.trapezoid(y, x), [[(3, 4), (5,)]], F, grad=False),
    OpCase("unravel_index", lambda lib, i: lib.unravel_index(i, (3, 4, 5)), [[(7,)], [(2, 3)], [(0,)], [()]],
           ["int64", "int32"], grad=False, make_inputs=lambda rng, s, d: [rng.integers(-60, 60, s[0]).astype(d)]),
    OpCase("unravel_index_float_refused", lambda lib, i: lib.unravel_index(i, (3, 4)), [[(2,)]], F, grad=False),
    OpCase("split_with_sizes", lambda lib, x: (*lib.split_with_sizes(x, [1, 3], 1), *x.split_with_sizes([2, 0, 1])),
           [[(3, 4)]], F),
    OpCase("split_with_sizes_bad", lambda lib, x: x.split_with_sizes([1, 1]), [[(3, 4)]], F, grad=False),
]

test_matches_torch, test_gradcheck = op_tests(CASES)


@pytest.mark.parametrize("name", WINDOWS)
@pytest.mark.parametrize("length", [0, 1, 2, 5, 16])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_windows(name, length, periodic, dtype):
    actual = getattr(ember, name)(length, periodic, dtype=getattr(ember, dtype))
    assert_close(actual, getattr(torch, name)(length, periodic, dtype=getattr(torch, dtype)), dtype, name)


def test_window_defaults_and_errors():
    assert_close(ember.hann_window(7), torch.hann_window(7), "float32", "hann_window")
    assert_close(ember.hamming_window(7, False, 0.5, 0.3), torch.hamming_window(7, False, 0.5, 0.3), "float32",
                 "hamming_window")
    assert ember.hann_window(3, requires_grad=True).requires_grad
    with pytest.raises(RuntimeError, match=r"\[hann_window\] hann_window requires non-negative window_length"):
        ember.hann_window(-1)
    with pytest.raises(RuntimeError, match=r"\[blackman_window\] blackman_window expects floating point dtypes"):
        ember.blackman_window(3, dtype=ember.int64)


@pytest.mark.parametrize("args,kwargs", [((0, 2, 5), {}), ((-1, 1, 4), {"base": 2.0}), ((1, 3, 1), {}),
                                         ((0, 1, 0), {}), ((2, 0, 5), {"dtype": "float64"})])
def test_logspace(args, kwargs):
    kw_e = {k: getattr(ember, v) if k == "dtype" else v for k, v in kwargs.items()}
    kw_t = {k: getattr(torch, v) if k == "dtype" else v for k, v in kwargs.items()}
    assert_close(ember.logspace(*args, **kw_e), torch.logspace(*args, **kw_t), kwargs.get("dtype", "float32"),
                 "logspace")


@pytest.mark.parametrize("args", [(1, 4), (0, 1, 0.25), (5, 1, -1.5), (1, 1), (0.5, 3.2, 0.7)])
def test_range(args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        actual = ember.range(*args)
    assert any("deprecated" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch.range(*args)
    assert_close(actual, expected, "float32", "range")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_close(ember.range(1, 5, 2, dtype=ember.int64), torch.range(1, 5, 2, dtype=torch.int64), "int64",
                     "range")
        with pytest.raises(RuntimeError, match=r"\[range\] step must be nonzero"):
            ember.range(1, 4, 0)
        with pytest.raises(RuntimeError, match=r"\[range\] upper bound and lower bound inconsistent"):
            ember.range(1, 4, -1)


def test_new_empty_strided():
    x = ember.zeros(2, 3, dtype=ember.float64)
    y = x.new_empty_strided((2, 3), (1, 2))
    assert y.shape == (2, 3) and y.stride() == (1, 2) and y.dtype == ember.float64
    z = x.new_empty_strided((4,), (1,), dtype=ember.int32, requires_grad=False)
    assert z.dtype == ember.int32 and z.shape == (4,)


def test_asarray_shares_or_copies_like_torch():
    a = np.arange(4.0)
    shared = ember.asarray(a)
    a[0] = 7.0
    assert shared.tolist() == [7.0, 1.0, 2.0, 3.0] and shared.dtype == ember.float64
    copied = ember.asarray(a, copy=True)
    a[1] = 9.0
    assert copied.tolist()[1] == 1.0
    assert ember.asarray([1, 2]).dtype == ember.int64 and ember.asarray([1.5]).dtype == ember.float32
    t = ember.ones(2)
    assert ember.asarray(t) is t
    assert ember.asarray(t, dtype=ember.float64).dtype == ember.float64
    with pytest.raises(ValueError, match=r"\[asarray\] can't alias"):
        ember.asarray(t, dtype=ember.float64, copy=False)
    assert ember.asarray(3.0, requires_grad=True).requires_grad


def test_frombuffer_matches_torch_and_shares_memory():
    raw = bytearray(np.arange(6, dtype=np.int32).tobytes())
    e = ember.frombuffer(raw, dtype=ember.int32, count=3, offset=4)
    t = torch.frombuffer(bytearray(raw), dtype=torch.int32, count=3, offset=4)
    assert e.tolist() == t.tolist() == [1, 2, 3]
    raw[4:8] = np.int32(42).tobytes()
    assert e.tolist()[0] == 42
    f = ember.frombuffer(bytearray(np.array([1.5, -2.0], np.float32).tobytes()), dtype=ember.float32)
    assert f.tolist() == [1.5, -2.0]
    with pytest.raises(ValueError, match=r"\[frombuffer\] buffer length \(3 bytes\) after offset \(0 bytes\) must be "
                                         r"a multiple of element size \(4\)"):
        ember.frombuffer(bytearray(b"abc"), dtype=ember.int32)
    with pytest.raises(ValueError, match=r"\[frombuffer\] both buffer length \(0\) and count \(-1\) must not be 0"):
        ember.frombuffer(bytearray(), dtype=ember.int32)
    with pytest.raises(ValueError, match=r"\[frombuffer\] offset \(5 bytes\) must be non-negative"):
        ember.frombuffer(bytearray(4), dtype=ember.int32, offset=5)


def test_settings_round_trip():
    assert not ember.are_deterministic_algorithms_enabled()
    try:
        ember.use_deterministic_algorithms(True, warn_only=True)
        assert ember.are_deterministic_algorithms_enabled() and ember.is_deterministic_algorithms_warn_only_enabled()
        assert ember.get_deterministic_debug_mode() == 1
        ember.set_deterministic_debug_mode("error")
        assert ember.get_deterministic_debug_mode() == 2 and not ember.is_deterministic_algorithms_warn_only_enabled()
        with pytest.raises(RuntimeError, match=r"\[set_deterministic_debug_mode\] invalid value"):
            ember.set_deterministic_debug_mode("loud")
        with pytest.raises(TypeError, match=r"\[use_deterministic_algorithms\] mode must be a bool"):
            ember.use_deterministic_algorithms("yes")
    finally:
        ember.set_deterministic_debug_mode(0)
    assert not ember.are_deterministic_algorithms_enabled()
    assert ember.set_flush_denormal(True) is False
    assert ember.get_default_device() == ember.device("cpu")
    ember.set_default_device("cpu")
    with pytest.raises(NotImplementedError, match=r"\[set_default_device\] ember's factory functions always default"):
        ember.set_default_device("cuda")
    threads = ember.get_num_interop_threads()
    try:
        ember.set_num_interop_threads(3)
        assert ember.get_num_interop_threads() == 3
        with pytest.raises(RuntimeError, match=r"\[set_num_interop_threads\] Expected positive number"):
            ember.set_num_interop_threads(0)
    finally:
        ember.set_num_interop_threads(threads)
    ember.set_warn_always(True)
    assert ember.is_warn_always_enabled()
    ember.set_warn_always(False)
    assert not ember.is_warn_always_enabled()


def test_tensor_queries():
    x = ember.tensor([1.0, 2.0])
    assert x.is_cpu and not x.is_inference() and not ember.is_inference(x)
    assert ember.is_floating_point(x) and not ember.is_floating_point(x.long())
    assert ember.is_signed(x) and not ember.is_signed(x.to(ember.uint8))
    assert x.equal(ember.tensor([1.0, 2.0])) and not x.equal(ember.tensor([1.0, 3.0]))
    assert x.allclose(x + 1e-9) and x.isclose(x + 1).tolist() == [False, False]
    d = ember.detach(x.requires_grad_(True))
    assert not d.requires_grad
    filled = ember.fill(x, 3.0)
    assert filled.tolist() == [3.0, 3.0] and x.tolist() == [1.0, 2.0]
