"""ember.accelerator: torch.accelerator's device-agnostic queries. ember's only accelerator is CUDA."""
from __future__ import annotations

from . import _C, cuda

__all__ = ["is_available", "current_accelerator", "device_count", "current_device_index", "current_device_idx",
           "set_device_index", "set_device_idx", "synchronize"]


def is_available() -> bool:
    return cuda.is_available()


def current_accelerator(check_available: bool = False):
    """ember.device('cuda') when ember was built with CUDA (and, with check_available, a GPU is usable); else None."""
    if check_available:
        return _C.device("cuda") if cuda.is_available() else None
    return _C.device("cuda") if cuda.is_built() else None


def device_count() -> int:
    return cuda.device_count() if cuda.is_available() else 0


def current_device_index() -> int:
    return cuda.current_device()


def set_device_index(device) -> None:
    cuda.set_device(device)


def synchronize(device=None) -> None:
    cuda.synchronize(device)


current_device_idx = current_device_index
set_device_idx = set_device_index
