"""no_grad for the nn/optim layers (ember.no_grad once the package exports it at top level)."""
import ember


def no_grad():
    ng = getattr(ember, "no_grad", None) or ember.autograd.no_grad
    return ng()
