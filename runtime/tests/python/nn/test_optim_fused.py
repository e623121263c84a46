"""The multi-tensor optimizer ops ember._C._adam_multi_step_ and ember._C._sgd_multi_step_ (Note
[Multi-tensor optimizer steps]): trajectories against torch.optim for every param dtype, one op call
per step for a whole list of params, strided and misaligned tensors, the CUDA batching (more tensors
and chunks than one launch holds), errors, checkpoints holding int steps, the number of kernels a
CUDA step launches, and a CUDA-graph-captured AdamW step that must read a fresh step count on every
replay. The optimizer flags (foreach/fused/capturable, tensor lr, groups) are in test_optim_impls.py."""

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
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, weight_decay=0.3, betas=(0.9, 0.99))),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, maximize=True)),
    ("AdamW", dict(lr=0.01, amsgrad=True, maximize=True)),
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3, weight_decay=0.1)),
]
CASE_IDS = [f"{n}-{i}" for i, (n, _) in enumerate(OPT_CASES)]
MANTISSA_BITS = {"float16": 10, "bfloat16": 7}
OP_OF = {"Adam": "_adam_multi_step_", "AdamW": "_adam_multi_step_", "SGD": "_sgd_multi_step_"}


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


def _run_torch_rounded(name, kwargs, dtype, inits, grads):
    """torch in float32, rounding params and state to `dtype` after every step: "compute in float, round
    once per stored value". The reference for SGD in half types: torch 2.13's fused CPU SGD is wrong for
    bfloat16 tensors longer than a vector (0.2 off after 2 steps of (5, 7)); its default rounds twice."""
    half = getattr(torch, dtype)
    params = [torch.nn.Parameter(torch.from_numpy(np.array(a)).to(half).float()) for a in inits]
    opt = getattr(torch.optim, name)(params, **kwargs)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = torch.from_numpy(np.array(g)).to(half).float()
        opt.step()
        with torch.no_grad():
            for p in params:
                p.copy_(p.to(half).float())
                for v in opt.state[p].values():
                    if v.dim() == p.dim():
                        v.copy_(v.to(half).float())
    return params, [opt.state[p] for p in params]


def _run_ember(name, kwargs, dtype, inits, grads, device="cpu", **opt_kwargs):
    params = [ember.nn.Parameter(_to_ember(a, dtype, device)) for a in inits]
    opt = getattr(eoptim, name)(params, **kwargs, **opt_kwargs)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = _to_ember(g, dtype, device)
        opt.step()
    return params, [opt.state.get(id(p), {}) for p in params]


def _assert_close(actual, expected, dtype, what, floor=2.0 ** -4):
    a, e = _np(actual), _np(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    if dtype in MANTISSA_BITS:
        # Both round float math once per stored value, but a one-ulp tie flip (FMA, vector code) in an
        # early step can grow over later steps; rounding every op (torch's default) is thousands off.
        # Ulps of values under `floor` count as ulps of `floor`: an Adam flip moves a param by ~lr ulps, not
        # |p| ulps. SGD's momentum buffer carries gradient-sized flips (~1) into values that later cancel,
        # and into the params for ~1/(1 - momentum) steps: floor 1 for both.
        ulps = np.abs(a - e) / np.exp2(np.floor(np.log2(np.maximum(np.abs(e), floor))) - MANTISSA_BITS[dtype])
        assert ulps.size == 0 or (ulps.max() <= 4 and (ulps > 1).mean() <= 5e-3), (
            f"{what}: up to {ulps.max():.3g} ulps apart, {int((ulps > 1).sum())}/{ulps.size} elements above one ulp")
    else:
        tol = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-13)}[dtype]
        np.testing.assert_allclose(a, e, err_msg=what, **tol)


def _state_keys(name, kwargs):
    if name == "SGD":
        return ["momentum_buffer"] if kwargs.get("momentum") else []
    return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if kwargs.get("amsgrad") else [])


