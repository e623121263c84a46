"""ember.save / ember.load in PyTorch's checkpoint format, checked against torch itself in both
directions: torch.save -> ember.load and ember.save -> torch.load (weights_only, as torch >= 2.6
loads by default), for every dtype, views sharing a storage, parameters, nested containers,
optimizer state (training resumes identically across the libraries), map_location, mmap, the
weights_only restrictions and corrupt files."""
import collections
import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

import ember
import ember.serialization as es
from compat_helpers import one_thread_each  # noqa: F401  (autouse fixture)

DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool"]


def _values(dtype, shape=(3, 4), seed=0):
    a = np.random.default_rng(seed).uniform(-5, 5, size=shape)
    if dtype == "bool":
        return a > 0
    if dtype == "uint8":
        return np.abs(a).astype(np.uint8)
    return a.astype(np.float32 if dtype == "bfloat16" else dtype)


def _torch(a, dtype):
    return torch.from_numpy(np.array(a)).to(getattr(torch, dtype))


def _ember(a, dtype):
    return ember.tensor(np.array(a)).to(getattr(ember, dtype))


def _same(e, t):
    assert str(e.dtype).split(".")[1] == str(t.dtype).split(".")[1]
    assert tuple(e.shape) == tuple(t.shape)
    assert e.float().tolist() == t.float().tolist()


