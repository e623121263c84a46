"""ESPCN-style super-resolution (Shi et al. 2016): conv + PReLU feature extractor, sub-pixel conv
(PixelShuffle) upsampling, reflection padding; trained with MSE on synthetic smooth images."""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class ESPCN(nn.Module):
    def __init__(self, scale=2, channels=1):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(2), nn.Conv2d(channels, 16, 5), nn.PReLU(16),
            nn.ReplicationPad2d(1), nn.Conv2d(16, 8, 3), nn.PReLU(),
            nn.ZeroPad2d(1), nn.Conv2d(8, channels * scale * scale, 3),
        )
        self.shuffle = nn.PixelShuffle(scale)
        self.unshuffle = nn.PixelUnshuffle(scale)

    def forward(self, x):
        return torch.sigmoid(self.shuffle(self.body(x)))


def images(rng, n, size):
    yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    out = []
    for _ in range(n):
        a, b, c = rng.uniform(1, 6, 3)
        out.append(0.5 + 0.4 * np.sin(a * xx + b * yy + c) * np.cos(b * xx - a * yy))
    return np.stack(out)[:, None].astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", required=True)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    model = ESPCN()
    if os.path.exists(args.init):
        model.load_state_dict(torch.load(args.init))
    else:
        torch.save(model.state_dict(), args.init)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    for step in range(args.steps):
        hr = torch.from_numpy(images(rng, 4, 16))
        lr = F.avg_pool2d(hr, 2)
        sr = model(lr)
        loss = F.mse_loss(sr, hr)
        roundtrip = (model.unshuffle(model.shuffle(hr.repeat(1, 4, 1, 1))) - hr.repeat(1, 4, 1, 1)).abs().max()
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(json.dumps({"step": step, "loss": loss.item(), "roundtrip": roundtrip.item(),
                          "prelu": model.body[2].weight.mean().item()}))


if __name__ == "__main__":
    main()
