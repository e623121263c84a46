"""The fused Adam/AdamW step (ember._C._adam_step_, Note [Fused Adam step]) against torch.optim:
parameter and state trajectories over several steps for every param dtype, the strided and CUDA
kernels, errors, checkpoints holding int steps, and a CUDA-graph-captured AdamW step that must read a
fresh step count on every replay (a step count frozen into the graph was the bug this op fixes)."""

import numpy as np
import pytest
import torch

import ember
import ember.optim as eoptim
from numcheck.seeds import case_seed, replay_hint

CUDA = ember.cuda.is_available()
DEVICES = ["cpu"] + (["cuda"] if CUDA else [])
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")

# (5, 7) small, () 0-dim, (0, 3) empty, (300, 130) above the CPU grain size: split over threads.
SHAPES = [(5, 7), (), (0, 3), (300, 130)]
OPT_CASES = [
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, weight_decay=0.1, betas=(0.8, 0.95), eps=1e-6)),
    ("Adam", dict(lr=0.01, maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.05, maximize=True, betas=(0.3, 0.6))),  # lerp weight >= 0.5
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, weight_decay=0.3, betas=(0.9, 0.99))),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, maximize=True)),
]
MANTISSA_BITS = {"float16": 10, "bfloat16": 7}


def _to_ember(a, dtype, device="cpu"):
    return ember.from_numpy(np.array(a)).to(getattr(ember, dtype)).to(device)  # a copy: from_numpy shares memory


def _np(t):
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().double().numpy()
    return t.detach().cpu().to(ember.float64).numpy()


def _problem(shapes, steps, seed):
    rng = np.random.default_rng(seed)
    inits = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(steps)]
    return inits, grads


def _run_torch(name, kwargs, dtype, inits, grads, fused=False):
    params = [torch.nn.Parameter(torch.from_numpy(np.array(a)).to(getattr(torch, dtype))) for a in inits]
    opt = getattr(torch.optim, name)(params, **kwargs, **({"fused": True} if fused else {}))
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = torch.from_numpy(np.array(g)).to(getattr(torch, dtype))
        opt.step()
    return params, [opt.state[p] for p in params]


def _run_ember(name, kwargs, dtype, inits, grads, device="cpu", **opt_kwargs):
    params = [ember.nn.Parameter(_to_ember(a, dtype, device)) for a in inits]
    opt = getattr(eoptim, name)(params, **kwargs, **opt_kwargs)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = _to_ember(g, dtype, device)
        opt.step()
    return params, [opt.state[id(p)] for p in params]


def _assert_close(actual, expected, dtype, what):
    a, e = _np(actual), _np(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    if dtype in MANTISSA_BITS:
        # Both round float math once per stored value, but a one-ulp tie flip (FMA, vector code) in an
        # early step can grow over later steps; rounding every op (torch's default) is thousands off.
        # Ulps of values under 1/16 count as ulps of 1/16: a flip moves a param by ~lr ulps, not |p| ulps.
        ulps = np.abs(a - e) / np.exp2(np.floor(np.log2(np.maximum(np.abs(e), 2.0 ** -4))) - MANTISSA_BITS[dtype])
        assert ulps.size == 0 or (ulps.max() <= 4 and (ulps > 1).mean() <= 5e-3), (
            f"{what}: up to {ulps.max():.3g} ulps apart, {int((ulps > 1).sum())}/{ulps.size} elements above one ulp")
    else:
        tol = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-13)}[dtype]
        np.testing.assert_allclose(a, e, err_msg=what, **tol)


