"""GPU checks of ember.distributed, one mode per call, run on every rank by a launcher
(bench/distributed_gpu_check.sh drives them; results go to --out as JSON):

  nccl      ember launcher, any world size: every collective on CUDA tensors against numpy (dtypes,
            shapes incl. 0-size, ops, async handles), an all_reduce captured in a CUDA graph and
            replayed, and DDP gradients against one process on the whole batch.
  overhead  ember launcher, 1 rank: mini-GPT step (GPU config) without and with DDP, ember and torch.
  busbw     ember launcher (--lib ember) or torchrun (--lib torch): all_reduce bus bandwidth by size,
            nccl-tests' formula busbw = bytes / time * 2 (n - 1) / n.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))


def write(out_dir: str, name: str, payload: dict) -> None:
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{name}.json")
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)
    print(f"-> {path}", flush=True)


# ---- nccl: correctness ---------------------------------------------------------------------------

def mode_nccl(args) -> None:
    import ember
    import ember.distributed as dist
    local = int(os.environ.get("LOCAL_RANK", 0))
    ember.cuda.set_device(local)
    dist.init_process_group("nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    dev = f"cuda:{local}"
    results = []

    def check(name, fn):
        try:
            fn()
            results.append({"name": name, "ok": True})
        except Exception as e:  # noqa: BLE001
            results.append({"name": name, "ok": False, "detail": f"{type(e).__name__}: {e}",
                            "trace": traceback.format_exc()[-1200:]})

    def vals(r, case, shape, dtype):
        rng = np.random.default_rng([r, sum(map(ord, case))])
        if dtype == "bool":
            return rng.integers(0, 2, size=shape).astype(bool)
        if dtype in ("int32", "int64", "int8", "uint8"):
            return rng.integers(0, 4, size=shape).astype(np.int64)
        return (rng.integers(-16, 17, size=shape) / 8.0)

    def to_dev(a, dtype):
        t = ember.from_numpy(np.ascontiguousarray(a if dtype == "bool" else a.astype(np.float64 if a.dtype.kind == "f"
                                                                                           else np.int64)))
        return t.to(getattr(ember, dtype)).to(dev)

    def host(t):
        t = t.to("cpu")
        if t.dtype == ember.bfloat16:
            t = t.float()
        a = t.numpy()
        return a if a.dtype == bool else a.astype(np.float64 if a.dtype.kind == "f" else np.int64)

    def rounded(a, dtype):
        return host(to_dev(a, dtype)) if dtype in ("float16", "bfloat16", "float32") else a

    for dtype in ["float32", "float64", "float16", "bfloat16", "int32", "int64", "int8", "uint8", "bool"]:
        for shape in [(), (0,), (5,), (3, 4), (1 << 16,)]:
            for op in ["SUM", "AVG", "PRODUCT", "MIN", "MAX"]:
                if op == "AVG" and not dtype.startswith(("float", "bfloat")):
                    continue
                case = f"all_reduce/{dtype}/{shape}/{op}"

                def run(case=case, dtype=dtype, shape=shape, op=op):
                    t = to_dev(vals(rank, case, shape, dtype), dtype)
                    dist.all_reduce(t, getattr(dist.ReduceOp, op))
                    arrs = np.stack([vals(r, case, shape, dtype) for r in range(world)])
                    if dtype == "bool":
                        ref = arrs.any(0) if op in ("SUM", "MAX") else arrs.all(0)
                    else:
                        ref = {"SUM": arrs.sum(0), "AVG": arrs.mean(0), "PRODUCT": arrs.prod(0), "MIN": arrs.min(0),
                               "MAX": arrs.max(0)}[op]
                        ref = rounded(ref, dtype)
                    got = host(t)
                    tol = {"float16": 1e-3, "bfloat16": 1e-2}.get(dtype, 0)
                    assert got.shape == ref.shape and np.allclose(got, ref, rtol=tol, atol=tol), case
                check(case, run)
    for dtype in ["float32", "bfloat16", "int64"]:
        for shape in [(0,), (7,), (2, 3)]:
            case = f"gather_scatter/{dtype}/{shape}"

            def run(case=case, dtype=dtype, shape=shape):
                b = to_dev(vals(rank, case, shape, dtype), dtype)
                dist.broadcast(b, src=world - 1)
                assert np.array_equal(host(b), rounded(vals(world - 1, case, shape, dtype), dtype))
                outs = [ember.zeros(shape, dtype=getattr(ember, dtype), device=dev) for _ in range(world)]
                dist.all_gather(outs, to_dev(vals(rank, case, shape, dtype), dtype))
                for r in range(world):
                    assert np.array_equal(host(outs[r]), rounded(vals(r, case, shape, dtype), dtype))
                ins = [to_dev(vals(rank, f"{case}{k}", shape, dtype), dtype) for k in range(world)]
                out = ember.zeros(shape, dtype=getattr(ember, dtype), device=dev)
                dist.reduce_scatter(out, ins)
                ref = rounded(sum(vals(r, f"{case}{rank}", shape, dtype) for r in range(world)), dtype)
                assert np.allclose(host(out), ref, rtol=1e-2 if dtype == "bfloat16" else 0)
            check(case, run)

    def async_and_streams():
        ts = [ember.full((1 << 20,), float(rank + i), device=dev) for i in range(4)]
        works = [dist.all_reduce(t, async_op=True) for t in ts]
        for w in works:
            w.wait()  # the current stream waits; reading the tensor then syncs the host
        for i, t in enumerate(ts):
            assert float(t[0].item()) == sum(r + i for r in range(world))
        deadline = time.monotonic() + 30
        w = dist.all_reduce(ember.ones(8, device=dev), async_op=True)
        while not w.is_completed():
            assert time.monotonic() < deadline
        dist.barrier()
    check("async_and_streams", async_and_streams)

    def graph_capture():
        static = ember.zeros((1024,), device=dev)
        dist.all_reduce(static)  # warm-up outside the capture creates the communicator
        g = ember.cuda.CUDAGraph()
        with ember.cuda.graph(g):
            static.add_(1.0)
            dist.all_reduce(static)
        for k in range(3):
            static.fill_(float(rank))
            g.replay()
            ember.cuda.synchronize()
            expect = sum(r + 1 for r in range(world))
            assert float(static[0].item()) == expect and float(static[-1].item()) == expect, (k, static[0].item())
    check("graph_capture_all_reduce", graph_capture)

    def ddp_step():
        from ember import nn
        from ember.nn.parallel import DistributedDataParallel as DDP
        ember.manual_seed(0)
        net = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 8)).to(dev)
        ember.manual_seed(0)
        ref = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 8)).to(dev)
        model = DDP(net, device_ids=[local], bucket_cap_mb=0.004)
        rng = np.random.default_rng(1)
        x = ember.from_numpy(rng.standard_normal((4 * world, 32)).astype(np.float32)).to(dev)
        model(x[rank * 4:rank * 4 + 4]).pow(2).mean().backward()
        ref(x).pow(2).mean().backward()
        for (n, p), q in zip(net.named_parameters(), ref.parameters()):
            err = float((p.grad - q.grad).abs().max().item())
            assert err < 1e-5, f"{n}: {err}"
    check("ddp_gradients", ddp_step)

    def ddp_graph_capture():
        """A whole DDP forward+backward captured with make_graphed_step gives the eager step's gradients."""
        from ember import nn
        from ember.nn.parallel import DistributedDataParallel as DDP
        ember.manual_seed(0)
        net = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 8)).to(dev)
        model = DDP(net, device_ids=[local], bucket_cap_mb=0.004)

        def step(x):
            model.zero_grad(set_to_none=False)
            loss = model(x).pow(2).mean()
            loss.backward()
            return loss

        rng = np.random.default_rng([2, rank])
        static_x = ember.from_numpy(rng.standard_normal((4, 32)).astype(np.float32)).to(dev)
        run = ember.cuda.make_graphed_step(step, [static_x], warmup=2)
        new_x = ember.from_numpy(rng.standard_normal((4, 32)).astype(np.float32)).to(dev)
        run(new_x)
        ember.cuda.synchronize()
        replayed = [p.grad.clone() for p in net.parameters()]
        step(new_x.clone())  # eager, same input
        for (n, p), g in zip(net.named_parameters(), replayed):
            err = float((p.grad - g).abs().max().item())
            assert err < 1e-6, f"{n}: replayed DDP grad differs from eager by {err}"
    check("ddp_graph_capture", ddp_graph_capture)

    failed = [r for r in results if not r["ok"]]
    write(args.out, f"nccl_rank{rank}", {"world": world, "nccl_version": ember._C._cuda._nccl.version(),
                                          "checks": len(results), "failed": failed})
    print(f"rank {rank}: {len(results) - len(failed)}/{len(results)} NCCL checks passed", flush=True)
    for r in failed[:10]:
        print("FAIL", r["name"], r["detail"], flush=True)
    dist.destroy_process_group()
    if failed:
        sys.exit(1)