@pytest.fixture
def op_calls(monkeypatch):
    """Records the params list of every call of the two ops (so a test can tell which path ran)."""
    calls = []
    for op in set(OP_OF.values()):
        real = getattr(ember._C, op)

        def counting(params, *args, _real=real, **kwargs):
            calls.append([tuple(p.shape) for p in params])
            return _real(params, *args, **kwargs)

        monkeypatch.setattr(ember._C, op, counting)
    return calls


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
@pytest.mark.parametrize("name,kwargs", OPT_CASES, ids=CASE_IDS)
def test_multi_step_matches_torch(name, kwargs, dtype, op_calls):
    """One op call per step updates every param. float32/float64 against torch's default (single-tensor)
    optimizer; half types against torch's fused CPU Adam, which also computes in float and rounds once
    (torch's default rounds every op), and SGD against _run_torch_rounded."""
    steps, seed = 6, case_seed("multi step", name, str(kwargs), dtype)
    inits, grads = _problem(SHAPES, steps, seed)
    if dtype in MANTISSA_BITS and name == "SGD":
        tp, tstate = _run_torch_rounded(name, kwargs, dtype, inits, grads)
    else:
        tp, tstate = _run_torch(name, kwargs, dtype, inits, grads, fused=dtype in MANTISSA_BITS)
    ep, estate = _run_ember(name, kwargs, dtype, inits, grads)
    assert op_calls == [SHAPES] * steps, f"expected one call per step over all params, got {op_calls}"
    for i, (pt, pe, st, se) in enumerate(zip(tp, ep, tstate, estate)):
        where = f"shape {SHAPES[i]} seed {seed}{replay_hint()}"
        floor = 1.0 if name == "SGD" else 2.0 ** -4
        _assert_close(pe, pt, dtype, f"param, {where}", floor)
        assert sorted(k for k in se if k != "step") == sorted(_state_keys(name, kwargs))
        for key in _state_keys(name, kwargs):
            _assert_close(se[key], st[key], dtype, f"{key}, {where}", floor)
        if name != "SGD":
            step = se["step"]
            assert step.dim() == 0 and step.dtype == ember.float32 and float(step.item()) == float(st["step"]) == steps


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
@pytest.mark.parametrize("op", ["adam", "sgd"])
def test_strided_and_misaligned_tensors_match_contiguous(op, device, dtype):
    """Transposed views (updated through contiguous copies written back) and offset views (not 16-byte
    aligned: the scalar CUDA path) give the contiguous result, in one call with an aligned tensor."""
    rng = np.random.default_rng(3)
    p0, m0, v0 = rng.standard_normal((9, 6)), rng.standard_normal((9, 6)) * 0.1, rng.random((9, 6))
    grads = [rng.standard_normal((9, 6)) for _ in range(3)]

    def run(make):
        # param 0 is built by `make`, param 1 is always a plain contiguous tensor
        ps, ms, vs = [make(p0), _to_ember(p0, dtype, device)], [make(m0), _to_ember(m0, dtype, device)], \
            [make(v0), _to_ember(v0, dtype, device)]
        steps = [ember.zeros((), dtype=ember.float32, device=device) for _ in range(2)]
        for g in grads:
            gs = [make(g), _to_ember(g, dtype, device)]
            if op == "adam":
                ember._C._adam_multi_step_(ps, gs, ms, vs, [], steps, lr=0.05, beta1=0.9, beta2=0.99, eps=1e-8,
                                           weight_decay=0.1, amsgrad=False, decoupled=False, maximize=False)
            else:
                ember._C._sgd_multi_step_(ps, gs, ms, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.1,
                                          nesterov=False, maximize=False, first_step=g is grads[0])
        return ps, ms, vs, steps

    def transposed(a):  # same values, column-major
        return _to_ember(np.ascontiguousarray(a.T), dtype, device).t()

    def offset(a):  # contiguous, but one element into its buffer: not 16-byte aligned
        buf = _to_ember(np.concatenate([[0.0], a.reshape(-1)]), dtype, device)
        return buf[1:].view(9, 6)

    ref = run(lambda a: _to_ember(a, dtype, device))
    for make in (transposed, offset):
        out = run(make)
        assert out[0][0].is_contiguous() == (make is offset)  # the caller's view was updated in place
        lists = ["param", "momentum_buffer"] if op == "sgd" else ["param", "exp_avg", "exp_avg_sq"]
        for k, what in enumerate(lists):
            for j in range(2):
                _assert_close(out[k][j], ref[k][j], dtype, f"{make.__name__} {what} {j}")
        if op == "adam":
            assert [float(s.item()) for s in out[3]] == [3.0, 3.0]


@needs_cuda
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
@pytest.mark.parametrize("name,kwargs", [OPT_CASES[1], OPT_CASES[3], OPT_CASES[4], OPT_CASES[7], OPT_CASES[8],
                                         OPT_CASES[11], OPT_CASES[12]],
                         ids=["Adam", "Adam-max", "Adam-ams", "AdamW", "AdamW-ams", "SGD-nesterov", "SGD-damp"])
