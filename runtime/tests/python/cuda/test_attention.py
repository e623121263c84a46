"""Fused CUDA attention (the fused_attention op's cuDNN kernels, nn/_fused_attention.py) against
torch's SDPA, a float32 reference and ember's composite path: forward, backward, layouts, graphs,
fallbacks, errors. The op's table for every device (logsumexp, dropout statistics and the mask the
backward reuses, frontend errors) is tests/python/ops/test_attention.py.

Accuracy: a 16-bit result is compared with torch's SDPA run on the same inputs upcast to float32;
ember's error must stay within twice torch's own error in the same 16-bit dtype (plus a small
absolute floor), the criterion FlashAttention's tests use.
"""
import math
import warnings

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember.nn import _fused_attention

torch = pytest.importorskip("torch")

HAVE_GPU = ember.cuda.is_available() and torch.cuda.is_available()
FUSED_REASON = ember.cuda.cudnn.fused_attention_unavailable_reason() if HAVE_GPU else "no CUDA GPU"
gpu = pytest.mark.skipif(not HAVE_GPU, reason="needs a CUDA GPU")
fused = pytest.mark.skipif(not HAVE_GPU or bool(FUSED_REASON), reason=f"fused attention unavailable: {FUSED_REASON}")

E_DTYPES = {"bfloat16": ember.bfloat16, "float16": ember.float16, "float32": ember.float32}
T_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def pair(shape, dtype, rng, scale=1.0):
    """The same values as an ember and a torch CUDA tensor of `dtype` (rounded once, identically)."""
    a = (rng.standard_normal(shape) * scale).astype(np.float32)
    return ember.from_numpy(a).cuda().to(E_DTYPES[dtype]), torch.from_numpy(a).cuda().to(T_DTYPES[dtype])


def to_torch(e):
    return torch.from_numpy(e.detach().to(ember.float32).cpu().numpy()).cuda()


