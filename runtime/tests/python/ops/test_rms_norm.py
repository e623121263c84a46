"""Fused rms_norm (ops/norm.cpp, cpu/norm.cpp, cuda/norm.cu) against torch.nn.functional.rms_norm:
values, gradients, double backward, mixed dtypes, the default eps, determinism and errors."""
import numpy as np
import pytest
import torch

import ember
from optest import (random_pair, FLOAT_DTYPES, OpCase, assert_close, check_case, devices, finite_difference_check,
                    gradcheck_params, params, to_ember, to_numpy, to_torch)


def rms(k, weighted=True, eps=None):
    """rms_norm over the last k dims of x; inputs are (x, weight?)."""
    def fn(lib, x, *p):
        shape = tuple(x.shape[x.dim() - k:])
        return lib.nn.functional.rms_norm(x, shape, p[0] if weighted else None, eps)
    return fn


def shapes_for(xs, k, weighted=True):
    return [[x, x[len(x) - k:]] if weighted else [x] for x in xs]


def tiny_rows(rng, shapes, dtype):
    """Rows with mean(x^2) around eps: the default eps (float32's for half types) shows in the output."""
    np_dtype = np.float32 if dtype == "bfloat16" else dtype
    x = rng.uniform(-1, 1, size=shapes[0]) * 3e-4
    return [x.astype(np_dtype)] + [rng.uniform(-2, 2, size=s).astype(np_dtype) for s in shapes[1:]]


# Shapes by CUDA path (the layer_norm kernels with kRms): N <= 1024 one warp per row (N % 4 / % 8 == 0
# takes 16-byte vectors; 1, 37 do not), N > 1024 one block per row (2000 cached in shared memory,
# 1025 unaligned, 12000 not cached). Small shapes first: the finite-difference check takes two.
WARP = [(4, 8), (3, 1), (7, 37), (5, 1000), (3, 1024)]
BLOCK = [(3, 2000), (2, 1025)]
HALF_TOL = {"float16": (2e-2, 2e-2), "bfloat16": (5e-2, 5e-2)}


def cases(name, fn, shapes, dtypes=tuple(FLOAT_DTYPES), **kw):
    """One OpCase, plus a bfloat16 one comparing only the input's gradient: torch's CPU kernel sums
    bfloat16 weight gradients in bfloat16 (test_half_types_accumulate_in_float checks ours against a
    float64 reference instead)."""
    out = [OpCase(name, fn, shapes, [d for d in dtypes if d != "bfloat16"], **kw)]
    if "bfloat16" in dtypes:
        out.append(OpCase(name + "_bf16", fn, shapes, ["bfloat16"], **{**kw, "grad_inputs": [0], "gradcheck": False}))
    return out


