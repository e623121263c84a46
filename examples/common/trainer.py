"""The training loop shared by the workloads: argument parsing, AdamW with decay/no-decay param
groups, warmup+cosine schedule, grad clipping, progress (rich), metrics JSON and checkpoints.

A workload object provides: name, unit ("tokens"/"images"), add_args(parser), setup(args),
build_model(lib, args), batch(args, step) -> (x, y) numpy arrays (a pure function of the seed and
step, so both backends and resumed runs see the same batch order), loss(lib, model, x, y, args) ->
(loss, extra metrics dict), items_per_step(args), evaluate(lib, model, args) -> dict, finish(...)."""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass

import numpy as np

from .backend import load, load_backend, save, set_threads, to_tensor


def base_parser(workload, defaults: dict) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=f"Train the {workload.name} example with ember or torch.")
    p.add_argument("--backend", choices=["torch", "ember"], default="ember")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--steps", type=int, default=defaults.get("steps", 500))
    p.add_argument("--batch-size", type=int, default=defaults.get("batch_size", 64))
    p.add_argument("--lr", type=float, default=defaults.get("lr", 1e-3))
    p.add_argument("--weight-decay", type=float, default=defaults.get("weight_decay", 0.01))
    p.add_argument("--warmup", type=int, default=defaults.get("warmup", 50))
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--clip", type=float, default=1.0, help="max global grad norm (0 = off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--eval-every", type=int, default=defaults.get("eval_every", 100))
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--metrics", default=None, help="metrics JSON path (default runs/<name>_<backend>.json)")
    p.add_argument("--save", default=None, help="checkpoint path written at the end (ember.save/torch.save)")
    p.add_argument("--resume", default=None, help="checkpoint to resume from")
    p.add_argument("--stop-at", type=int, default=None, help="stop (and --save) before this step, keeping the "
                   "--steps schedule, e.g. to test resuming")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--ddp", action="store_true", help="data parallel over the ranks of a launcher (ember: "
                   "python -m ember.distributed.run, torch: torchrun): each rank takes its shard of every batch, "
                   "rank 0 alone logs, evaluates and saves")
    workload.add_args(p)
    return p


def make_optimizer(lib, model, args):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and "emb" not in name else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    opt = lib.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.99))
    total = max(args.steps, args.warmup + 1)
    warmup = max(1, args.warmup)

    def schedule(step):  # multiplier of the base lr: linear warmup then cosine to min_lr_ratio
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + np.cos(np.pi * progress))

    sched = lib.optim.lr_scheduler.LambdaLR(opt, schedule)
    return opt, sched


@dataclass
class DDPRanks:
    """This rank's place in a --ddp run."""
    rank: int
    world: int

    def shard(self, a):
        rows = len(a) // self.world
        return a[self.rank * rows:(self.rank + 1) * rows]

    def mean(self, lib, value):
        """The ranks' mean of a scalar tensor (for logging the global batch's loss)."""
        t = value.detach().reshape(1).clone()
        lib.distributed.all_reduce(t)
        return t / self.world


def setup_ddp(lib, args) -> DDPRanks:
    dist = lib.distributed
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if args.device == "cuda":
        lib.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if args.device == "cuda" else ("mpi" if lib.__name__ == "ember" else "gloo"))
    dp = DDPRanks(dist.get_rank(), dist.get_world_size())
    if args.batch_size % dp.world:
        raise SystemExit(f"--batch-size {args.batch_size} must be divisible by the {dp.world} ranks of --ddp")
    return dp


def train_step(lib, workload, model, opt, sched, args, step, dp: DDPRanks | None = None):
    x_np, y_np = workload.batch(args, step)
    if dp is not None:
        x_np, y_np = dp.shard(x_np), dp.shard(y_np)
    x, y = to_tensor(lib, x_np, args.device), to_tensor(lib, y_np, args.device)
    loss, extra = workload.loss(lib, model, x, y, args)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = None
    if args.clip > 0:
        grad_norm = lib.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
    opt.step()
    sched.step()
    if dp is not None:
        loss = dp.mean(lib, loss)
    return loss, grad_norm, extra


