"""Python indexing (Tensor.__getitem__ / __setitem__) vs torch over a table of index expressions."""
import numpy as np
import pytest
import torch

import ember
from numcheck.seeds import case_seed, replay_hint, rng_for_test
from optest import assert_close, to_ember, to_torch

# torch warns about numpy's legacy "list of sequences is a tuple" rule, which it (and ember) still follow.
pytestmark = pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning")


def _idx(lib, spec):
    """Builds an index for `lib` from a spec: tensors are given as ("t", values, dtype)."""
    if isinstance(spec, tuple) and len(spec) == 3 and spec[0] == "t":
        _, values, dtype = spec
        arr = np.array(values, dtype=dtype)
        return ember.from_numpy(arr) if lib is ember else torch.from_numpy(arr)
    if isinstance(spec, tuple):
        return tuple(_idx(lib, s) for s in spec)
    return spec


def T(values, dtype="int64"):
    return ("t", values, dtype)


# Index expressions on a tensor of shape (4, 5, 6).
INDICES = [
    0, -1, 3, slice(None), slice(1, 3), slice(None, None, 2), slice(-3, None), slice(1, 100, 3), slice(5, 2),
    None, Ellipsis, (), (1, 2), (1, -2, 3), (slice(None), 1), (Ellipsis, 1), (None, 1, None), (1, Ellipsis, None),
    (slice(1, 3), None, slice(None, None, 2)), (Ellipsis, slice(2, 4)), (0, 0, 0),
    [0, 2], [3, 3, 0], [-1, 0], [[0, 1], [2, 3]], [True, False, True, False],
    (slice(None), [0, 4, 1]), ([0, 1], [1, 2]), ([0, 1], slice(None), [1, 2]), (slice(None), [0, 1], [2, 3]),
    (1, [0, 1], slice(None)), ([0, 2], 1), ([[0], [1]], [0, 2]), (Ellipsis, [0, 5]), (None, [1, 2]),
    T([1, 0]), T([[1], [2]]), T(1), T([0, 1], "int32"), (T([0, 1]), slice(1, 3), T([2, 3])),
    T([True, False, True, True], "bool"), (slice(None), T([True, False, False, True, True], "bool")),
    T(np.eye(4, 5, dtype=bool), "bool"), (Ellipsis, T([True, False] * 3, "bool")), T(True, "bool"), T(False, "bool"),
    True, False, (0, True), (Ellipsis, None, 1),
]


def _name(spec):
    return repr(spec).replace(" ", "")


@pytest.mark.parametrize("spec", INDICES, ids=_name)
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_getitem_matches_torch(spec, dtype):
    rng = rng_for_test()
    a = (rng.standard_normal((4, 5, 6)) * 3)
    a = a > 0 if dtype == "bool" else a.astype(dtype)
    t, e = to_torch(a, dtype), to_ember(a, dtype)
    expected = t[_idx(torch, spec)]
    actual = e[_idx(ember, spec)]
    assert tuple(actual.shape) == tuple(expected.shape)
    assert_close(actual, expected, dtype, f"x[{spec!r}]")
    basic = not isinstance(spec, (list, bool)) and not (isinstance(spec, tuple) and any(
        isinstance(s, (list, bool)) or (isinstance(s, tuple) and s and s[0] == "t") for s in spec)) and not (
        isinstance(spec, tuple) and spec and spec[0] == "t")
    if basic:  # ints, slices, None and Ellipsis give views (zero copy)
        assert actual._storage_ptr() == e._storage_ptr()
        assert actual.storage_offset() == expected.storage_offset()


@pytest.mark.parametrize("spec", INDICES[:20], ids=_name)
def test_getitem_noncontiguous(spec):
    rng = rng_for_test()
    a = rng.standard_normal((4, 5, 6)).astype(np.float32)
    t = to_torch(a, "float32")
    e = to_ember(a, "float32", noncontiguous=True)
    assert_close(e[_idx(ember, spec)], t[_idx(torch, spec)], "float32", f"x[{spec!r}] (strided)")


