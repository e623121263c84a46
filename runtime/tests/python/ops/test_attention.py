"""Fused scaled-dot-product attention (op-table row fused_attention, spec/attention.yaml) against
torch's SDPA: one differential table for every device through scaled_dot_product_attention (the
fused op runs for every float dtype on CPU and for float16/bfloat16 on CUDA; Note [SDPA dispatch]),
then the op itself: logsumexp, dropout statistics and the mask the backward reuses, double
backward, errors. runtime/tests/python/cuda/test_attention.py has the CUDA-only checks (cuDNN
layouts, graphs, fallbacks)."""
import math

import numpy as np
import pytest
import torch

import ember
from optest import FLOAT_DTYPES, OpCase, devices, op_tests

TOL = {"bfloat16": (0.05, 0.05), "float16": (0.01, 0.01)}  # like the composite's rows (test_reduce.py)


def sdpa(**kw):
    return lambda lib, q, k, v: lib.nn.functional.scaled_dot_product_attention(q, k, v, **kw)


def sdpa_bthd(**kw):
    """q/k/v given as [B, T, H, D] and attended as their [B, H, T, D] transposes (non-contiguous)."""
    return lambda lib, q, k, v: lib.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), **kw)


def qkv(b, h, tq, tk, d, dv=None):
    return [(b, h, tq, d), (b, h, tk, d), (b, h, tk, d if dv is None else dv)]


# Tq != Tk both ways, T = 1, lengths that are no multiple of the CPU blocks (64 queries, 128 keys),
# head dims 40/64/128 and odd ones, 0-size batch, 3-D inputs; the first shapes are small enough for
# float64 finite differences.
SHAPES = [qkv(1, 1, 3, 5, 4, 3), qkv(1, 2, 4, 2, 3), qkv(2, 3, 5, 7, 8, 6), qkv(2, 2, 1, 1, 8),
          qkv(1, 2, 130, 200, 40), qkv(1, 1, 70, 70, 64), qkv(1, 1, 20, 33, 128), qkv(0, 2, 4, 5, 8),
          [(3, 4, 5), (3, 6, 5), (3, 6, 2)]]
CASES = [
    OpCase("fused_sdpa", sdpa(), SHAPES, FLOAT_DTYPES, low=-1, high=1, tol=TOL),
    OpCase("fused_sdpa_causal", sdpa(is_causal=True), SHAPES, FLOAT_DTYPES, low=-1, high=1, tol=TOL),
    OpCase("fused_sdpa_scale", sdpa(scale=0.3, is_causal=True), [qkv(1, 1, 3, 4, 2), qkv(2, 2, 9, 9, 16)],
           FLOAT_DTYPES, low=-1, high=1, tol=TOL),
    OpCase("fused_sdpa_bthd", sdpa_bthd(is_causal=True), [[(2, 17, 3, 64)] * 3, [(1, 3, 2, 4)] * 3],
           FLOAT_DTYPES, low=-1, high=1, tol=TOL),
    OpCase("fused_sdpa_gqa", sdpa(enable_gqa=True), [[(1, 4, 5, 8), (1, 2, 6, 8), (1, 2, 6, 8)]],
           FLOAT_DTYPES, low=-1, high=1, tol=TOL),
]
test_matches_torch, test_gradcheck = op_tests(CASES)


def fused_runs(device, dtype):
    """Whether SDPA takes the fused op for these inputs (else the composite path ran above)."""
    if device == "cpu":
        return True
    return dtype in ("float16", "bfloat16") and not ember.cuda.cudnn.fused_attention_unavailable_reason()


def tensors(rng, shapes, dtype="float32", device="cpu"):
    arrays = [rng.uniform(-1, 1, size=s).astype(np.float32) for s in shapes]
    e = [ember.from_numpy(a).to(getattr(ember, dtype)).to(device) for a in arrays]
    t = [torch.from_numpy(a).to(getattr(torch, dtype)).to(device) for a in arrays]
    return e, t


