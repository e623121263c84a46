"""The fused cross-entropy op (ember.nn.functional.cross_entropy with class-index targets; Note [Fused
cross-entropy], csrc/ops/loss.cpp) against torch: forward and backward over shapes (0-size, C = 1,
vocab-sized C), reductions, ignore_index hits, label smoothing, spatial inputs, every float dtype,
strided layouts; float64 finite differences, double backward, NaN propagation, errors, CUDA graphs."""
import numpy as np
import pytest
import torch

import ember
import ember.nn.functional as EF
from optest import (FLOAT_DTYPES, OpCase, assert_close, check_case, devices, finite_difference_check,
                    gradcheck_params, params, to_numpy)

IGNORE = -100
REDUCTIONS = ["none", "sum", "mean"]


def targets(ignore_frac=0.3, ignore_index=IGNORE, all_ignored=False, target_dtype="int64", nan_rows=False):
    """make_inputs: logits in [-3, 3) of the case dtype, then class targets for them (class dim 1, or 0
    for an unbatched input) with about `ignore_frac` of them set to ignore_index. nan_rows puts a NaN
    into the first row (counted) and the second row (ignored)."""
    def make(rng, shapes, dtype):
        x_shape, t_shape = shapes
        x = rng.uniform(-3, 3, size=x_shape)
        n_classes = x_shape[1] if len(x_shape) >= 2 else x_shape[0]
        t = np.asarray(rng.integers(0, max(n_classes, 1), size=t_shape))
        t[rng.random(t_shape) < ignore_frac] = ignore_index
        if t.size:  # keep one counted row: a 'mean' over none is nan, which finite differences can't check
            t.reshape(-1)[0] = (ignore_index + 1) % max(n_classes, 1)
        if all_ignored:
            t[...] = ignore_index
        if nan_rows:
            t.reshape(-1)[:2] = [0, ignore_index]
            x[0, 1] = np.nan
            x[1, 0] = np.nan
        return [x.astype(np.float32 if dtype == "bfloat16" else dtype), t.astype(target_dtype)]
    return make


def ce(reduction, label_smoothing=0.0, ignore_index=IGNORE):
    def fn(lib, x, t):
        half = lib is torch and x.dtype in (torch.float16, torch.bfloat16)
        if lib is torch:
            t = t.long()  # torch takes int64 targets only; ember casts other integer dtypes itself
        # The reference for half types runs in float32 and rounds once, as the fused kernel does:
        # torch's float16 path overflows (sum over classes of -log p, then over rows, held in fp16).
        out = lib.nn.functional.cross_entropy(x.float() if half else x, t, ignore_index=ignore_index,
                                              reduction=reduction, label_smoothing=label_smoothing)
        return out.to(x.dtype) if half else out
    return fn


def case(name, fn, shapes, make_inputs=None, dtypes=FLOAT_DTYPES, target_dtype="int64", **kw):
    return OpCase(name, fn, shapes=shapes, dtypes=dtypes, make_inputs=make_inputs or targets(),
                  input_dtypes=[None, target_dtype], grad_inputs=[0], **kw)


def rows(*pairs):
    return [[(n, c), (n,)] for n, c in pairs]


# The first shape is small enough for the finite-difference check (gradcheck_params: numel <= 24).
SHAPES = rows((4, 5), (7, 65), (300, 65), (1, 1), (0, 5), (7, 2000))
GRID = rows(*[(n, c) for n in (0, 1, 7, 300) for c in (1, 5, 65, 2000)])
SPATIAL = [[(2, 5, 3), (2, 3)], [(3, 65, 4), (3, 4)], [(0, 5, 2), (0, 2)], [(2, 4, 3, 2), (2, 3, 2)]]

