"""A character-level MLP language model in the style of makemore (Bengio et al. 2003): the previous
`--context` characters are embedded, concatenated and fed through a tanh MLP that predicts the next
character. Written against the plain PyTorch API, data through a Dataset + DataLoader with worker
processes.

    python examples/char_mlp.py --steps 200                        # on PyTorch
    python -m ember.torchcompat examples/char_mlp.py --steps 200   # the same file on ember

--save-init PATH writes the initial weights (torch.save) and --init PATH starts from them, so both
runs can begin from identical parameters; batches come from a numpy-seeded sampler, so they see
identical data too. Each step prints a JSON line {"step": i, "loss": x}.
"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

DEFAULT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                            "tinyshakespeare.txt")


class CharWindows(Dataset):
    """Sample i: (the `context` characters before position i + context, the character at it)."""

    def __init__(self, text, context, stoi):
        self.ids = np.array([stoi[c] for c in text], dtype=np.int64)
        self.context = context

    def __len__(self):
        return len(self.ids) - self.context

    def __getitem__(self, i):
        window = self.ids[i:i + self.context + 1]
        return torch.from_numpy(window[:-1].copy()), int(window[-1])


class SeededShuffle(Sampler):
    """A fresh numpy permutation per epoch: the same order whichever library runs the script."""

    def __init__(self, n, seed):
        self.n, self.seed, self.epoch = n, seed, 0

    def __len__(self):
        return self.n

    def __iter__(self):
        order = np.random.default_rng(self.seed + self.epoch).permutation(self.n)
        self.epoch += 1
        return iter(order.tolist())


class CharMLP(nn.Module):
    def __init__(self, vocab, context, n_embd, n_hidden):
        super().__init__()
        self.embed = nn.Embedding(vocab, n_embd)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(context * n_embd, n_hidden), nn.Tanh(),
                                 nn.Linear(n_hidden, n_hidden), nn.Tanh(), nn.Linear(n_hidden, vocab))

    def forward(self, idx, targets=None):
        logits = self.net(self.embed(idx))
        loss = None if targets is None else F.cross_entropy(logits, targets, label_smoothing=0.05)
        return logits, loss


@torch.no_grad()
def sample(model, context, itos, n=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    idx = torch.zeros(1, context, dtype=torch.long)
    out = []
    for _ in range(n):
        logits, _ = model(idx)
        nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=g)
        out.append(itos[nxt.item()])
        idx = torch.cat([idx[:, 1:], nxt], dim=1)
    return "".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--chars", type=int, default=200_000, help="use the first N characters of the corpus")
    p.add_argument("--context", type=int, default=8)
    p.add_argument("--n-embd", type=int, default=16)
    p.add_argument("--n-hidden", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--init", default=None, help="load initial weights from this checkpoint")
    p.add_argument("--save-init", default=None, help="write the initial weights here")
    p.add_argument("--sample", action="store_true", help="print a sample at the end")
    args = p.parse_args()

    torch.manual_seed(args.seed)
    with open(args.data, encoding="utf-8") as f:
        text = f.read()[:args.chars]
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = CharWindows(text, args.context, stoi)
    loader = DataLoader(data, batch_size=args.batch_size, sampler=SeededShuffle(len(data), args.seed),
                        num_workers=args.workers, drop_last=True, persistent_workers=args.workers > 0)

    model = CharMLP(len(chars), args.context, args.n_embd, args.n_hidden)
    if args.init:
        model.load_state_dict(torch.load(args.init))
    if args.save_init:
        torch.save(model.state_dict(), args.save_init)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.steps)

    step = 0
    while step < args.steps:
        for x, y in loader:
            _, loss = model(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            print(json.dumps({"step": step, "loss": loss.item()}), flush=True)
            step += 1
            if step == args.steps:
                break
    if args.sample:
        print(sample(model.eval(), args.context, chars))


if __name__ == "__main__":
    main()
