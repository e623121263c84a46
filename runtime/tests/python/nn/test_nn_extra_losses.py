"""The margin, embedding, triplet, multi-label and Poisson/Gaussian NLL losses against torch: F forms
through the op table (every reduction, forward, backward, float64 finite differences, 0-size and
unbatched shapes, non-contiguous inputs), the loss modules (repr, state_dict), legacy
size_average/reduce arguments and torch's errors."""
import warnings

import numpy as np
import pytest
import torch

import ember
from compat_helpers import one_thread_each  # noqa: F401  (autouse fixture)
from optest import OpCase, op_tests

REDUCTIONS = ("none", "sum", "mean")
F32_64 = ("float32", "float64")


def _np(dtype):
    return np.float32 if dtype == "bfloat16" else np.dtype(dtype)


def values_and_signs(n_values):
    """make_inputs: n_values uniform(-2, 2) inputs, then a +-1 target for each remaining shape."""
    def make(rng, shapes, dtype):
        out = [rng.uniform(-2, 2, size=s).astype(_np(dtype)) for s in shapes[:n_values]]
        out += [rng.choice([-1.0, 1.0], size=s).astype(_np(dtype)) for s in shapes[n_values:]]
        return out
    return make


def class_targets(rng, shapes, dtype):
    """Scores (shapes[0]), class-index targets (shapes[1]), optional class weights (shapes[2])."""
    x = rng.uniform(-2, 2, size=shapes[0]).astype(_np(dtype))
    n_classes = shapes[0][-1] if shapes[0] else 1
    out = [x, np.asarray(rng.integers(0, n_classes, size=shapes[1]), dtype=np.int64)]
    out += [rng.uniform(0.2, 2, size=s).astype(_np(dtype)) for s in shapes[2:]]
    return out


def multilabel_targets(rng, shapes, dtype):
    """Scores and rows of distinct class indices ended by -1 (then junk indices torch ignores)."""
    x = rng.uniform(-2, 2, size=shapes[0]).astype(_np(dtype))
    c = shapes[0][-1]
    rows = np.full((int(np.prod(shapes[0][:-1])), c), -1, dtype=np.int64)
    for r in range(rows.shape[0]):
        k = int(rng.integers(0, c + 1))
        rows[r, :k] = rng.permutation(c)[:k]
        if k + 1 < c:
            rows[r, k + 1:] = rng.integers(0, c, size=c - k - 1)  # after the -1: ignored
    return [x, rows.reshape(shapes[1])]


def poisson_inputs(log_input):
    def make(rng, shapes, dtype):
        x = rng.uniform(-2, 2, size=shapes[0]) if log_input else rng.uniform(0.1, 3, size=shapes[0])
        t = rng.integers(0, 5, size=shapes[1]).astype(np.float64)
        return [x.astype(_np(dtype)), t.astype(_np(dtype))]
    return make


def gaussian_inputs(tiny_var):
    def make(rng, shapes, dtype):
        x, t = (rng.uniform(-2, 2, size=s).astype(_np(dtype)) for s in shapes[:2])
        var = rng.uniform(0.2, 2, size=shapes[2])
        if tiny_var and var.size > 1:
            var.reshape(-1)[0] = 1e-9  # below eps: clamped in value, not in gradient
        return [x, t, var.astype(_np(dtype))]
    return make


def F_(name):
    return lambda lib: getattr(lib.nn.functional, name)