CASES = [case(f"ce-{r}-ls{ls}", ce(r, ls), SHAPES) for r in REDUCTIONS for ls in (0.0, 0.1)]
CASES += [
    case("ce-grid-mean-ls0.1", ce("mean", 0.1), GRID, dtypes=["float32"]),
    case("ce-grid-none", ce("none"), GRID, dtypes=["float64"]),
    case("ce-grid-sum-bf16", ce("sum", 0.1), rows((7, 5), (300, 65), (7, 2000)), dtypes=["bfloat16", "float16"]),
    *[case(f"ce-spatial-{r}", ce(r, 0.1), SPATIAL) for r in REDUCTIONS],
    *[case(f"ce-unbatched-{r}", ce(r, 0.1), [[(5,), ()], [(65,), ()]], make_inputs=targets(ignore_frac=0.0))
      for r in REDUCTIONS],
    *[case(f"ce-all-ignored-{r}-ls{ls}", ce(r, ls), rows((7, 5), (3, 65), (2, 2000)),
           make_inputs=targets(all_ignored=True), gradcheck=False)
      for r in REDUCTIONS for ls in (0.0, 0.1)],
    *[case(f"ce-ignore-in-range-{r}", ce(r, 0.1, ignore_index=2), rows((4, 5), (9, 65)),
           make_inputs=targets(ignore_frac=0.4, ignore_index=2)) for r in REDUCTIONS],
    case("ce-int32-targets", ce("mean", 0.1), rows((4, 5), (9, 65)), target_dtype="int32",
         make_inputs=targets(target_dtype="int32")),
    case("ce-uint8-targets", ce("sum"), rows((4, 5), (9, 65)), target_dtype="uint8",
         make_inputs=targets(ignore_frac=0.0, target_dtype="uint8")),
    case("ce-label-smoothing-1", ce("mean", 1.0), rows((4, 5), (7, 65))),
    # NaN logits: NaN loss for counted rows, 0 for ignored ones (forward only: torch's backward turns
    # ignored NaN rows into NaN through log_softmax's backward, the fused one gives them 0 like nll).
    *[case(f"ce-nan-{r}", ce(r, 0.1), rows((4, 5), (3, 2000)), make_inputs=targets(ignore_frac=0.0, nan_rows=True),
           grad=False) for r in REDUCTIONS],
]


@pytest.mark.parametrize("case,shapes,dtype,device,noncontig", params(CASES))
def test_cross_entropy_matches_torch(case, shapes, dtype, device, noncontig):
    check_case(case, shapes, dtype, device, noncontig)


@pytest.mark.parametrize("case,shapes", gradcheck_params(CASES))
def test_cross_entropy_finite_differences(case, shapes):
    finite_difference_check(case, shapes)


