"""ember.distributed: process groups and collectives across processes and machines (torch.distributed).

    ember.distributed.init_process_group(backend=None)  # "mpi" for CPU tensors, "nccl" for CUDA ones
    ember.distributed.all_reduce(t)                     # in place, sum over ranks
Start the ranks with the launcher: `python -m ember.distributed.run --nproc-per-node N train.py`.
See docs/distributed.md.
"""
from ._work import DistBackendError, DistError, DistTimeoutError, ReduceOp, Work
from .distributed_c10d import (Backend, GroupMember, ProcessGroup, all_gather, all_gather_into_tensor, all_reduce,
                               barrier, broadcast, destroy_process_group, get_backend, get_global_rank, get_group_rank,
                               get_rank, get_world_size, group, init_process_group, is_available, is_initialized,
                               is_mpi_available, is_nccl_available, is_torchelastic_launched, monitored_barrier,
                               new_group, reduce_scatter, reduce_scatter_tensor)
from .store import Store, TCPStore

__all__ = [
    "Backend", "DistBackendError", "DistError", "DistTimeoutError", "GroupMember", "ProcessGroup", "ReduceOp", "Store",
    "TCPStore", "Work", "all_gather", "all_gather_into_tensor", "all_reduce", "barrier", "broadcast",
    "destroy_process_group", "get_backend", "get_global_rank", "get_group_rank", "get_rank", "get_world_size", "group",
    "init_process_group", "is_available", "is_initialized", "is_mpi_available", "is_nccl_available",
    "is_torchelastic_launched", "monitored_barrier", "new_group", "reduce_scatter", "reduce_scatter_tensor",
]
