"""Shared by the torch-compatibility tests (test_data, test_serialization_torch, test_torchcompat,
nn/test_losses, nn/test_transformer, nn/test_compat_args)."""
import pytest
import torch

import ember


@pytest.fixture(autouse=True, scope="module")
def one_thread_each():
    """These tests run tiny ops in both libraries, whose two OpenMP runtimes spin against each other
    on a shared 2-core machine (3-4x slower than single-threaded); both run one thread here."""
    saved = ember.get_num_threads(), torch.get_num_threads()
    ember.set_num_threads(1)
    torch.set_num_threads(1)
    yield
    ember.set_num_threads(saved[0])
    torch.set_num_threads(saved[1])
