"""Adam, AdamW and SGD against torch.optim across ember's implementations (Note [Optimizer
implementations] in ember/optim/optimizer.py): default, foreach, fused and per-parameter, crossed with
amsgrad, maximize, weight decay, capturable and a tensor lr, on a mix of shapes (0-size and 0-dim
included) in two param groups with different hyperparameters and a param whose gradient appears two
steps late. Also state_dict round trips mid-run (ember to ember and torch to ember, torch's keys),
the combinations torch rejects, LR schedulers writing tensor lrs in place, and a CUDA graph of a
training step with capturable AdamW following an LR scheduler between replays. One table runs on
the CPU and, when there is one, on CUDA (torch runs on the CPU: the reference math is the same)."""
import numpy as np
import pytest
import torch

import ember
from numcheck.seeds import case_seed, replay_hint

CUDA = ember.cuda.is_available()
DEVICES = ["cpu"] + (["cuda"] if CUDA else [])
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")

SHAPES = [(5, 7), (), (0, 3), (300, 130), (17,)]
GROUPS = [[0, 1, 2], [3, 4]]  # param indices of the two groups
LATE = 4                      # this param has no gradient for the first LATE_STEPS steps (skipped)
LATE_STEPS = 2
STEPS = 6

CASES = [
    ("Adam", {}),
    ("Adam", dict(weight_decay=0.1, betas=(0.8, 0.95), eps=1e-6)),
    ("Adam", dict(amsgrad=True)),
    ("Adam", dict(amsgrad=True, maximize=True, weight_decay=0.05)),
    ("AdamW", {}),
    ("AdamW", dict(amsgrad=True, weight_decay=0.2)),
    ("AdamW", dict(maximize=True, betas=(0.3, 0.6))),  # lerp weight >= 0.5
    ("SGD", {}),
    ("SGD", dict(momentum=0.9, weight_decay=0.01)),
    ("SGD", dict(momentum=0.9, nesterov=True, maximize=True)),
    ("SGD", dict(momentum=0.5, dampening=0.3, weight_decay=0.1)),
]
IMPLS = {"default": {}, "foreach": dict(foreach=True), "fused": dict(fused=True), "per-param": dict(foreach=False)}
BASE_LR = {"Adam": 0.01, "AdamW": 0.01, "SGD": 0.05}


def _valid(device, name, impl, capturable, tensor_lr):
    """The combinations torch accepts (the others are in test_combinations_torch_rejects_raise_alike)."""
    if capturable and (name == "SGD" or (device == "cpu" and impl != "fused")):
        return False
    return not (tensor_lr and impl == "foreach" and not capturable)


def _table_id(device, name, i, impl, capturable, tensor_lr):
    return f"{device}-{name}{i}-{impl}" + ("-capturable" if capturable else "") + ("-lrtensor" if tensor_lr else "")


TABLE = [pytest.param(device, name, kwargs, impl, capturable, tensor_lr,
                      id=_table_id(device, name, i, impl, capturable, tensor_lr))
         for device in DEVICES for i, (name, kwargs) in enumerate(CASES) for impl in IMPLS
         for capturable in (False, True) for tensor_lr in (False, True)
         if _valid(device, name, impl, capturable, tensor_lr)]


def _problem(seed, shapes=SHAPES, steps=STEPS):
    rng = np.random.default_rng(seed)
    inits = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) if not (i == LATE and t < LATE_STEPS) else None
              for i, s in enumerate(shapes)] for t in range(steps)]
    return inits, grads


def _group_options(name, lr):
    """Group 1 differs from group 0 (the constructor's defaults) in lr, weight decay and betas."""
    second = dict(lr=lr * 0.5, weight_decay=0.05)
    if name != "SGD":
        second["betas"] = (0.85, 0.99)
    return [{}, second]


def _to(lib, a, device):
    if lib is torch:
        return torch.from_numpy(a.copy())
    return ember.from_numpy(a.copy()).to(device)


