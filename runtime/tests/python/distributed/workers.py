"""Rank programs for the distributed tests: `python workers.py SCENARIO OUT_DIR` on every rank.

Each rank records named checks ({"name", "ok", "detail"}) in OUT_DIR/SCENARIO.RANK.json; the pytest
side asserts on them. References are computed locally in numpy: every rank can rebuild every other
rank's inputs from the seeds.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
import zlib

import numpy as np

import ember
import ember.distributed as dist
from ember import nn

RESULTS: list[dict] = []


def check(name: str, fn) -> None:
    try:
        fn()
        RESULTS.append({"name": name, "ok": True, "detail": ""})
    except Exception as e:  # noqa: BLE001 - every failure is recorded with its traceback
        detail = f"{type(e).__name__}: {e}\n{traceback.format_exc()[-1500:]}"
        RESULTS.append({"name": name, "ok": False, "detail": detail})


def dump(scenario: str, out_dir: str, rank: int, extra=None) -> None:
    with open(os.path.join(out_dir, f"{scenario}.{rank}.json"), "w") as f:
        json.dump({"checks": RESULTS, **(extra or {})}, f)


# ---- collectives ----------------------------------------------------------------------------------

DTYPES = ["float32", "float64", "float16", "bfloat16", "int32", "int64", "int8", "uint8", "bool"]
SHAPES = [(), (0,), (5,), (3, 4), (2, 0, 3)]
OPS = ["SUM", "AVG", "PRODUCT", "MIN", "MAX"]


def values(rank: int, case: str, shape, dtype: str) -> np.ndarray:
    """Rank `rank`'s input of a case, as float64/int64/bool numpy (exactly representable in dtype)."""
    rng = np.random.default_rng([rank, zlib.crc32(case.encode())])
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype in ("int32", "int64", "int8", "uint8"):
        return rng.integers(0, 4, size=shape).astype(np.int64)
    return (rng.integers(-16, 17, size=shape) / 8.0).astype(np.float64)  # exact in every float dtype


def to_ember(a: np.ndarray, dtype: str):
    a = np.asarray(a)
    wide = bool if dtype == "bool" else (np.float64 if a.dtype.kind == "f" else np.int64)
    return ember.from_numpy(np.array(a, dtype=wide, order="C")).to(getattr(ember, dtype))  # keeps 0-d


def as_numpy(t) -> np.ndarray:
    if t.dtype == ember.bfloat16:
        return t.float().numpy().astype(np.float64)
    a = t.detach().numpy()
    return a if a.dtype == bool else a.astype(np.float64 if a.dtype.kind == "f" else np.int64)


def rounded(a: np.ndarray, dtype: str) -> np.ndarray:
    """a (float64) rounded to dtype and back, as the collective's result must be."""
    return as_numpy(to_ember(a, dtype)) if dtype in ("float16", "bfloat16", "float32") else a


def reduce_ref(arrays, op: str, dtype: str):
    if dtype == "bool":
        return np.logical_or.reduce(arrays) if op in ("SUM", "MAX") else np.logical_and.reduce(arrays)
    stacked = np.stack(arrays)
    ref = {"SUM": stacked.sum(0), "AVG": stacked.sum(0) / len(arrays), "PRODUCT": stacked.prod(0),
           "MIN": stacked.min(0), "MAX": stacked.max(0)}[op]
    return rounded(ref, dtype)


def assert_equal(got, ref, what: str) -> None:
    if got.shape != ref.shape or not np.array_equal(got, ref):
        raise AssertionError(f"{what}: got {got.tolist()} expected {ref.tolist()}")


