"""Bug goals: a realistic bug injected into the runtime, reported the way a user would.

Each bug names one exact snippet of the current source (it must occur once, or `harness suite
build` fails and says so) and its buggy replacement. The fix is the reverse edit; the acceptance is
the op's existing tests plus numerics against PyTorch on the inputs the report is about.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import Numerics


@dataclass(frozen=True)
class Bug:
    id: str
    title: str
    category: str  # bug-kernel | bug-backward | bug-dtype | bug-reduction
    path: str
    search: str
    replace: str
    report: str  # the user's bug report, with a failing snippet
    numerics: Numerics
    pytest: tuple[str, ...] = ()


ELEMENTWISE = "runtime/tests/python/ops/test_elementwise.py"
REDUCE = "runtime/tests/python/ops/test_reduce.py"
LAYOUT = "runtime/tests/python/ops/test_layout.py"

BUGS: list[Bug] = [
    Bug(
        "bug-amax-identity",
        "amax of negative rows returns 0",
        "bug-reduction",
        "runtime/csrc/cpu/reduce.cpp",
        "return IsMax ? -std::numeric_limits<Acc>::infinity() : "
        "std::numeric_limits<Acc>::infinity();",
        "return IsMax ? Acc(0) : std::numeric_limits<Acc>::infinity();",
        "`ember.amax` gives 0 instead of the maximum when every element of a row is negative:\n\n"
        "    x = ember.tensor([[-3.0, -1.5, -2.0]])\n"
        "    ember.amax(x, 1)      # tensor([0.])   torch.amax gives tensor([-1.5000])\n\n"
        "`max(dim)` and `x.max()` look wrong the same way. Please fix it (CPU).\n",
        Numerics(
            "lambda x: ember.amax(x, -1)", "lambda x: torch.amax(x, -1)", input_range=(-4.0, -0.5)
        ),
        (f'{REDUCE} -k "amax or max"',),
    ),
    Bug(
        "bug-norm-neginf",
        "norm(p=-inf) is always 0",
        "bug-reduction",
        "runtime/csrc/cpu/reduce.cpp",
        "if constexpr (K == NormKind::NegInf) return std::numeric_limits<Acc>::infinity();",
        "if constexpr (K == NormKind::NegInf) return acc_t(0);",
        "`ember.norm(x, float('-inf'), dim)` should be the smallest absolute value along dim, but "
        "it "
        "is 0 for every input I try:\n\n"
        "    x = ember.tensor([[3.0, -2.0, 5.0]])\n"
        "    ember.norm(x, float('-inf'), 1)   # tensor([0.]); torch.norm gives tensor([2.])\n",
        Numerics(
            "lambda x: ember.norm(x, float('-inf'), -1)",
            "lambda x: torch.norm(x, float('-inf'), -1)",
            input_range=(0.5, 4.0),
        ),
        (f'{REDUCE} -k "norm"',),
    ),
    Bug(
        "bug-var-backward",
        "the gradient of var ignores the correction",
        "bug-backward",
        "runtime/csrc/ops/reduce.cpp",
        "ctx.set_grad(0, mul(mul(centered, Scalar(2.0 / divisor)), gk));",
        "ctx.set_grad(0, mul(mul(centered, Scalar(2.0 / n)), gk));",
        "The gradient of `ember.var` is off by a constant factor compared with torch (the forward "
        "values agree):\n\n"
        "    x = ember.tensor([1.0, 2.0, 4.0], requires_grad=True)\n"
        "    ember.var(x).backward()\n"
        "    x.grad    # tensor([-0.8889, -0.2222, 1.1111]); torch: tensor([-1.3333, -0.3333, "
        "1.6667])\n",
        Numerics("lambda x: ember.var(x, -1)", "lambda x: torch.var(x, -1)"),
        (f'{REDUCE} -k "var"',),
    ),
    Bug(
        "bug-logsumexp-backward",
        "logsumexp gradients are not softmax",
        "bug-backward",
        "runtime/csrc/ops/reduce.cpp",
        "ctx.set_grad(0, mul(gk, exp(sub(ctx.input(0), yk))));",
        "ctx.set_grad(0, mul(gk, exp(ctx.input(0))));",
        "Backpropagating through `ember.logsumexp` gives gradients that do not sum to 1 per row "
        "(they "
        "should be the softmax of the input), and for large inputs they are inf:\n\n"
        "    x = ember.tensor([[100.0, 101.0]], requires_grad=True)\n"
        "    ember.logsumexp(x, 1).sum().backward()\n"
        "    x.grad    # inf; torch gives tensor([[0.2689, 0.7311]])\n",
        Numerics(
            "lambda x: ember.logsumexp(x, -1)",
            "lambda x: torch.logsumexp(x, -1)",
            input_range=(-20.0, 20.0),
        ),
        (f'{REDUCE} -k "logsumexp"',),
    ),
    Bug(
        "bug-silu-backward",
        "silu gradient wrong for negative inputs",
        "bug-backward",
        "runtime/csrc/pointwise/functors.h",
        "return g * (s * (O(1) + x * (O(1) - s)));",
        "return g * (s * (O(1) + x * s));",
        "Training with `nn.SiLU` diverges compared with the same model in torch. The gradient "
        "looks "
        "wrong:\n\n"
        "    x = ember.tensor([-2.0, 0.5, 3.0], requires_grad=True)\n"
        "    ember.nn.functional.silu(x).sum().backward()\n"
        "    x.grad    # torch: tensor([-0.0908, 0.7400, 1.0881])\n",
        Numerics("ember.nn.functional.silu", "torch.nn.functional.silu"),
        (f'{ELEMENTWISE} -k "silu"',),
    ),
    Bug(
        "bug-function-broadcast-grad",
        "custom autograd.Function: broadcast input gets an unreduced gradient",
        "bug-backward",
        "runtime/csrc/autograd/custom_function.cpp",
        "    g = sum_to_size(g, m.sizes);\n",
        "",
        "A custom `ember.autograd.Function` whose input was broadcast in forward returns a "
        "gradient "
        "of the output's shape from backward, as in torch; ember does not sum it back to the "
        "input's "
        "shape (torch does), so `w.grad` has the wrong shape or backward fails:\n\n"
        "    class Mul(ember.autograd.Function):\n"
        "        @staticmethod\n"
        "        def forward(ctx, a, b):\n"
        "            ctx.save_for_backward(a, b)\n"
        "            return a * b\n"
        "        @staticmethod\n"
        "        def backward(ctx, g):\n"
        "            a, b = ctx.saved_tensors\n"
        "            return g * b, g * a\n\n"
        "    x = ember.randn(4, 3, requires_grad=True); w = ember.randn(4, 1, requires_grad=True)\n"
        "    Mul.apply(x, w).sum().backward()   # w.grad should have shape (4, 1)\n",
        Numerics(
            "lambda x, w: type('Mul', (ember.autograd.Function,), {"
            "'forward': staticmethod(lambda ctx, a, b: (ctx.save_for_backward(a, b), a * b)[1]), "
            "'backward': staticmethod(lambda ctx, g: (g * ctx.saved_tensors[1], g * "
            "ctx.saved_tensors[0]))"
            "}).apply(x, w[..., :1])",
            "lambda x, w: x * w[..., :1]",
            num_inputs=2,
        ),
        ('runtime/tests/python/test_autograd.py -k "function"',),
    ),
    Bug(
        "bug-scalar-promotion",
        "int tensor times a Python float gives float64",
        "bug-dtype",
        "runtime/csrc/ops/elementwise.cpp",
        "S number_type(const Scalar& s) { return s.is_float() ? default_float_type() : s.is_int() "
        "? S::Int64 : S::Bool; }",
        "S number_type(const Scalar& s) { return s.is_float() ? S::Float64 : s.is_int() ? "
        "S::Int64 : S::Bool; }",
        "Mixing an integer tensor with a Python float gives float64, where torch gives the default "
        "dtype (float32), so my model's buffers end up float64:\n\n"
        "    ember.arange(4) * 0.5     # dtype=ember.float64; torch.arange(4) * 0.5 is float32\n",
        Numerics(
            "lambda x: (x * 10).to(ember.int64) * 0.5",
            "lambda x: (x * 10).to(torch.int64) * 0.5",
            backward=False,
        ),
        (f'{ELEMENTWISE} -k "promotion or scalar_operands"',),
    ),
    Bug(
        "bug-int-true-division",
        "integer true division returns integers",
        "bug-dtype",
        "runtime/csrc/ops/elementwise.cpp",
        "case Binary::ToFloat: return {to_float_type(rt), to_float_type(rt)};",
        "case Binary::ToFloat: return {to_float_type(rt), rt};",
        "Dividing two integer tensors with `/` gives an integer tensor (the quotient truncated), "
        "where torch gives float32:\n\n"
        "    ember.tensor([3, 7]) / ember.tensor([2, 2])   # tensor([1, 3]); torch: "
        "tensor([1.5000, 3.5000])\n",
        Numerics(
            "lambda a, b: (a * 10).to(ember.int64) / (b * 3 + 1).to(ember.int64)",
            "lambda a, b: (a * 10).to(torch.int64) / (b * 3 + 1).to(torch.int64)",
            num_inputs=2,
            input_range=(0.0, 4.0),
            backward=False,
        ),
        (f'{ELEMENTWISE} -k "div or promotion"',),
    ),
    Bug(
        "bug-roll-offset",
        "roll shifts by one too many",
        "bug-kernel",
        "runtime/csrc/cpu/layout.cpp",
        "head.src += (size - s) * x.strides()[d];",
        "head.src += (size - s - 1) * x.strides()[d];",
        "`ember.roll` gives wrong values (the wrapped-around part starts one element early):\n\n"
        "    ember.roll(ember.arange(5), 2)   # tensor([2, 3, 0, 1, 2]); torch: tensor([3, 4, 0, "
        "1, 2])\n",
        Numerics("lambda x: ember.roll(x, 2, -1)", "lambda x: torch.roll(x, 2, -1)"),
        (f'{LAYOUT} -k "roll"',),
    ),
    Bug(
        "bug-cumsum-last",
        "cumsum leaves the last element of each row unwritten",
        "bug-kernel",
        "runtime/csrc/cpu/reduce.cpp",
        "        for (int64_t i = 0; i < n; ++i) {\n          acc += load_as<T, Acc>(xb + xo + i "
        "* xs);",
        "        for (int64_t i = 0; i + 1 < n; ++i) {\n          acc += load_as<T, Acc>(xb + xo "
        "+ i * xs);",
        "The last element of `ember.cumsum` along a dim is garbage (sometimes 0, sometimes NaN or "
        "a "
        "huge number):\n\n"
        "    ember.cumsum(ember.ones(2, 4), 1)   # last column wrong; torch: [[1, 2, 3, 4], [1, "
        "2, 3, 4]]\n",
        Numerics("lambda x: ember.cumsum(x, -1)", "lambda x: torch.cumsum(x, -1)"),
        (f'{REDUCE} -k "cumsum"',),
    ),
    Bug(
        "bug-triu-diagonal",
        "triu drops the diagonal",
        "bug-kernel",
        "runtime/csrc/cpu/layout.cpp",
        "const bool keep = Lower ? (c - r <= k) : (c - r >= k);",
        "const bool keep = Lower ? (c - r <= k) : (c - r > k);",
        "`ember.triu` zeroes the diagonal it should keep:\n\n"
        "    ember.triu(ember.ones(3, 3))   # diagonal is 0; torch keeps the diagonal (ones on "
        "and above it)\n",
        Numerics("lambda x: ember.triu(x)", "lambda x: torch.triu(x)", shapes=[[4, 9], [2, 3, 5]]),
        (f'{LAYOUT} -k "triu"',),
    ),
]