def to_np(x):
    return (x.detach().to(ember.float64).cpu().numpy() if isinstance(x, ember.Tensor)
            else x.detach().double().cpu().numpy())


@pytest.mark.parametrize("device", devices())
def test_sdpa_dispatches_to_the_fused_op(device):
    dtype = "float32" if device == "cpu" else "bfloat16"
    if not fused_runs(device, dtype):
        pytest.skip("fused CUDA attention unavailable")
    (q, k, v), _ = tensors(np.random.default_rng(0), qkv(2, 2, 9, 11, 16), dtype, device)
    via_sdpa = ember.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    direct = ember._C._fused_attention(q, k, v, 0.25, True, 0.0)[0]
    assert np.array_equal(to_np(via_sdpa), to_np(direct))


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("causal", [False, True])
def test_logsumexp_output(device, causal):
    dtype = "float64" if device == "cpu" else "float16"
    if not fused_runs(device, dtype):
        pytest.skip("fused CUDA attention unavailable")
    (q, k, v), (tq, tk, _) = tensors(np.random.default_rng(1), qkv(2, 3, 77, 50, 64), dtype, device)
    _, lse, rng_state = ember._C._fused_attention(q, k, v, 0.125, causal, 0.0)
    assert lse.dtype == (ember.float64 if dtype == "float64" else ember.float32)
    assert tuple(lse.shape) == (2, 3, 77) and tuple(rng_state.shape) == (0,) and rng_state.dtype == ember.int64
    scores = (tq.double() @ tk.double().transpose(-2, -1)) * 0.125
    if causal:
        scores = scores.masked_fill(~torch.ones(77, 50, dtype=torch.bool, device=tq.device).tril(), float("-inf"))
    expected = torch.logsumexp(scores, dim=-1).cpu().numpy()
    np.testing.assert_allclose(to_np(lse), expected, rtol=1e-10 if dtype == "float64" else 1e-3, atol=1e-3)


def test_empty_keys_give_zero_output_and_gradients():
    """Tk = 0 on CPU: torch's math gives zeros (softmax over nothing, times an empty V)."""
    (q, k, v), (tq, tk, tv) = tensors(np.random.default_rng(2), qkv(1, 2, 3, 0, 4), "float64")
    q.requires_grad_()
    out = ember.nn.functional.scaled_dot_product_attention(q, k, v)
    expected = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv)
    np.testing.assert_array_equal(to_np(out), expected.numpy())
    out.sum().backward()
    assert not to_np(q.grad).any()
    lse = ember._C._fused_attention(q.detach(), k, v, 0.5, False, 0.0)[1]
    assert np.isneginf(to_np(lse)).all()


# ---- dropout --------------------------------------------------------------------------------------

def realized_mask(device, b, h, tq, tk, p, seed):
    """The keep mask of a fused [b, h, tq, tk] attention under `seed`, read from the output: with
    q = k = 0 every weight is 1/tk, and v = I puts weight (i, j) into out[i, j] = keep / (tk (1 - p))."""
    dtype = ember.float32 if device == "cpu" else ember.float16
    ember.manual_seed(seed)
    zeros = ember.zeros((b, h, tq, 8), dtype=dtype, device=device)
    keys = ember.zeros((b, h, tk, 8), dtype=dtype, device=device)
    eye = ember.eye(tk, dtype=dtype, device=device).expand(b, h, tk, tk)
    out = ember._C._fused_attention(zeros, keys, eye, 1.0, False, p)[0]
    scaled = to_np(out) * tk * (1 - p)
    mask = np.rint(scaled)
    np.testing.assert_allclose(scaled, mask, atol=1e-2)  # every weight is either dropped or kept
    assert set(np.unique(mask)) <= {0.0, 1.0}
    return mask


