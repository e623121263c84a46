"""Python API surface: ember.tensor and friends, repr, Python protocols, numpy/DLPack zero copy,
save/load. Expected values come from torch (the reference) wherever torch has the same API."""
import io
import math

import numpy as np
import pytest
import torch

import ember
from numcheck.seeds import rng_for_test
from ember.serialization import load, save

DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool"]


def E(name):
    return getattr(ember, name)


def T(name):
    return getattr(torch, name)


def torch_repr(t):
    return repr(t).replace("torch.", "ember.").replace("Backward0", "Backward")


# ---- ember.tensor: dtype inference and errors ----------------------------------------------------

@pytest.mark.parametrize("data", [
    [1, 2, 3], [1.0, 2, 3], [True, False], [[1, 2], [3, 4]], 3, 2.5, True, [], [[]], [[1.5], [2.5]],
    [True, 2], (1, 2.0), [[[1]], [[2]]], [1e300, -1e300], [2**62, -5],
])
def test_tensor_infers_dtype_and_values_like_torch(data):
    e, t = ember.tensor(data), torch.tensor(data)
    assert repr(e.dtype) == torch_repr(t.dtype)
    assert tuple(e.shape) == tuple(t.shape)
    assert e.tolist() == t.tolist()


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_with_explicit_dtype(dtype):
    data = [[0, 1, 2], [3, 1, 0]]
    e = ember.tensor(data, dtype=E(dtype))
    t = torch.tensor(data, dtype=T(dtype))
    assert e.dtype == E(dtype)
    assert e.tolist() == t.tolist()


def test_tensor_float_to_int_truncates_like_torch():
    assert ember.tensor([1.7, -2.7], dtype=ember.int64).tolist() == torch.tensor([1.7, -2.7], dtype=torch.int64).tolist()


def test_tensor_from_numpy_copies_and_keeps_dtype():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    e = ember.tensor(a)
    assert e.dtype == ember.float64 and e.tolist() == a.tolist()
    a[0, 0] = 100.0
    assert e.tolist()[0][0] == 0.0  # copied, unlike from_numpy
    nc = np.arange(12, dtype=np.int32).reshape(3, 4)[:, ::-2]  # negative strides are fine: tensor() copies
    assert ember.tensor(nc).tolist() == nc.tolist()
    assert ember.tensor(a, dtype=ember.bfloat16).dtype == ember.bfloat16


def test_tensor_from_tensor_is_a_detached_copy():
    src = ember.tensor([1.0, 2.0], requires_grad=True)
    e = ember.tensor(src)
    assert not e.requires_grad and e.tolist() == [1.0, 2.0]
    assert e.data_ptr() != src.data_ptr()


def test_tensor_of_scalar_tensors():
    parts = [ember.tensor(1.5), ember.tensor(2.5)]
    assert ember.tensor(parts).tolist() == [1.5, 2.5]


@pytest.mark.parametrize("data", [[[1, 2], [3]], [1, [2]], [[1], 2]])
def test_ragged_input_raises_value_error(data):
    with pytest.raises(ValueError, match=r"\[tensor\]"):
        ember.tensor(data)


def test_bad_element_types_raise_type_error():
    with pytest.raises(TypeError, match="str"):
        ember.tensor(["a", "b"])
    with pytest.raises(TypeError):
        ember.tensor([None])


def test_int_overflow_raises():
    with pytest.raises(RuntimeError, match="Overflow"):
        ember.tensor([2**70])


def test_requires_grad_on_int_tensor_raises():
    with pytest.raises(RuntimeError, match="floating point"):
        ember.tensor([1, 2], requires_grad=True)


def test_as_tensor_shares_numpy_memory_and_passes_tensors_through():
    a = np.zeros(4, dtype=np.float32)
    e = ember.as_tensor(a)
    a[1] = 7.0
    assert e.tolist() == [0.0, 7.0, 0.0, 0.0]
    assert ember.as_tensor(e) is e or ember.as_tensor(e)._is_same(e)
    assert ember.as_tensor([1, 2]).tolist() == [1, 2]
    assert ember.as_tensor(a, dtype=ember.float64).dtype == ember.float64


# ---- item / tolist / protocols -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_item_and_tolist_match_torch(dtype):
    rng = rng_for_test()
    a = rng.uniform(-5, 5, size=(2, 3))
    if dtype in ("uint8", "bool"):
        a = np.abs(a)
    t = torch.tensor(a.tolist()).to(T(dtype))
    e = ember.tensor(a.tolist()).to(E(dtype))
    assert e.tolist() == t.tolist()
    assert e[1, 2].item() == t[1, 2].item() if hasattr(e, "__getitem__") else True
    assert ember.tensor(t[0, 0].item(), dtype=E(dtype)).item() == t[0, 0].item()