def collectives(rank: int, world: int) -> None:
    for dtype in DTYPES:
        for shape in SHAPES:
            for op in OPS:
                case = f"all_reduce/{dtype}/{shape}/{op}"

                def run(case=case, dtype=dtype, shape=shape, op=op):
                    t = to_ember(values(rank, case, shape, dtype), dtype)
                    ptr = t.data_ptr()
                    if op == "AVG" and dtype in ("int32", "int64", "int8", "uint8", "bool"):
                        try:
                            dist.all_reduce(t, dist.ReduceOp.AVG)
                        except TypeError:
                            return
                        raise AssertionError("AVG on an integer tensor did not raise TypeError")
                    dist.all_reduce(t, getattr(dist.ReduceOp, op))
                    assert t.data_ptr() == ptr and tuple(t.shape) == shape, "all_reduce must work in place"
                    assert_equal(as_numpy(t), reduce_ref([values(r, case, shape, dtype) for r in range(world)], op,
                                                         dtype), case)
                check(case, run)

    for dtype in DTYPES:
        for shape in [(), (0,), (7,), (2, 3)]:
            for src in range(world):
                case = f"broadcast/{dtype}/{shape}/src{src}"

                def run(case=case, dtype=dtype, shape=shape, src=src):
                    t = to_ember(values(rank, case, shape, dtype), dtype)
                    dist.broadcast(t, src=src)
                    assert_equal(as_numpy(t), rounded(values(src, case, shape, dtype), dtype), case)
                check(case, run)

    for dtype in ["float32", "bfloat16", "int64", "bool"]:
        for shape in [(), (0,), (3,), (2, 3)]:
            case = f"all_gather/{dtype}/{shape}"

            def run(case=case, dtype=dtype, shape=shape):
                mine = to_ember(values(rank, case, shape, dtype), dtype)
                outs = [ember.zeros(shape, dtype=getattr(ember, dtype)) for _ in range(world)]
                dist.all_gather(outs, mine)
                for r in range(world):
                    assert_equal(as_numpy(outs[r]), rounded(values(r, case, shape, dtype), dtype), f"{case} from {r}")
                flat_shape = (world * shape[0],) + shape[1:] if shape else (world,)
                for out_shape in [flat_shape, (world,) + shape]:
                    out = ember.zeros(out_shape, dtype=getattr(ember, dtype))
                    dist.all_gather_into_tensor(out, mine)
                    ref = np.stack([rounded(values(r, case, shape, dtype), dtype) for r in range(world)])
                    assert_equal(as_numpy(out), ref.reshape(out_shape), f"{case} into {out_shape}")
            check(case, run)

    for dtype in ["float32", "float64", "float16", "int32"]:
        for shape in [(0,), (3,), (2, 2)]:
            for op in ["SUM", "MAX", "AVG"]:
                if op == "AVG" and dtype == "int32":
                    continue
                case = f"reduce_scatter/{dtype}/{shape}/{op}"

                def run(case=case, dtype=dtype, shape=shape, op=op):
                    inputs = [values(rank, f"{case}/{k}", shape, dtype) for k in range(world)]
                    out = ember.zeros(shape, dtype=getattr(ember, dtype))
                    dist.reduce_scatter(out, [to_ember(a, dtype) for a in inputs], getattr(dist.ReduceOp, op))
                    ref = reduce_ref([values(r, f"{case}/{rank}", shape, dtype) for r in range(world)], op, dtype)
                    assert_equal(as_numpy(out), ref, case)
                    whole = to_ember(np.concatenate([a.reshape(-1) for a in inputs]), dtype)
                    out2 = ember.zeros((int(np.prod(shape)),), dtype=getattr(ember, dtype))
                    dist.reduce_scatter_tensor(out2, whole, getattr(dist.ReduceOp, op))
                    assert_equal(as_numpy(out2), ref.reshape(-1), case + " (tensor)")
                check(case, run)

    def non_contiguous():
        base = to_ember(values(rank, "nc", (4, 6), "float32"), "float32")
        view = base.t()[1:5]  # [4, 4] strided view
        dist.all_reduce(view)
        full = [values(r, "nc", (4, 6), "float32") for r in range(world)]
        ref = full[rank].copy()
        ref.T[1:5] = sum(f.T[1:5] for f in full)
        assert_equal(as_numpy(base), ref, "all_reduce on a transposed slice writes through the view only")
        b = to_ember(values(rank, "ncb", (3, 4), "float64"), "float64")
        dist.broadcast(b.t(), src=world - 1)
        assert_equal(as_numpy(b), values(world - 1, "ncb", (3, 4), "float64"), "broadcast into a transposed view")
    check("non_contiguous", non_contiguous)

    def async_handles():
        ts = [to_ember(values(rank, f"async{i}", (1000,), "float64"), "float64") for i in range(4)]
        works = [dist.all_reduce(t, async_op=True) for t in ts]
        works.append(dist.barrier(async_op=True))
        deadline = time.monotonic() + 30
        while not all(w.is_completed() for w in works):
            assert time.monotonic() < deadline, "async collectives never completed"
        for i, (w, t) in enumerate(zip(works, ts)):
            assert w.wait() is True and w.is_success() and w.result()[0] is t
            ref = sum(values(r, f"async{i}", (1000,), "float64") for r in range(world))
            assert_equal(as_numpy(t), ref, f"async all_reduce {i}")
        outs = [ember.zeros((2,)) for _ in range(world)]
        w = dist.all_gather(outs, ember.full((2,), float(rank)), async_op=True)
        w.wait()
        assert [o.tolist() for o in outs] == [[float(r)] * 2 for r in range(world)]
    check("async_handles", async_handles)

    def bad_arguments():
        for fn, exc in [(lambda: dist.all_gather([ember.zeros(2)], ember.zeros(2)), ValueError),
                        (lambda: dist.all_gather_into_tensor(ember.zeros(3), ember.zeros(2)), ValueError),
                        (lambda: dist.reduce_scatter(ember.zeros(2), [ember.zeros(3)] * world), ValueError),
                        (lambda: dist.broadcast(ember.zeros(2), src=world), ValueError),
                        (lambda: dist.all_reduce(ember.zeros(2), "sum"), TypeError),
                        (lambda: dist.all_reduce([1, 2]), TypeError)]:
            try:
                fn()
            except exc as e:
                assert "[distributed." in str(e), f"message does not name the op: {e}"
            else:
                raise AssertionError(f"expected {exc.__name__}")
    check("bad_arguments", bad_arguments)

    def subgroups():
        solo = dist.new_group([0])
        pair = dist.new_group(list(range(world)))
        t = ember.full((3,), float(rank + 1))
        result = dist.all_reduce(t, group=solo)
        if rank == 0:
            assert t.tolist() == [1.0] * 3 and dist.get_rank(solo) == 0 and dist.get_world_size(solo) == 1
        else:
            assert result is None and t.tolist() == [float(rank + 1)] * 3 and dist.get_rank(solo) == -1
        dist.all_reduce(t, group=pair)
        assert dist.get_world_size(pair) == world
        dist.destroy_process_group(solo)
        dist.destroy_process_group(pair)
    check("subgroups", subgroups)

    def info():
        assert dist.is_initialized() and dist.get_rank() == rank and dist.get_world_size() == world
        assert dist.get_backend() == "mpi" and dist.is_mpi_available()
        dist.barrier()
    check("info", info)