@pytest.mark.parametrize("device", devices())
def test_dropout_statistics_and_seeding(device):
    if not fused_runs(device, "float16"):
        pytest.skip("fused CUDA attention unavailable")
    b, h, t, p = 4, 4, 64, 0.2
    m1 = realized_mask(device, b, h, t, t, p, seed=1234)
    assert abs(m1.mean() - (1 - p)) < 0.01, m1.mean()  # 65536 draws: std 0.0016
    assert np.array_equal(m1, realized_mask(device, b, h, t, t, p, seed=1234))  # same seed, same mask
    assert (m1 != realized_mask(device, b, h, t, t, p, seed=4321)).mean() > 0.2  # another seed, another mask
    # E[out] is the undropped output: 512 copies of one head, averaged over their masks
    dtype = "float32" if device == "cpu" else "float16"
    (q, k, v), _ = tensors(np.random.default_rng(3), qkv(1, 1, 16, 16, 8), dtype, device)
    many = [x.expand(512, 1, 16, 8).contiguous() for x in (q, k, v)]
    ember.manual_seed(5)
    dropped = to_np(ember._C._fused_attention(*many, 0.35, False, 0.5)[0])
    clean = to_np(ember._C._fused_attention(q, k, v, 0.35, False, 0.0)[0])[0]
    spread = dropped.std(axis=0) / math.sqrt(512)
    assert (np.abs(dropped.mean(axis=0) - clean) < 5 * spread + 1e-3).all()
    # consecutive calls advance the generator: fresh masks without reseeding
    first, second = (to_np(ember._C._fused_attention(q, k, v, 0.35, False, 0.5)[0]) for _ in range(2))
    assert not np.array_equal(first, second)


