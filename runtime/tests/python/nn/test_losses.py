"""Losses and functional helpers against torch (forward, backward, float64 finite differences,
0-size and unbatched shapes, non-contiguous inputs): nll/cross-entropy with class weights,
probability targets, ignore_index and label smoothing; mse/l1/smooth-l1/huber (with elementwise
weights and broadcasting); bce (with weights), bce-with-logits (weight, pos_weight); kl_div;
one_hot, normalize, cosine_similarity, pad; and the loss modules."""
import warnings

import numpy as np
import pytest
import torch

import ember
from compat_helpers import one_thread_each  # noqa: F401  (autouse fixture)
from optest import OpCase, check_case, finite_difference_check, gradcheck_params, params

REDUCTIONS = ["none", "sum", "mean"]
F32_64 = ("float32", "float64")


def _np(dtype):
    return np.float32 if dtype == "bfloat16" else np.dtype(dtype)


def classification(weight=False, ignore_frac=0.25, ignore_index=-100, probabilities=False):
    """make_inputs: logits (shapes[0]), class targets or probabilities (shapes[1]), optional class weights."""
    def make(rng, shapes, dtype):
        x_shape, t_shape = shapes[0], shapes[1]
        x = rng.uniform(-3, 3, size=x_shape).astype(_np(dtype))
        n_classes = x_shape[1] if len(x_shape) >= 2 else x_shape[0]
        if probabilities:
            p = rng.uniform(0.01, 1, size=x_shape)
            t = (p / p.sum(axis=1 if len(x_shape) >= 2 else 0, keepdims=True)).astype(_np(dtype))
        else:
            t = np.asarray(rng.integers(0, max(n_classes, 1), size=t_shape))
            t[rng.random(t_shape) < ignore_frac] = ignore_index
            if t.size:
                t.reshape(-1)[0] = 0  # one counted target: a mean over none is NaN, which differences can't check
            t = t.astype(np.int64)
        out = [x, t]
        if weight:
            out.append(rng.uniform(0.2, 2.0, size=(n_classes,)).astype(_np(dtype)))
        return out
    return make


def loss_case(name, fn, shapes, make_inputs, input_dtypes, grad_inputs=(0,), dtypes=F32_64, **kw):
    return OpCase(name, fn, shapes=shapes, dtypes=dtypes, make_inputs=make_inputs, input_dtypes=input_dtypes,
                  grad_inputs=list(grad_inputs), **kw)


CLS_SHAPES = [[(4, 5), (4,)], [(0, 5), (0,)], [(3, 4, 2), (3, 2)], [(2, 3, 2, 2), (2, 2, 2)], [(5,), ()],
              [(7, 65), (7,)]]
PROB_SHAPES = [[(4, 5), (4, 5)], [(3, 4, 2), (3, 4, 2)], [(5,), (5,)], [(0, 3), (0, 3)]]


def _with_weight(shapes, n_classes_dim=1):
    return [list(s) + [(s[0][n_classes_dim] if len(s[0]) > 1 else s[0][0],)] for s in shapes]


def nll(reduction, weighted, ignore_index=-100):
    def fn(lib, x, t, *w):
        logp = lib.log_softmax(x, 1 if x.dim() >= 2 else 0)
        return lib.nn.functional.nll_loss(logp, t, weight=w[0] if w else None, ignore_index=ignore_index,
                                          reduction=reduction)
    return fn


def ce(reduction, weighted, label_smoothing=0.0, ignore_index=-100):
    def fn(lib, x, t, *w):
        return lib.nn.functional.cross_entropy(x, t, weight=w[0] if w else None, ignore_index=ignore_index,
                                               reduction=reduction, label_smoothing=label_smoothing)
    return fn


CASES = []
for r in REDUCTIONS:
    CASES += [
        loss_case(f"nll-{r}", nll(r, False), CLS_SHAPES, classification(), [None, "int64"]),
        loss_case(f"nll-weighted-{r}", nll(r, True), _with_weight(CLS_SHAPES), classification(weight=True),
                  [None, "int64", None]),
        loss_case(f"ce-weighted-{r}", ce(r, True), _with_weight(CLS_SHAPES), classification(weight=True),
                  [None, "int64", None]),
        loss_case(f"ce-weighted-ls-{r}", ce(r, True, 0.2), _with_weight(CLS_SHAPES), classification(weight=True),
                  [None, "int64", None]),
        loss_case(f"ce-weighted-ignore2-{r}", ce(r, True, 0.1, ignore_index=2), _with_weight(CLS_SHAPES[:3]),
                  classification(weight=True, ignore_index=2), [None, "int64", None]),
        loss_case(f"ce-prob-{r}", ce(r, False), PROB_SHAPES, classification(probabilities=True), [None, None],
                  grad_inputs=(0, 1)),
        loss_case(f"ce-prob-weighted-ls-{r}", ce(r, True, 0.3), _with_weight(PROB_SHAPES),
                  classification(weight=True, probabilities=True), [None, None, None], grad_inputs=(0, 1)),
    ]

