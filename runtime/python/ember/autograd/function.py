"""Custom autograd functions: subclass ember.autograd.Function with static forward/backward.

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    y = Exp.apply(x)

apply() runs forward under no_grad, then records a C++ PyNode (bind_autograd.cpp) holding
backward and ctx as the grad_fn of the outputs. backward returns one gradient (or None) per
forward argument.
"""
from .. import _C
from .._C import Tensor
from .grad_mode import no_grad

__all__ = ["Function", "FunctionCtx"]


class FunctionCtx:
    """The `ctx` passed to forward and backward. Arbitrary attributes may be stored on it."""

    def __init__(self):
        self._saved = None          # list of (tensor, version) or None
        self._saved_freed = False
        self._non_differentiable = []
        self._materialize_grads = True
        self._fn_name = "Function"
        self.needs_input_grad = ()

    def save_for_backward(self, *tensors):
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"[save_for_backward] argument {i} must be a Tensor or None, "
                                f"got {type(t).__name__}")
        self._saved = [(t, None if t is None else t._version) for t in tensors]

    @property
    def saved_tensors(self):
        if self._saved_freed:
            raise RuntimeError(
                f"[{self._fn_name}Backward] Trying to backward through the graph a second time (or directly access "
                "saved tensors after they have already been freed). Saved intermediate values of the graph are "
                "freed when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
                "backward through the graph a second time or if you need to access saved tensors after calling "
                "backward.")
        if self._saved is None:
            return ()
        out = []
        for i, (t, version) in enumerate(self._saved):
            if t is not None and t._version != version:
                raise RuntimeError(
                    f"[{self._fn_name}Backward] one of the variables needed for gradient computation has been "
                    f"modified by an inplace operation: saved tensor {i} ({t.dtype!r}{list(t.shape)}) is at "
                    f"version {t._version}; expected version {version} instead.")
            out.append(t)
        return tuple(out)

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable.extend(tensors)

    def set_materialize_grads(self, value):
        self._materialize_grads = bool(value)

    def mark_dirty(self, *tensors):
        # In-place forwards are recorded like out-of-place ones; the version counter already moved.
        pass

    def _release_saved(self):
        self._saved = None
        self._saved_freed = True


class _FunctionMeta(type):
    def __init__(cls, name, bases, attrs):
        super().__init__(name, bases, attrs)


class Function(metaclass=_FunctionMeta):
    """Base class of custom differentiable functions (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError(f"[{type(self).__name__}] custom Functions are not instantiated; call "
                           f"{type(self).__name__}.apply(...) instead")

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement the backward function for custom autograd.Function.")

    @classmethod
    def apply(cls, *args, **kwargs):
        if kwargs:
            raise TypeError(f"[{cls.__name__}.apply] keyword arguments are not supported; pass them positionally")
        ctx = FunctionCtx()
        ctx._fn_name = cls.__name__
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx.needs_input_grad = needs
        with no_grad():
            result = cls.forward(ctx, *args)
        if not (_C.is_grad_enabled() and any(needs)):
            return result
        is_tuple = isinstance(result, tuple)
        items = list(result) if is_tuple else [result]
        positions = [i for i, o in enumerate(items) if isinstance(o, Tensor)]
        if not positions:
            return result
        outputs = _C._create_function_node(cls.backward, ctx, cls.__name__, list(args),
                                           [items[i] for i in positions], ctx._non_differentiable,
                                           ctx._materialize_grads)
        for i, o in zip(positions, outputs):
            items[i] = o
        # Note [Saved outputs]: an output saved on ctx would form a cycle output -> node -> ctx ->
        # output that Python's GC cannot see through C++; keep a history-free alias instead.
        # Outputs stashed as plain ctx attributes (ctx.out = out) would form the same cycle.
        originals = result if is_tuple else (result,)
        for k, v in list(vars(ctx).items()):
            if isinstance(v, Tensor) and any(v is o for o in originals):
                setattr(ctx, k, v.detach())
        if ctx._saved:
            produced = [o for o in items if isinstance(o, Tensor)] + [items[i] for i in positions]
            originals = result if is_tuple else (result,)
            for j, (t, version) in enumerate(ctx._saved):
                if t is not None and (any(t is o for o in originals) or any(t._is_same(o) for o in produced)):
                    ctx._saved[j] = (t.detach(), version)
        return tuple(items) if is_tuple else items[0]
