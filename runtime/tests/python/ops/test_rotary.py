"""Fused rotary_embedding (ops/rotary.cpp, cpu/rotary.cpp, cuda/rotary.cu) against the composite
formula written in torch (torch has no RoPE op): values, gradients of x, cos and sin, broadcasting,
both pair layouts, double backward, mixed dtypes and errors."""
import numpy as np
import pytest
import torch

import ember
from optest import (FLOAT_DTYPES, OpCase, assert_close, check_case, devices, finite_difference_check,
                    gradcheck_params, params, to_ember, to_numpy, to_torch)


def rope_reference(x, cos, sin, interleaved=False):
    """The composite: pairs (i, i + D/2) (HF LLaMA's x * cat(cos, cos) + rotate_half(x) * cat(sin, sin))
    or (2i, 2i + 1) (the original LLaMA's complex multiplication)."""
    if interleaved:
        xa, xb = x[..., 0::2], x[..., 1::2]
        return torch.stack([xa * cos - xb * sin, xb * cos + xa * sin], dim=-1).flatten(-2)
    half = x.shape[-1] // 2
    xa, xb = x[..., :half], x[..., half:]
    return torch.cat([xa * cos - xb * sin, xb * cos + xa * sin], dim=-1)


def rope(interleaved):
    def fn(lib, x, cos, sin):
        if lib is torch:
            return rope_reference(x, cos, sin, interleaved)
        return lib.nn.functional.rotary_embedding(x, cos, sin, interleaved=interleaved)
    return fn


def angles(rng, shapes, dtype):
    """x uniform; cos/sin of angles in [-pi, pi] (each table its own shape)."""
    np_dtype = np.float32 if dtype == "bfloat16" else dtype
    x = rng.uniform(-3, 3, size=shapes[0])
    cos = np.cos(rng.uniform(-np.pi, np.pi, size=shapes[1]))
    sin = np.sin(rng.uniform(-np.pi, np.pi, size=shapes[2]))
    return [x.astype(np_dtype), cos.astype(np_dtype), sin.astype(np_dtype)]


# (x, cos, sin). D/2 % 8 == 0 takes the CUDA 16-byte paths; D/2 = 1, 5, 3 do not. Small shapes first:
# the finite-difference check takes the first two.
SHAPES = [
    [(4, 6), (4, 3), (4, 3)],                      # (T, D), cos (T, D/2)
    [(1, 2), (1, 1), (1, 1)],                      # D = 2
    [(2, 3, 5, 8), (5, 4), (5, 4)],                # (B, H, T, D), cos (T, D/2)
    [(3, 7, 10), (7, 5), (7, 5)],                  # odd D/2
    [(2, 3, 4, 16), (2, 1, 4, 8), (2, 1, 4, 8)],   # per-batch angles, broadcast over heads
    [(2, 3, 4, 16), (1, 1, 4, 8), (4, 8)],         # cos and sin of different (broadcastable) shapes
    [(2, 4, 3, 32), (2, 4, 1, 16), (2, 4, 1, 16)],  # broadcast over T
    [(2, 3, 5, 128), (5, 64), (5, 64)],            # a real head size
    [(3, 2, 300), (2, 150), (2, 150)],             # long rows (several CUDA threads per row)
    [(0, 4, 8), (4, 4), (4, 4)],                   # 0-size
    [(3, 0), (3, 0), (3, 0)],                      # D = 0
]
HALF_TOL = {"float16": (2e-2, 2e-2), "bfloat16": (5e-2, 5e-2)}



def cases(name, fn, shapes, **kw):
    """One OpCase, plus a bfloat16 one comparing only x's gradient: the torch composite rounds every
    product of the tables' gradients to bfloat16 (test_half_types_against_float64 checks ours against
    a float64 reference instead)."""
    return [OpCase(name, fn, shapes, ["float32", "float64", "float16"], **kw),
            OpCase(name + "_bf16", fn, shapes, ["bfloat16"], **{**kw, "grad_inputs": [0], "gradcheck": False})]


CASES = [
    *cases("rotary_embedding", rope(False), SHAPES, make_inputs=angles, tol=HALF_TOL),
    *cases("rotary_embedding_interleaved", rope(True), SHAPES, make_inputs=angles, tol=HALF_TOL),
    # Gradients of x only (cos/sin constants, as in a model's cached tables).
    OpCase("rotary_embedding_x_grad", rope(False), SHAPES[2:5], ["float32", "float64"], make_inputs=angles,
           grad_inputs=[0]),
]


@pytest.mark.parametrize("case,shapes,dtype,device,noncontig", params(CASES))
def test_matches_torch(case, shapes, dtype, device, noncontig):
    check_case(case, shapes, dtype, device, noncontig)


