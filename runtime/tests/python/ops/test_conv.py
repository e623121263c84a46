"""Convolution family against torch (spec: runtime/spec/conv.yaml): conv1d/conv2d/conv_transpose2d
(the im2col and col2im ops, conv2d and conv_transpose2d frontends), unfold/fold, max_pool2d_with_indices
and the composites of nn/_conv.py (avg/adaptive pooling, batch_norm, group_norm, dropout2d). One table
for every device: values, gradients, float64 finite differences; then modules, errors and statistics."""
import inspect
import numpy as np
import pytest
import torch

import ember
from optest import (random_pair, FLOAT_DTYPES, OpCase, assert_close, check_case, devices, finite_difference_check,
                    gradcheck_params, params, to_ember, to_torch)

# Sums of up to ~100 products: half types round the output once, but torch and ember may accumulate
# in a different order.
TOL = {"float32": (1e-4, 1e-4), "float16": (2e-2, 2e-2), "bfloat16": (5e-2, 5e-2)}


def F(lib):
    return lib.nn.functional


def conv2d(**kw):
    return lambda lib, x, w, *b: F(lib).conv2d(x, w, b[0] if b else None, **kw)


def conv1d(**kw):
    return lambda lib, x, w, *b: F(lib).conv1d(x, w, b[0] if b else None, **kw)


def conv_t2d(**kw):
    return lambda lib, x, w, *b: F(lib).conv_transpose2d(x, w, b[0] if b else None, **kw)


def conv_t1d(**kw):
    return lambda lib, x, w, *b: F(lib).conv_transpose1d(x, w, b[0] if b else None, **kw)


def fn(name, **kw):
    return lambda lib, x: getattr(F(lib), name)(x, **kw)


def conv(name, f, shapes, **kw):
    return OpCase(name, f, shapes, FLOAT_DTYPES, low=-1.0, high=1.0, tol=TOL, **kw)


def positive_var(rng, shapes, dtype):
    """batch_norm in eval mode: (x, running_mean, running_var > 0, weight, bias)."""
    np_dtype = np.float32 if dtype == "bfloat16" else dtype
    arrays = [rng.uniform(-2, 2, size=s) for s in shapes]
    arrays[2] = rng.uniform(0.5, 2.0, size=shapes[2])
    return [a.astype(np_dtype) for a in arrays]