CASES = [
    *cases("rms_norm", rms(1), shapes_for(WARP + BLOCK + [(0, 8), (2, 1, 3, 5), (6,)], 1), tol=HALF_TOL),
    *cases("rms_norm_2d_shape", rms(2), shapes_for([(2, 3, 4), (4, 2, 3), (0, 3, 4), (2, 3, 16)], 2), tol=HALF_TOL),
    *cases("rms_norm_no_weight", rms(1, False), shapes_for([(4, 8), (7, 37), (3, 2000), (0, 8), (6,)], 1, False),
           tol=HALF_TOL),
    *cases("rms_norm_eps", rms(1, eps=1e-5), shapes_for([(4, 8), (5, 1000)], 1), tol=HALF_TOL),
    # The default eps matters here: float32's epsilon for every dtype but float64 (torch's opmath rule).
    *cases("rms_norm_tiny_rows", rms(1), shapes_for([(3, 16), (2, 1500)], 1), make_inputs=tiny_rows,
           gradcheck=False, tol=HALF_TOL),
    # Many rows: several CPU row blocks / CUDA row chunks feed the weight-gradient partial sums.
    OpCase("rms_norm_many_rows", rms(1), shapes_for([(300, 64), (1100, 8), (70, 3, 24)], 1),
           ["float32", "float64"], noncontiguous=False, tol={"float32": (1e-4, 1e-4)}),
    OpCase("rms_norm_uncached_block", rms(1), shapes_for([(2, 12000)], 1), ["float32", "float64"],
           noncontiguous=False),
    OpCase("rms_norm_3d_of_4d", rms(3, eps=1e-3), shapes_for([(2, 2, 3, 4)], 3), ["float32", "float64"]),
    # torch takes any floating weight and returns the input's dtype (the weight's gradient keeps its own;
    # ours is computed in the input's precision, hence float32 tolerances for the float64 one).
    OpCase("rms_norm_float64_weight", rms(1), shapes_for([(4, 8), (3, 2000)], 1), ["float32"],
           input_dtypes=[None, "float64"], tol={"float32": (1e-5, 1e-5), "float64": (1e-5, 1e-5)}),
    OpCase("rms_norm_float16_weight", rms(1), shapes_for([(4, 8), (5, 1000)], 1), ["float32"],
           input_dtypes=[None, "float16"], grad_inputs=[0], tol={"float32": (2e-3, 2e-3)}),
]

# float16/bfloat16 input with float32 weight: torch's composite path (it warns that it cannot use its
# fused kernel) rounds x * rstd to the input dtype before scaling; ours scales in float32.
MIXED = OpCase("rms_norm_mixed_params", rms(1), shapes_for([(4, 8), (5, 1000), (3, 2000)], 1),
               ["float16", "bfloat16"], input_dtypes=[None, "float32"], grad_inputs=[0], tol=HALF_TOL)


@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")
@pytest.mark.parametrize("case,shapes,dtype,device,noncontig", params(CASES + [MIXED]))
def test_matches_torch(case, shapes, dtype, device, noncontig):
    check_case(case, shapes, dtype, device, noncontig)


@pytest.mark.parametrize("case,shapes", gradcheck_params(CASES))
def test_gradcheck(case, shapes):
    finite_difference_check(case, shapes)


# ---- beyond the differential table -----------------------------------------------------------------

@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("shape,k", [((4, 3, 8), 1), ((2, 3, 5), 2), ((3, 1100), 1)])
@pytest.mark.parametrize("weighted", [True, False])
def test_double_backward_matches_torch(device, shape, k, weighted):
    """create_graph=True: the backward runs as ember ops, so second derivatives w.r.t. x, weight and
    the upstream gradient match torch."""
    rng = np.random.default_rng(11)
    ns = shape[len(shape) - k:]
    xt, xe = random_pair(rng, shape, device=device)
    vt, ve = random_pair(rng, shape, device=device)
    wt, we = random_pair(rng, ns, device=device) if weighted else (None, None)
    results = []
    for lib, x, v, w in [(torch, xt, vt, wt), (ember, xe, ve, we)]:
        out = lib.nn.functional.rms_norm(x, ns, w, 1e-5)
        first = lib.autograd.grad(out, [x, w] if weighted else [x], grad_outputs=v, create_graph=True)
        loss = (first[0] * first[0] * first[0]).sum()
        if weighted:
            loss = loss + (first[1] * first[0].sum()).sum()
        second = lib.autograd.grad(loss, [x, v, w] if weighted else [x, v])
        results.append((first, second))
    (tf, ts), (ef, es) = results
    for a, e in zip(ef + es, tf + ts):
        assert_close(a, e, "float64", "double backward")


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_fused_rms_norm_returns_rstd_like_torch(device, dtype):
    rng = np.random.default_rng(3)
    xt, xe = random_pair(rng, (2, 3, 4, 5), dtype, device, grad=False)
    wt, we = random_pair(rng, (4, 5), dtype, device, grad=False)
    want = torch._fused_rms_norm(xt, [4, 5], wt, None)
    got = ember._C._fused_rms_norm(xe, [4, 5], we, None)
    assert tuple(got[1].shape) == (2, 3, 1, 1) and got[1].dtype == (ember.float64 if dtype == "float64"
                                                                      else ember.float32)
    tol = {"float16": (2e-3, 2e-3), "bfloat16": (2e-2, 2e-2)}
    assert_close(got[0], want[0], dtype, "out", tol)
    assert_close(got[1], want[1], "float32" if dtype != "float64" else "float64", "rstd", tol)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype,tol", [("bfloat16", 1e-2), ("float16", 2e-3)])
