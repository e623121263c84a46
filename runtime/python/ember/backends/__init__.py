"""ember.backends: torch.backends' switches that scripts set on their main path (`cuda.matmul.allow_tf32`
is real; `cudnn` is ember.cuda.cudnn, the run-time loaded cuDNN; ember has no MPS kernels)."""
import sys

from ..cuda import cudnn
from . import cuda, mps  # noqa: F401

sys.modules[__name__ + ".cudnn"] = cudnn  # `import ember.backends.cudnn` finds the same module

__all__ = ["cuda", "cudnn", "mps"]
