"""parameters_to_vector / vector_to_parameters (torch.nn.utils.convert_parameters)."""
from __future__ import annotations

import ember
from ember import Tensor

from .._grad import no_grad

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _check_same_device(op: str, tensors: list) -> None:
    devices = {str(t.device) for t in tensors}
    if len(devices) > 1:
        raise TypeError(f"[{op}] Found two parameters on different devices ({sorted(devices)}), this is currently not "
                        f"supported.")


def parameters_to_vector(parameters) -> Tensor:
    """The parameters flattened and concatenated into one vector (differentiable, like torch's)."""
    params = list(parameters)
    _check_same_device("parameters_to_vector", params)
    return ember.cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copies consecutive slices of vec into the parameters (their values; outside autograd)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"[vector_to_parameters] expected ember.Tensor, but got: {type(vec).__name__}")
    params = list(parameters)
    _check_same_device("vector_to_parameters", params)
    total = sum(p.numel() for p in params)
    if vec.numel() < total:
        raise RuntimeError(f"[vector_to_parameters] vector of {vec.numel()} elements is too short for parameters with "
                           f"{total} elements")
    pointer = 0
    with no_grad():
        for p in params:
            n = p.numel()
            p.copy_(vec[pointer:pointer + n].reshape(tuple(p.shape)))
            pointer += n
