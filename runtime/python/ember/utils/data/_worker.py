"""What runs inside a DataLoader worker process, and what crosses the queues.

Note [DataLoader worker protocol]: the main process sends `(task_id, indices)` on a worker's own index
queue; the worker answers `(task_id, batch)` on the shared result queue, where `batch` may be an
ExceptionWrapper (re-raised in the main process with the worker's traceback) or, for an
IterableDataset whose stream ran out, an _IterationEnd marker. `_ResumeIteration` (persistent
workers, next epoch) is acknowledged with `(_ResumeIteration, None)`; `None` asks the worker to exit.
Workers also exit when their parent process disappears (they are re-parented), so a killed main
process leaves no orphans.
"""
from __future__ import annotations

import dataclasses
import os
import queue
import random
import sys
import traceback
from multiprocessing.reduction import ForkingPickler

import numpy as np

import ember

__all__ = ["WorkerInfo", "get_worker_info"]

# How often a blocked get() wakes up to check the other side is still alive (seconds).
STATUS_CHECK_INTERVAL = 5.0


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    id: int
    num_workers: int
    seed: int
    dataset: object


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker: its id, the number of workers, its seed and its copy of the dataset.
    In the main process: None."""
    return _worker_info


class ExceptionWrapper:
    """An exception caught in a worker, carried to the main process as its type plus formatted traceback."""

    def __init__(self, where: str):
        exc_type, exc, tb = sys.exc_info()
        self.exc_type = exc_type
        self.message = f"Caught {exc_type.__name__} {where}.\nOriginal " + "".join(
            traceback.format_exception(exc_type, exc, tb))

    def reraise(self):
        if self.exc_type is KeyError:
            raise KeyError(_MultilineMessage(self.message))  # KeyError repr()s its message: keep the newlines
        try:
            exc = self.exc_type(self.message)
        except Exception:  # an exception type whose constructor needs other arguments
            raise RuntimeError(self.message) from None
        raise exc


class _MultilineMessage(str):
    def __repr__(self):
        return str(self)


@dataclasses.dataclass(frozen=True)
class _IterationEnd:
    """An IterableDataset's stream in worker `worker_id` is exhausted."""
    worker_id: int


class _ResumeIteration:
    """Persistent workers: start the next epoch (iterable datasets restart their iterator)."""


class _MapFetcher:
    def __init__(self, dataset, auto_collation: bool, collate_fn):
        self.dataset, self.auto_collation, self.collate_fn = dataset, auto_collation, collate_fn

    def fetch(self, index):
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        getitems = getattr(self.dataset, "__getitems__", None)
        data = getitems(index) if callable(getitems) else [self.dataset[i] for i in index]
        return self.collate_fn(data)


class _IterableFetcher:
    """Draws len(index) samples per batch from the dataset's iterator; the last batch may be short
    (or is dropped with drop_last); StopIteration marks the end of the stream."""

    def __init__(self, dataset, auto_collation: bool, collate_fn, drop_last: bool):
        self.iterator = iter(dataset)
        self.auto_collation, self.collate_fn, self.drop_last = auto_collation, collate_fn, drop_last
        self.ended = False

    def fetch(self, index):
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate_fn(next(self.iterator))
        data = []
        for _ in index:
            try:
                data.append(next(self.iterator))
            except StopIteration:
                self.ended = True
                break
        if not data or (self.drop_last and len(data) < len(index)):
            raise StopIteration
        return self.collate_fn(data)


def make_fetcher(is_iterable: bool, dataset, auto_collation: bool, collate_fn, drop_last: bool):
    if is_iterable:
        return _IterableFetcher(dataset, auto_collation, collate_fn, drop_last)
    return _MapFetcher(dataset, auto_collation, collate_fn)


def seed_worker_rngs(seed: int) -> None:
    """Each worker's Python, numpy and ember RNGs get their own seed (base seed + worker id), so
    random augmentations differ across workers and are reproducible given the loader's generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    ember.manual_seed(seed)


def pickle_result(data, where: str) -> bytes:
    """The batch pickled here rather than in mp.Queue's feeder thread, which would print and drop an
    unpicklable batch and leave the main process waiting for it; such a batch becomes an error."""
    try:
        return bytes(ForkingPickler.dumps(data))
    except Exception:
        return bytes(ForkingPickler.dumps(ExceptionWrapper(where + " while pickling a batch to send it")))


def worker_loop(is_iterable, dataset, index_queue, result_queue, done_event, auto_collation, collate_fn, drop_last,
                base_seed, init_fn, worker_id, num_workers):
    global _worker_info
    ember.set_num_threads(1)  # one core per worker; also keeps OpenMP out of a forked child
    seed = base_seed + worker_id
    seed_worker_rngs(seed)
    _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
    where = f"in DataLoader worker process {worker_id}"
    init_error = None
    fetcher = None
    try:
        if init_fn is not None:
            init_fn(worker_id)
        fetcher = make_fetcher(is_iterable, dataset, auto_collation, collate_fn, drop_last)
    except Exception:
        init_error = ExceptionWrapper(where)
    stream_ended = False
    parent = os.getppid()  # the main process, or the fork server that started us; a change means it died
    try:
        while os.getppid() == parent:
            try:
                task = index_queue.get(timeout=STATUS_CHECK_INTERVAL)
            except queue.Empty:
                if done_event.is_set():
                    break  # the main process is gone or done with us
                continue
            if task is None:
                break
            if isinstance(task, _ResumeIteration):
                stream_ended = False
                if init_error is None:
                    try:
                        fetcher = make_fetcher(is_iterable, dataset, auto_collation, collate_fn, drop_last)
                    except Exception:
                        init_error = ExceptionWrapper(where)
                result_queue.put((task, None))
                continue
            if done_event.is_set() or stream_ended:
                continue  # the main process is shutting down or this stream is over: drain
            task_id, index = task
            if init_error is not None:
                data, init_error = init_error, None
            else:
                try:
                    data = fetcher.fetch(index)
                except StopIteration:
                    if not is_iterable:
                        data = ExceptionWrapper(where)
                    else:
                        data, stream_ended = _IterationEnd(worker_id), True
                except Exception:
                    data = ExceptionWrapper(where)
            result_queue.put((task_id, pickle_result(data, where)))
            del data
    except KeyboardInterrupt:
        pass
    if done_event.is_set():
        result_queue.cancel_join_thread()  # the main process may never read what is still buffered
        result_queue.close()