@pytest.fixture
def fused_calls(monkeypatch):
    """Counts the calls of the fused op (so a test can tell the fused path ran)."""
    calls = []
    real = ember._C._adam_step_

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(ember._C, "_adam_step_", counting)
    return calls


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
@pytest.mark.parametrize("name,kwargs", OPT_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPT_CASES)])
def test_fused_adam_matches_torch(name, kwargs, dtype, fused_calls):
    """float32/float64 against torch's default (single-tensor) Adam; half types against torch's fused
    CPU kernel, which also computes in float and rounds once (torch's default rounds every op)."""
    steps, seed = 6, case_seed("fused adam", name, str(kwargs), dtype)
    inits, grads = _problem(SHAPES, steps, seed)
    tp, tstate = _run_torch(name, kwargs, dtype, inits, grads, fused=dtype in MANTISSA_BITS)
    ep, estate = _run_ember(name, kwargs, dtype, inits, grads)
    assert len(fused_calls) == steps * len(SHAPES)
    for i, (pt, pe, st, se) in enumerate(zip(tp, ep, tstate, estate)):
        where = f"shape {SHAPES[i]} seed {seed}{replay_hint()}"
        _assert_close(pe, pt, dtype, f"param, {where}")
        _assert_close(se["exp_avg"], st["exp_avg"], dtype, f"exp_avg, {where}")
        _assert_close(se["exp_avg_sq"], st["exp_avg_sq"], dtype, f"exp_avg_sq, {where}")
        step = se["step"]
        assert step.dim() == 0 and step.dtype == ember.float32 and float(step.item()) == float(st["step"]) == steps


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,kwargs", [OPT_CASES[1], OPT_CASES[5]], ids=["Adam", "AdamW"])
def test_python_path_matches_fused(name, kwargs, dtype, fused_calls):
    """fused=False keeps the Python loop (the amsgrad path) on the same tensor step state."""
    inits, grads = _problem(SHAPES[:2], 5, seed=7)
    fp, fstate = _run_ember(name, kwargs, dtype, inits, grads)
    n_fused = len(fused_calls)
    pp, pstate = _run_ember(name, kwargs, dtype, inits, grads, fused=False)
    assert len(fused_calls) == n_fused  # the second run never called the fused op
    for a, b, sa, sb in zip(pp, fp, pstate, fstate):
        _assert_close(a, b, dtype, "param")
        assert sa["step"].dtype == ember.float32 and float(sa["step"].item()) == 5


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
def test_adam_step_on_strided_and_misaligned_tensors(device, dtype):
    """Transposed and offset (unaligned) views take the strided kernel and give the contiguous result."""
    rng = np.random.default_rng(3)
    p0, m0, v0 = rng.standard_normal((9, 6)), rng.standard_normal((9, 6)) * 0.1, rng.random((9, 6))
    grads = [rng.standard_normal((9, 6)) for _ in range(3)]
    kw = dict(lr=0.05, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1, decoupled=False, maximize=False)

    def run(make):
        p, m, v = make(p0), make(m0), make(v0)
        step = ember.zeros((), dtype=ember.float32, device=device)
        for g in grads:
            ember._C._adam_step_(p, make(g), m, v, step, **kw)
        return p, m, v, step

    def transposed(a):  # same values, column-major
        return _to_ember(np.ascontiguousarray(a.T), dtype, device).t()

    def offset(a):  # contiguous, but one element into its buffer: not 16-byte aligned
        buf = _to_ember(np.concatenate([[0.0], a.reshape(-1)]), dtype, device)
        return buf[1:].view(9, 6)

    ref = run(lambda a: _to_ember(a, dtype, device))
    for make in (transposed, offset):
        out = run(make)
        assert not out[0].is_contiguous() or make is offset
        for a, b, what in zip(out[:3], ref[:3], ["param", "exp_avg", "exp_avg_sq"]):
            _assert_close(a, b, dtype, f"{make.__name__} {what}")
        assert float(out[3].item()) == 3.0


