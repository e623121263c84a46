"""A small convolutional classifier on MNIST-shaped data (1x28x28 images, 10 classes), in the style of
pytorch/examples' mnist: two conv blocks (Conv2d, BatchNorm2d, ReLU, MaxPool2d), Dropout2d, and a
two-layer head, trained with Adam and a StepLR schedule. The data is synthetic (no download): each
class is a random smooth stroke pattern, and samples are shifted, scaled and noisy copies of it.
Written against the plain PyTorch API, with batches from a TensorDataset + DataLoader.

    python examples/cnn_mnist_like.py --steps 100                        # on PyTorch
    python -m ember.torchcompat examples/cnn_mnist_like.py --steps 100   # the same file on ember

--save-init PATH writes the initial weights (torch.save) and --init PATH starts from them; the data
and the batch order come from numpy, so both runs see identical batches. Each step prints a JSON line
{"step": i, "loss": x}; the end prints the test accuracy.
"""
import argparse
import json

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler, TensorDataset


def make_data(n, seed, prototypes):
    """n images [n, 1, 28, 28] (float32, roughly zero mean) and labels [n]."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    images = np.empty((n, 1, 28, 28), dtype=np.float32)
    for i, y in enumerate(labels):
        dy, dx = rng.integers(-2, 3, size=2)
        img = np.roll(prototypes[y], (dy, dx), axis=(0, 1)) * rng.uniform(0.7, 1.3)
        images[i, 0] = img + rng.normal(0, 0.3, size=(28, 28))
    return images, labels.astype(np.int64)


def class_prototypes(seed):
    """Ten 28x28 patterns: a few blurred random strokes each."""
    rng = np.random.default_rng(seed)
    out = np.zeros((10, 28, 28), dtype=np.float32)
    yy, xx = np.mgrid[0:28, 0:28]
    for c in range(10):
        for _ in range(3):
            y0, x0, y1, x1 = rng.uniform(6, 22, size=4)
            for t in np.linspace(0, 1, 12):
                cy, cx = y0 + t * (y1 - y0), x0 + t * (x1 - x0)
                out[c] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 3.0)
        out[c] = out[c] / out[c].max() - 0.3
    return out


class SeededShuffle(Sampler):
    """A numpy permutation per epoch: the same batch order whichever library runs the script."""

    def __init__(self, n, seed):
        self.n, self.seed, self.epoch = n, seed, 0

    def __len__(self):
        return self.n

    def __iter__(self):
        order = np.random.default_rng(self.seed + self.epoch).permutation(self.n)
        self.epoch += 1
        return iter(order.tolist())


class Net(nn.Module):
    def __init__(self, dropout):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding="same"), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Dropout2d(dropout))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.head(self.features(x))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-size", type=int, default=4096)
    p.add_argument("--test-size", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--init", default=None, help="load initial weights from this checkpoint")
    p.add_argument("--save-init", default=None, help="write the initial weights here")
    args = p.parse_args()

    torch.manual_seed(args.seed)
    protos = class_prototypes(args.seed)
    x_train, y_train = make_data(args.train_size, args.seed + 1, protos)
    x_test, y_test = make_data(args.test_size, args.seed + 2, protos)
    train = TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train))
    loader = DataLoader(train, batch_size=args.batch_size, sampler=SeededShuffle(len(train), args.seed),
                        drop_last=True)

    model = Net(args.dropout)
    if args.init:
        model.load_state_dict(torch.load(args.init))
    if args.save_init:
        torch.save(model.state_dict(), args.save_init)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, args.steps // 2), gamma=0.5)

    step = 0
    model.train()
    while step < args.steps:
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            print(json.dumps({"step": step, "loss": loss.item()}), flush=True)
            step += 1
            if step == args.steps:
                break

    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x_test))
        accuracy = (logits.argmax(dim=1) == torch.from_numpy(y_test)).float().mean().item()
    print(json.dumps({"test_accuracy": accuracy}), flush=True)


if __name__ == "__main__":
    main()
