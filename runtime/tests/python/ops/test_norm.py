"""Fused layer_norm (ops/norm.cpp, cpu/norm.cpp, cuda/norm.cu) against torch: values, gradients,
double backward, mixed dtypes, determinism of the parameter gradients and errors."""
import numpy as np
import pytest
import torch

import ember
from optest import (random_pair, FLOAT_DTYPES, OpCase, assert_close, check_case, devices, finite_difference_check,
                    gradcheck_params, params, to_ember, to_numpy, to_torch)


def ln(k, affine="wb", eps=1e-5):
    """layer_norm over the last k dims of x; inputs are (x, weight?, bias?) as `affine` names them."""
    def fn(lib, x, *p):
        shape = tuple(x.shape[x.dim() - k:])
        w = p[0] if "w" in affine else None
        b = p[-1] if "b" in affine else None
        return lib.nn.functional.layer_norm(x, shape, w, b, eps)
    return fn


def shapes_for(xs, k, affine):
    out = []
    for x in xs:
        ns = x[len(x) - k:]
        out.append([x] + [ns] * len(affine))
    return out


def offset_rows(rng, shapes, dtype):
    """Rows far from zero with a small spread: two-pass statistics keep them exact (no cancellation)."""
    np_dtype = np.float32 if dtype == "bfloat16" else dtype
    x = 1000.0 + rng.uniform(-1, 1, size=shapes[0])
    return [x.astype(np_dtype)] + [rng.uniform(-2, 2, size=s).astype(np_dtype) for s in shapes[1:]]


def constant_rows(rng, shapes, dtype):
    """Every row constant: variance 0, so out = bias and rstd = 1/sqrt(eps) amplifies any error in the
    mean. Values on a 1/4 grid keep every partial sum exact, so both libraries get mean == x."""
    np_dtype = np.float32 if dtype == "bfloat16" else dtype
    x = np.repeat(rng.integers(-8, 9, size=shapes[0][:-1] + (1,)) / 4.0, shapes[0][-1], axis=-1)
    return [x.astype(np_dtype)] + [rng.uniform(-2, 2, size=s).astype(np_dtype) for s in shapes[1:]]


# Shapes by path: N <= 1024 is the warp-per-row CUDA path (N % 4 / % 8 == 0 takes 16-byte vectors,
# 37 does not), N > 1024 one block per row (2000: row cached in shared memory, 12000: not cached).
WARP = [(4, 8), (7, 37), (5, 1000), (3, 1024)]
BLOCK = [(3, 2000), (2, 1025)]
HALF_TOL = {"float16": (2e-2, 2e-2), "bfloat16": (5e-2, 5e-2)}

def cases(name, fn, shapes, dtypes=tuple(FLOAT_DTYPES), **kw):
    """One OpCase, plus a bfloat16 one comparing only the input's gradient: torch's CPU kernel sums
    bfloat16 parameter gradients with errors up to ~0.1 (test_half_types_accumulate_in_float checks
    ours against a float64 reference instead)."""
    out = [OpCase(name, fn, shapes, [d for d in dtypes if d != "bfloat16"], **kw)]
    if "bfloat16" in dtypes:
        out.append(OpCase(name + "_bf16", fn, shapes, ["bfloat16"], **{**kw, "grad_inputs": [0], "gradcheck": False}))
    return out