class _Progress:
    def __init__(self, total, desc, quiet, start=0):
        self.bar = None
        if not quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
            self.bar.start()
            self.task = self.bar.add_task(desc, total=total, completed=start, info="")

    def update(self, step, info):
        if self.bar is not None:
            self.bar.update(self.task, completed=step, info=info)

    def log(self, msg):
        if self.bar is not None:
            self.bar.console.print(msg)
        else:
            print(msg, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.stop()


def run(workload, argv=None, defaults: dict | None = None) -> dict:
    args = base_parser(workload, defaults or {}).parse_args(argv)
    lib = load_backend(args.backend)
    set_threads(lib, args.threads)
    dp = setup_ddp(lib, args) if args.ddp else None
    if dp is not None and dp.rank != 0:
        args.quiet = True
    lib.manual_seed(args.seed)
    workload.setup(args)
    model = workload.build_model(lib, args)  # the same weights on every rank (numpy init from --seed)
    net = model  # the bare module: evaluation, sampling and checkpoints (rank 0 only under --ddp)
    if dp is not None:
        model = lib.nn.parallel.DistributedDataParallel(
            net, device_ids=[lib.cuda.current_device()] if args.device == "cuda" else None)
    opt, sched = make_optimizer(lib, model, args)
    metrics = {"workload": workload.name, "backend": args.backend, "device": args.device,
               "config": {k: v for k, v in vars(args).items()}, "step": [], "loss": [], "lr": [], "eval": []}
    start = 0
    if args.resume:
        ckpt = load(lib, args.resume)
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        start = int(ckpt["step"])
        metrics["resumed_from"] = start
    n_params = sum(p.numel() for p in model.parameters())
    lead = dp is None or dp.rank == 0
    progress = _Progress(args.steps, f"{workload.name} [{args.backend}]", args.quiet, start)
    if lead:
        progress.log(f"{workload.name}: backend={args.backend} device={args.device} params={n_params:,} "
                     f"steps={args.steps}" + (f" ddp ranks={dp.world}" if dp else ""))
    model.train()
    t0 = time.perf_counter()
    train_time = 0.0
    end = args.steps if args.stop_at is None else min(args.steps, args.stop_at)
    for step in range(start, end):
        ts = time.perf_counter()
        loss, grad_norm, extra = train_step(lib, workload, model, opt, sched, args, step, dp)
        loss_value = float(loss.item())
        train_time += time.perf_counter() - ts
        metrics["step"].append(step)
        metrics["loss"].append(loss_value)
        metrics["lr"].append(opt.param_groups[0]["lr"])
        if not np.isfinite(loss_value):
            progress.log(f"step {step}: loss is {loss_value}; stopping")
            break
        if not lead:
            continue
        if step % args.log_every == 0 or step == args.steps - 1:
            progress.update(step + 1, f"loss {loss_value:.4f}")
        last = step == end - 1
        if args.eval_every and (step % args.eval_every == 0 or last) and step > start or last:
            net.eval()
            ev = workload.evaluate(lib, net, args)
            net.train()
            ev["step"] = step
            metrics["eval"].append(ev)
            progress.log(f"step {step}: train loss {loss_value:.4f} " + " ".join(
                f"{k} {v:.4f}" for k, v in ev.items() if k != "step" and isinstance(v, float)))
    progress.close()
    steps_run = len(metrics["step"])
    metrics["wall_time_s"] = time.perf_counter() - t0
    metrics["train_time_s"] = train_time
    metrics[f"{workload.unit}_per_s"] = workload.items_per_step(args) * steps_run / max(train_time, 1e-9)
    metrics["final"] = metrics["eval"][-1] if metrics["eval"] else {}
    if dp is not None:
        metrics["ddp_world_size"] = dp.world
        if not lead:
            lib.distributed.destroy_process_group()
            return metrics
    metrics.update(workload.finish(lib, net, args) or {})
    if args.save:
        os.makedirs(os.path.dirname(os.path.abspath(args.save)), exist_ok=True)
        save(lib, {"model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                  "step": end}, args.save)
    path = args.metrics or os.path.join("runs", f"{workload.name}_{args.backend}.json")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(metrics, f, indent=1, default=str)
    progress.log(f"done in {metrics['wall_time_s']:.1f}s ({metrics[f'{workload.unit}_per_s']:.0f} {workload.unit}/s); "
                 f"final {metrics['final']}; metrics -> {path}")
    if dp is not None:
        lib.distributed.destroy_process_group()
    metrics["_model"] = net
    metrics["_lib"] = lib
    return metrics