def _optimizer(lib, name, kwargs, params, lr=None, **flags):
    """An optimizer over the two groups of `params`; `lr` (a number or a tensor) is group 0's."""
    base = BASE_LR[name]
    groups = [{"params": [params[i] for i in idx], **opts} for idx, opts in zip(GROUPS, _group_options(name, base))]
    return getattr(lib.optim, name)(groups, lr=base if lr is None else lr, **kwargs, **flags)


def _make(lib, name, kwargs, inits, device="cpu", lr=None, **flags):
    params = [lib.nn.Parameter(_to(lib, a, device)) for a in inits]
    return params, _optimizer(lib, name, kwargs, params, lr, **flags)


def _train(lib, params, opt, grads, device="cpu"):
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = None if g is None else _to(lib, g, device)
        opt.step()


def _np(t):
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().double().numpy()
    return t.detach().cpu().to(ember.float64).numpy()


def _state_of(lib, opt, p):
    return opt.state[p] if lib is torch else opt.state.get(id(p), {})


def _assert_matches(tparams, topt, eparams, eopt, what):
    for i, (pt, pe) in enumerate(zip(tparams, eparams)):
        where = f"{what}, param {i} {SHAPES[i]}{replay_hint()}"
        np.testing.assert_allclose(_np(pe), _np(pt), rtol=1e-5, atol=1e-6, err_msg=where)
        st, se = _state_of(torch, topt, pt), _state_of(ember, eopt, pe)
        assert sorted(se) == sorted(st), f"{where}: state keys {sorted(se)} != torch's {sorted(st)}"
        for key, tv in st.items():
            if key == "step":
                assert se[key].dtype == ember.float32 and se[key].device == pe.device, where
                assert float(se[key].item()) == float(tv), f"{where}: step {se[key].item()} != {tv}"
            else:
                np.testing.assert_allclose(_np(se[key]), _np(tv), rtol=1e-5, atol=1e-6, err_msg=f"{where}: {key}")


@pytest.fixture
def op_calls(monkeypatch):
    """The number of params in each call of the multi-tensor ops."""
    calls = []
    for op in ("_adam_multi_step_", "_sgd_multi_step_"):
        real = getattr(ember._C, op)

        def counting(params, *args, _real=real, **kwargs):
            calls.append(len(params))
            return _real(params, *args, **kwargs)

        monkeypatch.setattr(ember._C, op, counting)
    return calls


@pytest.mark.parametrize("device,name,kwargs,impl,capturable,tensor_lr", TABLE)
def test_optimizer_matches_torch(device, name, kwargs, impl, capturable, tensor_lr, op_calls):
    """The reference is torch's single-tensor path with a float lr (capturable, tensor lrs and the
    implementations change where the numbers live, not the update). Multi-tensor paths take one call
    per group and step (SGD: one more when the late param starts its momentum buffer); the
    per-parameter path one per param with a gradient."""
    seed = case_seed("optim impls", name, str(kwargs))
    inits, grads = _problem(seed)
    tparams, topt = _make(torch, name, kwargs, inits, foreach=False)
    _train(torch, tparams, topt, grads)
    flags = dict(IMPLS[impl], **({"capturable": True} if capturable else {}))
    lr = ember.tensor(BASE_LR[name], device=device) if tensor_lr else None
    eparams, eopt = _make(ember, name, kwargs, inits, device, lr=lr, **flags)
    _train(ember, eparams, eopt, grads, device)
    _assert_matches(tparams, topt, eparams, eopt, f"seed {seed}")
    with_grad = sum(g is not None for gs in grads for g in gs)
    if impl == "per-param":
        assert op_calls == [1] * with_grad
    else:
        assert sum(op_calls) == with_grad and len(op_calls) <= STEPS * len(GROUPS) + (name == "SGD"), op_calls
    if tensor_lr:
        assert eopt.param_groups[0]["lr"] is lr and float(lr.item()) == pytest.approx(BASE_LR[name])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("impl", ["default", "per-param"])
