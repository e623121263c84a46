"""ember.utils.data: datasets, samplers, collation and DataLoader (main process and worker
processes), with torch.utils.data as the reference for batching semantics."""
import collections
import os
import time
import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as tdata

import ember
import ember.utils.data as edata
from compat_helpers import one_thread_each  # noqa: F401  (autouse fixture)


def as_numpy_tree(x):
    """Nested containers of ember/torch tensors -> the same containers of (dtype name, numpy) pairs."""
    if isinstance(x, (ember.Tensor, torch.Tensor)):
        return (str(x.dtype).split(".")[-1], x.detach().numpy().tolist())
    if isinstance(x, dict):
        return {type(x).__name__: {k: as_numpy_tree(v) for k, v in x.items()}}
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return (type(x).__name__, tuple(as_numpy_tree(v) for v in x))
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [as_numpy_tree(v) for v in x])
    return x


Point = collections.namedtuple("Point", "x y")


class Samples(edata.Dataset):
    """Mixed-type samples; the same class serves both libraries through `lib`."""

    def __init__(self, lib, n=7):
        self.lib, self.n = lib, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        lib = self.lib
        return {"t": lib.arange(3) * i, "np": np.full((2,), i, dtype=np.float32), "f": i / 2, "i": i, "b": i % 2 == 0,
                "s": f"s{i}", "tup": (lib.tensor([float(i)]), i), "pt": Point(i, lib.tensor(i)),
                "od": collections.OrderedDict(a=i)}


@pytest.mark.parametrize("batch_size,drop_last", [(3, False), (3, True), (7, False), (10, False), (1, True)])
def test_default_collate_and_batching_match_torch(batch_size, drop_last):
    ours = list(edata.DataLoader(Samples(ember), batch_size=batch_size, drop_last=drop_last))
    ref = list(tdata.DataLoader(Samples(torch), batch_size=batch_size, drop_last=drop_last))
    assert len(ours) == len(ref) == len(edata.DataLoader(Samples(ember), batch_size=batch_size, drop_last=drop_last))
    for a, b in zip(ours, ref):
        assert as_numpy_tree(a) == as_numpy_tree(b)


def test_batch_size_none_converts_without_collating():
    ours = list(edata.DataLoader(Samples(ember, 3), batch_size=None))
    ref = list(tdata.DataLoader(Samples(torch, 3), batch_size=None))
    assert [as_numpy_tree(a) for a in ours] == [as_numpy_tree(b) for b in ref]


def test_collate_errors_are_clear():
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        edata.default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate: batch must contain tensors.*found object"):
        edata.default_collate([object(), object()])
    with pytest.raises(RuntimeError):
        edata.default_collate([ember.zeros(2), ember.zeros(3)])


def test_tensor_dataset_subset_concat_random_split():
    x, y = ember.arange(10).reshape(5, 2), ember.arange(5)
    ds = edata.TensorDataset(x, y)
    assert len(ds) == 5 and ds[2][0].tolist() == [4, 5] and ds[2][1].item() == 2
    with pytest.raises(ValueError, match=r"\[TensorDataset\] Size mismatch"):
        edata.TensorDataset(x, ember.arange(4))
    sub = edata.Subset(ds, [4, 0])
    assert len(sub) == 2 and sub[0][1].item() == 4
    cat = ds + edata.Subset(ds, [1])
    assert isinstance(cat, edata.ConcatDataset) and len(cat) == 6 and cat[5][1].item() == 1 and cat[-1][1].item() == 1
    with pytest.raises(IndexError):
        cat[6]
    parts = edata.random_split(range(10), [3, 7], generator=ember.Generator().manual_seed(1))
    again = edata.random_split(range(10), [3, 7], generator=ember.Generator().manual_seed(1))
    assert [list(p) for p in parts] == [list(p) for p in again]
    assert sorted(list(parts[0]) + list(parts[1])) == list(range(10)) and len(parts[0]) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fr = edata.random_split(range(11), [0.3, 0.3, 0.4])
    assert [len(p) for p in fr] == [len(p) for p in tdata.random_split(range(11), [0.3, 0.3, 0.4])]
    with pytest.raises(ValueError, match="sum of input lengths"):
        edata.random_split(range(10), [3, 3])


def test_shuffle_with_generator_is_a_reproducible_permutation():
    ds = edata.TensorDataset(ember.arange(20))

    def order(seed):
        return [int(v) for (b,) in edata.DataLoader(ds, batch_size=4, shuffle=True,
                                                    generator=ember.Generator().manual_seed(seed)) for v in b.tolist()]
    assert order(3) == order(3) and order(3) != order(4)
    assert sorted(order(3)) == list(range(20)) and order(3) != list(range(20))
    ember.manual_seed(5)
    first = [int(b[0].sum().item()) for b in edata.DataLoader(ds, batch_size=4, shuffle=True)]
    ember.manual_seed(5)
    assert first == [int(b[0].sum().item()) for b in edata.DataLoader(ds, batch_size=4, shuffle=True)]


