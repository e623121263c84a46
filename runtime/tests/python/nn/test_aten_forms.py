"""torch's top-level (ATen-schema) nn forms (torch.batch_norm, torch.margin_ranking_loss, torch.gru_cell,
...) and the lazy modules (nn.LazyLinear & co), against torch."""
import numpy as np
import pytest
import torch

import ember
from optest import OpCase, op_tests

F = ["float32", "float64"]


def _signs(rng, shapes, dtype):
    return [rng.uniform(-2, 2, s).astype(dtype) for s in shapes[:-1]] + [rng.choice([-1.0, 1.0], shapes[-1]).astype(dtype)]


CASES = [
    OpCase("batch_norm", lambda lib, x, w, b, m, v: (lib.batch_norm(x, w, b, m.clone(), v.abs() + 0.5, True, 0.1, 1e-5,
                                                                    False),
                                                     lib.batch_norm(x, w, b, m, v.abs() + 0.5, False, 0.1, 1e-5, True)),
           [[(4, 3, 5), (3,), (3,), (3,), (3,)], [(2, 3), (3,), (3,), (3,), (3,)]], F, grad_inputs=[0, 1, 2]),
    OpCase("instance_norm", lambda lib, x, w, b: lib.instance_norm(x, w, b, None, None, True, 0.1, 1e-5, False),
           [[(2, 3, 6), (3,), (3,)], [(2, 3, 4, 4), (3,), (3,)]], F),
    OpCase("group_norm", lambda lib, x, w, b: (lib.group_norm(x, 2, w, b), lib.group_norm(x, 1, None, None, 1e-3)),
           [[(2, 4, 5), (4,), (4,)], [(3, 4, 2, 2), (4,), (4,)]], F),
    OpCase("max_pool", lambda lib, a, b, c: (lib.max_pool1d(a, 2), lib.max_pool2d(b, 2, 1, 1), lib.max_pool3d(c, 2),
                                             lib.max_pool2d(b, [3, 2], [], 0, 1, True)),
           [[(2, 3, 8), (2, 3, 6, 6), (1, 2, 4, 4, 4)]], F, gradcheck=False),
    OpCase("bce_with_logits", lambda lib, x, t, w, pw: (lib.binary_cross_entropy_with_logits(x, t),
                                                        lib.binary_cross_entropy_with_logits(x, t, w, pw, 0),
                                                        lib.binary_cross_entropy_with_logits(x, t, None, pw, 2)),
           [[(4, 3), (4, 3), (3,), (3,)], [(0, 3), (0, 3), (3,), (3,)]], F, grad_inputs=[0],
           make_inputs=lambda rng, s, d: [rng.uniform(-3, 3, s[0]).astype(d), rng.uniform(0, 1, s[1]).astype(d),
                                          rng.uniform(0.5, 2, s[2]).astype(d), rng.uniform(0.5, 2, s[3]).astype(d)]),
    OpCase("margin_losses", lambda lib, a, b, y: (lib.margin_ranking_loss(a, b, y), lib.margin_ranking_loss(a, b, y, 0.5, 0),
                                                  lib.hinge_embedding_loss(a, y), lib.hinge_embedding_loss(a, y, 2.0, 2)),
           [[(6,), (6,), (6,)]], F, grad_inputs=[0, 1], make_inputs=_signs),
    OpCase("embedding_losses", lambda lib, a, b, y: (lib.cosine_embedding_loss(a, b, y),
                                                     lib.cosine_embedding_loss(a, b, y, 0.2, 0)),
           [[(4, 5), (4, 5), (4,)]], F, grad_inputs=[0, 1], make_inputs=_signs),
    OpCase("poisson_nll_loss", lambda lib, x, t: (lib.poisson_nll_loss(x, t, True, False, 1e-8, 1),
                                                  lib.poisson_nll_loss(x.abs() + 0.1, t, False, True, 1e-8, 0)),
           [[(3, 4), (3, 4)]], F, grad_inputs=[0], make_inputs=lambda rng, s, d: [rng.uniform(-1, 1, s[0]).astype(d),
                                                                                  rng.integers(0, 5, s[1]).astype(d)]),
    OpCase("triplet_margin_loss", lambda lib, a, p, n: (lib.triplet_margin_loss(a, p, n),
                                                        lib.triplet_margin_loss(a, p, n, 0.5, 1, 1e-6, True, 0)),
           [[(4, 5), (4, 5), (4, 5)]], F),
    OpCase("loss_string_reduction_refused", lambda lib, a, b, y: lib.margin_ranking_loss(a, b, y, 0.0, "sum"),
           [[(3,), (3,), (3,)]], F, grad=False, make_inputs=_signs),
    OpCase("rnn_cells", lambda lib, x, h, wi, wh, bi, bh: (lib.rnn_tanh_cell(x, h, wi, wh, bi, bh),
                                                           lib.rnn_relu_cell(x, h, wi, wh)),
           [[(3, 4), (3, 5), (5, 4), (5, 5), (5,), (5,)]], F),
    OpCase("gru_cell", lambda lib, x, h, wi, wh, bi, bh: (lib.gru_cell(x, h, wi, wh, bi, bh), lib.gru_cell(x, h, wi, wh)),
           [[(3, 4), (3, 5), (15, 4), (15, 5), (15,), (15,)], [(0, 4), (0, 5), (15, 4), (15, 5), (15,), (15,)]], F),
    OpCase("lstm_cell", lambda lib, x, h, c, wi, wh, bi, bh: (*lib.lstm_cell(x, (h, c), wi, wh, bi, bh),
                                                              *lib.lstm_cell(x, [h, c], wi, wh)),
           [[(3, 4), (3, 5), (3, 5), (20, 4), (20, 5), (20,), (20,)]], F),
    OpCase("cell_unbatched_refused", lambda lib, x, h, wi, wh: lib.rnn_tanh_cell(x[0], h[0], wi, wh),
           [[(3, 4), (3, 5), (5, 4), (5, 5)]], F, grad=False),
    OpCase("gru_cell_bad_weight", lambda lib, x, h, wi, wh: lib.gru_cell(x, h, wi, wh),
           [[(3, 4), (3, 5), (12, 4), (15, 5)]], F, grad=False),
]