CASES = [
    *cases("layer_norm", ln(1), shapes_for(WARP + BLOCK + [(0, 8), (2, 1, 3, 5)], 1, "wb"), tol=HALF_TOL),
    *cases("layer_norm_2d_shape", ln(2), shapes_for([(2, 3, 16), (4, 2, 3), (0, 3, 4)], 2, "wb"), tol=HALF_TOL),
    *cases("layer_norm_no_affine", ln(1, ""), shapes_for([(4, 8), (7, 37), (3, 2000), (0, 8), (6,)], 1, ""),
           tol=HALF_TOL),
    *cases("layer_norm_weight_only", ln(1, "w"), shapes_for([(4, 8), (5, 1000), (2, 1025)], 1, "w"), tol=HALF_TOL),
    *cases("layer_norm_bias_only", ln(1, "b"), shapes_for([(4, 8), (3, 2000)], 1, "b"), tol=HALF_TOL),
    # Many rows: several CPU row blocks / CUDA row chunks feed the parameter-gradient partial sums.
    OpCase("layer_norm_many_rows", ln(1), shapes_for([(300, 64), (1100, 8), (70, 3, 24)], 1, "wb"),
           ["float32", "float64"], noncontiguous=False, tol={"float32": (1e-4, 1e-4)}),  # sums of ~1000 float32 terms
    OpCase("layer_norm_uncached_block", ln(1), shapes_for([(2, 12000)], 1, "wb"), ["float32", "float64"],
           noncontiguous=False),
    OpCase("layer_norm_3d_of_4d", ln(3, "wb", eps=1e-3), shapes_for([(2, 2, 3, 4)], 3, "wb"),
           ["float32", "float64"]),
    OpCase("layer_norm_offset_rows", ln(1), shapes_for([(4, 64), (3, 2000)], 1, "wb"), ["float32", "float64"],
           make_inputs=offset_rows, gradcheck=False, tol={"float32": (2e-3, 2e-3)}),
    # float32 slack: rstd = 1/sqrt(eps) ~ 316 amplifies the libraries' different rounding of mean(grad).
    OpCase("layer_norm_constant_rows", ln(1), shapes_for([(3, 16), (2, 1500)], 1, "wb"), ["float32", "float64"],
           make_inputs=constant_rows, gradcheck=False, tol={"float32": (2e-3, 2e-3)}),
]

# torch's mixed dtype: float16/bfloat16 input with float32 parameters -> output in the input dtype.
# torch supports it on the CPU only (ember on both: test_half_types_accumulate_in_float covers CUDA
# and the parameter grads, which torch's CPU kernel gets ~5e-2 wrong here).
MIXED = OpCase("layer_norm_mixed_params", ln(1), shapes_for([(4, 8), (5, 1000), (3, 2000)], 1, "wb"),
               ["float16", "bfloat16"], input_dtypes=[None, "float32", "float32"], grad_inputs=[0], tol=HALF_TOL)


@pytest.mark.parametrize("case,shapes,dtype,device,noncontig",
                         params(CASES) + [p for p in params([MIXED]) if p.values[3] == "cpu"])
def test_matches_torch(case, shapes, dtype, device, noncontig):
    check_case(case, shapes, dtype, device, noncontig)


@pytest.mark.parametrize("case,shapes", gradcheck_params(CASES))
def test_gradcheck(case, shapes):
    finite_difference_check(case, shapes)


# ---- beyond the differential table -----------------------------------------------------------------

