"""Small-ResNet training step on CPU, ember vs torch, in one process.

    PYTHONPATH=runtime/python .venv/bin/python bench/cnn_cpu.py [--batch 32] [--steps 5] [--rounds 5] [--threads 2]

The model (a CIFAR-style ResNet: 3x3 stem, three stages of two BasicBlocks at 16/32/64 channels,
BatchNorm, global average pooling, linear head) is defined once against the torch API and built for
either library; ember starts from torch's initial weights. A step is forward, cross-entropy,
backward and an SGD(momentum, weight decay) update on a fixed batch of 3x32x32 images. Rounds of
`--steps` steps alternate between the libraries (the machine is shared and load drifts); the median
round counts. Prints ms/step and speed ember/torch (>= 1 means ember is faster). `--layers` also
times each conv layer shape's forward + backward on its own."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

try:
    import ember
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runtime", "python"))
    import ember


def build_resnet(lib, widths=(16, 32, 64), blocks=2, classes=10):
    nn, F = lib.nn, lib.nn.functional

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + self.shortcut(x))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                      nn.ReLU())
            layers, cin = [], widths[0]
            for i, w in enumerate(widths):
                for b in range(blocks):
                    layers.append(BasicBlock(cin, w, 2 if (i > 0 and b == 0) else 1))
                    cin = w
            self.layers = nn.Sequential(*layers)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, classes)

        def forward(self, x):
            return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))

    return ResNet()


class Runner:
    def __init__(self, lib, model, x, y):
        self.lib, self.model, self.x, self.y = lib, model, x, y
        self.opt = lib.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

    def step(self) -> float:
        loss = self.lib.nn.functional.cross_entropy(self.model(self.x), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.item()

    def round(self, steps: int) -> float:
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        return (time.perf_counter() - t0) / steps


def conv_layer_times(batch, rounds, threads):
    """Forward + backward of each distinct conv of the model on its own: (shape, torch ms, ember ms)."""
    shapes = [(3, 16, 32, 1, 3), (16, 16, 32, 1, 3), (16, 32, 32, 2, 3), (32, 32, 16, 1, 3), (16, 32, 32, 2, 1),
              (32, 64, 16, 2, 3), (64, 64, 8, 1, 3)]
    rng = np.random.default_rng(0)
    rows = []
    for cin, cout, hw, stride, k in shapes:
        xa = rng.standard_normal((batch, cin, hw, hw)).astype(np.float32)
        wa = rng.standard_normal((cout, cin, k, k)).astype(np.float32) * 0.1
        times = {}
        for name, lib in (("torch", torch), ("ember", ember)):
            x = lib.from_numpy(xa).requires_grad_(True)
            w = lib.from_numpy(wa).requires_grad_(True)

            def once():
                out = lib.nn.functional.conv2d(x, w, stride=stride, padding=k // 2)
                out.sum().backward()
            once()
            samples = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                for _ in range(5):
                    once()
                samples.append((time.perf_counter() - t0) / 5 * 1e3)
            times[name] = statistics.median(samples)
        rows.append((f"{cin}->{cout} {k}x{k}/{stride} @{hw}x{hw}", times["torch"], times["ember"]))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=5, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds per library (median kept)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--layers", action="store_true", help="also time each conv shape forward + backward")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    ember.set_num_threads(a.threads)

    torch.manual_seed(0)
    tmodel = build_resnet(torch)
    emodel = build_resnet(ember)
    emodel.load_state_dict({k: ember.from_numpy(v.detach().numpy().copy()) for k, v in tmodel.state_dict().items()})
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((a.batch, 3, 32, 32)).astype(np.float32)
    ya = rng.integers(0, 10, size=a.batch)
    runners = {"torch": Runner(torch, tmodel, torch.from_numpy(xa), torch.from_numpy(ya)),
               "ember": Runner(ember, emodel, ember.from_numpy(xa), ember.from_numpy(ya))}
    first = {name: r.step() for name, r in runners.items()}  # same weights and batch: same first loss
    for r in runners.values():
        for _ in range(a.warmup):
            r.step()
    samples = {name: [] for name in runners}
    for _ in range(a.rounds):
        for name, r in runners.items():
            samples[name].append(r.round(a.steps))
    med = {name: statistics.median(s) * 1e3 for name, s in samples.items()}
    params = sum(p.numel() for p in tmodel.parameters())
    print(f"small ResNet ({params / 1e3:.0f}k params), batch {a.batch} x 3x32x32, threads={a.threads}, "
          f"first loss torch {first['torch']:.6f} ember {first['ember']:.6f}")
    print(f"{'':28s} {'torch':>10s} {'ember':>10s} {'ember/torch speed':>18s}")
    print(f"{'train step (ms, median)':28s} {med['torch']:10.2f} {med['ember']:10.2f} "
          f"{med['torch'] / med['ember']:17.2f}x")
    result = {"batch": a.batch, "threads": a.threads, "torch_ms": med["torch"], "ember_ms": med["ember"],
              "speed_ratio": med["torch"] / med["ember"], "samples_ms": {k: [s * 1e3 for s in v]
                                                                          for k, v in samples.items()}}
    if a.layers:
        result["layers"] = []
        for shape, t, e in conv_layer_times(a.batch, a.rounds, a.threads):
            print(f"{'conv ' + shape:28s} {t:10.2f} {e:10.2f} {t / e:17.2f}x")
            result["layers"].append({"shape": shape, "torch_ms": t, "ember_ms": e})
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
