"""F.interpolate and the Upsample modules against torch (nn/_interpolate.py): every mode, align_corners,
sizes and scale factors (integer and not, up and down, recompute_scale_factor), half types, 0-size
batches and non-contiguous inputs through the differential table on every device; float64 finite
differences; nearest's source pixels exactly torch's over a sweep of sizes; errors; modules."""
import numpy as np
import pytest
import torch

import ember
from optest import FLOAT_DTYPES, OpCase, assert_close, check_case, devices, finite_difference_check, params, \
    gradcheck_params, to_ember, to_torch

# Linear/cubic modes blend 2-4 (per dim) inputs in float32 for half types, like torch's opmath.
TOL = {"float32": (1e-5, 1e-5), "float16": (1e-2, 1e-2), "bfloat16": (2e-2, 2e-2)}


def interp(**kw):
    return lambda lib, x: lib.nn.functional.interpolate(x, **kw)


def case(name, shapes, **kw):
    return OpCase(name, interp(**kw), shapes, FLOAT_DTYPES, low=-1.0, high=1.0, tol=TOL)


S3, S4, S5 = [(1, 1, 5)], [(1, 1, 3, 4)], [(1, 1, 2, 3, 2)]   # small enough for finite differences
# torch's 1-d/3-d nearest backward maps coordinates with in/out even where its forward used the given
# scale_factor, so its gradient is not its forward's adjoint there: those cases recompute the scale
# factor here; test_nearest_gradient_is_the_adjoint_of_torchs_forward covers the rest.
CASES = [
    # nearest / nearest-exact: 1-, 2- and 3-d, up and down, non-integer factors, 0-size batch.
    case("nearest1d_size", [S3, [(2, 3, 7)], [(0, 2, 5)]], size=11),
    case("nearest1d_scale", [S3, [(2, 3, 9)]], scale_factor=1.7, recompute_scale_factor=True),
    case("nearest2d_size", [S4, [(2, 3, 7, 6)], [(0, 2, 4, 4)]], size=(5, 9)),
    case("nearest2d_scale_int", [S4, [(2, 3, 5, 6)]], scale_factor=2),
    case("nearest2d_scale_down", [[(1, 1, 4, 5)], [(2, 3, 9, 11)]], scale_factor=(0.5, 0.37)),
    case("nearest2d_recompute", [S4, [(2, 3, 7, 5)]], scale_factor=(1.3, 2.6), recompute_scale_factor=True),
    case("nearest3d", [S5, [(2, 2, 3, 4, 5)]], size=(4, 2, 7)),
    case("nearest3d_scale", [S5, [(2, 2, 3, 4, 5)]], scale_factor=(1.5, 0.5, 2.2), recompute_scale_factor=True),
    case("nearest_exact1d", [S3, [(2, 3, 9)]], size=4, mode="nearest-exact"),
    case("nearest_exact2d", [S4, [(2, 3, 7, 6)], [(0, 1, 3, 3)]], scale_factor=(1.6, 0.7), mode="nearest-exact"),
    case("nearest_exact3d", [S5, [(1, 2, 3, 5, 4)]], size=(5, 3, 7), mode="nearest-exact"),
    # linear family, with and without align_corners.
    case("linear", [S3, [(2, 3, 7)], [(0, 2, 5)]], size=12, mode="linear"),
    case("linear_ac", [S3, [(2, 3, 7)]], size=3, mode="linear", align_corners=True),
    case("linear_scale", [S3, [(2, 3, 8)]], scale_factor=2.3, mode="linear"),
    case("linear_scale_recompute", [S3, [(2, 3, 8)]], scale_factor=2.3, mode="linear", recompute_scale_factor=True),
    case("bilinear_up", [S4, [(2, 3, 7, 6)], [(0, 2, 3, 3)]], scale_factor=2, mode="bilinear"),
    case("bilinear_up_ac", [S4, [(2, 3, 7, 6)]], size=(13, 9), mode="bilinear", align_corners=True),
    case("bilinear_down", [[(1, 1, 5, 4)], [(2, 3, 9, 11)]], size=(4, 3), mode="bilinear"),
    case("bilinear_down_ac", [[(1, 1, 5, 4)], [(2, 3, 9, 11)]], scale_factor=(0.6, 0.4), mode="bilinear",
         align_corners=True),
    case("bilinear_size1_ac", [S4, [(2, 2, 6, 5)]], size=(1, 3), mode="bilinear", align_corners=True),
    case("bilinear_scale_frac", [S4, [(2, 3, 7, 5)]], scale_factor=(1.37, 2.5), mode="bilinear"),
    case("bicubic_up", [S4, [(2, 3, 6, 5)], [(0, 1, 4, 4)]], size=(9, 11), mode="bicubic"),
    case("bicubic_up_ac", [S4, [(2, 3, 6, 5)]], scale_factor=1.5, mode="bicubic", align_corners=True),
    case("bicubic_down", [[(1, 1, 5, 4)], [(2, 3, 9, 11)]], scale_factor=0.55, mode="bicubic"),
    # antialias: torch's PIL-style filters, down and up (torch's own result is wrong for an output width of 1).
    case("bilinear_aa_down", [[(1, 1, 5, 4)], [(2, 3, 17, 23)]], size=(3, 2), mode="bilinear", antialias=True),
    case("bilinear_aa_scale_ac", [[(1, 1, 5, 4)], [(2, 3, 17, 23)]], scale_factor=(0.37, 0.6), mode="bilinear",
         antialias=True, align_corners=True),
    case("bilinear_aa_up", [S4, [(2, 2, 6, 5)]], size=(7, 9), mode="bilinear", antialias=True),
    case("bicubic_aa_down", [[(1, 1, 4, 5)], [(2, 3, 17, 23)], [(0, 1, 6, 6)]], scale_factor=0.45, mode="bicubic",
         antialias=True),
    case("bicubic_aa_up_ac", [S4, [(2, 2, 6, 5)]], size=(8, 6), mode="bicubic", antialias=True, align_corners=True),
    case("trilinear", [S5, [(2, 2, 4, 3, 5)], [(0, 1, 2, 2, 2)]], size=(5, 7, 3), mode="trilinear"),
    case("trilinear_ac", [S5, [(2, 2, 4, 3, 5)]], scale_factor=(1.5, 0.7, 2.0), mode="trilinear", align_corners=True),
    case("area1d", [S3, [(2, 3, 11)]], size=4, mode="area"),
    case("area2d", [S4, [(2, 3, 9, 7)]], size=(4, 3), mode="area"),
    case("area2d_scale", [[(1, 1, 4, 5)], [(2, 3, 9, 7)]], scale_factor=0.5, mode="area"),
    case("area3d", [S5, [(2, 2, 5, 4, 6)]], size=(2, 3, 4), mode="area"),
]


