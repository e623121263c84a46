"""Spatial transformer network (Jaderberg et al. 2015, after the PyTorch tutorial) on a synthetic
MNIST-like task: a localisation net predicts an affine map (initialised to identity), affine_grid +
grid_sample warp the input, InstanceNorm2d + conv + classifier predict the class. (Pooling comes
before Hardswish: pooling its exact zeros would make argmax ties that float noise breaks either way.)"""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class STN(nn.Module):
    def __init__(self):
        super().__init__()
        self.localization = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.MaxPool2d(2, stride=2), nn.ReLU(True),
            nn.Conv2d(6, 8, 3), nn.AdaptiveMaxPool2d(2), nn.ReLU(True))
        self.fc_loc = nn.Sequential(nn.Linear(8 * 2 * 2, 16), nn.ReLU(True), nn.Linear(16, 3 * 2))
        self.fc_loc[2].weight.data.zero_()
        # near-identity start (an exact identity samples at integer positions, where the grid gradient is a
        # one-sided difference whose side depends on the coordinates' last bit)
        self.fc_loc[2].bias.data.copy_(torch.tensor([0.98, 0.05, 0.013, -0.05, 0.98, 0.021], dtype=torch.float))
        self.features = nn.Sequential(nn.InstanceNorm2d(1, affine=True), nn.Conv2d(1, 8, 3, padding=1),
                                      nn.InstanceNorm2d(8, affine=True, track_running_stats=True), nn.MaxPool2d(2),
                                      nn.Hardswish(), nn.Conv2d(8, 8, 3), nn.ELU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.SELU(), nn.AlphaDropout(0.0), nn.Linear(16, 4))

    def stn(self, x):
        xs = self.localization(x).view(-1, 8 * 2 * 2)
        theta = self.fc_loc(xs).view(-1, 2, 3)
        grid = F.affine_grid(theta, x.size(), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False, padding_mode="border"), theta

    def forward(self, x):
        x, theta = self.stn(x)
        return self.head(self.features(x)), theta


def batch(rng, n=8, size=20):
    """Class k: a bright bar at orientation k*45 degrees, randomly shifted and rotated a little."""
    labels = rng.integers(0, 4, n)
    yy, xx = np.meshgrid(np.arange(size) - size / 2, np.arange(size) - size / 2, indexing="ij")
    imgs = []
    for k in labels:
        ang = k * np.pi / 4 + rng.normal(0, 0.15)
        dx, dy = rng.normal(0, 1.5, 2)
        dist = np.abs(-(xx - dx) * np.sin(ang) + (yy - dy) * np.cos(ang))
        imgs.append(np.exp(-dist ** 2) + 0.05 * rng.standard_normal((size, size)))
    return torch.from_numpy(np.stack(imgs)[:, None].astype(np.float32)), torch.from_numpy(labels)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", required=True)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    model = STN()
    if os.path.exists(args.init):
        model.load_state_dict(torch.load(args.init))
    else:
        torch.save(model.state_dict(), args.init)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(1)
    for step in range(args.steps):
        x, y = batch(rng)
        logits, theta = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        print(json.dumps({"step": step, "loss": loss.item(), "theta00": theta[0, 0, 0].item(),
                          "running_var": model.features[2].running_var.mean().item()}))
    model.eval()
    x, y = batch(rng)
    with torch.no_grad():
        logits, _ = model(x)
    print(json.dumps({"eval_loss": F.cross_entropy(logits, y).item()}))


if __name__ == "__main__":
    main()
