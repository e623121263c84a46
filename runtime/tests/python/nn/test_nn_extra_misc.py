"""grid_sample/affine_grid, embedding_bag/EmbeddingBag, bilinear/Bilinear, gumbel_softmax, alpha
dropout, max unpooling, LP pooling and AdaptiveMaxPool3d against torch: values, gradients (to inputs,
grids, weights and per-sample weights), modules' reprs/state_dicts/default init, torch's errors, and
statistical checks of the random ones (whose draws come from ember's own generator)."""
import itertools
import warnings

import numpy as np
import pytest
import torch

import ember
from compat_helpers import one_thread_each  # noqa: F401  (autouse fixture)
from nn_helpers import E
from optest import OpCase, op_tests

F32_64 = ("float32", "float64")


def _grid_case(mode, padding_mode, align_corners, shapes):
    def fn(lib, x, g):
        return lib.nn.functional.grid_sample(x, g, mode, padding_mode, align_corners)
    return OpCase(f"grid_sample-{mode}-{padding_mode}-ac{align_corners}", fn, shapes=shapes, dtypes=F32_64,
                  low=-1.3, high=1.3, gradcheck=mode != "nearest")


GRID_2D = [[(2, 3, 5, 6), (2, 4, 7, 2)], [(1, 1, 1, 4), (1, 2, 3, 2)], [(0, 2, 3, 3), (0, 2, 2, 2)],
           [(2, 0, 3, 3), (2, 2, 2, 2)], [(1, 2, 3, 3), (1, 0, 2, 2)]]
GRID_3D = [[(2, 2, 3, 4, 3), (2, 2, 3, 2, 3)], [(1, 1, 2, 2, 2), (1, 1, 2, 3, 3)]]

CASES = [_grid_case(m, p, ac, GRID_2D) for m in ("bilinear", "nearest", "bicubic")
         for p in ("zeros", "border", "reflection") for ac in (False, True)]
CASES += [_grid_case(m, p, ac, GRID_3D) for m in ("bilinear", "nearest") for p in ("zeros", "border", "reflection")
          for ac in (False, True)]