for c in CASES:  # torch's CPU antialias kernels have no half types
    if "_aa_" in c.name:
        c.dtypes = ["float32", "float64"]


@pytest.mark.parametrize("case,shapes,dtype,device,noncontig", params(CASES))
def test_matches_torch(case, shapes, dtype, device, noncontig):
    check_case(case, shapes, dtype, device, noncontig)


@pytest.mark.parametrize("case,shapes", gradcheck_params(CASES))
def test_gradcheck(case, shapes):
    finite_difference_check(case, shapes)


# ---- nearest picks torch's pixels: an index sweep ----------------------------------------------------

@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nearest_source_pixels_are_torchs(device, dims, mode, dtype):
    """torch has three index rules (separable CPU kernel, 2-d CPU kernel, CUDA); ember follows each.
    Integer-valued inputs make any pixel difference an exact mismatch."""
    calls = [dict(size=(2,) * (dims - 1) + (n_out,)) for n_out in (1, 3, 7, 13, 20, 41, 47, 66)]
    calls += [dict(scale_factor=(1.0,) * (dims - 1) + (s,)) for s in (0.3, 0.77, 1.1, 1.3, 1 / 3, 2.5, 3.3)]
    for n_in in (1, 2, 5, 14, 18, 26):
        shape = (1, 3) + (2,) * (dims - 1) + (n_in,)
        a = (np.arange(np.prod(shape)) % 97).reshape(shape).astype(dtype)
        for kw in calls:
            if "scale_factor" in kw and int(n_in * kw["scale_factor"][-1]) < 1:
                continue
            want = torch.nn.functional.interpolate(to_torch(a, dtype, device), mode=mode, **kw)
            got = ember.nn.functional.interpolate(to_ember(a, dtype, device), mode=mode, **kw)
            assert_close(got, want, dtype, f"{mode} {dims}-d n_in={n_in} {kw}", tol={dtype: (0.0, 0.0)})


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_nearest_gradient_is_the_adjoint_of_torchs_forward(dims, mode):
    """Each input's gradient is the sum of the upstream gradients of the outputs torch's forward copied
    it to (found from distinct input values), also where torch's own backward disagrees (see CASES)."""
    rng = np.random.default_rng(4)
    for n_in, scale in [(3, 2.2), (5, 1.3), (9, 0.77), (4, 1 / 3 + 1)]:
        shape = (1, 2) + (2,) * (dims - 1) + (n_in,)
        a = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
        kw = dict(scale_factor=(1.0,) * (dims - 1) + (scale,), mode=mode)
        sources = torch.nn.functional.interpolate(torch.from_numpy(a), **kw).numpy().astype(np.int64)
        upstream = rng.uniform(-1, 1, size=sources.shape)
        expected = np.bincount(sources.reshape(-1), weights=upstream.reshape(-1), minlength=a.size).reshape(shape)
        x = ember.from_numpy(a.copy()).requires_grad_(True)
        out = ember.nn.functional.interpolate(x, **kw)
        assert np.array_equal(out.detach().numpy(), sources.astype(np.float64)), kw
        out.backward(ember.from_numpy(upstream))
        np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12, atol=1e-12, err_msg=str(kw))


