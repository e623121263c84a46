"""torch-compatible arguments that used to be accepted and ignored now do what torch does, or raise:
inplace (activations, dropout), generator= (nn.init), Embedding max_norm / norm_type /
scale_grad_by_freq / sparse, scaled_dot_product_attention enable_gqa, optimizer foreach/fused."""
import numpy as np
import pytest
import torch

import ember
from compat_helpers import one_thread_each  # noqa: F401  (autouse fixture)
from nn_helpers import E, N


@pytest.mark.parametrize("name,args", [("relu", ()), ("silu", ()), ("leaky_relu", (0.2,))])
def test_inplace_activations_write_into_their_input(name, args):
    x = ember.tensor([-1.0, 0.5, 2.0])
    out = getattr(ember.nn.functional, name)(x, *args, inplace=True)
    want = getattr(torch.nn.functional, name)(torch.tensor([-1.0, 0.5, 2.0]), *args)
    np.testing.assert_allclose(N(x), want.numpy(), rtol=1e-6)
    assert out.data_ptr() == x.data_ptr()
    y = ember.tensor([-1.0, 2.0])
    ember.nn.ReLU(inplace=True)(y)
    assert y.tolist() == [0.0, 2.0] and "inplace=True" in repr(ember.nn.ReLU(inplace=True))


def test_inplace_on_leaf_requiring_grad_is_refused_like_torch():
    with pytest.raises(RuntimeError):
        torch.nn.functional.relu(torch.ones(2, requires_grad=True), inplace=True)
    with pytest.raises(RuntimeError):
        ember.nn.functional.relu(ember.ones(2, requires_grad=True), inplace=True)


def test_inplace_dropout():
    x = ember.ones(1000)
    out = ember.nn.functional.dropout(x, 0.5, True, inplace=True)
    assert out.data_ptr() == x.data_ptr()
    vals = set(N(x).tolist())
    assert vals == {0.0, 2.0}
    y = ember.ones(10)
    ember.nn.Dropout(0.3, inplace=True).eval()(y)
    assert y.tolist() == [1.0] * 10


@pytest.mark.parametrize("fn,kwargs", [("uniform_", dict(a=-1.0, b=1.0)), ("normal_", dict(std=0.5)),
                                       ("xavier_uniform_", {}), ("xavier_normal_", {}), ("kaiming_uniform_", {}),
                                       ("kaiming_normal_", {}), ("trunc_normal_", dict(std=0.5))])
def test_init_generator_is_used(fn, kwargs):
    def draw(seed):
        t = ember.empty(16, 8)
        getattr(ember.nn.init, fn)(t, generator=ember.Generator().manual_seed(seed), **kwargs)
        return N(t).copy()
    ember.manual_seed(0)
    a = draw(1)
    ember.manual_seed(123)  # the global RNG must not matter
    np.testing.assert_array_equal(a, draw(1))
    assert not np.array_equal(a, draw(2))


