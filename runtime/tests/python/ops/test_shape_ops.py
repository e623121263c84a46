"""Shape and indexing helpers vs torch: repeat_interleave, diff, rot90, fliplr/flipud, tile,
atleast_1d/2d/3d, hstack/vstack/dstack/column_stack/row_stack, tensor_split/hsplit/vsplit/dsplit,
broadcast_shapes/broadcast_tensors, take, argwhere, msort, vander (values, gradients, errors)."""
import numpy as np
import pytest
import torch

import ember
from optest import ALL_DTYPES, OpCase, op_tests

F = ["float32", "float64"]
SOME = F + ["int64", "bool"]


def with_repeats(rng, shapes, dtype):
    x = rng.uniform(-3, 3, size=shapes[0]).astype("float32" if dtype == "bfloat16" else dtype)
    return [x, rng.integers(0, 3, size=shapes[1]).astype(np.int64)]


def with_index(rng, shapes, dtype):
    x = rng.uniform(-3, 3, size=shapes[0]).astype("float32" if dtype == "bfloat16" else dtype)
    n = int(np.prod(shapes[0]))
    return [x, rng.integers(-n, n, size=shapes[1]).astype(np.int64)]


CASES = [
    OpCase("repeat_interleave", lambda lib, x: (lib.repeat_interleave(x, 2), x.repeat_interleave(3, dim=0),
                                                lib.repeat_interleave(x, 2, dim=-1)),
           [[(2, 3)], [(0, 2)], [(3, 1)]], ALL_DTYPES),
    OpCase("repeat_interleave_scalar", lambda lib, x: lib.repeat_interleave(x, 2), [[()]], F),
    OpCase("repeat_interleave_tensor", lambda lib, x, r: (lib.repeat_interleave(x, r, dim=0),
                                                          lib.repeat_interleave(r)),
           [[(4, 2), (4,)], [(3,), (3,)]], F + ["int64"], make_inputs=with_repeats, grad_inputs=[0],
           input_dtypes=[None, "int64"]),
    OpCase("repeat_interleave_one_repeat", lambda lib, x, r: lib.repeat_interleave(x, r[:1], dim=1),
           [[(2, 3), (2,)]], F, make_inputs=with_repeats, grad_inputs=[0], input_dtypes=[None, "int64"]),
    OpCase("repeat_interleave_bad", lambda lib, x, r: lib.repeat_interleave(x, r, dim=1), [[(2, 3), (2,)]], F,
           grad=False, make_inputs=with_repeats, input_dtypes=[None, "int64"]),
    OpCase("diff", lambda lib, x: (lib.diff(x), x.diff(n=2, dim=0), lib.diff(x, n=4)), [[(3, 4)], [(5,)], [(2, 0)]],
           F + ["int64", "bool"]),
    OpCase("diff_prepend", lambda lib, x, p, a: (lib.diff(x, prepend=p, append=a), lib.diff(x, dim=-1, append=a)),
           [[(2, 3), (2, 1), (2, 2)]], F),
    OpCase("diff_bad", lambda lib, x: lib.diff(x), [[()]], F, grad=False),
    OpCase("rot90", lambda lib, x: tuple(lib.rot90(x, k, d) for k in (1, 2, 3, 4, -1, 5) for d in ((0, 1), (1, 0))),
           [[(2, 3)], [(2, 3, 4)], [(0, 2)]], SOME),
    OpCase("rot90_dims", lambda lib, x: (lib.rot90(x, 1, [0, 2]), x.rot90(1, [2, -1])), [[(2, 3, 4, 5)]], F),
    OpCase("rot90_bad", lambda lib, x: lib.rot90(x, 1, [0, 0]), [[(2, 3)]], F, grad=False),
    OpCase("fliplr_flipud", lambda lib, x: (lib.fliplr(x), lib.flipud(x), x.fliplr(), x.flipud()),
           [[(2, 3)], [(2, 3, 2)]], SOME),
    OpCase("tile", lambda lib, x: (lib.tile(x, (2,)), x.tile((2, 1, 3)), lib.tile(x, (1,))), [[(2, 3)], [(3,)], [()]],
           SOME),
    OpCase("atleast", lambda lib, a, b, c: (lib.atleast_1d(a), *lib.atleast_2d(a, b, c), *lib.atleast_3d([a, b, c]),
                                            lib.atleast_3d(c[None, None])),
           [[(), (3,), (2, 3)]], F),
    OpCase("stacks", lambda lib, a, b: (lib.hstack([a, b]), lib.vstack((a, b)), lib.row_stack([a, b]),
                                        lib.dstack([a, b]), lib.column_stack([a, b])),
           [[(3,), (3,)], [(2, 3), (2, 3)], [(), ()]], F + ["int64"]),
    OpCase("column_stack_mixed", lambda lib, a, b: lib.column_stack([a, b]), [[(3,), (3, 2)]], F),
    OpCase("tensor_split", lambda lib, x: (*lib.tensor_split(x, 3), *lib.tensor_split(x, [1, 4, 10], dim=0),
                                           *x.tensor_split(2, dim=-1), *lib.tensor_split(x, [-2])),
           [[(7, 2)], [(2, 2)]], F),
    OpCase("tensor_split_tensor", lambda lib, x: (*lib.tensor_split(x, lib.tensor(3)),
                                                  *lib.tensor_split(x, lib.tensor([1, 5]))),
           [[(7,)]], F),
    OpCase("hvd_split", lambda lib, x: (*lib.hsplit(x, 2), *lib.vsplit(x, [1]), *lib.dsplit(x, 2),
                                        *x.hsplit([1, 3])),
           [[(2, 4, 6)]], F),
    OpCase("hsplit_uneven", lambda lib, x: lib.hsplit(x, 2), [[(5,)]], F, grad=False),
    OpCase("broadcast_tensors", lambda lib, a, b, c: lib.broadcast_tensors(a, b, c),
           [[(2, 1), (3,), ()], [(1, 4), (3, 1), (1,)]], F),
    OpCase("take", lambda lib, x, i: (lib.take(x, i), x.take(i)), [[(3, 4), (5,)], [(2, 3), (2, 2)], [(4,), ()]], F,
           make_inputs=with_index, grad_inputs=[0], input_dtypes=[None, "int64"]),
    OpCase("take_out_of_range", lambda lib, x, i: lib.take(x, i + 100), [[(3, 4), (2,)]], F, grad=False,
           make_inputs=with_index, input_dtypes=[None, "int64"]),
    OpCase("argwhere_msort", lambda lib, x: (lib.argwhere(x > 0), x.argwhere(), lib.msort(x), x.msort()),
           [[(3, 4)], [(5,)]], F + ["int64"], grad=False),
    # torch's vander backward fails (an in-place write): values here, gradients with linalg.vander.
    OpCase("vander", lambda lib, x: (lib.vander(x), lib.vander(x, N=2), lib.vander(x, 4, increasing=True)),
           [[(4,)], [(0,)]], F + ["int64"], low=-2, high=2, grad=False),
    OpCase("unfold", lambda lib, x: (x.unfold(1, 2, 2), x.unfold(0, 2, 1), x.unfold(-1, 3, 1), x.t().unfold(0, 2, 3)),
           [[(3, 5)], [(2, 5, 3)]], SOME),
    OpCase("unfold_scalar", lambda lib, x: x.unfold(0, 1, 1), [[()]], F),
    OpCase("unfold_bad", lambda lib, x: x.unfold(1, 6, 1), [[(3, 5)]], F, grad=False),
    OpCase("ravel_adjoint", lambda lib, x: (x.ravel(), lib.ravel(x), x.mH, x.adjoint(), lib.adjoint(x), x[0].H),
           [[(2, 3, 4)]], F),
    OpCase("index_fill_copy", lambda lib, x, s: (x.index_fill(1, lib.tensor([0, 2]), -1.5),
                                                 lib.index_fill(x, 0, lib.tensor([1]), lib.tensor(2.0)),
                                                 x.clone().index_fill_(-1, lib.tensor([2]), 0),
                                                 x.index_copy(1, lib.tensor([2, 0]), s),
                                                 lib.index_copy(x, 1, lib.tensor([1, 3]), s),
                                                 x.clone().index_copy_(1, lib.tensor([3, 1]), s)),
           [[(2, 4, 3), (2, 2, 3)]], F + ["int64"]),
    OpCase("fill_diagonal", lambda lib, x: (x.clone().fill_diagonal_(2.5), x.clone().fill_diagonal_(-1, wrap=True)),
           [[(3, 3)], [(5, 3)], [(2, 4)], [(3, 3, 3)], [(7, 2)]], F + ["int64"]),
]

