"""Self-check of the native CUDA kernels that replaced the host fallback (cuda/sort.cu, layout.cu,
index_advanced.cu): every case runs the same ember call on CPU tensors and on their CUDA copies and
compares the results exactly (values bit for bit up to NaN payloads, sort/topk indices included,
ties too: both kernels order ties by index). Also checks errors, graph capture and that no op took
the host fallback. Prints one PASS/FAIL line per case; exits 1 on any failure.

    PYTHONPATH=runtime/python python3 bench/cuda_native_check.py [--device cpu]

`--device cpu` compares CPU with CPU: it only checks the script itself on a machine without a GPU.
"""
import argparse
import os
import sys
import traceback

os.environ.setdefault("EMBER_CUDA_LOG_FALLBACK", "1")  # the fallback would announce itself on stderr
import numpy as np

import ember

DTYPES = ["bool", "uint8", "int8", "int32", "int64", "float16", "bfloat16", "float32", "float64"]
FLOATS = ["float16", "bfloat16", "float32", "float64"]
rng = np.random.default_rng(1234)
results = []


def tensor(a, dtype):
    """An ember CPU tensor of `dtype` from numpy values (bfloat16 rounds from float32 on the CPU)."""
    a = np.asarray(a)
    if dtype == "bfloat16":
        return ember.from_numpy(np.ascontiguousarray(a.astype(np.float32))).to(ember.bfloat16)
    if dtype == "bool":
        return ember.from_numpy(np.ascontiguousarray(a != 0))
    if dtype in ("uint8", "int8", "int32", "int64"):
        a = np.round(a)
    return ember.from_numpy(np.ascontiguousarray(a.astype(dtype)))


def values(shape, dtype, kind="normal"):
    """Random inputs: 'normal', 'ties' (few distinct values), 'special' (NaN, +-0, +-inf mixed in)."""
    n = int(np.prod(shape)) if shape else 1
    if dtype == "bool":
        a = rng.integers(0, 2, n)
    elif kind == "ties":
        a = rng.integers(-2, 3, n).astype(np.float64)
    elif dtype == "uint8":
        a = rng.integers(0, 256, n)
    elif dtype == "int8":
        a = rng.integers(-128, 128, n)
    elif dtype in ("int32", "int64"):
        a = rng.integers(-(10 ** 6), 10 ** 6, n)
    else:
        a = rng.standard_normal(n) * 10
        if kind == "special" and n:
            pos = rng.integers(0, n, max(1, n // 5))
            a[pos] = rng.choice([np.nan, -0.0, 0.0, np.inf, -np.inf], len(pos))
    return tensor(a.reshape(shape), dtype)


def to_numpy(t):
    t = t.cpu()
    if t.dtype == ember.bfloat16:
        t = t.to(ember.float32)
    return t.numpy()


def same(a, b):
    """Exact equality: shapes, dtypes, values; for floats also NaN positions and signs of zeros."""
    if isinstance(a, (tuple, list)):
        if len(a) != len(b):
            return f"{len(a)} vs {len(b)} outputs"
        for i, (x, y) in enumerate(zip(a, b)):
            err = same(x, y)
            if err:
                return f"output {i}: {err}"
        return None
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} vs {b.dtype}"
    x, y = to_numpy(a), to_numpy(b)
    if x.shape != y.shape:
        return f"shape {x.shape} vs {y.shape}"
    if x.dtype.kind == "f":
        nx, ny = np.isnan(x), np.isnan(y)
        bad = (nx != ny) | (~nx & ((x != y) | (np.signbit(x) != np.signbit(y))))
    else:
        bad = x != y
    if bad.any():
        i = np.argwhere(bad)[0]
        return f"{int(bad.sum())} of {bad.size} differ, first at {tuple(int(v) for v in i)}: cpu {x[tuple(i)]} vs dev {y[tuple(i)]}"
    return None


def to_dev(obj, device):
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_dev(o, device) for o in obj)
    if obj is None or not hasattr(obj, "cuda"):
        return obj
    return obj.cuda() if device == "cuda" else obj.clone()


def record(name, err):
    results.append((name, err))
    print(("PASS " if err is None else "FAIL ") + name + ("" if err is None else f"  -- {err}"), flush=True)


def case(name, fn, *inputs, device):
    """fn(*inputs) on CPU vs fn(*inputs moved to the device); results compared exactly."""
    try:
        want = fn(*inputs)
        got = fn(*to_dev(inputs, device))
        if device == "cuda":
            ember.cuda.synchronize()
        record(name, same(want, got))
    except Exception as e:  # noqa: BLE001 - a crash is a failure of this case, keep going
        record(name, f"raised {type(e).__name__}: {e}".splitlines()[0] + "\n" + traceback.format_exc(limit=3))


