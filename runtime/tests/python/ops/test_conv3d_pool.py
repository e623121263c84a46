"""3-d convolution and pooling and adaptive max pooling against torch (nn/_conv3d.py, nn/_conv.py):
conv3d (stride, padding incl. 'same', dilation, groups, bias), conv_transpose3d, max/avg/adaptive-avg pool3d,
adaptive_max_pool1d/2d with torch's indices. One table for every device (values, gradients, dtypes,
non-contiguous inputs, 0-size batches), float64 finite differences, then NaN/tie rules, modules,
errors and a small U-Net block end to end."""
import numpy as np
import pytest
import torch

import ember
from optest import (random_pair, FLOAT_DTYPES, OpCase, assert_close, check_case, devices, finite_difference_check,
                    gradcheck_params, params, to_ember, to_torch)

TOL = {"float32": (1e-4, 1e-4), "float16": (2e-2, 2e-2), "bfloat16": (5e-2, 5e-2)}


def F(lib):
    return lib.nn.functional


def conv3d(**kw):
    return lambda lib, x, w, *b: F(lib).conv3d(x, w, b[0] if b else None, **kw)


def convt3d(**kw):
    return lambda lib, x, w, *b: F(lib).conv_transpose3d(x, w, b[0] if b else None, **kw)


def fn(name, **kw):
    return lambda lib, x: getattr(F(lib), name)(x, **kw)


def case(name, f, shapes, **kw):
    return OpCase(name, f, shapes, FLOAT_DTYPES, low=-1.0, high=1.0, tol=TOL, **kw)


