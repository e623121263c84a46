"""Bad inputs raise the exception type torch raises, with a message naming the op and the
offending shapes/dtypes/values."""
import numpy as np
import pytest

import ember
from ember import autograd


def test_backward_twice_names_the_node():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"MulBackward.*retain_graph=True"):
        y.backward()


def test_inplace_change_of_saved_tensor_names_op_and_versions():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1
    y = a * a
    a.add_(1)
    with pytest.raises(RuntimeError, match=r"\[mul\] one of the variables needed for gradient computation has been "
                                           r"modified by an inplace operation.*float32\[2\].*version 1.*expected "
                                           r"version 0"):
        y.sum().backward()


def test_inplace_on_leaf_requiring_grad():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\[mul_\] a leaf Variable that requires grad.*float32\[2\]"):
        x.mul_(2)
    with autograd.no_grad():
        x.mul_(2)  # allowed without recording
    assert x.tolist() == [2.0, 4.0]


def test_requires_grad_on_integer_tensor():
    with pytest.raises(RuntimeError, match=r"only Tensors of floating point dtype can require gradients.*int64"):
        ember.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="floating point"):
        ember.tensor([1, 2], requires_grad=True)


def test_requires_grad_false_on_non_leaf():
    x = ember.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="requires_grad flags of leaf variables"):
        (x * 2).requires_grad_(False)


def test_numpy_on_requires_grad_tensor():
    with pytest.raises(RuntimeError, match=r"\[numpy\].*requires grad.*detach\(\)"):
        ember.tensor([1.0], requires_grad=True).numpy()


def test_device_mismatch_names_op_and_devices():
    if not (hasattr(ember, "cuda") and ember.cuda.is_available()):
        pytest.skip("needs a CUDA device")
    a = ember.tensor([1.0])
    b = ember.tensor([1.0], device="cuda")
    with pytest.raises(RuntimeError, match=r"\[add\] expected all tensors to be on the same device.*cpu.*cuda:0"):
        ember.add(a, b)


def test_unknown_device_string():
    with pytest.raises(ValueError, match=r"\[device\].*'tpu'"):
        ember.tensor([1.0], device="tpu")


def test_backward_gradient_shape_mismatch():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\[backward\] gradient has shape \[3\] but the tensor has shape \[2\]"):
        (x * 2).backward(ember.tensor([1.0, 1.0, 1.0]))


def test_grad_of_input_not_requiring_grad():
    x = ember.tensor([1.0], requires_grad=True)
    z = ember.tensor([1.0])
    with pytest.raises(RuntimeError, match=r"\[grad\] input 1 \(float32\[1\]\) does not require grad"):
        autograd.grad((x * 2).sum(), [x, z])


def test_item_and_bool_of_many_elements():
    with pytest.raises(RuntimeError, match=r"\[item\] a Tensor with 3 elements"):
        ember.tensor([1, 2, 3]).item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        if ember.tensor([1.0, 2.0]):
            pass


def test_hook_returning_wrong_shape():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: ember.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(RuntimeError, match=r"\[register_hook\].*shape \[3\].*\[2\]"):
        (x * 2).sum().backward()


def test_function_returning_bad_gradient_shape():
    class Bad(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return ember.tensor([1.0, 2.0, 3.0])
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"BadBackward.*invalid gradient at index 0 - got \[3\].*\[2\]"):
        Bad.apply(x).sum().backward()


def test_function_gradient_for_non_tensor_input():
    class Bad(autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, g):
            return g, g
    x = ember.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"BadBackward.*position 2.*not a Tensor"):
        Bad.apply(x, 2.0).sum().backward()


def test_tensor_constructor_errors():
    with pytest.raises(ValueError, match=r"\[tensor\] expected sequence of length 2 at dim 1 \(got 1\)"):
        ember.tensor([[1, 2], [3]])
    with pytest.raises(TypeError, match=r"\[tensor\].*'dict'"):
        ember.tensor([{}])


def test_from_dlpack_bad_inputs():
    with pytest.raises(TypeError, match=r"\[from_dlpack\].*__dlpack__"):
        ember.from_dlpack(42)


def test_from_numpy_unsupported_dtype():
    with pytest.raises(TypeError, match=r"\[from_numpy\].*complex128"):
        ember.from_numpy(np.zeros(2, dtype=np.complex128))