REG_SHAPES = [[(3, 4), (3, 4)], [(0,), (0,)], [(), ()], [(2, 3, 5), (2, 3, 5)]]


def regression(name, fn_name, reductions=REDUCTIONS, **kw):
    out = []
    for r in reductions:
        def fn(lib, x, t, fn_name=fn_name, r=r):
            return getattr(lib.nn.functional, fn_name)(x, t, reduction=r, **kw)
        out.append(OpCase(f"{name}-{r}", fn, shapes=REG_SHAPES, dtypes=F32_64))
    return out


def weighted_regression(name, fn_name, **kw):
    def make(rng, shapes, dtype):
        return [rng.uniform(-3, 3, size=s).astype(_np(dtype)) if i < 2 else rng.uniform(0.1, 2, size=s).astype(_np(dtype))
                for i, s in enumerate(shapes)]
    out = []
    for r in REDUCTIONS:
        def fn(lib, x, t, w, fn_name=fn_name, r=r):
            return getattr(lib.nn.functional, fn_name)(x, t, reduction=r, weight=w, **kw)
        out.append(OpCase(f"{name}-weighted-{r}", fn, shapes=[[(3, 4)] * 3, [(5,)] * 3], dtypes=F32_64,
                          make_inputs=make, grad_inputs=[0, 1]))
    return out


CASES += regression("mse", "mse_loss") + regression("l1", "l1_loss")
CASES += regression("smooth-l1", "smooth_l1_loss") + regression("smooth-l1-beta0.5", "smooth_l1_loss", beta=0.5)
CASES += regression("smooth-l1-beta0", "smooth_l1_loss", reductions=["mean"], beta=0.0)
CASES += regression("huber", "huber_loss") + regression("huber-delta2", "huber_loss", delta=2.0)
CASES += weighted_regression("mse", "mse_loss") + weighted_regression("l1", "l1_loss")
CASES += weighted_regression("huber", "huber_loss", delta=0.7)
CASES.append(OpCase("mse-fp16", lambda lib, x, t: lib.nn.functional.mse_loss(x, t), shapes=[[(3, 4), (3, 4)]],
                    dtypes=("float16", "bfloat16"), gradcheck=False))


def probabilities_and_targets(weight_shape=None):
    def make(rng, shapes, dtype):
        out = [rng.uniform(0.02, 0.98, size=shapes[0]).astype(_np(dtype)),
               rng.uniform(0, 1, size=shapes[1]).astype(_np(dtype))]
        if len(shapes) > 2:
            out.append(rng.uniform(0.2, 2, size=shapes[2]).astype(_np(dtype)))
        return out
    return make


def bce(reduction):
    def fn(lib, x, t, *w):
        return lib.nn.functional.binary_cross_entropy(x, t, weight=w[0] if w else None, reduction=reduction)
    return fn


def bce_logits(reduction, pos_weight):
    def fn(lib, x, t, *w):
        weight = w[0] if w else None
        pw = w[1] if len(w) > 1 else None
        return lib.nn.functional.binary_cross_entropy_with_logits(x, t, weight=weight, pos_weight=pw,
                                                                  reduction=reduction)
    return fn


def logits_and_targets(rng, shapes, dtype):
    x = rng.uniform(-4, 4, size=shapes[0])
    if x.size:
        x.reshape(-1)[0] = 0.0  # softplus'(0) is exactly 1/2: where a clamp-based formula goes wrong
    out = [x.astype(_np(dtype)), rng.uniform(0, 1, size=shapes[1]).astype(_np(dtype))]
    out += [rng.uniform(0.2, 3, size=s).astype(_np(dtype)) for s in shapes[2:]]
    return out


