"""no_grad and zero_grads for the nn/optim layers (ember.no_grad once the package exports it at top level)."""
import ember


def no_grad():
    ng = getattr(ember, "no_grad", None) or ember.autograd.no_grad
    return ng()


def zero_grads(params, set_to_none: bool = True) -> None:
    """Module.zero_grad and Optimizer.zero_grad: drop each .grad, or zero it in place (which keeps
    the tensor, as a captured CUDA graph needs)."""
    for p in params:
        if p.grad is None:
            continue
        if set_to_none:
            p.grad = None
        else:
            with no_grad():
                p.grad.zero_()