@pytest.mark.parametrize("case,shapes", gradcheck_params(CASES))
def test_gradcheck(case, shapes):
    finite_difference_check(case, shapes)


# ---- beyond the differential table -----------------------------------------------------------------

def tables(rng, t, half, dtype="float64", device="cpu"):
    theta = rng.uniform(-np.pi, np.pi, size=(t, half))
    return [to_ember(np.cos(theta), dtype, device), to_ember(np.sin(theta), dtype, device)]


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("interleaved", [False, True])
def test_inverse_undoes_the_rotation(device, interleaved):
    rng = np.random.default_rng(4)
    x = to_ember(rng.standard_normal((2, 3, 5, 16)), "float64", device)
    cos, sin = tables(rng, 5, 8, device=device)
    y = ember.rotary_embedding(x, cos, sin, interleaved)
    back = ember.rotary_embedding(y, cos, sin, interleaved, inverse=True)
    np.testing.assert_allclose(to_numpy(back), to_numpy(x), rtol=1e-12, atol=1e-12)
    # A rotation keeps each pair's norm, so the row norms too.
    np.testing.assert_allclose(to_numpy(y.norm(dim=-1)), to_numpy(x.norm(dim=-1)), rtol=1e-12)


def test_matches_hf_llama_rotate_half():
    """interleaved=False is Hugging Face LLaMA's apply_rotary_pos_emb with its inv_freq tables."""
    b, h, t, d = 2, 4, 6, 16
    inv_freq = 1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    freqs = torch.outer(torch.arange(t, dtype=torch.float64), inv_freq)        # (T, D/2)
    emb = torch.cat([freqs, freqs], dim=-1)                                      # (T, D)
    q = torch.randn(b, h, t, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    rotate_half = lambda v: torch.cat([-v[..., d // 2:], v[..., : d // 2]], dim=-1)  # noqa: E731
    want = q * emb.cos() + rotate_half(q) * emb.sin()
    got = ember.nn.functional.rotary_embedding(ember.from_numpy(q.numpy().copy()),
                                               ember.from_numpy(freqs.cos().numpy()),
                                               ember.from_numpy(freqs.sin().numpy()))
    assert_close(got, want, "float64", "HF rotate_half")


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("interleaved", [False, True])
def test_double_backward_matches_torch(device, interleaved):
    rng = np.random.default_rng(7)
    arrays = angles(rng, [(2, 3, 4, 8), (4, 4), (4, 4)], "float64")
    v = rng.uniform(-1, 1, size=(2, 3, 4, 8))
    results = []
    for lib, conv in [(torch, lambda a: to_torch(a, "float64", device)),
                      (ember, lambda a: to_ember(a, "float64", device))]:
        x, c, s, g = (conv(a).requires_grad_(True) for a in arrays + [v])
        out = rope(interleaved)(lib, x, c, s)
        first = lib.autograd.grad(out, [x, c, s], grad_outputs=g, create_graph=True)
        loss = (first[0] * first[0]).sum() + (first[1] * first[2]).sum()
        results.append((first, lib.autograd.grad(loss, [x, c, s, g])))
    (tf, ts), (ef, es) = results
    for a, e in zip(ef + es, tf + ts):
        assert_close(a, e, "float64", "double backward")


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype,tol", [("bfloat16", 1e-2), ("float16", 2e-3)])
@pytest.mark.parametrize("table_dtype", ["same", "float32"])
@pytest.mark.parametrize("interleaved", [False, True])
def test_half_types_against_float64(device, dtype, tol, table_dtype, interleaved):
    """float16/bfloat16 x with tables of its dtype or float32: computed in float32, output in x's dtype,
    within about an output ulp of a float64 reference from the same rounded inputs, gradients too
    (the tables' in their own dtype)."""
    table_dtype = dtype if table_dtype == "same" else table_dtype
    rng = np.random.default_rng(6)
    arrays = angles(rng, [(2, 3, 5, 64), (5, 32), (5, 32)], "float32")
    g = rng.uniform(-1, 1, size=(2, 3, 5, 64)).astype(np.float32)

    def em(a, d):  # to_ember takes float16 from float16 arrays only
        return to_ember(a.astype(np.float16) if d == "float16" else a, d, device)
    x = em(arrays[0], dtype).requires_grad_(True)
    c, s = (em(a, table_dtype).requires_grad_(True) for a in arrays[1:])
    y = ember.nn.functional.rotary_embedding(x, c, s, interleaved=interleaved)
    y.backward(em(g, dtype))
    assert y.dtype == x.dtype and x.grad.dtype == x.dtype and c.grad.dtype == getattr(ember, table_dtype)
    ref = [torch.from_numpy(to_numpy(t).astype(np.float64)).requires_grad_(True) for t in (x, c, s)]
    want = rope_reference(*ref, interleaved)
    want.backward(torch.from_numpy(to_numpy(em(g, dtype)).astype(np.float64)))
    for got, w, what in [(y, want, "out"), (x.grad, ref[0].grad, "grad x"), (c.grad, ref[1].grad, "grad cos"),
                         (s.grad, ref[2].grad, "grad sin")]:
        got, w = to_numpy(got).astype(np.float64), w.detach().numpy()
        err = np.abs(got - w).max()
        assert err <= tol * (np.abs(w).max() + 1), f"{what}: max error {err}"


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("x_shape,theta_shape", [((2, 5, 8), (5, 8)),
                                                 # 8 alternating broadcast dims: more than the kernels index
                                                 ((2, 3, 2, 3, 2, 3, 2, 3, 8), (2, 1, 2, 1, 2, 1, 2, 1, 8))])
def test_strided_tables_and_many_leading_dims(device, x_shape, theta_shape):
    """cos/sin views with a non-unit last stride or strided rows, stride-0 broadcast dims, and more
    leading dims than the kernels index directly (the frontend then copies the tables)."""
    rng = np.random.default_rng(12)
    x_np = rng.standard_normal(x_shape)
    theta = rng.uniform(-np.pi, np.pi, size=theta_shape)
    for sl in [np.s_[..., ::2], np.s_[..., :4]]:
        c_np, s_np = np.cos(theta)[sl], np.sin(theta)[sl]
        want = rope_reference(torch.from_numpy(x_np), torch.from_numpy(c_np.copy()), torch.from_numpy(s_np.copy()))
        c = ember.from_numpy(np.cos(theta)).to(device)[sl]
        s = ember.from_numpy(np.sin(theta)).to(device)[sl]
        got = ember.nn.functional.rotary_embedding(to_ember(x_np, "float64", device), c, s)
        assert_close(got, want, "float64", f"tables {sl}")


# ---- errors -----------------------------------------------------------------------------------------

def test_bad_shapes_name_the_op_and_shapes():
    x = ember.randn(2, 5, 8)
    with pytest.raises(RuntimeError, match=r"\[rotary_embedding\] expected x of shape \(\.\.\., T, D\) with an even D.*"
                                           r"\[2, 5, 7\]"):
        ember.nn.functional.rotary_embedding(ember.randn(2, 5, 7), ember.randn(5, 3), ember.randn(5, 3))
    with pytest.raises(RuntimeError, match=r"\[rotary_embedding\] cos of shape \[5, 8\] does not broadcast to "
                                           r"\(\.\.\., T, D/2\) = \[2, 5, 4\] for x of shape \[2, 5, 8\]"):
        ember.nn.functional.rotary_embedding(x, ember.randn(5, 8), ember.randn(5, 4))
    with pytest.raises(RuntimeError, match=r"\[rotary_embedding\] sin of shape \[3, 4\]"):
        ember.nn.functional.rotary_embedding(x, ember.randn(5, 4), ember.randn(3, 4))
    with pytest.raises(RuntimeError, match=r"\[rotary_embedding\] cos of shape \[3, 2, 5, 4\]"):
        ember.nn.functional.rotary_embedding(x, ember.randn(3, 2, 5, 4), ember.randn(5, 4))
    with pytest.raises(RuntimeError, match=r"\[rotary_embedding\] cos of shape \[\]"):
        ember.nn.functional.rotary_embedding(x, ember.tensor(1.0), ember.randn(5, 4))


def test_bad_dtypes():
    x = ember.randn(5, 8)
    with pytest.raises(RuntimeError, match=r"\[rotary_embedding\] expected cos and sin of x's dtype.*float64"):
        ember.nn.functional.rotary_embedding(x, ember.randn(5, 4, dtype=ember.float64), ember.randn(5, 4))
    with pytest.raises(RuntimeError, match=r"\[rotary_embedding\] expected cos and sin of x's dtype"):
        ember.nn.functional.rotary_embedding(x.to(ember.float16), ember.randn(5, 4).to(ember.bfloat16),
                                             ember.randn(5, 4).to(ember.bfloat16))
    with pytest.raises(NotImplementedError, match=r"\[rotary_embedding\] not implemented for 'Long'"):
        ember.nn.functional.rotary_embedding(ember.ones(5, 8, dtype=ember.int64), ember.ones(5, 4, dtype=ember.int64),
                                             ember.ones(5, 4, dtype=ember.int64))