CASES = []
for r in REDUCTIONS:
    CASES += [
        OpCase(f"margin_ranking-{r}",
               lambda lib, a, b, t, r=r: F_("margin_ranking_loss")(lib)(a, b, t, 0.3, reduction=r),
               shapes=[[(5,)] * 3, [(3, 4)] * 3, [()] * 3, [(0,)] * 3, [(3, 4), (3, 4), (1, 4)]], dtypes=F32_64,
               make_inputs=values_and_signs(2), grad_inputs=[0, 1]),
        OpCase(f"hinge_embedding-{r}", lambda lib, x, t, r=r: F_("hinge_embedding_loss")(lib)(x, t, 0.7, reduction=r),
               shapes=[[(5,)] * 2, [(3, 4)] * 2, [()] * 2, [(0,)] * 2], dtypes=F32_64, make_inputs=values_and_signs(1),
               grad_inputs=[0]),
        OpCase(f"cosine_embedding-{r}", lambda lib, a, b, t, r=r: F_("cosine_embedding_loss")(lib)(a, b, t, 0.2,
                                                                                                  reduction=r),
               shapes=[[(4, 5), (4, 5), (4,)], [(6,), (6,), ()], [(0, 3), (0, 3), (0,)]], dtypes=F32_64,
               make_inputs=values_and_signs(2), grad_inputs=[0, 1]),
        *[OpCase(f"triplet-p{p}-swap{s}-{r}", lambda lib, a, b, c, p=p, s=s, r=r: F_("triplet_margin_loss")(lib)(
            a, b, c, margin=0.8, p=p, swap=s, reduction=r),
            shapes=[[(4, 5)] * 3, [(6,)] * 3, [(0, 3)] * 3], dtypes=F32_64) for p in (1, 2, 3) for s in (False, True)],
        OpCase(f"triplet-with-distance-{r}", lambda lib, a, b, c, r=r: F_("triplet_margin_with_distance_loss")(lib)(
            a, b, c, distance_function=lambda x, y: 1.0 - lib.nn.functional.cosine_similarity(x, y), margin=0.5,
            swap=True, reduction=r), shapes=[[(4, 5)] * 3], dtypes=F32_64),
        OpCase(f"triplet-with-default-distance-{r}",
               lambda lib, a, b, c, r=r: F_("triplet_margin_with_distance_loss")(lib)(a, b, c, reduction=r),
               shapes=[[(4, 5)] * 3, [(5,)] * 3], dtypes=F32_64),
        OpCase(f"soft_margin-{r}", lambda lib, x, t, r=r: F_("soft_margin_loss")(lib)(x, t, reduction=r),
               shapes=[[(5,)] * 2, [(3, 4)] * 2, [()] * 2, [(0,)] * 2], dtypes=F32_64, make_inputs=values_and_signs(1),
               grad_inputs=[0]),
        OpCase(f"multilabel_soft_margin-{r}", lambda lib, x, t, r=r: F_("multilabel_soft_margin_loss")(lib)(
            x, t, reduction=r), shapes=[[(3, 4), (3, 4)], [(5,), (5,)], [(0, 3), (0, 3)]], dtypes=F32_64, low=0,
            high=1),
        OpCase(f"multilabel_soft_margin-weighted-{r}", lambda lib, x, t, w, r=r: F_("multilabel_soft_margin_loss")(lib)(
            x, t, weight=w, reduction=r), shapes=[[(3, 4), (3, 4), (4,)], [(2, 3), (2, 3), (2, 3)]], dtypes=F32_64,
            low=0, high=1),
        *[OpCase(f"multi_margin-p{p}-{r}", lambda lib, x, t, p=p, r=r: F_("multi_margin_loss")(lib)(
            x, t, p=p, margin=0.9, reduction=r), shapes=[[(4, 5), (4,)], [(5,), ()], [(5,), (1,)]],
            dtypes=F32_64, make_inputs=class_targets, input_dtypes=[None, "int64"], grad_inputs=[0]) for p in (1, 2)],
        OpCase(f"multi_margin-weighted-{r}", lambda lib, x, t, w, r=r: F_("multi_margin_loss")(lib)(
            x, t, weight=w, reduction=r), shapes=[[(4, 5), (4,), (5,)]], dtypes=F32_64, make_inputs=class_targets,
            input_dtypes=[None, "int64", None], grad_inputs=[0]),
        OpCase(f"multilabel_margin-{r}", lambda lib, x, t, r=r: F_("multilabel_margin_loss")(lib)(x, t, reduction=r),
               shapes=[[(4, 5), (4, 5)], [(6,), (6,)]], dtypes=F32_64, make_inputs=multilabel_targets,
               input_dtypes=[None, "int64"], grad_inputs=[0]),
        *[OpCase(f"poisson_nll-log{li}-full{fu}-{r}", lambda lib, x, t, li=li, fu=fu, r=r: F_("poisson_nll_loss")(lib)(
            x, t, log_input=li, full=fu, reduction=r), shapes=[[(3, 4)] * 2, [()] * 2, [(0,)] * 2], dtypes=F32_64,
            make_inputs=poisson_inputs(li), grad_inputs=[0]) for li in (True, False) for fu in (False, True)],
        # (the clamped variance's huge terms drown finite differences: those run without it)
        *[OpCase(f"gaussian_nll-full{fu}-tiny{tiny}-{r}", lambda lib, x, t, v, fu=fu, r=r: F_("gaussian_nll_loss")(lib)(
            x, t, v, full=fu, reduction=r), shapes=[[(3, 4)] * 3, [(3, 4), (3, 4), (3,)], [(3, 4), (3, 4), (3, 1)],
                                                     [(2, 3, 4), (2, 3, 4), (2, 1, 4)], [(0, 2)] * 3],
            dtypes=F32_64, make_inputs=gaussian_inputs(tiny), gradcheck=not tiny)
          for fu in (False, True) for tiny in (False, True)],
    ]