BCE_SHAPES = [[(3, 4), (3, 4)], [(0,), (0,)], [(5,), (5,)]]
for r in REDUCTIONS:
    CASES += [
        OpCase(f"bce-{r}", bce(r), shapes=BCE_SHAPES, dtypes=F32_64, make_inputs=probabilities_and_targets()),
        OpCase(f"bce-weighted-{r}", bce(r), shapes=[[(3, 4), (3, 4), (4,)], [(2, 5), (2, 5), (2, 5)]],
               dtypes=F32_64, make_inputs=probabilities_and_targets(), grad_inputs=[0, 1]),
        OpCase(f"bce-logits-{r}", bce_logits(r, False), shapes=BCE_SHAPES, dtypes=F32_64,
               make_inputs=logits_and_targets),
        OpCase(f"bce-logits-pos-weight-{r}", bce_logits(r, True), shapes=[[(3, 4), (3, 4), (4,), (4,)],
                                                                          [(2, 3), (2, 3), (2, 3), (3,)]],
               dtypes=F32_64, make_inputs=logits_and_targets, grad_inputs=[0, 1]),
    ]


def kl(reduction, log_target):
    def fn(lib, x, t):
        return lib.nn.functional.kl_div(x, t, reduction=reduction, log_target=log_target)
    return fn


def log_probs_and_targets(log_target):
    def make(rng, shapes, dtype):
        x = np.log(rng.uniform(0.05, 1, size=shapes[0]))
        t = rng.uniform(0.05, 1, size=shapes[1])
        if not log_target and t.size:
            t.reshape(-1)[0] = 0.0  # a zero target contributes 0 (0 * log 0)
        return [x.astype(_np(dtype)), (np.log(t) if log_target else t).astype(_np(dtype))]
    return make


for r in REDUCTIONS + ["batchmean"]:
    for lt in (False, True):
        CASES.append(OpCase(f"kl-{r}-logtarget{lt}", kl(r, lt), shapes=[[(3, 4), (3, 4)], [(2, 3, 2), (2, 3, 2)]],
                            dtypes=F32_64, make_inputs=log_probs_and_targets(lt),
                            grad_inputs=[0, 1] if lt else [0]))


# ---- functional helpers ----------------------------------------------------------------------------
CASES += [
    OpCase("one_hot", lambda lib, t: lib.nn.functional.one_hot(t, 6), shapes=[[(4,)], [(2, 3)], [(0,)], [()]],
           dtypes=("int64",), low=0, high=5, grad=False),
    OpCase("one_hot-inferred", lambda lib, t: lib.nn.functional.one_hot(t), shapes=[[(4,)], [(2, 3)]],
           dtypes=("int64",), low=0, high=5, grad=False),
    *[OpCase(f"normalize-p{p}-dim{d}", lambda lib, x, p=p, d=d: lib.nn.functional.normalize(x, p=p, dim=d),
             shapes=[[(3, 4)], [(2, 3, 4)], [(0, 4)]], dtypes=F32_64) for p in (1.0, 2.0, 3.0) for d in (1, -1)],
    OpCase("normalize-zero-row", lambda lib, x: lib.nn.functional.normalize(x * (x > 10).to(x.dtype)),
           shapes=[[(2, 3)]], dtypes=F32_64, gradcheck=False),
    *[OpCase(f"cosine_similarity-dim{d}", lambda lib, a, b, d=d: lib.nn.functional.cosine_similarity(a, b, dim=d),
             shapes=[[(3, 4), (3, 4)], [(2, 3, 4), (2, 3, 4)], [(3, 4), (1, 4)], [(0, 4), (0, 4)]], dtypes=F32_64)
      for d in (1, -1)],
    OpCase("cosine_similarity-eps", lambda lib, a, b: lib.nn.functional.cosine_similarity(a * 1e-9, b, dim=1, eps=1e-3),
           shapes=[[(3, 4), (3, 4)]], dtypes=F32_64),
]

def pad_case(name, pads, mode, shapes, **kw):
    def fn(lib, x, pads=pads, mode=mode):
        return lib.nn.functional.pad(x, pads, mode, value=0.5 if mode == "constant" else None)
    return OpCase(name, fn, shapes=shapes, dtypes=F32_64, **kw)