SET_INDICES = [s for s in INDICES if not (isinstance(s, (list, tuple)) and "t" == (s[0] if s else None) and False)]


@pytest.mark.parametrize("spec", SET_INDICES, ids=_name)
@pytest.mark.parametrize("value_kind", ["scalar", "tensor", "broadcast"])
def test_setitem_matches_torch(spec, value_kind):
    rng = rng_for_test()
    a = rng.standard_normal((4, 5, 6))
    t, e = to_torch(a, "float64"), to_ember(a, "float64")
    shape = tuple(t[_idx(torch, spec)].shape)
    if value_kind == "scalar":
        tv, ev = 2.5, 2.5
    else:
        vshape = shape if value_kind == "tensor" else shape[-1:]
        v = rng.standard_normal(vshape)  # torch's advanced setitem needs matching dtypes
        tv, ev = torch.from_numpy(v), ember.from_numpy(v)
    dup = isinstance(spec, list) and len(set(map(str, spec))) != len(spec)
    if dup and value_kind != "scalar":
        pytest.skip("duplicate targets: torch leaves the winner unspecified")
    t[_idx(torch, spec)] = tv
    e[_idx(ember, spec)] = ev
    assert_close(e, t, "float64", f"x[{spec!r}] = {value_kind}")


@pytest.mark.parametrize("spec", [None, Ellipsis, (), True, False, (None, None), (Ellipsis, None), (None, Ellipsis)],
                         ids=_name)
def test_getitem_0d(spec):
    e, t = ember.from_numpy(np.array(3.5)), torch.tensor(3.5, dtype=torch.float64)
    assert_close(e[spec], t[spec], "float64", f"0-d x[{spec!r}]")


def test_numpy_and_list_values():
    a = np.arange(20.0).reshape(4, 5)
    e, t = ember.from_numpy(a.copy()), torch.from_numpy(a.copy())
    for idx in [np.array([0, 3]), (np.int64(1), np.array([True, False, True, False, True])), np.int32(2)]:
        assert_close(e[idx], t[idx], "float64", f"x[{idx!r}]")
    e[1] = [1.0, 2.0, 3.0, 4.0, 5.0]
    t[1] = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)
    assert_close(e, t, "float64", "x[1] = list")


def test_setitem_through_view_and_version():
    e = ember.from_numpy(np.zeros((3, 4), np.float32))
    v0 = e._version
    e[1, 1:3] = 5
    e[:, 0] = ember.from_numpy(np.array([1.0, 2.0, 3.0], np.float32))
    e[0] = ember.from_numpy(np.ones((1, 4), np.float32))  # leading size-1 dims are dropped, like torch
    expected = np.zeros((3, 4), np.float32)
    expected[1, 1:3] = 5
    expected[:, 0] = [1, 2, 3]
    expected[0] = 1
    np.testing.assert_array_equal(e.numpy(), expected)
    assert e._version > v0


def test_setitem_bool_mask_and_int_dtype():
    a = np.arange(12).reshape(3, 4)
    e = ember.from_numpy(a.copy())
    t = torch.from_numpy(a.copy())
    e[e > 5] = 0
    t[t > 5] = 0
    np.testing.assert_array_equal(e.numpy(), t.numpy())
    e[[0, 2], [1, 3]] = ember.from_numpy(np.array([7.9, -3.2]))  # float values cast to int64 (torch would raise)
    t[[0, 2], [1, 3]] = torch.tensor([7, -3])
    np.testing.assert_array_equal(e.numpy(), t.numpy())
    e[1:, 0] = ember.from_numpy(np.array([1.5, 2.5]))
    t[1:, 0] = torch.tensor([1.5, 2.5])
    np.testing.assert_array_equal(e.numpy(), t.numpy())


def test_getitem_grad():
    a = rng_for_test().standard_normal((4, 5))
    e = ember.from_numpy(a.copy()).requires_grad_()
    t = torch.from_numpy(a.copy()).requires_grad_()
    for lib, x in ((ember, e), (torch, t)):
        idx = lib.from_numpy(np.array([0, 2, 0])) if lib is ember else torch.tensor([0, 2, 0])
        y = x[1:, ::2].sum() + (x[idx, 1:] * 2).sum() + x[x > 0].sum() + x[None, ..., 3].sum()
        y.backward()
    np.testing.assert_allclose(e.grad.numpy(), t.grad.numpy())


