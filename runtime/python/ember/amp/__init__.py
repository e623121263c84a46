"""ember.amp: automatic mixed precision (torch.amp): autocast regions with torch's op lists
(autocast_mode.py) and dynamic loss scaling (grad_scaler.py)."""
from .autocast_mode import (autocast, custom_bwd, custom_fwd, get_autocast_dtype, is_autocast_available,  # noqa: F401
                            is_autocast_enabled)
from .grad_scaler import GradScaler

__all__ = ["autocast", "GradScaler", "custom_fwd", "custom_bwd", "is_autocast_available", "is_autocast_enabled",
           "get_autocast_dtype"]