def _torch_save(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf


def _ember_save(obj):
    buf = io.BytesIO()
    ember.save(obj, buf)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_to_ember_every_dtype(dtype):
    a = _values(dtype)
    back = ember.load(_torch_save({"t": _torch(a, dtype), "scalar": _torch(a[0, 0], dtype), "empty": _torch(a[:0], dtype)}))
    _same(back["t"], _torch(a, dtype))
    _same(back["scalar"], _torch(a[0, 0], dtype))
    _same(back["empty"], _torch(a[:0], dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_ember_to_torch_every_dtype(dtype):
    a = _values(dtype)
    back = torch.load(_ember_save({"t": _ember(a, dtype), "scalar": _ember(a[0, 0], dtype),
                                   "empty": _ember(a[:0], dtype)}))
    _same(_ember(a, dtype), back["t"])
    _same(_ember(a[0, 0], dtype), back["scalar"])
    _same(_ember(a[:0], dtype), back["empty"])


def test_views_share_one_storage_both_ways():
    base_t = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    obj_t = {"base": base_t, "row": base_t[1], "col": base_t[:, 2], "t": base_t.t(), "tail": base_t.reshape(-1)[20:]}
    e = ember.load(_torch_save(obj_t))
    for k, v in obj_t.items():
        _same(e[k], v)
    e["base"].add_(100.0)  # one storage: every view sees the write
    assert e["row"].tolist() == (obj_t["row"] + 100).tolist() and e["t"].tolist() == (obj_t["t"] + 100).tolist()

    base_e = ember.arange(24, dtype=ember.float32).reshape(4, 6)
    obj_e = {"row": base_e[1], "col": base_e[:, 2], "t": base_e.t(), "mid": base_e[1:3, 2:5]}
    t = torch.load(_ember_save(obj_e))
    for k, v in obj_e.items():
        _same(v, t[k])
    assert len({t[k].untyped_storage().data_ptr() for k in t}) == 1, "ember views must load as views of one storage"
    t["row"].add_(1000.0)
    assert t["col"][1].item() == 1000.0 + 8.0


def test_only_the_used_part_of_a_big_storage_is_written():
    big = ember.zeros(1_000_000)
    buf = _ember_save({"slice": big[10:20]})
    assert len(buf.getvalue()) < 10_000
    assert torch.load(buf)["slice"].tolist() == [0.0] * 10


def _nested(lib):
    t = lib.arange(4, dtype=lib.float32)
    return {"od": collections.OrderedDict(a=t, b=[1, 2.5, "x", None, True]), "tuple": (t * 2, {"k": (3, 4)}),
            "set": {1, 2, 3}, "bytearray": bytearray(b"xy"), "bytes": b"\x00\xffab", "int_keys": {0: t[0], 7: "seven"},
            "dtype": lib.bfloat16, "device": lib.device("cpu"), "grad": lib.ones(2, requires_grad=True),
            "param": lib.nn.Parameter(lib.full((2, 2), 0.5)), "big": 2 ** 70, "float": float("inf"),
            "complex": 1 + 2j, "slice": None}


def _compare_nested(e, t):
    _same(e["od"]["a"], t["od"]["a"])
    assert isinstance(e["od"], collections.OrderedDict) and e["od"]["b"] == t["od"]["b"]
    _same(e["tuple"][0], t["tuple"][0])
    assert e["tuple"][1] == t["tuple"][1] and isinstance(e["tuple"], tuple)
    for k in ("set", "bytearray", "bytes", "big", "float", "complex", "slice"):
        assert e[k] == t[k], k
    _same(e["int_keys"][0], t["int_keys"][0])
    assert e["int_keys"][7] == "seven"
    assert e["dtype"] == ember.bfloat16 and t["dtype"] == torch.bfloat16
    assert str(e["device"]) == str(t["device"]) == "cpu"
    assert e["grad"].requires_grad and t["grad"].requires_grad and e["grad"].is_leaf
    assert isinstance(e["param"], ember.nn.Parameter) and isinstance(t["param"], torch.nn.Parameter)
    _same(e["param"], t["param"])


def test_nested_containers_torch_to_ember():
    _compare_nested(ember.load(_torch_save(_nested(torch))), _nested(torch))


def test_nested_containers_ember_to_torch():
    _compare_nested(_nested(ember), torch.load(_ember_save(_nested(ember))))


def test_tensor_with_python_attributes_from_torch():
    t = torch.ones(2)
    t.note = "hi"
    back = ember.load(_torch_save({"t": t}))
    assert back["t"].note == "hi" and back["t"].tolist() == [1.0, 1.0]


def _model(lib):
    lib.manual_seed(0)
    return lib.nn.Sequential(lib.nn.Linear(5, 8), lib.nn.GELU(), lib.nn.LayerNorm(8), lib.nn.Linear(8, 3))


def _copy_state(src, dst):
    dst.load_state_dict({k: ember.from_numpy(v.detach().numpy().copy()) for k, v in src.state_dict().items()})


@pytest.mark.parametrize("opt_name,kwargs", [("AdamW", dict(lr=0.01, weight_decay=0.1)),
                                             ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True))])
def test_training_resumes_across_libraries(opt_name, kwargs):
    """torch trains 3 steps and checkpoints; ember resumes from it for 3 steps; torch resumes from
    ember's checkpoint for 3 more: the losses match torch training straight through."""
    straight = _model(torch)
    want = _resume(torch, straight, getattr(torch.optim, opt_name)(straight.parameters(), **kwargs), 0, 9, seed=1)

    tm = _model(torch)
    topt = getattr(torch.optim, opt_name)(tm.parameters(), **kwargs)
    got = _resume(torch, tm, topt, 0, 3, seed=1)
    ckpt = ember.load(_torch_save({"model": tm.state_dict(), "optimizer": topt.state_dict(), "step": 3}))
    assert ckpt["step"] == 3
    em = _model(ember)
    em.load_state_dict(ckpt["model"])
    eopt = getattr(ember.optim, opt_name)(em.parameters(), **kwargs)
    eopt.load_state_dict(ckpt["optimizer"])
    got += _resume(ember, em, eopt, 3, 6, seed=1)

    back = torch.load(_ember_save({"model": em.state_dict(), "optimizer": eopt.state_dict(), "step": 6}))
    tm2 = _model(torch)
    tm2.load_state_dict(back["model"])
    topt2 = getattr(torch.optim, opt_name)(tm2.parameters(), **kwargs)
    topt2.load_state_dict(back["optimizer"])
    got += _resume(torch, tm2, topt2, 6, 9, seed=1)
    np.testing.assert_allclose(got, want, rtol=2e-5)


def _resume(lib, model, opt, start, stop, seed):
    rng = np.random.default_rng(seed)
    losses = []
    for step in range(stop):
        x = rng.standard_normal((6, 5)).astype(np.float32)
        y = rng.integers(0, 3, 6)
        if step < start:
            continue
        loss = lib.nn.functional.cross_entropy(model(lib.from_numpy(x)), lib.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_torch_transformer_state_dict_loads_into_ember():
    torch.manual_seed(0)
    tm = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True), 2)
    em = ember.nn.TransformerEncoder(ember.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True), 2)
    em.load_state_dict(ember.load(_torch_save(tm.state_dict())))
    x = np.random.default_rng(0).standard_normal((2, 5, 16)).astype(np.float32)
    with torch.no_grad():
        want = tm.train()(torch.from_numpy(x)).numpy()  # train mode: torch's regular (non fast-path) kernels
    np.testing.assert_allclose(em(ember.from_numpy(x)).detach().numpy(), want, rtol=1e-4, atol=1e-5)


def test_map_location_forms(monkeypatch):
    from ember.serialization import torch_format
    monkeypatch.setattr(torch_format, "_location", lambda t: "cuda:0")  # pretend it was saved on a GPU
    buf = _ember_save({"w": ember.ones(3)})
    data = buf.getvalue()
    assert torch.load(io.BytesIO(data), map_location="cpu")["w"].tolist() == [1.0] * 3
    if not ember.cuda.is_available():
        with pytest.raises(RuntimeError, match=r"cuda:0 but ember.cuda.is_available\(\) is False.*map_location='cpu'"):
            ember.load(io.BytesIO(data))
    for ml in ["cpu", ember.device("cpu"), {"cuda:0": "cpu"}, lambda storage, loc: storage]:
        assert ember.load(io.BytesIO(data), map_location=ml)["w"].tolist() == [1.0] * 3
    seen = []
    back = ember.load(io.BytesIO(data), map_location=lambda s, loc: seen.append(loc) or s.to("cpu"))
    assert seen == ["cuda:0"] and back["w"].tolist() == [1.0] * 3
    with pytest.raises(TypeError, match="map_location returned int"):
        ember.load(io.BytesIO(data), map_location=lambda s, loc: 3)


