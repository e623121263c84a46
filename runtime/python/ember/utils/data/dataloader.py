"""DataLoader: batches from a dataset, in the main process or in worker processes.

Semantics follow torch.utils.data.DataLoader (argument checks, len(), auto-collation, batch_size=None,
IterableDataset handling, worker seeding, persistent workers, in-order delivery, timeouts). The
random order for a given seed is ember's own (Note [Sampler randomness] in sampler.py).

Note [DataLoader workers]: num_workers > 0 starts that many processes (multiprocessing, the default
start method unless `multiprocessing_context` says otherwise). Each worker gets index lists on its
own queue and returns pickled batches on a shared queue (Note [DataLoader worker protocol] in
_worker.py); the main process keeps `prefetch_factor` tasks per worker in flight and hands batches
out in sampler order. An exception in a worker is re-raised in the main process with the worker's
traceback; a worker that dies (killed, segfault) raises RuntimeError naming its pid instead of
hanging; workers are shut down at the end of the epoch (or when the iterator is dropped), unless
persistent_workers keeps them for the next epoch.

pin_memory=True pins each batch's tensors (page-locked host memory, for fast async copies) when ember
has a usable CUDA device; without one it is a no-op and warns once, as torch does.
"""
from __future__ import annotations

import copy
import itertools
import multiprocessing
import pickle
import queue
import time
import warnings

import ember

from . import _worker
from ._collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader", "default_collate", "default_convert", "get_worker_info"]

get_worker_info = _worker.get_worker_info


class _InfiniteConstantSampler(Sampler):
    """For IterableDataset: the batch sampler only decides how many samples a batch asks for."""

    def __iter__(self):
        while True:
            yield None


