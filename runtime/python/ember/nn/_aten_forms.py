"""torch's top-level forms of nn ops (torch.batch_norm, torch.margin_ranking_loss, torch.gru_cell, ...).
They follow ATen's schemas rather than torch.nn.functional's: weight/bias before the running stats,
reductions as integers (0 none, 1 mean, 2 sum), every argument positional. Each forwards to the F
op; the recurrent cells are composed from torch's cell formulas."""
from __future__ import annotations

import ember

from . import functional as F

__all__ = ["batch_norm", "instance_norm", "group_norm", "max_pool1d", "max_pool2d", "max_pool3d",
           "binary_cross_entropy_with_logits", "cosine_embedding_loss", "hinge_embedding_loss", "margin_ranking_loss",
           "poisson_nll_loss", "triplet_margin_loss", "rnn_tanh_cell", "rnn_relu_cell", "gru_cell", "lstm_cell"]

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(op: str, reduction) -> str:
    if isinstance(reduction, bool) or not isinstance(reduction, int):
        raise TypeError(f"[{op}] argument 'reduction' must be int (0 none, 1 mean, 2 sum), not "
                        f"{type(reduction).__name__}")
    if not 0 <= reduction < 3:
        raise ValueError(f"[{op}] {reduction} is not a valid value for reduction (0 none, 1 mean, 2 sum)")
    return _REDUCTIONS[reduction]


def batch_norm(input, weight, bias, running_mean, running_var, training: bool, momentum: float, eps: float,
               cudnn_enabled: bool):
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats: bool, momentum: float,
                  eps: float, cudnn_enabled: bool):
    return F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-05, cudnn_enabled: bool = True):
    return F.group_norm(input, num_groups, weight, bias, eps)


def max_pool1d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode: bool = False):
    return F.max_pool1d(input, kernel_size, stride or None, padding, dilation, ceil_mode)


def max_pool2d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode: bool = False):
    return F.max_pool2d(input, kernel_size, stride or None, padding, dilation, ceil_mode)


def max_pool3d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode: bool = False):
    return F.max_pool3d(input, kernel_size, stride or None, padding, dilation, ceil_mode)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction: int = 0):
    return F.binary_cross_entropy_with_logits(input, target, weight, pos_weight=pos_weight,
                                              reduction=_reduction("binary_cross_entropy_with_logits", reduction))


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, reduction: int = 0):
    return F.cosine_embedding_loss(input1, input2, target, margin,
                                   reduction=_reduction("cosine_embedding_loss", reduction))


def hinge_embedding_loss(input, target, margin: float = 1.0, reduction: int = 0):
    return F.hinge_embedding_loss(input, target, margin, reduction=_reduction("hinge_embedding_loss", reduction))


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, reduction: int = 0):
    return F.margin_ranking_loss(input1, input2, target, margin, reduction=_reduction("margin_ranking_loss", reduction))


def poisson_nll_loss(input, target, log_input: bool, full: bool, eps: float, reduction: int):
    return F.poisson_nll_loss(input, target, log_input, full, eps=eps, reduction=_reduction("poisson_nll_loss",
                                                                                           reduction))


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2, eps: float = 1e-06,
                        swap: bool = False, reduction: int = 0):
    return F.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                 reduction=_reduction("triplet_margin_loss", reduction))


def _gates(op: str, input, hx, w_ih, w_hh, b_ih, b_hh, chunks: int):
    """input @ w_ih^T + b_ih and hx @ w_hh^T + b_hh, after checking the shapes the cell formulas need."""
    if input.dim() != 2 or hx.dim() != 2:  # torch's cell functions take batches only (nn.GRUCell & co unbatch)
        raise IndexError(f"[{op}] expected 2-D (batch, features) input and hx, got input {list(input.shape)} and hx "
                         f"{list(hx.shape)}")
    hidden = hx.shape[-1]
    if (w_ih.dim() != 2 or w_hh.dim() != 2 or w_ih.shape != (chunks * hidden, input.shape[-1])
            or w_hh.shape != (chunks * hidden, hidden) or input.shape[0] != hx.shape[0]):
        raise RuntimeError(f"[{op}] inconsistent shapes: input {list(input.shape)}, hx {list(hx.shape)}, w_ih "
                           f"{list(w_ih.shape)}, w_hh {list(w_hh.shape)} (expected w_ih [{chunks} * hidden, input], "
                           f"w_hh [{chunks} * hidden, hidden])")
    return F.linear(input, w_ih, b_ih), F.linear(hx, w_hh, b_hh)


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    gi, gh = _gates("rnn_tanh_cell", input, hx, w_ih, w_hh, b_ih, b_hh, 1)
    return ember.tanh(gi + gh)


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    gi, gh = _gates("rnn_relu_cell", input, hx, w_ih, w_hh, b_ih, b_hh, 1)
    return ember.relu(gi + gh)


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """(h', c') from gates i, f, g, o: c' = sigmoid(f) c + sigmoid(i) tanh(g), h' = sigmoid(o) tanh(c')."""
    if len(hx) != 2:
        raise RuntimeError(f"[lstm_cell] hx must be a pair (h, c), got {len(hx)} tensors")
    h, c = hx
    gi, gh = _gates("lstm_cell", input, h, w_ih, w_hh, b_ih, b_hh, 4)
    i, f, g, o = (gi + gh).chunk(4, -1)
    c_next = ember.sigmoid(f) * c + ember.sigmoid(i) * ember.tanh(g)
    return ember.sigmoid(o) * ember.tanh(c_next), c_next


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """h' = (1 - z) n + z h with r, z = sigmoid of the summed projections and
    n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn))."""
    gi, gh = _gates("gru_cell", input, hx, w_ih, w_hh, b_ih, b_hh, 3)
    i_r, i_z, i_n = gi.chunk(3, -1)
    h_r, h_z, h_n = gh.chunk(3, -1)
    r, z = ember.sigmoid(i_r + h_r), ember.sigmoid(i_z + h_z)
    n = ember.tanh(i_n + r * h_n)
    return n + z * (hx - n)
