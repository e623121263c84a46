"""Elementwise compositions vs torch (addcmul, addcdiv, xlogy, logit, sinc, fmax/fmin, float_power,
heaviside, deg2rad/rad2deg, frac, sgn, signbit, isin, isneginf/isposinf, isreal) and ember.special
against torch.special: values, gradients at the special points, in-place forms, errors."""
import numpy as np
import pytest

import ember
from optest import FLOAT_DTYPES, OpCase, op_tests

F = ["float32", "float64"]
BIN = [[(3, 4), (3, 4)], [(2, 1, 3), (4, 3)], [(3,), ()]]
TERNARY = [[(3, 4), (3, 4), (3, 4)], [(2, 1, 3), (4, 3), (3,)], [(3,), (), ()]]


def with_zeros_and_nans(rng, shapes, dtype):
    out = []
    for s in shapes:
        a = rng.uniform(0.1, 3, size=s)
        flat = a.reshape(-1)
        for j, v in zip(range(min(flat.size, 3)), (0.0, np.nan, 0.0)):
            flat[j] = v
        out.append(np.asarray(a).astype(dtype))
    return out


def specials(rng, shapes, dtype):
    return [np.array([-np.inf, -2.0, -0.0, 0.0, 0.5, np.inf, np.nan, 3.0], dtype=dtype)]