@pytest.mark.parametrize("name,kwargs", [CASES[3], CASES[5], CASES[8]], ids=["Adam-ams", "AdamW-ams", "SGD-mom"])
def test_state_dict_round_trips_mid_run(device, name, kwargs, impl):
    """Three steps, state_dict, a fresh optimizer loads it, three more steps: torch's six straight.
    The saved groups and states carry exactly torch's keys."""
    seed = case_seed("optim state dict", name, str(kwargs))
    inits, grads = _problem(seed)
    tparams, topt = _make(torch, name, kwargs, inits, foreach=False)
    _train(torch, tparams, topt, grads)

    eparams, eopt = _make(ember, name, kwargs, inits, device, **IMPLS[impl])
    _train(ember, eparams, eopt, grads[:3], device)
    sd = eopt.state_dict()
    tsd = topt.state_dict()
    assert [sorted(g) for g in sd["param_groups"]] == [sorted(g) for g in tsd["param_groups"]]
    assert {k: sorted(v) for k, v in sd["state"].items()} == {k: sorted(v) for k, v in tsd["state"].items()}
    resumed = [ember.nn.Parameter(p.detach().clone()) for p in eparams]
    opt2 = _optimizer(ember, name, kwargs, resumed, **IMPLS[impl])
    opt2.load_state_dict(sd)
    _train(ember, resumed, opt2, grads[3:], device)
    _assert_matches(tparams, topt, resumed, opt2, f"resumed, seed {seed}")


def _to_ember_tree(obj, device):
    if isinstance(obj, torch.Tensor):
        return ember.from_numpy(obj.detach().numpy().copy()).to(device)
    if isinstance(obj, dict):
        return {k: _to_ember_tree(v, device) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_ember_tree(v, device) for v in obj]
    return obj


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,kwargs", [CASES[3], CASES[6], CASES[9]], ids=["Adam-ams", "AdamW", "SGD-nesterov"])
def test_torch_state_dict_resumes_in_ember(device, name, kwargs):
    """torch trains three steps; ember loads its params and optimizer state and trains three more."""
    seed = case_seed("optim torch state dict", name, str(kwargs))
    inits, grads = _problem(seed)
    tparams, topt = _make(torch, name, kwargs, inits, foreach=False)
    _train(torch, tparams, topt, grads)

    half, hopt = _make(torch, name, kwargs, inits, foreach=False)
    _train(torch, half, hopt, grads[:3])
    eparams, eopt = _make(ember, name, kwargs, [p.detach().numpy() for p in half], device)
    eopt.load_state_dict(_to_ember_tree(hopt.state_dict(), "cpu"))
    _train(ember, eparams, eopt, grads[3:], device)
    _assert_matches(tparams, topt, eparams, eopt, f"resumed from torch, seed {seed}")


# (optimizer, constructor kwargs, phase that raises, ember's message): torch raises in the same phase.
REJECTED = [
    ("Adam", dict(capturable=True), "step", r"\[Adam\] If capturable=True, params and state_steps must be on"),
    ("AdamW", dict(capturable=True, foreach=True), "step", r"\[AdamW\] If capturable=True"),
    ("Adam", dict(lr="tensor", foreach=True), "init",
     r"\[Adam\] lr as a Tensor is not supported for capturable=False and foreach=True"),
    ("AdamW", dict(lr="tensor2"), "init", r"\[AdamW\] Tensor lr must be 1-element"),
    ("SGD", dict(lr="tensor2"), "init", r"\[SGD\] Tensor lr must be 1-element"),
    ("Adam", dict(foreach=True, fused=True), "init", "`fused` and `foreach` cannot be `True` together"),
    ("SGD", dict(foreach=True, fused=True), "init", "`fused` and `foreach` cannot be `True` together"),
    ("Adam", dict(foreach=True, set_tensor_lr=True), "step",
     r"\[Adam\] lr as a Tensor is not supported for capturable=False and foreach=True"),
]


