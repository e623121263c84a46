"""no_grad for the nn/optim layers: ember.no_grad when the autograd API provides it."""
import contextlib

import ember


@contextlib.contextmanager
def _fallback_no_grad():
    prev = ember.is_grad_enabled()
    ember._C._set_grad_enabled(False)
    try:
        yield
    finally:
        ember._C._set_grad_enabled(prev)


def no_grad():
    ng = getattr(ember, "no_grad", None)
    return ng() if ng is not None else _fallback_no_grad()