def test_cuda_matches_cpu(name, kwargs, dtype):
    """Chunk edges (65536 elements per block), 16-byte vectors with scalar tails, empty and 0-dim
    params, and 300 tensors: more than one launch holds (Note [Multi-tensor apply])."""
    shapes = [(3,), (1000,), (2 * 65536 + 5,), (0,), ()] + [(7 + i % 5,) for i in range(300)]
    inits, grads = _problem(shapes, 4, seed=11)
    cp, cstate = _run_ember(name, kwargs, dtype, inits, grads, device="cpu")
    gp, gstate = _run_ember(name, kwargs, dtype, inits, grads, device="cuda")
    for i, (a, b, sa, sb) in enumerate(zip(gp, cp, gstate, cstate)):
        assert a.device == ember.device("cuda:0")
        _assert_close(a, b, dtype, f"param {shapes[i]}")
        for key in _state_keys(name, kwargs):
            _assert_close(sa[key], sb[key], dtype, f"{key} {shapes[i]}")
        if name != "SGD":
            assert sa["step"].device == a.device and float(sa["step"].item()) == 4.0


@needs_cuda
def test_cuda_tensor_continues_in_the_next_launch():
    """A tensor whose chunks overflow one launch's 1024 blocks finishes in the next launch."""
    ember.manual_seed(13)
    shapes = [(5,), (1024 * 65536 + 7,)]
    cpu = [[ember.randn(s) for s in shapes] for _ in range(5)]  # params, grads, exp_avgs, exp_avg_sqs, max
    cpu[2:] = [[t.abs() * 0.1 for t in ts] for ts in cpu[2:]]
    gpu = [[t.cuda() for t in ts] for ts in cpu]
    for lists in (cpu, gpu):
        steps = [ember.zeros((), device=lists[0][0].device) for _ in shapes]
        for _ in range(2):
            ember._C._adam_multi_step_(*lists, steps, lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1,
                                       amsgrad=True, decoupled=True, maximize=False)
    for k, what in [(0, "param"), (2, "exp_avg"), (4, "max_exp_avg_sq")]:
        for a, b, s in zip(gpu[k], cpu[k], shapes):
            _assert_close(a, b, "float32", f"{what} {s}")


def _adam_args(n=2, shape=(4, 3), dtype=ember.float32, device="cpu"):
    return dict(params=[ember.randn(shape, dtype=dtype, device=device) for _ in range(n)],
                grads=[ember.randn(shape, dtype=dtype, device=device) for _ in range(n)],
                exp_avgs=[ember.zeros(shape, dtype=dtype, device=device) for _ in range(n)],
                exp_avg_sqs=[ember.zeros(shape, dtype=dtype, device=device) for _ in range(n)],
                max_exp_avg_sqs=[], steps=[ember.zeros((), dtype=ember.float32, device=device) for _ in range(n)])


ADAM_HYPER = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=True,
                  maximize=False)


def _replace(key, i, make):
    def edit(a):
        a[key] = list(a[key])
        a[key][i] = make(a)
    return edit


