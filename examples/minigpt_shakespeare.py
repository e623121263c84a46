"""minigpt_shakespeare: a character-level GPT on tiny Shakespeare (train/val split, val loss,
sampling from a prompt).

    PYTHONPATH=runtime/python python examples/minigpt_shakespeare.py --backend ember
Data: --data PATH; defaults to ../shared/data/tinyshakespeare.txt (relative to the repo root) if
present, else data/tinyshakespeare.txt, downloaded from the canonical URL (md5-checked) if missing."""
from __future__ import annotations

import hashlib
import os
import sys
import urllib.request

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common.backend import no_grad, repo_root, to_numpy, to_tensor  # noqa: E402
from common.init import init_model  # noqa: E402
from common.trainer import run  # noqa: E402
from common.transformer import blocks  # noqa: E402

URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
MD5 = "6fb458f1232090904fb40fe944165e91"


def default_data_path() -> str:
    shared = os.path.normpath(os.path.join(repo_root(), "..", "shared", "data", "tinyshakespeare.txt"))
    return shared if os.path.exists(shared) else os.path.join(repo_root(), "data", "tinyshakespeare.txt")


def load_text(path: str, url: str = URL, md5: str | None = MD5) -> str:
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        print(f"downloading {url} -> {path}", flush=True)
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read()
        if md5 and hashlib.md5(data).hexdigest() != md5:
            raise RuntimeError(f"md5 mismatch for {url}: got {hashlib.md5(data).hexdigest()}, expected {md5}")
        with open(path, "wb") as f:
            f.write(data)
    with open(path, "rb") as f:
        data = f.read()
    return data.decode("utf-8")


class MiniGPT:
    name = "minigpt_shakespeare"
    unit = "tokens"

    def add_args(self, p):
        p.add_argument("--data", default=None, help="text corpus path")
        p.add_argument("--block", type=int, default=64)
        p.add_argument("--dim", type=int, default=128)
        p.add_argument("--heads", type=int, default=4)
        p.add_argument("--layers", type=int, default=4)
        p.add_argument("--dropout", type=float, default=0.0, help="dropout on embeddings, attention weights and residuals (GPU config: 0.2)")
        p.add_argument("--val-fraction", type=float, default=0.1)
        p.add_argument("--eval-batches", type=int, default=8)
        p.add_argument("--prompt", default="ROMEO:")
        p.add_argument("--sample-chars", type=int, default=200)
        p.add_argument("--temperature", type=float, default=0.8)

    def setup(self, args):
        text = load_text(args.data or default_data_path())
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        ids = np.array([self.stoi[c] for c in text], dtype=np.int64)
        n_val = int(len(ids) * args.val_fraction)
        self.train_ids, self.val_ids = ids[:-n_val], ids[-n_val:]
        self.vocab = len(self.chars)

    def build_model(self, lib, args):
        nn = lib.nn
        B = blocks(lib)
        vocab = self.vocab

        class GPT(nn.Module):
            def __init__(self):
                super().__init__()
                self.tok_emb = nn.Embedding(vocab, args.dim)
                self.pos_emb = nn.Embedding(args.block, args.dim)
                self.encoder = B.Encoder(args.dim, args.heads, args.layers, causal=True, dropout=args.dropout)
                self.head = nn.Linear(args.dim, vocab, bias=False)

            def forward(self, idx):
                pos = lib.arange(idx.shape[1], device=idx.device)
                return self.head(self.encoder(self.tok_emb(idx) + self.pos_emb(pos)))

        model = GPT().to(args.device)
        init_model(lib, model, args.seed, args.device, residual_layers=args.layers)
        return model

    def _windows(self, ids, rng, n, block):
        starts = rng.integers(0, len(ids) - block - 1, size=n)
        x = np.stack([ids[s:s + block] for s in starts])
        y = np.stack([ids[s + 1:s + block + 1] for s in starts])
        return x, y

    def batch(self, args, step):
        return self._windows(self.train_ids, np.random.default_rng([args.seed, 1, step]), args.batch_size, args.block)

    def loss(self, lib, model, x, y, args):
        logits = model(x)
        return lib.nn.functional.cross_entropy(logits.reshape(-1, self.vocab), y.reshape(-1)), {}

    def items_per_step(self, args):
        return args.batch_size * args.block

    def evaluate(self, lib, model, args):
        rng = np.random.default_rng([args.seed, 2])  # fixed val windows: comparable across steps/backends
        losses = []
        with no_grad(lib):
            for _ in range(args.eval_batches):
                x, y = self._windows(self.val_ids, rng, args.batch_size, args.block)
                logits = model(to_tensor(lib, x, args.device))
                losses.append(float(lib.nn.functional.cross_entropy(
                    logits.reshape(-1, self.vocab), to_tensor(lib, y, args.device).reshape(-1)).item()))
        return {"val_loss": float(np.mean(losses))}

    def sample(self, lib, model, args, prompt: str, n_chars: int) -> str:
        """Autoregressive sampling; the draw uses numpy (seeded) so both backends sample alike."""
        rng = np.random.default_rng([args.seed, 3])
        ids = [self.stoi.get(c, 0) for c in prompt] or [0]
        with no_grad(lib):
            for _ in range(n_chars):
                ctx = np.array([ids[-args.block:]], dtype=np.int64)
                logits = to_numpy(model(to_tensor(lib, ctx, args.device))[0, -1]).astype(np.float64)
                logits = logits / max(args.temperature, 1e-6)
                p = np.exp(logits - logits.max())
                ids.append(int(rng.choice(self.vocab, p=p / p.sum())))
        return "".join(self.chars[i] for i in ids)

    def finish(self, lib, model, args):
        if args.sample_chars <= 0:
            return {}
        model.eval()
        text = self.sample(lib, model, args, args.prompt, args.sample_chars)
        print("---- sample ----\n" + text + "\n----------------", flush=True)
        return {"sample": text}


DEFAULTS = dict(steps=800, batch_size=32, lr=2e-3, warmup=80, eval_every=100, weight_decay=0.1)


def main(argv=None):
    return run(MiniGPT(), argv, DEFAULTS)


if __name__ == "__main__":
    main()