# ---- DDP -----------------------------------------------------------------------------------------

class Net(nn.Module):
    def __init__(self, dtype, extra: bool = False):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.norm = nn.LayerNorm(16)
        self.fc2 = nn.Linear(16, 3)
        self.register_buffer("steps", ember.zeros(2))
        if extra:
            self.side = nn.Linear(6, 3)     # used on rank 0 only
            self.never = nn.Linear(6, 3)    # used by no rank
        self.to(dtype=dtype)

    def forward(self, x, use_side: bool = False):
        y = self.fc2(ember.tanh(self.norm(self.fc1(x))))
        return y + self.side(x) if use_side else y


def build(seed: int, dtype, extra=False):
    ember.manual_seed(seed)
    return Net(dtype, extra)


def batch(step: int, rows: int, dtype):
    rng = np.random.default_rng([7, step])
    x = ember.from_numpy(rng.standard_normal((rows, 6))).to(dtype)
    y = ember.from_numpy(rng.standard_normal((rows, 3))).to(dtype)
    return x, y


def mse(out, y):
    return ((out - y) * (out - y)).mean()


def grads(model) -> dict:
    return {n: (None if p.grad is None else p.grad.double().numpy().copy()) for n, p in model.named_parameters()}


def assert_grads(got: dict, ref: dict, tol: float, what: str) -> None:
    for name, r in ref.items():
        g = got[name.replace("module.", "", 1)] if name not in got else got[name]
        if r is None or g is None:
            assert r is None and g is None, f"{what}: {name} grad presence differs (got {g is not None})"
            continue
        err = float(np.max(np.abs(g - r))) if r.size else 0.0
        assert err <= tol * max(1.0, float(np.max(np.abs(r)))), f"{what}: {name} differs by {err:.3g}"