@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("shape,k", [((4, 3, 8), 1), ((2, 3, 5), 2), ((3, 1100), 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_double_backward_matches_torch(device, shape, k, affine):
    """create_graph=True: the backward runs as ember ops, so second derivatives w.r.t. x, weight and
    the upstream gradient itself match torch."""
    rng = np.random.default_rng(11)
    ns = shape[len(shape) - k:]
    xt, xe = random_pair(rng, shape, device=device)
    vt, ve = random_pair(rng, shape, device=device)
    wt, we = random_pair(rng, ns, device=device) if affine else (None, None)
    bt, be = random_pair(rng, ns, device=device) if affine else (None, None)
    results = []
    for lib, x, v, w, b in [(torch, xt, vt, wt, bt), (ember, xe, ve, we, be)]:
        out = lib.nn.functional.layer_norm(x, ns, w, b, 1e-5)
        first_inputs = [x, w, b] if affine else [x]
        first = lib.autograd.grad(out, first_inputs, grad_outputs=v, create_graph=True)
        loss = (first[0] * first[0] * first[0]).sum()
        if affine:
            loss = loss + (first[1] * first[1]).sum() + (first[2] * first[1]).sum()
        second_inputs = [x, v, w] if affine else [x, v]
        second = lib.autograd.grad(loss, second_inputs)
        results.append((first, second))
    (tf, ts), (ef, es) = results
    for a, e in zip(ef + es, tf + ts):
        assert_close(a, e, "float64", "double backward")


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_native_layer_norm_matches_torch(device, dtype):
    rng = np.random.default_rng(3)
    xt, xe = random_pair(rng, (2, 3, 4, 5), dtype, device)
    wt, we = random_pair(rng, (4, 5), dtype, device)
    bt, be = random_pair(rng, (4, 5), dtype, device)
    want = torch.native_layer_norm(xt, (4, 5), wt, bt, 1e-5)
    got = ember.native_layer_norm(xe, (4, 5), we, be, 1e-5)
    for g, w, what in zip(got, want, ["out", "mean", "rstd"]):
        assert_close(g, w, dtype, what)
    assert got[0].requires_grad and not got[1].requires_grad and not got[2].requires_grad


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_statistics_are_float32_for_half_types(dtype):
    x = ember.randn(3, 8).to(getattr(ember, dtype))
    out, mean, rstd = ember.native_layer_norm(x, (8,), None, None, 1e-5)
    assert out.dtype == x.dtype and mean.dtype == ember.float32 and rstd.dtype == ember.float32
    assert tuple(mean.shape) == (3, 1)
    ref = x.to(ember.float32)
    np.testing.assert_allclose(to_numpy(mean)[:, 0], to_numpy(ref).mean(1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype,tol", [("bfloat16", 1e-2), ("float16", 2e-3)])
@pytest.mark.parametrize("param_dtype", ["same", "float32"])
@pytest.mark.parametrize("shape", [(300, 64), (5, 1000), (3, 2000)])
def test_half_types_accumulate_in_float(device, dtype, tol, param_dtype, shape):
    """Half-type results (also with float32 parameters) stay within a few output ulps of a float64
    reference computed from the same rounded inputs; torch's CPU kernels are ~10x further off."""
    rng = np.random.default_rng(9)
    n = shape[-1]
    pd = dtype if param_dtype == "same" else "float32"
    dtypes = [dtype, pd, pd, dtype]  # x, weight, bias, upstream grad
    arrays = [rng.uniform(-3, 3, size=s).astype(np.float32) for s in [shape, (n,), (n,), shape]]
    rounded = [to_numpy(to_ember(a, d)).astype(np.float64) for a, d in zip(arrays, dtypes)]
    ref_in = [torch.from_numpy(a).requires_grad_(i < 3) for i, a in enumerate(rounded)]
    ref_out = torch.nn.functional.layer_norm(ref_in[0], (n,), ref_in[1], ref_in[2])
    ref_out.backward(ref_in[3])
    em_in = [to_ember(a, d, device) for a, d in zip(arrays, dtypes)]
    for t in em_in[:3]:
        t.requires_grad_(True)
    em_out = ember.nn.functional.layer_norm(em_in[0], (n,), em_in[1], em_in[2])
    em_out.backward(em_in[3])
    assert em_out.dtype == em_in[0].dtype and em_in[1].grad.dtype == em_in[1].dtype
    for got, want, what in [(em_out, ref_out, "out")] + [(e.grad, r.grad, f"grad {i}") for i, (e, r) in
                                                         enumerate(zip(em_in[:3], ref_in[:3]))]:
        got, want = to_numpy(got).astype(np.float64), want.detach().numpy()
        assert got.dtype == np.float64 and np.abs(got - want).max() <= tol * (np.abs(want).max() + 1), what


def test_empty_normalized_shape_matches_torch():
    """N == 0: torch returns an empty output, mean 0 and rstd NaN."""
    xt, xe = torch.zeros(3, 0), ember.zeros(3, 0)
    want = torch.native_layer_norm(xt, (0,), None, None, 1e-5)
    got = ember.native_layer_norm(xe, (0,), None, None, 1e-5)
    for g, w in zip(got, want):
        assert_close(g, w, "float32", "N == 0")


def test_parameter_gradients_are_deterministic_across_thread_counts():
    """Note [Deterministic parameter gradients]: the row blocks depend on the shape, not on threads."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((513, 96)).astype(np.float32)
    g = rng.standard_normal((513, 96)).astype(np.float32)
    w = rng.standard_normal(96).astype(np.float32)
    b = rng.standard_normal(96).astype(np.float32)
    prev = ember.get_num_threads()
    results = []
    try:
        for threads in [1, 2, 1, 2]:
            ember.set_num_threads(threads)
            xe, we, be = (ember.from_numpy(a.copy()).requires_grad_(True) for a in (x, w, b))
            ember.nn.functional.layer_norm(xe, (96,), we, be).backward(ember.from_numpy(g))
            results.append([to_numpy(t.grad) for t in (xe, we, be)])
    finally:
        ember.set_num_threads(prev)
    for r in results[1:]:
        for a, e in zip(r, results[0]):
            np.testing.assert_array_equal(a, e)


def test_module_layernorm_uses_fused_op():
    m = ember.nn.LayerNorm((3, 4))
    x = ember.randn(2, 3, 4, requires_grad=True)
    y = m(x)
    assert "Layer_norm" in type(y.grad_fn).__name__ or "layer_norm" in y.grad_fn.name().lower()
    y.sum().backward()
    assert m.weight.grad is not None and m.bias.grad is not None and x.grad is not None


def test_frozen_parameters_and_input_only_grads():
    """Only the inputs that require grad get one (the fused op's output mask)."""
    rng = np.random.default_rng(8)
    for needs in [(True, False, False), (False, True, False), (False, False, True), (False, True, True)]:
        tt = [random_pair(rng, s, grad=r)[0] for s, r in zip([(5, 6), (6,), (6,)], needs)]
        et = [to_ember(to_numpy(t), "float64").requires_grad_(r) for t, r in zip(tt, needs)]
        torch.nn.functional.layer_norm(tt[0], (6,), tt[1], tt[2]).pow(2).sum().backward()
        ember.nn.functional.layer_norm(et[0], (6,), et[1], et[2]).pow(2).sum().backward()
        for t, e, r in zip(tt, et, needs):
            if r:
                assert_close(e.grad, t.grad, "float64", f"needs={needs}")
            else:
                assert e.grad is None


def test_inplace_change_of_saved_input_is_detected():
    x = ember.randn(3, 4, requires_grad=True)
    h = x * 1
    y = ember.nn.functional.layer_norm(h, (4,))
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# ---- errors -----------------------------------------------------------------------------------------

def test_integer_input_raises_like_torch():
    with pytest.raises(NotImplementedError, match=r"\[layer_norm\] not implemented for 'Long'"):
        ember.nn.functional.layer_norm(ember.ones(3, 4, dtype=ember.int64), (4,))
    with pytest.raises(NotImplementedError):
        torch.nn.functional.layer_norm(torch.ones(3, 4, dtype=torch.int64), (4,))


@pytest.mark.parametrize("bad", ["weight", "bias"])
def test_parameter_shape_mismatch(bad):
    x = ember.randn(3, 4)
    kw = {bad: ember.ones(3)}
    with pytest.raises(RuntimeError, match=rf"\[layer_norm\] Expected {bad} to be of same shape as normalized_shape, "
                                           rf"but got {bad} of shape \[3\] and normalized_shape = \[4\]"):
        ember.nn.functional.layer_norm(x, (4,), **kw)


def test_input_shape_mismatch():
    with pytest.raises(RuntimeError, match=r"\[layer_norm\] Given normalized_shape=\[5\], expected input with shape "
                                           r"\[\*, 5\], but got input of size\[3, 4\]"):
        ember.nn.functional.layer_norm(ember.randn(3, 4), (5,))
    with pytest.raises(RuntimeError, match=r"\[layer_norm\] Given normalized_shape=\[2, 3, 4\]"):
        ember.nn.functional.layer_norm(ember.randn(3, 4), (2, 3, 4))
    with pytest.raises(RuntimeError, match=r"\[layer_norm\] Expected normalized_shape to be at least 1-dimensional"):
        ember.nn.functional.layer_norm(ember.randn(3, 4), ())


def test_mixed_dtype_rejected_like_torch():
    with pytest.raises(RuntimeError, match=r"\[layer_norm\] mixed dtype.*float64\[3, 4\].*float32\[4\]"):
        ember.nn.functional.layer_norm(ember.randn(3, 4, dtype=ember.float64), (4,), ember.ones(4))
    with pytest.raises(RuntimeError, match=r"\[layer_norm\] mixed dtype"):
        ember.nn.functional.layer_norm(ember.randn(3, 4), (4,), ember.ones(4), ember.ones(4, dtype=ember.float64))
    with pytest.raises(RuntimeError):
        torch.nn.functional.layer_norm(torch.randn(3, 4, dtype=torch.float64), (4,), torch.ones(4))