@pytest.mark.parametrize("device", devices())
def test_nearest_uint8_and_integer_dtypes(device):
    a = np.random.default_rng(1).integers(0, 255, size=(2, 3, 5, 7)).astype(np.uint8)
    for mode in ["nearest", "nearest-exact"]:
        want = torch.nn.functional.interpolate(torch.from_numpy(a).to(device), size=(8, 4), mode=mode)
        got = ember.nn.functional.interpolate(ember.from_numpy(a).to(device), size=(8, 4), mode=mode)
        assert_close(got, want, "uint8", mode)
    with pytest.raises(NotImplementedError, match=r"\[interpolate\] mode 'bilinear' not implemented for 'uint8'"):
        ember.nn.functional.interpolate(ember.from_numpy(a), size=(8, 4), mode="bilinear")
    with pytest.raises(NotImplementedError, match="int64"):
        ember.nn.functional.interpolate(ember.zeros((1, 1, 4), dtype=ember.int64), size=3)


def test_nan_and_inf_propagate_like_torch():
    a = np.arange(20, dtype=np.float64).reshape(1, 1, 4, 5)
    a[0, 0, 1, 2], a[0, 0, 3, 4] = np.nan, np.inf
    for kw in [dict(mode="nearest", size=(7, 3)), dict(mode="bilinear", scale_factor=2),
               dict(mode="bilinear", size=(2, 3), antialias=True),
               dict(mode="bicubic", size=(5, 9), align_corners=True), dict(mode="area", size=(2, 2))]:
        want = torch.nn.functional.interpolate(torch.from_numpy(a), **kw)
        got = ember.nn.functional.interpolate(ember.from_numpy(a), **kw)
        assert_close(got, want, "float64", str(kw))


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_antialias_output_width_one(mode):
    """torch's antialias kernels return equal rows when the output width is 1 (its result for an
    (H, 1) output ignores H); ember's is the transpose of torch's correct (1, H) result."""
    a = np.random.default_rng(5).uniform(-1, 1, size=(2, 3, 9, 7))
    got = ember.nn.functional.interpolate(ember.from_numpy(a), size=(4, 1), mode=mode, antialias=True)
    want = torch.nn.functional.interpolate(torch.from_numpy(a).transpose(-1, -2), size=(1, 4), mode=mode,
                                           antialias=True).transpose(-1, -2)
    assert_close(got, want, "float64", f"{mode} antialias (4, 1)")


@pytest.mark.parametrize("device", devices())
def test_double_backward_matches_torch(device):
    """Composed from index_select and products, bilinear/bicubic interpolation has second derivatives."""
    rng = np.random.default_rng(2)
    a = rng.uniform(-1, 1, size=(2, 2, 4, 5))
    results = []
    for lib, x in [(torch, to_torch(a, "float64", device)), (ember, to_ember(a, "float64", device))]:
        x.requires_grad_(True)
        out = lib.nn.functional.interpolate(x, scale_factor=1.5, mode="bicubic")
        gx, = lib.autograd.grad((out * out * out).sum(), [x], create_graph=True)
        results.append(lib.autograd.grad((gx * gx).sum(), [x])[0])
    assert_close(results[1], results[0], "float64", "bicubic double backward")


