"""TCPStore (in-process server and clients) and the single-process parts of ember.distributed."""
from __future__ import annotations

import threading
import time

import pytest

import ember
import ember.distributed as dist
from ember.distributed.store import StoreFailure, StoreTimeout, TCPStore


@pytest.fixture
def stores():
    master = TCPStore("127.0.0.1", 0, 2, is_master=True, timeout=5, rank=0)
    client = TCPStore("127.0.0.1", master.port, 2, timeout=5, rank=1)
    yield master, client
    client.close()
    master.close()
    master.server.close()


def test_set_get_add_check_delete(stores):
    master, client = stores
    master.set("k", b"v")
    assert client.get("k") == b"v"
    assert client.add("n", 3) == 3 and master.add("n", -1) == 2
    assert client.check(["k", "n"]) and not client.check(["k", "absent"])
    assert master.compare_set("c", "", "x") == b"x"        # absent + empty expected: set
    assert master.compare_set("c", "nope", "y") == b"x"    # mismatch: current value back
    assert client.compare_set("c", "x", "z") == b"z"
    assert master.num_keys() == 3
    assert client.delete_key("k") and not client.delete_key("k")


def test_blocking_get_waits_for_the_key(stores):
    master, client = stores
    threading.Timer(0.2, lambda: master.set("late", b"1")).start()
    t0 = time.monotonic()
    assert client.get("late") == b"1" and time.monotonic() - t0 >= 0.15


def test_get_times_out_with_the_key_in_the_message(stores):
    _, client = stores
    t0 = time.monotonic()
    with pytest.raises(StoreTimeout, match="missing"):
        client.get("missing", timeout=0.3)
    assert 0.3 <= time.monotonic() - t0 < 3


def test_a_dropped_rank_fails_waiters_fast(stores):
    master, client = stores
    threading.Timer(0.2, client._sock.close).start()  # rank 1 "crashes": no goodbye
    t0 = time.monotonic()
    with pytest.raises(StoreFailure, match="rank 1"):
        master.wait(["never"], timeout=10)
    assert time.monotonic() - t0 < 3
    assert 1 in master.failures()


def test_reported_failure_message_reaches_others(stores):
    master, client = stores
    client.report_failure(1, "raised ValueError: boom")
    with pytest.raises(StoreFailure, match="ValueError: boom"):
        master.get("never", timeout=10)


def test_clean_goodbye_is_not_a_failure(stores):
    master, client = stores
    client.close()
    time.sleep(0.1)
    assert master.failures() == {}


def test_unreachable_store_names_the_address():
    with pytest.raises(StoreTimeout, match="127.0.0.1:9"):
        TCPStore("127.0.0.1", 9, timeout=0.3)


def test_port_in_use_is_a_clear_error(stores):
    master, _ = stores
    with pytest.raises(RuntimeError, match=f"{master.port}.*MASTER_PORT"):
        TCPStore("127.0.0.1", master.port, is_master=True, timeout=1)


def test_api_before_init():
    assert dist.is_available() and not dist.is_initialized()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match="not initialized"):
        dist.all_reduce(ember.zeros(2))
    with pytest.raises(ValueError, match="Gloo"):
        dist.init_process_group("gloo", rank=0, world_size=1)
    with pytest.raises(ValueError, match="unknown backend"):
        dist.init_process_group("carrier-pigeon", rank=0, world_size=1)
    with pytest.raises(ValueError, match="init_method"):
        dist.init_process_group("mpi", init_method="file:///tmp/x", rank=0, world_size=1)


def test_nccl_is_reported_unavailable_without_a_gpu():
    if ember.cuda.is_available():
        pytest.skip("a GPU is present: bench/distributed_gpu_check.py covers NCCL")
    assert not dist.is_nccl_available()
    assert ember._C._cuda._nccl.load_error()