def _attempt(lib, name, kwargs):
    """'init' or 'step' (the phase that raised) and the exception, or (None, None)."""
    kwargs = dict(kwargs)
    set_tensor_lr = kwargs.pop("set_tensor_lr", False)
    lr = kwargs.pop("lr", 0.01)
    if lr == "tensor":
        lr = lib.tensor(0.01)
    elif lr == "tensor2":
        lr = lib.tensor([0.01, 0.02])
    p = lib.nn.Parameter(lib.ones(3))
    p.grad = lib.ones(3)
    try:
        opt = getattr(lib.optim, name)([p], lr=lr, **kwargs)
    except Exception as e:  # noqa: BLE001 (the test compares what each library raises)
        return "init", e
    if set_tensor_lr:
        opt.param_groups[0]["lr"] = lib.tensor(0.01)
    try:
        opt.step()
    except Exception as e:  # noqa: BLE001
        return "step", e
    return None, None


@pytest.mark.parametrize("name,kwargs,phase,message", REJECTED, ids=[f"{n}-{i}" for i, (n, *_) in enumerate(REJECTED)])
def test_combinations_torch_rejects_raise_alike(name, kwargs, phase, message):
    """ember rejects what torch 2.13 rejects, in the same phase, naming the optimizer. (torch raises an
    AssertionError for capturable params on the CPU; ember a RuntimeError.)"""
    t_phase, t_err = _attempt(torch, name, kwargs)
    e_phase, e_err = _attempt(ember, name, kwargs)
    assert t_phase == phase, f"torch: expected an error at {phase}, got {t_phase} ({t_err!r})"
    assert e_phase == phase and e_err is not None, f"ember: expected an error at {phase}, got {e_phase}"
    assert isinstance(e_err, type(t_err)) or isinstance(t_err, AssertionError), (e_err, t_err)
    with pytest.raises(type(e_err), match=message):
        raise e_err


@pytest.mark.parametrize("name,kwargs", [
    ("Adam", dict(capturable=True, fused=True)),  # fused ignores capturable: runs on the CPU in torch too
    ("AdamW", dict(fused=True, dtype="float16")),
    ("SGD", dict(fused=True, dtype="bfloat16", momentum=0.9)),
    ("Adam", dict(lr="tensor")), ("Adam", dict(lr="tensor", fused=True)), ("SGD", dict(lr="tensor", foreach=True)),
])
def test_combinations_torch_accepts_run(name, kwargs):
    kwargs = dict(kwargs)
    dtype = kwargs.pop("dtype", "float32")
    lr = kwargs.pop("lr", 0.01)
    results = []
    for lib in (torch, ember):
        p = lib.nn.Parameter(lib.ones(4, dtype=getattr(lib, dtype)))
        opt = getattr(lib.optim, name)([p], lr=lib.tensor(0.01) if lr == "tensor" else lr, **kwargs)
        for k in range(3):
            p.grad = lib.full((4,), float(k) - 0.5, dtype=getattr(lib, dtype))
            opt.step()
        results.append(_np(p))
    np.testing.assert_allclose(results[1], results[0], rtol=1e-2 if dtype != "float32" else 1e-6)


SCHEDULERS = {
    "lambda": lambda lib, o: lib.optim.lr_scheduler.LambdaLR(o, lambda s: 0.8 ** s),
    "step": lambda lib, o: lib.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
    "cosine": lambda lib, o: lib.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=0.001),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("sched", list(SCHEDULERS))
@pytest.mark.parametrize("name,kwargs,flags", [("AdamW", dict(amsgrad=True), dict(capturable=True)),
                                               ("Adam", {}, dict(fused=True)), ("SGD", dict(momentum=0.9), {})],
                         ids=["AdamW-capturable", "Adam-fused", "SGD"])
