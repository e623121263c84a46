"""Finite-difference gradient checks (torch.autograd.gradcheck semantics, slow mode).

The numerical Jacobian perturbs each input element in place by +-eps (through a numpy view of the
input's memory) and takes central differences; the analytical Jacobian comes from one
autograd.grad call per output element with a one-hot grad_output. They must agree within
|analytical - numerical| <= atol + rtol * |numerical|.
"""
import warnings

import numpy as np

from .. import _C
from .._C import Tensor

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """Raised by gradcheck/gradgradcheck when analytical and numerical gradients disagree."""


def _as_tuple(x):
    if isinstance(x, tuple):
        return x
    if isinstance(x, list):
        return tuple(x)
    return (x,)


def _flat_outputs(outputs):
    return [o for o in outputs if isinstance(o, Tensor) and o.dtype.is_floating_point]


def _host(t):
    return np.asarray(t.detach().numpy(force=True), dtype=np.float64).reshape(-1)


def _numerical_jacobians(func, inputs, diff_idx, n_outputs, eps):
    """jac[i][o]: (numel(input i), numel(output o)) central differences."""
    jacs = []
    for i in diff_idx:
        x = inputs[i]
        arr = x.detach().numpy()
        per_output = None
        for col, idx in enumerate(np.ndindex(*arr.shape)):
            orig = arr[idx].copy()
            arr[idx] = orig + eps
            plus = [_host(o) for o in _flat_outputs(_as_tuple(func(*inputs)))]
            arr[idx] = orig - eps
            minus = [_host(o) for o in _flat_outputs(_as_tuple(func(*inputs)))]
            arr[idx] = orig
            if per_output is None:
                per_output = [np.zeros((x.numel(), p.size)) for p in plus]
            for o in range(len(plus)):
                per_output[o][col] = (plus[o] - minus[o]) / (2 * eps)
        if per_output is None:  # 0-element input
            per_output = [np.zeros((0, 0)) for _ in range(n_outputs)]
        jacs.append(per_output)
    return jacs


def _analytical_jacobians(outputs, inputs, diff_idx):
    from . import grad as autograd_grad

    jacs = [[None] * len(outputs) for _ in diff_idx]
    diff_inputs = [inputs[i] for i in diff_idx]
    for o, out in enumerate(outputs):
        n_out = out.numel()
        for k, i in enumerate(diff_idx):
            jacs[k][o] = np.zeros((inputs[i].numel(), n_out))
        if not out.requires_grad:
            continue
        for e in range(n_out):
            onehot = np.zeros(n_out, dtype=np.float64)
            onehot[e] = 1.0
            g = _C.from_numpy(onehot.reshape(tuple(out.shape))).to(out.dtype)
            grads = autograd_grad([out], diff_inputs, [g], retain_graph=True, allow_unused=True)
            for k, gi in enumerate(grads):
                if gi is not None:
                    jacs[k][o][:, e] = _host(gi)
    return jacs


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, **unused_options):
    """True when func's analytical gradients match finite differences for every differentiable
    input/output pair; otherwise raises GradcheckError (or returns False with raise_exception=False)."""
    inputs = _as_tuple(inputs)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff_idx:
        raise ValueError("[gradcheck] expects at least one input tensor to require gradient, but none of the "
                         "inputs have requires_grad=True")
    for i in diff_idx:
        if inputs[i].dtype != _C.float64:
            warnings.warn(f"[gradcheck] input {i} requires gradient and is not a double precision floating point "
                          f"({inputs[i].dtype!r}); the check is likely to fail", stacklevel=2)
    outputs = _flat_outputs(_as_tuple(func(*inputs)))
    analytical = _analytical_jacobians(outputs, inputs, diff_idx)
    numerical = _numerical_jacobians(func, inputs, diff_idx, len(outputs), eps)
    for k, i in enumerate(diff_idx):
        for o in range(len(outputs)):
            a, n = analytical[k][o], numerical[k][o]
            if a.shape != n.shape:
                n = n.reshape(a.shape) if n.size == a.size else np.zeros_like(a)
            bad = np.abs(a - n) > atol + rtol * np.abs(n)
            if bad.any() or np.isnan(a).any() != np.isnan(n).any():
                err = np.abs(a - n)
                where = np.unravel_index(int(np.nanargmax(err)), err.shape) if err.size else (0, 0)
                msg = (f"[gradcheck] Jacobian mismatch for output {o} with respect to input {i}: max abs error "
                       f"{float(np.nanmax(err)):.6g} at (input element {where[0]}, output element {where[1]}): "
                       f"numerical {n[where]:.6g} vs analytical {a[where]:.6g} (atol={atol}, rtol={rtol})\n"
                       f"numerical:\n{n}\nanalytical:\n{a}")
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
                  seed=0, **unused_options):
    """gradcheck of the gradients of func (with create_graph): checks second derivatives."""
    from . import grad as autograd_grad

    inputs = _as_tuple(inputs)
    outputs = _flat_outputs(_as_tuple(func(*inputs)))
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        grad_outputs = tuple(_C.from_numpy(rng.standard_normal(tuple(o.shape))).to(o.dtype).requires_grad_()
                             for o in outputs)
    grad_outputs = _as_tuple(grad_outputs)
    n = len(inputs)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]

    def first_derivatives(*args):
        ins, gos = args[:n], args[n:]
        outs = _flat_outputs(_as_tuple(func(*ins)))
        grads = autograd_grad(outs, [ins[i] for i in diff_idx], list(gos), create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_derivatives, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