def test_cpu_mask_is_bernoulli_of_the_generator():
    """Note [Fused attention dropout on CPU]: the mask is bernoulli_(1 - p) on [B, H, Tq, Tk] drawn
    from the same generator state, so SDPA's fused and composite paths drop the same weights."""
    b, h, tq, tk, p = 2, 3, 5, 9, 0.3
    mask = realized_mask("cpu", b, h, tq, tk, p, seed=11)
    ember.manual_seed(11)
    drawn = ember.empty((b, h, tq, tk)).bernoulli_(1 - p)
    assert np.array_equal(mask, to_np(drawn))
    (q, k, v), _ = tensors(np.random.default_rng(4), qkv(b, h, tq, tk, 8), "float64")
    ember.manual_seed(12)
    fused = ember.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=p)
    ember.manual_seed(12)
    composite = ember.nn.functional._composite_attention(q, k, v, None, p, False, 1 / math.sqrt(8))
    np.testing.assert_allclose(to_np(fused), to_np(composite), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("causal", [False, True])
def test_dropout_backward_uses_the_forward_mask(device, causal):
    """Forward and gradients equal torch's masked formula with the mask the forward realized."""
    dtype = "float64" if device == "cpu" else "float16"
    if not fused_runs(device, dtype):
        pytest.skip("fused CUDA attention unavailable")
    b, h, tq, tk, d, p = 2, 2, 37, 48, 16, 0.25  # Tk = Dv of the mask probe: a multiple of 8 for cuDNN
    mask = torch.from_numpy(realized_mask(device, b, h, tq, tk, p, seed=7)).to(device)
    (eq, ek, ev), (tq_, tk_, tv) = tensors(np.random.default_rng(5), qkv(b, h, tq, tk, d), dtype, device)
    (eg,), (tg,) = tensors(np.random.default_rng(6), [(b, h, tq, d)], dtype, device)
    for x in (eq, ek, ev):
        x.requires_grad_()
    ember.manual_seed(7)
    out = ember.nn.functional.scaled_dot_product_attention(eq, ek, ev, dropout_p=p, is_causal=causal)
    out.backward(eg)
    r = [x.double().requires_grad_() for x in (tq_, tk_, tv)]
    scores = r[0] @ r[1].transpose(-2, -1) / math.sqrt(d)
    if causal:
        scores = scores.masked_fill(~torch.ones(tq, tk, dtype=torch.bool, device=device).tril(), float("-inf"))
    ref = (torch.softmax(scores, -1) * mask / (1 - p)) @ r[2]
    ref.backward(tg.double())
    tol = 1e-10 if dtype == "float64" else 1e-2
    np.testing.assert_allclose(to_np(out), to_np(ref), rtol=tol, atol=tol)
    for name, e, rr in zip(("dq", "dk", "dv"), (eq, ek, ev), r):
        np.testing.assert_allclose(to_np(e.grad), to_np(rr.grad), rtol=tol, atol=tol, err_msg=name)


# ---- autograd and errors --------------------------------------------------------------------------

def torch_math_sdpa(q, k, v, is_causal):
    """torch's attention as explicit math (its CPU flash kernel has no double backward)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if is_causal:
        scores = scores.masked_fill(~torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, -1) @ v


def test_double_backward_matches_torch():
    """create_graph: the backward rule switches to the composite formula (differentiable)."""
    (q, k, v), (tq, tk, tv) = tensors(np.random.default_rng(8), qkv(1, 2, 5, 6, 4), "float64")
    grads = []
    for lib, xs in ((ember, (q, k, v)), (torch, (tq, tk, tv))):
        xs = [x.clone().requires_grad_() for x in xs]
        out = (ember.nn.functional.scaled_dot_product_attention(*xs, is_causal=True) if lib is ember
               else torch_math_sdpa(*xs, is_causal=True))
        g = lib.autograd.grad((out * out).sum(), xs, create_graph=True)
        second = lib.autograd.grad(sum((gi * gi).sum() for gi in g), xs)
        grads.append([to_np(x) for x in (*g, *second)])
    for i, (e, t) in enumerate(zip(*grads)):
        np.testing.assert_allclose(e, t, rtol=1e-9, atol=1e-11, err_msg=f"gradient {i}")


def test_double_backward_with_dropout_is_rejected():
    (q, k, v), _ = tensors(np.random.default_rng(9), qkv(1, 1, 4, 4, 4), "float64")
    q.requires_grad_()
    out = ember.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    with pytest.raises(RuntimeError, match=r"\[fused_attention\] double backward"):
        ember.autograd.grad(out.sum(), [q], create_graph=True)


def test_logsumexp_is_not_differentiable():
    (q, k, v), _ = tensors(np.random.default_rng(10), qkv(1, 1, 4, 4, 4), "float64")
    q.requires_grad_()
    lse = ember._C._fused_attention(q, k, v, 0.5, False, 0.0)[1]
    with pytest.raises(RuntimeError, match=r"\[fused_attention\] the logsumexp output is not differentiable"):
        lse.sum().backward()


@pytest.mark.parametrize("device", devices())
def test_bad_inputs_raise_errors_naming_the_op_and_shapes(device):
    fused = ember._C._fused_attention
    q = ember.ones((2, 2, 8, 16), device=device)
    with pytest.raises(ValueError, match=r"\[fused_attention\] takes 4-D .*\[2, 8, 16\]"):
        fused(q[0], q[0], q[0], 1.0, False, 0.0)
    shapes = r"\[fused_attention\] incompatible shapes q .*\[2, 2, 8, 16\].*\[2, 3, 8, 16\]"
    with pytest.raises(ValueError, match=shapes):
        fused(q, ember.ones((2, 3, 8, 16), device=device), q, 1.0, False, 0.0)
    with pytest.raises(ValueError, match=r"\[fused_attention\] incompatible shapes"):
        fused(q, q[..., :8], q, 1.0, False, 0.0)
    with pytest.raises(TypeError, match=r"\[fused_attention\] query, key and value must have one floating dtype"):
        fused(q, q.to(ember.float64), q, 1.0, False, 0.0)
    with pytest.raises(TypeError, match=r"\[fused_attention\] .*one floating dtype"):
        i = q.to(ember.int64)
        fused(i, i, i, 1.0, False, 0.0)
    with pytest.raises(ValueError, match=r"\[fused_attention\] dropout_p must be in \[0, 1\), got 1"):
        fused(q, q, q, 1.0, False, 1.0)
    with pytest.raises(ValueError, match=r"\[scaled_dot_product_attention\] incompatible shapes"):
        ember.nn.functional.scaled_dot_product_attention(q, q[..., :8], q)