@pytest.mark.parametrize("norm_type", [2.0, 1.0])
def test_embedding_max_norm_matches_torch(norm_type):
    w = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32) * 3
    idx = np.array([[0, 2, 2], [5, 0, 1]])
    tm = torch.nn.Embedding(6, 4, max_norm=1.5, norm_type=norm_type, _weight=torch.from_numpy(w.copy()))
    em = ember.nn.Embedding(6, 4, max_norm=1.5, norm_type=norm_type, _weight=ember.from_numpy(w.copy()))
    out_t, out_e = tm(torch.from_numpy(idx)), em(ember.from_numpy(idx))
    np.testing.assert_allclose(N(out_e), out_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(N(em.weight), tm.weight.detach().numpy(), rtol=1e-5, atol=1e-6)  # renormed in place
    g = np.random.default_rng(1).standard_normal(out_t.shape).astype(np.float32)
    (out_t * torch.from_numpy(g)).sum().backward()
    (out_e * ember.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(N(em.weight.grad), tm.weight.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_embedding_scale_grad_by_freq_and_padding_match_torch():
    w = np.random.default_rng(2).standard_normal((5, 3)).astype(np.float32)
    idx = np.array([[0, 2, 2, 4], [2, 1, 0, 4]])
    tm = torch.nn.Embedding(5, 3, padding_idx=-1, scale_grad_by_freq=True, _weight=torch.from_numpy(w.copy()))
    em = ember.nn.Embedding(5, 3, padding_idx=-1, scale_grad_by_freq=True, _weight=ember.from_numpy(w.copy()))
    assert em.padding_idx == tm.padding_idx == 4
    tm(torch.from_numpy(idx)).pow(2).sum().backward()
    em(ember.from_numpy(idx)).pow(2).sum().backward()
    np.testing.assert_allclose(N(em.weight.grad), tm.weight.grad.numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(NotImplementedError, match="sparse=True"):
        ember.nn.Embedding(5, 3, sparse=True)
    frozen = ember.nn.Embedding.from_pretrained(ember.ones(3, 2))
    assert not frozen.weight.requires_grad and frozen(ember.tensor([1])).tolist() == [[1.0, 1.0]]


@pytest.mark.parametrize("hq,hk,causal", [(4, 2, False), (6, 3, True), (4, 1, False), (4, 4, True)])
def test_sdpa_grouped_query_attention_matches_torch(hq, hk, causal):
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in [(2, hq, 5, 8), (2, hk, 7 if not causal else 5, 8),
                                                                     (2, hk, 7 if not causal else 5, 8)])
    ts = [torch.from_numpy(a).requires_grad_(True) for a in (q, k, v)]
    es = [E(t) for t in ts]
    out_t = torch.nn.functional.scaled_dot_product_attention(*ts, is_causal=causal, enable_gqa=True)
    out_e = ember.nn.functional.scaled_dot_product_attention(*es, is_causal=causal, enable_gqa=True)
    np.testing.assert_allclose(N(out_e), out_t.detach().numpy(), rtol=1e-4, atol=1e-5)
    out_t.sum().backward()
    out_e.sum().backward()
    for a, b in zip(es, ts):
        np.testing.assert_allclose(N(a.grad), b.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_sdpa_gqa_needs_divisible_heads():
    q, k = ember.zeros(1, 4, 2, 8), ember.zeros(1, 3, 2, 8)
    with pytest.raises(ValueError, match=r"enable_gqa: the number of query heads \(4\) must be a multiple"):
        ember.nn.functional.scaled_dot_product_attention(q, k, k, enable_gqa=True)


@pytest.mark.parametrize("opt", ["SGD", "Adam", "AdamW"])
def test_foreach_and_fused_flags_are_kept_and_both_true_is_refused(opt):
    """The flags pick ember's multi-tensor or per-parameter path (tests/python/nn/test_optim_impls.py)."""
    p = [ember.nn.Parameter(ember.ones(2))]
    for foreach, fused in [(None, None), (True, None), (False, None), (None, True), (False, False)]:
        o = getattr(ember.optim, opt)(p, lr=0.1, foreach=foreach, fused=fused)
        assert (o.param_groups[0]["foreach"], o.param_groups[0]["fused"]) == (foreach, fused)
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
        getattr(ember.optim, opt)(p, lr=0.1, foreach=True, fused=True)


def test_clip_grad_foreach_true_is_refused():
    p = ember.nn.Parameter(ember.ones(2))
    p.grad = ember.ones(2)
    for fn, args in [(ember.nn.utils.clip_grad_norm_, (1.0,)), (ember.nn.utils.clip_grad_value_, (0.5,))]:
        with pytest.raises(NotImplementedError, match="foreach=True"):
            fn([p], *args, foreach=True)
        fn([p], *args, foreach=False)
    assert p.grad.tolist() == [0.5, 0.5]
