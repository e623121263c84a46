"""ember.cuda: device management, streams, events, memory stats and graphs (CUDA backend)."""
from .. import _C


def is_available() -> bool:
    cuda = getattr(_C, "_cuda", None)
    return bool(cuda is not None and cuda.is_available())
