"""ember: a PyTorch-style eager deep-learning runtime (C++ core, CPU and CUDA backends)."""
import ctypes as _ctypes
import sys as _sys

def _preload_openblas():
    # _C links against the OpenBLAS shipped in the scipy-openblas32 wheel; load it by path first so
    # the dynamic loader finds it without an rpath into a (possibly temporary) build environment.
    try:
        import scipy_openblas32 as _sob
        import os
        _ctypes.CDLL(os.path.join(_sob.get_lib_dir(), "libscipy_openblas.so"), mode=_ctypes.RTLD_GLOBAL)
    except (ImportError, OSError):
        pass

_preload_openblas()

from . import _C  # noqa: E402
from ._C import *  # noqa: E402,F401,F403
from ._C import Tensor, dtype, device  # noqa: E402,F401

float = float32  # noqa: A001,F405
double = float64  # noqa: F405
half = float16  # noqa: F405
long = int64  # noqa: F405
int = int32  # noqa: A001,F405


def _dtype_from_name(name):
    return getattr(_C, name)


# Python-level layers. Each lives in its own module; keep this file to imports.
from . import _tensor  # noqa: E402,F401
from . import autograd, cuda, distributed, nn, optim  # noqa: E402,F401
from .autograd.grad_mode import enable_grad, inference_mode, no_grad, set_grad_enabled  # noqa: E402,F401
from .serialization import load, load_file, save, save_file  # noqa: E402,F401
from ._tensor import get_printoptions, set_printoptions  # noqa: E402,F401
# torch-compatibility surface (docs/compat.md): data loading, distributed shell, odds and ends.
from . import _compat, accelerator, backends, distributed, onnx, utils  # noqa: E402,F401
from ._compat import (BFloat16Tensor, BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor,  # noqa: E402,F401
                      HalfTensor, IntTensor, LongTensor, Size, allclose, compile, equal, get_default_dtype,
                      get_float32_matmul_precision, is_tensor, isclose, meshgrid, numel, set_default_dtype,
                      set_float32_matmul_precision)
from ._compat import (are_deterministic_algorithms_enabled, asarray, detach, fill, frombuffer,  # noqa: E402,F401
                      get_default_device, get_deterministic_debug_mode, get_num_interop_threads,
                      is_deterministic_algorithms_warn_only_enabled, is_floating_point, is_inference, is_signed,
                      is_warn_always_enabled, set_default_device, set_deterministic_debug_mode, set_flush_denormal,
                      set_num_interop_threads, set_warn_always, use_deterministic_algorithms)
_compat._install_tensor_methods()
# torch functions composed of ember ops (docs/compat.md): einsum, torch.linalg, matrix builders,
# order statistics, shape helpers; with their Tensor methods.
from . import linalg, special  # noqa: E402,F401
from ._einsum import einsum, tensordot  # noqa: E402,F401
from ._matrix_ops import *  # noqa: E402,F401,F403
from ._numeric import *  # noqa: E402,F401,F403
from ._pointwise import *  # noqa: E402,F401,F403
from ._scatter_ops import *  # noqa: E402,F401,F403
from ._shape_ops import *  # noqa: E402,F401,F403
from ._stats import *  # noqa: E402,F401,F403
from . import _matrix_ops, _pointwise, _scatter_ops, _shape_ops, _stats  # noqa: E402
for _module in (_matrix_ops, _pointwise, _scatter_ops, _shape_ops, _stats):
    for _name, _method in _module.TENSOR_METHODS.items():
        assert not hasattr(Tensor, _name), f"Tensor.{_name} is native now: drop its composite"
        setattr(Tensor, _name, _method)
# torch's top-level names of nn.functional ops (torch.conv2d is torch.nn.functional.conv2d; torch.selu
# takes F.selu's leading arguments).
from .nn.functional import (adaptive_avg_pool1d, alpha_dropout, avg_pool1d, bilinear, celu, celu_,  # noqa: E402,F401
                            channel_shuffle, conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d,
                            conv_transpose3d, cosine_similarity, feature_alpha_dropout, hardshrink, pairwise_distance,
                            pdist, pixel_shuffle, pixel_unshuffle, prelu, rrelu, rrelu_, selu, selu_, threshold,
                            threshold_)
from .nn._aten_forms import *  # noqa: E402,F401,F403  (torch.batch_norm & co: ATen's argument order)
from . import _memory_format  # noqa: E402  (memory_format=: channels_last and friends)
_memory_format._install(_sys.modules[__name__])
# Mixed precision (ember.amp; torch.cuda.amp / torch.cpu.amp spellings in ember.cuda.amp / ember.cpu).
from . import amp, cpu  # noqa: E402,F401
from .cuda import amp as _cuda_amp  # noqa: E402,F401  (makes ember.cuda.amp an attribute)
from .amp.autocast_mode import (autocast, clear_autocast_cache, get_autocast_dtype,  # noqa: E402,F401
                                is_autocast_available, is_autocast_enabled, set_autocast_dtype, set_autocast_enabled)
