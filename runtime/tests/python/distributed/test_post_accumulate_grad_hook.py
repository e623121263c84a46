"""Tensor.register_post_accumulate_grad_hook (what DDP's buckets hang on), against torch's semantics."""
from __future__ import annotations

import pytest

import ember


def test_hook_runs_after_accumulation_with_the_leaf():
    w = ember.ones((3,), requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.tolist()))
    (w * 2).sum().backward()
    (w * 3).sum().backward()
    assert seen == [[2.0] * 3, [5.0] * 3]  # each call sees the accumulated .grad


def _hook_order(lib):
    a = lib.ones((2,), requires_grad=True)
    b = lib.ones((2,), requires_grad=True)
    order = []
    a.register_post_accumulate_grad_hook(lambda p: order.append("a"))
    b.register_post_accumulate_grad_hook(lambda p: order.append("b"))
    h = (a * a).sum() * 1.0
    (h + (b * h)).sum().backward()
    return order


def test_hooks_run_once_per_backward_in_torchs_order():
    torch = pytest.importorskip("torch")
    assert _hook_order(ember) == _hook_order(torch)
    assert sorted(_hook_order(ember)) == ["a", "b"]


def test_hook_removal_and_autograd_grad_does_not_fire():
    w = ember.ones((2,), requires_grad=True)
    calls = []
    handle = w.register_post_accumulate_grad_hook(lambda p: calls.append(1))
    ember.autograd.grad((w * 2).sum(), [w])  # no accumulation into .grad: no hook
    assert calls == []
    handle.remove()
    (w * 2).sum().backward()
    assert calls == []


def test_rejects_non_leaf_and_no_grad_tensors():
    w = ember.ones((2,), requires_grad=True)
    with pytest.raises(RuntimeError, match="non-leaf"):
        (w * 2).register_post_accumulate_grad_hook(lambda p: None)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        ember.ones(2).register_post_accumulate_grad_hook(lambda p: None)
