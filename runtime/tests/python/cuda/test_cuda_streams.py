"""Streams and events: ops run on the current stream; events order and time work."""
import numpy as np
import pytest

import ember
from numcheck.seeds import rng_for_test

pytestmark = pytest.mark.skipif(not ember.cuda.is_available(), reason="needs a CUDA GPU")


def test_current_stream_switches_inside_context():
    default = ember.cuda.current_stream()
    s = ember.cuda.Stream()
    assert s != default
    with ember.cuda.stream(s):
        assert ember.cuda.current_stream() == s
    assert ember.cuda.current_stream() == default


def test_ops_on_side_stream_are_correct_and_ordered():
    rng = rng_for_test()
    a = rng.standard_normal((256, 256)).astype(np.float32)
    x = ember.from_numpy(a).cuda()
    s = ember.cuda.Stream()
    s.wait_stream(ember.cuda.current_stream())
    with ember.cuda.stream(s):
        y = ember.exp(x) * 2.0 + x
        z = y.sum()
    ember.cuda.current_stream().wait_stream(s)
    assert np.allclose(z.cpu().numpy(), (np.exp(a) * 2 + a).sum(), rtol=1e-4)


def test_event_record_query_synchronize_elapsed():
    start = ember.cuda.Event(enable_timing=True)
    end = ember.cuda.Event(enable_timing=True)
    x = ember.ones((2048, 2048), device="cuda")
    start.record()
    for _ in range(5):
        x = ember.mm(x, x) * (1.0 / 2048)
    end.record()
    end.synchronize()
    assert end.query()
    ms = start.elapsed_time(end)
    assert ms > 0
    assert np.allclose(x.cpu().numpy(), 1.0, rtol=1e-3)


def test_event_wait_orders_streams():
    s1, s2 = ember.cuda.Stream(), ember.cuda.Stream()
    with ember.cuda.stream(s1):
        x = ember.ones((1 << 20,), device="cuda") * 3.0
        ev = ember.cuda.Event()
        ev.record()
    with ember.cuda.stream(s2):
        ev.wait()
        y = x + 1.0
    s2.synchronize()
    assert float(y.sum().item()) == 4.0 * (1 << 20)


def test_elapsed_time_needs_timing_events():
    a, b = ember.cuda.Event(), ember.cuda.Event()
    a.record(); b.record()
    with pytest.raises(RuntimeError, match=r"enable_timing"):
        a.elapsed_time(b)


def test_autograd_on_side_stream():
    rng = rng_for_test()
    a = rng.standard_normal((8, 16)).astype(np.float32)
    w = rng.standard_normal((16, 4)).astype(np.float32)
    s = ember.cuda.Stream()
    s.wait_stream(ember.cuda.current_stream())
    with ember.cuda.stream(s):
        x = ember.from_numpy(a).cuda()
        wt = ember.from_numpy(w).cuda().requires_grad_()
        loss = (ember.mm(x, wt) ** 2).sum()
        loss.backward()
    s.synchronize()
    expected = 2 * a.T @ (a @ w)
    assert np.allclose(wt.grad.cpu().numpy(), expected, rtol=1e-3, atol=1e-3)