CASES += [
    OpCase("grid_sample-refused", lambda lib, x, g: lib.nn.functional.grid_sample(x, g, align_corners=False),
           shapes=[[(2, 3, 4, 4), (1, 2, 2, 2)], [(2, 3, 4, 4), (2, 2, 2, 3)], [(2, 3, 0, 4), (2, 2, 2, 2)],
                   [(2, 3, 4), (2, 2, 2)]], grad=False),
    OpCase("grid_sample-bicubic-3d-refused", lambda lib, x, g: lib.nn.functional.grid_sample(x, g, "bicubic",
                                                                                             align_corners=False),
           shapes=[[(1, 1, 2, 2, 2), (1, 1, 1, 1, 3)]], grad=False),
    *[OpCase(f"affine_grid-2d-ac{ac}", lambda lib, t, ac=ac: lib.nn.functional.affine_grid(t, (2, 3, 4, 5), ac),
             shapes=[[(2, 2, 3)]], dtypes=F32_64) for ac in (False, True)],
    *[OpCase(f"affine_grid-3d-ac{ac}", lambda lib, t, ac=ac: lib.nn.functional.affine_grid(t, (2, 1, 3, 4, 2), ac),
             shapes=[[(2, 3, 4)]], dtypes=F32_64) for ac in (False, True)],
    OpCase("affine_grid-unit", lambda lib, t: lib.nn.functional.affine_grid(t, (1, 1, 1, 3), False),
           shapes=[[(1, 2, 3)]], dtypes=F32_64),
    # a spatial transformer's sampling: affine_grid feeding grid_sample, gradients to theta
    OpCase("affine_grid+grid_sample", lambda lib, x, t: lib.nn.functional.grid_sample(
        x, lib.nn.functional.affine_grid(t, (2, 3, 4, 4), False), align_corners=False),
        shapes=[[(2, 3, 6, 5), (2, 2, 3)]], dtypes=F32_64, low=-0.8, high=0.8),
    # bilinear
    OpCase("bilinear", lambda lib, a, b, w, bias: lib.nn.functional.bilinear(a, b, w, bias),
           shapes=[[(4, 3), (4, 5), (2, 3, 5), (2,)], [(2, 3, 3), (2, 3, 5), (4, 3, 5), (4,)], [(3,), (5,), (2, 3, 5),
                                                                                              (2,)],
                   [(0, 3), (0, 5), (2, 3, 5), (2,)]], dtypes=F32_64),
    OpCase("bilinear-nobias", lambda lib, a, b, w: lib.nn.functional.bilinear(a, b, w), shapes=[[(4, 3), (4, 5),
                                                                                                   (2, 3, 5)]],
           dtypes=F32_64),
    OpCase("bilinear-refused", lambda lib, a, b, w: lib.nn.functional.bilinear(a, b, w),
           shapes=[[(4, 3), (3, 5), (2, 3, 5)], [(4, 2), (4, 5), (2, 3, 5)], [(4, 3), (4, 5, 1), (2, 3, 5)]],
           grad=False),
    # LP pooling
    *[OpCase(f"lp_pool{d}d-p{p}", lambda lib, x, d=d, p=p, k=k, s=s: getattr(lib.nn.functional, f"lp_pool{d}d")(
        x, p, k, s), shapes=shapes, dtypes=F32_64, low=0.2, high=2.0)
      for p in (1.0, 2.0, 3.0)
      for d, k, s, shapes in [(1, 2, None, [[(2, 3, 6)], [(3, 7)]]), (1, 3, 2, [[(2, 2, 7)]]),
                              (2, 2, None, [[(2, 3, 4, 6)], [(2, 5, 4)]]), (2, (2, 3), 1, [[(1, 2, 4, 5)]]),
                              (3, 2, None, [[(1, 2, 4, 4, 4)]])]],
    OpCase("lp_pool2d-ceil", lambda lib, x: lib.nn.functional.lp_pool2d(x, 2.0, 2, ceil_mode=True),
           shapes=[[(1, 2, 5, 5)]], dtypes=F32_64, low=0.2, high=2.0),
    # adaptive max pooling in 3-d: values, indices (flat within the volume), gradients
    *[OpCase(f"adaptive_max_pool3d-{size}", lambda lib, x, size=size: lib.nn.functional.adaptive_max_pool3d(
        x, size, return_indices=True), shapes=[[(2, 3, 5, 4, 6)], [(2, 4, 3, 5)]], dtypes=F32_64)
      for size in [(2, 3, 4), 2, (None, 2, 5), (5, 4, 6), (1, 1, 1)]],
    OpCase("adaptive_max_pool3d-refused", lambda lib, x: lib.nn.functional.adaptive_max_pool3d(x, 2),
           shapes=[[(2, 3, 4)], [(2, 0, 3, 3, 3)]], grad=False),
]

test_matches_torch, test_gradcheck = op_tests(CASES)


# ---- max unpooling: the inverse scatter of max pooling ------------------------------------------------
UNPOOL = [
    (1, dict(kernel_size=2), (2, 3, 8), None), (1, dict(kernel_size=3, stride=2, padding=1), (1, 2, 9), None),
    (2, dict(kernel_size=2), (2, 3, 6, 4), None), (2, dict(kernel_size=3, stride=2, padding=1), (1, 2, 7, 7), None),
    (2, dict(kernel_size=2), (3, 5, 5), [5, 5]), (2, dict(kernel_size=2), (1, 2, 5, 5), [1, 2, 5, 5]),
    (3, dict(kernel_size=2), (1, 2, 4, 4, 6), None),
]


@pytest.mark.parametrize("d,kw,shape,output_size", UNPOOL, ids=[f"{u[0]}d-{i}" for i, u in enumerate(UNPOOL)])
def test_max_unpool_matches_torch(d, kw, shape, output_size):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    pooled, indices = getattr(torch.nn.functional, f"max_pool{d}d")(torch.from_numpy(x), return_indices=True, **kw)
    pt = pooled.clone().requires_grad_(True)
    pe = E(pooled).requires_grad_(True)
    ie = ember.from_numpy(indices.numpy().copy())
    yt = getattr(torch.nn.functional, f"max_unpool{d}d")(pt, indices, output_size=output_size, **kw)
    ye = getattr(ember.nn.functional, f"max_unpool{d}d")(pe, ie, output_size=output_size, **kw)
    np.testing.assert_array_equal(ye.detach().numpy(), yt.detach().numpy())
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.from_numpy(g))
    ye.backward(ember.from_numpy(g))
    np.testing.assert_array_equal(pe.grad.numpy(), pt.grad.numpy())
    tm, em = getattr(torch.nn, f"MaxUnpool{d}d")(**kw), getattr(ember.nn, f"MaxUnpool{d}d")(**kw)
    assert repr(em) == repr(tm)
    np.testing.assert_array_equal(em(pe, ie, output_size).detach().numpy(),
                                  tm(pt, indices, output_size).detach().numpy())


