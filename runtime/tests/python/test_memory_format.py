"""memory_format= (channels_last and friends) against torch: strides, contiguity checks, what
preserve_format keeps, Module.to, autograd and values through a conv, errors (ember/_memory_format.py)."""
import pickle

import numpy as np
import pytest
import torch

import ember
from optest import assert_close, devices, random_pair

FORMATS = ["contiguous_format", "channels_last", "channels_last_3d", "preserve_format"]
SHAPES = [(2, 3, 4, 5), (0, 3, 4, 5), (1, 3, 1, 1), (2, 1, 4, 5), (2, 3, 4, 5, 6), (2, 3, 1, 5, 1), (3, 4)]
# Layouts of the same values: contiguous, channels_last-like permutes, a transpose, a slice.
LAYOUTS = {
    "plain": lambda lib, x: x,
    "nhwc": lambda lib, x: x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) if x.dim() == 4 else x,
    "ndhwc": lambda lib, x: x.permute(0, 2, 3, 4, 1).contiguous().permute(0, 4, 1, 2, 3) if x.dim() == 5 else x,
    "transposed": lambda lib, x: x.transpose(0, -1).contiguous().transpose(0, -1),
    "sliced": lambda lib, x: x[..., ::2],
}


def pair(shape, layout, device):
    values = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    t, e = torch.from_numpy(values).to(device), ember.from_numpy(values).to(device)
    return LAYOUTS[layout](torch, t), LAYOUTS[layout](ember, e)


def fmt(lib, name):
    return getattr(lib, name)


def same_layout(e, t, what):
    assert tuple(e.shape) == tuple(t.shape), what
    assert e.is_contiguous() == t.is_contiguous(), what
    for name in ("channels_last", "channels_last_3d"):
        assert e.is_contiguous(memory_format=fmt(ember, name)) == t.is_contiguous(memory_format=fmt(torch, name)), \
            (what, name, e.stride(), t.stride())
    if e.numel() > 0 and (t.is_contiguous() or t.is_contiguous(memory_format=torch.channels_last)
                          or t.is_contiguous(memory_format=torch.channels_last_3d)):
        assert e.stride() == t.stride(), (what, e.stride(), t.stride())
    np.testing.assert_array_equal(e.cpu().numpy(), t.cpu().numpy(), err_msg=what)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_contiguous_and_is_contiguous_match_torch(shape, layout, device):
    t, e = pair(shape, layout, device)
    same_layout(e, t, "input")
    for name in FORMATS:
        try:
            want = t.contiguous(memory_format=fmt(torch, name))
        except RuntimeError as exc:
            key = "required rank" if "required rank" in str(exc) else "preserve memory format is unsupported"
            assert key in str(exc)
            with pytest.raises(RuntimeError, match=key):
                e.contiguous(memory_format=fmt(ember, name))
            continue
        got = e.contiguous(memory_format=fmt(ember, name))
        same_layout(got, want, f"contiguous({name})")
        assert (got is e) == (want is t), name  # already in the format: the tensor itself, as torch


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("layout", ["plain", "nhwc", "ndhwc"])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 3, 4, 5, 6)], ids=str)
def test_preserve_format_keeps_channels_last_like_torch(shape, layout, device):
    t, e = pair(shape, layout, device)
    conversions = [
        ("clone", lambda lib, x, **kw: x.clone(**kw)),
        ("ember.clone", lambda lib, x, **kw: lib.clone(x, **kw)),
        ("to(dtype)", lambda lib, x, **kw: x.to(lib.float64, **kw)),
        ("to()", lambda lib, x, **kw: x.to(**kw)),
        ("double", lambda lib, x, **kw: x.double(**kw)),
        ("half", lambda lib, x, **kw: x.half(**kw)),
        ("long", lambda lib, x, **kw: x.long(**kw)),
        ("ones_like", lambda lib, x, **kw: lib.ones_like(x, **kw)),
        ("full_like", lambda lib, x, **kw: lib.full_like(x, 2.0, **kw)),
    ]
    for what, convert in conversions:
        for name in (None, "preserve_format", "contiguous_format", "channels_last", "channels_last_3d"):
            kw = {} if name is None else {"memory_format": fmt(torch, name)}
            try:
                want = convert(torch, t, **kw)
            except RuntimeError:
                with pytest.raises(RuntimeError, match="required rank"):
                    convert(ember, e, **({} if name is None else {"memory_format": fmt(ember, name)}))
                continue
            got = convert(ember, e, **({} if name is None else {"memory_format": fmt(ember, name)}))
            same_layout(got, want, f"{what} {name}")
    # *_like factories with preserve_format keep the layout (values are not compared: random / empty).
    for factory in ("empty_like", "rand_like", "randn_like"):
        got, want = getattr(ember, factory)(e), getattr(torch, factory)(t)
        assert got.stride() == want.stride() or got.numel() == 0, factory


@pytest.mark.parametrize("device", devices())
def test_module_to_channels_last_and_conv_values(device):
    rng = np.random.default_rng(0)
    tm, em = torch.nn.Conv2d(3, 4, 3, padding=1).double().to(device), ember.nn.Conv2d(3, 4, 3, padding=1)
    em = em.to(ember.float64).to(device)
    em.load_state_dict({k: ember.from_numpy(v.detach().cpu().numpy()) for k, v in tm.state_dict().items()})
    tm, em = tm.to(memory_format=torch.channels_last), em.to(memory_format=ember.channels_last)
    assert em.weight.stride() == tm.weight.stride() and em.bias.stride() == tm.bias.stride()
    assert em.weight.requires_grad and isinstance(em.weight, ember.nn.Parameter)
    xt, xe = random_pair(rng, (2, 3, 6, 7), device=device)
    xt2, xe2 = xt.contiguous(memory_format=torch.channels_last), xe.contiguous(memory_format=ember.channels_last)
    yt, ye = tm(xt2), em(xe2)
    assert_close(ye, yt, "float64", "conv2d on channels_last")
    (yt * yt).sum().backward()
    (ye * ye).sum().backward()
    assert_close(xe.grad, xt.grad, "float64", "input grad through channels_last")
    assert_close(em.weight.grad, tm.weight.grad, "float64", "weight grad")


def test_memory_format_objects_and_errors():
    for name in FORMATS:
        f = fmt(ember, name)
        assert isinstance(f, ember.memory_format) and repr(f) == f"ember.{name}"
        assert pickle.loads(pickle.dumps(f)) is f
    x = ember.ones(2, 3, 4)
    with pytest.raises(RuntimeError, match=r"required rank 4 tensor to use channels_last format.*\(2, 3, 4\)"):
        x.contiguous(memory_format=ember.channels_last)
    with pytest.raises(RuntimeError, match="required rank 5"):
        ember.ones(2, 3, 4, 5).to(memory_format=ember.channels_last_3d)
    with pytest.raises(TypeError, match="contiguous.*memory_format"):
        x.contiguous(memory_format="channels_last")
    with pytest.raises(TypeError, match="clone.*memory_format"):
        x.clone(memory_format=torch.channels_last)  # torch's object is not ember's
    assert not x.is_contiguous(memory_format=ember.channels_last)  # the wrong rank is just "no", as in torch
    with pytest.raises(TypeError, match="unexpected keyword"):
        ember.nn.Linear(2, 2).to(memory_fmt=ember.channels_last)
