"""ember.autograd: reverse-mode automatic differentiation (engine in C++: csrc/autograd/)."""
from .. import _C
from .._C import Tensor
from .function import Function, FunctionCtx
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                        set_grad_enabled)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["backward", "grad", "Function", "FunctionCtx", "gradcheck", "gradgradcheck", "GradcheckError",
           "no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "is_inference_mode_enabled"]


def _tensor_seq(x, what):
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        for i, t in enumerate(x):
            if not isinstance(t, Tensor):
                raise TypeError(f"[{what}] element {i} must be a Tensor, got {type(t).__name__}")
        return list(x)
    raise TypeError(f"[{what}] expected a Tensor or a sequence of Tensors, got {type(x).__name__}")


def _grad_seq(grads, n, what):
    if grads is None:
        return [None] * n
    grads = [grads] if isinstance(grads, Tensor) else list(grads)
    if len(grads) != n:
        raise RuntimeError(f"[{what}] got {n} tensors and {len(grads)} gradients")
    for i, g in enumerate(grads):
        if g is not None and not isinstance(g, Tensor):
            raise TypeError(f"[{what}] gradient {i} must be a Tensor or None, got {type(g).__name__}")
    return grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulates d(tensors)/d(leaves) into the leaves' .grad (torch.autograd.backward)."""
    if inputs is not None:
        raise NotImplementedError("[backward] the inputs= argument is not supported; use ember.autograd.grad")
    tensors = _tensor_seq(tensors, "backward")
    grads = _grad_seq(grad_tensors, len(tensors), "backward")
    if retain_graph is None:
        retain_graph = create_graph
    _C._autograd_backward(tensors, grads, bool(retain_graph), bool(create_graph))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """Returns d(outputs)/d(inputs) as a tuple, without touching .grad (torch.autograd.grad)."""
    if is_grads_batched:
        raise NotImplementedError("[grad] is_grads_batched=True is not supported")
    single_input = isinstance(inputs, Tensor)
    outputs = _tensor_seq(outputs, "grad")
    inputs = _tensor_seq(inputs, "grad")
    grads = _grad_seq(grad_outputs, len(outputs), "grad")
    if retain_graph is None:
        retain_graph = create_graph
    if allow_unused is None:
        allow_unused = materialize_grads
    result = _C._autograd_grad(outputs, grads, inputs, bool(retain_graph), bool(create_graph), bool(allow_unused))
    if materialize_grads:
        result = [r if r is not None else _C.zeros_like(x) for r, x in zip(result, inputs)]
    del single_input
    return tuple(result)