CASES = [
    # conv2d: the first shape of each case is small enough for the float64 finite-difference check.
    conv("conv2d", conv2d(padding=1), [[(1, 2, 3, 4), (2, 2, 3, 3), (2,)], [(2, 3, 8, 8), (4, 3, 3, 3), (4,)],
                                       [(0, 3, 5, 5), (4, 3, 3, 3), (4,)], [(3, 6, 5), (2, 3, 3, 3), (2,)]]),
    conv("conv2d_no_bias", conv2d(), [[(1, 1, 4, 4), (2, 1, 2, 2)], [(2, 3, 7, 6), (5, 3, 3, 2)]]),
    conv("conv2d_stride_pad", conv2d(stride=2, padding=(1, 0)),
         [[(1, 1, 5, 4), (1, 1, 3, 2), (1,)], [(2, 3, 9, 8), (4, 3, 3, 3), (4,)]]),
    conv("conv2d_dilation", conv2d(dilation=(2, 1), padding=2),
         [[(1, 1, 4, 4), (2, 1, 2, 2), (2,)], [(2, 2, 9, 7), (3, 2, 3, 3), (3,)]]),
    conv("conv2d_groups", conv2d(groups=2, padding=1),
         [[(1, 2, 3, 3), (2, 1, 2, 2), (2,)], [(2, 4, 6, 5), (6, 2, 3, 3), (6,)]]),
    conv("conv2d_depthwise", conv2d(groups=4, stride=(1, 2)), [[(1, 4, 2, 3), (4, 1, 2, 2), (4,)],
                                                               [(2, 4, 7, 7), (8, 1, 3, 3), (8,)]]),
    conv("conv2d_1x1", conv2d(), [[(1, 3, 2, 3), (2, 3, 1, 1), (2,)], [(4, 8, 5, 5), (6, 8, 1, 1), (6,)]]),
    conv("conv2d_1x1_strided", conv2d(stride=2),
         [[(1, 2, 3, 3), (2, 2, 1, 1), (2,)], [(2, 3, 5, 5), (4, 3, 1, 1), (4,)]]),
    conv("conv2d_same_even", conv2d(padding="same"), [[(1, 1, 4, 4), (1, 1, 2, 2), (1,)],
                                                      [(2, 3, 6, 5), (2, 3, 4, 3), (2,)]]),
    conv("conv2d_same_dilated", conv2d(padding="same", dilation=2), [[(1, 1, 4, 5), (1, 1, 3, 3), (1,)],
                                                                  [(2, 2, 7, 6), (3, 2, 3, 3), (3,)]]),
    conv("conv2d_valid", conv2d(padding="valid"),
         [[(1, 1, 4, 4), (1, 1, 3, 3), (1,)], [(2, 2, 5, 5), (3, 2, 3, 3), (3,)]]),
    conv("conv1d", conv1d(stride=2, padding=1), [[(1, 2, 6), (2, 2, 3), (2,)], [(3, 4, 17), (5, 4, 5), (5,)],
                                                 [(4, 9), (3, 4, 3), (3,)], [(0, 4, 9), (3, 4, 3), (3,)]]),
    conv("conv1d_groups_dilation", conv1d(groups=3, dilation=2, padding="same"),
         [[(1, 3, 6), (3, 1, 3), (3,)], [(2, 6, 11), (6, 2, 3), (6,)]]),
    conv("conv_transpose2d", conv_t2d(stride=2, padding=1, output_padding=1),
         [[(1, 2, 2, 2), (2, 1, 3, 3), (1,)], [(2, 4, 5, 4), (4, 3, 3, 3), (3,)], [(0, 4, 5, 4), (4, 3, 3, 3), (3,)]]),
    conv("conv_transpose2d_groups", conv_t2d(groups=2, dilation=2),
         [[(1, 2, 3, 3), (2, 1, 2, 2), (2,)], [(2, 4, 4, 5), (4, 3, 2, 3), (6,)]]),
    conv("conv_transpose2d_no_bias", conv_t2d(stride=(1, 2)),
         [[(1, 1, 3, 3), (1, 2, 2, 2)], [(3, 4, 3), (3, 2, 3, 2)]]),
    conv("conv_transpose1d", conv_t1d(stride=3, padding=1),
         [[(1, 2, 4), (2, 2, 3), (2,)], [(2, 3, 9), (3, 4, 5), (4,)]]),
    conv("unfold", lambda lib, x: F(lib).unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)),
         [[(1, 1, 4, 5)], [(2, 3, 6, 7)], [(0, 2, 4, 4)], [(3, 5, 5)]]),
    conv("fold", lambda lib, x: F(lib).fold(x, (5, 6), (2, 3), padding=1, stride=(2, 1)),
         [[(1, 6, 18)], [(3, 12, 18)]]),
    conv("max_pool2d", fn("max_pool2d", kernel_size=2), [[(1, 1, 4, 4)], [(2, 3, 8, 7)], [(0, 2, 4, 4)], [(3, 5, 5)]]),
    conv("max_pool2d_overlap", fn("max_pool2d", kernel_size=3, stride=2, padding=1, return_indices=True),
         [[(1, 1, 4, 5)], [(2, 3, 9, 10)]]),
    conv("max_pool2d_dilation_ceil", fn("max_pool2d", kernel_size=(2, 3), stride=2, dilation=(2, 1), ceil_mode=True,
                                        return_indices=True), [[(1, 1, 5, 4)], [(2, 2, 8, 9)]]),
    conv("max_pool1d", fn("max_pool1d", kernel_size=3, stride=2, padding=1, return_indices=True),
         [[(1, 2, 7)], [(3, 4, 20)], [(4, 9)]]),
    conv("avg_pool2d", fn("avg_pool2d", kernel_size=2), [[(1, 2, 4, 2)], [(2, 3, 8, 6)], [(0, 2, 4, 4)], [(3, 5, 5)]]),
    conv("avg_pool2d_pad", fn("avg_pool2d", kernel_size=3, stride=2, padding=1), [[(1, 1, 4, 5)], [(2, 3, 9, 8)]]),
    conv("avg_pool2d_exclude_pad_ceil", fn("avg_pool2d", kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True,
                                           count_include_pad=False), [[(1, 1, 4, 5)], [(2, 2, 8, 9)]]),
    conv("avg_pool2d_tiling_divisor", fn("avg_pool2d", kernel_size=2, divisor_override=3), [[(1, 1, 4, 2)], [(2, 3, 6, 8)]]),
    conv("avg_pool2d_ceil_divisor", fn("avg_pool2d", kernel_size=2, stride=(2, 3), ceil_mode=True, divisor_override=3),
         [[(1, 1, 5, 4)], [(2, 3, 7, 8)]]),
    conv("avg_pool1d", fn("avg_pool1d", kernel_size=3, stride=2, padding=1), [[(1, 2, 7)], [(3, 4, 20)], [(4, 9)]]),
    conv("adaptive_avg_pool2d_global", fn("adaptive_avg_pool2d", output_size=1), [[(1, 2, 3, 4)], [(4, 8, 7, 7)]]),
    conv("adaptive_avg_pool2d_even", fn("adaptive_avg_pool2d", output_size=(2, 3)), [[(1, 1, 4, 6)], [(2, 3, 8, 9)]]),
    conv("adaptive_avg_pool2d_uneven", fn("adaptive_avg_pool2d", output_size=(3, None)),
         [[(1, 1, 5, 4)], [(2, 3, 7, 9)], [(3, 10, 6)]]),
    conv("adaptive_avg_pool2d_grow", fn("adaptive_avg_pool2d", output_size=(5, 4)), [[(1, 1, 3, 3)], [(2, 2, 3, 3)]]),
    conv("adaptive_avg_pool1d", fn("adaptive_avg_pool1d", output_size=4), [[(1, 2, 7)], [(3, 5, 11)]]),
    conv("batch_norm_train", lambda lib, x, w, b: F(lib).batch_norm(x, None, None, w, b, training=True),
         [[(3, 2, 2, 2), (2,), (2,)], [(4, 3, 5, 5), (3,), (3,)], [(5, 4), (4,), (4,)], [(2, 3, 7), (3,), (3,)]]),
    conv("batch_norm_eval", lambda lib, x, m, v, w, b: F(lib).batch_norm(x, m, v, w, b, training=False, eps=1e-3),
         [[(2, 2, 2, 3), (2,), (2,), (2,), (2,)], [(4, 3, 5, 5), (3,), (3,), (3,), (3,)]],
         make_inputs=positive_var, grad_inputs=[0, 3, 4]),
    conv("group_norm", lambda lib, x, w, b: F(lib).group_norm(x, 2, w, b), [[(2, 4, 3), (4,), (4,)],
                                                                            [(3, 6, 4, 5), (6,), (6,)]]),
]
for case in CASES:  # batch and group norm: float16 sums of 100 squares, bfloat16 rounding of x - mean
    if case.name.startswith(("batch_norm", "group_norm")):
        case.tol = {"float32": (1e-4, 1e-4), "float16": (3e-2, 3e-2), "bfloat16": (8e-2, 8e-2)}


