"""DistributedSampler: each of `num_replicas` processes reads its own 1/num_replicas of the data."""
from __future__ import annotations

import math

import ember

from .sampler import Sampler

__all__ = ["DistributedSampler"]


def _from_process_group(what: str) -> int:
    import ember.distributed as dist
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(f"[DistributedSampler] {what} was not given and there is no initialized ember.distributed "
                           f"process group to take it from; pass num_replicas= and rank= explicitly")
    return dist.get_world_size() if what == "num_replicas" else dist.get_rank()


class DistributedSampler(Sampler):
    """torch's semantics: the (optionally shuffled, seed + epoch) index list is padded by wrapping
    around (or cut, with drop_last) to a multiple of num_replicas, then rank r takes every
    num_replicas-th index starting at r. Call set_epoch(e) each epoch for a fresh shuffle."""

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):
        if num_replicas is None:
            num_replicas = _from_process_group("num_replicas")
        if rank is None:
            rank = _from_process_group("rank")
        if not isinstance(num_replicas, int) or num_replicas <= 0:
            raise ValueError(f"[DistributedSampler] num_replicas must be a positive int, got {num_replicas!r}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"[DistributedSampler] Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            g = ember.Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = ember.randperm(n, generator=g).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            pad = self.total_size - len(indices)
            if pad > 0 and indices:
                indices += (indices * math.ceil(pad / len(indices)))[:pad]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