CASES += [
    OpCase("gaussian_nll-float-var", lambda lib, x, t: F_("gaussian_nll_loss")(lib)(x, t, 0.5), shapes=[[(3, 4)] * 2],
           dtypes=F32_64),
    # torch's refusals: both raise (classes and messages in test_errors_match_torch)
    OpCase("multi_margin-bad-target", lambda lib, x, t: F_("multi_margin_loss")(lib)(x, t), shapes=[[(4, 5), (3,)]],
           make_inputs=class_targets, input_dtypes=[None, "int64"], grad=False),
    OpCase("cosine_embedding-bad-dims", lambda lib, a, b, t: F_("cosine_embedding_loss")(lib)(a, b, t),
           shapes=[[(4, 5), (4, 5), ()]], make_inputs=values_and_signs(2), grad=False),
]

test_matches_torch, test_gradcheck = op_tests(CASES)


ERRORS = [
    ("margin_ranking_loss", lambda F, lib: F.margin_ranking_loss(lib.zeros(3), lib.zeros(3), lib.zeros(1, 3))),
    ("cosine_embedding_loss", lambda F, lib: F.cosine_embedding_loss(lib.zeros(2, 3), lib.zeros(2, 3), lib.ones(())))
    , ("cosine_embedding_loss", lambda F, lib: F.cosine_embedding_loss(lib.zeros(2, 3), lib.zeros(2, 3),
                                                                       lib.ones(2, 2))),
    ("triplet_margin_loss", lambda F, lib: F.triplet_margin_loss(lib.zeros(2, 3), lib.zeros(2, 3), lib.zeros(3))),
    ("triplet_margin_loss", lambda F, lib: F.triplet_margin_loss(lib.zeros(2, 3), lib.zeros(2, 3), lib.zeros(2, 3),
                                                                 margin=0.0)),
    ("multi_margin_loss", lambda F, lib: F.multi_margin_loss(lib.zeros(2, 3), lib.tensor([0, 1]), p=3)),
    ("multi_margin_loss", lambda F, lib: F.multi_margin_loss(lib.zeros(2, 3), lib.tensor([0, 1]),
                                                             weight=lib.ones(1, 3))),
    ("multi_margin_loss", lambda F, lib: F.multi_margin_loss(lib.zeros(2, 3), lib.tensor([0, 1, 2]))),
    ("multi_margin_loss", lambda F, lib: F.multi_margin_loss(lib.zeros(2, 3), lib.tensor([0, 1]),
                                                             weight=lib.ones(4))),
    ("multilabel_margin_loss", lambda F, lib: F.multilabel_margin_loss(lib.zeros(2, 3), lib.tensor([[0, 1]]))),
    ("gaussian_nll_loss", lambda F, lib: F.gaussian_nll_loss(lib.zeros(2, 3), lib.zeros(2, 3), -1.0)),
    ("gaussian_nll_loss", lambda F, lib: F.gaussian_nll_loss(lib.zeros(2, 3), lib.zeros(2, 3), -lib.ones(2, 3))),
    ("gaussian_nll_loss", lambda F, lib: F.gaussian_nll_loss(lib.zeros(2, 3), lib.zeros(2, 3), lib.ones(4))),
    ("poisson_nll_loss", lambda F, lib: F.poisson_nll_loss(lib.zeros(2), lib.zeros(2), reduction="avg")),
    ("TripletMarginLoss", lambda F, lib: lib.nn.TripletMarginLoss(margin=-1.0)),
    ("MultiMarginLoss", lambda F, lib: lib.nn.MultiMarginLoss(p=3)),
]