def expect_error(name, fn, inputs, exc, text, device):
    try:
        fn(*to_dev(inputs, device))
        if device == "cuda":
            ember.cuda.synchronize()
        record(name, f"no {exc.__name__} raised")
    except exc as e:
        record(name, None if text in str(e) else f"message {str(e)!r} lacks {text!r}")
    except Exception as e:  # noqa: BLE001
        record(name, f"raised {type(e).__name__} instead of {exc.__name__}: {e}")


# ---- cases -----------------------------------------------------------------------------------------
def check_sort(dev):
    shapes = [((7,), 0), ((5, 33), 1), ((5, 33), 0), ((3, 4, 5), 1), ((3, 4, 5), 2), ((2, 70000), 1),
              ((3000, 3), 1), ((600, 2, 5), 0), ((0, 5), 1), ((5, 0), 1), ((), 0), ((1,), 0)]
    for dtype in DTYPES:
        kinds = ["normal", "ties"] + (["special"] if dtype in FLOATS else [])
        for shape, dim in shapes:
            for kind in kinds:
                if kind != "normal" and shape in ((2, 70000), (3000, 3)) and dtype not in ("float32", "int64", "float64"):
                    continue  # keep the run short: big shapes with special values on a few dtypes
                x = values(shape, dtype, kind)
                for desc in (False, True):
                    case(f"sort {dtype} {shape} dim={dim} {kind} desc={desc}",
                         lambda t: tuple(ember.sort(t, dim, descending=desc)), x, device=dev)
    for dtype in ("float32", "int32", "bfloat16"):
        x = values((6, 9), dtype, "ties")
        case(f"sort {dtype} transposed input (non-contiguous) dim=1",
             lambda t: tuple(ember.sort(t.transpose(0, 1), 1)), x, device=dev)
        case(f"argsort {dtype} sliced input dim=0 desc",
             lambda t: ember.argsort(t[:, ::2], 0, descending=True), x, device=dev)


def check_topk(dev):
    for dtype in DTYPES:
        for shape, k, dim in [((7,), 3, 0), ((5, 33), 5, 1), ((5, 33), 5, 0), ((3, 4, 50), 50, 2),
                              ((2, 50000), 10, 1), ((4, 6), 0, 1), ((0, 6), 2, 1), ((), 1, 0)]:
            for kind in ["normal", "ties"] + (["special"] if dtype in FLOATS else []):
                x = values(shape, dtype, kind)
                for largest in (True, False):
                    case(f"topk {dtype} {shape} k={k} dim={dim} {kind} largest={largest}",
                         lambda t: tuple(ember.topk(t, k, dim, largest=largest)), x, device=dev)
    x = values((8, 10), "float32")
    case("topk float32 transposed input", lambda t: tuple(ember.topk(t.transpose(0, 1), 3, 1)), x, device=dev)


