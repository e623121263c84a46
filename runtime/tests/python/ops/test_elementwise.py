"""Elementwise ops vs torch: values, dtypes (promotion), broadcasting, in-place rules, gradients, errors."""
import numpy as np
import pytest
import torch

import ember
from numcheck.seeds import rng_for_test
from optest import ALL_DTYPES, FLOAT_DTYPES, INT_DTYPES, OpCase, devices, op_tests

FLOATS = FLOAT_DTYPES
NUMERIC = FLOAT_DTYPES + INT_DTYPES
SOME_INTS = ["int64", "int32", "uint8"]

UNARY_SHAPES = [[(3, 4)], [()], [(0, 3)], [(2, 1, 3)]]
BINARY_SHAPES = [[(3, 4), (3, 4)], [(4, 1, 3), (2, 3)], [(3,), ()], [(), ()], [(0, 3), (1, 3)]]


def positive(rng, shapes, dtype):
    return [np.asarray(rng.uniform(0.2, 3.0, size=s)).astype("float32" if dtype == "bfloat16" else dtype)
            for s in shapes]


def away_from_ties(rng, shapes, dtype):
    """Distinct inputs so max/min/clamp gradients are not at kinks (finite differences break there)."""
    out = []
    for k, s in enumerate(shapes):
        a = np.asarray(rng.uniform(-3, 3, size=s))
        a = np.round(a * 4) / 4 + 0.1 * (k + 1)
        out.append(np.asarray(a).astype("float32" if dtype == "bfloat16" else dtype))
    return out


def nonzero_divisor(rng, shapes, dtype):
    a = rng.integers(-20, 20, size=shapes[0]) if dtype in INT_DTYPES else rng.uniform(-3, 3, size=shapes[0])
    b = rng.integers(1, 6, size=shapes[1]) * rng.choice([-1, 1], size=shapes[1]) if dtype in INT_DTYPES \
        else rng.uniform(0.5, 3, size=shapes[1]) * rng.choice([-1, 1], size=shapes[1])
    if dtype == "uint8":
        a, b = np.abs(a), np.abs(b)
    nd = "float32" if dtype == "bfloat16" else dtype
    return [np.asarray(a).astype(nd), np.asarray(b).astype(nd)]


def with_specials(rng, shapes, dtype):
    a = np.asarray(rng.uniform(-3, 3, size=shapes[0]))
    flat = a.reshape(-1)
    specials = [np.nan, np.inf, -np.inf]
    for j in range(min(3, flat.size)):
        flat[j] = specials[j]
    return [a.astype("float32" if dtype == "bfloat16" else dtype)]


def small_ints_for_pow(rng, shapes, dtype):
    if dtype in INT_DTYPES:
        lo = 0 if dtype == "uint8" else -3
        return [rng.integers(lo, 4, size=shapes[0]).astype(dtype), rng.integers(0, 4, size=shapes[1]).astype(dtype)]
    nd = "float32" if dtype == "bfloat16" else dtype
    return [rng.uniform(0.3, 2.5, size=shapes[0]).astype(nd), rng.uniform(-2, 2, size=shapes[1]).astype(nd)]


def bool_and(rng, shapes, dtype):
    nd = "float32" if dtype == "bfloat16" else dtype
    cond = rng.random(shapes[0]) < 0.5
    return [cond] + [rng.uniform(-3, 3, size=s).astype(nd) if dtype not in INT_DTYPES + ["bool"]
                     else (rng.integers(0, 50, size=s).astype(dtype) if dtype != "bool" else rng.random(s) < 0.5)
                     for s in shapes[1:]]


