"""Helpers shared by the nn/optim tests: moving tensors and weights between torch and ember."""
import numpy as np
import torch

import ember

TOL = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-9, atol=1e-10)}


def E(t):
    """torch tensor -> ember tensor (a copy), keeping requires_grad."""
    e = ember.from_numpy(t.detach().cpu().numpy().copy())
    if t.requires_grad:
        e.requires_grad_(True)
    return e


def N(t):
    """ember or torch tensor -> numpy."""
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.detach().numpy()


def close(a, b, dtype="float32", **kw):
    tol = dict(TOL[dtype])
    tol.update(kw)
    np.testing.assert_allclose(N(a), N(b), **tol)


def copy_weights(torch_module, ember_module):
    """Loads torch_module's state into ember_module (same parameter names) and returns it."""
    ember_module.load_state_dict({k: E(v) for k, v in torch_module.state_dict().items()})
    return ember_module


def edtype(name):
    return getattr(ember, name)


def tdtype(name):
    return getattr(torch, name)
