"""ember.optim against torch.optim: identical parameter trajectories over several steps, state_dict
round trips, schedulers and gradient clipping."""
import math
import os

import numpy as np
import pytest
import torch

import ember
import ember.nn as enn
import ember.optim as eoptim
from nn_helpers import E, N, close, copy_weights, edtype, tdtype


def _models(dtype="float32"):
    torch.manual_seed(0)
    build = lambda lib: lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.GELU(), lib.nn.LayerNorm(8),  # noqa: E731
                                          lib.nn.Linear(8, 3))
    tm = build(torch).to(tdtype(dtype))
    em = copy_weights(tm, build(ember).to(edtype(dtype)))
    return tm, em


def _loss(lib, model, step):
    rng = np.random.default_rng(step)
    x = rng.standard_normal((6, 4))
    y = rng.integers(0, 3, 6)
    dt = model[0].weight.dtype
    to = (lambda a: torch.tensor(a)) if lib is torch else (lambda a: ember.from_numpy(a))
    xt = to(x).to(dt)
    return lib.nn.functional.cross_entropy(model(xt), to(y))


def _groups(lib, model, opts):
    return [{"params": [model[0].weight, model[3].weight], **opts.get("g0", {})},
            {"params": [model[0].bias, model[2].weight, model[2].bias, model[3].bias], **opts.get("g1", {})}]


OPT_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1, eps=1e-6)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, weight_decay=0.3, betas=(0.9, 0.99))),
]


def _run(lib, opt_name, kwargs, model, steps, groups=None):
    params = _groups(lib, model, groups) if groups else model.parameters()
    opt = getattr(lib.optim, opt_name)(params, **kwargs)
    for s in range(steps):
        opt.zero_grad()
        _loss(lib, model, s).backward()
        opt.step()
    return opt


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,kwargs", OPT_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPT_CASES)])
def test_optimizer_matches_torch(name, kwargs, dtype):
    tm, em = _models(dtype)
    _run(torch, name, kwargs, tm, 6)
    _run(ember, name, kwargs, em, 6)
    tol = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-8, atol=1e-9)}[dtype]
    for (n, pt), pe in zip(tm.named_parameters(), em.parameters()):
        np.testing.assert_allclose(N(pe), N(pt), err_msg=n, **tol)


@pytest.mark.parametrize("name", ["SGD", "AdamW"])
def test_param_groups_with_per_group_options(name):
    groups = {"g0": {"lr": 0.05, "weight_decay": 0.2}, "g1": {"lr": 0.005}}
    kwargs = dict(lr=0.01, momentum=0.9) if name == "SGD" else dict(lr=0.01)
    tm, em = _models()
    topt = _run(torch, name, kwargs, tm, 5, groups)
    eopt = _run(ember, name, kwargs, em, 5, groups)
    for pt, pe in zip(tm.parameters(), em.parameters()):
        close(pe, pt, rtol=2e-4, atol=2e-5)
    assert [g["lr"] for g in eopt.param_groups] == [g["lr"] for g in topt.param_groups] == [0.05, 0.005]


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01)),
                                         ("AdamW", dict(lr=0.01, weight_decay=0.1))])
def test_optimizer_state_dict_round_trip_resumes_exactly(name, kwargs):
    _, straight = _models()
    _run(ember, name, kwargs, straight, 6)
    _, first = _models()
    opt = _run(ember, name, kwargs, first, 3)
    sd = opt.state_dict()
    assert sorted(sd) == ["param_groups", "state"] and sorted(sd["state"]) == list(range(len(sd["state"])))
    _, resumed = _models()
    resumed.load_state_dict(first.state_dict())
    opt2 = getattr(eoptim, name)(resumed.parameters(), **kwargs)
    opt2.load_state_dict(sd)
    for s in range(3, 6):
        opt2.zero_grad()
        _loss(ember, resumed, s).backward()
        opt2.step()
    for a, b in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(N(a), N(b))