def check_layout(dev):
    for dtype in DTYPES:
        a, b, c = values((2, 3, 4), dtype), values((2, 5, 4), dtype), values((2, 0, 4), dtype)
        case(f"cat {dtype} dim=1 (with an empty piece)", lambda *ts: ember.cat(list(ts), 1), a, b, c, device=dev)
        case(f"cat {dtype} dim=0 transposed pieces", lambda *ts: ember.cat([t.transpose(1, 2) for t in ts], 0),
             a, values((3, 3, 4), dtype), device=dev)
        case(f"cat {dtype} legacy 1-D empty skipped", lambda *ts: ember.cat(list(ts), 2), a, values((0,), dtype),
             values((2, 3, 1), dtype), device=dev)
        case(f"stack {dtype} dim=2", lambda *ts: ember.stack(list(ts), 2), a, values((2, 3, 4), dtype), device=dev)
        x = values((3, 4, 5), dtype)
        for dims in [(0,), (2,), (0, 2), (0, 1, 2), ()]:
            case(f"flip {dtype} dims={dims}", lambda t: ember.flip(t, dims), x, device=dev)
        case(f"flip {dtype} non-contiguous", lambda t: ember.flip(t.transpose(0, 2)[:, 1:], (1,)), x, device=dev)
        for shifts, dims in [((1,), (0,)), ((-2,), (2,)), ((7, -3), (1, 2)), ((2, 1, 3), (0, 1, 2)), ((5,), None),
                             ((0,), (1,))]:
            case(f"roll {dtype} shifts={shifts} dims={dims}", lambda t: ember.roll(t, shifts, dims), x, device=dev)
        case(f"roll {dtype} non-contiguous", lambda t: ember.roll(t.transpose(0, 1), (1, 2), (0, 2)), x, device=dev)
        for reps in [(2, 1, 3), (1, 2, 2, 1), (3, 1, 1, 1, 2), (2, 0, 1)]:
            case(f"repeat {dtype} reps={reps}", lambda t: t.repeat(*reps), x, device=dev)
        case(f"repeat {dtype} non-contiguous", lambda t: t.transpose(0, 2).repeat(2, 1, 2), x, device=dev)
        case(f"repeat {dtype} 0-dim", lambda t: t.repeat(3, 2), values((), dtype), device=dev)
    for dtype in ("float32", "bfloat16", "int8"):  # wider rows; dense pieces take the cudaMemcpy path
        a, b = values((64, 300), dtype), values((64, 200), dtype)
        case(f"cat {dtype} wide rows dim=1", lambda p, q: ember.cat([p, q], 1), a, b, device=dev)
        case(f"cat {dtype} wide rows dim=0", lambda p, q: ember.cat([p, q.transpose(0, 1)[:, :64].transpose(0, 1)], 0),
             a, values((64, 300), dtype), device=dev)
        for shifts, dims in [((7,), (1,)), ((5,), (0,)), ((3, 250), (0, 1))]:
            case(f"roll {dtype} wide rows shifts={shifts} dims={dims}", lambda t: ember.roll(t, shifts, dims), a,
                 device=dev)
        for reps in [(2, 1), (1, 2), (3, 2, 1)]:
            case(f"repeat {dtype} wide rows reps={reps}", lambda t: t.repeat(*reps), a, device=dev)
        case(f"flip {dtype} wide rows dim=0", lambda t: ember.flip(t, (0,)), a, device=dev)
    # 9 dims, every one repeated
    case("repeat float32 9-d all repeated", lambda t: t.repeat(*([2] * 9)), values((2,) * 9, "float32"), device=dev)
    # every other dim flipped: 17 dims that cannot merge, more than the kernel's 16 (split on the host)
    case("flip float32 17-d", lambda t: ember.flip(t, tuple(range(0, 17, 2))), values((2,) * 17, "float32"), device=dev)
    case("flip float32 0-size", lambda t: ember.flip(t, (0,)), values((0, 3), "float32"), device=dev)
    case("roll float32 0-size", lambda t: ember.roll(t, (1,), (1,)), values((0, 3), "float32"), device=dev)


def check_factories(dev):
    d = "cuda" if dev == "cuda" else "cpu"
    for dtype in DTYPES:
        dt = getattr(ember, dtype)
        for n, m in [(1, 1), (4, 4), (3, 7), (6, 2), (0, 3), (100, 130)]:
            record(f"eye {dtype} {n}x{m}", same(ember.eye(n, m, dtype=dt), ember.eye(n, m, dtype=dt, device=d)))
        if dtype == "bool":
            continue
        for start, end, steps in [(0, 1, 5), (-3.5, 7.25, 1000), (10, -10, 7), (2, 2, 3), (1.5, 8, 1), (0, 1, 0),
                                  (-100, 255, 64)]:
            record(f"linspace {dtype} {start}..{end} steps={steps}",
                   same(ember.linspace(start, end, steps, dtype=dt), ember.linspace(start, end, steps, dtype=dt, device=d)))


def perm_index(shape, dim, size):
    """An int64 index of `shape` whose entries along `dim` are distinct values in [0, size)."""
    out = np.empty(shape, np.int64)
    moved = np.moveaxis(out, dim, -1)
    for pos in np.ndindex(moved.shape[:-1]):
        moved[pos] = rng.permutation(size)[: moved.shape[-1]]
    return ember.from_numpy(out)


