"""A siamese metric-learning net: a bag-of-tokens text tower (EmbeddingBag) and a feature tower with
learnable per-layer gains in a ParameterList, weight-normalised Linear layers, GLU and Mish, trained
with TripletMarginLoss (plus a CosineEmbeddingLoss and MarginRankingLoss term) on synthetic clusters."""
import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Tower(nn.Module):
    def __init__(self, vocab=50, dim=16, depth=3):
        super().__init__()
        self.bag = nn.EmbeddingBag(vocab, dim, mode="mean", padding_idx=0)
        self.layers = nn.ModuleList([nn.utils.parametrizations.weight_norm(nn.Linear(dim, 2 * dim))
                                     for _ in range(depth)])
        self.gains = nn.ParameterList([nn.Parameter(torch.ones(dim)) for _ in range(depth)])
        self.scales = nn.ParameterDict({"out": nn.Parameter(torch.full((1,), 2.0))})
        self.act = nn.Mish()
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens, offsets):
        h = self.bag(tokens, offsets)
        for layer, gain in zip(self.layers, self.gains, strict=True):
            h = h + self.act(F.glu(layer(h), dim=-1)) * gain
        return F.normalize(self.norm(h), dim=-1) * self.scales["out"]


def sample(rng, n, vocab=50, clusters=5):
    """Sequences of token ids drawn mostly from their cluster's band of the vocabulary."""
    labels = rng.integers(0, clusters, n)
    tokens, offsets = [], []
    for c in labels:
        length = int(rng.integers(3, 8))
        offsets.append(len(tokens))
        band = 1 + c * 9 + rng.integers(0, 9, length)
        noise = rng.integers(1, vocab, length)
        tokens.extend(np.where(rng.random(length) < 0.8, band, noise).tolist())
        if rng.random() < 0.3:
            tokens.append(0)  # padding tokens are left out of the bag
    return labels, torch.tensor(tokens), torch.tensor(offsets)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", required=True)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    model = Tower()
    if os.path.exists(args.init):
        model.load_state_dict(torch.load(args.init))
    else:
        torch.save(model.state_dict(), args.init)
    triplet = nn.TripletMarginLoss(margin=0.5, p=2, swap=True)
    cosine = nn.CosineEmbeddingLoss(margin=0.1)
    ranking = nn.MarginRankingLoss(margin=0.2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(2)
    for step in range(args.steps):
        labels, tokens, offsets = sample(rng, 24)
        emb = model(tokens, offsets)
        a, p, n = emb[0::3], emb[1::3], emb[2::3]
        la, lp = labels[0::3], labels[1::3]
        same = torch.from_numpy(np.where(la == lp, 1.0, -1.0).astype(np.float32))
        d_ap, d_an = F.pairwise_distance(a, p), F.pairwise_distance(a, n)
        loss = triplet(a, p, n) + 0.5 * cosine(a, p, same) + 0.1 * ranking(d_an, d_ap, same)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(json.dumps({"step": step, "loss": loss.item(), "gain0": model.gains[0].mean().item(),
                          "g": model.layers[0].parametrizations.weight.original0.mean().item()}))


if __name__ == "__main__":
    main()