@pytest.mark.parametrize("param_dtype", ["same", "float32"])
@pytest.mark.parametrize("shape", [(300, 64), (5, 1000), (3, 2000)])
def test_half_types_accumulate_in_float(device, dtype, tol, param_dtype, shape):
    """Half-type results (also with a float32 weight) stay within a few output ulps of a float64
    reference computed from the same rounded inputs."""
    rng = np.random.default_rng(9)
    n = shape[-1]
    pd = dtype if param_dtype == "same" else "float32"
    dtypes = [dtype, pd, dtype]  # x, weight, upstream grad
    arrays = [rng.uniform(-3, 3, size=s).astype(np.float32) for s in [shape, (n,), shape]]

    def em(a, d, dev="cpu"):  # to_ember takes float16 from float16 arrays only
        return to_ember(a.astype(np.float16) if d == "float16" else a, d, dev)
    rounded = [to_numpy(em(a, d)).astype(np.float64) for a, d in zip(arrays, dtypes)]
    ref_in = [torch.from_numpy(a).requires_grad_(i < 2) for i, a in enumerate(rounded)]
    ref_out = torch.nn.functional.rms_norm(ref_in[0], (n,), ref_in[1], torch.finfo(torch.float32).eps)
    ref_out.backward(ref_in[2])
    em_in = [em(a, d, device) for a, d in zip(arrays, dtypes)]
    assert [str(t.dtype) for t in em_in] == [f"ember.{d}" for d in dtypes]
    for t in em_in[:2]:
        t.requires_grad_(True)
    em_out = ember.nn.functional.rms_norm(em_in[0], (n,), em_in[1])
    em_out.backward(em_in[2])
    assert em_out.dtype == em_in[0].dtype and em_in[1].grad.dtype == em_in[1].dtype
    for got, want, what in [(em_out, ref_out, "out"), (em_in[0].grad, ref_in[0].grad, "grad x"),
                            (em_in[1].grad, ref_in[1].grad, "grad weight")]:
        got, want = to_numpy(got).astype(np.float64), want.detach().numpy()
        err = np.abs(got - want).max()
        assert err <= tol * (np.abs(want).max() + 1), f"{what}: max error {err}"


