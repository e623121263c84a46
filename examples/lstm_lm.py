"""A character-level LSTM language model (the layout of PyTorch's word_language_model example:
embedding -> multi-layer nn.LSTM with dropout -> linear decoder, batchified text, truncated
back-propagation through time with the hidden state carried and detached between windows).
Written against the plain PyTorch API.

    python examples/lstm_lm.py --steps 200                        # on PyTorch
    python -m ember.torchcompat examples/lstm_lm.py --steps 200   # the same file on ember

--save-init / --init share initial weights between runs (torch.save / torch.load checkpoints),
--checkpoint PATH saves model + optimizer state at the end, --sample N prints N generated
characters. Each step prints {"step", "loss"}.
"""
import argparse
import json
import os
import time

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = next((p for p in (os.path.join(HERE, "..", "..", "shared", "data", "tinyshakespeare.txt"),
                                 os.path.join(HERE, "..", "..", "..", "shared", "data", "tinyshakespeare.txt"))
                     if os.path.exists(p)), "tinyshakespeare.txt")


class LSTMLM(nn.Module):
    def __init__(self, vocab, emb, hidden, layers, dropout, tie_weights):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(vocab, emb)
        self.rnn = nn.LSTM(emb, hidden, layers, dropout=dropout)
        self.decoder = nn.Linear(hidden, vocab)
        if tie_weights:
            if hidden != emb:
                raise ValueError("--tie requires --emb equal to --hidden")
            self.decoder.weight = self.encoder.weight
        self.layers, self.hidden = layers, hidden
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, src, state):  # src: (T, B) token ids
        out, state = self.rnn(self.drop(self.encoder(src)), state)
        return self.decoder(self.drop(out)), state

    def init_state(self, batch):
        weight = next(self.parameters())
        return (weight.new_zeros(self.layers, batch, self.hidden), weight.new_zeros(self.layers, batch, self.hidden))


def batchify(ids, batch_size):
    n = ids.size(0) // batch_size
    return ids.narrow(0, 0, n * batch_size).view(batch_size, -1).t().contiguous()  # (T_total, B)


def detach_state(state):
    """Cuts the graph between windows (truncated BPTT) and keeps the values."""
    return tuple(s.detach() for s in state)


@torch.no_grad()
def sample(model, stoi, itos, n, seed_text="\n", temperature=0.8):
    model.eval()
    state = model.init_state(1)
    ids = [stoi[c] for c in seed_text]
    logits = None
    for i in ids:
        logits, state = model(torch.tensor([[i]]), state)
    out = []
    for _ in range(n):
        probs = torch.softmax(logits[-1, 0] / temperature, dim=-1)
        nxt = int(torch.multinomial(probs, 1).item())
        out.append(itos[nxt])
        logits, state = model(torch.tensor([[nxt]]), state)
    model.train()
    return "".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--chars", type=int, default=300_000)
    p.add_argument("--emb", type=int, default=128)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--tie", action="store_true")
    p.add_argument("--bptt", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--clip", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=1111)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave the default)")
    p.add_argument("--init", default=None)
    p.add_argument("--save-init", default=None)
    p.add_argument("--checkpoint", default=None, help="save model and optimizer state here at the end")
    p.add_argument("--sample", type=int, default=0, help="print this many sampled characters at the end")
    args = p.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(args.data, encoding="utf-8") as f:
        text = f.read()[:args.chars]
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    train = batchify(torch.tensor([stoi[c] for c in text], dtype=torch.long), args.batch_size)

    model = LSTMLM(len(chars), args.emb, args.hidden, args.layers, args.dropout, args.tie)
    if args.init:
        model.load_state_dict(torch.load(args.init, map_location="cpu"))
    if args.save_init:
        torch.save(model.state_dict(), args.save_init)
    criterion = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    model.train()
    state = model.init_state(args.batch_size)
    step, i, t0 = 0, 0, time.perf_counter()
    while step < args.steps:
        if i >= train.size(0) - 2:
            i, state = 0, model.init_state(args.batch_size)
        T = min(args.bptt, train.size(0) - 1 - i)
        data, targets = train[i:i + T], train[i + 1:i + 1 + T].reshape(-1)
        i += T
        state = detach_state(state)
        output, state = model(data, state)
        loss = criterion(output.view(-1, len(chars)), targets)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        print(json.dumps({"step": step, "loss": loss.item()}), flush=True)
        step += 1
    print(json.dumps({"steps": step, "seconds": round(time.perf_counter() - t0, 3)}), flush=True)
    if args.checkpoint:
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step}, args.checkpoint)
    if args.sample:
        print(sample(model, stoi, chars, args.sample))


if __name__ == "__main__":
    main()