def _pair(x, requires_grad=True, device="cpu"):
    t = torch.tensor(x, requires_grad=requires_grad, device=device)
    e = ember.from_numpy(np.array(x, copy=True))
    if device != "cpu":
        e = e.to(device)
    if requires_grad:
        e.requires_grad_(True)
    return t, e


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_double_backward_matches_torch(device, reduction, ls):
    """create_graph: the backward falls back to differentiable ops; second derivatives through both
    the logits and the incoming gradient match torch."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-3, 3, (6, 5))
    t = rng.integers(0, 5, 6)
    t[1] = IGNORE
    w = rng.uniform(-1, 1, (6, 5))
    g0 = rng.uniform(-1, 1, (6,) if reduction == "none" else ())
    res = {}
    for lib in (torch, ember):
        xt, xe = _pair(x, device=device)
        gt, ge = _pair(g0, device=device)
        wt, we = _pair(w, requires_grad=False, device=device)
        tt, te = _pair(t, requires_grad=False, device=device)
        xl, gl, wl, tl = (xt, gt, wt, tt) if lib is torch else (xe, ge, we, te)
        loss = lib.nn.functional.cross_entropy(xl, tl, reduction=reduction, label_smoothing=ls)
        (gx,) = lib.autograd.grad([loss], [xl], grad_outputs=[gl], create_graph=True)
        (gx * wl).sum().backward()
        res[lib] = (gx, xl.grad, gl.grad)
    for what, e, t_ in zip(("grad", "grad of grad w.r.t. x", "grad of grad w.r.t. upstream"), res[ember], res[torch]):
        assert_close(e, t_, "float64", what)


def test_fused_path_records_one_node_and_create_graph_stays_differentiable():
    x = ember.from_numpy(np.random.default_rng(0).standard_normal((4, 5)))
    x.requires_grad_(True)
    loss = EF.cross_entropy(x, ember.from_numpy(np.array([0, 1, IGNORE, 4])))
    assert loss.grad_fn.name() == "Cross_entropy_lossBackward"
    (g,) = ember.autograd.grad([loss], [x], create_graph=True)
    assert g.requires_grad and g.grad_fn is not None
    (g2,) = ember.autograd.grad([loss], [x])
    assert not g2.requires_grad
    np.testing.assert_allclose(to_numpy(g), to_numpy(g2), rtol=1e-12, atol=1e-15)
    assert not to_numpy(g2)[2].any(), "ignored row must get a zero gradient"


def test_nan_logits_give_nan_gradients_for_counted_rows():
    x = np.random.default_rng(1).standard_normal((3, 5))
    x[0, 2] = np.nan
    xe = ember.from_numpy(x)
    xe.requires_grad_(True)
    loss = EF.cross_entropy(xe, ember.from_numpy(np.array([1, 3, 0])), reduction="sum")
    assert np.isnan(to_numpy(loss))
    loss.backward()
    g = to_numpy(xe.grad)
    assert np.isnan(g[0]).all() and np.isfinite(g[1:]).all()


def test_mean_is_deterministic():
    rng = np.random.default_rng(2)
    x = ember.from_numpy(rng.standard_normal((3000, 65)).astype(np.float32))
    t = ember.from_numpy(rng.integers(0, 65, 3000))
    ref = to_numpy(EF.cross_entropy(x, t, label_smoothing=0.1))
    for threads in (1, 2):
        old = ember.get_num_threads()
        ember.set_num_threads(threads)
        try:
            assert to_numpy(EF.cross_entropy(x, t, label_smoothing=0.1)) == ref
        finally:
            ember.set_num_threads(old)


# ---- errors ----------------------------------------------------------------------------------------
def _x(*shape, device="cpu"):
    x = ember.from_numpy(np.zeros(shape, np.float32))
    return x.to(device) if device != "cpu" else x


def _t(*vals, dtype=np.int64, device="cpu"):
    t = ember.from_numpy(np.array(vals, dtype=dtype))
    return t.to(device) if device != "cpu" else t


@pytest.mark.parametrize("device", devices())
def test_out_of_range_targets_raise_index_error(device):
    for reduction in REDUCTIONS:
        with pytest.raises(IndexError, match=r"\[nll_loss\] target 7 is out of bounds for 5 classes"):
            EF.cross_entropy(_x(3, 5, device=device), _t(0, 7, 1, device=device), reduction=reduction)
        with pytest.raises(IndexError, match=r"\[nll_loss\] target -3 is out of bounds for 65 classes"):
            EF.cross_entropy(_x(2, 65, device=device), _t(-3, IGNORE, device=device), reduction=reduction)
        with pytest.raises(IndexError, match=r"target 2000 is out of bounds for 2000 classes"):
            EF.cross_entropy(_x(2, 2000, 1, device=device), _t([3], [2000], device=device), reduction=reduction)
    # a target equal to ignore_index is fine even outside [0, C)
    loss = EF.cross_entropy(_x(2, 5, device=device), _t(7, 1, device=device), ignore_index=7)
    np.testing.assert_allclose(to_numpy(loss), np.log(5.0), rtol=1e-6)


def test_bad_targets_and_arguments_are_clear():
    with pytest.raises(ValueError, match=r"\[nll_loss\] expected target of shape \[3\].*\[3, 4\].*\[2\]"):
        EF.cross_entropy(_x(3, 4), _t(0, 1))
    with pytest.raises(ValueError, match=r"\[nll_loss\] expected target of shape \[2, 3\]"):
        EF.cross_entropy(_x(2, 4, 3), _t(0, 1))
    with pytest.raises(TypeError, match=r"\[nll_loss\] expected class-index targets of an integer dtype"):
        EF.cross_entropy(_x(2, 4), _t(0, 1, dtype=np.bool_))
    with pytest.raises(ValueError, match=r"\[cross_entropy\] class-probability targets must have the input's shape"):
        EF.cross_entropy(_x(2, 4), _x(2, 3))
    with pytest.raises(ValueError, match=r"\[cross_entropy\] weight tensor should be defined either for all 4 classes"):
        EF.cross_entropy(_x(2, 4), _t(0, 1), weight=_x(3))
    with pytest.raises(ValueError, match=r"\[cross_entropy\] label_smoothing must be in \[0, 1\], got 1.5"):
        EF.cross_entropy(_x(2, 4), _t(0, 1), label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"\[cross_entropy\] reduction must be"):
        EF.cross_entropy(_x(2, 4), _t(0, 1), reduction="avg")


def test_op_checks_its_arguments():
    op = ember._C._cross_entropy_loss
    with pytest.raises(ValueError, match=r"\[cross_entropy_loss\] expected logits of shape \[N, C\], got float32\[2, 4, 3\]"):
        op(_x(2, 4, 3), _t(0, 1))
    with pytest.raises(TypeError, match=r"\[cross_entropy_loss\] expected floating-point logits"):
        op(_t([1, 2]), _t(0))
    with pytest.raises(TypeError, match=r"\[cross_entropy_loss\] expected int64 class-index targets, got int32\[2\]"):
        op(_x(2, 4), _t(0, 1, dtype=np.int32))
    with pytest.raises(ValueError, match=r"\[cross_entropy_loss\] expected target of shape \[2\].*got int64\[3\]"):
        op(_x(2, 4), _t(0, 1, 2))
    with pytest.raises(ValueError, match=r"\[cross_entropy_loss\] reduction must be .* got 'avg'"):
        op(_x(2, 4), _t(0, 1), -100, 0.0, "avg")
    with pytest.raises(ValueError, match=r"\[cross_entropy_loss\] label_smoothing must be in \[0, 1\]"):
        op(_x(2, 4), _t(0, 1), -100, -0.5, "mean")


# ---- CUDA graphs (skipped without a GPU) ------------------------------------------------------------
@pytest.mark.skipif("cuda" not in devices(), reason="needs a CUDA GPU and CUDA torch")
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_capture_replays_forward_and_backward(reduction):
    """Captured: no host sync (target validation is skipped and out-of-range rows count as ignored)."""
    rng = np.random.default_rng(4)
    x = ember.from_numpy(rng.standard_normal((64, 65)).astype(np.float32)).cuda()
    x.requires_grad_(True)
    t = ember.from_numpy(rng.integers(0, 65, 64)).cuda()
    g = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g):
        loss = EF.cross_entropy(x, t, reduction=reduction, label_smoothing=0.1)
        (gx,) = ember.autograd.grad([loss], [x], grad_outputs=[ember.ones_like(loss)])
    for _ in range(2):
        new_t = rng.integers(0, 65, 64)
        new_t[:3] = [IGNORE, 65, -7]  # out of range inside the graph: treated as ignored
        t.copy_(ember.from_numpy(new_t).cuda())
        g.replay()
        ember.cuda.synchronize()
        ref_t = new_t.copy()
        ref_t[1:3] = IGNORE
        xt = torch.tensor(to_numpy(x), requires_grad=True)
        lt = torch.nn.functional.cross_entropy(xt, torch.from_numpy(ref_t), reduction=reduction, label_smoothing=0.1)
        (gt,) = torch.autograd.grad([lt], [xt], grad_outputs=[torch.ones_like(lt)])
        assert_close(loss, lt, "float32", "captured loss")
        assert_close(gx, gt, "float32", "captured grad")
