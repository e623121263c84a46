"""Train a character-level GPT on tiny Shakespeare in the style of nanoGPT's train.py (our own
code): mixed precision through torch.amp.autocast, a GradScaler (enabled for float16), gradient
accumulation, clipping after scaler.unscale_, a warmup + cosine learning rate, periodic evaluation,
and checkpoints (model, optimizer, scaler, iteration) that --init-from resume continues from.
Plain PyTorch API:

    python examples/gpt_amp/train.py --dtype bfloat16 --max-iters 200
    python -m ember.torchcompat examples/gpt_amp/train.py --dtype bfloat16 --max-iters 200

Batches come from numpy, seeded by the iteration, so a resumed run and a run on the other library
see the same data. Each iteration prints {"iter", "loss", "lr", "scale"}; evaluations print
{"iter", "train_loss", "val_loss"}. Sample from the checkpoint with sample.py.
"""
import argparse
import json
import math
import os
import time
from contextlib import nullcontext

import numpy as np
import torch
from model import GPT, GPTConfig

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = next((p for p in (os.path.join(HERE, "..", "..", "..", "shared", "data", "tinyshakespeare.txt"),
                                 os.path.join(HERE, "..", "..", "..", "..", "shared", "data", "tinyshakespeare.txt"))
                     if os.path.exists(p)), "tinyshakespeare.txt")


def load_text(path, chars):
    with open(path, encoding="utf-8") as f:
        text = f.read()[:chars] if chars else f.read()
    vocab = sorted(set(text))
    stoi = {c: i for i, c in enumerate(vocab)}
    ids = np.array([stoi[c] for c in text], dtype=np.int64)
    n = int(0.9 * len(ids))
    return ids[:n], ids[n:], vocab


def get_batch(data, batch_size, block_size, seed, device):
    ix = np.random.default_rng(seed).integers(0, len(data) - block_size - 1, size=batch_size)
    x = np.stack([data[i:i + block_size] for i in ix])
    y = np.stack([data[i + 1:i + 1 + block_size] for i in ix])
    return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)


def get_lr(it, args):
    if it < args.warmup_iters:
        return args.learning_rate * (it + 1) / (args.warmup_iters + 1)
    if it > args.lr_decay_iters:
        return args.min_lr
    ratio = (it - args.warmup_iters) / max(1, args.lr_decay_iters - args.warmup_iters)
    return args.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (args.learning_rate - args.min_lr)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--chars", type=int, default=0, help="use the first N characters (0: all)")
    p.add_argument("--out-dir", default="out-gpt-amp")
    p.add_argument("--init-from", choices=["scratch", "resume"], default="scratch")
    p.add_argument("--init", default=None, help="initial weights (a torch.save state dict) for a scratch run")
    p.add_argument("--save-init", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="bfloat16")
    p.add_argument("--n-layer", type=int, default=2)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=64)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--grad-accum", type=int, default=2)
    p.add_argument("--max-iters", type=int, default=200)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--warmup-iters", type=int, default=20)
    p.add_argument("--lr-decay-iters", type=int, default=200)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--init-scale", type=float, default=2.0 ** 16)
    p.add_argument("--eval-interval", type=int, default=50)
    p.add_argument("--eval-iters", type=int, default=4)
    p.add_argument("--always-save-checkpoint", action="store_true")
    p.add_argument("--seed", type=int, default=1337)
    args = p.parse_args()

    torch.manual_seed(args.seed)
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    device_type = "cuda" if args.device.startswith("cuda") else "cpu"
    ptdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
    ctx = nullcontext() if args.dtype == "float32" else torch.amp.autocast(device_type=device_type, dtype=ptdtype)

    train_data, val_data, vocab = load_text(args.data, args.chars)
    iter_num, best_val_loss = 0, 1e9
    ckpt_path = os.path.join(args.out_dir, "ckpt.pt")
    if args.init_from == "resume":
        checkpoint = torch.load(ckpt_path, map_location=args.device)
        config = GPTConfig(**checkpoint["model_args"])
        model = GPT(config)
        model.load_state_dict(checkpoint["model"])
        iter_num, best_val_loss = checkpoint["iter_num"], checkpoint["best_val_loss"]
    else:
        config = GPTConfig(block_size=args.block_size, vocab_size=len(vocab), n_layer=args.n_layer,
                           n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout)
        model = GPT(config)
        if args.init:
            model.load_state_dict(torch.load(args.init, map_location="cpu"))
        if args.save_init:
            torch.save(model.state_dict(), args.save_init)
    model.to(args.device)
    scaler = torch.amp.GradScaler(device_type, init_scale=args.init_scale, enabled=(args.dtype == "float16"))
    optimizer = model.configure_optimizers(args.weight_decay, args.learning_rate, (0.9, 0.95))
    if args.init_from == "resume":
        optimizer.load_state_dict(checkpoint["optimizer"])
        scaler.load_state_dict(checkpoint["scaler"])
        checkpoint = None

    @torch.no_grad()
    def estimate_loss():
        model.eval()
        out = {}
        for split, data in (("train", train_data), ("val", val_data)):
            losses = []
            for k in range(args.eval_iters):
                X, Y = get_batch(data, args.batch_size, config.block_size, 10_000_000 + k, args.device)
                with ctx:
                    losses.append(model(X, Y)[1].item())
            out[split] = float(np.mean(losses))
        model.train()
        return out

    def save_checkpoint():
        os.makedirs(args.out_dir, exist_ok=True)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                    "model_args": vars(config), "iter_num": iter_num, "best_val_loss": best_val_loss,
                    "vocab": "".join(vocab)}, ckpt_path)

    t0 = time.perf_counter()
    while iter_num < args.max_iters:
        lr = get_lr(iter_num, args)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if iter_num % args.eval_interval == 0 and iter_num > 0:
            losses = estimate_loss()
            print(json.dumps({"iter": iter_num, "train_loss": losses["train"], "val_loss": losses["val"]}),
                  flush=True)
            if losses["val"] < best_val_loss or args.always_save_checkpoint:
                best_val_loss = min(best_val_loss, losses["val"])
                save_checkpoint()
        total = 0.0
        for micro in range(args.grad_accum):
            X, Y = get_batch(train_data, args.batch_size, config.block_size, args.seed * 1000 + iter_num * 16 + micro,
                             args.device)
            with ctx:
                _, loss = model(X, Y)
                loss = loss / args.grad_accum
            scaler.scale(loss).backward()
            total += loss.item()
        if args.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        print(json.dumps({"iter": iter_num, "loss": total, "lr": lr, "scale": scaler.get_scale()}), flush=True)
        iter_num += 1
    save_checkpoint()
    print(json.dumps({"iters": iter_num, "seconds": round(time.perf_counter() - t0, 3)}), flush=True)


if __name__ == "__main__":
    main()