def test_tolist_of_noncontiguous_views():
    base = ember.tensor(np.arange(24.0).reshape(2, 3, 4))
    a = np.arange(24.0).reshape(2, 3, 4)
    assert ember.as_strided(base, (4, 2), (1, 12), 1).tolist() == np.lib.stride_tricks.as_strided(
        a[0, 0, 1:], (4, 2), (8, 96)).tolist()
    assert base.permute(2, 0, 1).tolist() == a.transpose(2, 0, 1).tolist()


def test_item_on_many_elements_raises():
    with pytest.raises(RuntimeError, match="2 elements cannot be converted to Scalar"):
        ember.tensor([1.0, 2.0]).item()


def test_bool_float_int_index():
    assert bool(ember.tensor([0.0])) is False and bool(ember.tensor(3)) is True
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with more than one value is ambiguous"):
        bool(ember.tensor([1, 2]))
    assert float(ember.tensor([[2.5]])) == 2.5
    assert int(ember.tensor(7.9)) == 7
    assert [10, 20, 30][ember.tensor(1)] == 20
    with pytest.raises(TypeError, match="only integer tensors"):
        [1, 2][ember.tensor(1.0)]
    with pytest.raises(TypeError):
        float(ember.tensor([1.0, 2.0]))


def test_tensor_metadata_and_conversion_methods_match_torch():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    e, t = ember.from_numpy(a)[:, 1:, ::2], torch.from_numpy(a)[:, 1:, ::2]
    for name, args in [("size", ()), ("size", (1,)), ("stride", ()), ("stride", (-1,)), ("dim", ()), ("numel", ()),
                       ("element_size", ()), ("storage_offset", ()), ("is_contiguous", ()),
                       ("is_floating_point", ())]:
        assert tuple(np.atleast_1d(getattr(e, name)(*args))) == tuple(np.atleast_1d(getattr(t, name)(*args))), name
    assert e.size(dim=2) == t.size(dim=2)
    for args, kwargs in [((ember.float64,), {}), (("cpu",), {}), (("cpu", ember.int32), {}), ((), {"dtype": ember.half}),
                         ((ember.zeros(1, dtype=ember.int64),), {})]:
        r = e.to(*args, **kwargs)
        assert r.dtype == kwargs.get("dtype", args[-1] if args and isinstance(args[-1], ember.dtype) else
                                     (args[0].dtype if args and isinstance(args[0], ember.Tensor) else e.dtype))
    assert e.to(ember.float32)._is_same(e) and not e.to(ember.float32, copy=True)._is_same(e)
    x = ember.ones(3).requires_grad_()
    y = (x * 2).detach()
    assert not y.requires_grad and y.grad_fn is None
    z = x * 2
    assert z.detach_()._is_same(z) and z.grad_fn is None and not z.requires_grad
    assert not ember.ones(2).requires_grad_(False).requires_grad


def test_iter_len_hash_format():
    e = ember.tensor([[1, 2], [3, 4]])
    rows = list(e)
    assert len(rows) == 2 and rows[1].tolist() == [3, 4]
    with pytest.raises(TypeError, match="0-d"):
        iter(ember.tensor(1.0))
    assert len(e) == 2
    d = {e: "x"}
    assert d[e] == "x" and hash(e) == id(e)
    assert f"{ember.tensor(3.14159):.2f}" == "3.14"
    assert format(ember.tensor([1, 2])) == str(ember.tensor([1, 2]))


def test_array_protocol():
    e = ember.tensor([[1.0, 2.0]], dtype=ember.float64)
    a = np.asarray(e)
    assert a.dtype == np.float64 and a.tolist() == [[1.0, 2.0]]
    assert np.asarray(ember.tensor([1.0], dtype=ember.bfloat16)).dtype == np.float32
    assert np.array(e, dtype=np.float32).dtype == np.float32


# ---- repr ----------------------------------------------------------------------------------------

REPR_CASES = [
    [1.0, 2.0], [1.5, 2.0], [[1.0, 2.0]], 3.0, 2.5, [1, 2], 7, [True, False], [1e-5, 1.0], [1e10, 1.0],
    [float("nan"), 1.0, float("inf")], [float("-inf"), 2.5], [0.0, -0.0], [123456.789, 0.5],
    [[1.25, -3.5], [100.0, 0.001]], [[[1, -20]], [[300, 4]]], [], [[]],
]


@pytest.mark.parametrize("data", REPR_CASES, ids=str)
def test_repr_matches_torch(data):
    assert repr(ember.tensor(data)) == torch_repr(torch.tensor(data))


