"""ember.set_num_threads / get_num_threads and the thread environment variables take effect
(EMBER_NUM_THREADS, OMP_NUM_THREADS, EMBER_WAIT_POLICY, OMP_WAIT_POLICY, EMBER_SPIN_US); results do
not depend on which thread ran which chunk. No timing here: bench/cpu_under_load.py measures."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ember

PKG = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "python"))
THREAD_VARS = ("EMBER_NUM_THREADS", "OMP_NUM_THREADS", "EMBER_WAIT_POLICY", "OMP_WAIT_POLICY", "EMBER_SPIN_US")
# A large op so the region runs on the pool, then the settings as JSON.
REPORT = ("import ember, json; (ember.ones(1 << 20) * 2).sum().item(); "
          "print(json.dumps(ember._C._parallel_settings()))")


@pytest.fixture
def restore_threads():
    saved = ember.get_num_threads()
    yield
    ember.set_num_threads(saved)


def settings_with_env(**env_vars):
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(env_vars)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PKG, env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", REPORT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def test_set_num_threads_round_trips(restore_threads):
    for n in (1, 3, 2):
        ember.set_num_threads(n)
        assert ember.get_num_threads() == n
        assert ember._C._parallel_settings()["num_threads"] == n


@pytest.mark.parametrize("bad", [0, -1])
def test_set_num_threads_rejects_non_positive(restore_threads, bad):
    before = ember.get_num_threads()
    with pytest.raises(ValueError, match="set_num_threads"):
        ember.set_num_threads(bad)
    assert ember.get_num_threads() == before


def test_thread_count_sizes_the_pool(restore_threads):
    ember.set_num_threads(3)
    x = ember.ones(1 << 20)
    assert (x * 2).sum().item() == 2 * (1 << 20)
    assert ember._C._parallel_settings()["workers_started"] == 2
    ember.set_num_threads(1)
    assert ember._C._parallel_settings()["workers_started"] == 0  # idle workers stop at once
    assert (x * 2).sum().item() == 2 * (1 << 20)


def test_results_do_not_depend_on_scheduling(restore_threads):
    rng = np.random.default_rng(0)
    a = ember.from_numpy(rng.standard_normal((512, 384), dtype=np.float32))
    b = ember.from_numpy(rng.standard_normal((384, 256), dtype=np.float32))
    for threads in (1, 2, 3):
        ember.set_num_threads(threads)
        ref = None
        for _ in range(10):  # same thread count: bitwise the same, whichever thread took each chunk
            got = [ember.mm(a, b).numpy(), (a.exp() * 2).sum(dim=1).numpy(), ember.softmax(a, dim=1).numpy()]
            if ref is None:
                ref = got
            for r, g in zip(ref, got):
                np.testing.assert_array_equal(r, g)
        np.testing.assert_allclose(ref[0], a.numpy() @ b.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("env, want", [
    ({"EMBER_NUM_THREADS": "3"}, {"num_threads": 3, "workers_started": 2}),
    ({"OMP_NUM_THREADS": "2"}, {"num_threads": 2, "workers_started": 1}),
    ({"OMP_NUM_THREADS": "4,2"}, {"num_threads": 4}),
    ({"EMBER_NUM_THREADS": "1", "OMP_NUM_THREADS": "4"}, {"num_threads": 1, "workers_started": 0}),
    ({"EMBER_WAIT_POLICY": "passive"}, {"wait_policy": "passive"}),
    ({"EMBER_WAIT_POLICY": "ACTIVE"}, {"wait_policy": "active"}),
    ({"OMP_WAIT_POLICY": "passive"}, {"wait_policy": "passive"}),
    ({"OMP_WAIT_POLICY": "passive", "EMBER_WAIT_POLICY": "bounded"}, {"wait_policy": "bounded"}),
    ({"EMBER_SPIN_US": "7"}, {"wait_policy": "bounded", "spin_us": 7}),
])
def test_environment_variables_take_effect(env, want):
    got, _ = settings_with_env(**env)
    assert {k: got[k] for k in want} == want


@pytest.mark.parametrize("name, value", [("EMBER_NUM_THREADS", "many"), ("EMBER_NUM_THREADS", "0"),
                                         ("EMBER_WAIT_POLICY", "sometimes"), ("EMBER_SPIN_US", "-5")])
def test_bad_environment_values_are_reported_and_ignored(name, value):
    default, _ = settings_with_env()
    got, err = settings_with_env(**{name: value})
    assert f"ignoring {name}={value}" in err
    for key in ("num_threads", "wait_policy", "spin_us"):
        assert got[key] == default[key]


def test_parallel_info_describes_the_pool(restore_threads):
    ember.set_num_threads(2)
    info = ember.parallel_info()
    assert "2 threads" in info and "wait policy" in info
