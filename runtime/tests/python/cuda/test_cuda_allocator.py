"""The caching allocator: reuse, stream-ordered frees, stats invariants, OOM message, snapshots."""
import numpy as np
import pytest

import ember
from numcheck.seeds import rng_for_test

pytestmark = pytest.mark.skipif(not ember.cuda.is_available(), reason="needs a CUDA GPU")


def _empty(n_floats):
    return ember.empty((n_floats,), dtype=ember.float32, device="cuda")


def test_freed_block_is_reused_from_the_cache():
    ember.cuda.synchronize()
    x = _empty(1000)
    ptr = x.data_ptr()
    del x
    before = ember.cuda.memory_stats()
    y = _empty(1000)  # same rounded size, same stream: the cached block comes back
    after = ember.cuda.memory_stats()
    assert y.data_ptr() == ptr
    assert after["cache_hits"] == before["cache_hits"] + 1
    assert after["cache_misses"] == before["cache_misses"]


def test_stats_invariants_and_peaks():
    ember.cuda.reset_peak_memory_stats()
    base = ember.cuda.memory_allocated()
    xs = [_empty(1 << k) for k in range(8, 20)]
    s = ember.cuda.memory_stats()
    assert s["allocated_bytes.all.current"] == ember.cuda.memory_allocated()
    assert ember.cuda.memory_allocated() >= base + sum(4 * (1 << k) for k in range(8, 20))
    assert ember.cuda.memory_allocated() <= ember.cuda.memory_reserved()
    assert ember.cuda.max_memory_allocated() >= ember.cuda.memory_allocated()
    peak = ember.cuda.max_memory_allocated()
    del xs
    assert ember.cuda.memory_allocated() == base
    assert ember.cuda.max_memory_allocated() == peak
    ember.cuda.reset_peak_memory_stats()
    assert ember.cuda.max_memory_allocated() == base
    s = ember.cuda.memory_stats()
    assert s["num_allocs"] >= s["num_frees"]
    assert 0.0 <= s["fragmentation"] <= 1.0


def test_split_and_coalesce():
    ember.cuda.empty_cache()
    s0 = ember.cuda.memory_stats()
    a = _empty(1000)   # small pool: carved from a 2 MiB segment
    b = _empty(1000)
    s1 = ember.cuda.memory_stats()
    assert s1["num_splits"] >= s0["num_splits"] + 1
    assert b.data_ptr() != a.data_ptr()
    del a, b
    s2 = ember.cuda.memory_stats()
    assert s2["num_merges"] >= s1["num_merges"] + 1
    # Everything merged back: the cache can release whole segments.
    ember.cuda.empty_cache()
    assert ember.cuda.memory_reserved() <= s0["reserved_bytes.all.current"] + (2 << 20)


def test_snapshot_matches_stats():
    keep = [_empty(1 << 12), _empty(1 << 22)]
    snap = ember.cuda.memory_snapshot()
    allocated = sum(b["size"] for seg in snap for b in seg["blocks"] if b["state"] == "active_allocated")
    reserved = sum(seg["total_size"] for seg in snap)
    assert allocated == ember.cuda.memory_allocated()
    assert reserved == ember.cuda.memory_reserved()
    assert {seg["segment_type"] for seg in snap} <= {"small", "large"}
    del keep


def test_record_stream_defers_reuse_until_the_stream_is_done():
    s = ember.cuda.Stream()
    x = _empty(1 << 20)
    ptr = x.data_ptr()
    with ember.cuda.stream(s):
        # keep the side stream busy so the event is still pending when x is freed
        big = ember.ones((4096, 4096), device="cuda")
        for _ in range(4):
            big = ember.mm(big, big) * 1e-4
    x.record_stream(s)
    del x
    y = _empty(1 << 20)
    if not s.query():
        # the block is fenced by an event on s: the allocator must not hand it out yet
        assert y.data_ptr() != ptr
        assert ember.cuda.memory_stats()["pending_event_frees"] >= 1
    s.synchronize()
    del y
    z = _empty(1 << 20)  # the event completed: the block is reusable (processed on this malloc)
    assert ember.cuda.memory_stats()["pending_event_frees"] == 0
    del z, big


def test_oom_frees_cache_then_raises_with_stats():
    ember.cuda.empty_cache()
    _, total = ember.cuda.mem_get_info()
    ember.cuda.set_per_process_memory_fraction(0.05)
    try:
        with pytest.raises(RuntimeError, match=r"out of memory.*Tried to allocate.*allocated=.*reserved="):
            ember.empty((int(total * 0.2) // 4,), dtype=ember.float32, device="cuda")
        assert ember.cuda.memory_stats()["num_ooms"] >= 1
        # a fitting allocation still works after the failure
        x = _empty(1 << 20)
        x.fill_(1.0)
        assert float(x.sum().item()) == float(1 << 20)
    finally:
        ember.cuda.set_per_process_memory_fraction(1.0)


def test_empty_cache_returns_memory():
    x = _empty(50 << 20)
    del x
    r = ember.cuda.memory_reserved()
    ember.cuda.empty_cache()
    assert ember.cuda.memory_reserved() < r


def test_values_survive_reuse():
    rng = rng_for_test()
    for _ in range(20):
        n = int(rng.integers(1, 1 << 18))
        a = rng.standard_normal(n).astype(np.float32)
        x = ember.from_numpy(a).cuda()
        assert np.array_equal(x.cpu().numpy(), a)
