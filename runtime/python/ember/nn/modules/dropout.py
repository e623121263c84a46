"""Dropout, channel-wise Dropout1d/2d/3d and the SELU-preserving AlphaDropout/FeatureAlphaDropout
(torch.nn.modules.dropout)."""
from __future__ import annotations

from .. import functional as F
from .module import Module


class Dropout(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class _ChannelDropout(Dropout):
    _functional = None

    def forward(self, input):
        return type(self)._functional(input, self.p, self.training, self.inplace)


class Dropout1d(_ChannelDropout):
    _functional = staticmethod(F.dropout1d)


class Dropout2d(_ChannelDropout):
    _functional = staticmethod(F.dropout2d)


class Dropout3d(_ChannelDropout):
    _functional = staticmethod(F.dropout3d)


class AlphaDropout(Dropout):
    def forward(self, input):
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(Dropout):
    def forward(self, input):
        return F.feature_alpha_dropout(input, self.p, self.training)
