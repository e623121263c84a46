"""Seeds: deterministic by default, fresh and printed under EMBER_TEST_FUZZ=1.

Every test draws its inputs from `case_seed(<what identifies the case>)`, a hash of the run seed and
the case. The run seed is 0 by default, so a run is reproducible to the bit. `EMBER_TEST_FUZZ=1`
draws a fresh run seed (printed at the start of the session and in every failure message);
`EMBER_TEST_SEED=<n>` replays run seed n. Tests that need a generator but no case key call
`rng_for_test()`, which keys on the running pytest test.
"""

from __future__ import annotations

import functools
import os
import random
import sys
import zlib

import numpy as np

FUZZ_ENV, SEED_ENV = "EMBER_TEST_FUZZ", "EMBER_TEST_SEED"


def fuzzing() -> bool:
    return os.environ.get(FUZZ_ENV, "") not in ("", "0") or bool(os.environ.get(SEED_ENV))


@functools.cache
def run_seed() -> int:
    """0 unless fuzzing: then EMBER_TEST_SEED, or a fresh draw that is printed once."""
    if os.environ.get(SEED_ENV):
        return int(os.environ[SEED_ENV])
    if not fuzzing():
        return 0
    seed = random.SystemRandom().randrange(1, 2**31)
    print(f"numcheck: {FUZZ_ENV} run seed {seed} (replay: {SEED_ENV}={seed})", file=sys.stderr)
    return seed


def case_seed(*key) -> int:
    """A 31-bit seed for the case named by `key` (any values with a stable repr)."""
    return zlib.crc32(repr((run_seed(), *key)).encode()) & 0x7FFFFFFF


def replay_hint() -> str:
    """What to put in a failure message so the failing draw can be replayed."""
    return f" [run seed {run_seed()}: replay with {SEED_ENV}={run_seed()}]" if fuzzing() else ""


_draws: dict[str, int] = {}


def rng_for_test(*key) -> np.random.Generator:
    """A generator for the running pytest test: deterministic by default, a new stream per call."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    _draws[test] = count = _draws.get(test, -1) + 1
    return np.random.default_rng(case_seed("rng_for_test", test, count, *key))
