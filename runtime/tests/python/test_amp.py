"""Mixed precision against PyTorch: which ops autocast runs in which dtype (one table for every
device: CPU bfloat16 here, CUDA float16/bfloat16 where a GPU is present), values to the autocast
dtype's precision, gradients flowing back to float32 parameters, nesting and the cast cache; and
GradScaler's sequence (inf/NaN skipping, backoff, growth, unscale_, state_dict) step for step."""
import pickle
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import ember
import ember.nn.functional as EF


def to_lib(lib, a: np.ndarray, dtype: str, device: str):
    if lib is torch:
        return torch.from_numpy(a.copy()).to(device=device, dtype=getattr(torch, dtype))
    return ember.from_numpy(a.copy()).to(getattr(ember, dtype)).to(device)


def host(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().float().cpu().numpy() if t.dtype != torch.float64 else t.detach().cpu().numpy()
    t = t.detach()
    t = t.to(ember.float32) if t.dtype in (ember.bfloat16, ember.float16) else t
    return t.to("cpu").numpy()


def dtype_name(t) -> str:
    return str(t.dtype).split(".")[-1]


@dataclass(frozen=True)
class AmpCase:
    name: str
    fn: Callable            # fn(lib, F, *tensors)
    shapes: tuple           # input shapes; ints are made into class targets
    targets: tuple = ()     # (position, classes) of int64 target inputs


def lin(lib, F, x, w, b):
    return F.linear(x, w, b)


CASES = [
    AmpCase("mm", lambda lib, F, a, b: lib.mm(a, b), ((3, 4), (4, 5))),
    AmpCase("Tensor.mm", lambda lib, F, a, b: a.mm(b), ((3, 4), (4, 5))),
    AmpCase("matmul", lambda lib, F, a, b: lib.matmul(a, b), ((2, 3, 4), (4, 5))),
    AmpCase("@", lambda lib, F, a, b: a @ b, ((3, 4), (4, 5))),
    AmpCase("bmm", lambda lib, F, a, b: lib.bmm(a, b), ((2, 3, 4), (2, 4, 5))),
    AmpCase("addmm", lambda lib, F, c, a, b: lib.addmm(c, a, b), ((5,), (3, 4), (4, 5))),
    AmpCase("linear", lin, ((3, 4), (5, 4), (5,))),
    AmpCase("sdpa", lambda lib, F, q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
            ((1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4))),
    AmpCase("softmax", lambda lib, F, x: F.softmax(x, -1), ((3, 4),)),
    AmpCase("Tensor.softmax", lambda lib, F, x: x.softmax(-1), ((3, 4),)),
    AmpCase("log_softmax", lambda lib, F, x: F.log_softmax(x, -1), ((3, 4),)),
    AmpCase("exp", lambda lib, F, x: lib.exp(x), ((3, 4),)),
    AmpCase("log", lambda lib, F, x: (x.abs() + 1).log(), ((3, 4),)),
    AmpCase("rsqrt", lambda lib, F, x: lib.rsqrt(x.abs() + 1), ((3, 4),)),
    AmpCase("pow", lambda lib, F, x: x.pow(2), ((3, 4),)),
    AmpCase("sum", lambda lib, F, x: x.sum(), ((3, 4),)),
    AmpCase("sum(dtype=)", lambda lib, F, x: lib.sum(x, 0, dtype=lib.float64), ((3, 4),)),
    AmpCase("mean", lambda lib, F, x: x.mean(), ((3, 4),)),
    AmpCase("prod", lambda lib, F, x: lib.prod(x), ((3, 4),)),
    AmpCase("tanh", lambda lib, F, x: lib.tanh(x), ((3, 4),)),
    AmpCase("gelu", lambda lib, F, x: F.gelu(x), ((3, 4),)),
    AmpCase("layer_norm", lambda lib, F, x, w, b: F.layer_norm(x, (4,), w, b), ((3, 4), (4,), (4,))),
    AmpCase("cross_entropy", lambda lib, F, x, t: F.cross_entropy(x, t), ((3, 4), (3,)), ((1, 4),)),
    AmpCase("nll_loss", lambda lib, F, x, t: F.nll_loss(x, t), ((3, 4), (3,)), ((1, 4),)),
    AmpCase("mse_loss", lambda lib, F, a, b: F.mse_loss(a, b), ((3, 4), (3, 4))),
    AmpCase("l1_loss", lambda lib, F, a, b: F.l1_loss(a, b), ((3, 4), (3, 4))),
    AmpCase("bce_with_logits", lambda lib, F, a, b: F.binary_cross_entropy_with_logits(a, b.sigmoid()),
            ((3, 4), (3, 4))),
    AmpCase("cat", lambda lib, F, a, b: lib.cat([a, b]), ((3, 4), (2, 4))),
    AmpCase("stack", lambda lib, F, a, b: lib.stack([a, b]), ((3, 4), (3, 4))),
    AmpCase("relu", lambda lib, F, x: F.relu(x), ((3, 4),)),
]

# The (device, autocast dtype) pairs this machine can run, for ember and torch alike.
DEVICES = [("cpu", "bfloat16"), ("cpu", "float16")]
if ember.cuda.is_available() and torch.cuda.is_available():
    DEVICES += [("cuda", "float16"), ("cuda", "bfloat16")]
INPUT_DTYPES = ["float32", "bfloat16", "float64"]
TOL = {"bfloat16": dict(rtol=2e-2, atol=2e-2), "float16": dict(rtol=4e-3, atol=4e-3),
       "float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-9, atol=1e-10)}


def run_case(lib, case: AmpCase, device: str, amp_dtype: str, in_dtype: str, rng_seed: int):
    rng = np.random.default_rng(rng_seed)
    F = TF if lib is torch else EF
    args = []
    targets = dict(case.targets)
    for i, shape in enumerate(case.shapes):
        if i in targets:
            a = rng.integers(0, targets[i], size=shape).astype(np.int64)
            args.append(torch.from_numpy(a).to(device) if lib is torch else ember.from_numpy(a).to(device))
        else:
            args.append(to_lib(lib, rng.standard_normal(shape).astype(np.float32), in_dtype, device))
    with lib.autocast(device, dtype=getattr(lib, amp_dtype)):
        return case.fn(lib, F, *args)


@pytest.mark.parametrize("device,amp_dtype", DEVICES)
@pytest.mark.parametrize("in_dtype", INPUT_DTYPES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_autocast_dtype_and_values_match_torch(case, device, amp_dtype, in_dtype):
    try:
        expected = run_case(torch, case, device, amp_dtype, in_dtype, 0)
    except RuntimeError as e:  # torch's promote rule knows only its own autocast dtype (bfloat16 under float16)
        pytest.skip(f"torch raises here: {e}")
    got = run_case(ember, case, device, amp_dtype, in_dtype, 0)
    assert dtype_name(got) == dtype_name(expected), f"{case.name}: ember ran in {got.dtype}, torch in {expected.dtype}"
    assert tuple(got.shape) == tuple(expected.shape)
    # Compare at the precision the result was computed in (float64 inputs are never cast).
    out_dtype = dtype_name(got)
    tol = TOL["float64"] if in_dtype == "float64" else TOL[out_dtype if out_dtype in ("bfloat16", "float16")
                                                          else "float32"]
    np.testing.assert_allclose(host(got), host(expected), **tol)


def test_autocast_backward_reaches_float32_params_in_float32():
    torch.manual_seed(0)
    tl = torch.nn.Linear(4, 3)
    el = ember.nn.Linear(4, 3)
    el.load_state_dict({k: ember.from_numpy(v.detach().numpy().copy()) for k, v in tl.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    for lib, layer in ((torch, tl), (ember, el)):
        with lib.autocast("cpu", dtype=lib.bfloat16):
            out = layer(to_lib(lib, x, "float32", "cpu"))
            loss = (lib.nn.functional if lib is ember else TF).mse_loss(out, out.detach() * 0)
        assert dtype_name(out) == "bfloat16" and dtype_name(loss) == "float32"
        loss.backward()
    for (n, tp), (_, ep) in zip(tl.named_parameters(), el.named_parameters()):
        assert ep.grad.dtype == ember.float32, n
        np.testing.assert_allclose(host(ep.grad), host(tp.grad), rtol=2e-2, atol=2e-2)


def test_autocast_nesting_decorator_and_state():
    a, b = ember.randn(2, 3), ember.randn(3, 2)
    assert not ember.is_autocast_enabled("cpu")
    with ember.autocast("cpu"):
        assert ember.is_autocast_enabled("cpu") and ember.get_autocast_dtype("cpu") == ember.bfloat16
        assert (a @ b).dtype == ember.bfloat16
        with ember.autocast("cpu", enabled=False):
            assert (a @ b).dtype == ember.float32
            assert not ember.is_autocast_enabled("cpu")
        with ember.amp.autocast("cpu", dtype=ember.float16):
            assert ember.mm(a, b).dtype == ember.float16
        assert ember.mm(a, b).dtype == ember.bfloat16
    assert (a @ b).dtype == ember.float32 and not ember.is_autocast_enabled("cpu")

    @ember.autocast("cpu")
    def f(x, y):
        return x @ y
    assert f(a, b).dtype == ember.bfloat16
    with ember.cpu.amp.autocast():
        assert (a @ b).dtype == ember.bfloat16
    # CUDA autocast leaves CPU tensors alone (and, without a GPU, disables itself with a warning).
    with pytest.warns(UserWarning) if not ember.cuda.is_available() else _nullcontext():
        with ember.autocast("cuda"):
            assert (a @ b).dtype == ember.float32
    with pytest.warns(UserWarning, match="not supported"):
        ember.autocast("cpu", dtype=ember.float64)
    with pytest.raises(RuntimeError, match="device_type"):
        ember.autocast("tpu")


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_autocast_caches_parameter_casts_within_a_region():
    w = ember.nn.Parameter(ember.randn(3, 3))
    x = ember.randn(2, 3)
    from ember.amp import autocast_mode
    with ember.autocast("cpu"):
        y1 = x @ w
        cached = len(autocast_mode._state.cache)
        y2 = x @ w
        assert len(autocast_mode._state.cache) == cached == 1  # w cast once; x (not a leaf param) never cached
        assert np.array_equal(host(y1), host(y2))
    assert len(autocast_mode._state.cache) == 0
    with ember.autocast("cpu", cache_enabled=False):
        x @ w
        assert len(autocast_mode._state.cache) == 0


def test_lstm_runs_in_autocast_dtype_like_torch():
    torch.manual_seed(0)
    for kind in ("LSTM", "GRU"):
        tm = getattr(torch.nn, kind)(4, 3)
        em = getattr(ember.nn, kind)(4, 3)
        em.load_state_dict({k: ember.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
        x = np.random.default_rng(0).standard_normal((5, 2, 4)).astype(np.float32)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            t_out = tm(torch.from_numpy(x))[0]
        with ember.autocast("cpu", dtype=ember.bfloat16):
            e_out = em(ember.from_numpy(x))[0]
        assert dtype_name(e_out) == dtype_name(t_out), kind
        np.testing.assert_allclose(host(e_out), host(t_out), rtol=3e-2, atol=3e-2)


# ---- GradScaler ---------------------------------------------------------------------------------

def scaler_run(lib, steps, poison, **kw):
    """A tiny model trained with GradScaler; `poison` holds the steps whose gradients get an inf or NaN.
    Returns per-step (scale, growth tracker, weight values) and the final state_dict."""
    torch.manual_seed(0)
    tl = torch.nn.Linear(3, 2)
    if lib is torch:
        model = tl
    else:
        model = ember.nn.Linear(3, 2)
        model.load_state_dict({k: ember.from_numpy(v.detach().numpy().copy()) for k, v in tl.state_dict().items()})
    opt = lib.optim.SGD(model.parameters(), lr=0.1)
    scaler = lib.amp.GradScaler("cpu", **kw)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    trace = []
    for step in range(steps):
        opt.zero_grad()
        loss = model(to_lib(lib, x, "float32", "cpu")).pow(2).mean()
        scaler.scale(loss).backward()
        if step in poison:
            with lib.no_grad():
                model.weight.grad[0, 0] = poison[step]
        if step % 3 == 1:  # unscale_ first (as for gradient clipping) on some steps
            scaler.unscale_(opt)
        scaler.step(opt)
        scaler.update()
        trace.append((scaler.get_scale(), scaler._get_growth_tracker(), host(model.weight).copy()))
    return trace, scaler.state_dict()


def test_grad_scaler_sequence_matches_torch():
    poison = {2: float("inf"), 3: float("nan"), 7: float("-inf")}
    kw = dict(init_scale=2.0 ** 10, growth_factor=4.0, backoff_factor=0.25, growth_interval=2)
    t_trace, t_state = scaler_run(torch, 12, poison, **kw)
    e_trace, e_state = scaler_run(ember, 12, poison, **kw)
    scales = [s for s, _, _ in t_trace]
    assert len(set(scales)) > 2  # the run both backs off and grows
    for step, ((ts, tg, tw), (es, eg, ew)) in enumerate(zip(t_trace, e_trace)):
        assert es == ts and eg == tg, f"step {step}"
        np.testing.assert_allclose(ew, tw, rtol=1e-5, atol=1e-6, err_msg=f"step {step}")
    assert e_state == t_state


def test_grad_scaler_growth_stops_at_inf_and_state_dict_roundtrip():
    s = ember.amp.GradScaler("cpu", init_scale=3e38, growth_factor=2.0, growth_interval=1)
    p = ember.nn.Parameter(ember.ones(2))
    opt = ember.optim.SGD([p], lr=0.0)
    (s.scale(p.sum()) * 0).backward()
    s.step(opt)
    s.update()
    assert s.get_scale() == np.float32(3e38) and s._get_growth_tracker() == 0  # grown scale would be inf
    state = s.state_dict()
    t = torch.amp.GradScaler("cpu")
    t.load_state_dict(state)
    assert t.state_dict() == state
    s2 = ember.amp.GradScaler("cpu")
    s2.load_state_dict(t.state_dict())
    assert s2.state_dict() == state
    s3 = pickle.loads(pickle.dumps(s))
    assert s3.state_dict() == state


def test_grad_scaler_errors_and_disabled():
    p = ember.nn.Parameter(ember.ones(2))
    opt = ember.optim.SGD([p], lr=0.1)
    s = ember.amp.GradScaler("cpu")
    with pytest.raises(RuntimeError, match="_scale is None"):
        s.step(opt)
    s.scale(p.sum()).backward()
    s.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        s.unscale_(opt)
    s.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        s.step(opt)
    with pytest.raises(RuntimeError, match="after step"):
        s.unscale_(opt)
    with pytest.raises(RuntimeError, match="Closure"):
        s.step(opt, closure=lambda: 0)
    with pytest.raises(ValueError, match="growth factor"):
        ember.amp.GradScaler("cpu", growth_factor=0.5)
    off = ember.amp.GradScaler("cpu", enabled=False)
    loss = p.sum()
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {}
    scaled = s.scale([p.sum(), (p * 2).sum()])
    assert isinstance(scaled, list) and len(scaled) == 2
    assert issubclass(ember.cuda.amp.GradScaler, ember.amp.GradScaler)


def test_is_bf16_supported_and_tf32_flag():
    assert ember.cuda.is_bf16_supported() == (ember.cuda.is_available() and ember.cuda.is_bf16_supported())
    if not ember.cuda.is_available():
        assert ember.cuda.is_bf16_supported() is False
