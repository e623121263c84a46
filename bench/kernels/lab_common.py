"""Helpers the kernel labs share (bench/kernels/<kernel>/lab.py); timing: bench/attention.py."""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from attention import time_ms


def rel_err(x, ref):
    """Relative L2 error of x against ref in float64; NaN when x has a non-finite value."""
    x, ref = x.double(), ref.double()
    return float("nan") if not torch.isfinite(x).all() else ((x - ref).norm() / ref.norm()).item()


def copy_bandwidth(nbytes, reps):
    """torch's device-to-device copy of nbytes, in GB/s (bytes read + written)."""
    a = torch.empty(nbytes // 2, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    ms = time_ms(lambda: b.copy_(a), torch.cuda.synchronize, torch.cuda.Event, reps)
    return 2 * a.numel() / ms / 1e6