# (pads, shapes torch pads, shapes torch refuses): refusals are compared (both raise) but not differentiated.
PAD_CASES = {
    "constant": [((1, 2), [[(2, 3, 4)], [(3, 5)], [(2, 0, 4)]], []), ((0, 0, 2, 1), [[(2, 3, 4)], [(3, 5)]], []),
                 ((-1, 1), [[(3, 5)]], []), ((1, -2, 0, 3), [[(2, 3, 4)]], []), ((3, -3), [[(3, 5)]], []),
                 ((2, 2, 1, 1, 1, 0), [[(2, 3, 4)]], [[(3, 5)]]), ((-3, -3), [], [[(3, 5)]])],
    **{mode: [((2, 1), [[(2, 3, 5)], [(3, 5)]], [[(5,)]]), ((1, 2, 2, 0), [[(2, 2, 4, 3)], [(2, 4, 3)]], []),
              ((1, 0, 1, 1, 0, 2), [[(1, 2, 3, 3, 4)], [(2, 3, 3, 4)]], []), ((-1, 2), [[(2, 3, 5)]], []),
              ((1, 1), [[(2, 3, 2, 5)]], [[(5,)]]), ((4, 4), [[(2, 3, 5)]], [[(2, 3, 4)]] if mode == "reflect" else [])]
       for mode in ("reflect", "replicate", "circular")},
}
for mode, entries in PAD_CASES.items():
    for pads, ok, refused in entries:
        if ok:
            CASES.append(pad_case(f"pad-{mode}-{pads}", pads, mode, ok))
        if refused:
            CASES.append(pad_case(f"pad-{mode}-{pads}-refused", pads, mode, refused, gradcheck=False))


@pytest.mark.parametrize("case,shapes,dtype,device,noncontig", params(CASES))
def test_matches_torch(case, shapes, dtype, device, noncontig):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's 'mean' and legacy-argument warnings (both libraries)
        check_case(case, shapes, dtype, device, noncontig)


@pytest.mark.parametrize("case,shapes", gradcheck_params(CASES))
def test_finite_differences(case, shapes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        finite_difference_check(case, shapes)


# ---- edges and errors --------------------------------------------------------------------------------
def _pair(a, requires_grad=False):
    a = np.asarray(a)
    t = torch.from_numpy(a.copy()).requires_grad_(requires_grad)
    e = ember.from_numpy(a.copy())
    return t, (e.requires_grad_(True) if requires_grad else e)


def test_bce_gradient_stays_finite_at_probabilities_zero_and_one():
    """torch's gradient w (x - t) / max(x (1 - x), 1e-12) at x in {0, 1}, where differentiating the
    clamped logs would give NaN."""
    xt, xe = _pair([0.0, 1.0, 0.5, 1e-30], requires_grad=True)
    tt, te = _pair([0.3, 0.6, 1.0, 0.0])
    torch.nn.functional.binary_cross_entropy(xt, tt, reduction="sum").backward()
    le = ember.nn.functional.binary_cross_entropy(xe, te, reduction="sum")
    le.backward()
    np.testing.assert_allclose(le.item(), torch.nn.functional.binary_cross_entropy(xt, tt, reduction="sum").item(),
                               rtol=1e-12)
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-12)


def test_bce_rejects_probabilities_outside_unit_interval():
    with pytest.raises(RuntimeError, match=r"\[binary_cross_entropy\] all elements of input should be between 0 and 1"):
        ember.nn.functional.binary_cross_entropy(ember.tensor([0.5, 1.5]), ember.tensor([0.0, 1.0]))


