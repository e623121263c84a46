"""A character-level Transformer language model built from nn.TransformerEncoder (the layout of
PyTorch's word_language_model example: sinusoidal positions, a causal square mask, truncated
back-propagation windows over batchified text). Written against the plain PyTorch API.

    python examples/transformer_lm.py --steps 200                        # on PyTorch
    python -m ember.torchcompat examples/transformer_lm.py --steps 200   # the same file on ember

--save-init / --init share initial weights between runs (torch.save / torch.load checkpoints), and
--checkpoint PATH saves model + optimizer state at the end. Each step prints {"step", "loss"}.
"""
import argparse
import json
import math
import os

import torch
import torch.nn as nn

DEFAULT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                            "tinyshakespeare.txt")


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout, max_len=2048):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, 1, d_model)
        table[:, 0, 0::2] = torch.sin(position * freq)
        table[:, 0, 1::2] = torch.cos(position * freq)
        self.register_buffer("table", table, persistent=False)

    def forward(self, x):  # x: (T, B, d_model)
        return self.dropout(x + self.table[:x.size(0)])


class TransformerLM(nn.Module):
    def __init__(self, vocab, d_model, nhead, d_ff, layers, dropout):
        super().__init__()
        self.d_model = d_model
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = PositionalEncoding(d_model, dropout)
        layer = nn.TransformerEncoderLayer(d_model, nhead, d_ff, dropout, activation="gelu", norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.head = nn.Linear(d_model, vocab)
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        nn.init.zeros_(self.head.bias)

    def forward(self, src, mask):  # src: (T, B) token ids
        x = self.pos(self.embed(src) * math.sqrt(self.d_model))
        return self.head(self.encoder(x, mask=mask))


def batchify(ids, batch_size):
    n = ids.size(0) // batch_size
    return ids.narrow(0, 0, n * batch_size).view(batch_size, -1).t().contiguous()  # (T_total, B)


def get_batch(source, i, bptt):
    T = min(bptt, source.size(0) - 1 - i)
    return source[i:i + T], source[i + 1:i + 1 + T].reshape(-1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--chars", type=int, default=300_000)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--nhead", type=int, default=4)
    p.add_argument("--d-ff", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--bptt", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1111)
    p.add_argument("--init", default=None)
    p.add_argument("--save-init", default=None)
    p.add_argument("--checkpoint", default=None, help="save model and optimizer state here at the end")
    args = p.parse_args()

    torch.manual_seed(args.seed)
    with open(args.data, encoding="utf-8") as f:
        text = f.read()[:args.chars]
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    train = batchify(torch.tensor([stoi[c] for c in text], dtype=torch.long), args.batch_size)

    model = TransformerLM(len(chars), args.d_model, args.nhead, args.d_ff, args.layers, args.dropout)
    if args.init:
        model.load_state_dict(torch.load(args.init, map_location="cpu"))
    if args.save_init:
        torch.save(model.state_dict(), args.save_init)
    criterion = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, args.steps // 3), gamma=0.5)
    mask = nn.Transformer.generate_square_subsequent_mask(args.bptt)

    model.train()
    step, i = 0, 0
    while step < args.steps:
        if i >= train.size(0) - 2:
            i = 0
        data, targets = get_batch(train, i, args.bptt)
        i += args.bptt
        T = data.size(0)
        output = model(data, mask[:T, :T])
        loss = criterion(output.view(-1, len(chars)), targets)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        sched.step()
        print(json.dumps({"step": step, "loss": loss.item()}), flush=True)
        step += 1
    if args.checkpoint:
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step}, args.checkpoint)


if __name__ == "__main__":
    main()
