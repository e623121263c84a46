"""ember.nn.parallel: importable names of torch.nn.parallel. Data-parallel training is issue 15;
constructing a wrapper raises NotImplementedError naming it."""
from __future__ import annotations

from ..modules.module import Module

__all__ = ["DistributedDataParallel", "DataParallel"]

_ISSUE = "ember has no data-parallel training yet (issue 15: data-parallel training over NCCL)"


class DistributedDataParallel(Module):
    def __init__(self, module, *args, **kwargs):
        raise NotImplementedError(f"ember.nn.parallel.DistributedDataParallel: {_ISSUE}")


class DataParallel(Module):
    def __init__(self, module, *args, **kwargs):
        raise NotImplementedError(f"ember.nn.parallel.DataParallel: {_ISSUE}")
