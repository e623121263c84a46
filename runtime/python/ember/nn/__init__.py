"""ember.nn: modules, functional ops, initialisers and utilities (torch.nn's API)."""
from . import functional, init, parallel, utils  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all
from .parameter import Buffer, Parameter  # noqa: F401

__all__ = list(_modules_all) + ["Parameter", "Buffer", "functional", "init", "parallel", "utils"]