def test_samplers():
    ds = list(range(10))
    g = ember.Generator().manual_seed(0)
    big = edata.RandomSampler(ds, replacement=True, num_samples=int(1e10), generator=g)
    it = iter(big)
    draws = [next(it) for _ in range(100)]
    assert len(big) == int(1e10) and all(0 <= d < 10 for d in draws) and len(set(draws)) > 5
    wr = list(edata.RandomSampler(ds, num_samples=25, generator=g))
    assert len(wr) == 25 and sorted(wr[:10]) == ds and sorted(wr[10:20]) == ds
    assert sorted(edata.SubsetRandomSampler([3, 5, 7], generator=g)) == [3, 5, 7]
    w = list(edata.WeightedRandomSampler([0.0, 0.0, 1.0, 0.0], 6, generator=g))
    assert w == [2] * 6
    assert list(edata.BatchSampler(edata.SequentialSampler(ds), 4, False)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(edata.BatchSampler(ds, 4, True)) == 2
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        edata.BatchSampler(ds, 0, False)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        edata.RandomSampler(ds, num_samples=0)


@pytest.mark.parametrize("n,replicas,drop_last", [(10, 3, False), (10, 3, True), (2, 4, False), (12, 4, True)])
def test_distributed_sampler_partitions_like_torch(n, replicas, drop_last):
    ds = list(range(n))
    for rank in range(replicas):
        ours = edata.DistributedSampler(ds, num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        ref = tdata.DistributedSampler(ds, num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(ref) and len(ours) == len(ref)
    shuffled = [list(edata.DistributedSampler(ds, replicas, r, seed=3, drop_last=drop_last)) for r in range(replicas)]
    flat = [i for part in shuffled for i in part]
    assert set(flat) <= set(ds) and len(flat) == len(ours) * replicas
    if n >= 10:
        s = edata.DistributedSampler(ds, replicas, 0, seed=3, drop_last=drop_last)
        s.set_epoch(1)
        assert list(s) != shuffled[0], "set_epoch must reshuffle"


def test_distributed_sampler_needs_a_process_group_or_explicit_ranks():
    with pytest.raises(RuntimeError, match="no initialized ember.distributed process group"):
        edata.DistributedSampler(list(range(4)))
    with pytest.raises(ValueError, match="Invalid rank 3"):
        edata.DistributedSampler(list(range(4)), num_replicas=2, rank=3)


def test_loader_argument_checks_match_torch():
    ds = list(range(4))
    for kwargs in [dict(batch_sampler=[[0]], batch_size=2), dict(sampler=[0], shuffle=True), dict(num_workers=-1),
                   dict(batch_size=None, drop_last=True), dict(prefetch_factor=2), dict(persistent_workers=True)]:
        with pytest.raises(ValueError):
            tdata.DataLoader(ds, **kwargs)
        with pytest.raises(ValueError):
            edata.DataLoader(ds, **kwargs)
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        edata.DataLoader(ds, sampler=[0], shuffle=True)
    loader = edata.DataLoader(ds)
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        loader.batch_size = 3


class Stream(edata.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = edata.get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        for i in range(start, self.n, step):
            yield ember.tensor([i])

    def __len__(self):
        return self.n


def test_iterable_dataset_main_process_and_len():
    loader = edata.DataLoader(Stream(7), batch_size=3)
    assert [b.reshape(-1).tolist() for b in loader] == [[0, 1, 2], [3, 4, 5], [6]] and len(loader) == 3
    assert len(edata.DataLoader(Stream(7), batch_size=3, drop_last=True)) == 2
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        edata.DataLoader(Stream(3), shuffle=True)


# ---- worker processes ------------------------------------------------------------------------------
class Squares(edata.Dataset):
    def __init__(self, n, fail_at=None, die_at=None, slow=0.0):
        self.n, self.fail_at, self.die_at, self.slow = n, fail_at, die_at, slow

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise KeyError(f"no sample {i}")
        if i == self.die_at:
            os._exit(3)
        if self.slow:
            time.sleep(self.slow)
        info = edata.get_worker_info()
        return {"x": ember.tensor([float(i * i)]), "i": i, "worker": -1 if info is None else info.id,
                "np": np.random.randint(0, 2**31)}


def test_workers_deliver_the_same_batches_in_order():
    main = [as_numpy_tree({k: b[k] for k in ("x", "i")}) for b in edata.DataLoader(Squares(23), batch_size=4)]
    loader = edata.DataLoader(Squares(23), batch_size=4, num_workers=2)
    batches = list(loader)
    assert [as_numpy_tree({k: b[k] for k in ("x", "i")}) for b in batches] == main
    assert {int(w) for b in batches for w in b["worker"].tolist()} == {0, 1}
    # numpy is seeded per worker (base seed + id), so the workers' random streams differ
    assert len({int(v) for b in batches for v in b["np"].tolist()}) > 20


_INIT_MARK = {}


class Marked(edata.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return _INIT_MARK.get("mark", -1)


def _mark_worker(worker_id):
    _INIT_MARK["mark"] = 100 + worker_id


def test_worker_init_fn_runs_in_each_worker_and_workers_exit():
    loader = edata.DataLoader(Marked(), batch_size=2, num_workers=2, worker_init_fn=_mark_worker,
                              generator=ember.Generator().manual_seed(7))
    it = iter(loader)
    first = next(it)
    workers = list(it._workers)
    assert all(w.is_alive() for w in workers)
    marks = [first.tolist()] + [b.tolist() for b in it]
    assert marks == [[100, 100], [101, 101], [100, 100], [101, 101]] and "mark" not in _INIT_MARK
    for w in workers:
        w.join(timeout=10)
        assert not w.is_alive(), "workers must exit at the end of the epoch"


@pytest.mark.parametrize("context", ["spawn", "forkserver"])
def test_workers_started_without_fork(context):
    """A fresh interpreter per worker: the dataset (ember tensors) travels pickled."""
    ds = edata.TensorDataset(ember.arange(10.0), ember.arange(10))
    loader = edata.DataLoader(ds, batch_size=4, num_workers=1, multiprocessing_context=context)
    assert [b[1].tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_worker_exception_is_reraised_with_its_traceback():
    loader = edata.DataLoader(Squares(8, fail_at=5), batch_size=2, num_workers=2)
    with pytest.raises(KeyError) as err:
        list(loader)
    text = str(err.value)
    assert "Caught KeyError in DataLoader worker process" in text and "no sample 5" in text
    assert "__getitem__" in text  # the worker's traceback is included


def test_dead_worker_raises_instead_of_hanging(monkeypatch):
    from ember.utils.data import _worker
    monkeypatch.setattr(_worker, "STATUS_CHECK_INTERVAL", 0.2)
    loader = edata.DataLoader(Squares(8, die_at=3), batch_size=2, num_workers=2)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"worker\(s\) with pid\(s\) \d+ \(exit code 3\) exited unexpectedly"):
        list(loader)
    assert time.monotonic() - start < 30


def test_timeout_raises(monkeypatch):
    from ember.utils.data import _worker
    monkeypatch.setattr(_worker, "STATUS_CHECK_INTERVAL", 0.2)  # the busy worker is terminated after this
    loader = edata.DataLoader(Squares(4, slow=3.0), batch_size=2, num_workers=1, timeout=0.5)
    with pytest.raises(RuntimeError, match="timed out after 0.5 seconds"):
        next(iter(loader))


def test_persistent_workers_survive_epochs_and_abandoned_epochs():
    loader = edata.DataLoader(Squares(10), batch_size=3, num_workers=2, persistent_workers=True)
    it1 = iter(loader)
    next(it1)  # abandon the first epoch after one batch
    workers = list(it1._workers)
    epoch2 = [b["i"].tolist() for b in loader]
    epoch3 = [b["i"].tolist() for b in loader]
    assert epoch2 == epoch3 == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert iter(loader)._workers == workers and all(w.is_alive() for w in workers)
    iter(loader)._shutdown_workers()


def test_iterable_dataset_with_workers_is_split_by_worker_info():
    got = sorted(int(v) for b in edata.DataLoader(Stream(11), batch_size=2, num_workers=3) for v in b.reshape(-1).tolist())
    assert got == list(range(11))


def test_out_of_order_delivery_and_custom_collate_and_batch_sampler():
    loader = edata.DataLoader(Squares(9), batch_sampler=[[0, 1], [8], [2, 3, 4]], num_workers=2, in_order=False,
                              collate_fn=lambda b: sorted(s["i"] for s in b))
    assert sorted(loader, key=lambda b: b[0]) == [[0, 1], [2, 3, 4], [8]]


def test_pin_memory_without_cuda_warns_and_is_a_no_op():
    if ember.cuda.is_available():
        pytest.skip("pins for real on a CUDA machine (tests/python/cuda)")
    from ember.utils.data import dataloader
    dataloader._warned_pin = False
    with pytest.warns(UserWarning, match="no accelerator is found"):
        batches = list(edata.DataLoader(Squares(4), batch_size=2, pin_memory=True))
    assert [b["i"].tolist() for b in batches] == [[0, 1], [2, 3]]


def test_tensors_pickle_and_deepcopy():
    import copy
    import pickle
    t = ember.arange(6, dtype=ember.float32).reshape(2, 3)[:, 1:]
    back = pickle.loads(pickle.dumps(t))
    assert back.tolist() == t.tolist() and back.dtype == t.dtype
    p = ember.nn.Parameter(ember.ones(2))
    p.grad = ember.full((2,), 3.0)
    q = copy.deepcopy(p)
    assert isinstance(q, ember.nn.Parameter) and q.requires_grad and q.grad.tolist() == [3.0, 3.0]
    q.detach().add_(1.0)
    assert p.tolist() == [1.0, 1.0]
    b = pickle.loads(pickle.dumps(ember.tensor([1.0, 2.0], dtype=ember.bfloat16)))
    assert b.dtype == ember.bfloat16 and b.tolist() == [1.0, 2.0]