@pytest.mark.parametrize("fn,args,match", [
    ("nll_loss", ((2, 4), [0, 1]), None),
    ("cross_entropy", ((2, 4), [0, 1]), None),
])
def test_legacy_size_average_reduce_arguments(fn, args, match):
    shape, target = args
    x = np.random.default_rng(0).standard_normal(shape)
    for size_average, reduce in [(False, None), (None, False), (True, True)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = getattr(torch.nn.functional, fn)(torch.from_numpy(x), torch.tensor(target),
                                                    size_average=size_average, reduce=reduce)
            got = getattr(ember.nn.functional, fn)(ember.from_numpy(x), ember.tensor(target),
                                                   size_average=size_average, reduce=reduce)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


def test_loss_argument_errors_are_clear():
    F = ember.nn.functional
    x, t = ember.zeros(2, 4), ember.tensor([0, 1])
    with pytest.raises(ValueError, match=r"\[nll_loss\] weight tensor should be defined either for all 4 classes"):
        F.nll_loss(x, t, weight=ember.ones(5))
    with pytest.raises(ValueError, match=r"\[mse_loss\] reduction must be"):
        F.mse_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match=r"\[mse_loss\] Weights and input must have the same size"):
        F.mse_loss(x, x, weight=ember.ones(4))
    with pytest.raises(ValueError, match=r"\[binary_cross_entropy_with_logits\] Target size"):
        F.binary_cross_entropy_with_logits(x, ember.zeros(4))
    with pytest.raises(ValueError, match=r"\[kl_div\] reduction must be"):
        F.kl_div(x, x, reduction="avg")
    with pytest.raises(RuntimeError, match=r"\[one_hot\] Class values must be smaller than num_classes \(3\), got 5"):
        F.one_hot(ember.tensor([0, 5]), 3)
    with pytest.raises(RuntimeError, match=r"\[one_hot\] Class values must be non-negative"):
        F.one_hot(ember.tensor([-1, 2]), 3)
    with pytest.raises(NotImplementedError, match=r"\[pad\] Only 2D, 3D, 4D, 5D padding"):
        F.pad(ember.zeros(2, 5), (1, 1, 1, 1), mode="reflect")
    with pytest.raises(RuntimeError, match=r"\[pad\] reflect: padding size should be less than"):
        F.pad(ember.zeros(2, 3), (3, 0), mode="reflect")
    with pytest.raises(RuntimeError, match=r"\[pad\] Padding length must be divisible by 2"):
        F.pad(ember.zeros(2, 3), (1,))


def test_mse_broadcasting_warns_like_torch():
    with pytest.warns(UserWarning, match="different to the input size"):
        out = ember.nn.functional.mse_loss(ember.zeros(3, 4), ember.ones(4))
    assert out.item() == 1.0


# ---- modules --------------------------------------------------------------------------------------
def _module_inputs(rng):
    x = rng.standard_normal((6, 5))
    return {
        "cls": (x, rng.integers(0, 5, 6)),
        "reg": (x, rng.standard_normal((6, 5))),
        "prob": (1 / (1 + np.exp(-x)), rng.uniform(0, 1, (6, 5))),
        "logit": (x, rng.uniform(0, 1, (6, 5))),
        "kl": (np.log(rng.uniform(0.1, 1, (6, 5))), rng.uniform(0.1, 1, (6, 5))),
    }


MODULES = [
    ("NLLLoss", dict(weight=[0.5, 1, 2, 1, 0.3], ignore_index=1), "cls"),
    ("CrossEntropyLoss", dict(weight=[0.5, 1, 2, 1, 0.3], label_smoothing=0.1, reduction="sum"), "cls"),
    ("CrossEntropyLoss", dict(), "cls"),
    ("MSELoss", dict(reduction="none"), "reg"),
    ("L1Loss", dict(), "reg"),
    ("SmoothL1Loss", dict(beta=0.3), "reg"),
    ("HuberLoss", dict(delta=0.4, reduction="sum"), "reg"),
    ("BCELoss", dict(weight=[1, 2, 3, 4, 5]), "prob"),
    ("BCEWithLogitsLoss", dict(pos_weight=[1, 2, 3, 4, 5], weight=[0.1, 1, 1, 1, 2]), "logit"),
    ("KLDivLoss", dict(reduction="batchmean"), "kl"),
    ("KLDivLoss", dict(reduction="sum", log_target=True), "kl"),
]


@pytest.mark.parametrize("name,kwargs,kind", MODULES)
def test_loss_modules_match_torch(name, kwargs, kind):
    x, t = _module_inputs(np.random.default_rng(4))[kind]
    if kind == "kl" and kwargs.get("log_target"):
        t = np.log(t)
    tk = {k: torch.tensor(v, dtype=torch.float64) if isinstance(v, list) else v for k, v in kwargs.items()}
    ek = {k: ember.tensor(v, dtype=ember.float64) if isinstance(v, list) else v for k, v in kwargs.items()}
    tm, em = getattr(torch.nn, name)(**tk), getattr(ember.nn, name)(**ek)
    assert sorted(tm.state_dict()) == sorted(em.state_dict())
    xt, xe = _pair(x, requires_grad=True)
    tt, te = _pair(t)
    lt, le = tm(xt, tt), em(xe, te)
    np.testing.assert_allclose(le.detach().numpy(), lt.detach().numpy(), rtol=1e-10, atol=1e-12)
    lt.sum().backward()
    le.sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
