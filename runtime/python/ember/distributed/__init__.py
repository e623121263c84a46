"""ember.distributed: the importable shell of torch.distributed.

Multi-process training (process groups, collectives over NCCL/Gloo) is issue 15 and is not built
yet. Scripts that only *import* these names, or check `is_available()` / `is_initialized()` before
going distributed (nanoGPT's train.py does), run unchanged; calling anything that would need a
process group raises NotImplementedError naming the issue.
"""
from __future__ import annotations

import enum

__all__ = ["is_available", "is_initialized", "is_torchelastic_launched", "init_process_group",
           "destroy_process_group", "get_rank", "get_world_size", "barrier", "all_reduce", "all_gather",
           "broadcast", "reduce", "ReduceOp", "Backend"]

_ISSUE = "ember has no multi-process data-parallel training yet (issue 15: data-parallel training over NCCL)"


def is_available() -> bool:
    """False: this build has no distributed backend (issue 15)."""
    return False


def is_initialized() -> bool:
    """False: no process group can exist until issue 15 lands."""
    return False


def is_torchelastic_launched() -> bool:
    return False


def _unavailable(name: str):
    def fn(*args, **kwargs):
        raise NotImplementedError(f"ember.distributed.{name}: {_ISSUE}")
    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = f"Not implemented: raises NotImplementedError ({_ISSUE})."
    return fn


init_process_group = _unavailable("init_process_group")
destroy_process_group = _unavailable("destroy_process_group")
get_rank = _unavailable("get_rank")
get_world_size = _unavailable("get_world_size")
barrier = _unavailable("barrier")
all_reduce = _unavailable("all_reduce")
all_gather = _unavailable("all_gather")
broadcast = _unavailable("broadcast")
reduce = _unavailable("reduce")


class ReduceOp(enum.Enum):
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


class Backend:
    GLOO = "gloo"
    NCCL = "nccl"
