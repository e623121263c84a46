"""F.multi_head_attention_forward and nn.MultiheadAttention's fuller constructor (kdim/vdim with
separate projections, add_bias_kv, add_zero_attn) against torch: outputs, attention weights and
every gradient, masks bool or float, batched/unbatched, batch_first, need_weights on and off;
state_dict keys, repr and torch's errors."""
import numpy as np
import pytest
import torch

import ember
from compat_helpers import one_thread_each  # noqa: F401  (autouse fixture)
from nn_helpers import E

CONFIGS = {
    "plain": dict(),
    "kdim-vdim": dict(kdim=6, vdim=5),
    "bias-kv": dict(add_bias_kv=True),
    "zero-attn": dict(add_zero_attn=True),
    "all": dict(kdim=6, vdim=5, add_bias_kv=True, add_zero_attn=True, bias=False),
    "batch-first": dict(batch_first=True, add_bias_kv=True),
}
MASKS = ["none", "bool-attn", "float-attn", "key-padding", "both", "3d-attn"]


def _inputs(rng, cfg, batched, masks):
    L, S, B, H, E_ = 3, 4, 2, 2, 8
    kdim, vdim = cfg.get("kdim", E_), cfg.get("vdim", E_)
    first = cfg.get("batch_first", False)
    def shape(n, d):
        if not batched:
            return (n, d)
        return (B, n, d) if first else (n, B, d)
    q, k, v = (rng.standard_normal(shape(n, d)) for n, d in ((L, E_), (S, kdim), (S, vdim)))
    kw = {}
    if masks in ("bool-attn", "both"):
        kw["attn_mask"] = np.triu(np.ones((L, S), dtype=bool), 2)
    if masks == "float-attn":
        kw["attn_mask"] = rng.standard_normal((L, S))
    if masks == "3d-attn":
        kw["attn_mask"] = rng.standard_normal(((B if batched else 1) * H, L, S))
    if masks in ("key-padding", "both"):
        pad = np.array([[False, False, False, True], [False, True, False, True]])
        kw["key_padding_mask"] = pad if batched else pad[0]
    return q, k, v, kw


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("masks", MASKS)
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_multihead_attention_matches_torch(config, masks, batched, need_weights):
    cfg = CONFIGS[config]
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(8, 2, **cfg).double()
    em = ember.nn.MultiheadAttention(8, 2, **cfg).double()
    assert list(em.state_dict()) == list(tm.state_dict())
    assert repr(em) == repr(tm)
    em.load_state_dict({k: E(v) for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(0)
    q, k, v, kw = _inputs(rng, cfg, batched, masks)
    qt, kt, vt = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    qe, ke, ve = (ember.from_numpy(a.copy()).requires_grad_(True) for a in (q, k, v))
    kwt = {n: torch.from_numpy(a.copy()) for n, a in kw.items()}
    kwe = {n: ember.from_numpy(a.copy()) for n, a in kw.items()}
    ot, wt = tm(qt, kt, vt, need_weights=need_weights, **kwt)
    oe, we = em(qe, ke, ve, need_weights=need_weights, **kwe)
    np.testing.assert_allclose(oe.detach().numpy(), ot.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert (we is None) == (wt is None)
    if wt is not None:
        np.testing.assert_allclose(we.detach().numpy(), wt.detach().numpy(), rtol=1e-9, atol=1e-12)
    g = rng.standard_normal(tuple(ot.shape))
    ot.backward(torch.from_numpy(g))
    oe.backward(ember.from_numpy(g))
    for a, b in zip((qe, ke, ve), (qt, kt, vt), strict=True):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-12)
    pe = dict(em.named_parameters())
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(pe[name].grad.numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_functional_form_with_static_kv_and_unaveraged_weights():
    rng = np.random.default_rng(1)
    L, S, B, H, D = 3, 5, 2, 2, 4
    args = dict(query=rng.standard_normal((L, B, H * D)), key=rng.standard_normal((S, B, H * D)),
                value=rng.standard_normal((S, B, H * D)), in_proj_weight=rng.standard_normal((3 * H * D, H * D)),
                in_proj_bias=rng.standard_normal(3 * H * D), out_proj_weight=rng.standard_normal((H * D, H * D)),
                out_proj_bias=rng.standard_normal(H * D), static_k=rng.standard_normal((B * H, S, D)),
                static_v=rng.standard_normal((B * H, S, D)))
    outs = []
    for lib in (torch, ember):
        t = {n: (torch.from_numpy(a) if lib is torch else ember.from_numpy(a.copy())) for n, a in args.items()}
        outs.append(lib.nn.functional.multi_head_attention_forward(
            t["query"], t["key"], t["value"], H * D, H, t["in_proj_weight"], t["in_proj_bias"], None, None, False,
            0.0, t["out_proj_weight"], t["out_proj_bias"], static_k=t["static_k"], static_v=t["static_v"],
            average_attn_weights=False))
    for a, b in zip(outs[1], outs[0], strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


ERRORS = [
    lambda lib: lib.nn.MultiheadAttention(8, 3),
    lambda lib: lib.nn.MultiheadAttention(8, 2)(lib.zeros(3, 2, 8), lib.zeros(4, 8), lib.zeros(4, 8)),
    lambda lib: lib.nn.MultiheadAttention(8, 2)(lib.zeros(3, 2, 8), lib.zeros(4, 2, 8), lib.zeros(4, 2, 8),
                                                attn_mask=lib.zeros(3, 5)),
    lambda lib: lib.nn.MultiheadAttention(8, 2)(lib.zeros(3, 2, 8), lib.zeros(4, 2, 8), lib.zeros(4, 2, 8),
                                                key_padding_mask=lib.zeros(2, 4, 1, dtype=lib.bool)),
    lambda lib: lib.nn.functional.multi_head_attention_forward(
        lib.zeros(3, 2, 8), lib.zeros(4, 2, 8), lib.zeros(4, 2, 8), 8, 2, lib.zeros(24, 8), None, None, None, False,
        0.0, lib.zeros(8, 8), None, is_causal=True),
]


@pytest.mark.parametrize("call", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_errors_match_torch(call):
    with pytest.raises(Exception) as want:
        call(torch)
    with pytest.raises(Exception) as got:
        call(ember)
    assert isinstance(got.value, want.type), f"ember {got.type.__name__}: {got.value}; torch {want.type.__name__}"