CASES = [
    # conv3d: the first shape set is small enough for float64 finite differences.
    case("conv3d", conv3d(padding=1), [[(1, 1, 2, 3, 2), (2, 1, 2, 2, 2), (2,)],
                                       [(2, 3, 5, 6, 4), (4, 3, 3, 3, 2), (4,)],
                                       [(0, 3, 4, 4, 4), (2, 3, 3, 3, 3), (2,)],
                                       [(3, 4, 5, 6), (2, 3, 2, 3, 3), (2,)]]),
    case("conv3d_no_bias_stride", conv3d(stride=(2, 1, 2)), [[(1, 1, 3, 2, 3), (1, 1, 2, 2, 2)],
                                                             [(2, 2, 7, 5, 6), (3, 2, 3, 2, 3)]]),
    case("conv3d_dilation_pad", conv3d(dilation=(2, 1, 2), padding=(1, 0, 2)),
         [[(1, 1, 3, 2, 2), (1, 1, 2, 2, 2), (1,)], [(2, 2, 6, 5, 7), (3, 2, 2, 3, 3), (3,)]]),
    case("conv3d_groups", conv3d(groups=2, padding=(0, 1, 1), stride=(1, 2, 1)),
         [[(1, 2, 2, 2, 3), (2, 1, 1, 2, 2), (2,)], [(2, 4, 4, 5, 6), (6, 2, 3, 3, 3), (6,)]]),
    case("conv3d_depthwise", conv3d(groups=3), [[(1, 3, 2, 2, 2), (3, 1, 1, 2, 2), (3,)],
                                                [(2, 3, 4, 5, 5), (6, 1, 2, 3, 3), (6,)]]),
    case("conv3d_same", conv3d(padding="same", dilation=(1, 2, 1)),
         [[(1, 1, 3, 3, 2), (1, 1, 2, 2, 2), (1,)], [(2, 2, 5, 6, 5), (3, 2, 2, 3, 4), (3,)]]),
    case("conv3d_valid_1x1", conv3d(padding="valid"), [[(1, 2, 2, 2, 3), (3, 2, 1, 1, 1), (3,)],
                                                       [(2, 4, 3, 5, 4), (5, 4, 1, 1, 1), (5,)]]),
    # conv_transpose3d: weights [C_in, C_out/groups, kD, kH, kW]
    case("conv_transpose3d", convt3d(), [[(1, 1, 2, 2, 2), (1, 2, 2, 2, 1), (2,)],
                                         [(2, 3, 3, 4, 5), (3, 2, 2, 3, 2), (2,)],
                                         [(0, 3, 2, 2, 2), (3, 2, 2, 2, 2), (2,)],
                                         [(3, 2, 3, 4), (3, 2, 2, 2, 3), (2,)]]),
    case("conv_transpose3d_stride_pad", convt3d(stride=(2, 1, 2), padding=(1, 0, 1), output_padding=(1, 0, 1)),
         [[(1, 1, 2, 2, 2), (1, 1, 3, 2, 3)], [(2, 2, 3, 4, 3), (2, 3, 3, 2, 3)]]),
    case("conv_transpose3d_groups_dilation", convt3d(groups=2, dilation=(2, 1, 1), stride=(3, 2, 1)),
         [[(1, 2, 2, 2, 2), (2, 1, 2, 1, 2), (2,)], [(2, 4, 3, 3, 4), (4, 3, 2, 2, 2), (6,)]]),
    # pooling
    case("max_pool3d", fn("max_pool3d", kernel_size=2), [[(1, 1, 2, 4, 2)], [(2, 3, 6, 7, 8)], [(0, 2, 4, 4, 4)],
                                                          [(3, 4, 5, 6)]]),
    case("max_pool3d_overlap", fn("max_pool3d", kernel_size=3, stride=2, padding=1, return_indices=True),
         [[(1, 1, 3, 3, 2)], [(2, 3, 7, 6, 9)]]),
    case("max_pool3d_dilation_ceil", fn("max_pool3d", kernel_size=(2, 2, 3), stride=(2, 1, 2), dilation=(2, 1, 1),
                                        ceil_mode=True, return_indices=True), [[(1, 1, 4, 2, 3)], [(2, 2, 7, 5, 8)]]),
    case("avg_pool3d", fn("avg_pool3d", kernel_size=2), [[(1, 1, 2, 4, 2)], [(2, 3, 6, 8, 4)], [(0, 2, 4, 4, 4)],
                                                          [(3, 4, 5, 6)]]),
    case("avg_pool3d_pad", fn("avg_pool3d", kernel_size=(3, 2, 3), stride=2, padding=1),
         [[(1, 1, 3, 2, 3)], [(2, 3, 7, 6, 9)]]),
    case("avg_pool3d_exclude_pad_ceil", fn("avg_pool3d", kernel_size=(3, 2, 2), stride=2, padding=1, ceil_mode=True,
                                           count_include_pad=False), [[(1, 1, 4, 3, 2)], [(2, 2, 8, 5, 9)]]),
    case("avg_pool3d_divisor", fn("avg_pool3d", kernel_size=2, stride=(1, 2, 2), divisor_override=3),
         [[(1, 1, 3, 2, 2)], [(2, 3, 5, 8, 7)]]),
    case("adaptive_avg_pool3d", fn("adaptive_avg_pool3d", output_size=(2, None, 3)),
         [[(1, 1, 3, 2, 4)], [(2, 3, 7, 5, 9)], [(3, 5, 4, 7)]]),
    case("adaptive_max_pool2d", fn("adaptive_max_pool2d", output_size=(3, 4), return_indices=True),
         [[(1, 1, 4, 5)], [(2, 3, 7, 9)], [(0, 2, 5, 5)], [(3, 8, 6)]]),
    case("adaptive_max_pool2d_even", fn("adaptive_max_pool2d", output_size=(2, 3), return_indices=True),
         [[(1, 1, 4, 6)], [(2, 3, 8, 9)], [(3, 4, 6)]]),
    case("adaptive_max_pool2d_grow", fn("adaptive_max_pool2d", output_size=(5, 3), return_indices=True),
         [[(1, 1, 3, 2)], [(2, 2, 3, 3)]]),
    case("adaptive_max_pool2d_none", fn("adaptive_max_pool2d", output_size=(None, 2)),
         [[(1, 2, 3, 4)], [(2, 3, 6, 7)]]),
    case("adaptive_max_pool1d", fn("adaptive_max_pool1d", output_size=4, return_indices=True),
         [[(1, 2, 7)], [(3, 5, 11)], [(4, 9)], [(0, 3, 5)]]),
]
for c in CASES:  # torch's CPU avg_pool3d has no half kernels (test_avg_pool3d_half_types covers ember's)
    if c.name.startswith("avg_pool3d"):
        c.dtypes = ["float32", "float64"]


@pytest.mark.parametrize("case,shapes,dtype,device,noncontig", params(CASES))
def test_matches_torch(case, shapes, dtype, device, noncontig):
    check_case(case, shapes, dtype, device, noncontig)