CASES = [
    OpCase("addcmul_addcdiv", lambda lib, a, b, c: (lib.addcmul(a, b, c), lib.addcmul(a, b, c, value=-0.5),
                                                    a.addcdiv(b, c.abs() + 1, value=2), lib.addcdiv(a, b, c.abs() + 1)),
           TERNARY, FLOAT_DTYPES, tol={"bfloat16": (0.25, 0.1)}),  # bf16 products summed into a 0-dim grad
    OpCase("addcmul_inplace", lambda lib, a, b, c: (a.clone().addcmul_(b, c, value=2), a.clone().addcdiv_(b, c.abs() + 1)),
           [[(3, 4), (3, 4), (4,)]], F),
    OpCase("addcmul_int", lambda lib, a, b, c: lib.addcmul(a, b, c, value=3), [[(3,), (3,), (3,)]], ["int64"]),
    OpCase("addcdiv_int", lambda lib, a, b, c: lib.addcdiv(a, b, c), [[(3,), (3,), (3,)]], ["int64"], grad=False),
    OpCase("xlogy", lambda lib, x, y: (lib.xlogy(x, y), x.xlogy(y), lib.xlogy(x, 2.0), lib.xlogy(2, y),
                                       lib.special.xlogy(x, y), lib.special.xlog1py(x, y)),
           [[(3, 4), (3, 4)], [(6,), (6,)]], F, make_inputs=with_zeros_and_nans, gradcheck=False),
    OpCase("xlogy_smooth", lambda lib, x, y: (lib.xlogy(x, y), lib.special.xlog1py(x, y)), BIN, F, low=0.2, high=3),
    OpCase("logit", lambda lib, p: (lib.logit(p), lib.logit(p, eps=0.1), p.logit(0.2), lib.special.logit(p)),
           [[(3, 4)], [()]], F, low=0.05, high=0.95),
    OpCase("sinc", lambda lib, x: (lib.sinc(x), x.sinc(), lib.special.sinc(x)), [[(3, 4)], [()]], F),
    OpCase("sinc_at_zero", lambda lib, x: lib.sinc(x * 0), [[(3,)]], F, gradcheck=False),
    OpCase("fmax_fmin", lambda lib, a, b: (lib.fmax(a, b), lib.fmin(a, b), a.fmax(b)), BIN, F),
    OpCase("fmax_nan_ties", lambda lib, a, b: (lib.fmax(a, b), lib.fmin(a, b)), [[(8,), (8,)]], F, gradcheck=False,
           make_inputs=lambda rng, s, d: [np.array([1, np.nan, 2, np.nan, 3, 0, -1, 5], dtype=d),
                                          np.array([1, 2, np.nan, np.nan, 3, 0, 4, 5], dtype=d)]),
    OpCase("float_power", lambda lib, a, b: (lib.float_power(a, b), a.float_power(2), lib.float_power(2, b)),
           [[(3, 4), (3, 4)], [(3,), ()]], ["float32", "int64"], low=0.5, high=2),
    OpCase("heaviside", lambda lib, x, v: lib.heaviside(x, v), [[(8,), (8,)], [(8,), ()]], F + ["int64"], grad=False,
           make_inputs=lambda rng, s, d: [rng.integers(-1, 2, size=s[0]).astype(d), rng.uniform(-1, 1, s[1]).astype(d)]),
    OpCase("deg_rad", lambda lib, x: (lib.deg2rad(x), lib.rad2deg(x), x.deg2rad()), [[(3, 4)], [()]],
           FLOAT_DTYPES + ["int64"]),
    OpCase("frac_sgn", lambda lib, x: (lib.frac(x), x.frac(), lib.sgn(x), x.sgn()), [[(3, 4)]], F),
    OpCase("frac_int", lambda lib, x: lib.frac(x), [[(3,)]], ["int64"], grad=False),
    OpCase("predicates", lambda lib, x: (lib.signbit(x), lib.isneginf(x), lib.isposinf(x), lib.isreal(x)),
           [[(8,)]], F, grad=False, make_inputs=specials),
    OpCase("predicates_int", lambda lib, x: (lib.signbit(x), lib.isneginf(x), lib.isposinf(x)), [[(5,)]],
           ["int64", "int32", "bool"], grad=False),
    OpCase("isin", lambda lib, a, b: (lib.isin(a, b), lib.isin(a, b, invert=True), lib.isin(a, 1), lib.isin(2, b),
                                      lib.isin(a, b[:0])),
           [[(3, 4), (5,)], [(6,), (2, 2)], [(0,), (3,)]], F + ["int64"], grad=False,
           make_inputs=lambda rng, s, d: [rng.integers(0, 5, size=x).astype(d) for x in s]),
    OpCase("aliases_and_inplace", lambda lib, x, y: (lib.absolute(x), x.absolute(), lib.fix(x), x.clone().fix_(),
                                                     x.clone().absolute_(), x.clone().square_(),
                                                     x.clone().reciprocal_(), x.clone().cumprod_(1),
                                                     x.clone().float_power_(2)),
           [[(3, 4), (3, 4)]], ["float64"], low=0.5, high=2),
    OpCase("heaviside_inplace", lambda lib, x, y: x.clone().heaviside_(y), [[(3, 4), (3, 4)]], F, grad=False),
    OpCase("float_power_inplace_float32", lambda lib, x: x.clone().float_power_(2), [[(3,)]], ["float32"], grad=False),
    OpCase("fmod", lambda lib, a, b: (lib.fmod(a, b), a.fmod(b), lib.fmod(a, 2.5), a.clone().fmod_(b.expand_as(a))),
           [[(3, 4), (3, 4)], [(2, 4, 3), (4, 3)], [(3,), ()]], F,
           make_inputs=lambda rng, s, d: [rng.uniform(-9, 9, s[0]).astype(d),
                                          (rng.uniform(0.5, 3, s[1]) * rng.choice([-1, 1], s[1])).astype(d)]),
    OpCase("fmod_int", lambda lib, a, b: (lib.fmod(a, b), lib.fmod(a, 3)), BIN, ["int64", "int32"], grad=False,
           make_inputs=lambda rng, s, d: [rng.integers(-9, 9, s[0]).astype(d),
                                          (rng.integers(1, 4, s[1]) * rng.choice([-1, 1], s[1])).astype(d)]),
    OpCase("fmod_specials", lambda lib, a, b: lib.fmod(a, b), [[(8,), (8,)]], ["float32", "int64", "bool"], grad=False,
           make_inputs=lambda rng, s, d: [np.arange(-4, 4).astype(d), np.array([0, 1, 2, 0, 3, 1, 2, 3]).astype(d)]),
    OpCase("copysign", lambda lib, a, b: (lib.copysign(a, b), a.copysign(b), lib.copysign(a, -1.0),
                                          a.clone().copysign_(b.expand_as(a))),
           [[(3, 4), (3, 4)], [(2, 4, 3), (4, 3)], [(3,), ()]], F, make_inputs=lambda rng, s, d: [rng.uniform(-3, 3, x).astype(d) for x in s]),
    OpCase("copysign_specials", lambda lib, a, b: (lib.copysign(a, b), lib.copysign(b, a)), [[(8,), (8,)]], F,
           grad=False, make_inputs=lambda rng, s, d: [specials(rng, s[:1], d)[0], specials(rng, s[:1], d)[0][::-1].copy()]),
    OpCase("copysign_int", lambda lib, a, b: lib.copysign(a, b), [[(4,), (4,)]], ["int64"], grad=False),
    OpCase("special", lambda lib, x: (lib.special.expit(x), lib.special.erf(x), lib.special.erfc(x),
                                      lib.special.ndtr(x), lib.special.entr(x.abs() + 0.1), lib.special.expm1(x),
                                      lib.special.exp2(x), lib.special.log_softmax(x, 0), lib.special.softmax(x, -1),
                                      lib.special.logsumexp(x, [0])),
           [[(3, 4)]], F),
    OpCase("special_inverse", lambda lib, p: (lib.special.erfinv(p * 2 - 1), lib.special.ndtri(p)), [[(3, 4)]], F,
           low=0.05, high=0.95),
    OpCase("entr_specials", lambda lib, x: lib.special.entr(x), [[(8,)]], F, gradcheck=False, make_inputs=specials),
]