class DataLoader:
    _frozen_after_init = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None, multiprocessing_context=None,
                 generator=None, *, prefetch_factor: int | None = None, persistent_workers: bool = False,
                 pin_memory_device: str = "", in_order: bool = True):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"[DataLoader] num_workers option should be non-negative; use num_workers=0 to disable "
                             f"multiprocessing (got {num_workers!r})")
        if timeout < 0:
            raise ValueError(f"[DataLoader] timeout option should be non-negative, got {timeout}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("[DataLoader] prefetch_factor option could only be specified in multiprocessing. "
                             "Let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor <= 0:
            raise ValueError(f"[DataLoader] prefetch_factor must be positive, got {prefetch_factor}")
        if persistent_workers and num_workers == 0:
            raise ValueError("[DataLoader] persistent_workers option needs num_workers > 0")
        if pin_memory_device:
            raise NotImplementedError("[DataLoader] pin_memory_device is deprecated in torch and not supported by "
                                      "ember; pinned memory always targets the CUDA device")

        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order

        self._is_iterable = isinstance(dataset, IterableDataset)
        if self._is_iterable:
            if shuffle not in (False, None):
                raise ValueError(f"[DataLoader] with IterableDataset: expected unspecified shuffle option, but got "
                                 f"shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"[DataLoader] with IterableDataset: expected unspecified sampler option, but got "
                                 f"sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("[DataLoader] with IterableDataset: expected unspecified batch_sampler option, but "
                                 f"got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("[DataLoader] sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("[DataLoader] batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("[DataLoader] batch_size=None option disables auto-batching and is mutually exclusive "
                             "with drop_last")
        if sampler is None:
            if self._is_iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        self._iterator = None
        self._initialized = True

    def __setattr__(self, name, value):
        if self.__dict__.get("_initialized") and name in self._frozen_after_init:
            raise ValueError(f"{name} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self):
        if self._is_iterable:
            n = len(self.dataset)  # TypeError if the stream has no length, like torch
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self.persistent_workers:
            if self._iterator is None:
                self._iterator = _MultiProcessIter(self)
            else:
                self._iterator._reset()
            return self._iterator
        return _MultiProcessIter(self)

    def _draw_base_seed(self) -> int:
        """Per-epoch base seed for the workers, from the loader's generator (or the global RNG)."""
        return int(ember.randint(0, 2**62, (1,), generator=self.generator).item())


# ---- pinning ------------------------------------------------------------------------------------

_warned_pin = False


def _pin(data):
    if isinstance(data, ember.Tensor):
        return data.pin_memory()
    if isinstance(data, dict):
        out = copy.copy(data)  # keeps OrderedDict/defaultdict/... types
        out.update({k: _pin(v) for k, v in data.items()})
        return out
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(_pin(d) for d in data))
    if isinstance(data, (list, tuple)):
        return type(data)(_pin(d) for d in data)
    return data


def _pin_fn(loader):
    """The function applied to each batch for pin_memory=True (None when pinning does not apply)."""
    global _warned_pin
    if not loader.pin_memory:
        return None
    if not ember.cuda.is_available():
        if not _warned_pin:
            warnings.warn("'pin_memory' argument is set as true but no accelerator is found, then device pinned "
                          "memory won't be used.", stacklevel=5)
            _warned_pin = True
        return None
    return _pin


# ---- iterators ----------------------------------------------------------------------------------

class _BaseIter:
    def __init__(self, loader: DataLoader):
        self._loader = loader
        self._pin = _pin_fn(loader)

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._loader)

    def _finish(self, data):
        return self._pin(data) if self._pin is not None else data


class _SingleProcessIter(_BaseIter):
    def __init__(self, loader):
        super().__init__(loader)
        self._sampler_iter = iter(loader._index_sampler)
        self._fetcher = _worker.make_fetcher(loader._is_iterable, loader.dataset, loader._auto_collation,
                                             loader.collate_fn, loader.drop_last)

    def __next__(self):
        index = next(self._sampler_iter)
        return self._finish(self._fetcher.fetch(index))


class _MultiProcessIter(_BaseIter):
    def __init__(self, loader):
        super().__init__(loader)
        ctx = loader.multiprocessing_context
        if ctx is None:
            ctx = multiprocessing.get_context()
        elif isinstance(ctx, str):
            ctx = multiprocessing.get_context(ctx)
        self._num_workers = loader.num_workers
        self._prefetch = loader.prefetch_factor * loader.num_workers
        self._timeout = loader.timeout
        self._persistent = loader.persistent_workers
        self._in_order = loader.in_order
        self._result_queue = ctx.Queue()
        self._done_event = ctx.Event()
        self._index_queues, self._workers = [], []
        self._shutdown = False  # set before any worker starts: __del__ cleans up after a failed start too
        base_seed = loader._draw_base_seed()
        for wid in range(self._num_workers):
            index_queue = ctx.Queue()
            index_queue.cancel_join_thread()  # index lists are tiny; never block our exit on them
            w = ctx.Process(target=_worker.worker_loop, name=f"ember-dataloader-worker-{wid}",
                            args=(loader._is_iterable, loader.dataset, index_queue, self._result_queue,
                                  self._done_event, loader._auto_collation, loader.collate_fn, loader.drop_last,
                                  base_seed, loader.worker_init_fn, wid, self._num_workers))
            w.daemon = True
            w.start()
            self._index_queues.append(index_queue)
            self._workers.append(w)
        self._start_epoch(first=True)

    # -- epoch bookkeeping --
    def _start_epoch(self, first: bool):
        self._sampler_iter = iter(self._loader._index_sampler)
        self._send_idx = 0      # next task id
        self._pending = {}      # task id -> worker id: sent, not yet handed out
        self._stashed = {}      # task id -> batch that arrived ahead of its turn (in-order mode)
        self._worker_active = [True] * self._num_workers
        self._next_worker = itertools.cycle(range(self._num_workers))
        if not first:
            # Persistent workers: each worker acknowledges the resume after answering any task of the
            # previous epoch, so everything received before the last acknowledgement is stale.
            for q in self._index_queues:
                q.put(_worker._ResumeIteration())
            acked = 0
            while acked < self._num_workers:
                task_id, _ = self._get_result()
                acked += isinstance(task_id, _worker._ResumeIteration)
        for _ in range(self._prefetch):
            self._send_task()

    def _reset(self):
        self._start_epoch(first=False)

    def _send_task(self):
        if not any(self._worker_active):
            return
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        wid = next(self._next_worker)
        while not self._worker_active[wid]:
            wid = next(self._next_worker)
        self._index_queues[wid].put((self._send_idx, index))
        self._pending[self._send_idx] = wid
        self._send_idx += 1

    # -- receiving --
    def _get_result(self):
        """One (task id, payload) from the workers; raises if a worker died or `timeout` passed."""
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        while True:
            wait = _worker.STATUS_CHECK_INTERVAL
            if deadline is not None:
                wait = min(wait, max(deadline - time.monotonic(), 0.0))
            try:
                task_id, payload = self._result_queue.get(timeout=wait)
                return task_id, (pickle.loads(payload) if isinstance(payload, bytes) else payload)
            except queue.Empty:
                dead = [w for w in self._workers if not w.is_alive()]
                if dead:
                    desc = ", ".join(f"{w.pid} (exit code {w.exitcode})" for w in dead)
                    self._shutdown_workers()
                    raise RuntimeError(f"[DataLoader] worker(s) with pid(s) {desc} exited unexpectedly") from None
                if deadline is not None and time.monotonic() >= deadline:
                    self._shutdown_workers()
                    raise RuntimeError(f"[DataLoader] timed out after {self._timeout} seconds waiting for a batch") \
                        from None

    def __next__(self):
        while True:
            if self._shutdown:
                raise StopIteration
            # A worker whose stream ended (IterableDataset) never answers the tasks it still holds.
            for tid in [t for t, w in self._pending.items() if not self._worker_active[w] and t not in self._stashed]:
                del self._pending[tid]
            if not self._pending:
                if not self._persistent:
                    self._shutdown_workers()
                raise StopIteration
            if self._in_order:
                first = min(self._pending)
                if first in self._stashed:
                    return self._deliver(first, self._stashed.pop(first))
            task_id, data = self._get_result()
            if isinstance(task_id, _worker._ResumeIteration) or task_id not in self._pending:
                continue
            if isinstance(data, _worker._IterationEnd):
                self._worker_active[data.worker_id] = False
                del self._pending[task_id]
                continue
            if self._in_order and task_id != min(self._pending):
                self._stashed[task_id] = data
                continue
            return self._deliver(task_id, data)

    def _deliver(self, task_id, data):
        del self._pending[task_id]
        self._send_task()
        if isinstance(data, _worker.ExceptionWrapper):
            data.reraise()
        return self._finish(data)

    # -- shutdown --
    def _shutdown_workers(self, graceful: bool = True):
        """Stops the workers: asks them to exit (None on their queues) and waits, terminating any
        that do not stop within STATUS_CHECK_INTERVAL; graceful=False terminates at once."""
        if self._shutdown:
            return
        self._shutdown = True
        self._done_event.set()
        if graceful:
            for q, w in zip(self._index_queues, self._workers):
                if w.is_alive():
                    try:
                        q.put(None)
                    except (OSError, ValueError):
                        pass
        for w in self._workers:
            if graceful:
                w.join(timeout=_worker.STATUS_CHECK_INTERVAL)
            if w.is_alive():
                w.terminate()
                w.join()
        for q in self._index_queues:
            q.close()
        self._result_queue.cancel_join_thread()
        self._result_queue.close()

    def __del__(self):
        # Note [DataLoader iterator __del__]: when the garbage collector frees this iterator as part
        # of a reference cycle, multiprocessing may already have finalized its queues (their feeder
        # threads gone), so a None sent now would never arrive: terminate the workers instead. They
        # hold nothing but this iterator's dataset copy and queues.
        try:
            self._shutdown_workers(graceful=False)
        except Exception:
            pass
