"""torch.memory_format: `preserve_format`, `contiguous_format`, `channels_last`, `channels_last_3d`.

Note [Memory formats are strides]: an ember tensor is strided, so channels_last is a layout, not a
type: an NCHW tensor whose strides are those of a contiguous NHWC tensor (built as a permute of
one). Every ember op accepts any strides, so a channels_last tensor computes the same values.
`contiguous`, `is_contiguous`, `clone`, `to`, the dtype casts and the `*_like` factories take
`memory_format=` as in torch, and `preserve_format` keeps a channels_last input channels_last
there. Other ops return contiguous results where torch would propagate channels_last: strides
differ, values never do.
"""
from __future__ import annotations

from . import _C
from ._C import Tensor


class memory_format:
    """One of ember's memory formats; compare by identity (`x is ember.channels_last`)."""

    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def __repr__(self) -> str:
        return f"ember.{self._name}"

    def __reduce__(self):
        return self._name  # pickles as the module attribute, so loading gives the same object


preserve_format = memory_format("preserve_format")
contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")

# The dims from outermost to innermost in memory: NHWC for channels_last, NDHWC for 3-d.
_ORDER = {channels_last: (4, (0, 2, 3, 1)), channels_last_3d: (5, (0, 2, 3, 4, 1))}


def _check(fmt, where: str) -> None:
    if not isinstance(fmt, memory_format):
        raise TypeError(f"{where}(): memory_format must be an ember.memory_format "
                        f"(e.g. ember.channels_last), not {type(fmt).__name__}")


def _order(t: Tensor, fmt: memory_format) -> tuple[int, ...]:
    rank, order = _ORDER[fmt]
    if t.dim() != rank:
        raise RuntimeError(f"required rank {rank} tensor to use {fmt._name} format (got a tensor of shape "
                           f"{tuple(t.shape)})")
    return order


def _is_dense_in(t: Tensor, order: tuple[int, ...]) -> bool:
    # torch's rule: strides of a contiguous tensor laid out in `order`, size-1 dims ignored.
    expected, sizes, strides = 1, t.shape, t.stride()
    for d in reversed(order):
        if sizes[d] != 1:
            if strides[d] != expected:
                return False
            expected *= sizes[d]
    return True


def is_contiguous(t: Tensor, fmt: memory_format = contiguous_format) -> bool:
    _check(fmt, "is_contiguous")
    if fmt in _ORDER:
        return t.dim() == _ORDER[fmt][0] and _is_dense_in(t, _ORDER[fmt][1])
    return _plain_is_contiguous(t)


def suggest(t: Tensor) -> memory_format:
    """What `preserve_format` keeps: channels_last(_3d) for a tensor laid out so, else contiguous."""
    for fmt, (rank, order) in _ORDER.items():
        if t.dim() == rank and not _plain_is_contiguous(t) and _is_dense_in(t, order):
            return fmt
    return contiguous_format


def to_format(t: Tensor, fmt: memory_format) -> Tensor:
    """`t` itself when already laid out in `fmt`, else a copy that is (autograd flows through)."""
    if fmt is preserve_format:
        fmt = suggest(t)
    if fmt is contiguous_format:
        return t if _plain_is_contiguous(t) else _plain_contiguous(t)
    order = _order(t, fmt)
    if _is_dense_in(t, order):
        return t
    inverse = tuple(order.index(d) for d in range(len(order)))
    return _plain_clone(t.permute(*order)).permute(*inverse)  # a clone: fresh strides even when 0-size


_plain_is_contiguous = Tensor.is_contiguous
_plain_contiguous = Tensor.contiguous
_plain_clone = Tensor.clone


def _install(module) -> None:
    """Give the methods and factories that take `memory_format=` in torch that argument."""
    def contiguous(self, memory_format=contiguous_format):
        if memory_format is contiguous_format:  # the hot path; `x.contiguous() is x` when it is, as in torch
            return self if _plain_is_contiguous(self) else _plain_contiguous(self)
        _check(memory_format, "contiguous")
        if memory_format is preserve_format:
            if _plain_is_contiguous(self):
                return self
            raise RuntimeError("contiguous(): preserve memory format is unsupported by the contiguous operator "
                               f"(a tensor of shape {tuple(self.shape)} and strides {self.stride()})")
        return to_format(self, memory_format)

    def is_contiguous_method(self, memory_format=contiguous_format):
        return is_contiguous(self, memory_format)

    Tensor.contiguous = contiguous
    Tensor.is_contiguous = is_contiguous_method

    def keeping_format(plain):  # torch's default there is preserve_format: a channels_last input stays so
        def convert(self, *args, memory_format=preserve_format, **kwargs):
            out = plain(self, *args, **kwargs)
            if memory_format is preserve_format:
                if self.dim() < 4:  # the hot path: no channels_last layout to keep
                    return out
                kept = suggest(self)
                return out if kept is contiguous_format else to_format(out, kept)
            _check(memory_format, plain.__name__)
            return to_format(out, memory_format)
        convert.__name__, convert.__qualname__, convert.__doc__ = plain.__name__, plain.__name__, plain.__doc__
        return convert

    for name in ("clone", "to", "cpu", "cuda", "float", "double", "half", "bfloat16", "long", "int", "char", "byte",
                 "bool"):
        setattr(Tensor, name, keeping_format(getattr(Tensor, name)))
    for name in ("clone", "empty_like", "zeros_like", "ones_like", "full_like", "rand_like", "randn_like",
                 "randint_like"):
        setattr(module, name, keeping_format(getattr(module, name)))
    for fmt in (preserve_format, contiguous_format, channels_last, channels_last_3d):
        setattr(module, fmt._name, fmt)
    module.memory_format = memory_format
