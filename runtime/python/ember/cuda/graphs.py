"""CUDA graphs: capture a sequence of ember ops once, replay it with one launch.

Note [Graph capture rules]
* Capture happens on a side stream (the default stream cannot be captured); `graph(...)` makes one.
* Tensors created during capture live in the graph's private memory pool: keep references to the
  ones you read after replay (the "static outputs"); inputs must be copied into the tensors used at
  capture time (the "static inputs") before each replay.
* Nothing in the captured region may synchronize with the host (no .item(), .tolist(), .cpu(),
  printing, data-dependent shapes such as nonzero/masked_select): those raise during capture.
* Random ops are graph-safe: each replay draws fresh numbers (Philox offsets advance per replay).
"""
from __future__ import annotations

from typing import Callable, Sequence

from .. import _C

_cuda = _C._cuda


def graph_pool_handle() -> int:
    """A pool id to share one private memory pool among several graphs (0 = a new pool)."""
    return 0


def is_current_stream_capturing() -> bool:
    return bool(_cuda._is_current_stream_capturing())


class CUDAGraph:
    """Wrapper of a captured CUDA graph (torch.cuda.CUDAGraph)."""

    def __init__(self):
        self._g = _cuda.CUDAGraph()

    def capture_begin(self, pool: int = 0) -> None:
        self._g.capture_begin(pool or 0)

    def capture_end(self) -> None:
        self._g.capture_end()

    def replay(self) -> None:
        self._g.replay()

    def reset(self) -> None:
        self._g.reset()

    def pool(self) -> int:
        return self._g.pool()

    def num_kernel_nodes(self) -> int:
        """The kernel launches the captured graph holds (an ember extension, for launch-count tests)."""
        return self._g.num_kernel_nodes()


class graph:
    """Context manager: captures the ops run inside the block into `cuda_graph` on a side stream.

        g = ember.cuda.CUDAGraph()
        with ember.cuda.graph(g):
            y = model(static_x)
        static_x.copy_(new_x); g.replay()   # y now holds the result for new_x
    """

    def __init__(self, cuda_graph: CUDAGraph, pool: int | None = None, stream=None):
        from . import Stream, current_stream
        self.cuda_graph = cuda_graph
        self.pool = pool or 0
        self.capture_stream = stream if stream is not None else Stream()
        self._prev = None
        self._current_stream = current_stream

    def __enter__(self):
        from . import synchronize
        synchronize()
        self._prev = self._current_stream()
        # The side stream must see everything queued so far on the previous stream.
        self.capture_stream.wait_stream(self._prev)
        _cuda._set_stream(self.capture_stream)
        try:
            self.cuda_graph.capture_begin(self.pool)
        except Exception:
            _cuda._set_stream(self._prev)
            raise
        return self.cuda_graph

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.cuda_graph.capture_end()
            else:
                self.cuda_graph.reset()
        finally:
            _cuda._set_stream(self._prev)
            self._prev.wait_stream(self.capture_stream)
        return False


def make_graphed_step(step: Callable[..., object], static_inputs: Sequence, warmup: int = 3):
    """Captures a whole training step (forward, backward, optimizer step) for replay.

    `step(*static_inputs)` must do all of its work with ember ops on the GPU, without host syncs, and
    return the tensors to read afterwards (e.g. the loss). Warm-up iterations run first on a side
    stream (they create gradient buffers and optimizer state, so no allocation of persistent state
    happens during capture). Returns `run(*inputs)`, which copies `inputs` into the static input
    buffers, replays the graph and returns the static outputs (valid until the next call).

    Gradients must accumulate into existing .grad tensors across replays as they did during capture:
    use optimizer.zero_grad(set_to_none=False) inside `step`.
    """
    from . import Stream, current_stream, synchronize

    side = Stream()
    side.wait_stream(current_stream())
    prev = current_stream()
    _cuda._set_stream(side)
    try:
        for _ in range(warmup):
            step(*static_inputs)
    finally:
        _cuda._set_stream(prev)
    prev.wait_stream(side)
    synchronize()

    g = CUDAGraph()
    with graph(g):
        static_out = step(*static_inputs)

    def run(*inputs):
        if len(inputs) != len(static_inputs):
            raise TypeError(f"[make_graphed_step] expected {len(static_inputs)} inputs, got {len(inputs)}")
        for dst, src in zip(static_inputs, inputs):
            if src is not dst:
                dst.copy_(src)
        g.replay()
        return static_out

    run.graph = g
    run.static_inputs = static_inputs
    run.static_outputs = static_out
    return run