# ---- embedding_bag ---------------------------------------------------------------------------------
def _bag_inputs(layout, rng):
    if layout == "2d":
        return rng.integers(0, 7, size=(4, 3)), None
    idx = rng.integers(0, 7, size=10)
    # include_last_offset: the CSR layout, the last offset = the number of indices (torch's kernels disagree
    # with each other about a last offset short of it)
    offsets = {"offsets": [0, 3, 3, 8], "last-offset": [0, 2, 2, 7, 10], "one-bag": [0]}[layout]
    return idx, np.array(offsets)


BAGS = [(m, lay, p, w) for m, lay, p, w in itertools.product(["sum", "mean", "max"], ["2d", "offsets", "last-offset",
                                                                                      "one-bag"], [None, 2, -1],
                                                                [False, True])
        if m == "sum" or not w]  # per_sample_weights is mode='sum' only (the refusal is in test_embedding_bag_errors)


@pytest.mark.parametrize("mode,layout,padding_idx,weighted", BAGS,
                         ids=[f"{m}-{lay}-pad{p}-w{w}" for m, lay, p, w in BAGS])
def test_embedding_bag_matches_torch(mode, layout, padding_idx, weighted):
    rng = np.random.default_rng(1)
    idx, offsets = _bag_inputs(layout, rng)
    if idx.size:
        idx.reshape(-1)[0] = 2  # the padding row (when padding_idx=2) appears in some bag
    w = rng.standard_normal((7, 4))
    psw = rng.uniform(0.5, 2, size=idx.shape) if weighted else None
    last = layout == "last-offset"
    wt, we = torch.tensor(w, requires_grad=True), ember.from_numpy(w.copy()).requires_grad_(True)
    pt = torch.tensor(psw, requires_grad=True) if weighted else None
    pe = ember.from_numpy(psw.copy()).requires_grad_(True) if weighted else None
    ot = torch.from_numpy(offsets) if offsets is not None else None
    oe = ember.from_numpy(offsets.copy()) if offsets is not None else None
    yt = torch.nn.functional.embedding_bag(torch.from_numpy(idx), wt, ot, mode=mode, per_sample_weights=pt,
                                           include_last_offset=last, padding_idx=padding_idx)
    ye = ember.nn.functional.embedding_bag(ember.from_numpy(idx.copy()), we, oe, mode=mode, per_sample_weights=pe,
                                           include_last_offset=last, padding_idx=padding_idx)
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.from_numpy(g))
    ye.backward(ember.from_numpy(g))
    np.testing.assert_allclose(we.grad.numpy(), wt.grad.numpy(), rtol=1e-12, atol=1e-14)
    if weighted:
        np.testing.assert_allclose(pe.grad.numpy(), pt.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_embedding_bag_module_matches_torch():
    for kwargs in [dict(), dict(mode="sum", padding_idx=-2, max_norm=1.0), dict(mode="max", norm_type=1.0,
                                                                                scale_grad_by_freq=False),
                   dict(include_last_offset=True)]:
        torch.manual_seed(0)
        tm, em = torch.nn.EmbeddingBag(9, 4, **kwargs), ember.nn.EmbeddingBag(9, 4, **kwargs)
        assert repr(em) == repr(tm)
        assert list(em.state_dict()) == list(tm.state_dict())
        if kwargs.get("padding_idx") is not None:
            np.testing.assert_array_equal(em.weight.detach().numpy()[7], 0)
        em.load_state_dict({k: E(v) for k, v in tm.state_dict().items()})
        idx = np.array([1, 4, 4, 7, 8, 0, 4])
        offsets = np.array([0, 2, 5, 7] if kwargs.get("include_last_offset") else [0, 2, 5])
        yt = tm(torch.from_numpy(idx), torch.from_numpy(offsets))
        ye = em(ember.from_numpy(idx.copy()), ember.from_numpy(offsets.copy()))
        np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-6, atol=1e-7)
        yt.sum().backward()
        ye.sum().backward()
        np.testing.assert_allclose(em.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(em.weight.detach().numpy(), tm.weight.detach().numpy(), rtol=1e-6)  # max_norm
    w = ember.from_numpy(np.arange(12.0).reshape(4, 3))
    bag = ember.nn.EmbeddingBag.from_pretrained(w, mode="sum")
    assert not bag.weight.requires_grad
    np.testing.assert_array_equal(bag(ember.tensor([[0, 3]])).numpy(), [[9.0, 11.0, 13.0]])


def test_embedding_bag_scale_grad_by_freq_divides_by_each_index_count():
    """Each row's gradient is divided by how often its index occurs in the batch (the documented rule;
    torch 2.13's CPU kernel divides by the count of another index when several rows share a bag)."""
    w = ember.zeros(10, 2, requires_grad=True)
    idx, offsets = ember.tensor([1, 4, 4, 7, 8, 0, 4]), ember.tensor([0, 2, 5])
    ember.nn.functional.embedding_bag(idx, w, offsets, mode="sum", scale_grad_by_freq=True).sum().backward()
    np.testing.assert_allclose(w.grad.numpy()[:, 0], [1, 1, 0, 0, 1, 0, 0, 1, 1, 0])
    w.grad = None
    ember.nn.functional.embedding_bag(idx, w, offsets, mode="mean", scale_grad_by_freq=True).sum().backward()
    np.testing.assert_allclose(w.grad.numpy()[:, 0], [1 / 2, 1 / 2, 0, 0, (1 / 2 + 1 / 3 + 1 / 2) / 3, 0, 0, 1 / 3,
                                                      1 / 3, 0], rtol=1e-6)


EB_ERRORS = [
    lambda F, lib: F.embedding_bag(lib.zeros(3, 0, dtype=lib.int64), lib.zeros(3, 2)),
    lambda F, lib: F.embedding_bag(lib.tensor([[0, 1]]), lib.zeros(3, 2), lib.tensor([0])),
    lambda F, lib: F.embedding_bag(lib.tensor([0, 1]), lib.zeros(3, 2)),
    lambda F, lib: F.embedding_bag(lib.tensor([0, 1]), lib.zeros(3, 2), lib.tensor([1])),
    lambda F, lib: F.embedding_bag(lib.tensor([0, 1]), lib.zeros(3, 2), lib.tensor([0]), mode="median"),
    lambda F, lib: F.embedding_bag(lib.tensor([0, 1]), lib.zeros(3, 2), lib.tensor([0]), mode="mean",
                                   per_sample_weights=lib.ones(2)),
    lambda F, lib: F.embedding_bag(lib.tensor([0, 1]), lib.zeros(3, 2), lib.tensor([0]),
                                   per_sample_weights=lib.ones(3)),
    lambda F, lib: F.embedding_bag(lib.tensor([0, 1]), lib.zeros(3), lib.tensor([0])),
    lambda F, lib: F.embedding_bag(lib.tensor([0, 5]), lib.zeros(3, 2), lib.tensor([0])),
]


@pytest.mark.parametrize("call", EB_ERRORS, ids=[str(i) for i in range(len(EB_ERRORS))])
def test_embedding_bag_errors(call):
    with pytest.raises(Exception) as want:
        call(torch.nn.functional, torch)
    with pytest.raises(Exception) as got:
        call(ember.nn.functional, ember)
    assert isinstance(got.value, want.type) or (want.type is RuntimeError and isinstance(got.value, IndexError)), \
        f"ember {got.type.__name__}: {got.value}; torch {want.type.__name__}"
    assert "[embedding_bag]" in str(got.value)


# ---- modules with learnable state ------------------------------------------------------------------
def test_bilinear_module_matches_torch_and_inits_like_it():
    torch.manual_seed(0)
    tm, em = torch.nn.Bilinear(3, 5, 4), ember.nn.Bilinear(3, 5, 4)
    assert repr(em) == repr(tm) and list(em.state_dict()) == list(tm.state_dict())
    big = ember.nn.Bilinear(16, 8, 64)
    w = big.weight.detach().numpy()
    bound = 1 / np.sqrt(16)
    assert w.min() >= -bound and w.max() <= bound and abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound
    em.load_state_dict({k: E(v) for k, v in tm.state_dict().items()})
    x1, x2 = np.random.default_rng(0).standard_normal((2, 6, 3)), np.random.default_rng(1).standard_normal((2, 6, 5))
    yt, ye = tm(torch.tensor(x1, dtype=torch.float32), torch.tensor(x2, dtype=torch.float32)), \
        em(ember.from_numpy(x1.astype(np.float32)), ember.from_numpy(x2.astype(np.float32)))
    np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    yt.sum().backward()
    ye.sum().backward()
    np.testing.assert_allclose(em.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-5, atol=1e-6)


MODULE_REPRS = [("AlphaDropout", (0.2,)), ("FeatureAlphaDropout", ()), ("LPPool2d", (2, 3)),
                ("LPPool1d", (1.5, 2, 1, True)), ("LPPool3d", (2, (1, 2, 2))), ("AdaptiveMaxPool3d", ((2, None, 3),)),
                ("AdaptiveMaxPool3d", (2, True))]


@pytest.mark.parametrize("name,args", MODULE_REPRS)
def test_module_reprs_match_torch(name, args):
    assert repr(getattr(ember.nn, name)(*args)) == repr(getattr(torch.nn, name)(*args))


def test_lp_pool_and_adaptive_max_pool3d_modules_match_torch():
    x = np.random.default_rng(0).uniform(0.1, 2, size=(2, 3, 4, 6, 4))
    for name, args in [("LPPool3d", (2.0, 2)), ("AdaptiveMaxPool3d", ((3, 2, 3),))]:
        yt = getattr(torch.nn, name)(*args)(torch.from_numpy(x))
        ye = getattr(ember.nn, name)(*args)(ember.from_numpy(x.copy()))
        np.testing.assert_allclose(ye.numpy(), yt.numpy(), rtol=1e-12)


# ---- random ones: statistics -------------------------------------------------------------------------
def test_gumbel_softmax_samples_the_categorical_distribution():
    ember.manual_seed(0)
    logits = ember.tensor([[1.0, 0.0, -1.0, 2.0]]).expand(20000, 4)
    soft = ember.nn.functional.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(soft.sum(-1).numpy(), 1.0, rtol=1e-5)
    hard = ember.nn.functional.gumbel_softmax(logits, hard=True)
    counts = hard.numpy().sum(0) / 20000
    probs = np.exp([1.0, 0.0, -1.0, 2.0]) / np.exp([1.0, 0.0, -1.0, 2.0]).sum()
    np.testing.assert_allclose(counts, probs, atol=0.015)  # the Gumbel-max trick draws argmax ~ softmax(logits)
    assert set(np.unique(hard.numpy())) == {0.0, 1.0}


def test_gumbel_softmax_hard_passes_the_soft_gradient():
    ember.manual_seed(1)
    logits = ember.from_numpy(np.array([[0.5, -0.2, 1.0]])).requires_grad_(True)
    ember.manual_seed(1)
    soft = ember.nn.functional.gumbel_softmax(logits, tau=2.0)
    (soft * ember.tensor([[1.0, 2.0, 3.0]], dtype=ember.float64)).sum().backward()
    want = logits.grad.numpy().copy()
    logits.grad = None
    ember.manual_seed(1)
    hard = ember.nn.functional.gumbel_softmax(logits, tau=2.0, hard=True)
    (hard * ember.tensor([[1.0, 2.0, 3.0]], dtype=ember.float64)).sum().backward()
    np.testing.assert_allclose(logits.grad.numpy(), want, rtol=1e-12)
    np.testing.assert_array_equal(hard.detach().numpy(), np.eye(3)[soft.detach().numpy().argmax(-1)])


@pytest.mark.parametrize("feature", [False, True])
def test_alpha_dropout_keeps_selu_statistics(feature):
    ember.manual_seed(0)
    F = ember.nn.functional
    fn = F.feature_alpha_dropout if feature else F.alpha_dropout
    x = ember.randn(400, 64, 8) if feature else ember.randn(200000)
    y = fn(x, 0.2, training=True).numpy()
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02  # zero mean, unit variance kept
    dropped = -1.7580993408473766 * (1 / np.sqrt((1.7580993408473766 ** 2 * 0.2 + 1) * 0.8)) + \
        1.7580993408473766 * (1 / np.sqrt((1.7580993408473766 ** 2 * 0.2 + 1) * 0.8)) * 0.2
    share = np.isclose(y, dropped, atol=1e-6).mean()
    assert abs(share - 0.2) < 0.01
    if feature:  # whole channels are dropped together
        planes = np.isclose(y, dropped, atol=1e-6).reshape(400, 64, 8)
        assert np.all(planes.all(-1) == planes.any(-1))
    np.testing.assert_array_equal(fn(x, 0.2, training=False).numpy(), x.numpy())
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        fn(x, 1.5, training=True)


def test_alpha_dropout_module_train_and_eval():
    m = ember.nn.AlphaDropout(0.5)
    x = ember.ones(1000)
    assert not np.allclose(m(x).numpy(), 1.0)
    m.eval()
    np.testing.assert_array_equal(m(x).numpy(), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(ember.nn.functional.alpha_dropout(x, 1.0, True).numpy(), 0.0)
