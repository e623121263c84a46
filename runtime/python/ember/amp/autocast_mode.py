"""ember.autocast / ember.amp.autocast: mixed precision by op, with torch's op lists.

Note [Where autocast hooks in]
An op's compute dtype is chosen by casting its floating inputs before the op runs, as torch's
Autocast dispatch key does. ember does that in Python, around the callables users reach
(`ember.mm`, `Tensor.__matmul__`, `F.linear`, `F.cross_entropy`, ...), not in the C++ dispatcher:
the dispatcher runs after a frontend has already promoted dtypes and allocated outputs, so a cast
there would be too late, and C++ code (backward rules, composite frontends) calls ops that must
keep the dtypes they were given. Wrapping the Python entry points also gives torch's "outermost op
decides" rule for free: an op running under autocast marks the thread, and the ops it calls
(F.linear's addmm, SDPA's bmm and softmax) pass through untouched, like ops below the Autocast key.
The wrappers are installed the first time an autocast region is entered, so programs that never
use autocast pay nothing; afterwards a call outside any region costs one attribute check.
Composite modules whose whole computation is one torch op (the recurrent layers) ask
`lower_precision_dtype` directly and run their pieces under `op_scope`.
"""
from __future__ import annotations

import dataclasses
import functools
import threading
import warnings

import ember
from ember import Tensor

__all__ = ["autocast", "is_autocast_available", "is_autocast_enabled", "get_autocast_dtype", "set_autocast_enabled",
           "set_autocast_dtype", "clear_autocast_cache", "custom_fwd", "custom_bwd"]

_DEVICE_TYPES = ("cpu", "cuda")


@dataclasses.dataclass(frozen=True)
class AutocastOp:
    """One row of the op lists: what the op does under CPU and CUDA autocast, and where it lives.

    Policies (torch's names): lower_precision_fp (cast to the autocast dtype), fp32 (cast float16/
    bfloat16 inputs to float32), fp32_set_opt_dtype (the same, unless the call passes dtype=),
    promote (cast every input to the widest floating dtype among them), banned (raise), None (untouched);
    and log_softmax_fp32 for CUDA cross-entropy: torch's composite takes log_softmax in the input's own
    dtype, then its nll_loss runs in float32, so float16/bfloat16 log-probabilities are rounded first.
    """
    name: str
    cpu: str | None
    cuda: str | None
    targets: tuple[str, ...]  # "ember.x", "F.x" (ember.nn.functional) or "Tensor.x"


def _row(name, cpu, cuda, *targets):
    return AutocastOp(name, cpu, cuda, targets or (f"ember.{name}", f"Tensor.{name}"))