@pytest.mark.parametrize("dtype", DTYPES)
def test_repr_dtype_suffix_matches_torch(dtype):
    data = [[1, 0, 3], [2, 5, 1]]
    assert repr(ember.tensor(data, dtype=E(dtype))) == torch_repr(torch.tensor(data, dtype=T(dtype)))
    assert repr(ember.tensor([], dtype=E(dtype))) == torch_repr(torch.tensor([], dtype=T(dtype)))


@pytest.mark.parametrize("shape", [(2000,), (40, 40), (3, 400), (1001,), (11, 11, 11)])
def test_repr_summarizes_large_tensors_like_torch(shape):
    a = np.random.default_rng(0).uniform(-10, 10, size=shape).round(3)
    assert repr(ember.tensor(a.tolist())) == torch_repr(torch.tensor(a.tolist()))
    ints = np.arange(int(np.prod(shape))).reshape(shape)
    assert repr(ember.tensor(ints.tolist())) == torch_repr(torch.tensor(ints.tolist()))


def test_repr_grad_suffixes_match_torch():
    e = ember.tensor([[1.0, 2.0]], requires_grad=True)
    t = torch.tensor([[1.0, 2.0]], requires_grad=True)
    assert repr(e) == torch_repr(t)
    assert repr(e * 2.5) == torch_repr(t * 2.5)
    assert str(e) == repr(e)


def test_repr_wide_rows_wrap_like_torch():
    data = [float(i) + 0.5 for i in range(30)]
    assert repr(ember.tensor(data)) == torch_repr(torch.tensor(data))
    data = [i * 1000003 for i in range(40)]
    assert repr(ember.tensor(data)) == torch_repr(torch.tensor(data))


# ---- numpy zero copy -----------------------------------------------------------------------------

def test_from_numpy_and_numpy_share_memory():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    e = ember.from_numpy(a)
    a[0, 1] = -1.0
    assert e.tolist()[0][1] == -1.0
    b = e.numpy()
    assert np.shares_memory(a, b)
    assert ember.from_numpy(a[:, 1:]).tolist() == a[:, 1:].tolist()


def test_numpy_rejects_requires_grad_and_bfloat16():
    with pytest.raises(RuntimeError, match="requires grad"):
        ember.tensor([1.0], requires_grad=True).numpy()
    with pytest.raises(TypeError, match="bfloat16"):
        ember.tensor([1.0], dtype=ember.bfloat16).numpy()


# ---- DLPack --------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_dlpack_torch_to_ember_is_zero_copy(dtype):
    t = (torch.arange(12).reshape(3, 4) % 2).to(T(dtype))
    e = ember.from_dlpack(t)
    assert e.dtype == E(dtype) and tuple(e.shape) == (3, 4)
    assert e.data_ptr() == t.data_ptr()
    assert e.tolist() == t.tolist()


@pytest.mark.parametrize("dtype", DTYPES)
def test_dlpack_ember_to_torch_is_zero_copy(dtype):
    e = ember.tensor([[0, 1, 1], [1, 0, 1]], dtype=E(dtype))
    t = torch.from_dlpack(e)
    assert t.dtype == T(dtype) and t.data_ptr() == e.data_ptr()
    assert t.tolist() == e.tolist()


def test_dlpack_writes_are_visible_both_ways_and_strides_survive():
    t = torch.zeros(4, 6)[:, ::2]  # non-contiguous
    e = ember.from_dlpack(t)
    assert e.stride() == t.stride()
    t[1, 1] = 5.0
    assert e.tolist()[1][1] == 5.0
    back = torch.from_dlpack(e)
    back[0, 0] = -2.0
    assert t[0, 0].item() == -2.0


def test_dlpack_keeps_producer_memory_alive():
    t = torch.arange(1000, dtype=torch.float64)
    e = ember.from_dlpack(t)
    del t
    import gc
    gc.collect()
    assert e.tolist()[999] == 999.0
    e2 = ember.tensor([1.0, 2.0])
    t2 = torch.from_dlpack(e2)
    del e2
    gc.collect()
    assert t2.tolist() == [1.0, 2.0]


def test_dlpack_numpy_round_trip():
    a = np.arange(5, dtype=np.int32)
    e = ember.from_dlpack(a)
    a[2] = 42
    assert e.tolist() == [0, 1, 42, 3, 4]
    b = np.from_dlpack(ember.tensor([1.5, 2.5]))
    assert b.tolist() == [1.5, 2.5]