# ---- overhead: DDP vs no DDP on one GPU ----------------------------------------------------------

def gpt(lib, args, vocab=65):
    from common.transformer import blocks
    nn = lib.nn
    B = blocks(lib)

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok_emb = nn.Embedding(vocab, args.dim)
            self.pos_emb = nn.Embedding(args.block, args.dim)
            self.encoder = B.Encoder(args.dim, args.heads, args.layers, causal=True)
            self.head = nn.Linear(args.dim, vocab, bias=False)

        def forward(self, idx):
            pos = lib.arange(idx.shape[1], device=idx.device)
            return self.head(self.encoder(self.tok_emb(idx) + self.pos_emb(pos)))

    return GPT().to("cuda")


def step_time(lib, model, args, steps=20, warmup=5) -> float:
    opt = lib.optim.AdamW(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    x = lib.from_numpy(rng.integers(0, 65, size=(args.batch, args.block)).astype(np.int64)).to("cuda")
    y = lib.from_numpy(rng.integers(0, 65, size=(args.batch, args.block)).astype(np.int64)).to("cuda")
    times = []
    for i in range(warmup + steps):
        lib.cuda.synchronize()
        t0 = time.perf_counter()
        loss = lib.nn.functional.cross_entropy(model(x).reshape(-1, 65), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lib.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def mode_overhead(args) -> None:
    import ember
    import torch
    out = {"config": vars(args).copy(), "device": torch.cuda.get_device_name()}
    ember.distributed.init_process_group("nccl")
    port = int(os.environ["MASTER_PORT"]) + 1  # ember's store holds MASTER_PORT
    torch.distributed.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    for name, lib, ddp_cls in [("ember", ember, ember.nn.parallel.DistributedDataParallel),
                               ("torch", torch, torch.nn.parallel.DistributedDataParallel)]:
        lib.manual_seed(0)
        plain = step_time(lib, gpt(lib, args), args)
        lib.manual_seed(0)
        wrapped = step_time(lib, ddp_cls(gpt(lib, args), device_ids=[0]), args)
        out[name] = {"step_ms": plain, "ddp_step_ms": wrapped, "ddp_overhead": wrapped / plain}
        print(f"{name}: step {plain:.2f} ms, with DDP {wrapped:.2f} ms ({wrapped / plain:.3f}x)", flush=True)
    out["ember_ddp_ms_over_torch_ddp_ms"] = out["ember"]["ddp_step_ms"] / out["torch"]["ddp_step_ms"]
    write(args.out, "ddp_overhead_1gpu", out)
    ember.distributed.destroy_process_group()
    torch.distributed.destroy_process_group()


# ---- busbw: all_reduce bandwidth ------------------------------------------------------------------

def mode_busbw(args) -> None:
    lib_name = args.lib
    if lib_name == "ember":
        import ember as lib
        lib.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist = lib.distributed
    else:
        import torch as lib
        lib.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist = lib.distributed
    dist.init_process_group("nccl")
    rank, n = dist.get_rank(), dist.get_world_size()
    rows = []
    for size in [1 << p for p in range(20, 31, 2)]:  # 1 MiB .. 1 GiB of float32
        t = lib.ones((size // 4,), device="cuda")
        for _ in range(5):
            dist.all_reduce(t)
        lib.cuda.synchronize()
        iters = 20 if size <= (1 << 26) else 5
        t0 = time.perf_counter()
        for _ in range(iters):
            dist.all_reduce(t)
        lib.cuda.synchronize()
        sec = (time.perf_counter() - t0) / iters
        algbw = size / sec / 1e9
        rows.append({"bytes": size, "time_us": sec * 1e6, "algbw_GBps": algbw, "busbw_GBps": algbw * 2 * (n - 1) / n})
        if rank == 0:
            print(f"{lib_name} all_reduce {size / 2**20:8.0f} MiB  {sec * 1e6:10.1f} us  algbw {algbw:7.2f} GB/s  "
                  f"busbw {rows[-1]['busbw_GBps']:7.2f} GB/s", flush=True)
        del t
    if rank == 0:
        write(args.out, f"busbw_{lib_name}", {"world": n, "rows": rows})
    dist.destroy_process_group()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["nccl", "overhead", "busbw"])
    p.add_argument("--out", default=os.environ.get("OUT", "/tmp/out"))
    p.add_argument("--lib", choices=["ember", "torch"], default="ember")
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--block", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    {"nccl": mode_nccl, "overhead": mode_overhead, "busbw": mode_busbw}[args.mode](args)


if __name__ == "__main__":
    main()