@pytest.mark.parametrize("case,shapes", gradcheck_params(CASES))
def test_gradcheck(case, shapes):
    finite_difference_check(case, shapes)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_avg_pool3d_half_types(device, dtype):
    """ember pools half types (as torch does on CUDA); compared with torch's float32 result."""
    a = np.random.default_rng(9).uniform(-1, 1, size=(2, 3, 5, 6, 7)).astype(np.float32)
    kw = dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)
    want = torch.nn.functional.avg_pool3d(torch.from_numpy(a), **kw)
    got = ember.nn.functional.avg_pool3d(ember.from_numpy(a).to(device).to(getattr(ember, dtype)), **kw)
    assert got.dtype == getattr(ember, dtype)
    np.testing.assert_allclose(got.float().cpu().numpy(), want.numpy(), rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("device", devices())
def test_conv3d_double_backward_matches_torch(device):
    rng = np.random.default_rng(5)
    xt, xe = random_pair(rng, (2, 2, 4, 5, 4), device=device, bound=1.0)
    wt, we = random_pair(rng, (3, 2, 2, 3, 2), device=device, bound=1.0)
    results = []
    for lib, x, w in [(torch, xt, wt), (ember, xe, we)]:
        out = lib.nn.functional.conv3d(x, w, stride=(1, 2, 1), padding=1)
        gx, = lib.autograd.grad((out * out).sum(), [x], create_graph=True)
        results.append(lib.autograd.grad((gx * gx).sum(), [x, w]))
    for a, e in zip(results[1], results[0]):
        assert_close(a, e, "float64", "conv3d double backward")


def test_max_pooling_nan_and_ties_pick_torchs_index():
    """torch keeps the first maximum of a window, or its last NaN; values and indices both match."""
    rng = np.random.default_rng(6)
    a = rng.integers(0, 3, size=(2, 2, 4, 5, 6)).astype(np.float64)   # many ties
    a[0, 0, 1, 2, 3] = a[1, 1, 2, 0, 0] = a[1, 1, 3, 1, 0] = np.nan
    a[0, 1, 0, 0, 0] = -np.inf
    calls = [
        lambda lib, x: F(lib).max_pool3d(x, 2, return_indices=True),
        lambda lib, x: F(lib).max_pool3d(x, 3, stride=1, padding=1, return_indices=True),
        lambda lib, x: F(lib).adaptive_max_pool2d(x[:, :, 1], (3, 4), return_indices=True),
        lambda lib, x: F(lib).adaptive_max_pool2d(x[:, :, 2], (2, 2), return_indices=True),
        lambda lib, x: F(lib).adaptive_max_pool1d(x[:, :, 3, 0], 3, return_indices=True),
        lambda lib, x: F(lib).adaptive_max_pool2d(x[:, :, 1], (2, 3), return_indices=True),
    ]
    for i, call in enumerate(calls):
        tv, ti = call(torch, torch.from_numpy(a))
        ev, ei = call(ember, ember.from_numpy(a))
        assert_close(ev, tv, "float64", f"values of call {i}")
        assert_close(ei, ti, "int64", f"indices of call {i}")


@pytest.mark.parametrize("device", devices())
def test_modules_match_torch_with_copied_weights(device):
    rng = np.random.default_rng(7)
    specs = [
        ("Conv3d", (3, 4, 3), dict(stride=2, padding=1, bias=False), (2, 3, 5, 6, 7)),
        ("Conv3d", (4, 6, (2, 3, 1)), dict(padding="same", groups=2, padding_mode="replicate"), (2, 4, 5, 6, 4)),
        ("Conv3d", (3, 2, 2), dict(padding=1, padding_mode="circular", dilation=(1, 2, 1)), (1, 3, 4, 5, 4)),
        ("Conv3d", (3, 2, 2), dict(padding=(1, 0, 1), padding_mode="reflect"), (1, 3, 4, 5, 4)),
        ("ConvTranspose3d", (4, 6, (2, 3, 2)), dict(stride=2, padding=1, groups=2), (2, 4, 3, 4, 3)),
        ("ConvTranspose3d", (3, 2, 2), dict(stride=(2, 1, 1), output_padding=(1, 0, 0), bias=False), (1, 3, 2, 3, 2)),
        ("MaxPool3d", (3,), dict(stride=2, padding=1), (2, 3, 5, 6, 7)),
        ("AvgPool3d", (2,), dict(stride=1, padding=1, count_include_pad=False), (2, 3, 4, 5, 3)),
        ("AdaptiveAvgPool3d", ((2, 3, None),), {}, (2, 3, 5, 6, 4)),
        ("AdaptiveMaxPool2d", ((2, 3),), {}, (2, 3, 5, 7)),
        ("AdaptiveMaxPool1d", (4,), {}, (2, 3, 9)),
    ]
    for cls, args, kw, shape in specs:
        tm = getattr(torch.nn, cls)(*args, **kw).to(device).double()
        em = getattr(ember.nn, cls)(*args, **kw).to(device).to(ember.float64)
        assert repr(em) == repr(tm), (repr(em), repr(tm))
        assert list(em.state_dict()) == list(tm.state_dict()), cls
        with torch.no_grad():
            for p in tm.parameters():
                p.copy_(torch.from_numpy(rng.uniform(-1, 1, size=tuple(p.shape))))
        em.load_state_dict({k: ember.from_numpy(v.detach().cpu().numpy()) for k, v in tm.state_dict().items()})
        xt, xe = random_pair(rng, shape, device=device, bound=1.0)
        ot, oe = tm(xt), em(xe)
        assert_close(oe, ot, "float64", f"{cls} output")
        ot.sum().backward()
        oe.sum().backward()
        assert_close(xe.grad, xt.grad, "float64", f"{cls} input grad")
        for name, p in tm.named_parameters():
            assert_close(dict(em.named_parameters())[name].grad, p.grad, "float64", f"{cls} {name} grad")
    tm, em = torch.nn.AdaptiveMaxPool2d(3, return_indices=True), ember.nn.AdaptiveMaxPool2d(3, return_indices=True)
    xt, xe = random_pair(rng, (2, 2, 7, 5), device=device, grad=False, bound=1.0)
    for e, t in zip(em(xe), tm(xt)):
        assert_close(e, t, str(t.dtype).replace("torch.", ""), "AdaptiveMaxPool2d(return_indices=True)")


def test_conv3d_module_initializes_like_torch():
    em = ember.nn.Conv3d(4, 8, (3, 2, 2), groups=2)
    bound = 1.0 / np.sqrt(2 * 3 * 2 * 2)
    w, b = em.weight.detach().numpy(), em.bias.detach().numpy()
    assert w.shape == (8, 2, 3, 2, 2) and b.shape == (8,)
    assert np.abs(w).max() <= bound + 1e-7 and np.abs(w).max() > 0.5 * bound
    assert np.abs(b).max() <= bound + 1e-7


@pytest.mark.parametrize("device", devices())
def test_unet_block_matches_torch(device):
    """conv -> relu -> maxpool -> conv -> bilinear upsample -> concat skip -> conv, same weights, a few SGD steps."""
    def build(lib):
        nn = lib.nn

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.down = nn.Conv2d(3, 8, 3, padding=1)
                self.pool = nn.MaxPool2d(2)
                self.mid = nn.Conv2d(8, 8, 3, padding="same")
                self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
                self.out = nn.Conv2d(16, 2, 1)

            def forward(self, x):
                skip = lib.relu(self.down(x))
                y = lib.relu(self.mid(self.pool(skip)))
                return self.out(lib.cat([self.up(y), skip], 1))
        return Block()

    torch.manual_seed(0)
    tm = build(torch).to(device)
    em = build(ember)
    em.load_state_dict({k: ember.from_numpy(v.detach().cpu().numpy()) for k, v in tm.state_dict().items()})
    em = em.to(device)
    rng = np.random.default_rng(8)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1)
    eopt = ember.optim.SGD(em.parameters(), lr=0.1)
    for step in range(3):
        a = rng.uniform(-1, 1, size=(2, 3, 10, 12)).astype(np.float32)
        target = rng.uniform(-1, 1, size=(2, 2, 10, 12)).astype(np.float32)
        tl = ((tm(to_torch(a, "float32", device)) - to_torch(target, "float32", device)) ** 2).mean()
        el = ((em(to_ember(a, "float32", device)) - to_ember(target, "float32", device)) ** 2).mean()
        assert_close(el, tl, "float32", f"loss at step {step}")
        for opt, loss in [(topt, tl), (eopt, el)]:
            opt.zero_grad()
            loss.backward()
            opt.step()
    for name, p in tm.named_parameters():
        assert_close(dict(em.named_parameters())[name], p.detach(), "float32", f"{name} after 3 steps")