def test_scheduler_writes_a_tensor_lr_in_place(device, sched, name, kwargs, flags):
    """With a tensor lr the scheduler fills the same tensor each step (what a captured graph reads);
    its values and the training follow torch's float-lr run, and initial_lr is a copy, not an alias."""
    if flags.get("capturable") and device == "cpu":
        flags = dict(fused=True)  # capturable needs CUDA params unless fused (torch's rule)
    seed = case_seed("optim scheduler", name, sched)
    inits, grads = _problem(seed)
    tparams, topt = _make(torch, name, kwargs, inits, foreach=False)
    tsched = SCHEDULERS[sched](torch, topt)
    lr = ember.tensor(BASE_LR[name], device=device)
    eparams, eopt = _make(ember, name, kwargs, inits, device, lr=lr, **flags)
    esched = SCHEDULERS[sched](ember, eopt)
    for gs in grads:
        _train(torch, tparams, topt, [gs])
        _train(ember, eparams, eopt, [gs], device)
        tsched.step()
        esched.step()
        assert eopt.param_groups[0]["lr"] is lr
        np.testing.assert_allclose([float(x) for x in esched.get_last_lr()], tsched.get_last_lr(), rtol=1e-6)
    assert eopt.param_groups[0]["initial_lr"] is not lr
    assert float(eopt.param_groups[0]["initial_lr"].item()) == pytest.approx(BASE_LR[name])
    _assert_matches(tparams, topt, eparams, eopt, f"{sched}, seed {seed}")


@needs_cuda
def test_graphed_step_follows_an_lr_scheduler():
    """A whole training step (forward, backward, capturable AdamW with a tensor lr, amsgrad) captured once
    in a CUDA graph; a scheduler writes the lr tensor between replays. Replays match eager steps of a
    twin driven by the same schedule, and differ from eager steps at the initial lr (the control)."""
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((32, 8)).astype(np.float32), rng.standard_normal((32, 4)).astype(np.float32))
               for _ in range(8)]
    cuda = lambda a: ember.from_numpy(a).cuda()  # noqa: E731

    def make():
        ember.manual_seed(0)
        return ember.nn.Sequential(ember.nn.Linear(8, 16), ember.nn.Tanh(), ember.nn.Linear(16, 4)).cuda()

    graphed, eager, frozen = make(), make(), make()
    eager.load_state_dict(graphed.state_dict())
    frozen.load_state_dict(graphed.state_dict())
    lr = ember.tensor(0.05, device="cuda")
    opt_g = ember.optim.AdamW(graphed.parameters(), lr=lr, weight_decay=0.1, amsgrad=True, capturable=True)
    opt_e = ember.optim.AdamW(eager.parameters(), lr=0.05, weight_decay=0.1, amsgrad=True)
    opt_f = ember.optim.AdamW(frozen.parameters(), lr=0.05, weight_decay=0.1, amsgrad=True)
    sched_g = ember.optim.lr_scheduler.LambdaLR(opt_g, lambda s: 0.7 ** s)
    sched_e = ember.optim.lr_scheduler.LambdaLR(opt_e, lambda s: 0.7 ** s)

    def train_step(model, opt, x, t):
        opt.zero_grad(set_to_none=False)  # grads must stay in the tensors the graph captured
        loss = ((model(x) - t) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    x0, t0 = cuda(batches[0][0]), cuda(batches[0][1])
    run = ember.cuda.make_graphed_step(lambda x, t: train_step(graphed, opt_g, x, t), [x0.clone(), t0.clone()],
                                       warmup=3)
    for model, opt in ((eager, opt_e), (frozen, opt_f)):
        for _ in range(3):  # the warm-up steps make_graphed_step ran (at the initial lr)
            train_step(model, opt, x0, t0)
    for xb, tb in batches[1:]:
        loss_g = float(run(cuda(xb), cuda(tb)).item())
        loss_e = float(train_step(eager, opt_e, cuda(xb), cuda(tb)).item())
        train_step(frozen, opt_f, cuda(xb), cuda(tb))
        assert loss_g == pytest.approx(loss_e, rel=1e-5, abs=1e-6)
        sched_g.step()
        sched_e.step()
    ember.cuda.synchronize()
    assert float(lr.item()) == pytest.approx(0.05 * 0.7 ** 7)
    for pg, pe, pf in zip(graphed.parameters(), eager.parameters(), frozen.parameters()):
        np.testing.assert_allclose(_np(pg), _np(pe), rtol=1e-5, atol=1e-6)
        assert float(opt_g.state[id(pg)]["step"].item()) == 10.0
    drift = [float(np.abs(_np(pg) - _np(pf)).max()) for pg, pf in zip(graphed.parameters(), frozen.parameters())]
    assert max(drift) > 1e-3, "the control at a frozen lr should have drifted from the scheduled run"