test_matches_torch, test_gradcheck = op_tests(CASES)


def test_reduction_errors():
    a = ember.ones(3)
    with pytest.raises(ValueError, match=r"\[hinge_embedding_loss\] 5 is not a valid value for reduction"):
        ember.hinge_embedding_loss(a, a, 1.0, 5)
    with pytest.raises(RuntimeError, match=r"\[gru_cell\] inconsistent shapes: input \[3, 4\], hx \[3, 5\]"):
        ember.gru_cell(ember.ones(3, 4), ember.ones(3, 5), ember.ones(12, 4), ember.ones(15, 5))


LAZY = [
    ("LazyLinear", (3,), {}, (4, 6)), ("LazyLinear", (2,), {"bias": False}, (7,)),
    ("LazyConv1d", (4, 3), {"padding": 1}, (2, 3, 8)), ("LazyConv2d", (4, 3, 2, 1, 1, 1, False), {}, (2, 3, 7, 7)),
    ("LazyConv2d", (4, 3), {}, (3, 7, 7)), ("LazyConv3d", (2, 2), {}, (1, 3, 4, 4, 4)),
    ("LazyConvTranspose1d", (2, 3), {"stride": 2}, (2, 4, 5)), ("LazyConvTranspose2d", (2, 3), {}, (1, 3, 4, 4)),
    ("LazyConvTranspose3d", (2, 2), {}, (1, 3, 3, 3, 3)), ("LazyBatchNorm1d", (), {}, (5, 3)),
    ("LazyBatchNorm1d", (), {"affine": False}, (5, 3, 4)), ("LazyBatchNorm2d", (), {"momentum": 0.3}, (2, 3, 4, 4)),
    ("LazyBatchNorm3d", (), {"track_running_stats": False}, (2, 3, 2, 2, 2)),
    ("LazyInstanceNorm1d", (), {}, (2, 3, 6)), ("LazyInstanceNorm2d", (), {"affine": True}, (2, 3, 4, 4)),
    ("LazyInstanceNorm3d", (), {"track_running_stats": True}, (2, 3, 2, 2, 2)),
]


@pytest.mark.parametrize("name,args,kwargs,shape", LAZY, ids=[f"{c[0]}-{len(c[3])}d" for c in LAZY])
def test_lazy_modules_materialise_like_torch(name, args, kwargs, shape):
    torch.manual_seed(0)
    tm = getattr(torch.nn, name)(*args, **kwargs)
    em = getattr(ember.nn, name)(*args, **kwargs)
    uninit = [n for n, p in em.named_parameters() if isinstance(p, ember.nn.UninitializedParameter)]
    assert uninit == [n for n, p in tm.named_parameters() if isinstance(p, torch.nn.UninitializedParameter)]
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    ty = tm(torch.from_numpy(x.copy()))
    # the same weights in both, then a second forward: ember's materialised module computes what torch's does
    em(ember.from_numpy(x.copy()))
    assert type(em).__name__ == type(tm).__name__
    assert [(n, tuple(p.shape)) for n, p in em.named_parameters()] == [(n, tuple(p.shape)) for n, p in tm.named_parameters()]
    assert sorted(em.state_dict()) == sorted(tm.state_dict())
    assert not any(isinstance(p, ember.nn.UninitializedParameter) for p in em.parameters())
    em.load_state_dict({k: ember.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    tm2 = getattr(torch.nn, name)(*args, **kwargs)
    tm2(torch.from_numpy(x.copy()))
    tm2.load_state_dict(tm.state_dict())
    with torch.no_grad():
        expected = tm2(torch.from_numpy(x.copy())).numpy()
    actual = em(ember.from_numpy(x.copy())).detach().numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    assert ty.shape == tuple(actual.shape)


def test_lazy_module_trains_after_dry_run():
    model = ember.nn.Sequential(ember.nn.LazyLinear(4), ember.nn.ReLU(), ember.nn.LazyLinear(1))
    x = ember.randn(8, 5)
    model(x)
    opt = ember.optim.SGD(model.parameters(), lr=0.1)
    before = model[0].weight.detach().clone()
    model(x).sum().backward()
    opt.step()
    assert model[0].weight.shape == (4, 5) and not ember.equal(before, model[0].weight.detach())


def test_lazy_errors_and_aliases():
    with pytest.raises(RuntimeError, match=r"\[LazyConv2d\] Expected 3D \(unbatched\) or 4D \(batched\) input"):
        ember.nn.LazyConv2d(2, 3)(ember.ones(2, 3))
    with pytest.raises(ValueError, match=r"\[LazyBatchNorm1d\] expected 2D or 3D input"):
        ember.nn.LazyBatchNorm1d()(ember.ones(2, 3, 4, 5))
    assert isinstance(ember.nn.NLLLoss2d(), ember.nn.NLLLoss)
    with pytest.warns(UserWarning, match="nn.Container is deprecated"):
        c = ember.nn.Container(a=ember.nn.ReLU())
    assert list(dict(c.named_children())) == ["a"]