def ddp(rank: int, world: int) -> None:
    from ember.nn.parallel import DistributedDataParallel as DDP
    rows = 4 * world
    for dtype, tol in [(ember.float64, 1e-12), (ember.float32, 2e-6)]:
        tag = str(dtype).split(".")[-1]

        def equivalence(dtype=dtype, tol=tol, tag=tag):
            local = build(100 + rank, dtype)          # different init per rank: DDP must broadcast rank 0's
            ref = build(100, dtype)                   # what rank 0 built, on the full batch
            # fc1.weight is registered first, so its gradient arrives last; this hook, registered before
            # DDP's, sees whether bucket 0 (the last layer's gradients) is already on the wire by then.
            launched_early, holder = [], []
            local.fc1.weight.register_post_accumulate_grad_hook(
                lambda p: launched_early.append(holder[0]._buckets[0].work is not None))
            model = DDP(local, bucket_cap_mb=100 / (1 << 20))  # ~100-byte buckets: several of them
            holder.append(model)
            assert len(model.bucket_sizes()) > 2, model.bucket_sizes()
            assert all(k.startswith("module.") for k in model.state_dict()), list(model.state_dict())[:3]
            for (n, p), (_, q) in zip(local.named_parameters(), ref.named_parameters()):
                assert np.array_equal(p.detach().double().numpy(), q.detach().double().numpy()), f"{n} not broadcast"
            for step in range(3):
                x, y = batch(step, rows, dtype)
                shard = slice(rank * 4, rank * 4 + 4)
                model.zero_grad()
                mse(model(x[shard]), y[shard]).backward()
                ref.zero_grad()
                mse(ref(x), y).backward()
                assert_grads(grads(local), grads(ref), tol, f"{tag} step {step}")
                with ember.no_grad():  # the same SGD step on both keeps them in lockstep
                    for p, q in zip(local.parameters(), ref.parameters()):
                        p.sub_(0.1 * p.grad)
                        q.sub_(0.1 * q.grad)
            assert launched_early and all(launched_early), "bucket 0 was not all-reduced before backward ended"
        check(f"ddp_equivalence/{tag}", equivalence)

        def no_sync(dtype=dtype, tol=tol, tag=tag):
            local, ref = build(5, dtype), build(5, dtype)
            model = DDP(local)
            x, y = batch(10, rows, dtype)
            x2, y2 = batch(11, rows, dtype)
            shard = slice(rank * 4, rank * 4 + 4)
            with model.no_sync():
                mse(model(x[shard]), y[shard]).backward()
            alone = build(5, dtype)
            mse(alone(x[shard]), y[shard]).backward()
            assert_grads(grads(local), grads(alone), tol, f"{tag} no_sync keeps local grads")
            mse(model(x2[shard]), y2[shard]).backward()
            mse(ref(x), y).backward()
            mse(ref(x2), y2).backward()
            assert_grads(grads(local), grads(ref), tol, f"{tag} accumulation then sync")
        check(f"ddp_no_sync/{tag}", no_sync)

    def unused():
        local, ref0 = build(9, ember.float64, extra=True), build(9, ember.float64, extra=True)
        model = DDP(local, find_unused_parameters=True)
        for step in range(2):
            x, y = batch(20 + step, rows, ember.float64)
            shard = slice(rank * 4, rank * 4 + 4)
            model.zero_grad()
            mse(model(x[shard], use_side=(rank == 0)), y[shard]).backward()
            assert local.never.weight.grad is None, "a parameter no rank used must keep grad None"
            # side is used by rank 0 only: the average is rank 0's gradient / world
            ref0.zero_grad()
            mse(ref0(x[0:4], use_side=True), y[0:4]).backward()
            expected = ref0.side.weight.grad.numpy() / world
            assert np.allclose(local.side.weight.grad.numpy(), expected, rtol=0, atol=1e-12), "side grad"
    check("ddp_find_unused_parameters", unused)

    def unused_without_flag_raises():
        model = DDP(build(9, ember.float64, extra=True))
        x, y = batch(30, 4, ember.float64)
        mse(model(x), y).backward()
        try:
            model(x)
        except RuntimeError as e:
            assert "side.weight" in str(e) and "find_unused_parameters" in str(e), str(e)
        else:
            raise AssertionError("the next forward did not raise after parameters got no gradient")
    check("ddp_unused_without_flag_raises", unused_without_flag_raises)

    def buffers():
        local = build(3, ember.float32)
        model = DDP(local)
        with ember.no_grad():
            local.steps.fill_(float(rank + 1))
        x, _ = batch(40, 4, ember.float32)
        model(x).sum().backward()
        assert local.steps.tolist() == [1.0, 1.0], f"buffers not broadcast from rank 0: {local.steps.tolist()}"
    check("ddp_buffers_broadcast", buffers)