ERRORS = [
    (lambda x: x[4], IndexError, r"index 4 is out of bounds for dimension 0 with size 4"),
    (lambda x: x[0, -6], IndexError, r"index -6 is out of bounds for dimension 0 with size 5"),
    (lambda x: x[0, 0, 0, 0], IndexError, r"too many indices for tensor of dimension 3"),
    (lambda x: x[..., ...], IndexError, r"single ellipsis"),
    (lambda x: x[::-1], ValueError, r"step must be greater than zero"),
    (lambda x: x[[0, 9]], IndexError, r"index 9 is out of bounds for dimension 0 with size 4"),
    (lambda x: x[ember.from_numpy(np.array([0.5]))], IndexError, r"tensors used as indices must be long"),
    (lambda x: x[ember.from_numpy(np.array([True, False]))], IndexError, r"The shape of the mask \[2\] at index 0"),
    (lambda x: x["a"], IndexError, r"only integers, slices"),
    (lambda x: x.__setitem__(9, 1.0), IndexError, r"index 9 is out of bounds"),
]


@pytest.mark.parametrize("fn,exc,pattern", ERRORS)
def test_errors(fn, exc, pattern):
    x = ember.from_numpy(np.zeros((4, 5, 6), np.float32))
    with pytest.raises(exc, match=pattern):
        fn(x)


def _random_index(rng, shape):
    """A random mix of ints, slices, None, int lists/tensors, bool masks and Ellipsis for `shape`."""
    items, d = [], 0
    for _ in range(rng.randrange(1, len(shape) + 2)):
        if d >= len(shape):
            items.append(None)
            continue
        size, k = shape[d], rng.randrange(7)
        if k == 0 and size:
            items.append(rng.randrange(-size, size))
        elif k == 1:
            ends = [None] + list(range(-size - 2, size + 2))
            items.append(slice(rng.choice(ends), rng.choice(ends), rng.choice([None, 1, 2, 3])))
        elif k == 2:
            items.append(None)
            continue
        elif k == 3 and size:
            items.append([rng.randrange(-size, size) for _ in range(rng.randrange(1, 4))])
        elif k == 4:
            items.append(T([rng.randrange(size) for _ in range(2)] if size else []))
        elif k == 5:
            items.append(T([rng.random() < 0.5 for _ in range(size)], "bool"))
        else:
            items.append(slice(None))
        d += 1
    if rng.random() < 0.3:
        items.insert(rng.randrange(len(items) + 1), Ellipsis)
    return tuple(items)


def test_random_index_expressions():
    import random
    seed = case_seed("random index expressions")
    rng = random.Random(seed)
    for _ in range(300):
        shape = tuple(rng.randrange(0, 4) for _ in range(rng.randrange(1, 4)))
        spec = _random_index(rng, shape)
        a = np.random.default_rng(rng.randrange(2**31)).standard_normal(shape)
        t, e = torch.from_numpy(a.copy()), ember.from_numpy(a.copy())
        where = f"seed={seed}{replay_hint()} shape={shape} index={spec!r}"
        try:
            expected = t[_idx(torch, spec)]
        except (IndexError, RuntimeError, ValueError):
            with pytest.raises((IndexError, RuntimeError, ValueError)):
                e[_idx(ember, spec)]
            continue
        assert_close(e[_idx(ember, spec)], expected, "float64", where)
        ids = torch.arange(t.numel()).reshape(shape)[_idx(torch, spec)]
        if ids.numel() != ids.unique().numel():
            continue  # duplicate targets: torch leaves the winner of an assignment unspecified
        v = np.random.default_rng(rng.randrange(2**31)).standard_normal(tuple(expected.shape))
        t[_idx(torch, spec)] = torch.from_numpy(v)
        e[_idx(ember, spec)] = ember.from_numpy(v)
        assert_close(e, t, "float64", where + " (setitem)")