def check_index(dev):
    for dtype in DTYPES:
        x = values((4, 5, 6), dtype)
        src = values((4, 5, 6), dtype)
        for dim in (0, 1, 2):
            idx = perm_index([3, 4, 5], dim, (4, 5, 6)[dim])
            case(f"scatter {dtype} dim={dim}", lambda t, i, s: ember.scatter(t, dim, i, s), x, idx, src, device=dev)
        idx = perm_index([4, 2, 6], 1, 5)
        case(f"scatter {dtype} value", lambda t, i: t.scatter(1, i, value=1), x, idx, device=dev)

        i0 = ember.from_numpy(rng.integers(-4, 4, (3, 2)))
        i2 = ember.from_numpy(rng.integers(-6, 6, (2,)))
        case(f"index {dtype} x[i]", lambda t, i: t[i], x, i0, device=dev)
        case(f"index {dtype} x[:, i]", lambda t, i: t[:, i], x, ember.from_numpy(rng.integers(-5, 5, (7,))), device=dev)
        case(f"index {dtype} x[i, :, j] (separated, broadcast)", lambda t, i, j: t[i, :, j],
             x, i0, i2, device=dev)
        case(f"index {dtype} x[:, i, j] (adjacent)", lambda t, i, j: t[:, i, j],
             x, ember.from_numpy(rng.integers(0, 5, (4, 1))), ember.from_numpy(rng.integers(0, 6, (3,))), device=dev)
        case(f"index {dtype} non-contiguous x", lambda t, i: t.transpose(0, 2)[:, i], x,
             ember.from_numpy(rng.integers(-5, 5, (2, 3))), device=dev)
        case(f"index {dtype} bool mask", lambda t, m: t[m], x, tensor(rng.integers(0, 2, (4, 5)), "bool"), device=dev)
        case(f"index {dtype} empty index", lambda t, i: t[i], x, ember.from_numpy(np.zeros((0,), np.int64)), device=dev)
        case(f"index {dtype} 0-dim index", lambda t, i: t[i], x, ember.from_numpy(np.array(2)), device=dev)

        # index_put: distinct targets without accumulate; duplicates with accumulate (integer-valued
        # floats so the sum is exact in any order; bool accumulates as logical or)
        uniq = ember.from_numpy(rng.permutation(4)[:3].copy())
        v = values((3, 5, 6), dtype)
        case(f"index_put {dtype} x[i] = v", lambda t, i, w: ember.index_put(t, [i], w), x, uniq, v, device=dev)
        case(f"index_put {dtype} x[i] = scalar broadcast", lambda t, i, w: ember.index_put(t, [i], w), x, uniq,
             values((), dtype), device=dev)
        dup = ember.from_numpy(rng.integers(-4, 4, (9,)))
        xi, vi = tensor(rng.integers(-5, 6, (4, 5, 6)), dtype), tensor(rng.integers(-3, 4, (9, 5, 6)), dtype)
        case(f"index_put {dtype} accumulate with duplicates", lambda t, i, w: ember.index_put(t, [i], w, True),
             xi, dup, vi, device=dev)
        j = ember.from_numpy(rng.integers(0, 6, (9,)))
        case(f"index_put {dtype} x[i, :, j] accumulate", lambda t, i, jj, w: ember.index_put(t, [i, None, jj], w, True),
             xi, dup, j, tensor(rng.integers(-3, 4, (9, 5)), dtype), device=dev)

        def put_inplace(t, i, w):
            y = t.clone().transpose(0, 2)  # a non-contiguous self
            y.index_put_([None, None, i], w)
            return y
        case(f"index_put_ {dtype} in place on a transposed view", put_inplace, x, uniq, values((6, 5, 3), dtype),
             device=dev)

        def setitem_mask(t, m, w):
            y = t.clone()
            y[m] = w
            return y
        case(f"setitem {dtype} x[mask] = scalar", setitem_mask, x, tensor(rng.integers(0, 2, (4, 5, 6)), "bool"),
             values((), dtype), device=dev)

        mask = tensor(rng.integers(0, 2, (5, 6)), "bool")
        case(f"masked_select {dtype} broadcast mask", lambda t, m: ember.masked_select(t, m), x, mask, device=dev)
        case(f"masked_select {dtype} broadcast x", lambda t, m: ember.masked_select(t[0, 0], m), x,
             tensor(rng.integers(0, 2, (3, 4, 6)), "bool"), device=dev)
        case(f"masked_select {dtype} none selected", lambda t, m: ember.masked_select(t, m), x,
             tensor(np.zeros((4, 5, 6)), "bool"), device=dev)
        case(f"masked_select {dtype} non-contiguous", lambda t, m: ember.masked_select(t.transpose(0, 1), m), x,
             tensor(rng.integers(0, 2, (5, 4, 6)), "bool"), device=dev)
        z = values((6, 7), dtype, "special" if dtype in FLOATS else "ties")
        case(f"nonzero {dtype}", lambda t: ember.nonzero(t), z, device=dev)
        case(f"nonzero {dtype} non-contiguous 3-d", lambda t: ember.nonzero(t.transpose(0, 2)), values((3, 4, 5), dtype,
             "ties"), device=dev)
        case(f"nonzero {dtype} 0-dim", lambda t: ember.nonzero(t), values((), dtype), device=dev)
        case(f"nonzero {dtype} 0-size", lambda t: ember.nonzero(t), values((0, 4), dtype), device=dev)
    big = values((1 << 20,), "float32")
    case("masked_select float32 2^20", lambda t: ember.masked_select(t, t > 0), big, device=dev)
    case("nonzero float32 2^20", lambda t: ember.nonzero(t > 1), big, device=dev)
    case("index float32 embedding-like rows", lambda t, i: t[i], values((5000, 64), "float32"),
         ember.from_numpy(rng.integers(0, 5000, (4096,))), device=dev)


