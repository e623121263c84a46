"""einsum and tensordot vs torch: equation forms (explicit, implicit, ellipsis, sublists), repeated
indices (diagonals), size-1 broadcasting, 0-size and 0-dim operands, dtypes, gradients and errors."""
import numpy as np
import pytest

import ember
from optest import OpCase, op_tests

F = ["float32", "float64"]
LOW = {"float16": (2e-2, 5e-2), "bfloat16": (4e-2, 2e-1), "float32": (1e-4, 1e-4)}


def eq(equation):
    return lambda lib, *xs: lib.einsum(equation, *xs)


CASES = [
    OpCase("einsum_matmul", eq("ij,jk->ik"), [[(2, 3), (3, 4)], [(0, 3), (3, 4)], [(2, 0), (0, 4)]],
           F + ["float16", "bfloat16", "int64"], tol=LOW),
    OpCase("einsum_implicit", eq("ij,jk"), [[(2, 3), (3, 4)]], F),
    OpCase("einsum_implicit_order", eq("ba,Ab"), [[(2, 3), (4, 2)]], F),  # output: A then a
    OpCase("einsum_transpose", eq("ij->ji"), [[(2, 3)]], F + ["int32", "bool"]),
    OpCase("einsum_diagonal", eq("ii->i"), [[(3, 3)], [(0, 0)]], F),
    OpCase("einsum_trace", eq("ii"), [[(3, 3)]], F + ["int64"]),
    OpCase("einsum_sum_all", eq("ij->"), [[(2, 3)], [(0, 3)]], F + ["int64", "bool"]),
    OpCase("einsum_batch_matmul", eq("bij,bjk->bik"), [[(2, 3, 4), (2, 4, 5)], [(0, 3, 4), (0, 4, 5)]], F, tol=LOW),
    OpCase("einsum_attention", eq("bhqd,bhkd->bhqk"), [[(2, 3, 4, 5), (2, 3, 6, 5)]], F, tol=LOW),
    OpCase("einsum_ellipsis", eq("...ij,...jk->...ik"), [[(2, 1, 3, 4), (5, 4, 2)], [(3, 4), (4, 2)]], F, tol=LOW),
    OpCase("einsum_ellipsis_implicit", eq("...ii"), [[(2, 3, 3)]], F),
    OpCase("einsum_ellipsis_sum", eq("...ij->ij"), [[(2, 3, 4, 5)], [(4, 5)]], F),
    OpCase("einsum_ellipsis_middle", eq("b...,b...->..."), [[(2, 3, 4), (2, 1, 4)]], F),
    OpCase("einsum_dot", eq("i,i->"), [[(4,), (4,)], [(0,), (0,)]], F),
    OpCase("einsum_outer", eq("i,j->ij"), [[(3,), (4,)]], F + ["int64"]),
    OpCase("einsum_hadamard", eq("ij,ij->ij"), [[(3, 4), (3, 4)], [(3, 1), (1, 4)]], F),
    OpCase("einsum_broadcast_contract", eq("ab,ab->a"), [[(3, 4), (1, 4)], [(3, 1), (3, 4)]], F),
    OpCase("einsum_three", eq("ijk,ikl,ilm->jm"), [[(2, 3, 4), (2, 4, 5), (2, 5, 6)]], F, tol=LOW),
    OpCase("einsum_chain", eq("ij,jk,kl->il"), [[(2, 3), (3, 4), (4, 5)]], F, tol=LOW),
    OpCase("einsum_repeated_in_operand", eq("aab,bc->ac"), [[(2, 2, 3), (3, 4)]], F),
    OpCase("einsum_triple_diagonal", eq("iii->i"), [[(3, 3, 3)]], F),
    OpCase("einsum_permute_contract", eq("ijk,jil->kl"), [[(2, 3, 4), (3, 2, 5)]], F),
    OpCase("einsum_scalars", eq(",->"), [[(), ()]], F),
    OpCase("einsum_scalar_times", eq("i,->i"), [[(3,), ()]], F),
    OpCase("einsum_independent", eq("ij,k"), [[(2, 3), (4,)]], F),
    OpCase("einsum_spaces", eq(" i j , j k -> i k "), [[(2, 3), (3, 4)]], F),
    OpCase("einsum_bilinear", eq("bn,anm,bm->ba"), [[(2, 3), (4, 3, 5), (2, 5)]], F, tol=LOW),
    OpCase("einsum_list_operands", lambda lib, a, b: lib.einsum("ij,jk->ik", [a, b]), [[(2, 3), (3, 4)]], F),
    OpCase("einsum_sublist", lambda lib, a, b: lib.einsum(a, [0, 1], b, [1, 2], [0, 2]), [[(2, 3), (3, 4)]], F),
    OpCase("einsum_sublist_implicit", lambda lib, a, b: lib.einsum(a, [0, 1], b, [1, 2]), [[(2, 3), (3, 4)]], F),
    OpCase("einsum_sublist_ellipsis", lambda lib, a: lib.einsum(a, [Ellipsis, 0], [Ellipsis]), [[(2, 3, 4)]], F),
    OpCase("einsum_noncontiguous_view", lambda lib, a, b: lib.einsum("ij,jk->ik", a.t(), b[:, ::2]),
           [[(3, 2), (3, 8)]], F),
    OpCase("tensordot", lambda lib, a, b: (lib.tensordot(a, b, dims=2), lib.tensordot(a, b.permute(2, 0, 1), dims=1)),
           [[(2, 3, 4), (3, 4, 5)]], F + ["int64"], tol=LOW),
    OpCase("tensordot_lists", lambda lib, a, b: (lib.tensordot(a, b, dims=([1, 0], [0, 1])),
                                                 lib.tensordot(a, b, dims=([0], [1])),
                                                 lib.tensordot(a, b, dims=0)),
           [[(3, 4), (4, 3)]], F),
    OpCase("tensordot_errors", lambda lib, a, b: lib.tensordot(a, b, dims=([0], [0])), [[(3, 4), (4, 3)]], F,
           grad=False),
    # Errors: torch's exception classes.
    OpCase("einsum_bad_sizes", eq("ij,jk"), [[(2, 3), (4, 5)]], F, grad=False),
    OpCase("einsum_bad_ndim", eq("ij"), [[(2, 3, 4)]], F, grad=False),
    OpCase("einsum_bad_operands", eq("ij,jk"), [[(2, 3)]], F, grad=False),
    OpCase("einsum_bad_output", eq("ij->k"), [[(2, 2)]], F, grad=False),
    OpCase("einsum_repeated_output", eq("ij->ii"), [[(2, 2)]], F, grad=False),
    OpCase("einsum_bad_subscript", eq("i1"), [[(2, 2)]], F, grad=False),
    OpCase("einsum_mixed_dtypes", lambda lib, a, b: lib.einsum("ij,jk", a, b.double()), [[(2, 3), (3, 4)]],
           ["float32"], grad=False),
]