# ---- modules ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", devices())
def test_upsample_modules_match_torch(device):
    rng = np.random.default_rng(3)
    specs = [
        ("Upsample", dict(scale_factor=2)),
        ("Upsample", dict(size=(5, 7), mode="bilinear")),
        ("Upsample", dict(scale_factor=(1.5, 0.5), mode="bicubic", align_corners=True)),
        ("Upsample", dict(scale_factor=1.7, mode="nearest-exact", recompute_scale_factor=True)),
        ("UpsamplingNearest2d", dict(scale_factor=3)),
        ("UpsamplingBilinear2d", dict(size=9)),
    ]
    for cls, kw in specs:
        tm, em = getattr(torch.nn, cls)(**kw), getattr(ember.nn, cls)(**kw)
        assert repr(em) == repr(tm), (repr(em), repr(tm))
        a = rng.uniform(-1, 1, size=(2, 3, 4, 6))
        xt, xe = to_torch(a, "float64", device).requires_grad_(True), to_ember(a, "float64", device)
        xe.requires_grad_(True)
        ot, oe = tm(xt), em(xe)
        assert_close(oe, ot, "float64", f"{cls} {kw}")
        ot.sum().backward()
        oe.sum().backward()
        assert_close(xe.grad, xt.grad, "float64", f"{cls} {kw} grad")
    # Upsample's 1-d and 3-d forms pick the mode by the input's rank, like torch.
    a = rng.uniform(-1, 1, size=(1, 2, 3, 4, 5))
    for mode, x in [("linear", a[:, :, 0, 0]), ("trilinear", a)]:
        tm, em = torch.nn.Upsample(scale_factor=2, mode=mode), ember.nn.Upsample(scale_factor=2, mode=mode)
        assert_close(em(to_ember(x, "float64", device)), tm(to_torch(x, "float64", device)), "float64", mode)


# ---- bad input: a Python exception naming the op and the shapes -------------------------------------

def F():
    return ember.nn.functional


X4 = lambda: ember.zeros((1, 2, 4, 4))  # noqa: E731
BAD = [
    (lambda: F().interpolate(X4(), size=3, scale_factor=2), ValueError, "only one of size or scale_factor"),
    (lambda: F().interpolate(X4()), ValueError, "either size or scale_factor"),
    (lambda: F().interpolate(X4(), size=(3, 3, 3)), ValueError, "spatial dimensions of [4, 4]"),
    (lambda: F().interpolate(X4(), scale_factor=(2,)), ValueError, "scale_factor of shape (2,)"),
    (lambda: F().interpolate(X4(), size=(3.5, 3)), TypeError, "expected size to be one of int"),
    (lambda: F().interpolate(X4(), size=3, align_corners=True), ValueError, "align_corners option can only be set"),
    (lambda: F().interpolate(X4(), size=3, recompute_scale_factor=True), ValueError, "not meaningful"),
    (lambda: F().interpolate(X4(), size=3, mode="linear"), NotImplementedError, "linear mode needs 3D input"),
    (lambda: F().interpolate(ember.zeros((1, 2, 4)), size=3, mode="bilinear"), NotImplementedError, "needs 4D input"),
    (lambda: F().interpolate(X4(), size=3, mode="trilinear"), NotImplementedError, "needs 5D input"),
    (lambda: F().interpolate(ember.zeros((2, 4)), size=3), NotImplementedError, "got 2D, input of size [2, 4]"),
    (lambda: F().interpolate(X4(), size=3, mode="cubic"), NotImplementedError, "(got cubic)"),
    (lambda: F().interpolate(X4(), size=3, mode="nearest", antialias=True), ValueError, "Anti-alias"),
    (lambda: F().interpolate(X4(), size=3, mode="lanczos", antialias=True), NotImplementedError, "lanczos"),
    (lambda: F().interpolate(X4(), scale_factor=0.2), RuntimeError, "output (H: 0, W: 0)"),
    (lambda: F().interpolate(ember.zeros((1, 1, 0, 4)), size=(2, 2)), RuntimeError, "input (H: 0, W: 4)"),
    (lambda: F().interpolate(ember.zeros((1, 0, 4, 4)), size=2), RuntimeError, "sizes [1, 0, 4, 4]"),
    (lambda: F().interpolate([1.0, 2.0], size=2), TypeError, "Tensor"),
]


@pytest.mark.parametrize("call,kind,needle", BAD, ids=[f"bad-{i}" for i in range(len(BAD))])
def test_bad_input_raises_like_torch(call, kind, needle):
    with pytest.raises(kind) as info:
        call()
    msg = str(info.value)
    assert "[interpolate]" in msg and needle in msg, msg