def check_errors(dev):
    x = values((4, 5), "float32")
    expect_error("index out of range raises IndexError", lambda t, i: t[i], (x, ember.from_numpy(np.array([0, 4]))),
                 IndexError, "index 4 is out of bounds for dimension 0 with size 4", dev)
    expect_error("index negative out of range raises IndexError", lambda t, i: t[:, i],
                 (x, ember.from_numpy(np.array([-6, 1]))), IndexError, "index -6 is out of bounds for dimension 1", dev)
    expect_error("index_put out of range raises IndexError", lambda t, i, w: ember.index_put(t, [i], w),
                 (x, ember.from_numpy(np.array([9])), values((), "float32")), IndexError, "index 9 is out of bounds", dev)
    expect_error("scatter out of range raises RuntimeError", lambda t, i, s: ember.scatter(t, 1, i, s),
                 (x, ember.from_numpy(np.full((2, 2), 5)), x), RuntimeError, "[scatter] index 5 is out of bounds", dev)


def check_capture():
    """The converted ops are graph-capturable: capture once, replay on new data, compare with the CPU."""
    x = values((64, 33), "float32", "special").cuda()
    y = values((64, 33), "float32").cuda()
    idx = ember.from_numpy(rng.integers(-64, 64, (50,))).cuda()
    sidx = perm_index([64, 33], 1, 33).cuda()
    ints = lambda: tensor(rng.integers(-5, 6, (64, 33)), "float32")  # noqa: E731 - exact sums in any order
    w = ints().cuda()
    g = ember.cuda.CUDAGraph()
    fns = [lambda a, b, i, s, w: tuple(ember.sort(a, 1, descending=True)),
           lambda a, b, i, s, w: tuple(ember.sort(a, 0)),
           lambda a, b, i, s, w: tuple(ember.topk(a, 5, 1)),
           lambda a, b, i, s, w: ember.cat([a, b], 0),
           lambda a, b, i, s, w: ember.flip(a, (0, 1)),
           lambda a, b, i, s, w: ember.roll(a, (3, -5), (0, 1)),
           lambda a, b, i, s, w: a.repeat(2, 3),
           lambda a, b, i, s, w: a[i],
           lambda a, b, i, s, w: ember.index_put(w, [i], w[:50], True),
           lambda a, b, i, s, w: ember.scatter(a, 1, s, b)]
    try:
        ember.cuda.synchronize()
        with ember.cuda.graph(g):
            outs = [fn(x, y, idx, sidx, w) for fn in fns]
        for trial in range(2):
            hx, hy, hw = values((64, 33), "float32", "special"), values((64, 33), "float32"), ints()
            hidx = ember.from_numpy(rng.integers(-64, 64, (50,)))
            for dst, src in ((x, hx), (y, hy), (w, hw), (idx, hidx)):
                dst.copy_(src.cuda())
            g.replay()
            ember.cuda.synchronize()
            for k, (fn, out) in enumerate(zip(fns, outs)):
                record(f"graph capture replay {trial} op {k}", same(fn(hx, hy, hidx, sidx.cpu(), hw), out))
    except Exception as e:  # noqa: BLE001
        record("graph capture", f"raised {type(e).__name__}: {e}")
    try:
        with ember.cuda.graph(ember.cuda.CUDAGraph()):
            ember.nonzero(x)
        record("nonzero during capture raises", "no error raised")
    except Exception as e:  # noqa: BLE001
        record("nonzero during capture raises", None)
        print(f"     ({type(e).__name__}: {str(e)[:160]})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--only", default="", help="comma-separated subset: sort,topk,layout,factories,index,errors,capture")
    args = ap.parse_args()
    dev = args.device
    if dev == "cuda" and not ember.cuda.is_available():
        print("no CUDA device: use --device cpu to check the script itself")
        return 2
    steps = {"sort": check_sort, "topk": check_topk, "layout": check_layout, "factories": check_factories,
             "index": check_index, "errors": check_errors}
    only = [s for s in args.only.split(",") if s]
    for name, fn in steps.items():
        if not only or name in only:
            fn(dev)
    if dev == "cuda" and (not only or "capture" in only):
        check_capture()
    failed = [n for n, e in results if e is not None]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    for n in failed[:40]:
        print("  FAILED", n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
