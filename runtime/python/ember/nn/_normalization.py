"""instance_norm and local_response_norm of ember.nn.functional (composites; batch_norm's math)."""
from __future__ import annotations

import math

import ember
from ember import Tensor

from ._conv import batch_norm
from ._padding import pad

__all__ = ["instance_norm", "local_response_norm"]


def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Each (sample, channel) plane normalised by its own statistics: batch_norm of the input seen as
    (1, N*C, *spatial), as torch computes it. Running statistics move towards the batch average of
    the per-instance ones (unbiased variances)."""
    op = "instance_norm"
    if input.dim() < 3:
        raise ValueError(f"[{op}] expected an input of at least 3 dims (N, C, *spatial), got {input.dim()}D input of "
                         f"shape {list(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    if use_input_stats and math.prod(input.shape[2:]) == 1:
        raise ValueError(f"[{op}] Expected more than 1 spatial element when training, got input size "
                         f"{list(input.shape)}")
    for t, name in ((running_mean, "running_mean"), (running_var, "running_var"), (weight, "weight"),
                    (bias, "bias")):
        if t is not None and tuple(t.shape) != (c,):
            raise RuntimeError(f"[{op}] expected {name} of shape [{c}] (the input's channels), got {list(t.shape)} "
                               f"for input of size {list(input.shape)}")
    if n * c == 0:
        return input.clone()
    repeat = (lambda t: None if t is None else t.repeat(n))  # noqa: E731
    mean_n, var_n = repeat(running_mean), repeat(running_var)
    x = input.reshape(1, n * c, *input.shape[2:])
    out = batch_norm(x, mean_n, var_n, repeat(weight), repeat(bias), use_input_stats, momentum, eps)
    if use_input_stats:
        with ember.no_grad():
            if running_mean is not None:
                running_mean.copy_(mean_n.reshape(n, c).mean(0))
            if running_var is not None:
                running_var.copy_(var_n.reshape(n, c).mean(0))
    return out.reshape(input.shape)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """x / (k + alpha * mean of x^2 over a window of `size` neighbouring channels)^beta (AlexNet's LRN)."""
    if input.dim() < 3:
        raise ValueError(f"[local_response_norm] Expected 3D or higher dimensionality input (got {input.dim()} "
                         f"dimensions, input of shape {list(input.shape)})")
    if input.numel() == 0:
        return input
    c = input.shape[1]
    sq = pad((input * input).movedim(1, -1), (size // 2, (size - 1) // 2))  # zero-padded channels, last
    window = sq.narrow(-1, 0, c)
    for j in range(1, size):
        window = window + sq.narrow(-1, j, c)
    div = (window.movedim(-1, 1) * (alpha / size) + k).pow(beta)
    return input / div