CASES = [
    # ---- binary arithmetic ---------------------------------------------------------------------
    OpCase("add", lambda lib, a, b: lib.add(a, b), BINARY_SHAPES, ALL_DTYPES),
    OpCase("add_alpha", lambda lib, a, b: lib.add(a, b, alpha=2), BINARY_SHAPES[:3], NUMERIC),
    OpCase("sub", lambda lib, a, b: lib.sub(a, b), BINARY_SHAPES, NUMERIC),
    OpCase("sub_alpha", lambda lib, a, b: a.sub(b, alpha=0.5), BINARY_SHAPES[:2], FLOATS),
    OpCase("mul", lambda lib, a, b: a * b, BINARY_SHAPES, ALL_DTYPES),
    # d(a/b)/db = -a/b^2 reaches |12| here; a broadcast gradient sums 4 such bf16-rounded terms
    # (eps 2^-8), so up to ~0.1 absolute difference from torch's op order is rounding, not a bug.
    OpCase("div", lambda lib, a, b: a / b, BINARY_SHAPES, FLOATS, make_inputs=nonzero_divisor,
           tol={"bfloat16": (3e-2, 1e-1), "float16": (1e-2, 2e-2)}),
    OpCase("div_int", lambda lib, a, b: lib.div(a, b), BINARY_SHAPES[:3], SOME_INTS, make_inputs=nonzero_divisor),
    OpCase("floor_divide", lambda lib, a, b: a // b, BINARY_SHAPES[:3], NUMERIC, grad=False,
           make_inputs=nonzero_divisor),
    OpCase("remainder", lambda lib, a, b: a % b, BINARY_SHAPES[:3], ["float32", "float64", "int64", "int32"],
           grad=False, make_inputs=nonzero_divisor),
    OpCase("pow", lambda lib, a, b: lib.pow(a, b), BINARY_SHAPES[:4], ["float32", "float64", "int64", "int32"],
           make_inputs=small_ints_for_pow),
    OpCase("pow_scalar", lambda lib, a: a ** 2.5, UNARY_SHAPES, FLOATS, make_inputs=positive),
    OpCase("pow_square", lambda lib, a: a ** 2, UNARY_SHAPES, NUMERIC),
    OpCase("rpow", lambda lib, a: 2 ** a, UNARY_SHAPES[:2], FLOATS + ["int64"], low=-2, high=2),
    OpCase("maximum", lambda lib, a, b: lib.maximum(a, b), BINARY_SHAPES, ALL_DTYPES, make_inputs=None),
    OpCase("minimum", lambda lib, a, b: lib.minimum(a, b), BINARY_SHAPES, NUMERIC),
    OpCase("maximum_ties", lambda lib, a: lib.maximum(a, a * 1), [[(5,)]], ["float32", "float64"], gradcheck=False),
    OpCase("lerp", lambda lib, a, b, w: lib.lerp(a, b, w), [[(3, 4), (3, 4), (3, 4)], [(2, 3), (3,), ()]], FLOATS,
           low=0, high=1),
    OpCase("lerp_scalar", lambda lib, a, b: lib.lerp(a, b, 0.3), [[(3, 4), (3, 4)], [(), ()]], FLOATS),
    OpCase("where", lambda lib, c, a, b: lib.where(c, a, b), [[(3, 4), (3, 4), (3, 4)], [(2, 1), (3,), ()]],
           ALL_DTYPES, make_inputs=bool_and, input_dtypes=["bool", None, None]),
    OpCase("where_scalar", lambda lib, c, a: lib.where(c, a, 0.5), [[(3, 4), (3, 4)]], FLOATS + ["int64"],
           make_inputs=bool_and, input_dtypes=["bool", None]),
    OpCase("clamp", lambda lib, x: lib.clamp(x, -1.0, 1.5), UNARY_SHAPES, NUMERIC, make_inputs=away_from_ties),
    OpCase("clamp_min", lambda lib, x: x.clamp(min=0.5), UNARY_SHAPES[:2], FLOATS, make_inputs=away_from_ties),
    OpCase("clamp_max_int", lambda lib, x: lib.clamp(x, max=10), UNARY_SHAPES[:2], SOME_INTS),
    OpCase("clamp_max", lambda lib, x: lib.clamp_max(x, 0.5), UNARY_SHAPES[:2], FLOATS, make_inputs=away_from_ties),
    OpCase("clamp_tensor", lambda lib, x, lo: lib.clamp(x, min=lo), [[(3, 4), (4,)]], ["float32", "float64"],
           make_inputs=away_from_ties),
    # ---- comparisons and logic ------------------------------------------------------------------
    *[OpCase(f"cmp_{n}", (lambda n: lambda lib, a, b: getattr(lib, n)(a, b))(n), BINARY_SHAPES[:3], ALL_DTYPES,
             grad=False, low=-2, high=2) for n in ["eq", "ne", "lt", "le", "gt", "ge"]],
    OpCase("cmp_scalar", lambda lib, a: (a > 1, a == 2, 1.5 <= a), UNARY_SHAPES[:2], NUMERIC, grad=False, low=-3,
           high=3),
    *[OpCase(n, (lambda n: lambda lib, a, b: getattr(lib, n)(a, b))(n), BINARY_SHAPES[:3], ["bool", "float32", "int64"],
             grad=False, low=-1, high=1) for n in ["logical_and", "logical_or", "logical_xor"]],
    OpCase("logical_not", lambda lib, a: lib.logical_not(a), UNARY_SHAPES[:2], ["bool", "float32", "int32"],
           grad=False, low=-1, high=1),
    *[OpCase(n, (lambda n: lambda lib, a, b: getattr(lib, n)(a, b))(n), BINARY_SHAPES[:3], INT_DTYPES + ["bool"],
             grad=False) for n in ["bitwise_and", "bitwise_or", "bitwise_xor"]],
    OpCase("bitwise_ops", lambda lib, a, b: (a & b, a | b, a ^ b, ~a), [[(3, 4), (3, 4)]], ["int64", "bool", "uint8"],
           grad=False),
    OpCase("isnan_isinf", lambda lib, a: (lib.isnan(a), lib.isinf(a), lib.isfinite(a)), [[(3, 4)], [(5,)]],
           FLOATS + ["int64"], grad=False, make_inputs=lambda rng, s, d: with_specials(rng, s, d)
           if d in FLOATS else [rng.integers(0, 9, size=s[0])]),
    OpCase("nan_to_num", lambda lib, a: lib.nan_to_num(a), [[(3, 4)], [(5,)]], FLOATS, make_inputs=with_specials,
           gradcheck=False),
    OpCase("nan_to_num_args", lambda lib, a: lib.nan_to_num(a, nan=1.0, posinf=2.0, neginf=-2.0), [[(3, 4)]],
           FLOATS, make_inputs=with_specials, gradcheck=False),
    OpCase("nan_propagation", lambda lib, a, b: (lib.maximum(a, b), lib.minimum(a, b), a + b, lib.clamp(a, 0, 1),
                                                lib.relu(a)),
           [[(6,), (6,)]], ["float32", "float64"], grad=False,
           make_inputs=lambda rng, s, d: [with_specials(rng, s[:1], d)[0], rng.uniform(-1, 1, size=s[1]).astype(d)]),
    # ---- unary math -----------------------------------------------------------------------------
    OpCase("neg", lambda lib, x: -x, UNARY_SHAPES, NUMERIC),
    OpCase("positive", lambda lib, x: (+x, lib.positive(x)), UNARY_SHAPES[:2], NUMERIC),
    OpCase("abs", lambda lib, x: lib.abs(x), UNARY_SHAPES, NUMERIC, make_inputs=away_from_ties),
    OpCase("sign", lambda lib, x: lib.sign(x), UNARY_SHAPES, ALL_DTYPES, gradcheck=False),
    OpCase("exp", lambda lib, x: lib.exp(x), UNARY_SHAPES, FLOATS + SOME_INTS),
    OpCase("exp_wide", lambda lib, x: lib.exp(x), [[(4000,)]], ["float32"], grad=False, low=-100, high=90),
    OpCase("exp2", lambda lib, x: lib.exp2(x), UNARY_SHAPES, FLOATS + ["int64"]),
    OpCase("expm1", lambda lib, x: lib.expm1(x), UNARY_SHAPES, FLOATS),
    OpCase("log", lambda lib, x: lib.log(x), UNARY_SHAPES, FLOATS, make_inputs=positive),
    OpCase("log_wide", lambda lib, x: lib.log(x), [[(2000,)]], ["float32"], grad=False, low=-1, high=1e6),
    OpCase("log_int", lambda lib, x: lib.log(x), UNARY_SHAPES[:2], SOME_INTS, low=1, high=50),
    OpCase("log2", lambda lib, x: lib.log2(x), UNARY_SHAPES, FLOATS, make_inputs=positive),
    OpCase("log1p", lambda lib, x: lib.log1p(x), UNARY_SHAPES, FLOATS, make_inputs=positive),
    OpCase("sqrt", lambda lib, x: lib.sqrt(x), UNARY_SHAPES, FLOATS + ["int64"], make_inputs=positive),
    OpCase("rsqrt", lambda lib, x: lib.rsqrt(x), UNARY_SHAPES, FLOATS, make_inputs=positive),
    OpCase("sin", lambda lib, x: lib.sin(x), UNARY_SHAPES, FLOATS + ["int32"]),
    OpCase("cos", lambda lib, x: lib.cos(x), UNARY_SHAPES, FLOATS),
    OpCase("tan", lambda lib, x: lib.tan(x), UNARY_SHAPES, FLOATS, low=-1.2, high=1.2),
    OpCase("tanh", lambda lib, x: lib.tanh(x), UNARY_SHAPES, FLOATS + ["int64"]),
    OpCase("tanh_wide", lambda lib, x: lib.tanh(x), [[(4000,)]], ["float32"], grad=False, low=-20, high=20),
    OpCase("sigmoid", lambda lib, x: lib.sigmoid(x), UNARY_SHAPES, FLOATS),
    OpCase("sigmoid_wide", lambda lib, x: lib.sigmoid(x), [[(4000,)]], ["float32"], grad=False, low=-100, high=100),
    OpCase("erf", lambda lib, x: lib.erf(x), UNARY_SHAPES, FLOATS),
    OpCase("relu", lambda lib, x: lib.relu(x), UNARY_SHAPES, NUMERIC, make_inputs=away_from_ties),
    OpCase("gelu", lambda lib, x: lib.nn.functional.gelu(x) if lib is torch else lib.gelu(x), UNARY_SHAPES, FLOATS),
    OpCase("gelu_tanh", lambda lib, x: (torch.nn.functional.gelu(x, approximate="tanh") if lib is torch
                                        else lib.gelu(x, approximate="tanh")), UNARY_SHAPES, FLOATS),
    OpCase("silu", lambda lib, x: lib.nn.functional.silu(x) if lib is torch else lib.silu(x), UNARY_SHAPES, FLOATS),
    OpCase("softplus", lambda lib, x: (torch.nn.functional.softplus(x, beta=2, threshold=3) if lib is torch
                                       else lib.softplus(x, beta=2, threshold=3)), UNARY_SHAPES, FLOATS,
           make_inputs=away_from_ties),
    OpCase("leaky_relu", lambda lib, x: (torch.nn.functional.leaky_relu(x, 0.2) if lib is torch
                                         else lib.leaky_relu(x, 0.2)), UNARY_SHAPES, FLOATS,
           make_inputs=away_from_ties),
    OpCase("rounding", lambda lib, x: (lib.floor(x), lib.ceil(x), lib.trunc(x), lib.round(x)), UNARY_SHAPES[:2],
           FLOATS + ["int64"], gradcheck=False),
    OpCase("square_reciprocal", lambda lib, x: (lib.square(x), lib.reciprocal(x)), UNARY_SHAPES[:2],
           ["float32", "float64", "int64"], make_inputs=positive),
    # ---- inverse trig, hyperbolic and special functions; two-argument math ----------------------
    OpCase("asin", lambda lib, x: (lib.asin(x), lib.arcsin(x)), UNARY_SHAPES, FLOATS, low=-0.9, high=0.9),
    OpCase("acos", lambda lib, x: (lib.acos(x), x.arccos()), UNARY_SHAPES, FLOATS, low=-0.9, high=0.9),
    OpCase("atan", lambda lib, x: (lib.atan(x), lib.arctan(x)), UNARY_SHAPES, FLOATS + ["int64"]),
    OpCase("sinh", lambda lib, x: lib.sinh(x), UNARY_SHAPES, FLOATS + ["int32"]),
    OpCase("cosh", lambda lib, x: x.cosh(), UNARY_SHAPES, FLOATS),
    OpCase("asinh", lambda lib, x: (lib.asinh(x), lib.arcsinh(x)), UNARY_SHAPES, FLOATS),
    OpCase("acosh", lambda lib, x: (lib.acosh(x), lib.arccosh(x)), UNARY_SHAPES, FLOATS, low=1.1, high=4),
    OpCase("atanh", lambda lib, x: (lib.atanh(x), lib.arctanh(x)), UNARY_SHAPES, FLOATS, low=-0.9, high=0.9),
    OpCase("log10", lambda lib, x: lib.log10(x), UNARY_SHAPES, FLOATS + ["int64"], make_inputs=positive),
    OpCase("erfc", lambda lib, x: lib.erfc(x), UNARY_SHAPES, FLOATS),
    OpCase("erfinv", lambda lib, x: (lib.erfinv(x), x.erfinv()), UNARY_SHAPES, FLOATS, low=-0.95, high=0.95),
    OpCase("erfinv_tails", lambda lib, x: lib.erfinv(x), [[(2000,)]], ["float32", "float64"], grad=False,
           low=-1, high=1),
    OpCase("erfinv_int", lambda lib, x: lib.erfinv(x), [[(7,)]], ["int64", "bool"], low=-1, high=1),
    OpCase("math_domain_edges", lambda lib, x: (lib.asin(x), lib.acosh(x), lib.atanh(x), lib.erfinv(x), lib.log10(x)),
           [[(9,)]], ["float32", "float64"], grad=False,
           make_inputs=lambda rng, s, d: [np.array([-2, -1, -0.5, 0, 0.5, 1, 2, np.inf, np.nan], dtype=d)]),
    OpCase("atan2", lambda lib, a, b: (lib.atan2(a, b), lib.arctan2(a, b), a.atan2(b)), BINARY_SHAPES,
           FLOATS + ["int64"]),
    OpCase("atan2_mixed", lambda lib, a, b: lib.atan2(a, b.double()), [[(3, 4), (4,)]], ["float32", "int32"]),
    OpCase("hypot", lambda lib, a, b: lib.hypot(a, b), BINARY_SHAPES, FLOATS + ["int64"]),
    OpCase("logaddexp", lambda lib, a, b: (lib.logaddexp(a, b), a.logaddexp(b)), BINARY_SHAPES, FLOATS + ["int64"],
           low=-30, high=30),
    OpCase("logaddexp2", lambda lib, a, b: lib.logaddexp2(a, b), BINARY_SHAPES, FLOATS + ["int64"], low=-30, high=30),
    OpCase("logaddexp_specials", lambda lib, a, b: (lib.logaddexp(a, b), lib.logaddexp2(a, b), lib.atan2(a, b),
                                                    lib.hypot(a, b)),
           [[(16,), (16,)]], ["float32", "float64"], grad=False,
           make_inputs=lambda rng, s, d: [np.array([v for v in (np.inf, -np.inf, np.nan, 1.0) for _ in range(4)], dtype=d),
                                          np.array([np.inf, -np.inf, np.nan, 1.0] * 4, dtype=d)]),
    OpCase("math_inplace", lambda lib, a, b: (a.clone().asin_(), a.clone().sinh_(), a.clone().erfinv_(),
                                             a.clone().atan2_(b), a.clone().hypot_(b), a.clone().arctan2_(b)),
           [[(3, 4), (4,)]], FLOATS, low=-0.9, high=0.9),
    # ---- conversions ----------------------------------------------------------------------------
    *[OpCase(f"to_{d}", (lambda d: lambda lib, x: x.to(getattr(lib, d)))(d), [[(3, 4)], [()], [(0, 2)]], ALL_DTYPES,
             low=-2, high=2, grad=d in FLOATS, gradcheck=d == "float64") for d in ["float32", "float64", "float16", "bfloat16", "int64",
                                                         "int32", "int8", "uint8", "bool"]],
    OpCase("clone_contiguous", lambda lib, x: (x.clone(), x.t().contiguous(), x.float(), x.double()),
           [[(3, 4)]], ALL_DTYPES, gradcheck=False),
    OpCase("composite_chain", lambda lib, x, y: ((x * 2 + y) / (y.abs() + 1)).tanh() - x.sigmoid() * 0.5,
           [[(4, 3), (3,)]], FLOATS),
]


