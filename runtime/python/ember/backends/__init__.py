"""ember.backends: torch.backends' switches that scripts set on their main path (`cuda.matmul.allow_tf32`
is real; ember has no cuDNN or MPS kernels, see the submodules)."""
from . import cuda, cudnn, mps  # noqa: F401

__all__ = ["cuda", "cudnn", "mps"]