@pytest.mark.parametrize("case,shapes,dtype,device,noncontig", params(CASES))
def test_matches_torch(case, shapes, dtype, device, noncontig):
    check_case(case, shapes, dtype, device, noncontig)


@pytest.mark.parametrize("case,shapes", gradcheck_params(CASES))
def test_gradcheck(case, shapes):
    finite_difference_check(case, shapes)


# ---- beyond the differential table -----------------------------------------------------------------

@pytest.mark.parametrize("device", devices())
def test_conv2d_double_backward_matches_torch(device):
    """Composed from im2col/col2im and bmm, conv2d has second derivatives (a WGAN-GP style penalty)."""
    rng = np.random.default_rng(5)
    xt, xe = random_pair(rng, (2, 3, 6, 5), device=device, bound=1.0)
    wt, we = random_pair(rng, (4, 3, 3, 3), device=device, bound=1.0)
    results = []
    for lib, x, w in [(torch, xt, wt), (ember, xe, we)]:
        out = lib.nn.functional.conv2d(x, w, stride=2, padding=1)
        gx, = lib.autograd.grad((out * out).sum(), [x], create_graph=True)
        results.append(lib.autograd.grad((gx * gx).sum(), [x, w]))
    for a, e in zip(results[1], results[0]):
        assert_close(a, e, "float64", "conv2d double backward")


