"""Grad-mode switches: no_grad, enable_grad, set_grad_enabled, inference_mode.

Each works as a context manager and as a decorator (`@ember.no_grad()` and bare `@ember.no_grad`),
and restores the previous mode on exit, also when the body raises.
"""
import functools
import inspect

from .. import _C

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "is_inference_mode_enabled"]

is_grad_enabled = _C.is_grad_enabled
is_inference_mode_enabled = _C.is_inference_mode_enabled


class _DecoratorContextManager:
    """Base: subclasses define _enter_state() -> saved state and _exit_state(saved)."""

    def __new__(cls, *args, **kwargs):
        # Bare decorator use: `@no_grad` passes the function as the only argument.
        if cls in (no_grad, enable_grad, inference_mode) and len(args) == 1 and callable(args[0]) and not kwargs \
                and not isinstance(args[0], bool):
            return cls()(args[0])
        return super().__new__(cls)

    def __call__(self, fn):
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen_wrapper(*args, **kwargs):
                gen = fn(*args, **kwargs)
                with self.clone():
                    response = gen.send(None)
                while True:
                    try:
                        request = yield response
                    except GeneratorExit:
                        with self.clone():
                            gen.close()
                        raise
                    except BaseException as e:
                        with self.clone():
                            response = gen.throw(e)
                    else:
                        with self.clone():
                            try:
                                response = gen.send(request)
                            except StopIteration as stop:
                                return stop.value
            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.clone():
                return fn(*args, **kwargs)
        return wrapper

    def clone(self):
        return type(self)()

    def __enter__(self):
        self._saved = self._enter_state()
        return None

    def __exit__(self, exc_type, exc, tb):
        self._exit_state(self._saved)
        return False


class no_grad(_DecoratorContextManager):
    """Disables gradient recording: results of ops do not require grad."""

    def _enter_state(self):
        prev = _C.is_grad_enabled()
        _C._set_grad_enabled(False)
        return prev

    def _exit_state(self, prev):
        _C._set_grad_enabled(prev)


class enable_grad(_DecoratorContextManager):
    """Enables gradient recording inside a no_grad region."""

    def _enter_state(self):
        prev = _C.is_grad_enabled()
        _C._set_grad_enabled(True)
        return prev

    def _exit_state(self, prev):
        _C._set_grad_enabled(prev)


class set_grad_enabled(_DecoratorContextManager):
    """Sets grad mode to `mode`; takes effect immediately (usable as a plain call) and, used as a
    context manager, restores the previous mode on exit."""

    def __init__(self, mode):
        if not isinstance(mode, bool):
            raise TypeError(f"[set_grad_enabled] mode must be a bool, got {type(mode).__name__}")
        self.prev = _C.is_grad_enabled()
        self.mode = mode
        _C._set_grad_enabled(mode)

    def __call__(self, fn):
        _C._set_grad_enabled(self.prev)  # decorating must not change the mode at definition time
        return super().__call__(fn)

    def clone(self):
        prev = _C.is_grad_enabled()
        c = set_grad_enabled(self.mode)
        _C._set_grad_enabled(prev)
        c.prev = prev
        return c

    def _enter_state(self):
        _C._set_grad_enabled(self.mode)
        return self.prev

    def _exit_state(self, prev):
        _C._set_grad_enabled(prev)


class inference_mode(_DecoratorContextManager):
    """Like no_grad, and also marks the region as inference-only (inference_mode(False) is a no-op
    switch back to normal mode)."""

    def __init__(self, mode=True):
        if not isinstance(mode, bool):
            raise TypeError(f"[inference_mode] mode must be a bool, got {type(mode).__name__}")
        self.mode = mode

    def clone(self):
        return inference_mode(self.mode)

    def _enter_state(self):
        prev = (_C.is_grad_enabled(), _C.is_inference_mode_enabled())
        if self.mode:
            _C._set_grad_enabled(False)
            _C._set_inference_mode(True)
        else:
            _C._set_inference_mode(False)
        return prev

    def _exit_state(self, prev):
        _C._set_grad_enabled(prev[0])
        _C._set_inference_mode(prev[1])
