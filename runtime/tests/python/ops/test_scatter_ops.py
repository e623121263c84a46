"""scatter_reduce, index_reduce, masked_scatter, select_scatter and slice_scatter vs torch: values,
gradients (ties included: amax/amin split the gradient evenly), in-place forms, errors."""
import warnings

import numpy as np
import pytest

import ember
from optest import OpCase, op_tests

F = ["float32", "float64"]
REDUCTIONS = ["sum", "mean", "amax", "amin", "prod"]
warnings.filterwarnings("ignore", message="index_reduce\\(\\) is in beta")


def _scatter_inputs(index_shape, dim_size):
    """self/src with small integer values (many ties), and an int64 index into dim 0 of size dim_size."""
    def make(rng, shapes, dtype):
        dt = np.float32 if dtype == "bfloat16" else dtype
        return [rng.integers(-2, 3, size=shapes[0]).astype(dt), rng.integers(-2, 3, size=shapes[1]).astype(dt),
                rng.integers(0, dim_size, size=index_shape)]
    return make


def _scatter_case(name, reduce, include_self, dtypes=F, shapes=((4, 5), (3, 5)), index_shape=(3, 5), dim=0,
                  grad=True):
    return OpCase(name, lambda lib, x, s, i: (lib.scatter_reduce(x, dim, i, s, reduce, include_self=include_self),
                                              x.scatter_reduce(dim, i, s, reduce, include_self=include_self),
                                              x.clone().scatter_reduce_(dim, i, s, reduce, include_self=include_self)),
                  [list(shapes) + [index_shape]], dtypes, grad=grad, grad_inputs=[0, 1],
                  input_dtypes=[None, None, "int64"],
                  make_inputs=_scatter_inputs(index_shape, shapes[0][dim]), gradcheck=False)


CASES = [
    *[_scatter_case(f"scatter_reduce_{r}_{'self' if inc else 'noself'}", r, inc) for r in REDUCTIONS
      for inc in (True, False)],
    *[_scatter_case(f"scatter_reduce_{r}_int", r, True, ["int64"]) for r in REDUCTIONS],
    *[_scatter_case(f"scatter_reduce_{r}_empty_index", r, False, shapes=((4, 5), (0, 5)), index_shape=(0, 5))
      for r in ("sum", "amax")],
    # src larger than index: only its leading block is read (torch's own backward refuses this shape)
    *[_scatter_case(f"scatter_reduce_{r}_larger_src", r, True, shapes=((4, 5), (3, 6)), grad=False)
      for r in REDUCTIONS],
    _scatter_case("scatter_reduce_amax_dim1", "amax", False, shapes=((3, 4), (3, 6)), index_shape=(3, 6), dim=1),
    # smooth values: the float64 finite-difference check (ties would make amax/amin non-differentiable)
    *[OpCase(f"scatter_reduce_{r}_smooth", lambda lib, x, s, i, r=r: lib.scatter_reduce(x, 0, i, s, r),
             [[(4, 3), (5, 3), (5, 3)]], ["float64"], grad_inputs=[0, 1], input_dtypes=[None, None, "int64"],
             make_inputs=lambda rng, s, d: [rng.uniform(0.5, 2, s[0]), rng.uniform(0.5, 2, s[1]),
                                            rng.integers(0, 4, s[2])]) for r in REDUCTIONS],
    *[OpCase(f"index_reduce_{r}_{'self' if inc else 'noself'}",
             lambda lib, x, s, i, r=r, inc=inc: (x.index_reduce(1, i, s, r, include_self=inc),
                                                 x.clone().index_reduce_(1, i, s, r, include_self=inc)),
             [[(3, 4), (3, 6), (6,)]], F, grad_inputs=[0, 1], input_dtypes=[None, None, "int64"], gradcheck=False,
             make_inputs=lambda rng, s, d: [rng.integers(-2, 3, s[0]).astype(d), rng.integers(-2, 3, s[1]).astype(d),
                                            rng.integers(0, 4, s[2])])
      for r in ("prod", "mean", "amax", "amin") for inc in (True, False)],
    OpCase("index_reduce_empty", lambda lib, x, s, i: x.index_reduce(1, i, s, "amax"), [[(3, 4), (3, 0), (0,)]], F,
           grad_inputs=[0, 1], input_dtypes=[None, None, "int64"], gradcheck=False),
    OpCase("index_reduce_bad_reduce", lambda lib, x, s, i: x.index_reduce(0, i, s, "sum"), [[(3, 4), (2, 4), (2,)]],
           F, grad=False, input_dtypes=[None, None, "int64"],
           make_inputs=lambda rng, s, d: [rng.uniform(0, 1, s[0]).astype(d), rng.uniform(0, 1, s[1]).astype(d),
                                          rng.integers(0, 3, s[2])]),
    OpCase("masked_scatter", lambda lib, x, m, s: (lib.masked_scatter(x, m, s), x.masked_scatter(m, s),
                                                   x.clone().masked_scatter_(m, s)),
           [[(3, 4), (3, 4), (15,)], [(3, 4), (4,), (4, 4)], [(0, 4), (4,), (2,)]], F + ["int64"],
           input_dtypes=[None, "bool", None], grad_inputs=[0, 2]),
    OpCase("masked_scatter_broadcast_self", lambda lib, x, m, s: lib.masked_scatter(x, m, s),
           [[(4,), (3, 4), (12,)]], F, input_dtypes=[None, "bool", None], grad_inputs=[0, 2]),
    OpCase("masked_scatter_short_source", lambda lib, x, m, s: x.masked_scatter(m, s), [[(3, 4), (3, 4), (2,)]], F,
           grad=False, make_inputs=lambda rng, s, d: [rng.uniform(0, 1, s[0]).astype(d), np.ones(s[1], bool),
                                                      rng.uniform(0, 1, s[2]).astype(d)]),
    OpCase("masked_scatter_float_mask", lambda lib, x, m, s: x.masked_scatter(m, s), [[(3,), (3,), (3,)]], F,
           grad=False),
    OpCase("select_scatter", lambda lib, x, s: (lib.select_scatter(x, s, 0, 1), x.select_scatter(s, 0, -1)),
           [[(3, 4), (4,)]], F),
    OpCase("select_scatter_dim1", lambda lib, x, s: lib.select_scatter(x, s, 1, 2), [[(2, 3, 4), (2, 4)]], F),
    OpCase("select_scatter_bad_shape", lambda lib, x, s: lib.select_scatter(x, s, 0, 1), [[(3, 4), (3,)]], F,
           grad=False),
    OpCase("select_scatter_bad_index", lambda lib, x, s: lib.select_scatter(x, s, 0, 5), [[(3, 4), (4,)]], F,
           grad=False),
    OpCase("slice_scatter", lambda lib, x, s: (lib.slice_scatter(x, s, 1, 0, 4, 2), x.slice_scatter(s, 1, 1, None, 2)),
           [[(3, 4), (3, 2)]], F),
    OpCase("slice_scatter_defaults", lambda lib, x, s: lib.slice_scatter(x, s), [[(3, 4), (3, 4)]], F),
    OpCase("slice_scatter_empty", lambda lib, x, s: lib.slice_scatter(x, s, 0, 2, 2), [[(3, 4), (0, 4)]], F),
    OpCase("slice_scatter_bad_shape", lambda lib, x, s: lib.slice_scatter(x, s, 1, 0, 4, 2), [[(3, 4), (3, 3)]], F,
           grad=False),
    OpCase("slice_scatter_bad_step", lambda lib, x, s: lib.slice_scatter(x, s, 1, 0, 4, 0), [[(3, 4), (3, 1)]], F,
           grad=False),
]