def test_max_pool_nan_and_ties_pick_torchs_index():
    x = np.array([[[[1.0, 1.0, 0.0], [np.nan, 2.0, np.nan], [-np.inf, -np.inf, 3.0]]]])
    for kw in [dict(kernel_size=2, stride=1), dict(kernel_size=3, padding=1, stride=1)]:
        tv, ti = torch.nn.functional.max_pool2d(torch.from_numpy(x), return_indices=True, **kw)
        ev, ei = ember.nn.functional.max_pool2d(ember.from_numpy(x), return_indices=True, **kw)
        assert_close(ev, tv, "float64", f"values {kw}")
        assert_close(ei, ti, "int64", f"indices {kw}")


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dims", [2, 4])
def test_batch_norm_module_running_stats(device, dims):
    """Train steps update running stats (momentum 0.1 and cumulative with momentum=None), eval uses them."""
    rng = np.random.default_rng(7)
    shape = (6, 3) if dims == 2 else (4, 3, 5, 5)
    for momentum in [0.1, None]:
        cls = "BatchNorm1d" if dims == 2 else "BatchNorm2d"
        tm = getattr(torch.nn, cls)(3, momentum=momentum).to(device)
        em = getattr(ember.nn, cls)(3, momentum=momentum).to(device)
        for step in range(3):
            a = (rng.uniform(-2, 2, size=shape) + step).astype(np.float32)
            xt, xe = to_torch(a, "float32", device), to_ember(a, "float32", device)
            assert_close(em(xe), tm(xt), "float32", f"train output step {step}")
        for name in ["running_mean", "running_var", "num_batches_tracked"]:
            e, t = getattr(em, name), getattr(tm, name)
            assert_close(e, t, str(t.dtype).replace("torch.", ""), name)
        tm.eval()
        em.eval()
        a = rng.uniform(-2, 2, size=shape).astype(np.float32)
        assert_close(em(to_ember(a, "float32", device)), tm(to_torch(a, "float32", device)), "float32", "eval")


@pytest.mark.parametrize("device", devices())
def test_modules_match_torch_with_copied_weights(device):
    """Conv/pool/norm modules with torch's defaults and state_dict keys; the weights copied over."""
    rng = np.random.default_rng(3)
    specs = [
        ("Conv2d", (3, 8, 3), dict(stride=2, padding=1, bias=False)),
        ("Conv2d", (3, 6, (3, 2)), dict(padding="same", padding_mode="reflect", groups=3)),
        ("Conv2d", (3, 4, 3), dict(padding=2, padding_mode="circular", dilation=2)),
        ("Conv1d", (3, 4, 3), dict(padding=1, padding_mode="replicate")),
        ("ConvTranspose2d", (3, 5, 3), dict(stride=2, padding=1, output_padding=1)),
        ("ConvTranspose1d", (3, 2, 4), dict(stride=2)),
        ("MaxPool2d", (3,), dict(stride=2, padding=1)),
        ("MaxPool1d", (2,), {}),
        ("AvgPool2d", (3,), dict(stride=1, padding=1, count_include_pad=False)),
        ("AvgPool1d", (2,), {}),
        ("AdaptiveAvgPool2d", ((2, 3),), {}),
        ("AdaptiveAvgPool1d", (3,), {}),
        ("BatchNorm2d", (3,), dict(affine=False)),
        ("BatchNorm1d", (3,), dict(track_running_stats=False)),
        ("GroupNorm", (3, 3), {}),
        ("Flatten", (), {}),
    ]
    for cls, args, kw in specs:
        tm = getattr(torch.nn, cls)(*args, **kw).to(device).double()
        em = getattr(ember.nn, cls)(*args, **kw).to(device).to(ember.float64)
        assert sorted(em.state_dict()) == sorted(tm.state_dict()), cls
        with torch.no_grad():
            for name, p in tm.named_parameters():
                p.copy_(torch.from_numpy(rng.uniform(-1, 1, size=tuple(p.shape))))
        for name, p in tm.named_parameters():
            assert tuple(dict(em.named_parameters())[name].shape) == tuple(p.shape), (cls, name)
        em.load_state_dict({k: ember.from_numpy(v.detach().cpu().numpy()) for k, v in tm.state_dict().items()})
        shape = (2, 3, 7, 8) if "2d" in cls or cls in ("GroupNorm", "Flatten") else (2, 3, 9)
        xt, xe = random_pair(rng, shape, device=device, bound=1.0)
        ot, oe = tm(xt), em(xe)
        assert_close(oe, ot, "float64", f"{cls} output")
        ot.sum().backward()
        oe.sum().backward()
        assert_close(xe.grad, xt.grad, "float64", f"{cls} input grad")
        for name, p in tm.named_parameters():
            assert_close(dict(em.named_parameters())[name].grad, p.grad, "float64", f"{cls} {name} grad")
        if "bias" in inspect.signature(type(tm)).parameters or not cls.startswith("BatchNorm"):
            assert repr(em) == repr(tm), (repr(em), repr(tm))  # torch < 2.13's BatchNorm has no bias= (device: 2.11)


def test_module_defaults_initialize_like_torch():
    """Default init: kaiming_uniform(a=sqrt(5)) weights and U(+-1/sqrt(fan_in)) bias, by bounds."""
    for em, fan_in in [(ember.nn.Conv2d(4, 8, 3), 36), (ember.nn.Conv1d(2, 3, 5, groups=1), 10),
                       (ember.nn.ConvTranspose2d(4, 6, 3, groups=2), 27)]:
        bound = 1.0 / np.sqrt(fan_in)
        w, b = em.weight.detach().numpy(), em.bias.detach().numpy()
        assert np.abs(w).max() <= bound + 1e-7 and np.abs(w).max() > 0.5 * bound
        assert np.abs(b).max() <= bound + 1e-7


