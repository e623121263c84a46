"""What the suite is made of: the ops it may ablate (with a plain statement of their semantics and
their PyTorch reference) and the bugs it injects (with the user's report).

The generator (`harness/suite/build.py`) finds every piece of an ablated op in the runtime itself
(its spec entries, the files they name, functor, Python wrappers, test rows); this table only says
which ops, in words a user would use, and how numerics checks them. An op whose removal would
leave references elsewhere in the runtime is skipped with the reason (`harness suite build`
prints it), so the suite follows the runtime as it changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SHAPES = [[17], [4, 9], [2, 3, 5]]


@dataclass(frozen=True)
class Numerics:
    """One acceptance.numerics entry (see harness/config.py NUMERICS_SCHEMA)."""

    ember: str
    torch: str
    shapes: list = field(default_factory=lambda: [list(s) for s in SHAPES])
    num_inputs: int = 1
    input_range: tuple[float, float] = (-4.0, 4.0)
    backward: bool = True
    dtypes: tuple[str, ...] = ("float32", "float64")


@dataclass(frozen=True)
class AblationOp:
    """An op the suite removes; `name` is its spec `func` name or, for Python-only pieces, the
    function defined in `module`."""

    name: str
    category: str  # elementwise | reduction | indexing | layout | loss-norm | nn-python
    semantics: str  # what the user asks for, in words; no hint where the code goes
    numerics: Numerics
    module: str | None = None  # Python-only: runtime/python/ember/... file defining it
    tests: tuple[str, ...] = ()  # test files beyond the one its spec entry names


def _unary(name: str, torch_name: str | None = None, lo: float = -4.0, hi: float = 4.0) -> Numerics:
    return Numerics(f"ember.{name}", f"torch.{torch_name or name}", input_range=(lo, hi))


ABLATIONS: list[AblationOp] = [
    # ---- elementwise --------------------------------------------------------------------------
    AblationOp(
        "exp2",
        "elementwise",
        "`ember.exp2(x)` (and `Tensor.exp2`, in-place `exp2_`): 2 raised "
        "to the power x, elementwise; integer inputs give a float result.",
        _unary("exp2"),
    ),
    AblationOp(
        "expm1",
        "elementwise",
        "`ember.expm1(x)` (and `Tensor.expm1`, `expm1_`): exp(x) - 1, accurate for small x.",
        _unary("expm1"),
    ),
    AblationOp(
        "log2",
        "elementwise",
        "`ember.log2(x)` (and `Tensor.log2`, `log2_`): the base-2 logarithm, elementwise.",
        _unary("log2", lo=0.1, hi=8.0),
    ),
    AblationOp(
        "log1p",
        "elementwise",
        "`ember.log1p(x)` (and `Tensor.log1p`, `log1p_`): log(1 + x), accurate for small x.",
        _unary("log1p", lo=-0.9, hi=6.0),
    ),
    AblationOp(
        "tan",
        "elementwise",
        "`ember.tan(x)` (and `Tensor.tan`, `tan_`): the tangent, elementwise.",
        _unary("tan", lo=-1.2, hi=1.2),
    ),
    AblationOp(
        "leaky_relu",
        "elementwise",
        "`ember.leaky_relu(x, negative_slope=0.01)` and "
        "`ember.nn.functional.leaky_relu(x, negative_slope=0.01, inplace=False)`: x where x > 0, "
        "negative_slope * x elsewhere.",
        Numerics(
            "lambda x: ember.nn.functional.leaky_relu(x, 0.2)",
            "lambda x: torch.nn.functional.leaky_relu(x, 0.2)",
        ),
    ),
    AblationOp(
        "nan_to_num",
        "elementwise",
        "`ember.nan_to_num(x, nan=0.0, posinf=None, neginf=None)` "
        "(and the method): replaces NaN by `nan`, +inf by `posinf` and -inf by `neginf` (default: "
        "the dtype's largest and lowest finite values).",
        Numerics(
            "lambda x: ember.nan_to_num(ember.log(x), nan=1.0, neginf=-5.0)",
            "lambda x: torch.nan_to_num(torch.log(x), nan=1.0, neginf=-5.0)",
            input_range=(-1.0, 2.0),
            backward=False,
        ),
    ),
    AblationOp(
        "bitwise_not",
        "elementwise",
        "`ember.bitwise_not(x)` (and `~x`, `Tensor.bitwise_not_`) "
        "for integer and bool tensors: the bitwise complement.",
        Numerics(
            "lambda x: ember.bitwise_not((x * 10).to(ember.int64)).to(ember.float32)",
            "lambda x: torch.bitwise_not((x * 10).to(torch.int64)).to(torch.float32)",
            backward=False,
        ),
    ),
    AblationOp(
        "square", "elementwise", "`ember.square(x)` (and the method): x * x.", _unary("square")
    ),
    AblationOp(
        "reciprocal",
        "elementwise",
        "`ember.reciprocal(x)` (and the method): 1 / x, integer inputs promoted to float.",
        _unary("reciprocal", lo=0.3, hi=4.0),
    ),
    AblationOp(
        "floor",
        "elementwise",
        "`ember.floor(x)` (and `Tensor.floor`, `floor_`): the largest "
        "integer not above x, elementwise; integer tensors are returned unchanged; zero gradient.",
        _unary("floor"),
    ),
    AblationOp(
        "ceil",
        "elementwise",
        "`ember.ceil(x)` (and `Tensor.ceil`, `ceil_`): the smallest "
        "integer not below x, elementwise; integer tensors are returned unchanged; zero gradient.",
        _unary("ceil"),
    ),
    AblationOp(
        "sin",
        "elementwise",
        "`ember.sin(x)` (and `Tensor.sin`, `sin_`): the sine, "
        "elementwise; integer inputs give a float result.",
        _unary("sin"),
    ),
    AblationOp(
        "logical_xor",
        "elementwise",
        "`ember.logical_xor(a, b)` (and the method): a bool "
        "tensor, True where exactly one of a and b is non-zero; broadcasts.",
        Numerics(
            "lambda a, b: ember.logical_xor(a > 0, b > 0)",
            "lambda a, b: torch.logical_xor(a > 0, b > 0)",
            num_inputs=2,
            backward=False,
        ),
    ),
    AblationOp(
        "bitwise_xor",
        "elementwise",
        "`ember.bitwise_xor(a, b)` (and `a ^ b`, `^=`, "
        "`bitwise_xor_`) for integer and bool tensors, with broadcasting and Python ints.",
        Numerics(
            "lambda a, b: ember.bitwise_xor((a * 9).to(ember.int32), (b * "
            "9).to(ember.int32)).to(ember.float32)",
            "lambda a, b: torch.bitwise_xor((a * 9).to(torch.int32), (b * "
            "9).to(torch.int32)).to(torch.float32)",
            num_inputs=2,
            backward=False,
        ),
    ),
    AblationOp(
        "isinf",
        "elementwise",
        "`ember.isinf(x)` (and the method): a bool tensor, True where x is +inf or -inf.",
        Numerics(
            "lambda x: ember.isinf(ember.log(x) / x)",
            "lambda x: torch.isinf(torch.log(x) / x)",
            input_range=(-1.0, 1.0),
            backward=False,
        ),
    ),
    AblationOp(
        "atan2",
        "elementwise",
        "`ember.atan2(y, x)` (also `ember.arctan2`, `Tensor.atan2`, in-place `atan2_`): the angle "
        "of the point (x, y) in radians, in [-pi, pi], elementwise with broadcasting; integer "
        "inputs give a float result.",
        Numerics("ember.atan2", "torch.atan2", num_inputs=2),
    ),
    AblationOp(
        "hypot",
        "elementwise",
        "`ember.hypot(a, b)` (and `Tensor.hypot`, `hypot_`): sqrt(a*a + b*b) without overflow, "
        "elementwise with broadcasting; floating inputs only, as in torch.",
        Numerics("ember.hypot", "torch.hypot", num_inputs=2),
    ),
    AblationOp(
        "logaddexp",
        "elementwise",
        "`ember.logaddexp(a, b)` (and the method): log(exp(a) + exp(b)) computed without overflow, "
        "elementwise with broadcasting; floating inputs only, as in torch.",
        Numerics("ember.logaddexp", "torch.logaddexp", num_inputs=2),
    ),
    AblationOp(
        "logaddexp2",
        "elementwise",
        "`ember.logaddexp2(a, b)` (and the method): log2(2**a + 2**b) computed without overflow, "
        "elementwise with broadcasting; floating inputs only, as in torch.",
        Numerics("ember.logaddexp2", "torch.logaddexp2", num_inputs=2),
    ),
    AblationOp(
        "acosh",
        "elementwise",
        "`ember.acosh(x)` (also `ember.arccosh`, `Tensor.acosh`, `acosh_`): the inverse hyperbolic "
        "cosine for x >= 1 (NaN below), elementwise; integer inputs give a float result.",
        _unary("acosh", lo=1.1, hi=5.0),
    ),
    AblationOp(
        "asinh",
        "elementwise",
        "`ember.asinh(x)` (also `ember.arcsinh`, `Tensor.asinh`, `asinh_`): the inverse hyperbolic "
        "sine, elementwise; integer inputs give a float result.",
        _unary("asinh"),
    ),
    AblationOp(
        "atanh",
        "elementwise",
        "`ember.atanh(x)` (also `ember.arctanh`, `Tensor.atanh`, `atanh_`): the inverse hyperbolic "
        "tangent on (-1, 1), elementwise; integer inputs give a float result.",
        _unary("atanh", lo=-0.9, hi=0.9),
    ),
    # ---- reductions ---------------------------------------------------------------------------
    AblationOp(
        "prod",
        "reduction",
        "`ember.prod(x, dim=None, keepdim=False, dtype=None)` (and the "
        "method): the product of the elements, of all of them or along one dim; integer "
        "inputs accumulate in int64; the gradient is right when the input holds zeros.",
        Numerics(
            "lambda x: ember.prod(x, 1)",
            "lambda x: torch.prod(x, 1)",
            shapes=[[4, 9], [2, 3, 5]],
            input_range=(0.5, 1.5),
        ),
    ),
    AblationOp(
        "logsumexp",
        "reduction",
        "`ember.logsumexp(x, dim, keepdim=False)` (and the method): "
        "log(sum(exp(x))) along the dims, computed without overflow.",
        Numerics(
            "lambda x: ember.logsumexp(x, -1)",
            "lambda x: torch.logsumexp(x, -1)",
            input_range=(-30.0, 30.0),
        ),
    ),
    AblationOp(
        "argmin",
        "reduction",
        "`ember.argmin(x, dim=None, keepdim=False)` (and the method): "
        "the index of the smallest element, of the flattened tensor or along dim (the first "
        "on ties).",
        Numerics("lambda x: ember.argmin(x, -1)", "lambda x: torch.argmin(x, -1)", backward=False),
    ),
    AblationOp(
        "argmax",
        "reduction",
        "`ember.argmax(x, dim=None, keepdim=False)` (and the method): "
        "the index of the largest element, of the flattened tensor or along dim (the first "
        "on ties).",
        Numerics("lambda x: ember.argmax(x, -1)", "lambda x: torch.argmax(x, -1)", backward=False),
    ),
    AblationOp(
        "cumsum",
        "reduction",
        "`ember.cumsum(x, dim, dtype=None)` (and the method): the "
        "inclusive running sum along dim; integers accumulate in int64.",
        Numerics("lambda x: ember.cumsum(x, -1)", "lambda x: torch.cumsum(x, -1)"),
    ),
    AblationOp(
        "topk",
        "reduction",
        "`ember.topk(x, k, dim=-1, largest=True, sorted=True)` (and the "
        "method): the k largest (or smallest) elements along dim and their indices, as a "
        "(values, indices) named tuple; differentiable in the values.",
        Numerics("lambda x: ember.topk(x, 3)", "lambda x: torch.topk(x, 3)"),
    ),
    AblationOp(
        "argsort",
        "reduction",
        "`ember.argsort(x, dim=-1, descending=False, stable=False)` "
        "(and the method): the indices that sort x along dim.",
        Numerics(
            "lambda x: ember.argsort(x, -1, descending=True)",
            "lambda x: torch.argsort(x, -1, descending=True)",
            backward=False,
        ),
    ),
    AblationOp(
        "var_mean",
        "reduction",
        "`ember.var_mean(x, dim=None, *, correction=None, keepdim=False)` "
        "(and the `unbiased` overloads): the variance and the mean in one call, as a tuple.",
        Numerics("lambda x: ember.var_mean(x, -1)", "lambda x: torch.var_mean(x, -1)"),
    ),
    AblationOp(
        "std_mean",
        "reduction",
        "`ember.std_mean(x, dim=None, *, correction=None, keepdim=False)` "
        "(and the `unbiased` overloads): the standard deviation and the mean in one call.",
        Numerics(
            "lambda x: ember.std_mean(x, -1)",
            "lambda x: torch.std_mean(x, -1)",
            input_range=(-4.0, 4.0),
        ),
    ),
    AblationOp(
        "logcumsumexp",
        "reduction",
        "`ember.logcumsumexp(x, dim)` (and the method): the running log(sum(exp(x))) along dim, "
        "computed without overflow; floating inputs.",
        Numerics(
            "lambda x: ember.logcumsumexp(x, 1)",
            "lambda x: torch.logcumsumexp(x, 1)",
            shapes=[[4, 9], [2, 3, 5]],
        ),
    ),
    # ---- indexing -----------------------------------------------------------------------------
    AblationOp(
        "masked_select",
        "indexing",
        "`ember.masked_select(x, mask)` (and the method): a 1-d "
        "tensor of the elements of x where the bool mask (broadcast with x) is True.",
        Numerics(
            "lambda x: ember.masked_select(x, x > 0)", "lambda x: torch.masked_select(x, x > 0)"
        ),
    ),
    AblationOp(
        "take_along_dim",
        "indexing",
        "`ember.take_along_dim(x, indices, dim=None)` (and the "
        "method): gather along dim with indices broadcast against x (the flattened x when dim "
        "is None).",
        Numerics(
            "lambda x: ember.take_along_dim(x, x.argsort(-1), -1)",
            "lambda x: torch.take_along_dim(x, x.argsort(-1), -1)",
        ),
    ),
    # ---- layout -------------------------------------------------------------------------------
    AblationOp(
        "roll",
        "layout",
        "`ember.roll(x, shifts, dims=None)` (and the method): elements "
        "shifted along dims with wrap-around (the flattened tensor when dims is None).",
        Numerics("lambda x: ember.roll(x, 2, -1)", "lambda x: torch.roll(x, 2, -1)"),
    ),
    AblationOp(
        "repeat",
        "layout",
        "`Tensor.repeat(*sizes)`: the tensor tiled sizes[i] times along "
        "each dim (leading new dims when sizes is longer than the shape).",
        Numerics("lambda x: x.repeat(2, 1, 3)", "lambda x: x.repeat(2, 1, 3)"),
    ),
    AblationOp(
        "unflatten",
        "layout",
        "`ember.unflatten(x, dim, sizes)` (and the method): a view with "
        "dim split into the given sizes (one of them may be -1).",
        Numerics(
            "lambda x: x.reshape(-1).unflatten(0, (-1, x.shape[-1]))",
            "lambda x: x.reshape(-1).unflatten(0, (-1, x.shape[-1]))",
        ),
    ),
    AblationOp(
        "diagonal",
        "layout",
        "`ember.diagonal(x, offset=0, dim1=0, dim2=1)` (and the "
        "method): a view of the diagonal with the given offset of the (dim1, dim2) planes, as "
        "the last dim.",
        Numerics(
            "lambda x: ember.diagonal(x, 1, -2, -1)",
            "lambda x: torch.diagonal(x, 1, -2, -1)",
            shapes=[[4, 9], [2, 3, 5]],
        ),
    ),
    AblationOp(
        "outer",
        "layout",
        "`ember.outer(a, b)` (and the method): the outer product of two "
        "1-d tensors, out[i][j] = a[i] * b[j].",
        Numerics("ember.outer", "torch.outer", shapes=[[5], [17]], num_inputs=2),
    ),
    # ---- losses and norms ---------------------------------------------------------------------
    AblationOp(
        "huber_loss",
        "loss-norm",
        "`ember.nn.functional.huber_loss(input, target, "
        "reduction='mean', delta=1.0, weight=None)`: 0.5 * d^2 where |d| < delta, delta * "
        "(|d| - delta / 2) elsewhere (d = input - target), reduced by mean/sum/none.",
        Numerics(
            "lambda x, t: ember.nn.functional.huber_loss(x, t, delta=0.7)",
            "lambda x, t: torch.nn.functional.huber_loss(x, t, delta=0.7)",
            num_inputs=2,
        ),
        module="runtime/python/ember/nn/_losses.py",
        tests=("tests/python/nn/test_losses.py",),
    ),
    AblationOp(
        "smooth_l1_loss",
        "loss-norm",
        "`ember.nn.functional.smooth_l1_loss(input, target, "
        "reduction='mean', beta=1.0)`: 0.5 * d^2 / beta where |d| < beta, |d| - beta / 2 "
        "elsewhere (plain L1 when beta is 0).",
        Numerics(
            "lambda x, t: ember.nn.functional.smooth_l1_loss(x, t, beta=0.5)",
            "lambda x, t: torch.nn.functional.smooth_l1_loss(x, t, beta=0.5)",
            num_inputs=2,
        ),
        module="runtime/python/ember/nn/_losses.py",
        tests=("tests/python/nn/test_losses.py",),
    ),
    AblationOp(
        "kl_div",
        "loss-norm",
        "`ember.nn.functional.kl_div(input, target, reduction='mean', "
        "log_target=False)`: target * (log(target) - input) pointwise (input holds "
        "log-probabilities), reduced by mean, batchmean, sum or none.",
        Numerics(
            "lambda x, t: ember.nn.functional.kl_div(x, t, reduction='batchmean')",
            "lambda x, t: torch.nn.functional.kl_div(x, t, reduction='batchmean')",
            num_inputs=2,
            input_range=(0.05, 1.0),
        ),
        module="runtime/python/ember/nn/_losses.py",
        tests=("tests/python/nn/test_losses.py",),
    ),
    AblationOp(
        "l1_loss",
        "loss-norm",
        "`ember.nn.functional.l1_loss(input, target, reduction='mean', "
        "weight=None)`: |input - target| reduced by mean/sum/none.",
        Numerics(
            "lambda x, t: ember.nn.functional.l1_loss(x, t)",
            "lambda x, t: torch.nn.functional.l1_loss(x, t)",
            num_inputs=2,
        ),
        module="runtime/python/ember/nn/_losses.py",
        tests=("tests/python/nn/test_losses.py",),
    ),
    # ---- Python-only nn pieces ----------------------------------------------------------------
    AblationOp(
        "normalize",
        "nn-python",
        "`ember.nn.functional.normalize(input, p=2.0, dim=1, "
        "eps=1e-12)`: input divided by its p-norm along dim, the norm floored at eps.",
        Numerics(
            "lambda x: ember.nn.functional.normalize(x, dim=-1)",
            "lambda x: torch.nn.functional.normalize(x, dim=-1)",
        ),
        module="runtime/python/ember/nn/functional.py",
        tests=("tests/python/nn/test_losses.py",),
    ),
    AblationOp(
        "cosine_similarity",
        "nn-python",
        "`ember.nn.functional.cosine_similarity(x1, x2, "
        "dim=1, eps=1e-8)`: the cosine of the angle between x1 and x2 along dim (inputs "
        "broadcast; each norm floored at eps).",
        Numerics(
            "lambda a, b: ember.nn.functional.cosine_similarity(a, b, dim=-1)",
            "lambda a, b: torch.nn.functional.cosine_similarity(a, b, dim=-1)",
            num_inputs=2,
        ),
        module="runtime/python/ember/nn/functional.py",
        tests=("tests/python/nn/test_losses.py",),
    ),
]
