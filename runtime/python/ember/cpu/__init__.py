"""ember.cpu: torch.cpu's pieces scripts use (the CPU autocast spelling `ember.cpu.amp`)."""
from . import amp  # noqa: F401


def is_available() -> bool:
    return True


def device_count() -> int:
    return 1


def synchronize(device=None) -> None:
    """CPU ops complete before they return: nothing to wait for."""


__all__ = ["amp", "is_available", "device_count", "synchronize"]
