"""vit: a small Vision Transformer (patchify + transformer encoder + class token).

    PYTHONPATH=runtime/python python examples/vit.py --backend ember          # sklearn 8x8 digits (offline)
    PYTHONPATH=runtime/python python examples/vit.py --dataset cifar10 --data-path DIR  # CIFAR-10 python batches
"""
from __future__ import annotations

import os
import pickle
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common.backend import no_grad, to_numpy, to_tensor  # noqa: E402
from common.init import init_model  # noqa: E402
from common.trainer import run  # noqa: E402
from common.transformer import blocks  # noqa: E402

CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
CIFAR_STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)


def _unpickle(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def load_cifar10(path: str):
    """Reads the standard CIFAR-10 python batches (data_batch_1..5, test_batch: dicts with b"data"
    uint8 [N, 3072] in CHW order and b"labels") -> (x_train, y_train, x_test, y_test), float32
    normalised [N, 3, 32, 32] images and int64 labels. Missing training batches are skipped."""
    if os.path.isdir(os.path.join(path, "cifar-10-batches-py")):
        path = os.path.join(path, "cifar-10-batches-py")
    train_files = [os.path.join(path, f"data_batch_{i}") for i in range(1, 6)]
    train_files = [f for f in train_files if os.path.exists(f)]
    test_file = os.path.join(path, "test_batch")
    if not train_files or not os.path.exists(test_file):
        raise FileNotFoundError(f"no CIFAR-10 python batches (data_batch_N, test_batch) under {path}")

    def convert(batches):
        data = np.concatenate([b[b"data"] for b in batches]).reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
        labels = np.concatenate([np.asarray(b[b"labels"], dtype=np.int64) for b in batches])
        data = (data - CIFAR_MEAN[None, :, None, None]) / CIFAR_STD[None, :, None, None]
        return np.ascontiguousarray(data, dtype=np.float32), labels

    x_train, y_train = convert([_unpickle(f) for f in train_files])
    x_test, y_test = convert([_unpickle(test_file)])
    return x_train, y_train, x_test, y_test


def load_digits_split(seed: int = 0):
    """scikit-learn's bundled 8x8 digits (1797 images, values 0..16), 80/20 split by a seeded shuffle."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0 - 0.5) / 0.5
    x = x[:, None, :, :]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = len(x) // 5
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


class ViT:
    name = "vit"
    unit = "images"

    def add_args(self, p):
        p.add_argument("--dataset", choices=["digits", "cifar10"], default="digits")
        p.add_argument("--data-path", default=None, help="CIFAR-10 python batches directory")
        p.add_argument("--patch", type=int, default=None, help="patch size (default 2 for digits, 4 for CIFAR)")
        p.add_argument("--dim", type=int, default=64)
        p.add_argument("--heads", type=int, default=4)
        p.add_argument("--layers", type=int, default=3)
        p.add_argument("--eval-limit", type=int, default=2000, help="max test images per evaluation")

    def setup(self, args):
        if args.dataset == "cifar10":
            if not args.data_path:
                raise SystemExit("--dataset cifar10 needs --data-path (directory of the python batches)")
            self.data = load_cifar10(args.data_path)
        else:
            self.data = load_digits_split(args.seed)
        self.channels, self.size = self.data[0].shape[1], self.data[0].shape[2]
        self.num_classes = 10
        if args.patch is None:
            args.patch = 2 if args.dataset == "digits" else 4
        if self.size % args.patch:
            raise SystemExit(f"image size {self.size} is not divisible by patch {args.patch}")

    def build_model(self, lib, args):
        nn = lib.nn
        B = blocks(lib)
        C, S, P, D = self.channels, self.size, args.patch, args.dim
        n_patches = (S // P) ** 2

        class VisionTransformer(nn.Module):
            def __init__(self):
                super().__init__()
                self.patch_embed = nn.Linear(C * P * P, D)
                self.cls_token = nn.Parameter(lib.zeros(1, 1, D))
                self.pos_emb = nn.Parameter(lib.zeros(1, n_patches + 1, D))
                self.encoder = B.Encoder(D, args.heads, args.layers, causal=False)
                self.head = nn.Linear(D, 10)

            def forward(self, images):
                b = images.shape[0]
                g = S // P  # patchify: (b, C, g, P, g, P) -> (b, g*g, C*P*P)
                patches = images.reshape(b, C, g, P, g, P).permute(0, 2, 4, 1, 3, 5).reshape(b, g * g, C * P * P)
                x = self.patch_embed(patches)
                x = lib.cat([self.cls_token.expand(b, 1, D), x], 1) + self.pos_emb
                return self.head(self.encoder(x)[:, 0])

        model = VisionTransformer().to(args.device)
        init_model(lib, model, args.seed, args.device, residual_layers=args.layers)
        return model

    def batch(self, args, step):
        x_train, y_train = self.data[0], self.data[1]
        n = len(x_train)
        per_epoch = max(1, n // args.batch_size)
        epoch, i = divmod(step, per_epoch)
        order = np.random.default_rng([args.seed, 1, epoch]).permutation(n)
        idx = order[i * args.batch_size:(i + 1) * args.batch_size]
        return x_train[idx], y_train[idx]

    def loss(self, lib, model, x, y, args):
        return lib.nn.functional.cross_entropy(model(x), y), {}

    def items_per_step(self, args):
        return args.batch_size

    def evaluate(self, lib, model, args):
        x_test, y_test = self.data[2][:args.eval_limit], self.data[3][:args.eval_limit]
        correct, losses = 0, []
        with no_grad(lib):
            for i in range(0, len(x_test), 500):
                logits = model(to_tensor(lib, x_test[i:i + 500], args.device))
                y = y_test[i:i + 500]
                losses.append(float(lib.nn.functional.cross_entropy(
                    logits, to_tensor(lib, y, args.device), reduction="sum").item()))
                correct += int((to_numpy(logits).argmax(-1) == y).sum())
        return {"val_loss": sum(losses) / len(x_test), "test_accuracy": correct / len(x_test)}

    def finish(self, lib, model, args):
        return {}


DEFAULTS = dict(steps=600, batch_size=64, lr=2e-3, warmup=30, eval_every=100, weight_decay=0.05)


def main(argv=None):
    return run(ViT(), argv, DEFAULTS)


if __name__ == "__main__":
    main()
