"""Plots the loss curves of two (or more) metrics JSONs written by the examples into one PNG.

    python examples/compare.py runs/minigpt_shakespeare_torch.json runs/minigpt_shakespeare_ember.json \
        --out docs/curves/minigpt_shakespeare.png
"""
from __future__ import annotations

import argparse
import json

import numpy as np


def smooth(values, window: int):
    if window <= 1 or len(values) < window:
        return np.asarray(values)
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def plot(paths, out, window=10, title=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [json.load(open(p)) for p in paths]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for run, style in zip(runs, ["-", "--", ":", "-."]):
        label = f"{run['backend']} ({run['device']})"
        steps = np.asarray(run["step"])
        loss = smooth(run["loss"], window)
        axes[0].plot(steps[len(steps) - len(loss):], loss, style, label=label)
        if run["eval"]:
            ev_steps = [e["step"] for e in run["eval"]]
            axes[1].plot(ev_steps, [e["val_loss"] for e in run["eval"]], style, marker="o", ms=3, label=label)
    axes[0].set(title=f"train loss (moving avg {window})", xlabel="step", ylabel="loss", yscale="log")
    axes[1].set(title="validation loss", xlabel="step", ylabel="loss", yscale="log")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or runs[0]["workload"])
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("metrics", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--title", default=None)
    a = p.parse_args(argv)
    plot(a.metrics, a.out, a.window, a.title)


if __name__ == "__main__":
    main()