test_matches_torch, test_gradcheck = op_tests(CASES)


def test_broadcast_shapes():
    assert ember.broadcast_shapes((2, 1), (3,)) == torch.broadcast_shapes((2, 1), (3,))
    assert ember.broadcast_shapes(3, (2, 1)) == torch.broadcast_shapes(3, (2, 1))
    assert ember.broadcast_shapes() == torch.broadcast_shapes()
    with pytest.raises(RuntimeError, match=r"\[broadcast_shapes\] Shape mismatch"):
        ember.broadcast_shapes((2,), (3,))


def test_repeat_interleave_errors():
    x = ember.ones(2, 3)
    with pytest.raises(RuntimeError, match=r"\[repeat_interleave\] repeats can not be negative"):
        ember.repeat_interleave(x, ember.tensor([-1, 2]), dim=0)
    with pytest.raises(RuntimeError, match=r"\[repeat_interleave\] Repeats must be non-negative"):
        x.repeat_interleave(-1)
    with pytest.raises(RuntimeError, match=r"allocated size \(5\) does not match required size \(3\)"):
        ember.repeat_interleave(x, ember.tensor([1, 2]), dim=0, output_size=5)
    with pytest.raises(RuntimeError, match=r"repeats must be 0-dim or 1-dim"):
        ember.repeat_interleave(x, ember.ones(1, 2, dtype=ember.int64))
    np.testing.assert_array_equal(
        ember.repeat_interleave(x, ember.tensor([1, 2]), dim=0, output_size=3).numpy(), np.ones((3, 3)))


def test_queries():
    for lib in (torch, ember):
        x = lib.tensor([[1.0, 2.0]])
        assert not x.is_complex() and not lib.is_complex(x)
        assert x.is_signed() and not lib.tensor([1], dtype=lib.uint8).is_signed()
        assert lib.tensor([3]).is_nonzero() and not lib.tensor(0.0).is_nonzero()
        assert x.is_same_size(lib.zeros(1, 2)) and not lib.is_same_size(x, lib.zeros(2))
        assert x.nbytes == 8
        with pytest.raises(RuntimeError, match="ambiguous"):
            lib.tensor([1, 2]).is_nonzero()


def test_unfold_is_a_view():
    x = ember.arange(10.0)
    w = x.unfold(0, 4, 3)
    x[3] = 100.0
    assert w.tolist() == [[0.0, 1.0, 2.0, 100.0], [100.0, 4.0, 5.0, 6.0], [6.0, 7.0, 8.0, 9.0]]


def test_tensor_methods_are_installed():
    from ember import _matrix_ops, _shape_ops, _stats
    for module in (_matrix_ops, _shape_ops, _stats):
        for name, fn in module.TENSOR_METHODS.items():
            assert getattr(ember.Tensor, name) is fn, name