def test_optimizer_load_state_dict_mismatch_is_clear():
    _, em = _models()
    opt = eoptim.Adam(em.parameters())
    other = eoptim.Adam(list(em.parameters())[:2])
    with pytest.raises(ValueError, match="doesn't match the size"):
        other.load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="Invalid learning rate"):
        eoptim.AdamW(em.parameters(), lr=-1)


def _lrs(lib, make, steps=25):
    p = [lib.nn.Parameter(lib.zeros(2))]
    opt = lib.optim.SGD([{"params": p, "lr": 0.5}, {"params": [lib.nn.Parameter(lib.zeros(2))], "lr": 0.1}], lr=0.1)
    sched = make(lib, opt)
    out = []
    for _ in range(steps):
        out.append(sched.get_last_lr())
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("make", [
    lambda lib, o: lib.optim.lr_scheduler.LambdaLR(o, lambda s: 0.9 ** s),
    lambda lib, o: lib.optim.lr_scheduler.StepLR(o, step_size=4, gamma=0.5),
    lambda lib, o: lib.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=0.01),
    lambda lib, o: lib.optim.lr_scheduler.LinearLR(o, start_factor=0.2, total_iters=10),
], ids=["lambda", "step", "cosine", "linear"])
def test_schedulers_match_torch(make):
    np.testing.assert_allclose(_lrs(ember, make), _lrs(torch, make), rtol=1e-10, atol=1e-12)


def test_warmup_cosine():
    from ember.optim.lr_scheduler import WarmupCosineLR
    lam = lambda s: (s + 1) / 5 if s < 5 else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1, (s - 5) / 15)))  # noqa
    ours = _lrs(ember, lambda lib, o: WarmupCosineLR(o, 5, 20, min_lr=0.0))
    assert ours[0][0] == pytest.approx(0.1) and ours[4][0] == pytest.approx(0.5) and ours[20][0] == pytest.approx(0)
    ref = _lrs(torch, lambda lib, o: lib.optim.lr_scheduler.LambdaLR(o, lam))
    warm = [r[0] for r in ref[:5]]
    np.testing.assert_allclose([o[0] for o in ours[:5]], warm, rtol=1e-12)
    assert all(a >= b for a, b in zip([o[0] for o in ours[5:]], [o[0] for o in ours[6:]]))


@pytest.mark.parametrize("max_norm,norm_type", [(0.5, 2.0), (100.0, 2.0), (0.1, float("inf"))])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    tm, em = _models()
    _loss(torch, tm, 0).backward()
    _loss(ember, em, 0).backward()
    nt = torch.nn.utils.clip_grad_norm_(tm.parameters(), max_norm, norm_type)
    ne = enn.utils.clip_grad_norm_(em.parameters(), max_norm, norm_type)
    close(ne, nt, rtol=1e-5, atol=1e-6)
    for pt, pe in zip(tm.parameters(), em.parameters()):
        close(pe.grad, pt.grad, rtol=1e-5, atol=1e-6)


def _save_load():
    if hasattr(ember, "save"):
        return ember.save, ember.load
    from ember.serialization import load, save  # until the package exports them
    return save, load


def test_checkpoint_save_load_resumes(tmp_path):
    save, load = _save_load()
    _, straight = _models()
    _run(ember, "AdamW", dict(lr=0.01), straight, 5)
    _, model = _models()
    opt = _run(ember, "AdamW", dict(lr=0.01), model, 3)
    path = os.path.join(tmp_path, "ckpt.safetensors")
    save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 3}, path)
    ckpt = load(path)
    _, resumed = _models()
    resumed.load_state_dict(ckpt["model"])
    opt2 = eoptim.AdamW(resumed.parameters(), lr=0.01)
    opt2.load_state_dict(ckpt["optimizer"])
    assert int(ckpt["step"]) == 3
    for s in range(3, 5):
        opt2.zero_grad()
        _loss(ember, resumed, s).backward()
        opt2.step()
    for a, b in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(N(a), N(b))


def test_step_with_closure_returns_loss_and_updates():
    p = enn.Parameter(ember.from_numpy(np.array([1.0, -2.0])))
    opt = eoptim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss.item()) == pytest.approx(5.0)
    np.testing.assert_allclose(N(p), [0.8, -1.6])
