"""Device management and host<->device copies. The no-GPU tests run everywhere (CI)."""
import numpy as np
import pytest

import ember
from numcheck.seeds import rng_for_test

HAS_CUDA = ember.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")


def test_submodule_exists_in_every_build():
    assert isinstance(ember._C._cuda.built, bool)
    assert ember.cuda.device_count() >= 0
    assert ember.cuda.is_available() == (ember.cuda.device_count() > 0)


@pytest.mark.skipif(HAS_CUDA, reason="checks the no-GPU behaviour")
def test_no_gpu_errors_are_clear():
    x = ember.ones((2, 3))
    with pytest.raises(RuntimeError, match=r"CUDA"):
        x.cuda()
    assert x.is_pinned() is False


@needs_cuda
def test_device_queries():
    n = ember.cuda.device_count()
    assert n >= 1
    assert 0 <= ember.cuda.current_device() < n
    assert isinstance(ember.cuda.get_device_name(), str)
    major, _ = ember.cuda.get_device_capability()
    assert major >= 7
    free, total = ember.cuda.mem_get_info()
    assert 0 < free <= total
    ember.cuda.set_device(0)
    with pytest.raises(IndexError, match=r"invalid CUDA device index"):
        ember.cuda.set_device(n + 3)
    ember.cuda.synchronize()


@needs_cuda
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool"])
def test_roundtrip_all_dtypes(dtype):
    rng = rng_for_test()
    a = rng.uniform(-50, 50, size=(3, 5))
    if dtype == "bool":
        a = a > 0
    x = ember.from_numpy(a.astype(np.float64)).to(getattr(ember, dtype))
    y = x.to("cuda")
    assert y.device == ember.device("cuda:0") and y.is_cuda and y.dtype == x.dtype
    back = y.cpu()
    assert back.device == ember.device("cpu")
    assert np.array_equal(x.to(ember.float64).numpy(), back.to(ember.float64).numpy())
    z = x.cuda()
    assert z.is_cuda


@needs_cuda
def test_noncontiguous_and_converting_copies():
    rng = rng_for_test()
    a = rng.standard_normal((4, 6)).astype(np.float32)
    x = ember.from_numpy(a)
    xt = x.transpose(0, 1)  # non-contiguous source
    y = xt.to("cuda")
    assert np.allclose(y.cpu().numpy(), a.T)
    # device -> device conversion and a non-contiguous device source back to the host
    yd = y.to(ember.float64)
    assert yd.dtype == ember.float64 and np.allclose(yd.cpu().numpy(), a.T)
    assert np.allclose(y.transpose(0, 1).cpu().numpy(), a)
    # copy_ across devices with broadcasting into a CUDA destination
    dst = ember.zeros((3, 6), dtype=ember.float64).cuda()
    dst.copy_(ember.from_numpy(a[0]))
    assert np.allclose(dst.cpu().numpy(), np.broadcast_to(a[0], (3, 6)))


@needs_cuda
def test_pinned_non_blocking_copies():
    a = rng_for_test().standard_normal(1 << 16).astype(np.float32)
    host = ember.from_numpy(a).pin_memory()
    assert host.is_pinned()
    assert not ember.from_numpy(a).is_pinned()
    dev = host.cuda(non_blocking=True)
    ember.cuda.synchronize()
    assert np.array_equal(dev.cpu().numpy(), a)


@needs_cuda
def test_non_blocking_to_and_differentiable_cross_device_copies():
    a = rng_for_test().standard_normal((3, 4)).astype(np.float32)
    host = ember.from_numpy(a).pin_memory()
    dev = host.to("cuda", non_blocking=True)
    ember.cuda.synchronize()
    assert np.array_equal(dev.cpu().numpy(), a)
    # .cuda() and copy_ across devices stay on the autograd graph (gradients return to the CPU)
    x = ember.from_numpy(a).requires_grad_()
    (x.cuda() * 2).sum().backward()
    assert np.array_equal(x.grad.numpy(), np.full_like(a, 2))
    x.grad = None
    y = ember.zeros((3, 4), device="cuda")
    y.copy_(x)
    (y * 3).sum().backward()
    assert x.grad.device.type == "cpu" and np.array_equal(x.grad.numpy(), np.full_like(a, 3))


@needs_cuda
def test_mixed_devices_raise_clear_error():
    a = ember.ones((2, 3)).cuda()
    b = ember.ones((2, 3))
    with pytest.raises(RuntimeError, match=r"\[add\].*same device.*cuda:0.*cpu|\[add\].*same device.*cpu.*cuda:0"):
        ember.add(a, b)