def test_weight_gradient_is_deterministic_across_thread_counts():
    """Note [Deterministic parameter gradients]: the row blocks depend on the shape, not on threads."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((513, 96)).astype(np.float32)
    g = rng.standard_normal((513, 96)).astype(np.float32)
    w = rng.standard_normal(96).astype(np.float32)
    prev = ember.get_num_threads()
    results = []
    try:
        for threads in [1, 2, 1, 2]:
            ember.set_num_threads(threads)
            xe, we = (ember.from_numpy(a.copy()).requires_grad_(True) for a in (x, w))
            ember.nn.functional.rms_norm(xe, (96,), we).backward(ember.from_numpy(g))
            results.append([to_numpy(t.grad) for t in (xe, we)])
    finally:
        ember.set_num_threads(prev)
    for r in results[1:]:
        for a, e in zip(r, results[0]):
            np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("eps", [None, 1e-6])
def test_module_matches_torch_and_uses_fused_op(eps):
    tm = torch.nn.RMSNorm((3, 4), eps=eps)
    em = ember.nn.RMSNorm((3, 4), eps=eps)
    assert list(em.state_dict()) == list(tm.state_dict()) == ["weight"]
    assert repr(em) == repr(tm)
    with torch.no_grad():
        tm.weight.uniform_(-2, 2)
    em.load_state_dict({"weight": ember.from_numpy(tm.weight.detach().numpy().copy())})
    rng = np.random.default_rng(2)
    xt, xe = random_pair(rng, (2, 3, 4), "float32")
    yt, ye = tm(xt), em(xe)
    assert "rms_norm" in ye.grad_fn.name().lower()
    yt.pow(2).sum().backward()
    ye.pow(2).sum().backward()
    for got, want, what in [(ye, yt, "out"), (xe.grad, xt.grad, "grad x"), (em.weight.grad, tm.weight.grad, "grad w")]:
        assert_close(got, want, "float32", what)
    assert ember.nn.RMSNorm(4, elementwise_affine=False).weight is None


def test_frozen_weight_and_input_only_grads():
    """Only the inputs that require grad get one (the fused backward's output mask)."""
    rng = np.random.default_rng(8)
    for needs in [(True, False), (False, True), (True, True)]:
        tt = [random_pair(rng, s, grad=r)[0] for s, r in zip([(5, 6), (6,)], needs)]
        et = [to_ember(to_numpy(t), "float64").requires_grad_(r) for t, r in zip(tt, needs)]
        torch.nn.functional.rms_norm(tt[0], (6,), tt[1]).pow(2).sum().backward()
        ember.nn.functional.rms_norm(et[0], (6,), et[1]).pow(2).sum().backward()
        for t, e, r in zip(tt, et, needs):
            if r:
                assert_close(e.grad, t.grad, "float64", f"needs={needs}")
            else:
                assert e.grad is None


def test_inplace_change_of_saved_input_is_detected():
    x = ember.randn(3, 4, requires_grad=True)
    h = x * 1
    y = ember.nn.functional.rms_norm(h, (4,))
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# ---- errors -----------------------------------------------------------------------------------------

def test_integer_input_raises_like_torch():
    with pytest.raises(NotImplementedError, match=r"\[rms_norm\] not implemented for 'Long'"):
        ember.nn.functional.rms_norm(ember.ones(3, 4, dtype=ember.int64), (4,))
    with pytest.raises(NotImplementedError):
        torch.nn.functional.rms_norm(torch.ones(3, 4, dtype=torch.int64), (4,))


def test_bad_shapes_name_the_op_and_shapes():
    with pytest.raises(RuntimeError, match=r"\[rms_norm\] Expected weight to be of same shape as normalized_shape, "
                                           r"but got weight of shape \[3\] and normalized_shape = \[4\]"):
        ember.nn.functional.rms_norm(ember.randn(3, 4), (4,), ember.ones(3))
    with pytest.raises(RuntimeError, match=r"\[rms_norm\] Given normalized_shape=\[5\], expected input with shape "
                                           r"\[\*, 5\], but got input of size\[3, 4\]"):
        ember.nn.functional.rms_norm(ember.randn(3, 4), (5,))
    with pytest.raises(RuntimeError, match=r"\[rms_norm\] Given normalized_shape=\[2, 3, 4\]"):
        ember.nn.functional.rms_norm(ember.randn(3, 4), (2, 3, 4))
    with pytest.raises(RuntimeError, match=r"\[rms_norm\] Expected normalized_shape to be at least 1-dimensional"):
        ember.nn.functional.rms_norm(ember.randn(3, 4), ())
    with pytest.raises(RuntimeError, match=r"\[rms_norm\] expected a floating-point weight"):
        ember.nn.functional.rms_norm(ember.randn(3, 4), (4,), ember.ones(4, dtype=ember.int64))
    for args in [((torch.randn(3, 4), (4,), torch.ones(3))), (torch.randn(3, 4), (5,)), (torch.randn(3, 4), ())]:
        with pytest.raises(RuntimeError):
            torch.nn.functional.rms_norm(*args)
