from . import clip_grad, rnn
from .clip_grad import clip_grad_norm_, clip_grad_value_

__all__ = ["rnn", "clip_grad", "clip_grad_norm_", "clip_grad_value_"]
