"""Targeted CUDA kernel checks beyond the shared op tables: launcher paths (vectorized, broadcast,
strided, mixed dtypes), reductions with split accumulation, softmax shapes, cuBLAS layouts."""
import numpy as np
import pytest

import ember
from numcheck.seeds import rng_for_test

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not (ember.cuda.is_available() and torch.cuda.is_available()),
                                reason="needs a CUDA GPU")


def pair(a):
    return ember.from_numpy(a).cuda(), torch.from_numpy(a).cuda()


def close(e, t, rtol=1e-5, atol=1e-6):
    e = e.cpu()
    if e.dtype == ember.bfloat16:
        e = e.to(ember.float32)
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("n", [1, 7, 1023, 1 << 20, (1 << 20) + 3])
def test_vectorized_and_tail_paths(n):
    a = rng_for_test().standard_normal(n).astype(np.float32)
    b = rng_for_test().standard_normal(n).astype(np.float32)
    (ea, ta), (eb, tb) = pair(a), pair(b)
    close(ember.add(ea, eb, alpha=0.5), torch.add(ta, tb, alpha=0.5))
    close(ea * 2.5, ta * 2.5)
    close(ember.tanh(ea), torch.tanh(ta))
    # misaligned start (a view at offset 1) takes the generic path
    close(ember.exp(ea[1:]), torch.exp(ta[1:]))


def test_broadcast_strided_and_mixed_dtypes():
    rng = rng_for_test()
    a = rng.standard_normal((4, 1, 6)).astype(np.float32)
    b = rng.standard_normal((5, 1)).astype(np.float64)
    (ea, ta), (eb, tb) = pair(a), pair(b)
    close(ea + eb, ta + tb)
    close(ember.maximum(ea, eb), torch.maximum(ta, tb))
    x = rng.standard_normal((6, 8)).astype(np.float32)
    ex, tx = pair(x)
    close(ex.transpose(0, 1) * 3.0, tx.t() * 3.0)
    i = rng.integers(-5, 5, size=(6, 8)).astype(np.int32)
    ei, ti = pair(i)
    close(ei + ex, ti + tx)
    close(ei < ex, ti < tx)


@pytest.mark.parametrize("shape,dims", [((1 << 22,), None), ((64, 4096), (1,)), ((4096, 64), (0,)),
                                        ((8, 16, 32), (0, 2)), ((3, 0, 2), (1,))])
def test_reductions_large_and_split(shape, dims):
    a = rng_for_test().standard_normal(shape).astype(np.float32)
    ea, ta = pair(a)
    kw = {} if dims is None else {"dim": dims}
    close(ea.sum(**kw), ta.sum(**kw), rtol=1e-4, atol=1e-3)
    close(ea.mean(**kw), ta.mean(**kw), rtol=1e-4, atol=1e-4)
    if a.size:
        close(ember.amax(ea, dims if dims else ()), torch.amax(ta, dims if dims else ()))


@pytest.mark.parametrize("shape,dim", [((7, 33), -1), ((4, 3000), 1), ((5, 6, 7), 1), ((2, 50000), -1)])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_softmax_shapes(shape, dim, dtype):
    a = (rng_for_test().standard_normal(shape) * 4).astype(np.float32)
    ea, ta = pair(a)
    ea, ta = ea.to(getattr(ember, dtype)), ta.to(getattr(torch, dtype))
    tol = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1e-2}[dtype]
    close(ember.softmax(ea, dim), torch.softmax(ta, dim), rtol=tol, atol=tol)
    close(ember.log_softmax(ea, dim), torch.log_softmax(ta, dim), rtol=tol, atol=tol * 4)


@pytest.mark.parametrize("dtype,tol", [("float32", 1e-4), ("float64", 1e-10), ("float16", 2e-2), ("bfloat16", 5e-2)])
@pytest.mark.parametrize("ta_,tb_", [(False, False), (True, False), (False, True), (True, True)])
def test_mm_layouts(dtype, tol, ta_, tb_):
    rng = rng_for_test()
    m, k, n = 33, 65, 17
    a = rng.standard_normal((k, m) if ta_ else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb_ else (k, n)).astype(np.float32)
    (ea, tA), (eb, tB) = pair(a), pair(b)
    ea, tA = ea.to(getattr(ember, dtype)), tA.to(getattr(torch, dtype))
    eb, tB = eb.to(getattr(ember, dtype)), tB.to(getattr(torch, dtype))
    if ta_:
        ea, tA = ea.transpose(0, 1), tA.t()
    if tb_:
        eb, tB = eb.transpose(0, 1), tB.t()
    close(ember.mm(ea, eb), torch.mm(tA, tB), rtol=tol, atol=tol * 10)
    bias = rng.standard_normal(n).astype(np.float32)
    (ebias, tbias) = pair(bias)
    ebias, tbias = ebias.to(getattr(ember, dtype)), tbias.to(getattr(torch, dtype))
    close(ember.addmm(ebias, ea, eb, beta=0.5, alpha=2.0), torch.addmm(tbias, tA, tB, beta=0.5, alpha=2.0),
          rtol=tol, atol=tol * 20)


def test_bmm_and_matmul_broadcast():
    rng = rng_for_test()
    a = rng.standard_normal((3, 5, 7)).astype(np.float32)
    b = rng.standard_normal((3, 7, 4)).astype(np.float32)
    (ea, ta), (eb, tb) = pair(a), pair(b)
    close(ember.bmm(ea, eb), torch.bmm(ta, tb), rtol=1e-4, atol=1e-5)
    w = rng.standard_normal((7, 4)).astype(np.float32)
    ew, tw = pair(w)
    close(ember.matmul(ea, ew), torch.matmul(ta, tw), rtol=1e-4, atol=1e-5)


def test_integer_mm_is_rejected_like_torch():
    t = torch.ones((2, 2), dtype=torch.int64, device="cuda")
    with pytest.raises(Exception) as torch_error:  # "addmm_cuda" not implemented for 'Long'
        torch.mm(t, t)
    a = ember.ones((2, 2), dtype=ember.int64).cuda()
    with pytest.raises(type(torch_error.value), match=r"mm.*int64"):
        ember.mm(a, a)


def test_random_matches_cpu_stream():
    ember.manual_seed(123)
    c = ember.empty((1001,)).uniform_()
    ember.manual_seed(123)
    g = ember.empty((1001,), device="cuda").uniform_()
    # same seed and offset: the CUDA kernel reproduces the CPU Philox stream
    assert np.allclose(c.numpy(), g.cpu().numpy())
    n = ember.empty((1 << 16,), device="cuda").normal_()
    v = n.cpu().numpy()
    assert abs(v.mean()) < 0.02 and abs(v.std() - 1) < 0.02