test_matches_torch, test_gradcheck = op_tests(CASES)


# ---- type promotion ---------------------------------------------------------------------------------

DT = ["bool", "uint8", "int8", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def _pair(dtype, shape):
    e = ember.ones(*shape, dtype=getattr(ember, dtype)) if shape else ember.ones([], dtype=getattr(ember, dtype))
    t = torch.ones(shape, dtype=getattr(torch, dtype))
    return e, t


def _name(dt):
    return str(dt).split(".")[-1]


@pytest.mark.parametrize("a", DT)
def test_promotion_tensor_tensor(a):
    for b in DT:
        if {a, b} == {"uint8", "int8"}:
            continue  # torch gives int16, which ember does not have (documented: int32)
        for sa, sb in [((2,), (2,)), ((2,), ()), ((), (2,)), ((), ())]:
            ea, ta = _pair(a, sa)
            eb, tb = _pair(b, sb)
            got, want = _name((ea + eb).dtype), _name((ta + tb).dtype)
            assert got == want, f"{a}{list(sa)} + {b}{list(sb)}: ember {got}, torch {want}"
        got = _name(ember.promote_types(getattr(ember, a), getattr(ember, b)))
        assert got == _name(torch.promote_types(getattr(torch, a), getattr(torch, b))), f"promote_types({a}, {b})"


@pytest.mark.parametrize("a", DT)
def test_promotion_tensor_number(a):
    for number in [True, 3, -1, 2.5]:
        ea, ta = _pair(a, (2,))
        for op in [lambda x, n: x + n, lambda x, n: n * x, lambda x, n: x / n, lambda x, n: x - n,
                   lambda x, n: x.clamp(max=n) if not isinstance(n, bool) else x * n]:
            try:
                want = _name(op(ta, number).dtype)
            except RuntimeError:
                with pytest.raises(RuntimeError):
                    op(ea, number)
                continue
            got = _name(op(ea, number).dtype)
            assert got == want, f"{a} op {number!r}: ember {got}, torch {want}"


def test_promotion_examples_from_torch_docs():
    i = ember.ones(3, dtype=ember.int32)
    assert (i + 2.5).dtype == ember.float32
    assert (ember.ones(3, dtype=ember.float16) + 2.0).dtype == ember.float16
    assert (ember.ones(3, dtype=ember.float16) + ember.ones([], dtype=ember.float32)).dtype == ember.float16
    u = ember.ones(3, dtype=ember.uint8)
    r = u + 1000
    assert r.dtype == ember.uint8 and r.tolist() == [(1 + 1000) % 256] * 3
    assert (ember.ones(3, dtype=ember.bool) + 1).dtype == ember.int64
    assert (i / i).dtype == ember.float32
    assert ember.result_type(i, 2.5) == ember.float32


def test_scalar_operands_values():
    x = ember.from_numpy(np.array([1.0, -2.0, 4.0], dtype=np.float32))
    np.testing.assert_allclose((2 - x).numpy(), [1, 4, -2])
    np.testing.assert_allclose((1 / x).numpy(), [1, -0.5, 0.25])
    np.testing.assert_allclose((7 // x).numpy(), [7, -4, 1])
    np.testing.assert_allclose((2 ** x).numpy(), [2, 0.25, 16])
    np.testing.assert_allclose(ember.add(x, 2, alpha=3).numpy(), [7, 4, 10])
    np.testing.assert_allclose(ember.add(x, x, alpha=0.5).numpy(), [1.5, -3, 6])
    assert ember.where(x > 0, 1.0, 0.0).dtype == ember.float32


# ---- in-place ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", devices())
def test_inplace_ops_and_version_counter(device):
    base = np.array([[0.5, -1.0, 2.0], [3.0, -0.25, 1.5]], dtype=np.float32)
    other = np.array([1.5, 2.0, -0.5], dtype=np.float32)
    for name, args in [("add_", (other,)), ("sub_", (other,)), ("mul_", (other,)), ("div_", (other,)),
                       ("add_", (2,)), ("mul_", (0.5,)), ("pow_", (2,)), ("clamp_", (-0.5, 1.0)), ("neg_", ()),
                       ("abs_", ()), ("exp_", ()), ("tanh_", ()), ("sigmoid_", ()), ("relu_", ()), ("sqrt_", ()),
                       ("log_", ()), ("lerp_", (other, 0.25)), ("clamp_min_", (0.5,)), ("clamp_max_", (0.5,)),
                       ("zero_", ())]:
        src = np.abs(base) if name in ("sqrt_", "log_") else base
        e = ember.from_numpy(src.copy()).to(device)
        t = torch.from_numpy(src.copy())
        ea = [ember.from_numpy(a).to(device) if isinstance(a, np.ndarray) else a for a in args]
        ta = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
        v0 = e._version
        r = getattr(e, name)(*ea)
        getattr(t, name)(*ta)
        assert r._is_same(e) or r.data_ptr() == e.data_ptr(), f"{name} must return self"
        assert e._version == v0 + 1, f"{name} did not bump the version counter"
        np.testing.assert_allclose(e.cpu().numpy(), t.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_inplace_operators_keep_identity():
    x = ember.from_numpy(np.arange(4, dtype=np.float32))
    ptr = x.data_ptr()
    y = x
    y += 1
    y *= 2
    y -= 1
    y /= 2
    assert y.data_ptr() == ptr and x._version == 4
    np.testing.assert_allclose(x.numpy(), (np.arange(4) + 1) * 2 / 2 - 0.5)
    i = ember.from_numpy(np.array([6, 7], dtype=np.int64))
    i //= 2
    i &= 3
    assert i.tolist() == [3, 3] and i.dtype == ember.int64


def test_inplace_on_view_writes_base():
    x = ember.zeros(3, 4)
    row = x[1]
    row.add_(2)
    x[:, 0].fill_(-1)
    np.testing.assert_array_equal(x.numpy(), [[-1, 0, 0, 0], [-1, 2, 2, 2], [-1, 0, 0, 0]])


@pytest.mark.parametrize("op,value,src_dtype", [("add_", 2.5, "int64"), ("mul_", 0.5, "int32"), ("div_", 2, "int64"),
                                                ("exp_", None, "int64"), ("sub_", 1, "bool")])
def test_inplace_cast_error(op, value, src_dtype):
    e = ember.ones(3, dtype=getattr(ember, src_dtype))
    t = torch.ones(3, dtype=getattr(torch, src_dtype))
    args = () if value is None else (value,)
    with pytest.raises(RuntimeError):
        getattr(t, op)(*args)
    with pytest.raises(RuntimeError, match=r"can't be cast|bool"):
        getattr(e, op)(*args)


def test_inplace_result_cast_message():
    with pytest.raises(RuntimeError, match=r"\[add_\] result type Float can't be cast to the desired output type Long"):
        ember.ones(2, dtype=ember.int64).add_(1.5)


def test_inplace_broadcast_shape_error():
    with pytest.raises(RuntimeError, match=r"\[add_\].*\[3\].*\[2, 3\]"):
        ember.ones(3).add_(ember.ones(2, 3))


def test_copy_and_fill():
    dst = ember.zeros(2, 3, dtype=ember.float64)
    src = ember.from_numpy(np.array([1, 2, 3], dtype=np.int32))
    v0 = dst._version
    dst.copy_(src)
    assert dst._version == v0 + 1
    np.testing.assert_array_equal(dst.numpy(), [[1, 2, 3], [1, 2, 3]])
    t = dst.t()
    t.copy_(ember.from_numpy(np.arange(6, dtype=np.float32).reshape(3, 2)))
    np.testing.assert_array_equal(dst.numpy(), np.arange(6).reshape(3, 2).T)
    dst.fill_(ember.tensor(7.5) if hasattr(ember, "tensor") else 7.5)
    assert (dst == 7.5).all().item() if hasattr(dst, "all") else dst.numpy().tolist() == [[7.5] * 3] * 2
    with pytest.raises(RuntimeError, match=r"\[copy_\].*\[4\].*\[2, 3\]"):
        dst.copy_(ember.zeros(4))


def test_copy_gradient_flows_to_source_with_source_dtype():
    src = ember.from_numpy(np.array([1.0, 2.0, 3.0])).requires_grad_()  # float64
    y = src.to(ember.float32) * 2
    y.backward(ember.ones(3))
    assert src.grad.dtype == ember.float64
    np.testing.assert_allclose(src.grad.numpy(), [2, 2, 2])
    a = ember.from_numpy(np.array([1.0, 2.0], dtype=np.float32)).requires_grad_()
    b = ember.from_numpy(np.array([5.0, 6.0], dtype=np.float32)).requires_grad_()
    c = a * 1
    c.copy_(b * 3)
    c.backward(ember.ones(2))
    np.testing.assert_allclose(b.grad.numpy(), [3, 3])
    np.testing.assert_allclose(a.grad.numpy(), [0, 0])


def test_to_variants():
    x = ember.from_numpy(np.array([1.5, -2.0], dtype=np.float32))
    assert x.to(ember.float32)._is_same(x)
    assert not x.to(ember.float32, copy=True)._is_same(x)
    assert x.to("cpu")._is_same(x)
    assert x.to(ember.device("cpu"), ember.float64).dtype == ember.float64
    assert x.to(ember.zeros(1, dtype=ember.int64)).dtype == ember.int64
    assert x.to(dtype=ember.float16).dtype == ember.float16
    for m, d in [("float", "float32"), ("double", "float64"), ("half", "float16"), ("bfloat16", "bfloat16"),
                 ("long", "int64"), ("int", "int32"), ("bool", "bool")]:
        assert getattr(x, m)().dtype == getattr(ember, d)
    assert x.long().tolist() == [1, -2]
    assert x.bool().tolist() == [True, True]


# ---- errors -----------------------------------------------------------------------------------------

def test_broadcast_error_names_shapes():
    with pytest.raises(RuntimeError, match=r"\[add\].*\[2, 3\].*\[4\]"):
        ember.ones(2, 3) + ember.ones(4)
    with pytest.raises(RuntimeError, match=r"\[mul\].*\[5\].*\[3, 2\]"):
        ember.ones(5) * ember.ones(3, 2)


def test_bitwise_on_float_raises_type_error():
    with pytest.raises(TypeError, match=r"bitwise_and"):
        ember.ones(3) & ember.ones(3)
    with pytest.raises(TypeError, match=r"bitwise_not"):
        ~ember.ones(3)
    with pytest.raises(RuntimeError):
        torch.ones(3) & torch.ones(3)


def test_integer_negative_power_error():
    with pytest.raises(RuntimeError, match=r"Integers to negative integer powers are not allowed"):
        ember.ones(3, dtype=ember.int64) ** -1
    # Tensor exponents are allowed (torch gives 0, except for bases 1 and -1).
    base = np.array([2, 1, -1, 3])
    exps = np.array([-1, -2, -3, 2])
    assert ember.pow(ember.from_numpy(base), ember.from_numpy(exps)).tolist() == \
        torch.pow(torch.from_numpy(base), torch.from_numpy(exps)).tolist()
    assert (ember.ones(3, dtype=ember.int64) ** -1.0).dtype == ember.float32


def test_bool_sub_and_neg_errors():
    b = ember.ones(2, dtype=ember.bool)
    with pytest.raises(RuntimeError, match=r"Subtraction"):
        b - b
    with pytest.raises(RuntimeError, match=r"Negation"):
        -b


def test_where_requires_bool_condition_and_gelu_mode():
    with pytest.raises(TypeError, match=r"\[where\].*bool"):
        ember.where(ember.ones(2), ember.ones(2), ember.ones(2))
    with pytest.raises(ValueError, match=r"\[gelu\]"):
        ember.gelu(ember.ones(2), approximate="fast")
    with pytest.raises(RuntimeError, match=r"\[clamp\]"):
        ember.clamp(ember.ones(2))


def test_integer_floor_divide_by_zero():
    with pytest.raises(RuntimeError, match=r"ZeroDivisionError"):
        ember.ones(3, dtype=ember.int64) // 0


def test_unsupported_dtype_errors():
    with pytest.raises(TypeError):
        ember.gelu(ember.ones(3, dtype=ember.int64))
    with pytest.raises(TypeError):
        ember.lerp(ember.ones(3, dtype=ember.int64), ember.ones(3, dtype=ember.int64), 0.5)


def test_autograd_through_scalar_ops_and_backward_rules():
    x = ember.from_numpy(np.array([0.5, -1.5, 2.0])).requires_grad_()
    y = (3 - x) * 2 / (x ** 2 + 1)
    y.backward(ember.ones(3))
    xt = torch.tensor([0.5, -1.5, 2.0], dtype=torch.float64, requires_grad=True)
    ((3 - xt) * 2 / (xt ** 2 + 1)).backward(torch.ones(3, dtype=torch.float64))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int8", "float16"])
@pytest.mark.parametrize("shape", [(64, 96), (70, 45), (3, 40, 72)])
def test_transposed_copy_tiled_path(dtype, shape):
    """Large transposed sources take the tiled (and for 4-byte types, AVX 8x8) copy path."""
    a = np.random.default_rng(0).uniform(-50, 50, size=shape).astype(dtype)
    e = ember.from_numpy(a)
    perm = (1, 0) if len(shape) == 2 else (0, 2, 1)
    got = e.permute(*perm).contiguous()
    assert got.is_contiguous()
    np.testing.assert_array_equal(got.numpy(), np.ascontiguousarray(a.transpose(perm)))
    dst = ember.zeros(*a.transpose(perm).shape, dtype=getattr(ember, dtype))
    dst.copy_(e.permute(*perm))
    np.testing.assert_array_equal(dst.numpy(), a.transpose(perm))


@pytest.mark.parametrize("src,dst", [("float32", "float16"), ("float16", "float32"), ("float32", "bfloat16"),
                                     ("bfloat16", "float32")])
def test_dense_half_conversions_match_torch(src, dst):
    a = np.random.default_rng(1).uniform(-70000, 70000, size=5000)
    a[:4] = [np.nan, np.inf, -np.inf, 1e-8]
    t = torch.from_numpy(a).to(getattr(torch, src))
    e = ember.from_numpy(a).to(getattr(ember, src))
    te, ee = t.to(getattr(torch, dst)), e.to(getattr(ember, dst))
    np.testing.assert_array_equal(to_float64(ee), te.double().numpy())


def to_float64(e):
    return e.to(ember.float64).numpy()


def test_copy_from_overlapping_view():
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    e = ember.from_numpy(a.copy())
    e.copy_(e.t())
    np.testing.assert_array_equal(e.numpy(), a.T)
    e2 = ember.from_numpy(a.copy())
    e2[1:].copy_(e2[:-1])
    expected = a.copy()
    expected[1:] = a[:-1]
    np.testing.assert_array_equal(e2.numpy(), expected)


ACTIVATIONS = {
    "tanh": (lambda lib, x: lib.tanh(x)),
    "sigmoid": (lambda lib, x: lib.sigmoid(x)),
    "relu": (lambda lib, x: lib.relu(x)),
    "gelu": (lambda lib, x: lib.gelu(x) if lib is ember else torch.nn.functional.gelu(x)),
    "gelu_tanh": (lambda lib, x: lib.gelu(x, approximate="tanh") if lib is ember
                  else torch.nn.functional.gelu(x, approximate="tanh")),
    "silu": (lambda lib, x: lib.silu(x) if lib is ember else torch.nn.functional.silu(x)),
}


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_fused_activation_backward_matches_torch(name, dtype, device):
    """Plain backward takes the fused single-pass kernels (Note [Fused activation backward]; CPU and
    CUDA), including non-contiguous grads and NaN/inf/0 inputs. torch runs on the CPU as reference."""
    fn = ACTIVATIONS[name]
    rng = rng_for_test()
    a = rng.uniform(-6, 6, size=(33, 20))
    a[0, :4] = [np.nan, np.inf, -np.inf, 0.0]
    g = rng.standard_normal((20, 33))  # transposed below: a non-contiguous incoming gradient
    xe = ember.from_numpy(a).to(getattr(ember, dtype)).to(device).requires_grad_()
    xt = torch.from_numpy(a).to(getattr(torch, dtype)).requires_grad_()
    fn(ember, xe).backward(ember.from_numpy(g).to(getattr(ember, dtype)).to(device).t())
    fn(torch, xt).backward(torch.from_numpy(g).to(getattr(torch, dtype)).t())
    assert xe.grad.dtype == getattr(ember, dtype)
    rtol, atol = {"float64": (1e-7, 1e-7), "float32": (1e-4, 1e-5)}.get(dtype, (2e-2, 2e-2))
    np.testing.assert_allclose(to_float64(xe.grad.cpu()), xt.grad.double().numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_double_backward_keeps_composite_rule(name):
    """With create_graph the rule stays differentiable: second derivatives match torch."""
    fn = ACTIVATIONS[name]
    a = rng_for_test().uniform(-3, 3, size=(4, 5))
    xe = ember.from_numpy(a).requires_grad_()
    xt = torch.from_numpy(a).requires_grad_()
    (ge,) = ember.autograd.grad(fn(ember, xe).sum(), xe, create_graph=True)
    (gt,) = torch.autograd.grad(fn(torch, xt).sum(), xt, create_graph=True)
    np.testing.assert_allclose(ge.detach().numpy(), gt.detach().numpy(), rtol=1e-9, atol=1e-12)
    if name == "relu":  # piecewise linear: its second derivative is 0 (no graph to differentiate)
        return
    assert ge.requires_grad
    (gge,) = ember.autograd.grad((ge * ge).sum(), xe)
    (ggt,) = torch.autograd.grad((gt * gt).sum(), xt)
    np.testing.assert_allclose(gge.numpy(), ggt.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_propagate_nan_either_side(op, dtype):
    a = np.array([np.nan, 1.0, np.nan, -np.inf, 2.0, 0.0] * 11)  # 66 elements: vector body + tail
    b = np.array([1.0, np.nan, np.nan, 3.0, -np.inf, -0.0] * 11)
    got = getattr(ember, op)(ember.from_numpy(a).to(getattr(ember, dtype)), ember.from_numpy(b).to(getattr(ember, dtype)))
    want = getattr(torch, op)(torch.from_numpy(a).to(getattr(torch, dtype)), torch.from_numpy(b).to(getattr(torch, dtype)))
    np.testing.assert_array_equal(to_float64(got), want.double().numpy())


@pytest.mark.parametrize("device", devices())
def test_integer_trunc_division_is_exact_and_rejects_zero(device):
    """div(rounding_mode='trunc') on integers: exact beyond 2**53 (no float quotient), torch's values
    for mixed signs and every integer dtype, and ZeroDivisionError for a zero divisor (not garbage)."""
    rng = rng_for_test()
    for dt in ["int64", "int32", "int8", "uint8"]:
        a = rng.integers(0 if dt == "uint8" else -50, 50, size=64).astype(dt)
        b = rng.integers(1 if dt == "uint8" else -7, 8, size=64).astype(dt)
        b[b == 0] = 3
        got = ember.div(ember.from_numpy(a).to(device), ember.from_numpy(b).to(device), rounding_mode="trunc")
        want = torch.div(torch.from_numpy(a), torch.from_numpy(b), rounding_mode="trunc")
        assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
        np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())
    big = [2 ** 62 + 1, -(2 ** 62 + 1)]
    assert ember.div(ember.tensor(big).to(device), 3, rounding_mode="trunc").tolist() == \
        torch.div(torch.tensor(big), 3, rounding_mode="trunc").tolist()
    if device == "cpu":  # CUDA kernels, torch's too, do not check the divisor (that would cost a sync)
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            ember.div(ember.tensor([5, -7]), ember.tensor([0, 2]), rounding_mode="trunc")
    with pytest.raises(NotImplementedError, match=r"\[div\].*Bool"):
        ember.div(ember.tensor([True]), ember.tensor([True]), rounding_mode="trunc")
