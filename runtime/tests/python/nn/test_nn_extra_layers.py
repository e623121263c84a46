"""Padding modules, InstanceNorm/LocalResponseNorm, Fold/Unfold, PixelShuffle/PixelUnshuffle/
ChannelShuffle and PairwiseDistance/CosineSimilarity/pdist against torch: F forms through the op table
(forward, backward, finite differences, 0-size/unbatched shapes, non-contiguous inputs), modules
(repr, state_dict, default init, running statistics) and torch's errors."""
import warnings

import numpy as np
import pytest
import torch

import ember
from compat_helpers import one_thread_each  # noqa: F401  (autouse fixture)
from nn_helpers import E
from optest import OpCase, op_tests

F32_64 = ("float32", "float64")
ALL_FLOAT = ("float32", "float64", "float16", "bfloat16")


def positive_weights(rng, shapes, dtype):
    """The input in [-3, 3]; further inputs (affine weights) in [0.5, 1.5]."""
    np_dtype = np.float32 if dtype == "bfloat16" else np.dtype(dtype)
    return [rng.uniform(-3, 3, size=s).astype(np_dtype) if i == 0 else rng.uniform(0.5, 1.5, size=s).astype(np_dtype)
            for i, s in enumerate(shapes)]


CASES = [
    # instance_norm: input statistics, with and without affine parameters
    *[OpCase(f"instance_norm-{i}", lambda lib, x: lib.nn.functional.instance_norm(x), shapes=[s], dtypes=F32_64)
      for i, s in enumerate([[(2, 3, 5)], [(2, 3, 4, 4)], [(1, 2, 2, 3, 3)], [(0, 3, 4)]])],
    OpCase("instance_norm-affine", lambda lib, x, w, b: lib.nn.functional.instance_norm(x, weight=w, bias=b, eps=1e-3),
           shapes=[[(2, 3, 5), (3,), (3,)], [(3, 2, 3, 3), (2,), (2,)]], dtypes=F32_64, make_inputs=positive_weights),
    OpCase("instance_norm-refused", lambda lib, x: lib.nn.functional.instance_norm(x), shapes=[[(2, 3, 1)], [(2, 3)]],
           grad=False),
    # local response norm over channel windows (odd and even sizes, 3-d and 5-d inputs)
    *[OpCase(f"local_response_norm-size{n}",
             lambda lib, x, n=n: lib.nn.functional.local_response_norm(x, n, 0.1, 0.6, 2.0),
             shapes=[[(2, 5, 4)], [(2, 4, 3, 3)], [(1, 3, 2, 2, 2)], [(0, 3, 4)]], dtypes=F32_64)
      for n in (1, 2, 3, 5)],
    OpCase("local_response_norm-refused", lambda lib, x: lib.nn.functional.local_response_norm(x, 2),
           shapes=[[(2, 3)]], grad=False),
    # shuffles
    *[OpCase(f"pixel_shuffle-r{r}", lambda lib, x, r=r: lib.nn.functional.pixel_shuffle(x, r), shapes=s,
             dtypes=ALL_FLOAT) for r, s in [(2, [[(2, 8, 3, 4)], [(4, 2, 3)], [(2, 1, 4, 2, 2)]]),
                                            (3, [[(1, 18, 2, 3)]]), (1, [[(2, 3, 4, 5)]])]],
    *[OpCase(f"pixel_unshuffle-r{r}", lambda lib, x, r=r: lib.nn.functional.pixel_unshuffle(x, r), shapes=s,
             dtypes=ALL_FLOAT) for r, s in [(2, [[(2, 2, 4, 6)], [(1, 4, 2)], [(2, 1, 3, 4, 4)]]),
                                            (3, [[(1, 2, 6, 3)]])]],
    OpCase("pixel_shuffle-refused", lambda lib, x: lib.nn.functional.pixel_shuffle(x, 2),
           shapes=[[(2, 6, 3, 3)], [(4, 4)]], grad=False),
    OpCase("pixel_unshuffle-refused", lambda lib, x: lib.nn.functional.pixel_unshuffle(x, 2),
           shapes=[[(2, 1, 3, 4)], [(1, 4, 5)]], grad=False),
    OpCase("channel_shuffle-g3", lambda lib, x: lib.nn.functional.channel_shuffle(x, 3),
           shapes=[[(2, 6, 4)], [(2, 6, 2, 3)], [(1, 3, 2, 2, 2)], [(0, 6, 2)]], dtypes=ALL_FLOAT),
    OpCase("channel_shuffle-refused", lambda lib, x: lib.nn.functional.channel_shuffle(x, 4), shapes=[[(2, 6, 4)]],
           grad=False),
    # distances
    *[OpCase(f"pairwise_distance-p{p}", lambda lib, a, b, p=p: lib.nn.functional.pairwise_distance(a, b, p),
             shapes=[[(4, 5), (4, 5)], [(2, 3, 4), (2, 3, 4)], [(5,), (5,)], [(3, 4), (1, 4)], [(0, 3), (0, 3)]],
             dtypes=F32_64) for p in (1.0, 2.0, 3.0)],
    OpCase("pairwise_distance-keepdim-eps",
           lambda lib, a, b: lib.nn.functional.pairwise_distance(a, b, 2.0, 1e-2, True), shapes=[[(4, 5), (4, 5)]],
           dtypes=F32_64),
    *[OpCase(f"pdist-p{p}", lambda lib, x, p=p: lib.nn.functional.pdist(x, p),
             shapes=[[(4, 3)], [(2, 5)], [(1, 3)], [(5, 0)]], dtypes=F32_64) for p in (1.0, 2.0, 0.5)],
    OpCase("pdist-refused", lambda lib, x: lib.nn.functional.pdist(x), shapes=[[(2, 3, 4)]], grad=False),
]

