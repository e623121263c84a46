"""Memory stays flat over many op calls, autograd forward/backward included (RSS via psutil).
A leaked graph (e.g. a reference cycle through a C++ node) would grow by megabytes here."""
import gc

import numpy as np
import psutil
import pytest

import ember
from ember import autograd

_MB = 1024 * 1024


def rss():
    gc.collect()
    return psutil.Process().memory_info().rss


class Square(autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x * x
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, _ = ctx.saved_tensors
        return g * 2 * x


def workload(x, w):
    y = (x @ w).tanh()
    z = Square.apply(y).sum() + (y.exp() * 0.5).mean()
    z.backward()
    h = x.register_hook(lambda g: g)
    h.remove()
    (g,) = autograd.grad((w * w).sum(), [w], create_graph=True)
    g.sum().backward()
    with autograd.no_grad():
        _ = ember.tensor(np.ones((8, 8))) + 1
    t = ember.from_dlpack(ember.tensor([1.0, 2.0]))
    _ = t.tolist(), repr(y)


@pytest.mark.parametrize("iterations", [10_000])
def test_rss_is_flat_over_many_ops(iterations):
    rng = np.random.default_rng(0)
    x = ember.tensor(rng.standard_normal((64, 64)), requires_grad=True)
    w = ember.tensor(rng.standard_normal((64, 64)), requires_grad=True)
    for _ in range(100):  # warm up allocator caches and lazily built state
        workload(x, w)
    before = rss()
    # each workload call is ~20 op calls; 500 calls = 10,000 ops
    for _ in range(iterations // 20):
        workload(x, w)
        x.grad = None
        w.grad = None
    growth = (rss() - before) / _MB
    assert growth < 20, f"RSS grew by {growth:.1f} MB over {iterations} op calls"


def test_graph_is_freed_when_output_dies():
    x = ember.tensor(np.ones((256, 256)), requires_grad=True)  # 512 KB per float64 intermediate
    for _ in range(50):
        workload_out = (x * 2).exp().sin()
        del workload_out
    before = rss()
    for _ in range(500):
        y = (x * 2).exp().sin() * x
        del y
    assert (rss() - before) / _MB < 20


def test_function_ctx_holding_its_output_does_not_leak():
    class StashOutput(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x * x
            ctx.out = y  # would be a reference cycle through the C++ node
            return y

        @staticmethod
        def backward(ctx, g):
            return g * 2 * ctx.out.sqrt()

    x = ember.tensor(np.ones((128, 128)), requires_grad=True)  # 128 KB per output
    for _ in range(20):
        StashOutput.apply(x)
    before = rss()
    for _ in range(400):
        y = StashOutput.apply(x)
        del y
    assert (rss() - before) / _MB < 20