@needs_cuda
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
@pytest.mark.parametrize("name,kwargs", [OPT_CASES[1], OPT_CASES[3], OPT_CASES[6]], ids=["Adam", "Adam-max", "AdamW"])
def test_cuda_matches_cpu(name, kwargs, dtype):
    """One-block grids (the kernel writes the step itself) and larger ones (a second kernel does),
    an empty param (only the count advances) and a strided one."""
    shapes = [(3,), (1000,), (70003,), (0,), ()]
    inits, grads = _problem(shapes, 4, seed=11)
    cp, cstate = _run_ember(name, kwargs, dtype, inits, grads, device="cpu")
    gp, gstate = _run_ember(name, kwargs, dtype, inits, grads, device="cuda")
    for i, (a, b, sa, sb) in enumerate(zip(gp, cp, gstate, cstate)):
        assert a.device == ember.device("cuda:0") and sa["step"].device == a.device
        _assert_close(a, b, dtype, f"param {shapes[i]}")
        _assert_close(sa["exp_avg_sq"], sb["exp_avg_sq"], dtype, f"exp_avg_sq {shapes[i]}")
        assert float(sa["step"].item()) == 4.0


def _args(shape=(4, 3), dtype=ember.float32, device="cpu"):
    return [ember.randn(shape, dtype=dtype, device=device) for _ in range(4)] + [
        ember.zeros((), dtype=ember.float32, device=device)]


HYPER = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=True, maximize=False)