# case -> (edit of the valid arguments, hyperparameter overrides, exception, message after "[adam_multi_step] ")
ADAM_ERRORS = {
    "grad-shape": (_replace("grads", 1, lambda a: ember.randn(4, 2)), {}, RuntimeError,
                   r"expected grads\[1\] of the param's shape"),
    "state-dtype": (_replace("exp_avgs", 0, lambda a: a["exp_avgs"][0].double()), {}, TypeError,
                    r"expected exp_avgs\[0\] of the param's dtype"),
    "param-grad-dtypes": (_replace("params", 1, lambda a: a["params"][1].double()), {}, TypeError,
                          r"expected grads\[1\] of the param's dtype"),
    "int-params": (lambda a: a.update({k: [t.long() for t in a[k]] for k in ("params", "grads", "exp_avgs",
                                                                             "exp_avg_sqs")}),
                   {}, TypeError, "expected floating point params"),
    "list-length": (lambda a: a.update(exp_avgs=a["exp_avgs"][:1]), {}, ValueError,
                    r"expected 2 exp_avgs \(one per param\), got 1"),
    "amsgrad-without-max": (lambda a: None, {"amsgrad": True}, ValueError,
                            r"expected 2 max_exp_avg_sqs \(one per param with amsgrad\), got 0"),
    "step-dtype": (_replace("steps", 0, lambda a: ember.zeros(()).double()), {}, RuntimeError,
                   r"expected steps\[0\] to be a 0-dim float32"),
    "step-shape": (_replace("steps", 1, lambda a: ember.zeros(1)), {}, RuntimeError,
                   r"expected steps\[1\] to be a 0-dim float32"),
    "aliased-state": (_replace("exp_avg_sqs", 0, lambda a: a["exp_avgs"][0]), {}, RuntimeError,
                      r"exp_avgs\[0\] and exp_avg_sqs\[0\] share memory"),
    "expanded-state": (_replace("exp_avgs", 1, lambda a: ember.zeros(3).expand(4, 3)), {}, RuntimeError,
                       r"exp_avgs\[1\] has overlapping elements"),
    "lr-negative": (lambda a: None, {"lr": -1.0}, ValueError, "invalid learning rate"),
    "lr-tensor-shape": (lambda a: None, {"lr": ember.tensor([0.1, 0.2])}, ValueError, "expected a one-element lr"),
    "lr-tensor-dtype": (lambda a: None, {"lr": ember.tensor(1, dtype=ember.int64)}, TypeError,
                        "expected a floating point lr tensor"),
    "eps": (lambda a: None, {"eps": -1e-8}, ValueError, "invalid epsilon"),
    "beta": (lambda a: None, {"beta2": 1.0}, ValueError, "invalid beta parameters"),
    "weight-decay": (lambda a: None, {"weight_decay": -0.1}, ValueError, "invalid weight_decay"),
}


@pytest.mark.parametrize("case", list(ADAM_ERRORS))
def test_adam_multi_step_errors_name_the_op_and_leave_tensors_alone(case):
    edit, hyper, exc, message = ADAM_ERRORS[case]
    args = _adam_args()
    edit(args)
    before = {k: [_np(t).copy() for t in v] for k, v in args.items()}
    with pytest.raises(exc, match=r"\[adam_multi_step\] " + message):
        ember._C._adam_multi_step_(**args, **{**ADAM_HYPER, **hyper})
    for k, v in args.items():
        for t, b in zip(v, before[k]):
            np.testing.assert_array_equal(_np(t), b)


SGD_HYPER = dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False,
                 first_step=False)
SGD_ERRORS = {
    "buffers-without-momentum": ({"momentum": 0.0}, r"expected 0 momentum_buffers \(none without momentum\), got 2"),
    "nesterov-dampening": ({"nesterov": True, "dampening": 0.1},
                           "Nesterov momentum requires a momentum and zero dampening"),
    "momentum": ({"momentum": -0.5}, "invalid momentum"),
}


@pytest.mark.parametrize("case", list(SGD_ERRORS))
def test_sgd_multi_step_errors_name_the_op(case):
    hyper, message = SGD_ERRORS[case]
    p = [ember.randn(3), ember.randn(2)]
    with pytest.raises(ValueError, match=r"\[sgd_multi_step\] " + message):
        ember._C._sgd_multi_step_(p, [ember.randn(3), ember.randn(2)], [ember.zeros(3), ember.zeros(2)],
                                  **{**SGD_HYPER, **hyper})
    with pytest.raises(RuntimeError, match=r"\[sgd_multi_step\] expected grads\[1\] of the param's shape"):
        ember._C._sgd_multi_step_(p, [ember.randn(3), ember.randn(3)], [], **{**SGD_HYPER, "momentum": 0.0})


def test_ops_refuse_params_that_require_grad_outside_no_grad():
    p = ember.nn.Parameter(ember.randn(3))  # a leaf that requires grad, outside no_grad: like torch's in-place ops
    with pytest.raises(RuntimeError, match=r"\[adam_multi_step_\] params\[0\] requires grad"):
        ember._C._adam_multi_step_([p], [ember.randn(3)], [ember.zeros(3)], [ember.zeros(3)], [], [ember.zeros(())],
                                   **ADAM_HYPER)
    with pytest.raises(RuntimeError, match=r"\[sgd_multi_step_\] params\[0\] requires grad"):
        ember._C._sgd_multi_step_([p], [ember.randn(3)], [], **{**SGD_HYPER, "momentum": 0.0})
    ember._C._sgd_multi_step_([], [], [], **SGD_HYPER)  # an empty list is a no-op