test_matches_torch, test_gradcheck = op_tests(CASES)


def test_errors():
    with pytest.raises(RuntimeError, match=r"\[addcdiv\] Integer division with addcdiv is no longer supported"):
        ember.addcdiv(ember.ones(2, dtype=ember.int64), ember.ones(2, dtype=ember.int64),
                      ember.ones(2, dtype=ember.int64))
    with pytest.raises(RuntimeError, match=r"\[heaviside\] heaviside is not yet implemented for tensors with different"):
        ember.heaviside(ember.ones(2), ember.ones(2, dtype=ember.float64))
    with pytest.raises(NotImplementedError, match=r"\[frac\]"):
        ember.frac(ember.ones(2, dtype=ember.int64))


def _frexp_values(rng, shapes, dtype):
    span = 10 if dtype == "float16" else 30
    a = rng.uniform(-40, 40, size=shapes[0]) * 2.0 ** rng.integers(-span, span, size=shapes[0])
    flat = a.reshape(-1)
    for j, v in zip(range(flat.size), (0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, 0.5, -4.0)):
        flat[j] = v
    return [a.astype(np.float32 if dtype == "bfloat16" else dtype)]


def _ints(low, high):
    return lambda rng, shapes, dtype: [rng.integers(low, high, size=s).astype(dtype) for s in shapes]