def test_dlpack_capsule_is_consumed_once():
    e = ember.tensor([1.0, 2.0])
    cap = e.__dlpack__()
    x = ember.from_dlpack(cap)
    assert x.data_ptr() == e.data_ptr()
    with pytest.raises(ValueError, match="consumed only once"):
        ember.from_dlpack(cap)
    # an unconsumed capsule frees its tensor handle without crashing
    e.__dlpack__(max_version=(1, 0))
    assert e.__dlpack_device__() == (1, 0)


def test_dlpack_rejects_requires_grad():
    with pytest.raises(RuntimeError, match="require gradient"):
        ember.tensor([1.0], requires_grad=True).__dlpack__()


# ---- save / load ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_save_load_round_trip_all_dtypes(tmp_path, dtype):
    rng = rng_for_test()
    vals = rng.uniform(0, 5, size=(3, 4)).tolist()
    e = ember.tensor(vals).to(E(dtype))
    path = tmp_path / "x.safetensors"
    save(e, path)
    back = load(path)
    assert back.dtype == e.dtype and back.tolist() == e.tolist()


def test_save_noncontiguous_and_state_dict_readable_by_safetensors(tmp_path):
    base = ember.tensor(np.arange(24.0).reshape(4, 6).tolist())
    sd = {"w": base.permute(1, 0), "b": ember.as_strided(base, (3,), (7,), 0), "h": ember.tensor([1.0],
                                                                                                   dtype=ember.bfloat16)}
    path = tmp_path / "sd.safetensors"
    save(sd, path)
    from safetensors.torch import load_file as torch_load_file
    ref = torch_load_file(str(path))
    assert ref["w"].tolist() == sd["w"].tolist() and ref["b"].tolist() == sd["b"].tolist()
    assert ref["h"].dtype == torch.bfloat16
    back = load(path)
    assert set(back) == {"w", "b", "h"} and back["w"].tolist() == sd["w"].tolist()


def test_load_reads_torch_written_files(tmp_path):
    from safetensors.torch import save_file as torch_save_file
    path = tmp_path / "t.safetensors"
    torch_save_file({"a": torch.arange(6, dtype=torch.int32).reshape(2, 3), "b": torch.ones(2, dtype=torch.bfloat16)},
                    str(path))
    back = load(path)
    assert back["a"].tolist() == [[0, 1, 2], [3, 4, 5]] and back["b"].dtype == ember.bfloat16


def test_save_load_nested_structure(tmp_path):
    obj = {"state": {0: {"step": 3, "exp_avg": ember.tensor([1.0, 2.0])}, 1: {"step": 3, "exp_avg": ember.tensor([3.0])}},
           "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "name": None, "amsgrad": False}],
           "note": "hello", "w": ember.tensor([0.5], requires_grad=True)}
    buf = io.BytesIO()
    save(obj, buf)
    buf.seek(0)
    back = load(buf)
    assert back["state"][0]["step"] == 3 and back["state"][1]["exp_avg"].tolist() == [3.0]
    assert back["param_groups"][0]["betas"] == (0.9, 0.999) and back["param_groups"][0]["name"] is None
    assert back["note"] == "hello" and back["w"].requires_grad and back["w"].is_leaf
    assert list(back["state"].keys()) == [0, 1]


def test_save_rejects_unsupported_leaves(tmp_path):
    with pytest.raises(TypeError, match=r"\[save\].*object at a"):
        save({"a": object()}, tmp_path / "bad.safetensors")


@pytest.mark.parametrize("blob", [b"", b"abc", b"\xff" * 8 + b"{}", (10).to_bytes(8, "little") + b"not json!!",
                                  (2).to_bytes(8, "little") + b"{}" + b"junk"])
def test_load_corrupt_file_raises_clear_error(tmp_path, blob):
    path = tmp_path / "corrupt.safetensors"
    path.write_bytes(blob)
    with pytest.raises(RuntimeError, match=r"\[load\].*not a valid safetensors file"):
        load(path)


def test_load_truncated_data_raises(tmp_path):
    path = tmp_path / "x.safetensors"
    save({"a": ember.tensor([1.0, 2.0, 3.0])}, path)
    data = path.read_bytes()
    path.write_bytes(data[:-4])
    with pytest.raises(RuntimeError, match=r"\[load\]"):
        load(path)


@pytest.mark.parametrize("value", [ember.tensor(2.5), ember.zeros(0, 3), ember.tensor(np.array(7, dtype=np.int32))])
def test_save_load_scalars_and_empty(tmp_path, value):
    save({"v": value}, tmp_path / "s.safetensors")
    back = load(tmp_path / "s.safetensors")["v"]
    assert tuple(back.shape) == tuple(value.shape) and back.dtype == value.dtype and back.tolist() == value.tolist()


def test_tensor_from_zero_dim_numpy_array_stays_zero_dim():
    assert tuple(ember.tensor(np.array(1.5)).shape) == ()