# ---- bad input: a Python exception naming the op and the shapes -------------------------------------

BAD = [
    ("conv3d", lambda: F(ember).conv3d(ember.zeros((1, 2, 4, 4, 4)), ember.zeros((3, 3, 2, 2, 2))), "3 channels"),
    ("conv3d", lambda: F(ember).conv3d(ember.zeros((1, 2, 1, 4, 4)), ember.zeros((3, 2, 2, 2, 2))), "Kernel size"),
    ("conv3d", lambda: F(ember).conv3d(ember.zeros((1, 2, 4, 4, 4)), ember.zeros((3, 2, 2, 2))), "[3, 2, 2, 2]"),
    ("conv3d", lambda: F(ember).conv3d(ember.zeros((2, 4, 4)), ember.zeros((3, 2, 2, 2, 2))), "[2, 4, 4]"),
    ("conv3d", lambda: F(ember).conv3d(ember.zeros((1, 2, 4, 4, 4)), ember.zeros((3, 2, 2, 2, 2)), stride=2,
                                       padding="same"), "same"),
    ("conv3d", lambda: F(ember).conv3d(ember.zeros((1, 2, 4, 4, 4)), ember.zeros((3, 2, 2, 2, 2)), stride=(1, 2)),
     "stride"),
    ("conv_transpose3d", lambda: F(ember).conv_transpose3d(ember.zeros((1, 2, 2, 2, 2)), ember.zeros((3, 2, 2, 2, 2))),
     "3 channels"),
    ("conv_transpose3d", lambda: F(ember).conv_transpose3d(ember.zeros((1, 4, 2, 2, 2)), ember.zeros((4, 3, 2, 2, 2)),
                                                           padding=3), "(-3 x -3 x -3)"),
    ("conv_transpose3d", lambda: F(ember).conv_transpose3d(ember.zeros((1, 4, 2, 2, 2)), ember.zeros((4, 3, 2, 2, 2)),
                                                           stride=2, output_padding=2), "output padding"),
    ("conv_transpose3d", lambda: F(ember).conv_transpose3d(ember.zeros((2, 2)), ember.zeros((2, 3, 2, 2, 2))), "[2, 2]"),
    ("conv_transpose2d", lambda: F(ember).conv_transpose2d(ember.zeros((1, 4, 2, 2)), ember.zeros((4, 3, 2, 2)),
                                                           padding=(3, 0)), "(-3 x 3)"),
    ("max_pool3d", lambda: F(ember).max_pool3d(ember.zeros((1, 1, 2, 2, 2)), 3), "too small"),
    ("max_pool3d", lambda: F(ember).max_pool3d(ember.zeros((1, 1, 4, 4, 4)), 2, padding=2), "pad"),
    ("max_pool3d", lambda: F(ember).max_pool3d(ember.zeros((4, 4, 4)), 2), "[4, 4, 4]"),
    ("max_pool3d", lambda: F(ember).max_pool3d(ember.zeros((1, 1, 4, 4, 4), dtype=ember.int64), 2), "int64"),
    ("avg_pool3d", lambda: F(ember).avg_pool3d(ember.zeros((1, 1, 2, 2, 2)), 3), "too small"),
    ("avg_pool3d", lambda: F(ember).avg_pool3d(ember.zeros((1, 0, 2, 2, 2)), 1), "[1, 0, 2, 2, 2]"),
    ("avg_pool3d", lambda: F(ember).avg_pool3d(ember.zeros((1, 1, 3, 2, 3)), 3, padding=1), "smaller than kernel"),
    ("avg_pool3d", lambda: F(ember).avg_pool3d(ember.zeros((1, 1, 2, 2, 2)), 2, divisor_override=0), "divisor"),
    ("adaptive_avg_pool3d", lambda: F(ember).adaptive_avg_pool3d(ember.zeros((1, 0, 2, 2, 2)), 2), "non-zero size"),
    ("adaptive_max_pool2d", lambda: F(ember).adaptive_max_pool2d(ember.zeros((2, 3)), 2), "[2, 3]"),
    ("adaptive_max_pool2d", lambda: F(ember).adaptive_max_pool2d(ember.zeros((1, 0, 3, 3)), 2), "[1, 0, 3, 3]"),
    ("adaptive_max_pool2d", lambda: F(ember).adaptive_max_pool2d(ember.zeros((1, 2, 3, 3)), (2, 2, 2)), "pair"),
    ("adaptive_max_pool2d", lambda: F(ember).adaptive_max_pool2d(ember.zeros((1, 2, 3, 3), dtype=ember.int64), 2),
     "int64"),
    ("adaptive_max_pool1d", lambda: F(ember).adaptive_max_pool1d(ember.zeros((2, 3, 3, 5)), 2), "[2, 3, 3, 5]"),
]


@pytest.mark.parametrize("op,call,needle", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_raises_naming_the_op(op, call, needle):
    with pytest.raises((RuntimeError, ValueError, TypeError, NotImplementedError)) as info:
        call()
    msg = str(info.value)
    assert f"[{op}]" in msg and needle in msg, msg


def test_adaptive_max_pool_empty_output_like_torch():
    for size in [0, (0, 2)]:
        t = torch.nn.functional.adaptive_max_pool2d(torch.rand(2, 3, 3), size, return_indices=True)
        e = ember.nn.functional.adaptive_max_pool2d(ember.rand(2, 3, 3), size, return_indices=True)
        assert [tuple(x.shape) for x in e] == [tuple(x.shape) for x in t]
        assert e[1].dtype == ember.int64