test_matches_torch, test_gradcheck = op_tests(CASES)


def test_pixel_shuffles_of_empty_batches_keep_their_shapes():
    """torch 2.13 returns an empty pixel_unshuffle with the input's shape and fails pixel_shuffle's
    backward on an empty batch; ember gives the shapes of the non-empty case."""
    x = ember.zeros(0, 4, 2, 2, requires_grad=True)
    y = ember.nn.functional.pixel_shuffle(x, 2)
    assert tuple(y.shape) == (0, 1, 4, 4)
    y.sum().backward()
    assert tuple(x.grad.shape) == (0, 4, 2, 2)
    assert tuple(ember.nn.functional.pixel_unshuffle(ember.zeros(0, 1, 2, 2), 2).shape) == (0, 4, 1, 1)


def test_pdist_of_equal_rows_has_zero_gradient():
    x = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0]])
    xt, xe = torch.tensor(x, requires_grad=True), ember.from_numpy(x.copy()).requires_grad_(True)
    torch.nn.functional.pdist(xt).sum().backward()
    ember.nn.functional.pdist(xe).sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    assert np.all(np.isfinite(xe.grad.numpy()))


# ---- modules ---------------------------------------------------------------------------------------
PAD_MODULES = [(f"{kind}Pad{d}d", args, shape) for d, shape in [(1, (2, 3, 6)), (2, (2, 3, 5, 6)), (3, (1, 2, 4, 5, 6))]
               for kind, args in [("Zero", (2,)), ("Constant", (1, 3.5)), ("Reflection", (2,)), ("Replication", (3,)),
                                  ("Circular", (1,))]]
PAD_MODULES += [("ZeroPad2d", ((1, 0, 2, 3),), (3, 4, 5)), ("ConstantPad1d", ((3, -1), -2.0), (2, 6)),
                ("ReflectionPad2d", ((1, 2, 0, 3),), (1, 2, 5, 6)), ("ReplicationPad1d", ((0, 4),), (3, 5)),
                ("CircularPad2d", ((2, 0, 1, 1),), (2, 4, 5))]

MODULES = [(name, args, {}, [shape]) for name, args, shape in PAD_MODULES] + [
    ("InstanceNorm1d", (3,), {}, [(2, 3, 5)]), ("InstanceNorm1d", (3,), {}, [(3, 5)]),
    ("InstanceNorm1d", (3,), {"affine": True}, [(2, 3, 5)]),
    ("InstanceNorm2d", (4,), {"affine": True, "track_running_stats": True}, [(2, 4, 3, 3)]),
    ("InstanceNorm2d", (4,), {"track_running_stats": True, "momentum": None}, [(4, 3, 3)]),
    ("InstanceNorm3d", (2,), {"affine": True, "eps": 1e-3}, [(2, 2, 3, 2, 3)]),
    ("InstanceNorm2d", (2,), {"affine": True, "bias": False}, [(2, 2, 3, 3)]),
    ("LocalResponseNorm", (3,), {}, [(2, 5, 4, 4)]), ("LocalResponseNorm", (2, 1e-2, 0.5, 2.0), {}, [(2, 4, 6)]),
    ("Fold", ((4, 5), 2), {}, [(2, 12, 12)]), ("Fold", (4, (2, 3)), {"stride": 2, "padding": 1}, [(1, 6, 6)]),
    ("Unfold", (2,), {}, [(2, 3, 4, 5)]), ("Unfold", ((2, 3),), {"dilation": 2, "padding": 1, "stride": 2},
                                           [(1, 2, 5, 6)]),
    ("PixelShuffle", (2,), {}, [(2, 8, 3, 3)]), ("PixelUnshuffle", (2,), {}, [(2, 2, 4, 6)]),
    ("ChannelShuffle", (2,), {}, [(2, 4, 3, 3)]),
    ("PairwiseDistance", (), {}, [(4, 5), (4, 5)]), ("PairwiseDistance", (1.0, 1e-3, True), {}, [(3, 4), (3, 4)]),
    ("CosineSimilarity", (), {}, [(4, 5), (4, 5)]), ("CosineSimilarity", (0, 1e-4), {}, [(4, 5), (4, 5)]),
]