test_matches_torch, test_gradcheck = op_tests(CASES)


def test_errors():
    x = ember.zeros(3, 4)
    idx = ember.zeros(2, 4, dtype=ember.int64)
    with pytest.raises(RuntimeError, match=r"\[scatter_reduce\] reduce argument must be either sum, prod, mean, amax "
                                           r"or amin, got foo"):
        x.scatter_reduce(0, idx, x[:2], "foo")
    with pytest.raises(RuntimeError, match=r"\[scatter_reduce\] scatter\(\): Expected self.dtype to be equal to "
                                           r"src.dtype"):
        x.scatter_reduce(0, idx, x[:2].double(), "sum")
    with pytest.raises(RuntimeError, match=r"\[scatter_reduce\] index 5 is out of bounds for dimension 0 with size 3"):
        x.scatter_reduce(0, ember.full((2, 4), 5, dtype=ember.int64), x[:2], "amax")
    with pytest.raises(RuntimeError, match=r"\[scatter_reduce\] Expected index \[2, 5\] to be no larger than self "
                                           r"\[3, 4\]"):
        x.scatter_reduce(0, ember.zeros(2, 5, dtype=ember.int64), x[:2], "sum")
    with pytest.raises(RuntimeError, match=r"\[index_reduce\] source tensor shape must match self tensor shape"):
        x.index_reduce(0, ember.zeros(2, dtype=ember.int64), x[:2, :3], "prod")
    with pytest.raises(IndexError, match=r"\[index_reduce\] index out of range in self"):
        x.index_reduce(0, ember.full((2,), 7, dtype=ember.int64), x[:2], "amin")
    with pytest.raises(RuntimeError, match=r"\[masked_scatter\] Number of elements of source < number of ones in mask"):
        x.masked_scatter(ember.ones(3, 4, dtype=ember.bool), ember.zeros(5))
    with pytest.raises(RuntimeError, match=r"\[masked_scatter_\] mask of shape \[2, 3, 4\] cannot be broadcast"):
        x.masked_scatter_(ember.ones(2, 3, 4, dtype=ember.bool), ember.zeros(30))
    with pytest.raises(RuntimeError, match=r"\[slice_scatter\] expected src to have a size equal to the slice of "
                                           r"self. src size = \[3, 3\], slice size = \[3, 2\]"):
        ember.slice_scatter(x, ember.zeros(3, 3), 1, 0, 4, 2)
