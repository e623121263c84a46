"""ember.utils: data loading (torch.utils.data's API)."""
from . import data  # noqa: F401

__all__ = ["data"]