test_matches_torch, test_gradcheck = op_tests(CASES)


@pytest.mark.parametrize("equation, message", [
    ("ij,jk", r"\[einsum\] operands do not broadcast: subscript j has sizes 3 and 4"),
    ("i.j", r"\[einsum\] found '\.' for operand 0 that is not part of any ellipsis"),
    ("ij->ii", r"\[einsum\] output subscript i appears more than once"),
    ("ij->k", r"\[einsum\] output subscript k does not appear"),
    ("i1", r"\[einsum\] invalid subscript given at index 1"),
    ("......", r"more than one ellipsis"),
])
def test_einsum_error_messages(equation, message):
    a, b = ember.ones(2, 3), ember.ones(4, 5)
    with pytest.raises(RuntimeError, match=message):
        ember.einsum(equation, a, b) if "," in equation else ember.einsum(equation, a)


def test_einsum_argument_errors():
    with pytest.raises(ValueError, match=r"\[einsum\] must specify the equation string"):
        ember.einsum()
    with pytest.raises(ValueError, match=r"\[einsum\] must specify the equation string"):
        ember.einsum("ij")
    with pytest.raises(ValueError, match=r"subscript in sublist must be in range \[0, 52\)"):
        ember.einsum(ember.ones(2), [52])
    with pytest.raises(RuntimeError, match=r"\[tensordot\] contracted dimensions need to match"):
        ember.tensordot(ember.ones(2, 3), ember.ones(4, 5), dims=1)


def test_einsum_large_contraction_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((8, 16, 32)), rng.standard_normal((32, 8, 24))
    got = ember.einsum("bij,jbk->bik", ember.from_numpy(a), ember.from_numpy(b)).numpy()
    np.testing.assert_allclose(got, np.einsum("bij,jbk->bik", a, b), rtol=1e-10, atol=1e-10)
