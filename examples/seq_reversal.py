"""seq_reversal: a small bidirectional transformer learns to reverse random token sequences.

    PYTHONPATH=runtime/python python examples/seq_reversal.py --backend ember   # or --backend torch
Target: >= 99% token accuracy on fresh sequences (synthetic data, no download)."""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common.backend import no_grad, to_numpy, to_tensor  # noqa: E402
from common.init import init_model  # noqa: E402
from common.trainer import run  # noqa: E402
from common.transformer import blocks  # noqa: E402


class SeqReversal:
    name = "seq_reversal"
    unit = "tokens"

    def add_args(self, p):
        p.add_argument("--vocab", type=int, default=16)
        p.add_argument("--seq-len", type=int, default=12)
        p.add_argument("--dim", type=int, default=64)
        p.add_argument("--heads", type=int, default=4)
        p.add_argument("--layers", type=int, default=2)
        p.add_argument("--eval-batches", type=int, default=4)

    def setup(self, args):
        pass

    def build_model(self, lib, args):
        nn = lib.nn
        B = blocks(lib)

        class Reverser(nn.Module):
            def __init__(self):
                super().__init__()
                self.tok_emb = nn.Embedding(args.vocab, args.dim)
                self.pos_emb = nn.Embedding(args.seq_len, args.dim)
                self.encoder = B.Encoder(args.dim, args.heads, args.layers, causal=False)
                self.head = nn.Linear(args.dim, args.vocab)

            def forward(self, tokens):
                pos = lib.arange(tokens.shape[1], device=tokens.device)
                return self.head(self.encoder(self.tok_emb(tokens) + self.pos_emb(pos)))

        model = Reverser().to(args.device)
        init_model(lib, model, args.seed, args.device, residual_layers=args.layers)
        return model

    def sample(self, rng, args, n):
        x = rng.integers(0, args.vocab, size=(n, args.seq_len), dtype=np.int64)
        return x, np.ascontiguousarray(x[:, ::-1])

    def batch(self, args, step):
        return self.sample(np.random.default_rng([args.seed, 1, step]), args, args.batch_size)

    def loss(self, lib, model, x, y, args):
        logits = model(x)
        return lib.nn.functional.cross_entropy(logits.reshape(-1, args.vocab), y.reshape(-1)), {}

    def items_per_step(self, args):
        return args.batch_size * args.seq_len

    def evaluate(self, lib, model, args):
        rng = np.random.default_rng([args.seed, 2])  # the same held-out sequences every time
        correct = total = 0
        seq_correct = 0
        losses = []
        with no_grad(lib):
            for _ in range(args.eval_batches):
                x, y = self.sample(rng, args, 256)
                logits = model(to_tensor(lib, x, args.device))
                losses.append(float(lib.nn.functional.cross_entropy(
                    logits.reshape(-1, args.vocab), to_tensor(lib, y, args.device).reshape(-1)).item()))
                pred = to_numpy(logits).argmax(-1)
                correct += int((pred == y).sum())
                seq_correct += int((pred == y).all(-1).sum())
                total += y.size
        return {"val_loss": float(np.mean(losses)), "token_accuracy": correct / total,
                "sequence_accuracy": seq_correct / (total // args.seq_len)}

    def finish(self, lib, model, args):
        rng = np.random.default_rng([args.seed, 3])
        x, _ = self.sample(rng, args, 1)
        with no_grad(lib):
            pred = to_numpy(model(to_tensor(lib, x, args.device))).argmax(-1)
        return {"example": {"input": x[0].tolist(), "output": pred[0].tolist()}}


DEFAULTS = dict(steps=300, batch_size=64, lr=3e-3, warmup=30, eval_every=100, weight_decay=0.01)


def main(argv=None):
    return run(SeqReversal(), argv, DEFAULTS)


if __name__ == "__main__":
    main()
