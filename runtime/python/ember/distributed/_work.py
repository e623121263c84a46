"""ReduceOp, Work handles and the errors of ember.distributed (shared by both backends)."""
from __future__ import annotations

import enum
from datetime import timedelta
from typing import Callable


def _seconds(timeout) -> float:
    return timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)


class DistError(RuntimeError):
    """torch.distributed.DistError."""


class DistBackendError(DistError):
    """A collective failed: a peer rank failed, the communicator broke or the operation timed out."""


class DistTimeoutError(DistBackendError):
    """A collective or rendezvous ran past the process group's timeout."""


class ReduceOp(enum.Enum):
    """torch.distributed.ReduceOp. AVG is for floating dtypes only."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"

    def __repr__(self):
        return f"<ReduceOp.{self.name}>"



class Work:
    """Handle of a collective started with async_op=True (torch.distributed.Work).

    wait() finishes it: on CPU it blocks until the data has arrived; on CUDA it makes the current
    stream wait for the collective (the host does not block), like torch. Then the `then` callbacks
    run in order (copies into list outputs, scaling); result() returns the output tensors.
    """

    def __init__(self, outputs=None):
        self._outputs = list(outputs or [])
        self._then: list[Callable[[], None]] = []
        self._finished = False
        self._exception: BaseException | None = None

    def then(self, fn: Callable[[], None]) -> "Work":
        self._then.append(fn)
        return self

    # backends implement these two
    def _test(self) -> bool:
        raise NotImplementedError

    def _wait(self, timeout_s: float | None) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        for fn in self._then:
            fn()

    def wait(self, timeout=None) -> bool:
        if self._exception is not None:
            raise self._exception
        if not self._finished:
            try:
                self._wait(None if timeout is None else _seconds(timeout))
            except BaseException as e:
                self._exception = e
                raise
            self._finish()
        return True

    def is_completed(self) -> bool:
        """True once the collective is done (does not block; on CPU it also drives MPI's progress)."""
        if self._finished:
            return True
        if self._exception is not None:
            return True
        return self._test()

    def is_success(self) -> bool:
        return self.is_completed() and self._exception is None

    def exception(self):
        return self._exception

    def result(self) -> list:
        return self._outputs

    def synchronize(self) -> None:
        self.wait()


class CompletedWork(Work):
    """A Work with nothing left to wait for (world size 1, empty tensors)."""

    def _test(self) -> bool:
        return True

    def _wait(self, timeout_s):
        return None


class ChainedWork(Work):
    """A Work made of another one: waits for it, then runs its own callbacks."""

    def __init__(self, inner: Work, outputs=None):
        super().__init__(outputs)
        self.inner = inner

    def _test(self) -> bool:
        return self.inner.is_completed()

    def _wait(self, timeout_s):
        self.inner.wait(timeout_s)
