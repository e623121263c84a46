"""ember.cuda.cudnn (also ember.backends.cudnn): whether cuDNN is usable, torch.backends.cudnn's API.

ember loads cuDNN at run time (Note [Loading cuDNN], runtime/csrc/cuda/cudnn_loader.cpp): from
$EMBER_CUDNN_PATH, the nvidia-cudnn wheel torch installs (site-packages/nvidia/cudnn/lib), or the
system's libcudnn.so.9. Without it ember runs as before and its cuDNN-backed ops (fused attention)
keep their composite CUDA paths. Set `ember.cuda.cudnn.enabled = False` to force those paths.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys

from .. import _C

enabled = True
# torch.backends.cudnn's tuning hints, kept for scripts that set them: ember runs cuDNN's
# heuristic engine choice (no autotuning), and its only cuDNN op (fused attention) uses no TF32.
benchmark = False
deterministic = False
allow_tf32 = True

_status: tuple[bool, str] | None = None


def _nvidia_roots() -> list[str]:
    try:
        import nvidia  # noqa: F401  (namespace package of the nvidia-* wheels)
        return list(nvidia.__path__)
    except ImportError:
        return [os.path.join(p, "nvidia") for p in sys.path if os.path.isdir(os.path.join(p, "nvidia"))]


def _library_candidates() -> list[str]:
    """libcudnn.so.9 from the nvidia wheels, after making their NVRTC loadable (cuDNN compiles some
    attention engines at run time and finds libnvrtc by soname)."""
    roots = _nvidia_roots()
    for root in roots:
        for path in sorted(glob.glob(os.path.join(root, "*", "lib", "libnvrtc.so.*"))):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                break
            except OSError:
                continue
    return [p for root in roots for p in sorted(glob.glob(os.path.join(root, "cudnn", "lib", "libcudnn.so.*")))]


def _load() -> tuple[bool, str]:
    """(cuDNN loaded, why fused attention cannot run or ''), decided once per process."""
    global _status
    if _status is None:
        if not _C._cuda.is_available():
            return False, "no CUDA GPU is available"
        loaded = bool(_C._cudnn_load(_library_candidates()))
        _status = (loaded, _C._cuda_flash_attention_unavailable_reason())
    return _status


def is_available() -> bool:
    """True when a cuDNN 9 library was loaded (a GPU and the library are present)."""
    return _load()[0]


def version() -> int | None:
    """The loaded cuDNN's version as cuDNN encodes it (9.10.2 -> 91002), or None."""
    return int(_C._cudnn_version()) if is_available() else None


def fused_attention_unavailable_reason() -> str:
    """'' when scaled_dot_product_attention can use cuDNN's fused kernels here, else why not."""
    return _load()[1] if enabled else "ember.cuda.cudnn.enabled is False"
