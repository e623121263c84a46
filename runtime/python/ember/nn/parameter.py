"""Parameter: a leaf Tensor that Modules register as a learnable weight.

Note [Parameter is a Tensor]
The C++ Tensor class has no Python constructor, so a Python subclass instance can't be built around
an existing handle. Parameter(data) therefore returns a detached alias of `data` (same storage,
requires_grad=True) tagged with `_is_param`, and `isinstance(x, Parameter)` checks that tag through
the metaclass, as torch's own Parameter metaclass does. If the binding gains `Tensor(Tensor)`, the
object is a genuine subclass instance instead; callers can't tell the difference.
"""
from __future__ import annotations

import ember
from ember import Tensor


class _ParameterMeta(type(Tensor)):
    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and bool(getattr(obj, "_is_param", False))


class Parameter(Tensor, metaclass=_ParameterMeta):
    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = ember.empty(0)
        alias = data.detach()
        try:
            obj = Tensor.__new__(cls)
            Tensor.__init__(obj, alias)
        except TypeError:
            obj = alias
        obj.requires_grad_(requires_grad)
        obj._is_param = True
        return obj

    def __init__(self, *args, **kwargs):  # state is set in __new__
        pass


class Buffer:
    """Marker like torch.nn.Buffer: assigning Buffer(t) to a Module attribute registers a buffer."""

    def __init__(self, data, persistent=True):
        self.data = data
        self.persistent = persistent