def rel_err(x, ref):
    x, ref = x.double(), ref.double()
    assert torch.isfinite(x).all(), "non-finite values"
    return ((x - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def check_close(ember_out, torch_out, ref, what):
    err, torch_err = rel_err(to_torch(ember_out), ref), rel_err(torch_out.float(), ref)
    assert err <= 2 * torch_err + 2e-3, f"{what}: ember rel err {err:.2e} vs torch {torch_err:.2e}"


def run_fused(q, k, v, causal):
    out = _fused_attention.fused_attention(q, k, v, None, 0.0, causal, 1.0 / math.sqrt(q.shape[-1]))
    assert out is not None, "the fused path did not run"
    return out


# (B, H, Tq, Tk, D): head dims 64/128, odd sequence lengths, cross attention (Tq != Tk); length 1 below
SHAPES = [(2, 3, 128, 128, 64), (2, 2, 256, 256, 128), (2, 2, 7, 7, 64),
          (2, 2, 129, 129, 128), (1, 2, 1000, 1000, 64), (2, 2, 64, 200, 64), (2, 2, 200, 64, 128)]


# every shape in bfloat16, two in float16 (each configuration builds two cuDNN graphs: ~1 s)
CASES = [(s, c, "bfloat16") for s in SHAPES for c in (False, True)] + \
        [(s, c, "float16") for s in SHAPES[1:3] for c in (False, True)]


@fused
@pytest.mark.parametrize("shape,causal,dtype", CASES,
                         ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v))
def test_forward_backward_match_torch(shape, causal, dtype):
    b, h, tq, tk, d = shape
    rng = np.random.default_rng()
    (eq, tq_), (ek, tk_), (ev, tv) = (pair((b, h, n, d), dtype, rng) for n in (tq, tk, tk))
    (eg, tg) = pair((b, h, tq, d), dtype, rng)
    for t in (eq, ek, ev):
        t.requires_grad_()
    out = run_fused(eq, ek, ev, causal)
    out.backward(eg)

    tq_, tk_, tv = (t.clone().requires_grad_() for t in (tq_, tk_, tv))
    t_out = torch.nn.functional.scaled_dot_product_attention(tq_, tk_, tv, is_causal=causal)
    t_out.backward(tg)
    r_in = [t.detach().float().requires_grad_() for t in (tq_, tk_, tv)]
    ref = torch.nn.functional.scaled_dot_product_attention(*r_in, is_causal=causal)
    ref.backward(tg.float())

    assert tuple(out.shape) == (b, h, tq, d)
    check_close(out, t_out, ref, "out")
    for name, e, t, r in zip(("dq", "dk", "dv"), (eq, ek, ev), (tq_, tk_, tv), r_in):
        assert tuple(e.grad.shape) == tuple(e.shape)
        check_close(e.grad, t.grad, r.grad, name)


@fused
@pytest.mark.parametrize("causal", [False, True])
def test_unit_sequence_length(causal):
    """T = 1: the fused forward runs; cuDNN 9.19 rejects the backward (s_q = s_kv = 1), so with
    gradients the call falls back to the composite path, noted once, with correct results."""
    rng = np.random.default_rng()
    (eq, tq), (ek, tk), (ev, tv) = (pair((3, 2, 1, 64), "bfloat16", rng) for _ in range(3))
    with ember.no_grad():
        out = run_fused(eq, ek, ev, causal)
    t_out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
    ref = torch.nn.functional.scaled_dot_product_attention(tq.float(), tk.float(), tv.float(), is_causal=causal)
    check_close(out, t_out, ref, "out")
    eq.requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = F.scaled_dot_product_attention(eq, ek, ev, is_causal=causal)
    out.sum().backward()
    # softmax over one key is 1: out == v and dq == 0 exactly
    assert np.array_equal(to_torch(out).cpu().numpy(), to_torch(ev).cpu().numpy())
    assert not to_torch(eq.grad).any()


@fused
@pytest.mark.parametrize("causal", [False, True])
def test_matches_composite_path_and_dispatch(causal):
    rng = np.random.default_rng()
    (q, _), (k, _), (v, _) = (pair((2, 4, 96, 64), "bfloat16", rng) for _ in range(3))
    fused_out = run_fused(q, k, v, causal)
    via_sdpa = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert np.array_equal(to_torch(via_sdpa).cpu().numpy(), to_torch(fused_out).cpu().numpy())
    ember.cuda.cudnn.enabled = False
    try:
        composite = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    finally:
        ember.cuda.cudnn.enabled = True
    assert rel_err(to_torch(fused_out), to_torch(composite)) < 1e-2


@fused
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_noncontiguous_qkv_from_split_and_transpose(dtype):
    """nanoGPT's layout: one [B, T, 3C] projection split into q, k, v and viewed as [B, H, T, D]."""
    b, t, h, d = 2, 100, 4, 64
    c = h * d
    rng = np.random.default_rng()
    e_qkv, t_qkv = pair((b, t, 3 * c), dtype, rng)
    e_qkv.requires_grad_()
    t_qkv = t_qkv.clone().requires_grad_()
    eg, tg = pair((b, t, c), dtype, rng)

    def heads(x, i):
        return x[:, :, i * c:(i + 1) * c].view(b, t, h, d).transpose(1, 2)

    eq, ek, ev = (heads(e_qkv, i) for i in range(3))
    assert not eq.is_contiguous()
    out = run_fused(eq, ek, ev, True)
    out.transpose(1, 2).reshape(b, t, c).backward(eg)
    tq, tk, tv = (heads(t_qkv, i) for i in range(3))
    t_out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
    t_out.transpose(1, 2).reshape(b, t, c).backward(tg)
    r_qkv = t_qkv.detach().float().requires_grad_()
    ref = torch.nn.functional.scaled_dot_product_attention(*(heads(r_qkv, i) for i in range(3)), is_causal=True)
    ref.transpose(1, 2).reshape(b, t, c).backward(tg.float())
    check_close(out, t_out, ref, "out")
    check_close(e_qkv.grad, t_qkv.grad, r_qkv.grad, "dqkv")


@fused
def test_misaligned_and_3d_inputs():
    """A view starting one element in (not 16-byte aligned) is copied; 3-D [N, T, D] works too."""
    rng = np.random.default_rng()
    (big_q, t_big_q), (k, tk), (v, tv) = (pair((6, 50, 65), "bfloat16", rng) for _ in range(3))
    q, tq = big_q[:, :, 1:], t_big_q[:, :, 1:]
    k, tk, v, tv = k[:, :, :64], tk[:, :, :64], v[:, :, :64], tv[:, :, :64]
    out = run_fused(q, k, v, False)
    assert tuple(out.shape) == (6, 50, 64)
    t_out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv)
    ref = torch.nn.functional.scaled_dot_product_attention(tq.float(), tk.float(), tv.float())
    check_close(out, t_out, ref, "out")


