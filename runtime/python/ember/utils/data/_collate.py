"""default_collate / default_convert: how a DataLoader turns a list of samples into a batch.

Rules (torch's): tensors stack along a new dim 0; numpy arrays become tensors and stack; Python
floats become a float64 tensor, ints an int64 tensor, bools a bool tensor; strings and bytes stay a
list; mappings collate per key (keeping the mapping type); namedtuples per field; other sequences
are transposed and collated position by position (a tuple gives a list, as in torch).
"""
from __future__ import annotations

import collections.abc
import copy
import re

import numpy as np

import ember

__all__ = ["default_collate", "default_convert"]

_NP_OBJECT = re.compile(r"[SaUO]")  # numpy dtypes that cannot become tensors (strings, objects)


def _error(elem) -> TypeError:
    return TypeError("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                     f"found {type(elem).__name__}")


def default_convert(data):
    """What a DataLoader with batch_size=None does to each sample: numpy arrays and numpy scalars
    become tensors; containers are converted element-wise; everything else is returned as is."""
    if isinstance(data, ember.Tensor):
        return data
    if isinstance(data, np.ndarray) and not _NP_OBJECT.search(data.dtype.str):
        return ember.as_tensor(data)
    if isinstance(data, np.generic) and not _NP_OBJECT.search(data.dtype.str):
        return ember.as_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        return _same_mapping_type(data, {k: default_convert(v) for k, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        converted = [default_convert(d) for d in data]
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    return data


def _same_mapping_type(original, values: dict):
    """`values` in the mapping type of `original` (a shallow copy updated in place keeps subclasses
    such as OrderedDict or defaultdict); a plain dict when the type cannot be rebuilt."""
    try:
        if isinstance(original, collections.abc.MutableMapping):
            out = copy.copy(original)
            out.update(values)
            return out
        return type(original)(values)
    except TypeError:
        return values


def default_collate(batch):
    """Collates a list of samples into a batch (see the module docstring for the rules)."""
    elem = batch[0]
    if isinstance(elem, ember.Tensor):
        return ember.stack(list(batch), 0)
    if isinstance(elem, np.ndarray):
        if _NP_OBJECT.search(elem.dtype.str):
            raise _error(elem)
        return ember.stack([ember.as_tensor(b) for b in batch], 0)
    if isinstance(elem, np.generic):
        if _NP_OBJECT.search(elem.dtype.str):
            raise _error(elem)
        return ember.as_tensor(np.asarray(batch))
    if isinstance(elem, bool):
        return ember.tensor(batch, dtype=ember.bool)
    if isinstance(elem, float):
        return ember.tensor(batch, dtype=ember.float64)
    if isinstance(elem, int):
        return ember.tensor(batch, dtype=ember.int64)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return _same_mapping_type(elem, {key: default_collate([d[key] for d in batch]) for key in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(samples)) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size "
                               f"(got sizes {sorted({len(e) for e in batch})})")
        columns = [default_collate(list(samples)) for samples in zip(*batch)]
        if isinstance(elem, tuple):
            return columns  # torch returns a list for tuples
        try:
            return type(elem)(columns)
        except TypeError:
            return columns
    raise _error(elem)