# ---- failures ------------------------------------------------------------------------------------

def failure(rank: int, world: int, mode: str, out_dir: str) -> None:
    """mode raise1: rank 1 raises while rank 0 is in all_reduce; raise0: the reverse (rank 0 hosts the
    store); hang1: rank 1 never calls all_reduce (rank 0 must time out)."""
    victim = 0 if mode == "raise0" else 1
    if rank == victim and mode.startswith("raise"):
        time.sleep(0.5)
        raise ValueError(f"rank {rank} fails on purpose")
    if rank == victim and mode == "hang1":
        time.sleep(60)
        return
    t0 = time.monotonic()
    try:
        dist.all_reduce(ember.ones(4))
        outcome = {"error": None}
    except dist.DistBackendError as e:
        outcome = {"error": str(e), "type": type(e).__name__}
    outcome["elapsed"] = time.monotonic() - t0
    with open(os.path.join(out_dir, f"failure_{mode}.{rank}.json"), "w") as f:
        json.dump(outcome, f)


def main() -> None:
    scenario, out_dir = sys.argv[1], sys.argv[2]
    if scenario == "env":
        keys = ["RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK"]
        with open(os.path.join(out_dir, f"env.{os.environ['RANK']}.json"), "w") as f:
            json.dump({k: os.environ.get(k) for k in keys}, f)
        code = int(sys.argv[3]) if len(sys.argv) > 3 else 0
        if code and os.environ["RANK"] == "1":
            sys.exit(code)
        if code:
            time.sleep(60)  # the launcher must kill this rank when the other one fails
        return
    if scenario == "signal":
        import signal
        rank = os.environ["RANK"]
        signal.signal(signal.SIGTERM, lambda *_: (open(os.path.join(out_dir, f"sigterm.{rank}"), "w").close(),
                                                  os._exit(0)))
        open(os.path.join(out_dir, f"ready.{rank}"), "w").close()
        time.sleep(60)
        return
    timeout = float(os.environ.get("TEST_DIST_TIMEOUT", "60"))
    if scenario == "smoke":  # argv[3]: an init_method, with RANK/WORLD_SIZE from the environment
        dist.init_process_group("mpi", init_method=sys.argv[3] if len(sys.argv) > 3 else None, timeout=timeout)
        t = ember.full((3,), float(dist.get_rank() + 1))
        dist.all_reduce(t)
        with open(os.path.join(out_dir, f"smoke.{dist.get_rank()}.json"), "w") as f:
            json.dump({"sum": t.tolist(), "world": dist.get_world_size(), "group_rank": os.environ.get("GROUP_RANK")}, f)
        dist.destroy_process_group()
        return
    dist.init_process_group("mpi", timeout=timeout)
    rank, world = dist.get_rank(), dist.get_world_size()
    if scenario.startswith("failure_"):
        failure(rank, world, scenario[len("failure_"):], out_dir)
        return
    {"collectives": collectives, "ddp": ddp}[scenario](rank, world)
    dump(scenario, out_dir, rank)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