@gpu
@pytest.mark.parametrize("dtype,d", [("bfloat16", 20), ("float16", 72), ("float32", 64)])
def test_other_head_dims_and_fp32_fall_back_cleanly(dtype, d):
    """Head dims cuDNN cannot take (or may reject) and float32 give the composite path's result."""
    rng = np.random.default_rng()
    (q, tq), (k, tk), (v, tv) = (pair((2, 2, 33, d), dtype, rng) for _ in range(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a configuration cuDNN rejects is noted once
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    t_out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
    ref = torch.nn.functional.scaled_dot_product_attention(tq.double(), tk.double(), tv.double(), is_causal=True)
    check_close(out, t_out, ref, "out")
    if dtype == "float32" or d % 8:
        assert _fused_attention.fused_attention(q, k, v, None, 0.0, True, 0.125) is None


@fused
def test_cuda_graph_capture_and_replay():
    rng = np.random.default_rng()
    shape = (2, 4, 128, 64)
    static = [pair(shape, "bfloat16", rng)[0].requires_grad_() for _ in range(3)]
    grad = pair(shape, "bfloat16", rng)[0]
    for x in static:  # warm-up outside the capture builds and caches the cuDNN graphs
        x.grad = None
    run_fused(*static, True).backward(grad)
    for x in static:
        x.grad = None
    g = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g):
        out = run_fused(*static, True)
        out.backward(grad)
    for _ in range(2):
        fresh = [pair(shape, "bfloat16", rng)[0] for _ in range(3)]
        with ember.no_grad():
            for s, f in zip(static, fresh):
                s.copy_(f)
        g.replay()
        ember.cuda.synchronize()
        eager = [f.clone().requires_grad_() for f in fresh]
        e_out = run_fused(*eager, True)
        e_out.backward(grad)
        assert np.array_equal(to_torch(out).cpu().numpy(), to_torch(e_out).cpu().numpy())
        for s, e in zip(static, eager):
            assert rel_err(to_torch(s.grad), to_torch(e.grad)) < 1e-2  # dq accumulates with atomics


@fused
def test_bad_inputs_raise_clear_errors():
    """The CUDA kernel's own checks (the frontend's are in tests/python/ops/test_attention.py)."""
    q = ember.ones((2, 2, 8, 64), dtype=ember.float32, device="cuda")
    with pytest.raises(TypeError, match=r"\[fused_attention\] the fused CUDA path supports float16 and bfloat16"):
        ember._C._fused_attention(q, q, q, 1.0, False, 0.0)
    empty = ember.zeros((0, 2, 8, 64), dtype=ember.bfloat16, device="cuda")
    with pytest.raises(ValueError, match=r"\[fused_attention\] the fused CUDA path needs non-empty inputs"):
        ember._C._fused_attention(empty, empty, empty, 1.0, False, 0.0)


@fused
def test_double_backward_matches_the_composite_path():
    """create_graph: the backward rule differentiates the composite formula instead of cuDNN's kernel."""
    rng = np.random.default_rng()
    inputs = [pair((1, 2, 16, 64), "bfloat16", rng)[0] for _ in range(3)]
    results = []
    for enabled in (True, False):
        ember.cuda.cudnn.enabled = enabled
        try:
            xs = [x.clone().requires_grad_() for x in inputs]
            out = F.scaled_dot_product_attention(*xs, is_causal=True)
            g = ember.autograd.grad((out.float() ** 2).sum(), xs, create_graph=True)
            second = ember.autograd.grad(sum((gi.float() ** 2).sum() for gi in g), xs)
            results.append([to_torch(t) for t in (*g, *second)])
        finally:
            ember.cuda.cudnn.enabled = True
    for i, (fused_grad, composite_grad) in enumerate(zip(*results)):
        assert rel_err(fused_grad, composite_grad) < 3e-2, f"gradient {i}"


@gpu
def test_masks_and_empty_inputs_keep_the_composite_path():
    rng = np.random.default_rng()
    (q, tq), (k, tk), (v, tv) = (pair((1, 2, 16, 64), "bfloat16", rng) for _ in range(3))
    mask = ember.ones((16, 16), dtype=ember.bool, device="cuda").tril()
    assert _fused_attention.fused_attention(q, k, v, mask, 0.0, False, 0.125) is None
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    t_mask = torch.ones(16, 16, dtype=torch.bool, device="cuda").tril()
    t_out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=t_mask)
    ref = torch.nn.functional.scaled_dot_product_attention(tq.float(), tk.float(), tv.float(), attn_mask=t_mask)
    check_close(out, t_out, ref, "masked out")
    empty = ember.zeros((1, 2, 0, 64), dtype=ember.bfloat16, device="cuda")
    assert _fused_attention.fused_attention(empty, k, v, None, 0.0, False, 0.125) is None


def test_unavailable_reason_is_reported():
    """On every machine: a reason string, empty exactly when the fused path can run."""
    reason = ember.cuda.cudnn.fused_attention_unavailable_reason()
    assert isinstance(reason, str)
    if not ember.cuda.is_available():
        assert reason and ember.cuda.cudnn.is_available() is False and ember.cuda.cudnn.version() is None
    elif not reason:
        assert ember.cuda.cudnn.version() >= 90000