@pytest.mark.parametrize("name,args,kwargs,shapes", MODULES,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MODULES)])
def test_module_matches_torch(name, args, kwargs, shapes):
    torch.manual_seed(0)
    tm, em = getattr(torch.nn, name)(*args, **kwargs), getattr(ember.nn, name)(*args, **kwargs)
    assert repr(em) == repr(tm)
    assert list(em.state_dict()) == list(tm.state_dict())
    for k, v in tm.state_dict().items():  # default init: ones/zeros/running stats
        np.testing.assert_array_equal(em.state_dict()[k].numpy(), v.numpy(), err_msg=k)
    tm, em = tm.double(), em.double()
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for p in tm.parameters():
            p.add_(torch.from_numpy(rng.uniform(-0.5, 0.5, size=tuple(p.shape))))
    em.load_state_dict({k: E(v) for k, v in tm.state_dict().items()})
    for mode in ("train", "eval", "train"):
        getattr(tm, mode)()
        getattr(em, mode)()
        xs = [rng.standard_normal(s) for s in shapes]
        xt = [torch.tensor(x, requires_grad=True) for x in xs]
        xe = [ember.from_numpy(x.copy()).requires_grad_(True) for x in xs]
        yt, ye = tm(*xt), em(*xe)
        np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        g = rng.standard_normal(tuple(yt.shape))
        yt.backward(torch.from_numpy(g))
        ye.backward(ember.from_numpy(g))
        for a, b in zip(xe, xt, strict=True):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-12)
        pe = dict(em.named_parameters())
        for n, p in tm.named_parameters():
            np.testing.assert_allclose(pe[n].grad.numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=n)
            p.grad, pe[n].grad = None, None
        for (k, a), b in zip(em.state_dict().items(), tm.state_dict().values(), strict=True):  # running stats
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)


ERRORS = [
    ("CircularPad2d", lambda lib: lib.nn.CircularPad2d(1)(lib.zeros(2, 3))),
    ("pad", lambda lib: lib.nn.ReflectionPad1d(3)(lib.zeros(2, 3))),
    ("InstanceNorm1d", lambda lib: lib.nn.InstanceNorm1d(3)(lib.zeros(2, 3, 4, 5))),
    ("InstanceNorm2d", lambda lib: lib.nn.InstanceNorm2d(3, affine=True)(lib.zeros(2, 4, 4, 5))),
    ("local_response_norm", lambda lib: lib.nn.LocalResponseNorm(2)(lib.zeros(2, 3))),
    ("pixel_shuffle", lambda lib: lib.nn.PixelShuffle(2)(lib.zeros(1, 3, 2, 2))),
    ("pixel_shuffle", lambda lib: lib.nn.functional.pixel_shuffle(lib.zeros(1, 4, 2, 2), 0)),
    ("pixel_unshuffle", lambda lib: lib.nn.PixelUnshuffle(2)(lib.zeros(1, 1, 3, 2))),
    ("channel_shuffle", lambda lib: lib.nn.ChannelShuffle(2)(lib.zeros(1, 3, 2, 2))),
    ("pdist", lambda lib: lib.nn.functional.pdist(lib.zeros(2))),
    ("fold", lambda lib: lib.nn.Fold(4, 2)(lib.zeros(1, 5, 9))),
]


@pytest.mark.parametrize("op,call", ERRORS, ids=[f"{i}-{e[0]}" for i, e in enumerate(ERRORS)])
def test_errors_match_torch(op, call):
    with pytest.raises(Exception) as want:
        call(torch)
    with pytest.raises(Exception) as got:
        call(ember)
    assert isinstance(got.value, want.type), f"ember raised {got.type.__name__}, torch {want.type.__name__}"
    assert f"[{op}" in str(got.value) or f"[{op.lower()}" in str(got.value).lower(), str(got.value)


def test_instance_norm_warns_on_channel_mismatch_without_affine():
    with pytest.warns(UserWarning, match="does not match num_features"):
        ember.nn.InstanceNorm1d(4)(ember.zeros(2, 3, 5) + ember.arange(5.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ember.nn.InstanceNorm1d(3)(ember.zeros(2, 3, 5) + ember.arange(5.0))


def test_sync_batchnorm_converts_and_runs_as_batchnorm_in_one_process():
    results = {}
    for lib in (torch, ember):
        lib.manual_seed(0)
        net = lib.nn.Sequential(lib.nn.Conv2d(2, 3, 3), lib.nn.BatchNorm2d(3),
                                lib.nn.Sequential(lib.nn.BatchNorm2d(3, affine=False, momentum=None)))
        net = lib.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        results[lib.__name__] = net
    tm, em = results["torch"], results["ember"]
    assert repr(em) == repr(tm) and list(em.state_dict()) == list(tm.state_dict())
    em.load_state_dict({k: E(v) for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 2, 5, 5)).astype(np.float32)
    for _ in range(2):
        yt, ye = tm(torch.from_numpy(x)), em(ember.from_numpy(x.copy()))
        np.testing.assert_allclose(ye.detach().numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    for (k, a), b in zip(em.state_dict().items(), tm.state_dict().values(), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    with pytest.raises(ValueError, match=r"\[SyncBatchNorm\] expected at least 2D input"):
        ember.nn.SyncBatchNorm(3)(ember.zeros(3))