L, F32, OPT, P = "lower_precision_fp", "fp32", "fp32_set_opt_dtype", "promote"
LSM = "log_softmax_fp32"
# torch 2.x aten/src/ATen/autocast_mode.cpp, restricted to ops ember has (a missing target is skipped,
# so ops that arrive later, e.g. convolutions, are covered once they exist).
OPS: tuple[AutocastOp, ...] = (
    # Matrix products and attention: lower precision on both devices.
    _row("mm", L, L), _row("bmm", L, L), _row("addmm", L, L), _row("baddbmm", L, L), _row("addbmm", L, L),
    _row("matmul", L, L, "ember.matmul", "Tensor.matmul", "Tensor.__matmul__", "Tensor.__rmatmul__"),
    _row("einsum", L, L, "ember.einsum"),
    _row("linear", L, L, "F.linear", "ember.linear"),
    _row("scaled_dot_product_attention", L, L, "F.scaled_dot_product_attention"),
    _row("conv1d", L, L, "F.conv1d", "ember.conv1d"), _row("conv2d", L, L, "F.conv2d", "ember.conv2d"),
    _row("conv3d", L, L, "F.conv3d", "ember.conv3d"),
    _row("conv_transpose1d", L, L, "F.conv_transpose1d"), _row("conv_transpose2d", L, L, "F.conv_transpose2d"),
    _row("conv_transpose3d", L, L, "F.conv_transpose3d"), _row("prelu", L, L, "F.prelu", "ember.prelu"),
    # CUDA only: the matrix-vector products (CPU autocast leaves them in float32).
    _row("mv", None, L), _row("addmv", None, L), _row("addr", None, L),
    _row("chain_matmul", None, L, "ember.chain_matmul"),
    # float32 on CUDA: pointwise ops whose range or accuracy float16 cannot hold, norms.
    *(_row(n, None, F32) for n in ("acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2", "log1p",
                                  "reciprocal", "rsqrt", "sinh", "tan", "logsumexp", "renorm", "dist")),
    _row("pow", None, F32, "ember.pow", "Tensor.pow", "Tensor.__pow__", "Tensor.__rpow__"),
    _row("softplus", None, F32, "F.softplus", "ember.softplus"),
    _row("layer_norm", None, F32, "F.layer_norm", "ember.layer_norm", "ember.native_layer_norm"),
    _row("group_norm", None, F32, "F.group_norm", "ember.group_norm"),
    _row("cosine_similarity", None, F32, "F.cosine_similarity", "ember.cosine_similarity"),
    _row("cdist", F32, F32, "ember.cdist"),
    # Losses: float32 on both devices.
    _row("cross_entropy", F32, LSM, "F.cross_entropy"),
    *(_row(n, F32, F32, f"F.{n}") for n in ("nll_loss", "kl_div", "l1_loss", "smooth_l1_loss",
                                           "huber_loss", "mse_loss", "binary_cross_entropy_with_logits",
                                           "poisson_nll_loss", "cosine_embedding_loss", "hinge_embedding_loss",
                                           "margin_ranking_loss", "soft_margin_loss", "triplet_margin_loss",
                                           "multi_margin_loss", "multilabel_margin_loss")),
    _row("binary_cross_entropy", F32, "banned", "F.binary_cross_entropy"),
    # Reductions: float32 unless the call names a dtype (CUDA); prod is float32 on CPU too.
    _row("prod", F32, OPT),
    *(_row(n, None, OPT) for n in ("sum", "cumsum", "cumprod")),
    _row("softmax", None, OPT, "ember.softmax", "Tensor.softmax", "F.softmax"),
    _row("log_softmax", None, OPT, "ember.log_softmax", "Tensor.log_softmax", "F.log_softmax"),
    _row("norm", None, F32, "ember.norm", "Tensor.norm"),
    # Ops taking several inputs that must agree: the widest dtype wins.
    _row("cat", P, P, "ember.cat", "ember.concat", "ember.concatenate"), _row("stack", P, P, "ember.stack"),
    _row("index_copy", P, P),
    *(_row(n, None, P) for n in ("addcdiv", "addcmul", "atan2", "cross", "dot", "index_put", "scatter_add",
                                 "tensordot")),
)
del L, F32, OPT, P, LSM

# Recurrent layers (nn/modules/rnn.py asks lower_precision_dtype): on CUDA torch runs them all in
# the autocast dtype (cuDNN RNN, fused cells); on CPU only nn.LSTM (oneDNN's LSTM).
RNN_LOWER = {"cpu": {"LSTM"}, "cuda": {"RNN_TANH", "RNN_RELU", "LSTM", "GRU", "cell"}}

_SUPPORTED = {"cpu": (ember.bfloat16, ember.float16), "cuda": (ember.float16, ember.bfloat16)}
_DEFAULT_DTYPE = {"cpu": ember.bfloat16, "cuda": ember.float16}


class _ThreadState(threading.local):
    def __init__(self):
        self.enabled = {d: False for d in _DEVICE_TYPES}
        self.dtype = dict(_DEFAULT_DTYPE)
        self.depth = 0          # nesting of autocast regions (the cast cache lives until the outermost exits)
        self.inside_op = False  # an autocast op is running: the ops it calls are not cast again
        self.cache_enabled = True
        self.cache: dict = {}


_state = _ThreadState()
_installed = False
_install_lock = threading.Lock()


# ---- queries and settings (torch.is_autocast_enabled & co) -----------------------------------------

def _device_type(device_type) -> str:
    d = str(device_type).split(":")[0]
    if d not in _DEVICE_TYPES:
        raise RuntimeError(f"[autocast] unsupported device_type {device_type!r}; ember's autocast covers 'cpu' and "
                           f"'cuda'")
    return d