def test_mmap_load(tmp_path):
    path = tmp_path / "m.pt"
    torch.save({"a": torch.arange(1000, dtype=torch.float64), "b": torch.ones(3, dtype=torch.bfloat16)}, path)
    back = ember.load(path, mmap=True)
    assert back["a"].tolist() == list(map(float, range(1000))) and back["b"].dtype == ember.bfloat16
    back["a"].add_(1.0)  # copy-on-write: the file is unchanged
    assert torch.load(path)["a"][0].item() == 0.0
    with pytest.raises(ValueError, match="mmap=True needs a file path"):
        ember.load(io.BytesIO(path.read_bytes()), mmap=True)


class Config:
    def __init__(self, n):
        self.n = n


def test_weights_only_refuses_arbitrary_globals_and_allows_safe_ones():
    buf = _torch_save({"cfg": Config(3), "w": torch.ones(1)})
    with pytest.raises(es.UnpicklingError, match=r"Weights only load failed.*test_serialization_torch.Config.*"
                                                 r"weights_only=False.*add_safe_globals"):
        ember.load(io.BytesIO(buf.getvalue()))
    assert ember.load(io.BytesIO(buf.getvalue()), weights_only=False)["cfg"].n == 3
    with es.safe_globals([Config]):
        assert ember.load(io.BytesIO(buf.getvalue()))["cfg"].n == 3
    with pytest.raises(es.UnpicklingError):
        ember.load(io.BytesIO(buf.getvalue()))


def _zip_with_pickle(payload: bytes) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", "3\n")
    buf.seek(0)
    return buf


def test_weights_only_never_runs_a_hostile_pickle(tmp_path):
    marker = tmp_path / "pwned"

    class Hostile:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    buf = _zip_with_pickle(pickle.dumps({"x": Hostile()}, protocol=2))
    with pytest.raises(es.UnpicklingError, match="Weights only load failed.*(posix|os).system"):
        ember.load(buf)
    assert not marker.exists()
    with pytest.raises(es.UnpicklingError, match="torch object ember cannot rebuild"):
        ember.load(_torch_save(torch.nn.Linear(2, 2)), weights_only=False)


def test_unsupported_dtypes_and_corrupt_files_raise_clearly(tmp_path):
    with pytest.raises(es.UnpicklingError, match="int16 data, a dtype ember does not support"):
        ember.load(_torch_save({"s": torch.ones(2, dtype=torch.int16)}))
    data = _torch_save({"w": torch.ones(100)}).getvalue()
    with pytest.raises(es.UnpicklingError, match=r"\[load\].*not a valid torch checkpoint"):
        ember.load(io.BytesIO(data[: len(data) // 2]))
    with pytest.raises(es.UnpicklingError, match="without a data.pkl record"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("archive/other", b"x")
        ember.load(io.BytesIO(buf.getvalue()))
    with pytest.raises(es.UnpicklingError, match="legacy"):
        ember.load(io.BytesIO(pickle.dumps({"a": 1}, protocol=2)))


def test_file_layout_and_formats(tmp_path):
    path = tmp_path / "x.pt"
    ember.save({"a": ember.ones(2)}, path)
    names = zipfile.ZipFile(path).namelist()
    assert names == ["archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/version"]
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("archive/data/0")
    raw = path.read_bytes()
    name_len, extra_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little"), \
        int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0, "storage data is 64-byte aligned like torch's"
    st = tmp_path / "x.safetensors"
    ember.save({"a": ember.ones(2)}, st)  # the extension picks safetensors
    from safetensors.torch import load_file
    assert load_file(str(st))["a"].tolist() == [1.0, 1.0] and ember.load(st)["a"].tolist() == [1.0, 1.0]
    ember.save({"a": ember.ones(2)}, tmp_path / "y.bin", format="safetensors")
    assert ember.load(tmp_path / "y.bin")["a"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="format must be one of"):
        ember.save({}, tmp_path / "z", format="npz")


def test_ember_modules_pickle_with_weights_only_false():
    model = _model(ember)
    back = ember.load(_ember_save(model), weights_only=False)
    x = ember.ones(2, 5)
    assert back(x).tolist() == model(x).tolist()
    with pytest.raises(es.UnpicklingError, match="Weights only load failed"):
        ember.load(_ember_save(model))


def test_runtime_imports_without_the_safetensors_extra_and_says_what_to_install(tmp_path):
    # safetensors is an optional extra: `import ember` must not need it; using the format names it.
    code = (
        "import sys; sys.modules['safetensors'] = None\n"
        "import ember\n"
        "ember.save({'w': ember.ones(2)}, %r)\n"
        "try:\n"
        "    ember.save({'w': ember.ones(2)}, %r)\n"
        "except ImportError as e:\n"
        "    print(e)\n" % (str(tmp_path / "a.pt"), str(tmp_path / "a.safetensors")))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'ember[safetensors]'" in out.stdout
    assert (tmp_path / "a.pt").exists() and not (tmp_path / "a.safetensors").exists()