@pytest.mark.parametrize("device", devices())
def test_dropout2d_zeroes_whole_channels(device):
    x = ember.ones((64, 32, 3, 3), device=device)
    m = ember.nn.Dropout2d(0.25)
    y = m(x).cpu().numpy()
    per_channel = y.reshape(64, 32, 9)
    assert np.all(per_channel.min(-1) == per_channel.max(-1)), "a channel was partly dropped"
    kept = per_channel[:, :, 0] != 0
    assert 0.68 < kept.mean() < 0.82, kept.mean()
    np.testing.assert_allclose(per_channel[kept][:, 0], 1 / 0.75, rtol=1e-6)
    m.eval()
    assert np.array_equal(m(x).cpu().numpy(), x.cpu().numpy())
    assert np.array_equal(ember.nn.functional.dropout2d(x, 1.0).cpu().numpy(), np.zeros((64, 32, 3, 3)))


# ---- bad input: a Python exception naming the op and the shapes, never a crash -------------------

BAD = [
    ("conv2d", lambda: F(ember).conv2d(ember.zeros((1, 4, 5, 5)), ember.zeros((2, 3, 3, 3))), "channels"),
    ("conv2d", lambda: F(ember).conv2d(ember.zeros((1, 3, 2, 2)), ember.zeros((2, 3, 3, 3))), "Kernel size"),
    ("conv2d", lambda: F(ember).conv2d(ember.zeros((1, 3, 5, 5)), ember.zeros((2, 3, 3, 3)), ember.zeros(3)), "bias"),
    ("conv2d", lambda: F(ember).conv2d(ember.zeros((1, 4, 5, 5)), ember.zeros((3, 2, 3, 3)), groups=2), "groups"),
    ("conv2d", lambda: F(ember).conv2d(ember.zeros((5, 5)), ember.zeros((2, 3, 3, 3))), "[5, 5]"),
    ("conv2d", lambda: F(ember).conv2d(ember.zeros((1, 3, 5, 5)), ember.zeros((2, 3, 3, 3)), stride=0), "stride"),
    ("conv2d", lambda: F(ember).conv2d(ember.zeros((1, 3, 5, 5)), ember.zeros((2, 3, 3, 3), dtype=ember.float64)),
     "weight type"),
    ("conv2d", lambda: F(ember).conv2d(ember.zeros((1, 3, 5, 5), dtype=ember.int64),
                                       ember.zeros((2, 3, 3, 3), dtype=ember.int64)), "int64"),
    ("conv2d", lambda: F(ember).conv2d(ember.zeros((1, 3, 5, 5)), ember.zeros((2, 3, 3, 3)), stride=2,
                                       padding="same"), "same"),
    ("conv1d", lambda: F(ember).conv1d(ember.zeros((1, 3, 2)), ember.zeros((2, 3, 3))), "Kernel size"),
    ("conv_transpose2d", lambda: F(ember).conv_transpose2d(ember.zeros((1, 3, 4, 4)), ember.zeros((2, 3, 3, 3))),
     "channels"),
    ("max_pool2d", lambda: F(ember).max_pool2d(ember.zeros((1, 1, 2, 2)), 3), "too small"),
    ("max_pool2d", lambda: F(ember).max_pool2d(ember.zeros((1, 1, 6, 6)), 2, padding=2), "pad"),
    ("avg_pool2d", lambda: F(ember).avg_pool2d(ember.zeros((1, 1, 2, 2)), 3), "too small"),
    ("fold", lambda: F(ember).fold(ember.zeros((1, 5, 9)), (4, 4), 2), "kernel_size"),
    ("batch_norm", lambda: F(ember).batch_norm(ember.zeros((1, 3)), None, None, training=True), "more than 1 value"),
    ("group_norm", lambda: F(ember).group_norm(ember.zeros((2, 5, 3)), 2), "divisible"),
]


@pytest.mark.parametrize("op,call,needle", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_raises_naming_the_op(op, call, needle):
    with pytest.raises((RuntimeError, ValueError, TypeError, NotImplementedError)) as info:
        call()
    msg = str(info.value)
    assert f"[{op}]" in msg and needle in msg, msg


def test_bad_module_input_names_the_expected_rank():
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        ember.nn.BatchNorm2d(3)(ember.zeros((2, 3, 4)))