# case -> (argument index, its replacement given the valid arguments, exception, message after "[adam_step] ")
ERROR_CASES = {
    "grad-shape": (1, lambda a: ember.randn(4, 2), RuntimeError, "expected grad of the param's shape"),
    "state-dtype": (2, lambda a: a[2].double(), TypeError, "expected exp_avg of the param's dtype"),
    "state-shape": (3, lambda a: ember.randn(3, 4), RuntimeError, "expected exp_avg_sq of the param's shape"),
    "step-dtype": (4, lambda a: ember.zeros(()).double(), RuntimeError, "expected step to be a 0-dim float32"),
    "step-shape": (4, lambda a: ember.zeros(1), RuntimeError, "expected step to be a 0-dim float32"),
    "aliased-state": (3, lambda a: a[2], RuntimeError, "exp_avg and exp_avg_sq share memory"),
    "expanded-state": (2, lambda a: ember.zeros(3).expand(4, 3), RuntimeError, "exp_avg has overlapping elements"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_adam_step_errors_name_the_op_and_leave_tensors_alone(case):
    index, replacement, exc, message = ERROR_CASES[case]
    args = _args()
    args[index] = replacement(args)
    before = [_np(t).copy() for t in args]
    with pytest.raises(exc, match=r"\[adam_step\] " + message):
        ember._C._adam_step_(*args, **HYPER)
    for t, b in zip(args, before):
        np.testing.assert_array_equal(_np(t), b)


def test_adam_step_rejects_bad_params_and_hyperparameters():
    with pytest.raises(TypeError, match=r"\[adam_step\] expected a floating point param"):
        ember._C._adam_step_(*[ember.ones(3, dtype=ember.int64)] * 4, ember.zeros(()), **HYPER)
    for key, value, pattern in [("lr", -1.0, "learning rate"), ("eps", -1e-8, "epsilon"), ("beta2", 1.0, "beta"),
                                ("weight_decay", -0.1, "weight_decay")]:
        with pytest.raises(ValueError, match=rf"\[adam_step\] invalid {pattern}"):
            ember._C._adam_step_(*_args(), **{**HYPER, key: value})
    p = ember.nn.Parameter(ember.randn(3))  # a leaf that requires grad, outside no_grad: like torch's in-place ops
    with pytest.raises(RuntimeError, match=r"\[adam_step_\] a leaf Variable that requires grad"):
        ember._C._adam_step_(p, ember.randn(3), ember.zeros(3), ember.zeros(3), ember.zeros(()), **HYPER)


@needs_cuda
def test_adam_step_device_mismatch_is_clear():
    args = _args(device="cuda")
    args[4] = ember.zeros(())
    with pytest.raises(RuntimeError, match=r"\[adam_step\] expected step on the param's device"):
        ember._C._adam_step_(*args, **HYPER)
    args = _args(device="cuda")
    args[1] = ember.randn(4, 3)
    with pytest.raises(RuntimeError, match=r"\[adam_step\] expected grad on the param's device"):
        ember._C._adam_step_(*args, **HYPER)


def _train(opt, params, grads):
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = _to_ember(g, "float32")
        opt.step()


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_checkpoint_with_int_steps_resumes_exactly(name):
    """Checkpoints written when state["step"] was a Python int still load: the step becomes a 0-dim
    float32 tensor (on the param's device), copied, so two optimizers never share a count."""
    inits, grads = _problem([(4, 5), (5,)], 6, seed=5)
    straight = [ember.nn.Parameter(_to_ember(a, "float32")) for a in inits]
    _train(getattr(eoptim, name)(straight, lr=0.01, weight_decay=0.1), straight, grads)

    first = [ember.nn.Parameter(_to_ember(a, "float32")) for a in inits]
    opt = getattr(eoptim, name)(first, lr=0.01, weight_decay=0.1)
    _train(opt, first, grads[:3])
    sd = opt.state_dict()
    assert all(s["step"].dim() == 0 and float(s["step"].item()) == 3 for s in sd["state"].values())
    old = {"param_groups": sd["param_groups"],
           "state": {k: {**s, "step": int(s["step"].item())} for k, s in sd["state"].items()}}

    resumed = [ember.nn.Parameter(p.detach().clone()) for p in first]
    opt2 = getattr(eoptim, name)(resumed, lr=0.01, weight_decay=0.1)
    opt2.load_state_dict(old)
    twin = getattr(eoptim, name)([ember.nn.Parameter(p.detach().clone()) for p in first], lr=0.01)
    twin.load_state_dict(sd)
    for p in resumed:
        step = opt2.state[id(p)]["step"]
        assert isinstance(step, ember.Tensor) and step.dim() == 0 and step.dtype == ember.float32
    _train(opt2, resumed, grads[3:])
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(_np(a), _np(b))
    # opt2's updates did not touch the other optimizers' counts
    assert all(float(s["step"].item()) == 3 for s in sd["state"].values())
    assert all(float(twin.state[id(p)]["step"].item()) == 3 for p in twin.param_groups[0]["params"])


@needs_cuda
def test_graphed_adamw_step_sees_a_fresh_step_count_on_every_replay():
    """make_graphed_step captures forward, backward and AdamW once; 5 replays must equal 5 eager steps of
    a twin model. With the step count on the host, every replay re-used the capture-time bias corrections."""
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((32, 8)).astype(np.float32), rng.standard_normal((32, 4)).astype(np.float32))
               for _ in range(6)]
    cuda = lambda a: ember.from_numpy(a).cuda()  # noqa: E731

    def make():
        ember.manual_seed(0)
        return ember.nn.Sequential(ember.nn.Linear(8, 16), ember.nn.Tanh(), ember.nn.Linear(16, 4)).cuda()

    graphed, eager = make(), make()
    eager.load_state_dict(graphed.state_dict())
    opt_g = eoptim.AdamW(graphed.parameters(), lr=0.02, weight_decay=0.1)
    opt_e = eoptim.AdamW(eager.parameters(), lr=0.02, weight_decay=0.1)

    def train_step(model, opt, x, t):
        opt.zero_grad(set_to_none=False)  # grads must stay in the tensors the graph captured
        loss = ((model(x) - t) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    x0, t0 = cuda(batches[0][0]), cuda(batches[0][1])
    run = ember.cuda.make_graphed_step(lambda x, t: train_step(graphed, opt_g, x, t), [x0.clone(), t0.clone()],
                                       warmup=3)
    for _ in range(3):  # the warm-up steps make_graphed_step ran
        train_step(eager, opt_e, x0, t0)
    for xb, tb in batches[1:]:
        loss_g = float(run(cuda(xb), cuda(tb)).item())
        loss_e = float(train_step(eager, opt_e, cuda(xb), cuda(tb)).item())
        assert loss_g == pytest.approx(loss_e, rel=1e-5, abs=1e-6)
    ember.cuda.synchronize()
    for pg, pe in zip(graphed.parameters(), eager.parameters()):
        np.testing.assert_allclose(_np(pg), _np(pe), rtol=1e-5, atol=1e-6)
        assert float(opt_g.state[id(pg)]["step"].item()) == 8.0
