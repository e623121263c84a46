"""CUDA graph capture/replay: replayed results equal eager results; RNG advances per replay."""
import numpy as np
import pytest

import ember
from numcheck.seeds import rng_for_test

pytestmark = pytest.mark.skipif(not ember.cuda.is_available(), reason="needs a CUDA GPU")


def _rand(*shape):
    return ember.from_numpy(rng_for_test().standard_normal(shape).astype(np.float32)).cuda()


def _f(x, w):
    h = ember.relu(ember.mm(x, w) + 1.0)
    return ember.softmax(h, -1).sum(0)


def test_replay_equals_eager_for_new_inputs():
    static_x, w = _rand(32, 64), _rand(64, 16)
    g = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g):
        static_y = _f(static_x, w)
    for _ in range(3):
        x = _rand(32, 64)
        static_x.copy_(x)
        g.replay()
        ember.cuda.synchronize()
        assert np.allclose(static_y.cpu().numpy(), _f(x, w).cpu().numpy(), rtol=1e-5, atol=1e-6)


def test_capture_on_default_stream_is_rejected():
    g = ember.cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match=r"default stream"):
        g.capture_begin()


def test_host_sync_inside_capture_raises():
    x = _rand(8)
    g = ember.cuda.CUDAGraph()
    with pytest.raises(Exception):
        with ember.cuda.graph(g):
            y = x * 2
            y.cpu()  # needs a host synchronization: not capturable
    # the failed capture must leave the allocator and streams usable
    assert np.allclose((x * 2).cpu().numpy(), x.cpu().numpy() * 2)


def test_graph_memory_comes_from_a_private_pool():
    x = _rand(1024)
    g = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g):
        y = x * 3.0
    pools = {seg["segment_pool_id"] for seg in ember.cuda.memory_snapshot()}
    assert g.pool() in pools
    g.replay()
    ember.cuda.synchronize()
    assert np.allclose(y.cpu().numpy(), x.cpu().numpy() * 3.0)
    del y
    g.reset()


def test_rng_in_graph_draws_fresh_numbers_each_replay():
    out = ember.empty((4096,), device="cuda")
    g = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g):
        out.uniform_()
    draws = []
    for _ in range(3):
        g.replay()
        ember.cuda.synchronize()
        draws.append(out.cpu().numpy().copy())
    assert not np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[1], draws[2])
    for d in draws:
        assert 0.0 <= d.min() and d.max() < 1.0 and abs(d.mean() - 0.5) < 0.05


def test_graphed_training_step_matches_eager():
    rng = rng_for_test()
    w0 = rng.standard_normal((16, 8)).astype(np.float32) * 0.1
    batches = [(rng.standard_normal((32, 16)).astype(np.float32), rng.standard_normal((32, 8)).astype(np.float32))
               for _ in range(4)]

    def make_params():
        return ember.from_numpy(w0.copy()).cuda().requires_grad_()

    def step_fn(w, x, t, lr=0.1):
        loss = ((ember.mm(x, w) - t) ** 2).mean()
        loss.backward()
        with ember.autograd.no_grad():
            w.sub_(w.grad * lr)
            w.grad.zero_()
        return loss

    # eager reference (the graphed version also runs 3 warm-up steps on the first batch)
    w_e = make_params()
    x0, t0 = ember.from_numpy(batches[0][0]).cuda(), ember.from_numpy(batches[0][1]).cuda()
    for _ in range(3):
        step_fn(w_e, x0, t0)
    eager_losses = []
    for xb, tb in batches:
        eager_losses.append(float(step_fn(w_e, ember.from_numpy(xb).cuda(), ember.from_numpy(tb).cuda()).item()))

    w_g = make_params()
    sx, st = x0.clone(), t0.clone()
    run = ember.cuda.make_graphed_step(lambda x, t: step_fn(w_g, x, t), [sx, st], warmup=3)
    graph_losses = []
    for xb, tb in batches:
        loss = run(ember.from_numpy(xb).cuda(), ember.from_numpy(tb).cuda())
        graph_losses.append(float(loss.item()))
    assert np.allclose(graph_losses, eager_losses, rtol=1e-4, atol=1e-6)
    assert np.allclose(w_g.cpu().detach().numpy(), w_e.cpu().detach().numpy(), rtol=1e-4, atol=1e-6)
