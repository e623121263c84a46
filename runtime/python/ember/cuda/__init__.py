"""ember.cuda: device management, streams, events, memory stats and CUDA graphs (CUDA backend).

Mirrors torch.cuda. Every op runs on the current stream of its device; `stream(s)` switches it for
the calling thread. Without a GPU (or in a build without CUDA) `is_available()` is False and the
other functions raise a clear RuntimeError.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import os

from .. import _C

_cuda = _C._cuda


def _preload_cublas():
    # ember loads cuBLAS at run time (dlopen). Make the wheel-provided copy findable when the
    # system toolkit has none (the soname lookup then matches the already loaded library).
    if os.environ.get("EMBER_CUBLAS_PATH"):
        return
    try:
        import nvidia  # noqa: F401  (namespace package of the nvidia-* wheels)
        roots = list(nvidia.__path__)
    except ImportError:
        return
    for root in roots:
        for pattern in ("cublas/lib/libcublas.so*", "cu13/lib/libcublas.so*", "*/lib/libcublas.so.*"):
            for path in sorted(glob.glob(os.path.join(root, pattern))):
                if "Lt" in os.path.basename(path):
                    continue
                try:
                    ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                    return
                except OSError:
                    continue


def is_available() -> bool:
    return bool(_cuda.is_available())


def is_built() -> bool:
    return bool(_cuda.built)


def device_count() -> int:
    return int(_cuda.device_count())


if is_available():
    _preload_cublas()


def current_device() -> int:
    return _cuda.current_device()


def set_device(device) -> None:
    _cuda.set_device(_index(device))


def synchronize(device=None) -> None:
    _cuda.synchronize(_index(device))


def get_device_name(device=None) -> str:
    return _cuda.get_device_name(_index(device))


def get_device_capability(device=None):
    return _cuda.get_device_capability(_index(device))


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """Whether the current CUDA device computes in bfloat16 natively (compute capability 8.0+, like
    torch); including_emulation also accepts older devices, which emulate it in float32."""
    if not is_available():
        return False
    return including_emulation or get_device_capability()[0] >= 8


def mem_get_info(device=None):
    return _cuda.mem_get_info(_index(device))


def manual_seed(seed: int) -> None:
    """Seeds every device's default generator (ember's generators are seeded together)."""
    import ember
    ember.manual_seed(seed)


manual_seed_all = manual_seed


def _index(device):
    if device is None:
        return None
    if isinstance(device, int):
        return device
    s = str(device)
    if s == "cuda":
        return None
    if s.startswith("cuda:"):
        return int(s[5:])
    raise ValueError(f"[cuda] expected a CUDA device, got {device!r}")


class device:
    """Context manager that makes `device` current (like torch.cuda.device)."""

    def __init__(self, dev):
        self.idx = _index(dev)
        self.prev = None

    def __enter__(self):
        if self.idx is not None:
            self.prev = current_device()
            set_device(self.idx)

    def __exit__(self, *exc):
        if self.prev is not None:
            set_device(self.prev)
        return False


# ---- streams and events ---------------------------------------------------------------------------

if _cuda.built:
    Stream = _cuda.Stream
    Event = _cuda.Event
else:
    class _NoCuda:
        """Stand-in for the CUDA stream/event types in a CPU-only build: creating one raises."""

        def __init__(self, *args, **kwargs):
            raise RuntimeError(f"[cuda.{type(self).__name__}] ember was built without CUDA")

        def record(self, stream=None):
            raise RuntimeError("[cuda.Event] ember was built without CUDA")

        def wait(self, stream=None):
            raise RuntimeError("[cuda.Event] ember was built without CUDA")

    class Stream(_NoCuda):
        pass

    class Event(_NoCuda):
        pass


def _stream_device(self):
    import ember
    return ember.device("cuda", self.device_index)


def _stream_record_event(self, event=None):
    event = Event() if event is None else event
    event.record(self)
    return event


def _stream_wait_stream(self, other):
    self.wait_event(other.record_event())


Stream.device = property(_stream_device)
Stream.record_event = _stream_record_event
Stream.wait_stream = _stream_wait_stream
Stream.__repr__ = lambda self: f"<ember.cuda.Stream device=cuda:{self.device_index} cuda_stream={self.cuda_stream:#x}>"

_orig_event_record = Event.record
_orig_event_wait = Event.wait


def _event_record(self, stream=None):
    _orig_event_record(self, current_stream() if stream is None else stream)


def _event_wait(self, stream=None):
    _orig_event_wait(self, current_stream() if stream is None else stream)


Event.record = _event_record
Event.wait = _event_wait


def current_stream(device=None):
    return _cuda._current_stream(_index(device))


def default_stream(device=None):
    return _cuda._default_stream(_index(device))


def set_stream(s) -> None:
    _cuda._set_stream(s)


class StreamContext:
    """Makes `s` the current stream of its device for the block (torch.cuda.stream)."""

    def __init__(self, s):
        self.stream = s
        self.prev = None

    def __enter__(self):
        if self.stream is None:
            return None
        self.prev = _cuda._current_stream(self.stream.device_index)
        _cuda._set_stream(self.stream)
        return self.stream

    def __exit__(self, *exc):
        if self.prev is not None:
            _cuda._set_stream(self.prev)
        return False


def stream(s):
    return StreamContext(s)


# ---- memory ---------------------------------------------------------------------------------------

def memory_allocated(device=None) -> int:
    return _cuda.memory_allocated(_index(device))


def memory_reserved(device=None) -> int:
    return _cuda.memory_reserved(_index(device))


def max_memory_allocated(device=None) -> int:
    return _cuda.max_memory_allocated(_index(device))


def max_memory_reserved(device=None) -> int:
    return _cuda.max_memory_reserved(_index(device))


def reset_peak_memory_stats(device=None) -> None:
    _cuda.reset_peak_memory_stats(_index(device))


def reset_accumulated_memory_stats(device=None) -> None:
    _cuda.reset_accumulated_memory_stats(_index(device))


def memory_stats(device=None) -> dict:
    return dict(_cuda.memory_stats(_index(device)))


def memory_summary(device=None) -> str:
    return _cuda.memory_summary(_index(device))


def memory_snapshot() -> list:
    return list(_cuda.memory_snapshot())


def empty_cache() -> None:
    _cuda.empty_cache()


def set_per_process_memory_fraction(fraction: float, device=None) -> None:
    _cuda.set_per_process_memory_fraction(fraction, _index(device))


# ---- TF32 (torch.backends.cuda.matmul.allow_tf32) -------------------------------------------------

class _MatmulFlags:
    @property
    def allow_tf32(self) -> bool:
        return bool(_cuda._get_allow_tf32()) if _cuda.built else False

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        if _cuda.built:
            _cuda._set_allow_tf32(bool(value))


matmul = _MatmulFlags()

# ---- graphs ---------------------------------------------------------------------------------------

from .graphs import CUDAGraph, graph, graph_pool_handle, make_graphed_step, is_current_stream_capturing  # noqa: E402,F401
from . import cudnn  # noqa: E402,F401
