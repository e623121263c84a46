"""no_grad and zero_grads for the nn/optim layers."""
from ..autograd.grad_mode import no_grad  # noqa: F401  (re-exported for nn and optim)


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