GAP_CASES = [
    OpCase("frexp", lambda lib, x: tuple(lib.frexp(x)) + tuple(x.frexp()), [[(3, 4)], [(0,)], [(9,)]],
           FLOAT_DTYPES, make_inputs=_frexp_values, gradcheck=False),
    OpCase("frexp_denormal", lambda lib, x: tuple(lib.frexp(x * 1e-300 * 1e-10)), [[(5,)]], ["float64"], grad=False),
    OpCase("frexp_smooth", lambda lib, x: lib.frexp(x).mantissa, [[(3, 4)]], F, low=0.3, high=5),
    OpCase("ldexp", lambda lib, x, e: (lib.ldexp(x, e), x.ldexp(e), x.clone().ldexp_(e)), [[(3, 4), (3, 4)],
                                                                                         [(2, 3), (3,)], [(0,), (0,)]],
           F, input_dtypes=[None, "int64"], make_inputs=lambda rng, s, d: [rng.uniform(-2, 2, s[0]).astype(d),
                                                                           rng.integers(0, 5, s[1])]),
    # torch's backward for integer exponents computes 2**e in integers (0 for e < 0): ember keeps the
    # true gradient 2**e, so negative exponents are compared as floats
    OpCase("ldexp_float_exponent", lambda lib, x, e: lib.ldexp(x, e), [[(3, 4), (3, 4)]], F, grad_inputs=[0],
           make_inputs=lambda rng, s, d: [rng.uniform(-2, 2, s[0]).astype(d), rng.integers(-6, 6, s[1]).astype(d)]),
    OpCase("ldexp_int", lambda lib, x, e: lib.ldexp(x, e), [[(4,), (4,)]], ["int64"], grad=False,
           make_inputs=_ints(-4, 5)),
    OpCase("gcd_lcm", lambda lib, a, b: (lib.gcd(a, b), lib.lcm(a, b), a.gcd(b), a.clone().lcm_(b.expand_as(a)),
                                         a.clone().gcd_(b.expand_as(a))),
           [[(3, 4), (3, 4)], [(2, 3), (3,)], [(0,), (0,)], [(5,), ()]], ["int64", "int32"], grad=False,
           make_inputs=_ints(-40, 41)),
    OpCase("gcd_float_refused", lambda lib, a, b: lib.gcd(a, b), [[(3,), (3,)]], F, grad=False),
    OpCase("compare_inplace", lambda lib, a, b: (a.clone().eq_(b), a.clone().ne_(b), a.clone().lt_(b),
                                                 a.clone().le_(b), a.clone().gt_(b), a.clone().ge_(b),
                                                 a.clone().greater_(b), a.clone().greater_equal_(b),
                                                 a.clone().less_(b), a.clone().less_equal_(b), a.clone().not_equal_(b),
                                                 a.clone().lt_(0.5)),
           [[(3, 4), (3, 4)], [(3, 4), (4,)], [(0, 2), (2,)]], F + ["int64"], grad=False, make_inputs=_ints(-1, 2)),
    OpCase("compare_inplace_broadcast_refused", lambda lib, a, b: a.clone().eq_(b), [[(4,), (3, 4)]], F, grad=False),
    OpCase("logical_inplace", lambda lib, a, b: (a.clone().logical_and_(b), a.clone().logical_or_(b)),
           [[(3, 4), (3, 4)], [(2, 3), (3,)]], F + ["int64", "bool"], grad=False, make_inputs=_ints(0, 2)),
    OpCase("remainder_subtract_inplace", lambda lib, a, b: (a.clone().remainder_(b), a.clone().subtract_(b),
                                                            a.clone().subtract_(b, alpha=3)),
           [[(3, 4), (3, 4)], [(3, 4), (4,)]], F, make_inputs=lambda rng, s, d: [
               rng.uniform(-5, 5, s[0]).astype(d), (rng.uniform(0.5, 2, s[1]) * rng.choice([-1, 1], s[1])).astype(d)]),
    OpCase("remainder_inplace_cast_refused", lambda lib, a: a.clone().remainder_(2.5), [[(3,)]], ["int64"],
           grad=False),
    OpCase("inplace_functions", lambda lib, x: (lib.relu_(x.clone()), lib.sigmoid_(x.clone()), lib.tanh_(x.clone()),
                                                lib.exp_(x.clone()), lib.sqrt_(x.abs()), lib.clamp_(x.clone(), -1, 1),
                                                lib.abs_(x.clone()), lib.neg_(x.clone()), lib.trunc_(x.clone()),
                                                lib.cos_(x.clone()), lib.erf_(x.clone()), lib.zero_(x.clone()),
                                                lib.fill_(x.clone(), 2.5), lib.xlogy_(x.abs(), x.abs() + 1)),
           [[(3, 4)], [(0,)]], F),
]

test_gaps_match_torch, test_gaps_gradcheck = op_tests(GAP_CASES)


def test_gap_errors():
    with pytest.raises(RuntimeError, match=r"\[frexp\] torch.frexp\(\) only supports floating-point dtypes"):
        ember.frexp(ember.ones(2, dtype=ember.int64))
    with pytest.raises(NotImplementedError, match=r"\[gcd\] \"gcd_cpu\" not implemented for 'Float'"):
        ember.gcd(ember.ones(2), ember.ones(2))
    with pytest.raises(RuntimeError, match=r"\[eq_\] output with shape \[3\] doesn't match the broadcast shape \[2, 3\]"):
        ember.ones(3).eq_(ember.ones(2, 3))
    with pytest.raises(RuntimeError, match=r"\[remainder_\] result type Float can't be cast to the desired output "
                                           r"type Long"):
        ember.ones(3, dtype=ember.int64).remainder_(2.5)


def test_inplace_comparison_writes_self_and_bumps_version():
    x = ember.tensor([1.0, 2.0, 3.0])
    before = x._version
    out = x.ge_(2.0)
    assert x.tolist() == out.tolist() == [0.0, 1.0, 1.0] and x._version > before
    y = ember.tensor([1.0, 2.0], requires_grad=True) * 1
    saved = y * y
    y.lt_(1.5)
    with pytest.raises(RuntimeError):  # mul saved y: the version counter catches the overwrite
        saved.sum().backward()