@needs_cuda
def test_device_mismatch_is_clear():
    args = _adam_args(device="cuda")
    args["steps"][1] = ember.zeros(())
    with pytest.raises(RuntimeError, match=r"\[adam_multi_step\] expected steps\[1\] on the param's device"):
        ember._C._adam_multi_step_(**args, **ADAM_HYPER)
    args = _adam_args(device="cuda")
    args["grads"][0] = ember.randn(4, 3)
    with pytest.raises(RuntimeError, match=r"\[adam_multi_step\] expected grads\[0\] on the param's device"):
        ember._C._adam_multi_step_(**args, **ADAM_HYPER)


@pytest.mark.parametrize("op", ["adam", "sgd"])
def test_mixed_devices_and_dtypes_in_one_call_match_separate_calls(op):
    """The op runs once per (device, dtype) group of its lists, in order; an lr tensor of another dtype
    or device is read through a float32 copy on each group's device."""
    rng = np.random.default_rng(17)
    kinds = [("float32", "cpu"), ("float64", "cpu"), ("bfloat16", "cpu"), ("float32", "cpu")]
    kinds += [("float32", "cuda"), ("float16", "cuda")] if CUDA else []
    values = [[rng.standard_normal(5 + i) for i in range(len(kinds))] for _ in range(4)]
    lr = ember.tensor(0.05, dtype=ember.float64)

    def lists():
        out = [[_to_ember(vs[i], dt, dev) for i, (dt, dev) in enumerate(kinds)] for vs in values]
        out[3] = [t.abs() for t in out[3]]  # exp_avg_sq >= 0
        return out

    def step(p, g, m, v, steps):
        if op == "adam":
            ember._C._adam_multi_step_(p, g, m, v, [], steps, lr=lr, beta1=0.9, beta2=0.99, eps=1e-8,
                                       weight_decay=0.1, amsgrad=False, decoupled=True, maximize=False)
        else:
            ember._C._sgd_multi_step_(p, g, m, lr=lr, momentum=0.9, dampening=0.0, weight_decay=0.1, nesterov=True,
                                      maximize=False, first_step=False)

    together = lists()
    steps_together = [ember.zeros((), device=dev) for _, dev in kinds]
    step(*together, steps_together)
    alone = lists()
    for i in range(len(kinds)):
        step(*[[t[i]] for t in alone], [ember.zeros((), device=kinds[i][1])])
    for k in (0, 2):
        for i, (dt, dev) in enumerate(kinds):
            assert together[k][i].device == ember.device(dev) and together[k][i].dtype == getattr(ember, dt)
            np.testing.assert_array_equal(_np(together[k][i]), _np(alone[k][i]))
    np.testing.assert_array_equal(_np(alone[0][0]) == _np(lists()[0][0]), False)  # the step did move the params


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


# nanoGPT-sized: 6 layers, d=384, vocab 65, context 256 (bench/optim_step.py uses the same list)
def nanogpt_shapes(layers=6, d=384, vocab=65, block=256):
    per_layer = [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,), (d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,)]
    return [(vocab, d), (block, d)] + per_layer * layers + [(d,), (d,)]


def _captured_step_kernels(opt, params):
    """Kernel launches of one opt.step(), counted in a CUDA graph that captured it (after a warm-up
    step created the state)."""
    for p in params:
        p.grad = ember.randn(p.shape, device="cuda")
    opt.step()
    g = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g):
        opt.step()
    return g.num_kernel_nodes()


@needs_cuda
@pytest.mark.parametrize("name,kwargs,multi,per_param", [
    ("AdamW", dict(lr=1e-3), 2, 2), ("Adam", dict(lr=1e-3, amsgrad=True), 2, 2),
    ("SGD", dict(lr=0.1, momentum=0.9), 1, 1)])
def test_cuda_step_launches_a_bounded_number_of_kernels(name, kwargs, multi, per_param):
    """All ~80 nanoGPT params in `multi` launches (Adam: the step counts, then one batch), against
    `per_param` launches per param with foreach=False."""
    shapes = nanogpt_shapes()
    params = [ember.nn.Parameter(ember.randn(s, device="cuda")) for s in shapes]
    assert _captured_step_kernels(getattr(eoptim, name)(params, **kwargs), params) == multi
    params = [ember.nn.Parameter(ember.randn(s, device="cuda")) for s in shapes]
    per = _captured_step_kernels(getattr(eoptim, name)(params, **kwargs, foreach=False), params)
    assert per == per_param * len(shapes)


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