@pytest.mark.parametrize("op,call", ERRORS, ids=[f"{i}-{e[0]}" for i, e in enumerate(ERRORS)])
def test_errors_match_torch(op, call):
    with pytest.raises(Exception) as want:
        call(torch.nn.functional, torch)
    with pytest.raises(Exception) as got:
        call(ember.nn.functional, ember)
    assert isinstance(got.value, want.type), \
        f"ember raised {got.type.__name__}: {got.value}; torch {want.type.__name__}"
    assert op in str(got.value) or op.replace("Loss", "") in str(got.value) or "only p == 1" in str(got.value), \
        str(got.value)


@pytest.mark.parametrize("name", ["margin_ranking_loss", "soft_margin_loss", "multi_margin_loss",
                                  "multilabel_soft_margin_loss", "poisson_nll_loss", "triplet_margin_loss"])
def test_legacy_size_average_reduce(name):
    rng = np.random.default_rng(0)
    x, y, z = (rng.standard_normal((4, 3)) for _ in range(3))
    t = {"margin_ranking_loss": np.sign(rng.standard_normal((4, 3))), "multi_margin_loss": np.array([0, 2, 1, 1])}
    args = {"margin_ranking_loss": (x, y, t["margin_ranking_loss"]), "multi_margin_loss": (x, t["multi_margin_loss"]),
            "triplet_margin_loss": (x, y, z)}.get(name, (x, np.abs(y)))
    for size_average, reduce in [(False, None), (None, False), (True, True)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = getattr(torch.nn.functional, name)(*[torch.from_numpy(a) for a in args], size_average=size_average,
                                                      reduce=reduce)
            got = getattr(ember.nn.functional, name)(*[ember.from_numpy(a.copy()) for a in args],
                                                     size_average=size_average, reduce=reduce)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


# ---- modules ---------------------------------------------------------------------------------------
GRAD_INPUTS = {"MarginRankingLoss": (0, 1), "CosineEmbeddingLoss": (0, 1), "TripletMarginLoss": (0, 1, 2),
               "TripletMarginWithDistanceLoss": (0, 1, 2), "GaussianNLLLoss": (0, 2)}  # others: the input only


def _module_inputs(name, rng):
    x, y, z = (rng.standard_normal((4, 5)) for _ in range(3))
    signs = np.sign(rng.standard_normal((4, 5)))
    return {
        "MarginRankingLoss": (x, y, signs), "HingeEmbeddingLoss": (x, signs), "SoftMarginLoss": (x, signs),
        "CosineEmbeddingLoss": (x, y, signs[:, 0]), "TripletMarginLoss": (x, y, z),
        "TripletMarginWithDistanceLoss": (x, y, z), "MultiLabelSoftMarginLoss": (x, (signs > 0).astype(np.float64)),
        "MultiMarginLoss": (x, np.array([0, 4, 2, 1])),
        "MultiLabelMarginLoss": (x, np.array([[0, 3, -1, 1, 1], [4, -1, 0, 0, 0], [-1, 2, 2, 2, 2], [0, 1, 2, 3, 4]])),
        "PoissonNLLLoss": (x, rng.integers(0, 4, (4, 5)).astype(np.float64)),
        "GaussianNLLLoss": (x, y, np.abs(z) + 0.1),
    }[name]


LOSS_MODULES = [
    ("MarginRankingLoss", dict(margin=0.5)), ("MarginRankingLoss", dict(reduction="none")),
    ("HingeEmbeddingLoss", dict(margin=2.0, reduction="sum")), ("SoftMarginLoss", dict()),
    ("CosineEmbeddingLoss", dict(margin=0.1)), ("TripletMarginLoss", dict(margin=0.5, p=1.0, swap=True)),
    ("TripletMarginLoss", dict()), ("TripletMarginWithDistanceLoss", dict(margin=0.3)),
    ("MultiLabelSoftMarginLoss", dict(weight=[1.0, 2.0, 0.5, 1.0, 3.0])), ("MultiLabelSoftMarginLoss", dict()),
    ("MultiMarginLoss", dict(p=2, margin=0.5, weight=[1.0, 2.0, 0.5, 1.0, 3.0])), ("MultiMarginLoss", dict()),
    ("MultiLabelMarginLoss", dict(reduction="none")), ("PoissonNLLLoss", dict(full=True)),
    ("PoissonNLLLoss", dict(log_input=False, eps=1e-3)), ("GaussianNLLLoss", dict(full=True, eps=1e-3)),
    ("MarginRankingLoss", dict(size_average=False)),
]


@pytest.mark.parametrize("name,kwargs", LOSS_MODULES, ids=[f"{m[0]}-{i}" for i, m in enumerate(LOSS_MODULES)])
def test_loss_modules_match_torch(name, kwargs):
    inputs = _module_inputs(name, np.random.default_rng(3))
    tk = {k: torch.tensor(v, dtype=torch.float64) if isinstance(v, list) else v for k, v in kwargs.items()}
    ek = {k: ember.tensor(v, dtype=ember.float64) if isinstance(v, list) else v for k, v in kwargs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy size_average (both libraries warn)
        tm, em = getattr(torch.nn, name)(**tk), getattr(ember.nn, name)(**ek)
    assert repr(em) == repr(tm)
    assert list(em.state_dict()) == list(tm.state_dict())
    grads = GRAD_INPUTS.get(name, (0,))
    xt = [torch.tensor(a, requires_grad=i in grads) for i, a in enumerate(inputs)]
    xe = [ember.from_numpy(a.copy()).requires_grad_(i in grads) for i, a in enumerate(inputs)]
    lt, le = tm(*xt), em(*xe)
    np.testing.assert_allclose(le.detach().numpy(), lt.detach().numpy(), rtol=1e-10, atol=1e-12)
    lt.sum().backward()
    le.sum().backward()
    for a, b in zip(xe, xt, strict=True):
        if b.requires_grad:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_margin_losses_of_an_empty_batch():
    """torch 2.13 returns uninitialised memory for these; ember gives the empty sum (0) and mean (NaN)."""
    F = ember.nn.functional
    x, t = ember.zeros(0, 3), ember.zeros(0, dtype=ember.int64)
    assert F.multi_margin_loss(x, t, reduction="sum").item() == 0.0
    assert np.isnan(F.multi_margin_loss(x, t).item())
    assert tuple(F.multi_margin_loss(x, t, reduction="none").shape) == (0,)
    assert F.multilabel_margin_loss(x, ember.zeros(0, 3, dtype=ember.int64), reduction="sum").item() == 0.0


def test_loss_reprs_show_no_arguments_like_torch():
    for name in ("MSELoss", "CrossEntropyLoss", "NLLLoss", "KLDivLoss"):
        assert repr(getattr(ember.nn, name)(reduction="sum")) == repr(getattr(torch.nn, name)(reduction="sum"))


# ---- CTC ------------------------------------------------------------------------------------------
def _ctc_case(rng, layout, blank=0, T=12, C=6):
    target_lengths = [3, 0, 5, 7]  # sample 3 cannot be aligned in its 6 frames: an infinite loss
    input_lengths = [12, 9, 12, 6]
    labels = [c for c in range(C) if c != blank]
    padded = rng.choice(labels, size=(4, 7))
    padded[0, :3] = [labels[1], labels[1], labels[2]]  # a repeated label needs a blank between
    targets = padded if layout == "padded" else np.concatenate([padded[n, :k] for n, k in enumerate(target_lengths)])
    return rng.standard_normal((T, 4, C)), targets, input_lengths, target_lengths


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("layout,blank", [("padded", 0), ("concat", 0), ("padded", 5)])
def test_ctc_loss_matches_torch(layout, blank, reduction, zero_infinity, dtype):
    """Loss and the gradient to the logits under log_softmax, and to log_probs themselves (torch's
    gradient, Note [CTC gradient]); NaN where torch's is NaN (an impossible alignment)."""
    rng = np.random.default_rng(7)
    x, targets, il, tl = _ctc_case(rng, layout, blank)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    xt = torch.tensor(x, dtype=getattr(torch, dtype), requires_grad=True)
    xe = ember.from_numpy(x.astype(dtype)).requires_grad_(True)
    lpt, lpe = xt.log_softmax(2), xe.log_softmax(2)
    lpt.retain_grad()
    lpe.retain_grad()
    lt = torch.nn.functional.ctc_loss(lpt, torch.from_numpy(targets), torch.tensor(il), torch.tensor(tl), blank,
                                      reduction, zero_infinity)
    le = ember.nn.functional.ctc_loss(lpe, ember.from_numpy(targets.copy()), ember.tensor(il), tl, blank, reduction,
                                      zero_infinity)
    np.testing.assert_allclose(le.detach().numpy(), lt.detach().numpy(), **tol)
    g = rng.standard_normal(tuple(lt.shape))
    lt.backward(torch.from_numpy(g).to(lt.dtype))
    le.backward(ember.from_numpy(g.astype(dtype)))
    for a, b in ((lpe.grad, lpt.grad), (xe.grad, xt.grad)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), equal_nan=True, **tol)


def test_ctc_loss_gradient_matches_finite_differences():
    """Through log_softmax (where torch's gradient convention is the true derivative)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 2, 4))
    args = (ember.tensor([[1, 2, 2], [3, 1, 0]]), [7, 5], [3, 2])

    def loss(arr):
        return ember.nn.functional.ctc_loss(ember.from_numpy(arr).log_softmax(2), *args, reduction="sum")

    xe = ember.from_numpy(x.copy()).requires_grad_(True)
    ember.nn.functional.ctc_loss(xe.log_softmax(2), *args, reduction="sum").backward()
    numeric = np.zeros_like(x)
    for i in range(x.size):
        d = np.zeros(x.size)
        d[i] = 1e-6
        numeric.reshape(-1)[i] = (loss(x + d.reshape(x.shape)).item() - loss(x - d.reshape(x.shape)).item()) / 2e-6
    np.testing.assert_allclose(xe.grad.numpy(), numeric, rtol=1e-5, atol=1e-7)


def test_ctc_loss_unbatched_and_module():
    rng = np.random.default_rng(1)
    lp = rng.standard_normal((8, 5))
    lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
    for reduction in REDUCTIONS:
        tm, em = torch.nn.CTCLoss(blank=4, reduction=reduction), ember.nn.CTCLoss(blank=4, reduction=reduction)
        assert repr(em) == repr(tm)
        want = tm(torch.from_numpy(lp), torch.tensor([0, 1, 1]), torch.tensor(8), torch.tensor(3))
        got = em(ember.from_numpy(lp.copy()), ember.tensor([0, 1, 1]), ember.tensor(8), ember.tensor(3))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10)


CTC_ERRORS = [
    lambda F, lib: F.ctc_loss(lib.zeros(5, 2, 4), lib.tensor([[1, 2], [1, 1]]), [5, 5], [2, 2], blank=4),
    lambda F, lib: F.ctc_loss(lib.zeros(5, 2, 4), lib.tensor([[1, 2], [1, 1]]), [6, 5], [2, 2]),
    lambda F, lib: F.ctc_loss(lib.zeros(5, 2, 4), lib.tensor([[1, 2], [1, 1]]), [5, 5, 5], [2, 2]),
    lambda F, lib: F.ctc_loss(lib.zeros(5, 2, 4), lib.tensor([[1, 2], [1, 1]]), [5, 5], [2, 3]),
]


@pytest.mark.parametrize("call", CTC_ERRORS, ids=[str(i) for i in range(len(CTC_ERRORS))])
def test_ctc_loss_errors_match_torch(call):
    with pytest.raises(Exception) as want:
        call(torch.nn.functional, torch)
    with pytest.raises(Exception) as got:
        call(ember.nn.functional, ember)
    assert isinstance(got.value, want.type), f"ember {got.type.__name__}: {got.value}; torch {want.type.__name__}"
    assert "[ctc_loss]" in str(got.value)