def is_autocast_available(device_type: str) -> bool:
    return str(device_type).split(":")[0] in _DEVICE_TYPES


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Whether autocast is on for device_type (torch's no-argument form asks about CUDA)."""
    return _state.enabled[_device_type(device_type or "cuda")]


def set_autocast_enabled(device_type, enabled=None) -> None:
    if enabled is None:  # torch's old form set_autocast_enabled(enabled) is about CUDA
        device_type, enabled = "cuda", device_type
    _state.enabled[_device_type(device_type)] = bool(enabled)
    if enabled:
        _install()


def get_autocast_dtype(device_type: str):
    return _state.dtype[_device_type(device_type)]


def set_autocast_dtype(device_type: str, dtype) -> None:
    _state.dtype[_device_type(device_type)] = dtype


def clear_autocast_cache() -> None:
    _state.cache.clear()


def lower_precision_dtype(kind: str, device_type: str):
    """The dtype a recurrent layer of `kind` (RNN_LOWER's names) runs in under autocast, or None."""
    st = _state
    if st.inside_op or not st.enabled.get(device_type, False) or kind not in RNN_LOWER[device_type]:
        return None
    return st.dtype[device_type]


class op_scope:
    """Marks one op running, so the ops it calls are not cast (modules that are a single torch op,
    like the recurrent layers, run their pieces in the dtype they chose)."""

    def __enter__(self):
        self._prev = _state.inside_op
        _state.inside_op = True
        return self

    def __exit__(self, *exc):
        _state.inside_op = self._prev
        return False


# ---- casting ------------------------------------------------------------------------------------

def _eligible(t, device_type: str) -> bool:
    return (isinstance(t, Tensor) and t.dtype.is_floating_point and t.dtype != ember.float64
            and t.device.type == device_type)


def cast(t: Tensor, dtype) -> Tensor:
    """t in dtype; parameters (leaves that require grad) are cast once per autocast region (torch's cache)."""
    if t.dtype == dtype:
        return t
    st = _state
    cacheable = st.cache_enabled and st.depth > 0 and t.is_leaf and t.requires_grad
    if cacheable:
        hit = st.cache.get((id(t), dtype))
        if hit is not None and hit[0] is t:
            return hit[1]
    out = t.to(dtype)
    if cacheable:
        st.cache[(id(t), dtype)] = (t, out)  # holding t keeps its id from being reused
    return out


def _map_tensors(value, fn):
    if isinstance(value, Tensor):
        return fn(value)
    if isinstance(value, (list, tuple)) and any(isinstance(v, Tensor) for v in value):
        return type(value)(fn(v) if isinstance(v, Tensor) else v for v in value)
    return value


def _first_tensor(args, kwargs):
    for v in (*args, *kwargs.values()):
        if isinstance(v, Tensor):
            return v
        if isinstance(v, (list, tuple)):
            for w in v:
                if isinstance(w, Tensor):
                    return w
    return None


def _cast_args(op: AutocastOp, policy: str, device_type: str, args, kwargs):
    st = _state
    if policy == "banned":
        raise RuntimeError(f"[autocast] {op.name} is unsafe to autocast (torch's message: use "
                           "binary_cross_entropy_with_logits, which is safe under autocast, or disable autocast "
                           "around this op)")
    if policy == "fp32_set_opt_dtype" and kwargs.get("dtype") is not None:
        return args, kwargs
    if policy == "log_softmax_fp32" and args and _eligible(args[0], device_type) \
            and args[0].dtype in (ember.float16, ember.bfloat16):
        x = args[0]
        st.inside_op = True  # the log_softmax below keeps x's dtype, as in torch's composite
        try:
            logp = ember.log_softmax(x, 1 if x.dim() >= 2 else 0)
        finally:
            st.inside_op = False
        args = (logp,) + tuple(args[1:])
    if policy == "lower_precision_fp":
        target = st.dtype[device_type]
    elif policy == "promote":
        dtypes = set()
        _map_tensors_all(args, kwargs, lambda t: dtypes.add(t.dtype) if _eligible(t, device_type) else None)
        target = ember.float32 if ember.float32 in dtypes else None
        if target is None:
            return args, kwargs
    else:
        target = ember.float32

    def fn(t):
        return cast(t, target) if _eligible(t, device_type) else t
    return tuple(_map_tensors(a, fn) for a in args), {k: _map_tensors(v, fn) for k, v in kwargs.items()}


def _map_tensors_all(args, kwargs, fn) -> None:
    for v in (*args, *kwargs.values()):
        _map_tensors(v, lambda t: (fn(t), t)[1])


def _wrap(fn, op: AutocastOp):
    @functools.wraps(fn)
    def autocast_op(*args, **kwargs):
        st = _state
        if st.inside_op or not (st.enabled["cpu"] or st.enabled["cuda"]):
            return fn(*args, **kwargs)
        first = _first_tensor(args, kwargs)
        device_type = first.device.type if first is not None else None
        policy = getattr(op, device_type) if device_type in _DEVICE_TYPES and st.enabled[device_type] else None
        if policy is None:
            return fn(*args, **kwargs)
        args, kwargs = _cast_args(op, policy, device_type, args, kwargs)
        st.inside_op = True
        try:
            return fn(*args, **kwargs)
        finally:
            st.inside_op = False
    autocast_op.__ember_autocast_wrapped__ = fn
    return autocast_op


def _install() -> None:
    """Wraps every target of OPS that exists (once per process)."""
    global _installed
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        import ember.nn.functional as F
        owners = {"ember": ember, "F": F, "Tensor": Tensor}
        for op in OPS:
            for target in op.targets:
                owner_name, attr = target.split(".", 1)
                owner = owners[owner_name]
                fn = getattr(owner, attr, None)
                if fn is None or hasattr(fn, "__ember_autocast_wrapped__"):
                    continue
                setattr(owner, attr, _wrap(fn, op))
        _installed = True


# ---- the context manager -------------------------------------------------------------------------

class autocast:
    """Runs the ops of torch's autocast lists (OPS) in `dtype` (lower_precision_fp ops), in float32
    (fp32 ops), or in the widest input dtype (promote ops), for tensors on `device_type`. Usable as a
    context manager or a decorator; nests, and `enabled=False` turns it off inside an enabled region."""

    def __init__(self, device_type: str, dtype=None, enabled: bool = True, cache_enabled: bool | None = None):
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        self.device = _device_type(device_type)
        self.fast_dtype = _DEFAULT_DTYPE[self.device] if dtype is None else dtype
        self._cache_enabled = True if cache_enabled is None else bool(cache_enabled)
        self._enabled = bool(enabled)
        if self._enabled and self.device == "cuda" and not ember.cuda.is_available():
            warnings.warn("User provided device_type of 'cuda', but CUDA is not available. Disabling", stacklevel=2)
            self._enabled = False
        if self._enabled and self.fast_dtype not in _SUPPORTED[self.device]:
            name = "CPU" if self.device == "cpu" else "CUDA"
            warnings.warn(f"In {name} autocast, but the target dtype {self.fast_dtype} is not supported. Disabling "
                          f"autocast.\n{name} Autocast only supports dtypes of "
                          f"{', '.join(str(d) for d in _SUPPORTED[self.device])} currently.", stacklevel=2)
            self._enabled = False
        if self._enabled and self.device == "cuda" and self.fast_dtype == ember.bfloat16 \
                and not ember.cuda.is_bf16_supported():
            raise RuntimeError("Current CUDA Device does not support bfloat16. Please switch dtype to float16.")

    def __enter__(self):
        st = _state
        self._prev = (st.enabled[self.device], st.dtype[self.device], st.cache_enabled)
        st.enabled[self.device] = self._enabled
        st.dtype[self.device] = self.fast_dtype
        st.cache_enabled = self._cache_enabled
        st.depth += 1
        if self._enabled:
            _install()
        return self

    def __exit__(self, *exc):
        st = _state
        st.depth -= 1
        if st.depth == 0:
            st.cache.clear()
        st.enabled[self.device], st.dtype[self.device], st.cache_enabled = self._prev
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def decorated(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self._enabled, self._cache_enabled):
                return func(*args, **kwargs)
        return decorated


# ---- custom autograd Functions under autocast ---------------------------------------------------

def custom_fwd(fwd=None, *, device_type: str, cast_inputs=None):
    """Decorator for a custom Function's forward: with cast_inputs, its floating inputs on device_type
    are cast to that dtype and the forward runs with autocast off; the backward (custom_bwd) runs under
    the autocast state the forward saw."""
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)
    device = _device_type(device_type)

    @functools.wraps(fwd)
    def decorate_fwd(ctx, *args, **kwargs):
        ctx._fwd_used_autocast = is_autocast_enabled(device)
        ctx._dtype = get_autocast_dtype(device)
        if cast_inputs is not None and ctx._fwd_used_autocast:
            def fn(t):
                return t.to(cast_inputs) if _eligible(t, device) else t
            args = tuple(_map_tensors(a, fn) for a in args)
            kwargs = {k: _map_tensors(v, fn) for k, v in kwargs.items()}
            with autocast(device, enabled=False):
                return fwd(ctx, *args, **kwargs)
        return fwd(ctx, *args, **kwargs)
    return decorate_fwd


def custom_bwd(bwd=None, *, device_type: str):
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)
    device = _device_type(device_type)

    @functools.wraps(bwd)
    def decorate_bwd(ctx, *args, **kwargs):
        with autocast(device, ctx._dtype, ctx._fwd_used_autocast):
            return bwd(ctx, *args, **kwargs)
    return decorate_bwd
